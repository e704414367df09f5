"""The counties' alerts (rules.county_rules, one PrometheusRule `cht-counties` for every county) under promtool.

Metrics: kube-state-metrics v2.20.0 `internal/store/deployment.go` `kube_deployment_labels{namespace, deployment,
label_<allowlisted label>}` and `namespace.go` `kube_namespace_labels{namespace, label_...}` (the chart's
metricLabelsAllowlist: values.COUNTY_METRIC_LABELS); `up{job="cht", namespace, county}` is Prometheus's own per
target of the Probe `cht-counties` (offline/scrapes.py shows each county's target and labels); kubelet
`pkg/kubelet/metrics/collectors/volume_stats.go` `kubelet_volume_stats_*_bytes{namespace, persistentvolumeclaim}`;
velero v1.18.1 `pkg/metrics/metrics.go` `velero_backup_last_successful_timestamp{schedule}` (set once the Schedule
has a completed Backup).
"""

from __future__ import annotations

from components.monitoring import rules
from config.model import BackupConfig, MonitoringConfig
from config.names import schedule_name
from tests.alerting import check, fires, only, quiet, series

MONITORING = MonitoringConfig()
BACKUP = BackupConfig.model_validate({"s3": {"endpoint": "https://s3.moh.example.org", "bucket": "cht"}})
GIB = 2**30
KSM = {"job": "kube-state-metrics"}


def api(county: str, values: str = "1x1700") -> dict:
    """The county's API Deployment as kube-state-metrics exports its labels."""
    return series("kube_deployment_labels", values, **KSM, namespace=county, deployment="cht-api",
                  label_cht_service="api", label_cht_hosting_county=county)


def cht_major(county: str, major: str) -> dict:
    return series("kube_namespace_labels", "1x1700", **KSM, namespace=county, label_cht_hosting_cht_major=major)


def test_a_county_not_scraped_or_unmeasured_or_never_backed_up_alerts():
    picked = only(rules.county_rules(MONITORING, BACKUP), "ChtApiNotScraped", "CountyVolumeMetricsMissing", "CountyNeverBackedUp")
    schedule = schedule_name("kwale")
    probe = {"job": "cht", "namespace": "kwale", "county": "kwale", "instance": "kwale.echis.example.org"}
    claim = {"job": "kubelet", "namespace": "kwale", "persistentvolumeclaim": "couchdb-claim0"}
    healthy = [
        api("kwale"),
        series("up", "1x1700", **probe),
        series("kubelet_volume_stats_capacity_bytes", f"{20 * GIB}x1700", **claim),
        series("velero_backup_last_successful_timestamp", "0+60x1700", schedule=schedule),
    ]
    county = {"namespace": "kwale", "county": "kwale"}
    names = ("ChtApiNotScraped", "CountyVolumeMetricsMissing", "CountyNeverBackedUp")
    check(
        picked,
        (healthy, [quiet("27h", name) for name in names]),
        # kwale runs but nothing of it is reported (its probe target or the exporters missing), while lamu is
        # well: each alert after its period, for kwale alone.
        ([api("kwale"), api("lamu"),
          series("up", "1x1700", job="cht", namespace="lamu", county="lamu", instance="lamu.echis.example.org"),
          series("kubelet_volume_stats_capacity_bytes", f"{20 * GIB}x1700", job="kubelet", namespace="lamu",
                 persistentvolumeclaim="couchdb-claim0"),
          series("velero_backup_last_successful_timestamp", "0+60x1700", schedule=schedule_name("lamu"))],
         [quiet("25m", "ChtApiNotScraped"), fires("35m", "ChtApiNotScraped", {"severity": "critical", **county}),
          fires("65m", "CountyVolumeMetricsMissing", {"severity": "warning", **county}),
          quiet("25h", "CountyNeverBackedUp"),
          fires("27h", "CountyNeverBackedUp", {"severity": "critical", **county, "schedule": schedule})]),
        # The probe comes back: resolved.
        ([api("kwale"), series("up", "_x60 1x60", **probe)],
         [fires("55m", "ChtApiNotScraped", {"severity": "critical", **county}), quiet("62m", "ChtApiNotScraped")]),
    )


def test_a_removed_county_raises_nothing():
    """Its API Deployment goes with it; its namespace (kept with its volumes) stays labelled, and raises nothing."""
    picked = only(rules.county_rules(MONITORING, BACKUP), "ChtApiNotScraped", "CountyVolumeMetricsMissing", "CountyNeverBackedUp")
    removed = [api("kwale", "1x30"), cht_major("kwale", "4"),
               series("kube_namespace_labels", "1x1700", **KSM, namespace="kwale", label_cht_hosting_county="kwale")]
    check(picked, (removed, [quiet(at, name) for at in ("2h", "27h") for name in
                             ("ChtApiNotScraped", "CountyVolumeMetricsMissing", "CountyNeverBackedUp")]))


def test_a_4x_county_warns_below_the_upgrade_headroom_and_a_5x_county_never():
    picked = only(rules.county_rules(MONITORING), "CountyUpgradeHeadroomLow")
    claim = {"job": "kubelet", "namespace": "kwale", "persistentvolumeclaim": "couchdb-claim0"}
    neighbour = {"job": "kubelet", "namespace": "lamu", "persistentvolumeclaim": "couchdb-claim0"}
    check(
        picked,
        ([cht_major("kwale", "4"), cht_major("lamu", "5"),
          series("kubelet_volume_stats_capacity_bytes", f"{100 * GIB}x200", **claim),
          series("kubelet_volume_stats_used_bytes", f"{15 * GIB}x60 {25 * GIB}x80 {15 * GIB}x60", **claim),
          # lamu runs 5.x: its full volume is the volume alerts' business, not the upgrade's.
          series("kubelet_volume_stats_capacity_bytes", f"{10 * GIB}x200", **neighbour),
          series("kubelet_volume_stats_used_bytes", f"{9 * GIB}x200", **neighbour)],
         [quiet("59m", "CountyUpgradeHeadroomLow"), fires("130m", "CountyUpgradeHeadroomLow", {"severity": "warning", **claim}),
          quiet("190m", "CountyUpgradeHeadroomLow")]),
    )


def test_one_rule_group_names_no_county(national):
    """Adding or removing a county changes no rule: no rule of the stack names a county; the county rules are
    in `cht-counties`, in the monitoring namespace, and the counties are found by their labels."""
    counties = set(national.outputs["counties"])
    prometheus_rules = national.of_type("kubernetes:monitoring.coreos.com/v1:PrometheusRule")
    assert {r.inputs["metadata"]["namespace"] for r in prometheus_rules} == {"monitoring"}
    for rule in prometheus_rules:
        for group in rule.inputs["spec"]["groups"]:
            for entry in group["rules"]:
                assert not any(f'"{county}"' in entry["expr"] or f"-{county}" in entry["expr"] for county in counties), entry["alert"]
    (county_rules,) = [r for r in prometheus_rules if r.inputs["metadata"]["name"] == "cht-counties"]
    assert {e["alert"] for g in county_rules.inputs["spec"]["groups"] for e in g["rules"]} == {
        r["alert"] for r in rules.county_rules(MONITORING, BACKUP)
    }
