"""Chart values and configuration the monitoring stack installs: kube-prometheus-stack's and the json-exporter's
values (with Watchdog's json-exporter module) and Alertmanager's configuration.

Pure: nothing here imports Pulumi. Upstream pins:
- Medic's CHT Watchdog 1.23.1: `exporters/json/config/cht.yml` (the metric names the module yields).
- prometheus-community/helm-charts: kube-prometheus-stack-88.5.3 (with kube-state-metrics-8.4.0) and
  prometheus-json-exporter-0.19.2 (`values.yaml` keys).
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from components.backup import drill as backup_drill
from config import names
from config.capacity import monitoring_pods
from config.model import BackupConfig, MonitoringConfig

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
# kube-prometheus-stack default alerts the platform turns off (`defaultRules.disabled`) and replaces with its
# own of the same name (rules.quota_rules): a county's quota (config/sizing.py) and the monitoring namespace's
# admit exactly the volumes the program creates, so claims and storage are always 100% used by design.
CHART_ALERTS_REPLACED = ("KubeQuotaFullyUsed",)
# What kube-state-metrics exports of the counties' labels (its `--metric-labels-allowlist`, chart value
# `metricLabelsAllowlist`): the county rules (rules.county_rules) find the counties by them.
COUNTY_METRIC_LABELS = {
    "deployments": (names.COUNTY_LABEL, "cht.service"),
    "namespaces": (names.CHT_MAJOR_LABEL,),
}


def metric_labels_allowlist() -> list[str]:
    """kube-state-metrics' `--metric-labels-allowlist` entries (`<resource>=[<label>,...]`)."""
    return [f"{resource}=[{','.join(labels)}]" for resource, labels in COUNTY_METRIC_LABELS.items()]


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
            # Replaced by the platform's own KubeQuotaFullyUsed (rules.quota_rules): claims and storage are full by design.
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
            # The counties' labels the county rules key on (rules.county_rules).
            "metricLabelsAllowlist": metric_labels_allowlist(),
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
