"""The monitoring stack's alert rules: Watchdog's CHT alerts, the platform's, and the counties', as
PrometheusRule specs. The counties' rules are one group for every county, keyed by the labels each county's
objects carry (config/names.py) as kube-state-metrics exports them, so adding a county changes no rule.

Pure: nothing here imports Pulumi. Upstream pins:
- Medic's CHT Watchdog 1.23.1 `grafana/provisioning/alerting/cht.yml` (conditions, thresholds, `for`).
- kube-prometheus-stack-88.5.3 `templates/prometheus/rules-1.14/kubernetes-resources.yaml` (the quota ratio).
- kube-state-metrics v2.20.0 (chart kube-state-metrics-8.4.0) `internal/store/deployment.go` and
  `namespace.go` (`kube_deployment_labels`, `kube_namespace_labels`): an allowlisted label as `label_<name>`,
  every character of the name other than a letter, digit or `_` as `_` (`internal/store/utils.go`).
- k3s `pkg/etcd/snapshotmetrics` and docs `reference/metrics.md`; velero v1.18.1 `pkg/metrics/metrics.go`.
"""

from __future__ import annotations

import re

from components.backup import drill as backup_drill
from config import names
from config.model import BackupConfig, MonitoringConfig

from .scrape import PROBE_JOB

COUCHDB_CLAIMS = r"couchdb(-[0-9]+)?-claim0"
COUCHDB_DEPLOYMENTS = r"cht-couchdb(-[0-9]+)?"
FULL_BY_DESIGN = ("persistentvolumeclaims", "requests.storage")


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
        f'(increase(velero_backup_success_total{{schedule=~"{names.schedule_name(".+")}"}}[{hours}h]) > 0) '
        f"unless on (schedule) ({recent})",
        "30m", "critical", "A county's backups hold no CouchDB volume data",
        f"Backup schedule {{{{ $labels.schedule }}}} completed backups in the last {hours} hours without a single "
        "CouchDB volume (its CouchDB was not running, or the node agent could not read it). Such a backup cannot "
        "restore the county: start CouchDB, take a backup, and see docs/backups.md.",
    )


def _metric_label(label: str) -> str:
    """kube-state-metrics' name for an allowlisted Kubernetes label (internal/store/utils.go labelName)."""
    return "label_" + re.sub(r"[^a-zA-Z0-9_]", "_", label)


COUNTY = _metric_label(names.COUNTY_LABEL)
CHT_MAJOR = _metric_label(names.CHT_MAJOR_LABEL)
# The counties that run: each county's API Deployment (labelled with its county, components/cht/render.py),
# one series per county with `namespace` and `county`. A removed county's Deployment goes with it, while its
# namespace (kept with its volumes) stays: so no county alert names a county that left config.
COUNTIES = (
    f'max by (namespace, county) (label_replace(kube_deployment_labels{{{_metric_label("cht.service")}="api", '
    f'{COUNTY}!=""}}, "county", "$1", "{COUNTY}", "(.+)"))'
)


def county_rules(monitoring: MonitoringConfig, backup: BackupConfig | None = None) -> list[dict]:
    """Every county's own alerts in one group, keyed by the counties' labels: adding a county changes no rule,
    and a county's alert names it (`county`, `namespace`)."""
    claims = f'persistentvolumeclaim=~"{COUCHDB_CLAIMS}"'
    rules = [
        _rule(
            "ChtApiNotScraped",
            # Watchdog's "API Server Down" fires on no data too; a county whose probe yields nothing counts.
            f'{COUNTIES} unless on (namespace) up{{job="{PROBE_JOB}"}}',
            "30m", "critical", "A county's CHT API is not being scraped",
            "No scrape of county {{ $labels.county }}'s /api/v2/monitoring for 30 minutes: its Ingress is not "
            "found by the Probe `cht-counties`, or the Probe or the json-exporter is missing.",
        ),
        _rule(
            "CountyVolumeMetricsMissing",
            f"{COUNTIES} unless on (namespace) kubelet_volume_stats_capacity_bytes{{{claims}}}",
            "1h", "warning", "A county's volume usage is not measured",
            "No volume metrics for county {{ $labels.county }}: its volume alerts cannot fire. The CSI driver must "
            "report volume stats (NodeGetVolumeStats) and the kubelet must be scraped.",
        ),
    ]
    if backup is not None:
        hours = monitoring.alerts.backup_max_age_hours
        # The county's Schedule by Velero's name for it.
        schedule = names.schedule_name("$1")
        rules.append(
            _rule(
                "CountyNeverBackedUp",
                # Velero publishes the timestamp once a schedule has a completed backup.
                f'label_replace({COUNTIES}, "schedule", "{schedule}", "county", "(.+)") '
                "unless on (schedule) velero_backup_last_successful_timestamp",
                f"{hours}h", "critical", "A county has no successful backup",
                "County {{ $labels.county }} (Velero schedule {{ $labels.schedule }}) has had no successful backup "
                f"for {hours} hours, or Velero's metrics are not scraped.",
            )
        )
    factor = monitoring.alerts.upgrade_headroom_factor
    rules.append(
        _rule(
            "CountyUpgradeHeadroomLow",
            # Counties on CHT 4.x in config (their namespace's label): the upgrade to 5.x rebuilds the views.
            f"(kubelet_volume_stats_capacity_bytes{{{claims}}} < {factor:g} * kubelet_volume_stats_used_bytes{{{claims}}}) "
            f'and on (namespace) kube_namespace_labels{{{CHT_MAJOR}="4"}}',
            "1h", "warning", "Not enough disk for the 4.x -> 5.x upgrade",
            f"County {{{{ $labels.namespace }}}} runs CHT 4.x; the 4.x -> 5.x upgrade needs up to {factor:g}x the "
            "used disk and volume {{ $labels.persistentvolumeclaim }} is smaller. Raise couchdbStorageGb before upgrading.",
        )
    )
    return rules


def prometheus_rule_spec(group: str, rules: list[dict], interval: str | None = None) -> dict:
    entry: dict = {"name": group, "rules": rules}
    if interval:
        entry["interval"] = interval
    return {"groups": [entry]}
