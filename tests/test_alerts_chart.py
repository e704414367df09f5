"""kube-prometheus-stack 88.5.3's own alerts that the program keeps, under promtool with the program's values.

The rules are the chart's (tests/upstream.py KPS_ALERTS, read from templates/prometheus/rules-1.14/ at the tag);
the metrics are those the chart's exporters define at the versions it pins:
- kube-state-metrics (subchart 8.4.0): internal/store/pod.go `kube_pod_container_status_waiting_reason
  {namespace, pod, container, reason}`, `kube_pod_status_phase`; deployment.go `kube_deployment_spec_replicas`,
  `kube_deployment_status_replicas_available|updated`; job.go `kube_job_failed{job_name, condition}`;
  node.go `kube_node_status_condition{node, condition, status}`, `kube_node_info`,
  `kube_node_spec_unschedulable`, `kube_node_status_allocatable
  {node, resource}`; resourcequota.go `kube_resourcequota{namespace, resourcequota, resource, type}`.
- kubelet `pkg/kubelet/metrics/collectors/volume_stats.go`: `kubelet_volume_stats_{available,capacity,used}_bytes`.
- Prometheus's own: `up` per target; rules/manager.go `prometheus_rule_evaluation_failures_total`;
  notifier/notifier.go `prometheus_notifications_alertmanagers_discovered`.
- Alertmanager notify/notify.go `alertmanager_notifications_total` / `_failed_total{integration, reason}`.
Alerts that page a person: fires on the first failure, quiet when healthy, resolves after recovery.
"""

from __future__ import annotations

from components.monitoring import namespace, values
from config import capacity
from config.model import MonitoringConfig
from offline import alerts
from tests import tools, upstream
from tests.alerting import check, fires, quiet, series

KSM = {"job": "kube-state-metrics"}
GIB = 2**30


def chart(name: str, severity: str | None = None) -> dict:
    """The chart's rule `name` (the `severity` variant when it has two), as it renders it."""
    (row,) = [r for r in upstream.KPS_ALERTS if r[0] == name and severity in (None, r[3])]
    alert, _file, for_, level, expr = row
    return {"alert": alert, "expr": expr, "for": for_, "labels": {"severity": level}}


def test_the_program_keeps_these_alerts():
    """None of the alerts below is disabled by the program's values; the replaced one is its own rule."""
    disabled = values.stack_values(MonitoringConfig(), None, "vsphere-k3s")["defaultRules"]["disabled"]
    kept = {r[0] for r in upstream.KPS_ALERTS}
    assert set(disabled) == set(values.CHART_ALERTS_REPLACED) and set(disabled) <= kept


def test_watchdog_always_fires_and_info_inhibitor_yields_to_a_warning():
    """InfoInhibitor reads ALERTS: it fires while a namespace has only info alerts, so Alertmanager's inhibit
    rule (kept, tests/test_alertmanager.py) silences them, and stops once a warning fires there."""
    info = {"alert": "InfoAlert", "expr": 'quota_use{namespace="kwale"} > 0.9', "labels": {"severity": "info"}}
    warning = {"alert": "WarningAlert", "expr": 'couch_down{namespace="kwale"} > 0', "labels": {"severity": "warning"}}
    check(
        [chart("Watchdog"), info, warning, chart("InfoInhibitor")],
        ([series("quota_use", "0.95x60", namespace="kwale"), series("couch_down", "0x30 1x30", namespace="kwale")],
         [fires("5m", "Watchdog", {"severity": "none"}), fires("20m", "InfoInhibitor", {"severity": "none", "namespace": "kwale"}),
          quiet("45m", "InfoInhibitor")]),
        ([], [fires("1m", "Watchdog", {"severity": "none"}), quiet("30m", "InfoInhibitor")]),
    )


def test_target_down_crash_looping_and_replicas():
    rules = [chart("TargetDown"), chart("KubePodCrashLooping"), chart("KubeDeploymentReplicasMismatch")]
    api = {"job": "cht-express-metrics", "namespace": "kwale", "service": "api"}
    waiting = {**KSM, "namespace": "kwale", "pod": "cht-api-7d9f", "container": "cht-api", "reason": "CrashLoopBackOff"}
    deployment = {**KSM, "namespace": "kwale", "deployment": "cht-couchdb"}
    check(
        rules,
        ([series("up", "1x80", instance="a", **api), series("up", "1x10 0x40 1x30", instance="b", **api)],
         [quiet("15m", "TargetDown"), fires("25m", "TargetDown", {"severity": "warning", **api}), quiet("60m", "TargetDown")]),
        ([series("kube_pod_container_status_waiting_reason", "_x10 1x40 _x30", **waiting)],
         [quiet("15m", "KubePodCrashLooping"), fires("30m", "KubePodCrashLooping", {"severity": "warning", **waiting}),
          quiet("70m", "KubePodCrashLooping")]),
        ([series("kube_deployment_spec_replicas", "1x80", **deployment),
          series("kube_deployment_status_replicas_available", "1x10 0x40 1x30", **deployment),
          series("kube_deployment_status_replicas_updated", "1x80", **deployment)],
         [quiet("20m", "KubeDeploymentReplicasMismatch"),
          fires("30m", "KubeDeploymentReplicasMismatch", {"severity": "warning", **deployment}),
          quiet("60m", "KubeDeploymentReplicasMismatch")]),
    )


def test_failed_jobs_and_filling_volumes():
    rules = [chart("KubeJobFailed"), chart("KubePersistentVolumeFillingUp", "critical"), chart("KubePersistentVolumeFillingUp", "warning")]
    job = {**KSM, "namespace": "velero", "job_name": "restore-drill-29381", "condition": "true"}
    claim = {"job": "kubelet", "metrics_path": "/metrics", "namespace": "kwale", "persistentvolumeclaim": "couchdb-claim0"}
    size = 100 * GIB
    # Filling at 2 GiB an hour from 80% used: under 15% free after 2.5 h, full in well under four days.
    filling = f"{20 * GIB}-{2 * GIB // 60}x600"
    used = f"{80 * GIB}+{2 * GIB // 60}x600"
    check(
        rules,
        ([series("kube_job_failed", "0x10 1x30", **job)],
         [quiet("20m", "KubeJobFailed"), fires("30m", "KubeJobFailed", {"severity": "warning", **job})]),
        ([series("kubelet_volume_stats_capacity_bytes", f"{size}x600", **claim),
          series("kubelet_volume_stats_available_bytes", filling, **claim),
          series("kubelet_volume_stats_used_bytes", used, **claim)],
         [quiet("2h", "KubePersistentVolumeFillingUp"),
          fires("4h", "KubePersistentVolumeFillingUp", {"severity": "warning", **claim})]),
        ([series("kubelet_volume_stats_capacity_bytes", f"{size}x60", **claim),
          series("kubelet_volume_stats_available_bytes", f"{50 * GIB}x10 {2 * GIB}x30 {50 * GIB}x20", **claim),
          series("kubelet_volume_stats_used_bytes", f"{50 * GIB}x10 {98 * GIB}x30 {50 * GIB}x20", **claim)],
         [quiet("9m", "KubePersistentVolumeFillingUp"),
          fires("20m", "KubePersistentVolumeFillingUp", {"severity": "critical", **claim}),
          quiet("50m", "KubePersistentVolumeFillingUp")]),
    )


def test_nodes_kubelets_and_the_api_server():
    rules = [chart("KubeNodeNotReady"), chart("KubeletDown"), chart("KubeAPIDown")]
    ready = {**KSM, "node": "agent-3", "condition": "Ready", "status": "true"}
    kubelet = {"job": "kubelet", "metrics_path": "/metrics", "node": "agent-3"}
    check(
        rules,
        ([series("kube_node_status_condition", "1x10 0x30 1x20", **ready), series("kube_node_info", "1x60", **KSM, node="agent-3"),
          series("kube_node_spec_unschedulable", "0x60", **KSM, node="agent-3"),
          series("up", "1x10 0x30 1x20", **kubelet), series("up", "1x60", job="apiserver", instance="10.0.0.11:6443")],
         [quiet("20m", "KubeNodeNotReady"), fires("30m", "KubeNodeNotReady", {"severity": "warning", **ready}),
          fires("30m", "KubeletDown", {"severity": "critical"}), quiet("30m", "KubeAPIDown"),
          quiet("55m", "KubeNodeNotReady"), quiet("55m", "KubeletDown")]),
        ([series("up", "_x30", job="apiserver", instance="10.0.0.11:6443")],
         [fires("25m", "KubeAPIDown", {"severity": "critical", "job": "apiserver"})]),
    )


def test_quotas_healthy_in_the_monitoring_namespace_and_why_the_chart_fully_used_is_replaced():
    rules = [chart("KubeQuotaAlmostFull"), chart("KubeQuotaFullyUsed")]
    monitoring = MonitoringConfig()
    hard = namespace.namespace_quota(monitoring)
    pods = [p for p in capacity.monitoring_pods(monitoring).values() if not p.per_node]
    used = {
        "requests.cpu": sum(p.cpu_m * p.replicas for p in pods) / 1000,
        "requests.memory": sum(p.memory_mi * p.replicas for p in pods) * 2**20,
        "persistentvolumeclaims": 2,
    }
    quota = {**KSM, "namespace": "monitoring", "resourcequota": "monitoring-budget"}
    inputs = []
    for resource, value in used.items():
        inputs.append(series("kube_resourcequota", f"{alerts.quantity(hard[resource]):g}x30", resource=resource, type="hard", **quota))
        inputs.append(series("kube_resourcequota", f"{value:g}x30", resource=resource, type="used", **quota))
    pvc = {"namespace": "monitoring", "resourcequota": "monitoring-budget", "resource": "persistentvolumeclaims"}
    check(
        rules,
        # The namespace's steady use stays under 90% (no AlmostFull); its two volumes fill the claim quota, which
        # the chart's FullyUsed would report for ever: the program disables it for its own (test_alerts_platform).
        (inputs, [quiet("25m", "KubeQuotaAlmostFull"), fires("25m", "KubeQuotaFullyUsed", {"severity": "info", **pvc})]),
    )


def test_the_alerting_pipeline_watches_itself():
    rules = [chart("PrometheusRuleFailures"), chart("PrometheusNotConnectedToAlertmanagers"), chart("AlertmanagerFailedToSendAlerts")]
    prometheus = {"job": "monitoring-prometheus", "namespace": "monitoring", "pod": "prometheus-monitoring-prometheus-0"}
    alertmanager = {"job": "monitoring-alertmanager", "container": "alertmanager", "namespace": "monitoring", "integration": "webhook"}
    check(
        rules,
        ([series("prometheus_rule_evaluation_failures_total", "0x10 1+1x20 21x30", rule_group="cht-counties", **prometheus)],
         [quiet("9m", "PrometheusRuleFailures"),
          fires("28m", "PrometheusRuleFailures", {"severity": "critical", "rule_group": "cht-counties", **prometheus}),
          quiet("50m", "PrometheusRuleFailures")]),
        ([series("prometheus_notifications_alertmanagers_discovered", "1x10 0x30 1x20", **prometheus)],
         [quiet("12m", "PrometheusNotConnectedToAlertmanagers"),
          fires("30m", "PrometheusNotConnectedToAlertmanagers", {"severity": "warning", **prometheus}),
          quiet("55m", "PrometheusNotConnectedToAlertmanagers")]),
        ([series("alertmanager_notifications_total", "0+5x60", **alertmanager),
          series("alertmanager_notifications_failed_total", "0x10 0+5x20 100x30", reason="other", **alertmanager)],
         [quiet("9m", "AlertmanagerFailedToSendAlerts"),
          fires("30m", "AlertmanagerFailedToSendAlerts", {"severity": "warning", "reason": "other", **alertmanager}),
          quiet("58m", "AlertmanagerFailedToSendAlerts")]),
    )


def test_a_healthy_national_stack_fires_only_the_heartbeat(national):
    """Every rendered rule and the chart alerts above, at once, over what a healthy national cluster reports."""
    objects = alerts.Objects.of(national)
    kept = [chart(name, severity) for name, _f, _for, severity, _e in upstream.KPS_ALERTS if name not in values.CHART_ALERTS_REPLACED]
    groups = [*alerts.rule_groups(objects), {"name": "kube-prometheus-stack", "rules": kept}]
    fired = alerts.firing(tools.need("promtool"), groups, alerts.healthy_series(objects))
    assert set(fired) == {"Watchdog"}, alerts.summary_line(sum(len(g["rules"]) for g in groups), fired)
    assert len(fired["Watchdog"]) == 1
