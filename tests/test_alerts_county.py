"""Each county's own alerts (render.county_rules, in the county's PrometheusRule) under promtool.

Metrics: `up{job="cht", county}` is Prometheus's own per target of the county's Probe (render.county_probe_spec
sets `county`); kubelet `pkg/kubelet/metrics/collectors/volume_stats.go` `kubelet_volume_stats_*_bytes
{namespace, persistentvolumeclaim}`; velero v1.18.1 `pkg/metrics/metrics.go`
`velero_backup_last_successful_timestamp{schedule}` (set once the Schedule has a Completed Backup).
A removed county takes its PrometheusRule with it (a child of its ChtProject), so no rule names it after.
"""

from __future__ import annotations

from components.backup import render as backup_render
from components.monitoring import render
from config.model import BackupConfig, ChtSettings, MonitoringConfig
from tests.alerting import check, fires, only, quiet, series

MONITORING = MonitoringConfig()
BACKUP = BackupConfig.model_validate({"s3": {"endpoint": "https://s3.moh.example.org", "bucket": "cht"}})
GIB = 2**30


def rules_of(county: str, version: str = "4.22.0") -> list[dict]:
    return render.county_rules(county, county, ChtSettings(version=version), MONITORING, BACKUP)


def test_a_county_not_scraped_or_unmeasured_or_never_backed_up_alerts():
    rules = only(rules_of("kwale"), "ChtApiNotScraped", "CountyVolumeMetricsMissing", "CountyNeverBackedUp")
    schedule = backup_render.schedule_name("kwale")
    probe = {"job": "cht", "county": "kwale", "instance": "kwale.echis.example.org"}
    claim = {"job": "kubelet", "namespace": "kwale", "persistentvolumeclaim": "couchdb-claim0"}
    healthy = [
        series("up", "1x1700", **probe),
        series("kubelet_volume_stats_capacity_bytes", f"{20 * GIB}x1700", **claim),
        series("velero_backup_last_successful_timestamp", "0+60x1700", schedule=schedule),
    ]
    NOT_SCRAPED = {"job": "cht", "county": "kwale"}  # absent() keeps the selector's equality labels
    names = ("ChtApiNotScraped", "CountyVolumeMetricsMissing", "CountyNeverBackedUp")
    check(
        rules,
        (healthy, [quiet("27h", name) for name in names]),
        # Nothing of kwale reported (its probe or the exporters missing): each alert after its period.
        ([series("up", "1x1700", job="cht", county="lamu", instance="lamu.echis.example.org")],
         [quiet("25m", "ChtApiNotScraped"), fires("35m", "ChtApiNotScraped", {"severity": "critical", **NOT_SCRAPED}),
          fires("65m", "CountyVolumeMetricsMissing", {"severity": "warning", "namespace": "kwale"}),
          quiet("25h", "CountyNeverBackedUp"), fires("27h", "CountyNeverBackedUp", {"severity": "critical", "schedule": schedule})]),
        # The probe comes back: resolved.
        ([series("up", "_x60 1x60", **probe)],
         [fires("55m", "ChtApiNotScraped", {"severity": "critical", **NOT_SCRAPED}), quiet("62m", "ChtApiNotScraped")]),
    )


def test_a_4x_county_warns_below_the_upgrade_headroom_and_a_5x_county_never():
    rules = only(rules_of("kwale"), "CountyUpgradeHeadroomLow")
    claim = {"job": "kubelet", "namespace": "kwale", "persistentvolumeclaim": "couchdb-claim0"}
    neighbour = {"job": "kubelet", "namespace": "lamu", "persistentvolumeclaim": "couchdb-claim0"}
    check(
        rules,
        ([series("kubelet_volume_stats_capacity_bytes", f"{100 * GIB}x200", **claim),
          series("kubelet_volume_stats_used_bytes", f"{15 * GIB}x60 {25 * GIB}x80 {15 * GIB}x60", **claim),
          series("kubelet_volume_stats_capacity_bytes", f"{10 * GIB}x200", **neighbour),
          series("kubelet_volume_stats_used_bytes", f"{9 * GIB}x200", **neighbour)],
         [quiet("59m", "CountyUpgradeHeadroomLow"), fires("130m", "CountyUpgradeHeadroomLow", {"severity": "warning", **claim}),
          quiet("190m", "CountyUpgradeHeadroomLow")]),
    )
    assert "CountyUpgradeHeadroomLow" not in {r["alert"] for r in rules_of("kwale", "5.2.0")}


def test_county_rules_select_only_their_own_county():
    """So a removed county's vanished series raise nothing in the counties that remain."""
    for rule in rules_of("kwale"):
        assert 'county="kwale"' in rule["expr"] or 'namespace="kwale"' in rule["expr"] or (
            f'schedule="{backup_render.schedule_name("kwale")}"' in rule["expr"]
        ), rule["alert"]


def test_a_removed_county_leaves_no_rule_behind(national):
    """Every county's rules are in its own PrometheusRule, in its own namespace: removed with it."""
    for rule in national.of_type("kubernetes:monitoring.coreos.com/v1:PrometheusRule"):
        namespace = rule.inputs["metadata"]["namespace"]
        if namespace == render.NAMESPACE:
            exprs = [r["expr"] for g in rule.inputs["spec"]["groups"] for r in g["rules"]]
            assert not any('county="' in e or ("absent(" in e and "schedule=" in e) for e in exprs), rule.name
            continue
        (group,) = rule.inputs["spec"]["groups"]
        assert all(f'"{namespace}"' in r["expr"] or "schedule=" in r["expr"] for r in group["rules"]), rule.name
