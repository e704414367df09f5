"""What the monitoring stack scrapes: the Watchdog target list, one Probe and one ServiceMonitor for every county
(found by the labels of their Ingress and API Service, so adding a county changes neither), and Velero's
metrics.

Pure: nothing here imports Pulumi. Upstream pins:
- Medic's CHT Watchdog 1.23.1: `cht-instances.example.yml` (the target list), `exporters/json/config/
  scrape_config.yml` (how `/api/v2/monitoring` is read: job `cht`, `instance` the county's host).
- prometheus-operator v0.93 (kube-prometheus-stack-88.5.3 appVersion v0.93.1) `pkg/prometheus/promcfg.go`
  generateProbeConfig: a Probe's ingress targets get `__param_target` = `<scheme>://<host><path>`, `namespace`,
  `__tmp_ingress_address` = the host and `instance` = `__param_target`, then the Probe's own relabelings.
- the chart's Prometheus ClusterRole (templates/prometheus/clusterrole.yaml) lists ingresses, services and
  endpoints in every namespace; velero chart 12.1.0 (the metrics port and the node agents' pod labels).
"""

from __future__ import annotations

import yaml

from config import names

from .values import JSON_EXPORTER_PORT, JSON_EXPORTER_RELEASE, NAMESPACE

PROBE_JOB = "cht"  # Watchdog's job name: its "API Server Down" alert reads up{job="cht"}
EXPRESS_JOB = "cht-express-metrics"
MONITORING_PATH = "/api/v2/monitoring?connected_user_interval=30"
EXPRESS_METRICS_PATH = "/api/v1/express-metrics"
PROBE = "cht-counties"  # the Probe's and the ServiceMonitor's name, in the monitoring namespace
EXPRESS_MONITOR = "cht-express-metrics"
# Every county's API Ingress and Service carry these (components/cht/render.py labels).
COUNTY_API = {"app.kubernetes.io/managed-by": names.PROJECT, "cht.service": "api"}
VELERO_SERVICE_LABELS = {"app.kubernetes.io/name": "velero", "app.kubernetes.io/instance": names.VELERO_RELEASE}


def api_url(namespace: str) -> str:
    """The county's API inside the cluster (the scrape never leaves it; Watchdog outside uses the host)."""
    return f"http://{names.service_host('api', namespace)}:{names.CHT_API_PORT}"


def watchdog_targets(urls: dict[str, str]) -> str:
    """`cht-instances.yml` for Medic's CHT Watchdog: Prometheus file_sd, one `{targets: [url]}` per county,
    in county-name order so an added county is one added entry."""
    entries = [{"targets": [urls[county]]} for county in sorted(urls)]
    return yaml.safe_dump(entries, default_flow_style=False, sort_keys=False)


def _meta_label(kind: str, label: str) -> str:
    """Prometheus's Kubernetes SD meta label of an object's label (discovery/kubernetes: sanitized name)."""
    return f"__meta_kubernetes_{kind}_" + "".join(c if c.isalnum() or c == "_" else "_" for c in label)


def probe_spec(scrape_interval_seconds: int) -> dict:
    """Probe (monitoring.coreos.com/v1) over every county's API Ingress: the json-exporter reads the county's
    /api/v2/monitoring inside the cluster (`__param_target` from the Ingress's namespace), as Watchdog's `cht`
    job does from outside; `instance` is the Ingress's host and `county` its county label."""
    return {
        "jobName": PROBE_JOB,
        "interval": f"{scrape_interval_seconds}s",
        "scrapeTimeout": f"{min(scrape_interval_seconds, 30)}s",
        "module": "default",
        "prober": {"url": f"{JSON_EXPORTER_RELEASE}.{NAMESPACE}.svc:{JSON_EXPORTER_PORT}", "scheme": "http", "path": "/probe"},
        "targets": {
            "ingress": {
                "namespaceSelector": {"any": True},
                "selector": {
                    "matchLabels": dict(COUNTY_API),
                    "matchExpressions": [{"key": names.COUNTY_LABEL, "operator": "Exists"}],
                },
                "relabelingConfigs": [
                    {
                        "sourceLabels": ["__meta_kubernetes_namespace"],
                        "targetLabel": "__param_target",
                        "replacement": f"{api_url('$1')}{MONITORING_PATH}",
                        "action": "replace",
                    },
                    {"sourceLabels": ["__tmp_ingress_address"], "targetLabel": "instance", "action": "replace"},
                    {
                        "sourceLabels": [_meta_label("ingress_label", names.COUNTY_LABEL)],
                        "targetLabel": "county",
                        "action": "replace",
                    },
                ],
            }
        },
    }


def express_service_monitor_spec(scrape_interval_seconds: int) -> dict:
    """ServiceMonitor for every county's API /api/v1/express-metrics (Watchdog's `cht-express-metrics` job):
    the API Services that say they serve it (CHT 4.3.0+), `instance` their county's host."""
    return {
        "namespaceSelector": {"any": True},
        "selector": {"matchLabels": {**COUNTY_API, names.EXPRESS_METRICS_LABEL: "true"}},
        "endpoints": [
            {
                "port": "api",
                "path": EXPRESS_METRICS_PATH,
                "scheme": "http",
                "interval": f"{scrape_interval_seconds}s",
                "relabelings": [
                    {"targetLabel": "job", "replacement": EXPRESS_JOB, "action": "replace"},
                    {
                        "sourceLabels": [_meta_label("service_annotation", names.HOST_ANNOTATION)],
                        "targetLabel": "instance",
                        "action": "replace",
                    },
                    {
                        "sourceLabels": [_meta_label("service_label", names.COUNTY_LABEL)],
                        "targetLabel": "county",
                        "action": "replace",
                    },
                ],
            }
        ],
    }


def velero_service_monitor_spec(velero_namespace: str) -> dict:
    """Velero's metrics Service (velero chart: metrics.enabled, port `http-monitoring`), scraped from the
    monitoring namespace so the backup side needs no monitoring CRD of its own."""
    return {
        "namespaceSelector": {"matchNames": [velero_namespace]},
        "selector": {"matchLabels": dict(VELERO_SERVICE_LABELS)},
        "endpoints": [{"port": names.VELERO_METRICS_PORT_NAME, "path": "/metrics", "interval": "60s"}],
    }


def node_agent_pod_monitor_spec(velero_namespace: str) -> dict:
    """Velero's node agents (velero chart 12.1.0: port `http-monitoring` when metrics.enabled, pod labels of
    templates/node-agent-daemonset.yaml, as its own templates/podmonitor.yaml selects them): their pod volume
    backup metrics tell a backup with CouchDB data from one without."""
    return {
        "namespaceSelector": {"matchNames": [velero_namespace]},
        "selector": {"matchLabels": {**VELERO_SERVICE_LABELS, "name": "node-agent"}},
        "podMetricsEndpoints": [{"port": names.VELERO_METRICS_PORT_NAME, "path": "/metrics", "interval": "60s"}],
    }
