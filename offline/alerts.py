"""Alert rules through promtool: unit tests, and which alerts a healthy stack would fire.

    python -m offline.alerts national --stack-dir tests/stacks   # the healthy-stack count of one stack

`promtool test rules` is the judge (Prometheus's own rule engine, the Debian `prometheus` package). Two uses:
- `run_tests`: a rule file and its unit tests, written to a temporary folder and run; the tests' harness.
- `firing`: every rule at once against a set of series, in one promtool run: each alert is expected not to
  fire, and promtool's report of the failures says which did, with their labels.

`healthy_series` writes what the exporters would report on a healthy cluster, from the rendered objects of an
offline evaluation (nodes, Deployments, volumes, quotas, Velero Schedules, the CHT probes): every node Ready,
every Deployment available, volumes 15% used, backups and snapshots on time. The metric and label names are
the exporters' at the pinned versions (tests/test_alerts_*.py name the upstream file of each).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import scrapes

# One sample every STEP over SPAN: long enough for the longest `for` of a healthy-path alert (backups: 26 h).
STEP_MINUTES = 30
SPAN_HOURS = 30
HEARTBEAT = "Watchdog"  # kube-prometheus-stack's always-firing alert: the only one a healthy stack fires


def promtool() -> str | None:
    return shutil.which("promtool")


def run_tests(promtool_path: str, groups: list[dict], tests: list[dict], evaluation_interval: str = "1m") -> tuple[bool, str]:
    """`promtool test rules` on `groups` (rule groups) and `tests` (its unit tests); (passed, promtool's report)."""
    with tempfile.TemporaryDirectory(prefix="alerts-") as tmp:
        folder = Path(tmp)
        (folder / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
        (folder / "tests.yaml").write_text(
            yaml.safe_dump(
                {"rule_files": ["rules.yaml"], "evaluation_interval": evaluation_interval, "tests": tests},
                sort_keys=False,
            )
        )
        done = subprocess.run(
            [promtool_path, "test", "rules", "tests.yaml"], cwd=folder, capture_output=True, text=True, timeout=600
        )
    return done.returncode == 0, done.stdout + done.stderr


def alert_names(groups: list[dict]) -> list[str]:
    return sorted({rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule})


_FAILED = re.compile(r"^\s*alertname: (\S+), time: ")
_LABELS = re.compile(r"^\s*Labels:\{(.*)\}\s*$")
_PAIR = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def firing(promtool_path: str, groups: list[dict], series: list[dict], at_hours: int = SPAN_HOURS) -> dict[str, list[dict]]:
    """The alerts of `groups` firing at `at_hours` over `series` (one sample per STEP_MINUTES): name -> labels."""
    names = alert_names(groups)
    test = {
        "interval": f"{STEP_MINUTES}m",
        "input_series": series,
        "alert_rule_test": [{"eval_time": f"{at_hours}h", "alertname": name, "exp_alerts": []} for name in names],
    }
    passed, report = run_tests(promtool_path, groups, [test], evaluation_interval=f"{STEP_MINUTES}m")
    found: dict[str, list[dict]] = defaultdict(list)
    if passed:
        return {}
    current = None
    for line in report.splitlines():
        if m := _FAILED.match(line):
            current = m.group(1)
        elif (m := _LABELS.match(line)) and current:
            found[current].append(dict(_PAIR.findall(m.group(1))))
    if not found:  # promtool failed for another reason (a rule it cannot parse): say so, never count 0
        raise RuntimeError(f"promtool test rules failed:\n{report}")
    return dict(found)


# --- what a healthy cluster reports, from the rendered objects --------------------------------------------------

_UNITS = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity(text: str | int | float) -> float:
    """A Kubernetes quantity ("500m", "4Gi", "2") as a number."""
    m = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(text).strip())
    if not m or m.group(2) not in _UNITS:
        raise ValueError(f"not a quantity: {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


@dataclass(frozen=True)
class Objects:
    """The Kubernetes objects and VMs of an evaluation that the healthy series are read from."""

    manifests: list[dict]
    nodes: list[str]
    servers: list[str]
    releases: list[dict]
    sizes: dict[str, tuple[float, float]]
    """node -> (CPUs, memory bytes) of its VM."""

    @classmethod
    def of(cls, evaluation) -> Objects:
        manifests, nodes, servers, releases, sizes = [], [], [], [], {}
        for r in evaluation.registrations:
            if r.type == "vsphere:index/virtualMachine:VirtualMachine":
                nodes.append(r.inputs["name"])
                sizes[r.inputs["name"]] = (float(r.inputs.get("numCpus", 0)), float(r.inputs.get("memory", 0)) * 2**20)
                if r.name.startswith("control-plane-"):
                    servers.append(r.inputs["name"])
            elif r.type == "kubernetes:helm.sh/v3:Release":
                releases.append(r.inputs)
            elif r.type.startswith("kubernetes:") and isinstance(r.inputs.get("metadata"), dict) and "kind" in r.inputs:
                manifests.append(r.inputs)
        return cls(manifests, sorted(nodes), sorted(servers), releases, sizes)

    def kind(self, kind: str) -> list[dict]:
        return [m for m in self.manifests if m["kind"] == kind]


def _series(name: str, labels: dict, values: str) -> dict:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return {"series": f"{name}{{{inner}}}", "values": values}


def _steps() -> int:
    return SPAN_HOURS * 60 // STEP_MINUTES + 1


def constant(value: float) -> str:
    return f"{value:g}x{_steps()}"


def rising(per_hour: float, start: float = 0) -> str:
    return f"{start:g}+{per_hour * STEP_MINUTES / 60:g}x{_steps()}"


def appearing(hours_ago: float, value: float) -> str:
    """A series that appears `hours_ago` before the end of the span (absent before)."""
    present = max(1, round(hours_ago * 60 / STEP_MINUTES) + 1)
    return f"_x{_steps() - present} {value:g}x{present - 1}"


def clock(offset_seconds: float = 0, scale: float = 1) -> str:
    """A value that follows the evaluation's clock (promtool starts at 0): a timestamp `offset_seconds` ago."""
    return f"{-offset_seconds * scale:g}+{STEP_MINUTES * 60 * scale:g}x{_steps()}"


def _pod_requests(spec: dict) -> tuple[float, float, float, float]:
    cpu = mem = lcpu = lmem = 0.0
    for container in spec.get("containers", []):
        resources = container.get("resources") or {}
        cpu += quantity(resources.get("requests", {}).get("cpu", 0))
        mem += quantity(resources.get("requests", {}).get("memory", 0))
        lcpu += quantity(resources.get("limits", {}).get("cpu", 0))
        lmem += quantity(resources.get("limits", {}).get("memory", 0))
    return cpu, mem, lcpu, lmem


def _release_pods(release: dict) -> tuple[list[dict], list[float]]:
    """The pods and volumes a monitoring Helm release runs, from its values (the chart's keys)."""
    values = release.get("values") or {}
    pods: list[dict] = []
    volumes: list[float] = []

    def at(*path):
        node = values
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        return node

    if release.get("chart") == "kube-prometheus-stack":
        reloader = at("prometheusOperator", "prometheusConfigReloader", "resources")
        for spec_path in (("prometheus", "prometheusSpec"), ("alertmanager", "alertmanagerSpec")):
            pods.append({"containers": [{"resources": at(*spec_path, "resources") or {}}, {"resources": reloader or {}}]})
        for path in (("prometheusOperator",), ("kube-state-metrics",)):
            pods.append({"containers": [{"resources": at(*path, "resources") or {}}]})
        for path in (("prometheus", "prometheusSpec", "storageSpec"), ("alertmanager", "alertmanagerSpec", "storage")):
            size = at(*path, "volumeClaimTemplate", "spec", "resources", "requests", "storage")
            if size:
                volumes.append(quantity(size))
    elif values.get("resources"):
        pods.append({"containers": [{"resources": values["resources"]}]})
    return pods, volumes


def _label_allowlist(objects: Objects) -> dict[str, tuple[str, ...]]:
    """kube-state-metrics' metricLabelsAllowlist from the kube-prometheus-stack release's values."""
    allowed: dict[str, tuple[str, ...]] = {}
    for release in objects.releases:
        entries = ((release.get("values") or {}).get("kube-state-metrics") or {}).get("metricLabelsAllowlist") or []
        for entry in entries:
            resource, _, labels = entry.partition("=")
            allowed[resource] = tuple(labels.strip("[]").split(","))
    return allowed


def healthy_series(objects: Objects) -> list[dict]:
    """What the exporters report for a healthy cluster built from `objects`, over SPAN_HOURS."""
    out: list[dict] = []
    ksm = {"job": "kube-state-metrics"}
    kubelet = {"job": "kubelet", "metrics_path": "/metrics"}
    # Nodes (kube-state-metrics; the kubelet's own scrape, one target per node).
    for node in objects.nodes:
        out.append(_series("kube_node_status_condition", {**ksm, "node": node, "condition": "Ready", "status": "true"}, constant(1)))
        out.append(_series("kube_node_info", {**ksm, "node": node}, constant(1)))
        out.append(_series("kube_node_spec_unschedulable", {**ksm, "node": node}, constant(0)))
        cpus, memory = objects.sizes.get(node, (0, 0))
        if cpus:  # what the VM offers (allocatable is a little less; the chart compares quotas with it)
            out.append(_series("kube_node_status_allocatable", {**ksm, "node": node, "resource": "cpu"}, constant(cpus)))
            out.append(_series("kube_node_status_allocatable", {**ksm, "node": node, "resource": "memory"}, constant(memory)))
        out.append(_series("up", {**kubelet, "node": node, "instance": f"{node}:10250"}, constant(1)))
    # k3s servers: supervisor metrics on the API-server scrape; a snapshot every 12 h, certificates far away.
    for server in objects.servers:
        target = {"job": "apiserver", "instance": f"{server}:6443"}
        out.append(_series("up", target, constant(1)))
        out.append(_series("process_start_time_seconds", target, constant(-30 * 86400)))
        out.append(
            _series(
                "k3s_certificate_expiration_seconds",
                {**target, "subject": "CN=kube-apiserver", "usages": "ServerAuth"},
                f"{300 * 86400}-{STEP_MINUTES * 60}x{_steps()}",
            )
        )
        out.append(
            _series("k3s_etcd_snapshot_save_duration_seconds_count", {**target, "status": "success"}, rising(1 / 12, 60))
        )
    # Workloads: every Deployment's replicas available.
    requests: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    for deployment in objects.kind("Deployment"):
        meta, spec = deployment["metadata"], deployment.get("spec", {})
        replicas = spec.get("replicas", 1)
        labels = {**ksm, "namespace": meta["namespace"], "deployment": meta["name"]}
        for metric in ("kube_deployment_spec_replicas", "kube_deployment_status_replicas",
                       "kube_deployment_status_replicas_available", "kube_deployment_status_replicas_updated"):
            out.append(_series(metric, labels, constant(replicas)))
        pod = _pod_requests(spec.get("template", {}).get("spec", {}))
        total = requests[meta["namespace"]]
        for i, value in enumerate(pod):
            total[i] += value * replicas
    # Volumes: 15% used, whatever their size (below the 4.x -> 5.x upgrade headroom of a fifth).
    claims: dict[str, list[float]] = defaultdict(list)
    for claim in objects.kind("PersistentVolumeClaim"):
        meta = claim["metadata"]
        size = quantity(claim["spec"]["resources"]["requests"]["storage"])
        claims[meta["namespace"]].append(size)
        labels = {**kubelet, "namespace": meta["namespace"], "persistentvolumeclaim": meta["name"], "node": (objects.nodes or ["node-1"])[0]}
        out.append(_series("kubelet_volume_stats_capacity_bytes", labels, constant(size)))
        out.append(_series("kubelet_volume_stats_used_bytes", labels, constant(size * 0.15)))
        out.append(_series("kubelet_volume_stats_available_bytes", labels, constant(size * 0.85)))
    for release in objects.releases:
        pods, volumes = _release_pods(release)
        namespace = release.get("namespace", "default")
        for pod in pods:
            for i, value in enumerate(_pod_requests(pod)):
                requests[namespace][i] += value
        claims[namespace] += volumes
    # Quotas: what the namespace's pods and volumes use against the rendered hard limits.
    for quota in objects.kind("ResourceQuota"):
        meta = quota["metadata"]
        namespace = meta["namespace"]
        cpu, mem, lcpu, lmem = requests[namespace]
        used = {
            "requests.cpu": cpu, "requests.memory": mem, "limits.cpu": lcpu, "limits.memory": lmem,
            "persistentvolumeclaims": len(claims[namespace]), "requests.storage": sum(claims[namespace]),
        }
        for resource, hard in quota["spec"]["hard"].items():
            labels = {**ksm, "namespace": namespace, "resourcequota": meta["name"], "resource": resource}
            out.append(_series("kube_resourcequota", {**labels, "type": "hard"}, constant(quantity(hard))))
            out.append(_series("kube_resourcequota", {**labels, "type": "used"}, constant(used.get(resource, 0))))
    # Velero: every Schedule backed up within the day (a backup every 24 h; here 2 h ago, kept current).
    for schedule in objects.kind("Schedule"):
        name = {"schedule": schedule["metadata"]["name"]}
        out.append(_series("velero_backup_last_successful_timestamp", name, clock(2 * 3600)))
        out.append(_series("velero_backup_attempt_total", name, rising(1 / 24, 1)))
        out.append(_series("velero_backup_success_total", name, rising(1 / 24, 1)))
        # ... with its CouchDB volumes: the node agent's gauge gains a series per backup's pod volume backup
        # (one from a day ago, one from the latest backup 2 h ago).
        for age_hours in (26, 2):
            backup_name = f"{schedule['metadata']['namespace']}/{schedule['metadata']['name']}-2026010{age_hours // 24 + 1}010000"
            gauge = {"node": "agent-1", "backupName": backup_name, "pod_volume_backup": f"pvb-{age_hours}",
                     "operation": f"pvb-{age_hours}-default-backup"}
            out.append(_series("podVolume_pod_volume_operation_latency_seconds_gauge", gauge, appearing(age_hours, 60)))
    for cronjob in objects.kind("CronJob"):
        labels = {**ksm, "namespace": cronjob["metadata"]["namespace"], "cronjob": cronjob["metadata"]["name"]}
        out.append(_series("kube_cronjob_created", labels, constant(-30 * 86400)))
        out.append(_series("kube_cronjob_status_last_successful_time", labels, clock(86400)))
    # The labels kube-state-metrics exports of deployments and namespaces (the chart's metricLabelsAllowlist).
    for kind, plural in (("Deployment", "deployments"), ("Namespace", "namespaces")):
        allowed = _label_allowlist(objects).get(plural, ())
        for obj in objects.kind(kind):
            meta = obj["metadata"]
            labels = {f"label_{re.sub(r'[^a-zA-Z0-9_]', '_', k)}": v for k, v in (meta.get("labels") or {}).items() if k in allowed}
            if kind == "Deployment":
                labels.update(namespace=meta["namespace"], deployment=meta["name"])
            else:
                labels.update(namespace=meta["name"])
            out.append(_series(f"kube_{kind.lower()}_labels", {**ksm, **labels}, constant(1)))
    # CHT: every probe target (job `cht`: offline/scrapes.py finds them as Prometheus would) answers;
    # Watchdog's metrics look well.
    targets = [t for probe in objects.kind("Probe") for t in scrapes.probe_targets(probe, objects.kind("Ingress"))]
    for found in targets:
        target = {k: v for k, v in found.items() if not k.startswith("__")}
        out.append(_series("up", target, constant(1)))
        out.append(_series("cht_connected_users_count", target, constant(20)))
        for metric in ("cht_conflict_count", "cht_replication_limit_count", "cht_sentinel_backlog_count",
                       "cht_outbound_push_backlog_count", "cht_feedback_total"):
            out.append(_series(metric, target, constant(0)))
        out.append(_series("cht_date_current_millis", target, clock(0, 1000)))
        for db in ("medic", "sentinel", "medic-users-meta", "_users"):
            out.append(_series("cht_couchdb_fragmentation", {**target, "db": db}, constant(1.5)))
            out.append(_series("cht_couchdb_doc_total", {**target, "db": db}, constant(5000)))
            out.append(_series("cht_couchdb_update_sequence", {**target, "db": db}, rising(100, 10000)))
        out.append(_series("cht_messaging_outgoing_total", {**target, "status": "delivered"}, rising(10, 100)))
        out.append(_series("cht_messaging_outgoing_total", {**target, "status": "failed"}, constant(1)))
    return out


def rule_groups(objects: Objects) -> list[dict]:
    """Every rule group of the rendered PrometheusRules."""
    return [group for rule in objects.kind("PrometheusRule") for group in rule["spec"]["groups"]]


def healthy_count(evaluation, promtool_path: str) -> tuple[int, dict[str, list[dict]]]:
    """(rules evaluated, what fires) for a healthy cluster of this evaluation, the heartbeat included."""
    objects = Objects.of(evaluation)
    groups = [*rule_groups(objects), HEARTBEAT_GROUP]
    return sum(len(g["rules"]) for g in groups), firing(promtool_path, groups, healthy_series(objects))


# kube-prometheus-stack 88.5.3 general.rules.yaml: the heartbeat the chart renders (not a rendered object here).
HEARTBEAT_GROUP = {"name": "general.rules", "rules": [{"alert": HEARTBEAT, "expr": "vector(1)", "labels": {"severity": "none"}}]}


def summary_line(rules: int, fired: dict[str, list[dict]]) -> str:
    others = {name: labels for name, labels in fired.items() if name != HEARTBEAT}
    count = sum(len(labels) for labels in others.values())
    head = f"healthy-stack alerts: {count} of {rules} rules fire besides the heartbeat ({HEARTBEAT})"
    if not others:
        return head
    detail = "; ".join(f"{name} x{len(labels)}" for name, labels in sorted(others.items()))
    return f"{head}: {detail}"


def main(argv: list[str] | None = None) -> int:
    from . import engine, plan

    parser = argparse.ArgumentParser(prog="python -m offline.alerts", description=__doc__.split("\n")[0])
    parser.add_argument("stack")
    parser.add_argument("--stack-dir", type=Path, default=engine.ROOT)
    args = parser.parse_args(argv)
    path = promtool()
    if path is None:
        print("promtool is not installed (apt-get install prometheus)", file=sys.stderr)
        return 1
    evaluation, _ = plan.run(args.stack, stack_dir=args.stack_dir)
    print(summary_line(*healthy_count(evaluation, path)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
