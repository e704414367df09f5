"""The platform's alerts (components/monitoring/rules.py platform_rules) under promtool: each fires on the
first failure, stays quiet when healthy and for a removed county, and resolves after recovery.

The metrics, as the exporters at the pinned versions define them:
- k3s (supervisor metrics on the API-server scrape, job `apiserver`):
  `pkg/etcd/snapshotmetrics/snapshotmetrics.go`: histograms `k3s_etcd_snapshot_save_duration_seconds` and
  `k3s_etcd_snapshot_save_s3_duration_seconds`, label `status` ("success"/"error", pkg/util/metrics
  ObserveWithStatus); no status is created ahead, so a status's `_count` series first appears at 1.
  `pkg/certmonitor/certmonitor.go`: gauge `k3s_certificate_expiration_seconds{subject, usages}`.
  `process_start_time_seconds`: client_golang's process collector, on every Kubernetes component's /metrics.
- velero v1.18.1 `pkg/metrics/metrics.go`: `velero_backup_last_successful_timestamp{schedule}` and
  `velero_backup_attempt_total{schedule}`; InitSchedule creates the counters (at 0) for each Schedule,
  RemoveSchedule deletes them, and `pkg/controller/backup_controller.go` updateTotalBackupMetric re-sets the
  timestamp every minute from every Completed Backup still kept, also a removed Schedule's.
- kube-state-metrics (kube-prometheus-stack 88.5.3's): `kube_node_status_condition{node, condition, status}`,
  `kube_deployment_status_replicas_available{namespace, deployment}`, `kube_resourcequota{namespace,
  resourcequota, resource, type}`; job.go `kube_job_status_failed{namespace, job_name}` and
  `kube_job_status_start_time`; cronjob.go `kube_cronjob_status_last_successful_time{namespace, cronjob}` and
  `kube_cronjob_created`.
- Prometheus's own `up{job="kubelet", metrics_path="/metrics"}` per node (the chart's kubelet ServiceMonitor).
- kubelet `pkg/kubelet/metrics/collectors/volume_stats.go`: `kubelet_volume_stats_{capacity,used}_bytes
  {namespace, persistentvolumeclaim}`.
"""

from __future__ import annotations

from components.monitoring import rules as monitoring_rules
from components.monitoring import values
from config.model import BackupConfig, MonitoringConfig
from tests.alerting import check, fires, only, quiet, series

MONITORING = MonitoringConfig()
BACKUP = BackupConfig.model_validate({"s3": {"endpoint": "https://s3.moh.example.org", "bucket": "cht"}})
RULES = monitoring_rules.platform_rules(MONITORING, "vsphere-k3s", BACKUP)
SERVER = {"job": "apiserver", "instance": "10.0.0.11:6443"}
SAVE = "k3s_etcd_snapshot_save_duration_seconds_count"
UPLOAD = "k3s_etcd_snapshot_save_s3_duration_seconds_count"


def test_etcd_snapshot_failed_fires_on_the_first_failure_and_resolves_an_hour_later():
    rules = only(RULES, "EtcdSnapshotFailed")
    critical = {"severity": "critical", **SERVER, "status": "error"}
    first = [series(SAVE, "1x300", status="success", **SERVER), series(SAVE, "_x120 1x180", status="error", **SERVER)]
    again = [series(SAVE, "_x120 1x240 2x120", status="error", **SERVER)]
    upload = [series(UPLOAD, "_x60 1x120", status="error", **SERVER)]
    healthy = [series(SAVE, "1+1x300", status="success", **SERVER), series(UPLOAD, "1+1x300", status="success", **SERVER)]
    check(
        rules,
        (first, [quiet("119m", "EtcdSnapshotFailed"), fires("121m", "EtcdSnapshotFailed", critical),
                 fires("170m", "EtcdSnapshotFailed", critical), quiet("185m", "EtcdSnapshotFailed")]),
        (again, [quiet("300m", "EtcdSnapshotFailed"), fires("362m", "EtcdSnapshotFailed", critical),
                 quiet("425m", "EtcdSnapshotFailed")]),
        (upload, [fires("61m", "EtcdSnapshotFailed", critical)]),
        (healthy, [quiet("30m", "EtcdSnapshotFailed"), quiet("290m", "EtcdSnapshotFailed")]),
    )


def test_etcd_snapshot_too_old_counts_the_first_snapshot_and_spares_a_young_cluster():
    rules = only(RULES, "EtcdSnapshotTooOld")
    critical = {"severity": "critical"}
    started = series("process_start_time_seconds", "0x2400", **SERVER)  # k3s started at 0
    # Every 12 h from 6 h; the success series is created by the first (at 1), after a restart too.
    twelve_hourly = series(SAVE, "_x360 1x720 2x720", status="success", **SERVER)
    once_then_none = series(SAVE, "_x360 1x2040", status="success", **SERVER)
    check(
        rules,
        ([started, twelve_hourly], [quiet("20h", "EtcdSnapshotTooOld"), quiet("29h", "EtcdSnapshotTooOld")]),
        ([started], [quiet("25h", "EtcdSnapshotTooOld"), fires("26h", "EtcdSnapshotTooOld", critical)]),
        ([started, once_then_none], [quiet("30h", "EtcdSnapshotTooOld"), fires("31h40m", "EtcdSnapshotTooOld", critical)]),
    )


def test_certificate_renewal_names_the_certificate_and_its_usages():
    rules = only(RULES, "K3sCertificateRenewalDue", "K3sCertificateExpiringSoon")
    labels = {**SERVER, "subject": "CN=kube-apiserver", "usages": "ServerAuth"}
    due = {
        "exp_labels": {"severity": "warning", **labels},
        "exp_annotations": {
            "summary": "A k3s certificate is within its renewal window",
            "description": "Certificate CN=kube-apiserver (ServerAuth) on 10.0.0.11:6443 expires in under 120 days. "
            "k3s renews it only when the service starts: restart k3s on that node (one server at a time), or run "
            "`k3s certificate rotate`.",
        },
    }
    renewed = f"{100 * 86400}-60x180 {300 * 86400}x60"  # 100 days left, then k3s restarted and renewed it
    check(
        rules,
        ([series("k3s_certificate_expiration_seconds", f"{200 * 86400}-60x120", **labels)],
         [quiet("90m", "K3sCertificateRenewalDue"), quiet("90m", "K3sCertificateExpiringSoon")]),
        ([series("k3s_certificate_expiration_seconds", renewed, **labels)],
         [{"eval_time": "90m", "alertname": "K3sCertificateRenewalDue", "exp_alerts": [due]},
          quiet("90m", "K3sCertificateExpiringSoon"), quiet("200m", "K3sCertificateRenewalDue")]),
        ([series("k3s_certificate_expiration_seconds", f"{10 * 86400}-60x120", **labels)],
         [quiet("30m", "K3sCertificateExpiringSoon")]),
        annotations=True,
    )
    check(rules, ([series("k3s_certificate_expiration_seconds", f"{10 * 86400}-60x120", **labels)],
                  [fires("90m", "K3sCertificateExpiringSoon", {"severity": "critical", **labels})]))


def test_velero_backup_too_old_only_while_the_county_schedule_exists():
    rules = only(RULES, "VeleroBackupTooOld", "VeleroBackupNeverSucceeded")
    velero = {"job": "velero", "namespace": "velero"}
    kept = {"schedule": "county-kwale", **velero}
    stale = series("velero_backup_last_successful_timestamp", "0x2000", **kept)  # last success at 0
    schedule = series("velero_backup_attempt_total", "1+0x2000", **kept)  # the Schedule exists
    recovered = series("velero_backup_last_successful_timestamp", "0x1680 100800x300", **kept)  # a backup at 28 h
    daily = series("velero_backup_last_successful_timestamp", "0+60x2000", **kept)  # always current
    never = series("velero_backup_attempt_total", "0+0.05x2000", schedule="county-lamu", **velero)
    check(
        rules,
        ([stale, schedule], [quiet("26h", "VeleroBackupTooOld"), fires("27h", "VeleroBackupTooOld", {"severity": "critical", **kept})]),
        # County removed: its Schedule's counters are gone, its kept Backups still set the timestamp.
        ([stale], [quiet("27h", "VeleroBackupTooOld"), quiet("33h", "VeleroBackupTooOld")]),
        ([recovered, schedule], [fires("27h", "VeleroBackupTooOld", {"severity": "critical", **kept}), quiet("28h10m", "VeleroBackupTooOld")]),
        ([daily, schedule], [quiet("33h", "VeleroBackupTooOld"), quiet("33h", "VeleroBackupNeverSucceeded")]),
        ([never], [quiet("20h", "VeleroBackupNeverSucceeded"),
                   fires("33h", "VeleroBackupNeverSucceeded", {"severity": "critical", "schedule": "county-lamu", **velero})]),
    )


def test_nodes_couchdb_and_volumes():
    rules = only(RULES, "NodeNotReady", "CouchDbDown", "CountyVolumeFilling", "CountyVolumeAlmostFull")
    ksm = {"job": "kube-state-metrics"}
    node = {**ksm, "node": "agent-3", "condition": "Ready", "status": "true"}
    couch = {**ksm, "namespace": "kwale", "deployment": "cht-couchdb"}
    couch_2 = {**ksm, "namespace": "nairobi", "deployment": "cht-couchdb-2"}
    claim = {"job": "kubelet", "namespace": "kwale", "persistentvolumeclaim": "couchdb-claim0"}
    other = {"job": "kubelet", "namespace": "monitoring", "persistentvolumeclaim": "prometheus-db"}
    gib = 2**30
    check(
        rules,
        ([series("kube_node_status_condition", "1x10 0x20 1x20", **node)],
         [quiet("9m", "NodeNotReady"), fires("17m", "NodeNotReady", {"severity": "critical", **node}), quiet("40m", "NodeNotReady")]),
        ([series("kube_deployment_status_replicas_available", "1x10 0x30 1x10", **couch),
          series("kube_deployment_status_replicas_available", "1x50", **couch_2)],
         [quiet("15m", "CouchDbDown"), fires("25m", "CouchDbDown", {"severity": "critical", **couch}), quiet("45m", "CouchDbDown")]),
        ([series("kubelet_volume_stats_capacity_bytes", f"{100 * gib}x60", **claim),
          series("kubelet_volume_stats_used_bytes", f"{50 * gib}x10 {85 * gib}x20 {97 * gib}x20 {40 * gib}x10", **claim),
          series("kubelet_volume_stats_capacity_bytes", f"{10 * gib}x60", **other),
          series("kubelet_volume_stats_used_bytes", f"{10 * gib}x60", **other)],
         [quiet("9m", "CountyVolumeFilling"), fires("28m", "CountyVolumeFilling", {"severity": "warning", **claim}),
          fires("45m", "CountyVolumeAlmostFull", {"severity": "critical", **claim}), quiet("58m", "CountyVolumeAlmostFull"),
          quiet("58m", "CountyVolumeFilling")]),
    )


def test_quota_fully_used_spares_the_resources_full_by_design():
    rules = only(RULES, "KubeQuotaFullyUsed")
    assert "KubeQuotaFullyUsed" in values.CHART_ALERTS_REPLACED
    assert values.stack_values(MONITORING, None, "vsphere-k3s")["defaultRules"]["disabled"] == {"KubeQuotaFullyUsed": True}
    quota = {"job": "kube-state-metrics", "namespace": "kwale", "resourcequota": "county-budget"}
    full = [
        series("kube_resourcequota", "3x30", resource=resource, type=kind, **quota)
        for resource in monitoring_rules.FULL_BY_DESIGN for kind in ("used", "hard")
    ]
    cpu = [series("kube_resourcequota", "2x30", resource="requests.cpu", type="hard", **quota),
           series("kube_resourcequota", "1.5x5 2x20 1x5", resource="requests.cpu", type="used", **quota)]
    info = {"severity": "info", "namespace": "kwale", "resourcequota": "county-budget", "resource": "requests.cpu"}
    check(
        rules,
        (full, [quiet("25m", "KubeQuotaFullyUsed")]),
        (full + cpu, [quiet("10m", "KubeQuotaFullyUsed"), fires("22m", "KubeQuotaFullyUsed", info), quiet("28m", "KubeQuotaFullyUsed")]),
    )


def test_kubelet_down_and_supervisor_metrics_missing():
    rules = only(RULES, "NodeKubeletDown", "K3sSupervisorMetricsMissing")
    kubelet = {"job": "kubelet", "metrics_path": "/metrics", "node": "agent-3", "instance": "10.0.0.23:10250"}
    cert = {**SERVER, "subject": "CN=kube-apiserver", "usages": "ServerAuth"}
    check(
        rules,
        ([series("up", "1x10 0x20 1x20", **kubelet), series("k3s_certificate_expiration_seconds", "3e7x60", **cert)],
         [quiet("12m", "NodeKubeletDown"), fires("20m", "NodeKubeletDown", {"severity": "critical", **kubelet}),
          quiet("35m", "NodeKubeletDown"), quiet("50m", "K3sSupervisorMetricsMissing")]),
        ([series("k3s_certificate_expiration_seconds", "_x40 3e7x30", **cert)],
         [quiet("25m", "K3sSupervisorMetricsMissing"),
          fires("35m", "K3sSupervisorMetricsMissing", {"severity": "warning", "job": "apiserver"}),
          quiet("50m", "K3sSupervisorMetricsMissing")]),
    )


# The restore drill's alerts (per county, from its Schedule): tests/test_alerts_restore_drill.py.


