"""Pure renderers for the monitoring stack: chart values, alert rules, scrape objects, policies.

Nothing here imports Pulumi; the components beside it register what these return. Upstream pins:
- Medic's CHT Watchdog 1.23.1: `cht-instances.example.yml` (the target list), `exporters/json/config/
  scrape_config.yml` (how `/api/v2/monitoring` is read), `exporters/json/config/cht.yml` (the metric
  names), `grafana/provisioning/alerting/cht.yml` (alert conditions, thresholds and `for` periods).
- prometheus-community/helm-charts: kube-prometheus-stack-88.5.3 and prometheus-json-exporter-0.19.2
  (`values.yaml` keys; the CRDs of `charts/kube-prometheus-stack/charts/crds/crds/`).
- k3s docs `reference/metrics.md` (supervisor metrics), k3s `pkg/metrics` ("success"/"error" status).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import yaml

from components.backup import drill as backup_drill
from components.backup import render as backup_render
from components.cht.render import API_PORT
from config import names, versions
from config.capacity import LIMIT_FACTOR, monitoring_pods
from config.model import BackupConfig, ChtSettings, MonitoringConfig

NAMESPACE = names.MONITORING_NAMESPACE
STACK_CHART = "kube-prometheus-stack"
STACK_RELEASE = "monitoring"  # also the chart's fullnameOverride: objects are named monitoring-*
JSON_EXPORTER_CHART = "prometheus-json-exporter"
JSON_EXPORTER_RELEASE = "cht-json-exporter"  # also its fullnameOverride: the Service the probes use
JSON_EXPORTER_PORT = 7979
ALERTMANAGER_SECRET = "cht-alertmanager-config"
# node-exporter needs the host's network, PIDs and root filesystem, which the monitoring namespace's
# Pod Security level refuses; it runs beside the other node daemons in kube-system.
NODE_EXPORTER_NAMESPACE = "kube-system"
ALERTMANAGER_STORAGE_GI = 1
PROBE_JOB = "cht"  # Watchdog's job name: its "API Server Down" alert reads up{job="cht"}
EXPRESS_JOB = "cht-express-metrics"
MONITORING_PATH = "/api/v2/monitoring?connected_user_interval=30"
EXPRESS_METRICS_PATH = "/api/v1/express-metrics"
EXPRESS_METRICS_SINCE = (4, 3, 0)  # /api/v1/express-metrics exists from CHT 4.3.0 (cht-core api/src/routing.js)
# The pods that read the counties: Prometheus (express metrics) and the json-exporter (/api/v2/monitoring);
# each county's API NetworkPolicy admits them (config/names.py).
PROMETHEUS_POD_LABELS, JSON_EXPORTER_POD_LABELS = names.SCRAPER_POD_LABELS
OPERATOR_POD_LABELS = {"app": f"{STACK_CHART}-operator"}
OPERATOR_WEBHOOK_PORT = 10250
# Every object this program adds to a county for monitoring carries this label (and the county's).
COUNTY_LABELS = {"app.kubernetes.io/part-of": "cht", "app.kubernetes.io/managed-by": "cht-hosting", "cht-hosting/monitoring": "true"}
COUCHDB_CLAIMS = r"couchdb(-[0-9]+)?-claim0"
COUCHDB_DEPLOYMENTS = r"cht-couchdb(-[0-9]+)?"
# The backup side (components/backup): Velero's metrics Service (its chart's labels and port), the drill.
VELERO_SERVICE_LABELS = {"app.kubernetes.io/name": "velero", "app.kubernetes.io/instance": backup_render.RELEASE}
VELERO_METRICS_PORT = "http-monitoring"  # vmware-tanzu/helm-charts velero-12.1.0 templates/service.yaml
# kube-prometheus-stack default alerts the platform turns off (`defaultRules.disabled`) and replaces with its
# own of the same name: a county's quota (config/sizing.py) and the monitoring namespace's admit exactly the
# volumes the program creates, so claims and storage are always 100% used by design. A claim beyond them is
# refused, and what needed it shows in the workload alerts (replicas mismatch, pod not ready).
CHART_ALERTS_REPLACED = ("KubeQuotaFullyUsed",)
FULL_BY_DESIGN = ("persistentvolumeclaims", "requests.storage")
# The chart's KubeQuotaAlmostFull fires above 90% used: the monitoring namespace's steady use stays below this.
QUOTA_STEADY_USE = 0.85


def api_url(namespace: str) -> str:
    """The county's API inside the cluster (the scrape never leaves it; Watchdog outside uses the host)."""
    from components.cht.render import API_PORT, svc_host

    return f"http://{svc_host('api', namespace)}:{API_PORT}"


# --- the Watchdog target list ------------------------------------------------------------------------------


def watchdog_targets(urls: dict[str, str]) -> str:
    """`cht-instances.yml` for Medic's CHT Watchdog: Prometheus file_sd, one `{targets: [url]}` per county,
    in county-name order so an added county is one added entry."""
    entries = [{"targets": [urls[county]]} for county in sorted(urls)]
    return yaml.safe_dump(entries, default_flow_style=False, sort_keys=False)


# --- the json-exporter module: Watchdog's metric names, from the /api/v2/monitoring fields ----------------

# /api/v2/monitoring's database keys and the `db` label Watchdog gives each.
_DATABASES = {"medic": "medic", "sentinel": "sentinel", "usersmeta": "medic-users-meta", "users": "_users"}
_VIEW_INDEXES = {
    "medic": ("medic", "medic-admin", "medic-client", "medic-conflicts", "medic-scripts", "medic-sms"),
    "sentinel": ("sentinel",),
    "usersmeta": ("users-meta",),
    "users": ("users",),
}
_NOUVEAU_INDEXES = ("contacts_by_freetext", "reports_by_freetext")
_MESSAGE_STATUSES = {
    "pending": ("pending", "forwarded-to-gateway", "received-by-gateway", "forwarded-by-gateway"),
    "final": ("sent", "delivered", "failed"),
    "muted": ("denied", "cleared", "muted", "duplicate"),
}
_MESSAGE_TOTALS = ("due", "scheduled", "muted", "failed", "delivered")


@dataclass(frozen=True)
class _Metric:
    name: str
    help: str
    valuetype: str


_DOC_TOTAL = _Metric("cht_couchdb_doc_total", "The number of docs in the db.", "counter")
_DOC_DEL_TOTAL = _Metric("cht_couchdb_doc_del_total", "The number of deleted docs in the db.", "counter")
_FRAGMENTATION = _Metric("cht_couchdb_fragmentation", "Fragmentation of the db on disk (1 is none).", "gauge")
_SIZE = _Metric("cht_couchdb_size_bytes", "Size of the db in bytes, without view indexes.", "gauge")
_UPDATE_SEQ = _Metric("cht_couchdb_update_sequence", "The number of changes in the db.", "counter")
_VIEW_SIZE = _Metric("cht_couchdb_view_index_size_bytes", "Size of a CouchDB view index in bytes.", "gauge")
_NOUVEAU_SIZE = _Metric("cht_couchdb_nouveau_index_size_bytes", "Size of a Nouveau index in bytes.", "gauge")
_LAST_HUNDRED = _Metric("cht_messaging_outgoing_last_hundred", "Statuses of the last 100 messages.", "gauge")
_MESSAGES_TOTAL = _Metric("cht_messaging_outgoing_total", "Outgoing messages by status.", "counter")


def _entry(metric: _Metric, path: str, **labels: str) -> dict:
    entry = {"name": metric.name, "help": metric.help, "valuetype": metric.valuetype, "path": path}
    if labels:
        entry["labels"] = labels
    return entry


def _scalar(name: str, path: str, help_: str, valuetype: str) -> dict:
    return {"name": name, "help": help_, "valuetype": valuetype, "path": path}


def json_exporter_metrics() -> list[dict]:
    """The `default` module's metrics: each field of /api/v2/monitoring under Watchdog's metric name."""
    metrics: list[dict] = [
        {
            "name": "cht",
            "type": "object",
            "help": "Version of the CHT instance (in labels).",
            "path": "{.version}",
            "labels": {"app": "{.app}", "node": "{.node}", "couchdb": "{.couchdb}"},
            "values": {"version": 1},
        },
        _scalar("cht_conflict_count", "{.conflict.count}", "Doc conflicts that need resolving by hand.", "gauge"),
        _scalar("cht_connected_users_count", "{.connected_users.count}", "Users connected in the interval.", "gauge"),
    ]
    for key, db in _DATABASES.items():
        base = f"{{.couchdb.{key}"
        metrics.append(_entry(_DOC_TOTAL, f"{base}.doc_count}}", db=db))
        metrics.append(_entry(_DOC_DEL_TOTAL, f"{base}.doc_del_count}}", db=db))
        metrics.append(_entry(_FRAGMENTATION, f"{base}.fragmentation}}", db=db))
        for kind in ("active", "file"):
            metrics.append(_entry(_SIZE, f"{base}.sizes.{kind}}}", db=db, type=kind))
        metrics.append(_entry(_UPDATE_SEQ, f"{base}.update_sequence}}", db=db))
        for index in _VIEW_INDEXES[key]:
            for kind in ("active", "file"):
                path = f'{base}.view_indexes[?(@.name=="{index}")].sizes.{kind}}}'
                metrics.append(_entry(_VIEW_SIZE, path, db=db, view_index=index, type=kind))
    for index in _NOUVEAU_INDEXES:
        path = f'{{.couchdb.medic.nouveau_indexes[?(@.name=="medic/{index}")].file_size}}'
        metrics.append(_entry(_NOUVEAU_SIZE, path, db="medic", nouveau_index=index, type="file"))
    metrics += [
        _scalar("cht_date_current_millis", "{.date.current}", "Server time, ms since the epoch.", "counter"),
        _scalar("cht_date_uptime_seconds", "{.date.uptime}", "How long API has been running.", "counter"),
        _scalar("cht_feedback_total", "{.feedback.count}", "Feedback docs (client-side errors).", "counter"),
    ]
    for group, statuses in _MESSAGE_STATUSES.items():
        for status in statuses:
            path = f"{{.messaging.outgoing.last_hundred.{group}.{status}}}"
            metrics.append(_entry(_LAST_HUNDRED, path, group=group, status=status))
    for status in _MESSAGE_TOTALS:
        metrics.append(_entry(_MESSAGES_TOTAL, f"{{.messaging.outgoing.total.{status}}}", status=status))
    metrics += [
        _scalar("cht_outbound_push_backlog_count", "{.outbound_push.backlog}", "Changes Outbound Push has yet to process.", "gauge"),
        _scalar("cht_replication_limit_count", "{.replication_limit.count}", "Users over the replication limit.", "gauge"),
        _scalar("cht_sentinel_backlog_count", "{.sentinel.backlog}", "Changes Sentinel has yet to process.", "gauge"),
    ]
    return metrics


def json_exporter_config() -> str:
    return yaml.safe_dump({"modules": {"default": {"metrics": json_exporter_metrics()}}}, sort_keys=False)


# --- chart values -------------------------------------------------------------------------------------------


def _restricted_container() -> dict:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
    }


def json_exporter_values(monitoring: MonitoringConfig) -> dict:
    """prometheus-json-exporter-0.19.2 values: Watchdog's module, sized, restricted, no ServiceMonitor
    (each county has its own Probe)."""
    return {
        "fullnameOverride": JSON_EXPORTER_RELEASE,
        "configuration": {"config": json_exporter_config()},
        "resources": monitoring_pods(monitoring)["json-exporter"].resources(),
        "podSecurityContext": {"runAsNonRoot": True, "runAsUser": 65534, "seccompProfile": {"type": "RuntimeDefault"}},
        "securityContext": _restricted_container(),
        "serviceMonitor": {"enabled": False},
        "service": {"port": JSON_EXPORTER_PORT},
    }


def stack_values(
    monitoring: MonitoringConfig, storage_class: str | None, mode: str, backup: BackupConfig | None = None
) -> dict:
    """kube-prometheus-stack-88.5.3 values for k3s: what k3s runs inside its own process (scheduler,
    controller-manager, proxy, etcd) is not scraped separately; the API-server scrape of each server's
    :6443/metrics carries k3s's supervisor metrics (`supervisor-metrics: true`, one registry per process)."""
    pods = monitoring_pods(monitoring)
    prometheus = monitoring.prometheus
    reloader = pods["prometheus-config-reloader"].resources()

    def claim(size_gi: int) -> dict:
        spec: dict = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": f"{size_gi}Gi"}}}
        if storage_class:
            spec["storageClassName"] = storage_class
        return {"volumeClaimTemplate": {"spec": spec}}

    k3s = mode == "vsphere-k3s"
    values: dict = {
        "fullnameOverride": STACK_RELEASE,
        # Helm installs CRDs only on the first install; the chart's upgrade Job (a pre-install/pre-upgrade hook,
        # charts/crds/templates/upgrade/job.yaml) applies the CRDs of the chart version being installed, so the
        # operator never runs against older CRDs after a stackChartVersion bump.
        "crds": {"enabled": True, "upgradeJob": {"enabled": True}},
        "grafana": {"enabled": False},  # dashboards: Medic's Watchdog (outside the cluster) has them
        "defaultRules": {
            "create": True,
            "rules": {
                # Not separate processes on k3s: their default alerts would fire for missing targets.
                "etcd": not k3s,
                "kubeControllerManager": not k3s,
                "kubeProxy": not k3s,
                "kubeSchedulerAlerting": not k3s,
                "kubeSchedulerRecording": not k3s,
                "windows": False,
            },
            # Replaced by the platform's own KubeQuotaFullyUsed (quota_rules): claims and storage are full by design.
            "disabled": {alert: True for alert in CHART_ALERTS_REPLACED},
        },
        "kubeControllerManager": {"enabled": not k3s},
        "kubeScheduler": {"enabled": not k3s},
        "kubeProxy": {"enabled": not k3s},
        "kubeEtcd": {"enabled": not k3s},
        "kubeApiServer": {"enabled": True},
        "kubelet": {"enabled": True},  # kubelet_volume_stats_*: the counties' volume alerts
        "kubeStateMetrics": {"enabled": True},
        "kube-state-metrics": {
            "resources": pods["kube-state-metrics"].resources(),
            # The restore drill's per-county results (annotations on the Schedules) as metrics.
            **(backup_drill.kube_state_metrics_values() if backup is not None and backup.drill.enabled else {}),
        },
        "nodeExporter": {"enabled": True, "operatingSystems": {"aix": {"enabled": False}, "darwin": {"enabled": False}}},
        "prometheus-node-exporter": {
            "namespaceOverride": NODE_EXPORTER_NAMESPACE,
            "resources": pods["node-exporter"].resources(),
            # Every node, the tainted servers (CriticalAddonsOnly=true:NoExecute) included.
            "tolerations": [{"operator": "Exists"}],
        },
        "prometheusOperator": {
            "resources": pods["prometheus-operator"].resources(),
            "prometheusConfigReloader": {"resources": reloader},
            "admissionWebhooks": {"patch": {"resources": reloader}},
        },
        "alertmanager": {
            "enabled": True,
            "alertmanagerSpec": {
                # The config (with the SMTP password and webhook URL) is our own Secret, never chart values.
                "useExistingSecret": True,
                "configSecret": ALERTMANAGER_SECRET,
                "resources": pods["alertmanager"].resources(),
                "storage": claim(ALERTMANAGER_STORAGE_GI),
            },
        },
        "prometheus": {
            "prometheusSpec": {
                "retention": f"{prometheus.retention_days}d",
                # Leave room below the volume: Prometheus stops at the size, never fills the disk.
                "retentionSize": f"{max(1, int(prometheus.storage_gb * 0.85))}GB",
                "resources": pods["prometheus"].resources(),
                "storageSpec": claim(prometheus.storage_gb),
                # Pick up every ServiceMonitor, Probe and PrometheusRule, whatever its namespace or labels:
                # the counties' own (in their namespaces) and the platform's.
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "podMonitorSelectorNilUsesHelmValues": False,
                "probeSelectorNilUsesHelmValues": False,
                "ruleSelectorNilUsesHelmValues": False,
                "scrapeConfigSelectorNilUsesHelmValues": False,
            },
        },
    }
    return values


# --- Alertmanager's configuration (a Secret: it carries the SMTP password and the webhook URL) ---------------


# kube-prometheus-stack 88.5.3 values.yaml `alertmanager.config.inhibit_rules`, kept as the chart has them: a
# critical alert silences the same alert's warning/info, a warning its info, and `InfoInhibitor` (firing while a
# namespace has info alerts and nothing worse) silences that namespace's info alerts.
CHART_INHIBIT_RULES = [
    {"source_matchers": ["severity = critical"], "target_matchers": ["severity =~ warning|info"], "equal": ["namespace", "alertname"]},
    {"source_matchers": ["severity = warning"], "target_matchers": ["severity = info"], "equal": ["namespace", "alertname"]},
    {"source_matchers": ["alertname = InfoInhibitor"], "target_matchers": ["severity = info"], "equal": ["namespace"]},
    {"target_matchers": ["alertname = InfoInhibitor"]},
]
HEARTBEAT_ALERT = "Watchdog"  # kube-prometheus-stack general.rules: `vector(1)`, always firing
HEARTBEAT_RECEIVER = "heartbeat"


def alertmanager_config(
    monitoring: MonitoringConfig,
    smtp_password: str | None,
    webhook_url: str | None,
    heartbeat_url: str | None = None,
) -> str:
    """alertmanager.yaml. Every warning and critical alert goes to the configured routes; info alerts (the
    chart's context alerts) and `InfoInhibitor` go nowhere; the always-firing `Watchdog` goes to the heartbeat
    receiver every `heartbeat.intervalMinutes` (a dead-man's switch outside the cluster notices when it stops),
    or nowhere without one."""
    receiver: dict = {"name": "operators"}
    email = monitoring.email
    if email is not None:
        entry: dict = {
            "to": ", ".join(email.to),
            "from": email.sender,
            "smarthost": email.smarthost,
            "require_tls": email.require_tls,
            "send_resolved": email.send_resolved,
        }
        if email.username:
            entry["auth_username"] = email.username
            entry["auth_password"] = smtp_password or ""
        receiver["email_configs"] = [entry]
    url = webhook_url or (monitoring.webhook.url if monitoring.webhook else None)
    if url:
        send_resolved = monitoring.webhook.send_resolved if monitoring.webhook else True
        receiver["webhook_configs"] = [{"url": url, "send_resolved": send_resolved}]
    receivers = [receiver, {"name": "null"}]
    heartbeat = monitoring.heartbeat
    beat_url = heartbeat_url or (heartbeat.url if heartbeat is not None else None)
    if heartbeat is not None and beat_url:
        minutes = heartbeat.interval_minutes
        # Sent at once, then again every interval (Alertmanager re-checks a group every group_interval).
        beat: dict = {
            "receiver": HEARTBEAT_RECEIVER,
            "matchers": [f'alertname = "{HEARTBEAT_ALERT}"'],
            "group_by": ["alertname"],
            "group_wait": "0s",
            "group_interval": "1m",
            "repeat_interval": f"{minutes}m",
        }
        receivers.append({"name": HEARTBEAT_RECEIVER, "webhook_configs": [{"url": beat_url, "send_resolved": False}]})
    else:
        beat = {"receiver": "null", "matchers": [f'alertname = "{HEARTBEAT_ALERT}"']}
    config = {
        "route": {
            "receiver": "operators",
            "group_by": ["alertname", "namespace", "instance"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "12h",
            "routes": [
                beat,
                {"receiver": "null", "matchers": ['alertname = "InfoInhibitor"']},
                {"receiver": "null", "matchers": ['severity = "info"']},
            ],
        },
        "inhibit_rules": CHART_INHIBIT_RULES,
        "receivers": receivers,
    }
    return yaml.safe_dump(config, sort_keys=False)


def heartbeat_route(monitoring: MonitoringConfig, heartbeat_secret: bool) -> str:
    """Where the heartbeat goes, for the plan (no secret in it)."""
    beat = monitoring.heartbeat
    if beat is None:
        return "nowhere: no dead-man's switch watches the alerting (monitoring.heartbeat)"
    where = "the URL in the secret monitoringHeartbeatUrl" if heartbeat_secret else beat.url
    return f"{HEARTBEAT_ALERT} every {beat.interval_minutes} min to {where}"


def routes(monitoring: MonitoringConfig, webhook_secret: bool) -> list[str]:
    """Where alerts go, for the plan (no secret in it)."""
    found = []
    if monitoring.email is not None:
        found.append(f"e-mail to {', '.join(monitoring.email.to)} via {monitoring.email.smarthost}")
    if webhook_secret:
        found.append("webhook (URL in the secret monitoringWebhookUrl)")
    elif monitoring.webhook is not None and monitoring.webhook.url:
        found.append(f"webhook {monitoring.webhook.url}")
    return found


# --- alert rules ---------------------------------------------------------------------------------------------


def _rule(alert: str, expr: str, for_: str, severity: str, summary: str, description: str) -> dict:
    return {
        "alert": alert,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity},
        "annotations": {"summary": summary, "description": description},
    }


# k3s pkg/etcd/snapshotmetrics/snapshotmetrics.go: histograms labelled status="success"|"error"
# (pkg/util/metrics ObserveWithStatus). No label value is created ahead, so a status's series first
# appears at 1, which increase() cannot see: `_counted` also counts a series younger than the window.
SNAPSHOT_SAVED = 'k3s_etcd_snapshot_save_duration_seconds_count{status="success"}'
SNAPSHOT_FAILED = 'k3s_etcd_snapshot_save_duration_seconds_count{status="error"}'
SNAPSHOT_UPLOAD_FAILED = 'k3s_etcd_snapshot_save_s3_duration_seconds_count{status="error"}'


def _counted(series: str, window: str) -> str:
    """The series of `series` that counted at least once in the last `window` (k3s restarts included)."""
    # `sum without ()` drops the metric name, so both sides of `or` carry the same labels (one alert each).
    return f"(increase({series}[{window}]) > 0 or sum without () ({series} unless {series} offset {window}))"


_CHANGES_HR = 'rate(cht_couchdb_update_sequence{db="medic"}[30d]) * 60 * 60'


def cht_rules() -> list[dict]:
    """CHT Watchdog 1.23.1's alerts (grafana/provisioning/alerting/cht.yml) as PromQL, same thresholds and
    `for`. Grafana joins series by their common labels; PromQL needs `on(instance)` where the two sides
    differ (the `db` label), and `group_left ()` to keep the alerting side's labels (`on` alone keeps only
    `instance`). Each county's probe sets `instance` to its host, as Watchdog does."""
    return [
        _rule(
            "ChtDbFragmentation",
            "(cht_couchdb_fragmentation and on (db, instance) (cht_couchdb_doc_total > 1000)) > 8",
            "1h", "warning", "CHT database highly fragmented",
            "The [{{ $labels.db }}] database for the CHT Server [{{ $labels.instance }}] is highly fragmented.",
        ),
        _rule(
            "ChtOutboundPushBacklog",
            f"deriv(cht_outbound_push_backlog_count[1h]) * 60 * 60 > on (instance) group_left () ({_CHANGES_HR} * 0.05 + 5)",
            "1h", "warning", "CHT outbound push backlog growing",
            "The outbound push backlog for the CHT Server [{{ $labels.instance }}] is growing.",
        ),
        _rule(
            "ChtSentinelBacklog",
            f"deriv(cht_sentinel_backlog_count[1h]) * 60 * 60 > on (instance) group_left () ({_CHANGES_HR} + 500)",
            "1h", "warning", "CHT Sentinel backlog growing",
            "The Sentinel backlog for the CHT Server [{{ $labels.instance }}] is growing.",
        ),
        _rule(
            "ChtServerTimeInaccurate",
            "floor(abs(cht_date_current_millis / 1000 - time())) > 300",
            "1h", "warning", "CHT server time is off",
            "The system time set for the CHT Server [{{ $labels.instance }}] is more than 5 minutes off.",
        ),
        _rule(
            "ChtUsersOverReplicationLimit",
            "deriv(cht_replication_limit_count[1d]) * 60 * 60 * 24 > on (instance) group_left () (cht_connected_users_count * 0.003 + 2)",
            "1h", "warning", "CHT users over the replication limit",
            "The CHT Server [{{ $labels.instance }}] has a high number of users over the replication limit.",
        ),
        _rule(
            "ChtApiServerDown",
            # Watchdog also alerts on no data: a county whose probe has vanished counts as down.
            f'up{{job="{PROBE_JOB}"}} < 1',
            "30m", "critical", "CHT API not responding",
            "CHT Server [{{ $labels.instance }}] is not responding!",
        ),
        _rule(
            "ChtClientFeedbackRate",
            "rate(cht_feedback_total[24h]) * 60 * 60 * 24 > on (instance) group_left () (cht_connected_users_count / 10)",
            "1m", "warning", "CHT client feedback/error rate high",
            "CHT Server [{{ $labels.instance }}] has a high rate of client feedback/error docs being created!",
        ),
        _rule(
            "ChtDbConflictsRate",
            f"deriv(cht_conflict_count[1h]) * 60 * 60 > on (instance) group_left () ({_CHANGES_HR} * 0.25 + 10)",
            "1m", "warning", "CHT document conflicts rising",
            "The CHT Server [{{ $labels.instance }}] has a high rate of document conflicts.",
        ),
        _rule(
            "ChtMessageDeliveryRate",
            # NaN (no messages) never compares true, as Watchdog's `!is_nan(...)` guard. The total carries only
            # `instance` (that is what `on` keeps), so the division matches on it, keeping the delivered side's labels.
            'rate(cht_messaging_outgoing_total{status="delivered"}[24h]) / on (instance) group_left () ('
            'rate(cht_messaging_outgoing_total{status="delivered"}[24h]) + on (instance) '
            'rate(cht_messaging_outgoing_total{status="failed"}[24h])) < 0.9',
            "1m", "warning", "CHT message delivery rate low",
            "Fewer than 90% of the CHT Server [{{ $labels.instance }}]'s messages were delivered in the last day.",
        ),
    ]


def platform_rules(monitoring: MonitoringConfig, mode: str, backup: BackupConfig | None = None) -> list[dict]:
    """The platform's alerts: nodes, CouchDB, volumes, k3s certificates and snapshots, backups, the drill."""
    a = monitoring.alerts
    cert_seconds = a.certificate_renewal_days * 86400
    rules = [
        _rule(
            "NodeNotReady",
            'kube_node_status_condition{condition="Ready",status="true"} == 0',
            "5m", "critical", "A node (server or agent) is not Ready",
            "Node {{ $labels.node }} has not been Ready for 5 minutes: its k3s service or the VM is down.",
        ),
        _rule(
            "NodeKubeletDown",
            'up{job="kubelet",metrics_path="/metrics"} == 0',
            "5m", "critical", "A node's kubelet cannot be scraped",
            "The kubelet (k3s agent) on {{ $labels.node }} ({{ $labels.instance }}) is not answering.",
        ),
        _rule(
            "CouchDbDown",
            f'kube_deployment_status_replicas_available{{deployment=~"{COUCHDB_DEPLOYMENTS}"}} < 1',
            "10m", "critical", "A county's CouchDB is down",
            "CouchDB {{ $labels.deployment }} of county {{ $labels.namespace }} has had no available pod for 10 minutes.",
        ),
        _rule(
            "CountyVolumeFilling",
            f'100 * kubelet_volume_stats_used_bytes{{persistentvolumeclaim=~"{COUCHDB_CLAIMS}"}} / '
            f'kubelet_volume_stats_capacity_bytes{{persistentvolumeclaim=~"{COUCHDB_CLAIMS}"}} > {a.volume_used_percent}',
            "15m", "warning", "A county's CouchDB volume is filling",
            f"Volume {{{{ $labels.persistentvolumeclaim }}}} of county {{{{ $labels.namespace }}}} is over "
            f"{a.volume_used_percent}% full; raise the county's couchdbStorageGb (it grows in place).",
        ),
        _rule(
            "CountyVolumeAlmostFull",
            f'100 * kubelet_volume_stats_used_bytes{{persistentvolumeclaim=~"{COUCHDB_CLAIMS}"}} / '
            f'kubelet_volume_stats_capacity_bytes{{persistentvolumeclaim=~"{COUCHDB_CLAIMS}"}} > 95',
            "5m", "critical", "A county's CouchDB volume is almost full",
            "Volume {{ $labels.persistentvolumeclaim }} of county {{ $labels.namespace }} is over 95% full: "
            "CouchDB stops writing when it is full. Raise couchdbStorageGb now.",
        ),
    ]
    rules += quota_rules()
    if backup is not None:
        rules += backup_rules(monitoring, backup)
    if mode == "vsphere-k3s":
        snapshot_window = f"{a.etcd_snapshot_max_age_hours}h"
        rules += [
            _rule(
                "K3sCertificateRenewalDue",
                f"k3s_certificate_expiration_seconds < {cert_seconds}",
                "1h", "warning", "A k3s certificate is within its renewal window",
                f"Certificate {{{{ $labels.subject }}}} ({{{{ $labels.usages }}}}) on {{{{ $labels.instance }}}} expires "
                f"in under {a.certificate_renewal_days} days. k3s renews it only when the service starts: restart k3s "
                "on that node (one server at a time), or run `k3s certificate rotate`.",
            ),
            _rule(
                "K3sCertificateExpiringSoon",
                "k3s_certificate_expiration_seconds < 14 * 86400",
                "1h", "critical", "A k3s certificate expires within two weeks",
                "Certificate {{ $labels.subject }} on {{ $labels.instance }} expires within 14 days; restart k3s on "
                "that node now.",
            ),
            _rule(
                "K3sSupervisorMetricsMissing",
                'absent(k3s_certificate_expiration_seconds{job="apiserver"})',
                "30m", "warning", "k3s supervisor metrics are not scraped",
                "No k3s supervisor metrics: the certificate and etcd snapshot alerts cannot work. Check that the "
                "servers run with supervisor-metrics: true and that Prometheus scrapes the API servers.",
            ),
            _rule(
                "EtcdSnapshotTooOld",
                f"(count({_counted(SNAPSHOT_SAVED, snapshot_window)}) or on () vector(0)) < 1 "
                # Quiet on a cluster younger than the window (no snapshot is due yet), as long as k3s runs.
                f'and on () max(time() - process_start_time_seconds{{job="apiserver"}}) > {a.etcd_snapshot_max_age_hours * 3600}',
                "30m", "critical", "No etcd snapshot lately",
                f"No server has completed an etcd snapshot in the last {a.etcd_snapshot_max_age_hours} hours.",
            ),
            _rule(
                "EtcdSnapshotFailed",
                f"{_counted(SNAPSHOT_FAILED, '1h')} or {_counted(SNAPSHOT_UPLOAD_FAILED, '1h')}",
                "0s", "critical", "An etcd snapshot failed",
                "An etcd snapshot (or its upload to S3) failed on {{ $labels.instance }} in the last hour.",
            ),
        ]
    return rules


def _quota_ratio(resources: str) -> str:
    """kube-prometheus-stack 88.5.3 kubernetes-resources.yaml's used/hard per quota resource, for `resources`."""

    def side(kind: str) -> str:
        return (
            "topk by (cluster, namespace, resource, resourcequota) (1, max without (instance, job, type) ("
            f'kube_resourcequota{{job="kube-state-metrics", type="{kind}", {resources}}}))'
        )

    return f"{side('used')} / on (cluster, namespace, resource, resourcequota) group_left() ({side('hard')} > 0)"


def quota_rules() -> list[dict]:
    """The chart's KubeQuotaFullyUsed (severity info, 15m) for every quota resource but those full by design."""
    watched = 'resource!~"' + "|".join(FULL_BY_DESIGN) + '"'
    return [
        _rule(
            "KubeQuotaFullyUsed",
            f"{_quota_ratio(watched)} == 1",
            "15m", "info", "Namespace quota is fully used.",
            "Namespace {{ $labels.namespace }} is using {{ $value | humanizePercentage }} of its "
            "{{ $labels.resource }} quota. (Claims and storage are full by design and not watched here.)",
        )
    ]


def backup_rules(monitoring: MonitoringConfig, backup: BackupConfig) -> list[dict]:
    """Velero's backups (every county's Schedule) and the restore drill's results per county (recorded on the
    Schedules, exported by kube-state-metrics: components/backup/drill.py), from the backup config."""
    a = monitoring.alerts
    rules = [
        _rule(
            "VeleroBackupTooOld",
            # Velero re-sets the timestamp from every Backup still kept (backup_controller.go
            # updateTotalBackupMetric), also a removed county's; the attempt counter exists only while its
            # Schedule does (metrics.go InitSchedule / RemoveSchedule).
            f'(time() - velero_backup_last_successful_timestamp{{schedule!=""}} > {a.backup_max_age_hours * 3600}) '
            "and on (schedule) velero_backup_attempt_total",
            "15m", "critical", "A county's last backup is too old",
            f"Backup schedule {{{{ $labels.schedule }}}} has had no successful backup for over "
            f"{a.backup_max_age_hours} hours.",
        ),
        _rule(
            "VeleroBackupNeverSucceeded",
            # Velero sets the attempt counters when a schedule is created, the timestamp only on success.
            'velero_backup_attempt_total{schedule!=""} > 0 unless on (schedule) velero_backup_last_successful_timestamp',
            f"{a.backup_max_age_hours}h", "critical", "A backup schedule has never succeeded",
            "Backup schedule {{ $labels.schedule }} has tried but never completed a backup.",
        ),
        county_backup_without_volume_data(a.backup_max_age_hours),
    ]
    if backup.drill.enabled:  # a suspended drill is a choice the plan shows, not an alert
        d = backup.drill
        rules += backup_drill.restore_drill_rules(
            velero_namespace=backup.velero.namespace,
            max_age_days=a.restore_drill_max_age_days,
            goal_minutes=d.restore_time_goal_minutes,
            goal_hours=d.recovery_point_goal_hours,
            # One county's drill ends (and records) within its timeout and cleanup: longer means it was killed.
            county_seconds=d.timeout_minutes * 60 + backup_drill.CLEANUP_SECONDS + 600,
        )
    return rules


# The node agent's gauge, one series per completed pod volume backup (velero v1.18.1
# pkg/controller/pod_volume_backup_controller.go: RegisterPodVolumeOpLatencyGauge with backupName
# "<namespace>/<backup>"; pkg/metrics/metrics.go: namespace "podVolume"). A scheduled backup is named
# "<schedule>-<yyyyMMddHHmmss>" (pkg/builder/backup_builder.go FromSchedule), so the schedule is recovered.
POD_VOLUME_BACKUPS_BY_SCHEDULE = (
    'count by (schedule) (label_replace(podVolume_pod_volume_operation_latency_seconds_gauge, '
    '"schedule", "$1", "backupName", "[^/]+/(county-.+)-[0-9]{14}"))'
)


def county_backup_without_volume_data(hours: int) -> dict:
    """A county's Schedule completed a backup in the last `hours` but no pod volume backup of that schedule
    completed: Velero skips every volume of a pod that is not Running and still reports Completed
    (velero v1.18.1 pkg/podvolume/backupper.go), so such a backup holds no CouchDB data. "Completed" here
    means the count of the schedule's pod volume backup series changed, or its series is younger than the
    window (a new county, a restarted node agent)."""
    window = f"[{hours}h:10m]"
    recent = (
        f"(changes(({POD_VOLUME_BACKUPS_BY_SCHEDULE}){window}) > 0) "
        f"or (count_over_time(({POD_VOLUME_BACKUPS_BY_SCHEDULE}){window}) < {hours * 6 - 6})"
    )
    return _rule(
        "CountyBackupWithoutVolumeData",
        f'(increase(velero_backup_success_total{{schedule=~"county-.+"}}[{hours}h]) > 0) unless on (schedule) ({recent})',
        "30m", "critical", "A county's backups hold no CouchDB volume data",
        f"Backup schedule {{{{ $labels.schedule }}}} completed backups in the last {hours} hours without a single "
        "CouchDB volume (its CouchDB was not running, or the node agent could not read it). Such a backup cannot "
        "restore the county: start CouchDB, take a backup, and see docs/backups.md.",
    )


def county_rules(
    county: str, namespace: str, settings: ChtSettings, monitoring: MonitoringConfig, backup: BackupConfig | None = None
) -> list[dict]:
    """The county's own alerts: what depends on its version or names, so adding it changes no shared rule."""
    claims = f'namespace="{namespace}",persistentvolumeclaim=~"{COUCHDB_CLAIMS}"'
    rules = [
        _rule(
            "ChtApiNotScraped",
            # Watchdog's "API Server Down" fires on no data too; a county's probe that yields nothing counts.
            f'absent(up{{job="{PROBE_JOB}",county="{county}"}})',
            "30m", "critical", "A county's CHT API is not being scraped",
            f"No scrape of county {county}'s /api/v2/monitoring for 30 minutes: its Probe or the json-exporter "
            "is missing.",
        ),
        _rule(
            "CountyVolumeMetricsMissing",
            f"absent(kubelet_volume_stats_capacity_bytes{{{claims}}})",
            "1h", "warning", "A county's volume usage is not measured",
            f"No volume metrics for county {county}: its volume alerts cannot fire. The CSI driver must report "
            "volume stats (NodeGetVolumeStats) and the kubelet must be scraped.",
        )
    ]
    if backup is not None:
        schedule = backup_render.schedule_name(county)
        rules.append(
            _rule(
                "CountyNeverBackedUp",
                # Velero publishes the timestamp once a schedule has a completed backup.
                f'absent(velero_backup_last_successful_timestamp{{schedule="{schedule}"}})',
                f"{monitoring.alerts.backup_max_age_hours}h", "critical", "A county has no successful backup",
                f"County {county} (Velero schedule {schedule}) has had no successful backup for "
                f"{monitoring.alerts.backup_max_age_hours} hours, or Velero's metrics are not scraped.",
            )
        )
    factor = monitoring.alerts.upgrade_headroom_factor
    if versions.major(settings.version) == 4:
        rules.append(
            _rule(
                "CountyUpgradeHeadroomLow",
                f"kubelet_volume_stats_capacity_bytes{{{claims}}} < {factor:g} * kubelet_volume_stats_used_bytes{{{claims}}}",
                "1h", "warning", "Not enough disk for the 4.x -> 5.x upgrade",
                f"County {county} runs CHT 4.x; the 4.x -> 5.x upgrade needs up to {factor:g}x the used "
                "disk and volume {{ $labels.persistentvolumeclaim }} is smaller. Raise couchdbStorageGb before upgrading.",
            )
        )
    return rules


def prometheus_rule_spec(group: str, rules: list[dict], interval: str | None = None) -> dict:
    entry: dict = {"name": group, "rules": rules}
    if interval:
        entry["interval"] = interval
    return {"groups": [entry]}


# --- per-county scrape objects --------------------------------------------------------------------------------


def county_probe_spec(county: str, namespace: str, host: str, monitoring: MonitoringConfig) -> dict:
    """Probe (monitoring.coreos.com/v1): the json-exporter reads the county's /api/v2/monitoring, as Watchdog's
    `cht` job does; `instance` is the county's host (Watchdog strips the scheme the same way)."""
    interval = f"{monitoring.scrape_interval_seconds}s"
    return {
        "jobName": PROBE_JOB,
        "interval": interval,
        "scrapeTimeout": f"{min(monitoring.scrape_interval_seconds, 30)}s",
        "module": "default",
        "prober": {
            "url": f"{JSON_EXPORTER_RELEASE}.{NAMESPACE}.svc:{JSON_EXPORTER_PORT}",
            "scheme": "http",
            "path": "/probe",
        },
        "targets": {
            "staticConfig": {
                "static": [f"{api_url(namespace)}{MONITORING_PATH}"],
                "labels": {"county": county},
                "relabelingConfigs": [{"targetLabel": "instance", "replacement": host, "action": "replace"}],
            }
        },
    }


def express_metrics_enabled(settings: ChtSettings) -> bool:
    release = versions.release(settings.version)
    return (release.major, release.minor, release.patch) >= EXPRESS_METRICS_SINCE


def county_service_monitor_spec(county: str, host: str, monitoring: MonitoringConfig) -> dict:
    """ServiceMonitor for the API's /api/v1/express-metrics (Watchdog's `cht-express-metrics` job)."""
    return {
        "selector": {"matchLabels": {"cht.service": "api"}},
        "endpoints": [
            {
                "port": "api",
                "path": EXPRESS_METRICS_PATH,
                "scheme": "http",
                "interval": f"{monitoring.scrape_interval_seconds}s",
                "relabelings": [
                    {"targetLabel": "job", "replacement": EXPRESS_JOB, "action": "replace"},
                    {"targetLabel": "instance", "replacement": host, "action": "replace"},
                    {"targetLabel": "county", "replacement": county, "action": "replace"},
                ],
            }
        ],
    }


# --- the monitoring namespace's own isolation ------------------------------------------------------------------


def namespace_labels() -> dict[str, str]:
    """Pod Security: baseline enforced (no host access, no privilege), restricted reported."""
    return {
        "app.kubernetes.io/managed-by": "cht-hosting",
        "pod-security.kubernetes.io/enforce": "baseline",
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/warn-version": "latest",
        "pod-security.kubernetes.io/audit": "restricted",
        "pod-security.kubernetes.io/audit-version": "latest",
    }


# Egress the monitoring namespace needs, beyond itself and DNS: pods elsewhere (the counties' API, Velero's
# metrics, CoreDNS's metrics) and the nodes' host network (the API server behind its Service and on each
# server, the kubelets, node-exporter), which only an address block can name.
SCRAPED_POD_PORTS = (API_PORT, 8085, 9153)  # the counties' API, Velero's metrics, CoreDNS's metrics
NODE_PORTS = (443, 6443, 10250, 9100)
ALERTMANAGER_POD_LABELS = {"app.kubernetes.io/name": "alertmanager"}


def namespace_network_policies() -> dict[str, dict]:
    """Ingress only from the namespace itself, plus the API server to the operator's admission webhook
    (the API server calls it from the servers' host network, so no pod selector can name it). Egress only
    to itself, DNS, what it scrapes and the API server; Alertmanager alone reaches out, to the receivers
    (SMTP server, webhooks) wherever the ministry runs them."""
    tcp = [{"protocol": "TCP", "port": port} for port in SCRAPED_POD_PORTS]
    return {
        "same-namespace-only": {
            "podSelector": {},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {}}]}],
        },
        "operator-webhook-from-api-server": {
            "podSelector": {"matchLabels": dict(OPERATOR_POD_LABELS)},
            "policyTypes": ["Ingress"],
            "ingress": [{"ports": [{"protocol": "TCP", "port": OPERATOR_WEBHOOK_PORT}]}],
        },
        "egress-scrapes-dns-and-api": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {"to": [{"podSelector": {}}]},
                {
                    "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": names.KUBE_SYSTEM}}}],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                },
                {"to": [{"namespaceSelector": {}}], "ports": tcp},
                {
                    "to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
                    "ports": [{"protocol": "TCP", "port": port} for port in NODE_PORTS],
                },
            ],
        },
        "alertmanager-to-receivers": {
            "podSelector": {"matchLabels": dict(ALERTMANAGER_POD_LABELS)},
            "policyTypes": ["Egress"],
            "egress": [{}],
        },
    }


def namespace_quota(monitoring: MonitoringConfig) -> dict[str, str]:
    """What the namespace may request: its pods (node-exporter runs in kube-system) plus one more of the
    largest Deployment pod, so a rolling update fits, and never so tight that steady use reads as almost full."""
    sizes = monitoring_pods(monitoring)
    pods = [p for p in sizes.values() if not p.per_node]
    deployments = [sizes[name] for name in ("prometheus-operator", "kube-state-metrics", "json-exporter")]
    surge_cpu = max(p.cpu_m for p in deployments)
    surge_mem = max(p.memory_mi for p in deployments)
    # Prometheus's and Alertmanager's init container (the config reloader) counts while they start.
    reloader = sizes["prometheus-config-reloader"]
    steady_cpu = sum(p.cpu_m * p.replicas for p in pods)
    steady_mem = sum(p.memory_mi * p.replicas for p in pods)
    cpu_m = max(steady_cpu + surge_cpu + 2 * reloader.cpu_m, math.ceil(steady_cpu / QUOTA_STEADY_USE))
    mem_mi = max(steady_mem + surge_mem + 2 * reloader.memory_mi, math.ceil(steady_mem / QUOTA_STEADY_USE))
    return {
        "requests.cpu": f"{cpu_m}m",
        "requests.memory": f"{mem_mi}Mi",
        "limits.cpu": f"{cpu_m * LIMIT_FACTOR}m",
        "limits.memory": f"{mem_mi * LIMIT_FACTOR}Mi",
        "persistentvolumeclaims": "2",
        "requests.storage": f"{monitoring.prometheus.storage_gb + ALERTMANAGER_STORAGE_GI}Gi",
        "services.loadbalancers": "0",
        "services.nodeports": "0",
    }


def limit_range() -> list[dict]:
    """Defaults for a container the charts leave unsized (e.g. a debug pod), so the quota admits it."""
    return [{"type": "Container", "defaultRequest": {"cpu": "10m", "memory": "32Mi"}, "default": {"cpu": "100m", "memory": "128Mi"}}]


def velero_service_monitor_spec(velero_namespace: str) -> dict:
    """Velero's metrics Service (velero chart: metrics.enabled, port `http-monitoring`), scraped from the
    monitoring namespace so the backup side needs no monitoring CRD of its own."""
    return {
        "namespaceSelector": {"matchNames": [velero_namespace]},
        "selector": {"matchLabels": dict(VELERO_SERVICE_LABELS)},
        "endpoints": [{"port": VELERO_METRICS_PORT, "path": "/metrics", "interval": "60s"}],
    }


def node_agent_pod_monitor_spec(velero_namespace: str) -> dict:
    """Velero's node agents (velero chart 12.1.0: port `http-monitoring` when metrics.enabled, pod labels of
    templates/node-agent-daemonset.yaml, as its own templates/podmonitor.yaml selects them): their pod volume
    backup metrics tell a backup with CouchDB data from one without."""
    return {
        "namespaceSelector": {"matchNames": [velero_namespace]},
        "selector": {"matchLabels": {**VELERO_SERVICE_LABELS, "name": "node-agent"}},
        "podMetricsEndpoints": [{"port": VELERO_METRICS_PORT, "path": "/metrics", "interval": "60s"}],
    }


def summary(
    monitoring: MonitoringConfig,
    mode: str,
    hosts: dict[str, str],
    webhook_secret: bool,
    backup: BackupConfig | None,
    heartbeat_secret: bool = False,
) -> dict:
    """What is watched and where alerts go: the stack output the offline plan prints (no secret in it)."""
    return {
        "namespace": NAMESPACE,
        "charts": {
            STACK_CHART: monitoring.stack_chart_version,
            JSON_EXPORTER_CHART: monitoring.json_exporter_chart_version,
        },
        "velero": backup.velero.namespace if backup is not None else None,
        "scrapes": {county: f"{api_url(names.namespace(county))}{MONITORING_PATH}" for county in sorted(hosts)},
        "alerts": sorted(r["alert"] for r in [*cht_rules(), *platform_rules(monitoring, mode, backup)]),
        "countyAlerts": sorted({r["alert"] for r in county_rules("county", "county", _FOUR_X, monitoring, backup)}),
        "routes": routes(monitoring, webhook_secret) or ["none: alerts are only visible in Alertmanager"],
        "heartbeat": heartbeat_route(monitoring, heartbeat_secret),
    }


# A stand-in county for listing the per-county alert names (a 4.x county has them all).
_FOUR_X = ChtSettings(version="4.22.0")
