"""What Prometheus would scrape from a stack's Probes and ServiceMonitors and the objects they select: a stand-in
for prometheus-operator's config generation and Prometheus's Kubernetes discovery and relabelling, enough to
show which target each county gets and with which labels (the healthy-stack series, the tests).

It follows, for the pinned kube-prometheus-stack-88.5.3 (prometheus-operator v0.93):
- prometheus-operator `pkg/prometheus/promcfg.go` (v0.93.0): `initRelabelings` (job -> __tmp_prometheus_job_name),
  `generateProbeConfig` (static targets: `namespace` from the Probe, `__param_target` = the target, `instance` =
  `__param_target`; ingress targets: keep by the selector's labels, `__param_target` =
  `<scheme>://<host><path>`, `namespace`, `ingress`, `__tmp_ingress_address` = the host, `instance` =
  `__param_target`, `__address__` = the prober; then the Probe's relabelings) and
  `generateServiceMonitorConfig` (keep by the selector's labels and the endpoint's port name; `namespace`,
  `service`, `job` = the Service's name, `endpoint`; then the endpoint's relabelings);
- Prometheus `discovery/kubernetes` (`ingress.go`: one target per rule host and path, `__address__` the host,
  `__meta_kubernetes_ingress_scheme` https for a host with TLS; `endpoints.go`: the Service's labels and
  annotations as `__meta_kubernetes_service_label_<name>` / `_labelpresent_` / `_annotation_`, names sanitized
  to `[a-zA-Z0-9_]`) and `model/relabel` (actions replace, keep, drop; regex anchored, default `(.*)`;
  separator `;`; replacement default `$1`). Labels starting with `__` are dropped after relabelling.
"""

from __future__ import annotations

import re
from collections.abc import Iterable


def _sanitize(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def _expand(template: str, match: re.Match) -> str:
    def group(m: re.Match) -> str:
        index = m.group(1) or m.group(2)
        try:
            return match.group(int(index)) or ""
        except (IndexError, ValueError):
            return ""

    return re.sub(r"\$\{(\w+)\}|\$(\d+)", group, template)


def relabel(labels: dict[str, str], configs: Iterable[dict]) -> dict[str, str] | None:
    """Prometheus relabelling of one target (camelCase keys as the CRDs write them, snake_case as the operator's
    generated config does); None when the target is dropped."""
    labels = dict(labels)
    for config in configs:

        def get(key: str, snake: str, default=None, config: dict = config):
            return config.get(key, config.get(snake, default))

        action = get("action", "action", "replace").lower()
        sources = get("sourceLabels", "source_labels", [])
        value = get("separator", "separator", ";").join(labels.get(s, "") for s in sources)
        regex = re.compile(get("regex", "regex", "(.*)"))
        match = regex.fullmatch(value)
        if action == "keep" and not match:
            return None
        if action == "drop" and match:
            return None
        if action == "replace" and match:
            result = _expand(get("replacement", "replacement", "$1"), match)
            target = get("targetLabel", "target_label")
            if result:
                labels[target] = result
            else:
                labels.pop(target, None)
    return labels


def _selector_keeps(kind: str, selector: dict) -> list[dict]:
    """The keep/drop relabelings the operator turns a label selector into (promcfg.go)."""
    keeps = []
    for key, value in sorted((selector.get("matchLabels") or {}).items()):
        s = _sanitize(key)
        keeps.append({"action": "keep", "source_labels": [f"__meta_kubernetes_{kind}_label_{s}",
                                                         f"__meta_kubernetes_{kind}_labelpresent_{s}"],
                      "regex": f"({value});true"})
    for expression in selector.get("matchExpressions") or []:
        s, op = _sanitize(expression["key"]), expression["operator"]
        values = "|".join(expression.get("values") or [])
        both = [f"__meta_kubernetes_{kind}_label_{s}", f"__meta_kubernetes_{kind}_labelpresent_{s}"]
        present = [f"__meta_kubernetes_{kind}_labelpresent_{s}"]
        keeps.append({
            "In": {"action": "keep", "source_labels": both, "regex": f"({values});true"},
            "NotIn": {"action": "drop", "source_labels": both, "regex": f"({values});true"},
            "Exists": {"action": "keep", "source_labels": present, "regex": "true"},
            "DoesNotExist": {"action": "drop", "source_labels": present, "regex": "true"},
        }[op])
    return keeps


def _object_meta(kind: str, obj: dict) -> dict[str, str]:
    meta = obj["metadata"]
    labels = {"__meta_kubernetes_namespace": meta.get("namespace", ""), f"__meta_kubernetes_{kind}_name": meta["name"]}
    for key, value in (meta.get("labels") or {}).items():
        labels[f"__meta_kubernetes_{kind}_label_{_sanitize(key)}"] = value
        labels[f"__meta_kubernetes_{kind}_labelpresent_{_sanitize(key)}"] = "true"
    for key, value in (meta.get("annotations") or {}).items():
        labels[f"__meta_kubernetes_{kind}_annotation_{_sanitize(key)}"] = value
        labels[f"__meta_kubernetes_{kind}_annotationpresent_{_sanitize(key)}"] = "true"
    return labels


def _in_namespaces(selector: dict | None, own: str, obj: dict) -> bool:
    selector = selector or {}
    if selector.get("any"):
        return True
    return obj["metadata"].get("namespace") in (selector.get("matchNames") or [own])


def _finish(labels: dict[str, str] | None) -> dict[str, str] | None:
    if labels is None:
        return None
    return {k: v for k, v in labels.items() if not k.startswith("__") or k == "__param_target"}


def probe_targets(probe: dict, ingresses: list[dict]) -> list[dict[str, str]]:
    """The targets of a Probe: their labels after relabelling, and `__param_target` (what the prober reads)."""
    spec, namespace = probe["spec"], probe["metadata"]["namespace"]
    job = [{"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"}]
    if spec.get("jobName"):
        job.append({"target_label": "job", "replacement": spec["jobName"]})
    prober = spec["prober"]["url"]
    targets = []
    if "staticConfig" in spec["targets"]:
        static = spec["targets"]["staticConfig"]
        for address in static.get("static", []):
            labels = {"__address__": address, "namespace": namespace, **(static.get("labels") or {})}
            steps = [*job, {"source_labels": ["__address__"], "target_label": "__param_target"},
                     {"source_labels": ["__param_target"], "target_label": "instance"},
                     {"target_label": "__address__", "replacement": prober}, *static.get("relabelingConfigs", [])]
            targets.append(_finish(relabel(labels, steps)))
        return [t for t in targets if t]
    found = spec["targets"]["ingress"]
    for ingress in ingresses:
        if not _in_namespaces(found.get("namespaceSelector"), namespace, ingress):
            continue
        tls_hosts = {h for entry in ingress["spec"].get("tls") or [] for h in entry.get("hosts") or []}
        for rule in ingress["spec"].get("rules") or []:
            for path in (rule.get("http") or {}).get("paths") or [{"path": "/"}]:
                host = rule.get("host", "")
                labels = {**_object_meta("ingress", ingress), "__address__": host,
                          "__meta_kubernetes_ingress_scheme": "https" if host in tls_hosts else "http",
                          "__meta_kubernetes_ingress_path": path.get("path") or "/"}
                steps = [
                    *job,
                    *_selector_keeps("ingress", found.get("selector") or {}),
                    {"source_labels": ["__meta_kubernetes_ingress_scheme", "__address__", "__meta_kubernetes_ingress_path"],
                     "separator": ";", "regex": "(.+);(.+);(.+)", "target_label": "__param_target",
                     "replacement": "${1}://${2}${3}", "action": "replace"},
                    {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
                    {"source_labels": ["__meta_kubernetes_ingress_name"], "target_label": "ingress"},
                    {"source_labels": ["__address__"], "separator": ";", "regex": "(.*)",
                     "target_label": "__tmp_ingress_address", "replacement": "$1", "action": "replace"},
                    {"source_labels": ["__param_target"], "target_label": "instance"},
                    {"target_label": "__address__", "replacement": prober},
                    *found.get("relabelingConfigs", []),
                ]
                targets.append(_finish(relabel(labels, steps)))
    return [t for t in targets if t]


def service_monitor_targets(monitor: dict, services: list[dict]) -> list[dict[str, str]]:
    """The targets of a ServiceMonitor's endpoints over `services` (one per Service and matching port)."""
    spec, namespace = monitor["spec"], monitor["metadata"]["namespace"]
    targets = []
    for endpoint in spec["endpoints"]:
        for service in services:
            if not _in_namespaces(spec.get("namespaceSelector"), namespace, service):
                continue
            for port in service["spec"].get("ports") or []:
                labels = {**_object_meta("service", service), "__meta_kubernetes_endpoint_port_name": port.get("name", ""),
                          "__address__": f"{service['metadata']['name']}:{port['port']}"}
                steps = [
                    {"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"},
                    *_selector_keeps("service", spec.get("selector") or {}),
                    {"action": "keep", "source_labels": ["__meta_kubernetes_endpoint_port_name"], "regex": endpoint["port"]},
                    {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
                    {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"},
                    {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "job"},
                    {"target_label": "endpoint", "replacement": endpoint["port"]},
                    {"source_labels": ["__address__"], "target_label": "instance"},
                    *endpoint.get("relabelings", []),
                ]
                targets.append(_finish(relabel(labels, steps)))
    return [t for t in targets if t]
