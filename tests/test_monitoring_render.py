"""The monitoring renderers against their upstreams: Medic's CHT Watchdog 1.23.1 and the pinned charts."""

from __future__ import annotations

import re

import pytest
import yaml

from components.cht.render import API_PORT
from components.monitoring import render
from config import capacity
from config.model import BackupConfig, ChtSettings, MonitoringConfig
from tests import upstream

MONITORING = MonitoringConfig.model_validate(
    {
        "email": {
            "to": ["ops@moh.example.org", "oncall@moh.example.org"],
            "from": "alerts@moh.example.org",
            "smarthost": "smtp.moh.example.org:587",
            "username": "alerts",
        },
        "webhook": {"url": "https://hooks.moh.example.org/cht"},
    }
)

BACKUP = BackupConfig.model_validate({"s3": {"endpoint": "https://s3.moh.example.org", "bucket": "cht"}, "velero": {"namespace": "backups"}})

# Watchdog's Grafana rule titles (grafana/provisioning/alerting/cht.yml @ 1.23.1) -> our alert names.
WATCHDOG_ALERTS = {
    "DB Fragmentation": "ChtDbFragmentation",
    "Outbound Push Backlog": "ChtOutboundPushBacklog",
    "Sentinel Backlog": "ChtSentinelBacklog",
    "Server Time Accurate": "ChtServerTimeInaccurate",
    "Users Over Replication Limit": "ChtUsersOverReplicationLimit",
    "API Server Down": "ChtApiServerDown",
    "Client Feedback/Error Rate": "ChtClientFeedbackRate",
    "DB Conflicts Rate": "ChtDbConflictsRate",
    "Message Delivery Rate": "ChtMessageDeliveryRate",
}


def _flat(expr: str) -> str:
    return re.sub(r"\s+", "", expr)


# --- Watchdog: target list, scrape, metric names, alerts ------------------------------------------------------


def test_targets_have_the_shape_of_watchdogs_example():
    # cht-instances.example.yml @ 1.23.1: a list of {targets: [https://host]}.
    assert upstream.WATCHDOG_INSTANCE_KEYS == [["targets"]]
    ours = yaml.safe_load(render.watchdog_targets({"kwale": "https://kwale.example.org", "bomet": "https://bomet.example.org"}))
    assert [set(entry) for entry in ours] == [{"targets"}] * 2
    assert ours == [{"targets": ["https://bomet.example.org"]}, {"targets": ["https://kwale.example.org"]}]


def test_targets_add_one_entry_per_county_and_change_no_other():
    before = render.watchdog_targets({"a": "https://a.example.org", "c": "https://c.example.org"})
    after = render.watchdog_targets({"a": "https://a.example.org", "b": "https://b.example.org", "c": "https://c.example.org"})
    removed = [line for line in before.splitlines() if line not in after.splitlines()]
    added = [line for line in after.splitlines() if line not in before.splitlines()]
    assert removed == [] and added == ["  - https://b.example.org"]


def test_probe_reads_what_watchdogs_cht_job_reads():
    # exporters/json/config/scrape_config.yml @ 1.23.1, job `cht`.
    cht = upstream.WATCHDOG_CHT_JOB
    suffix = cht["target_replacement"].replace("${1}", "")
    exporter = cht["exporter_address"]

    spec = render.county_probe_spec("kwale", "kwale", "kwale.example.org", MONITORING)
    assert spec["jobName"] == cht["job_name"]
    assert spec["prober"]["path"] == cht["metrics_path"]
    assert [spec["module"]] == cht["module"]
    assert spec["prober"]["url"].endswith(":" + exporter.rsplit(":", 1)[1])
    (target,) = spec["targets"]["staticConfig"]["static"]
    assert target == f"http://api.kwale.svc.cluster.local:{API_PORT}{suffix}"
    assert suffix == render.MONITORING_PATH == "/api/v2/monitoring?connected_user_interval=30"
    # Watchdog's `instance` is the host without scheme; ours too, set after the operator's own relabeling.
    assert spec["targets"]["staticConfig"]["relabelingConfigs"] == [
        {"targetLabel": "instance", "replacement": "kwale.example.org", "action": "replace"}
    ]


def test_json_exporter_module_yields_watchdogs_metrics():
    # exporters/json/config/cht.yml @ 1.23.1: every metric Watchdog's dashboards and alerts read.
    def key(metric: dict) -> tuple:
        return (
            metric["name"],
            metric["path"],
            metric.get("type", "value"),
            metric.get("valuetype"),
            tuple(sorted((metric.get("labels") or {}).items())),
            tuple(sorted((metric.get("values") or {}).items())),
        )

    ours = yaml.safe_load(render.json_exporter_config())["modules"]["default"]["metrics"]
    assert sorted(map(key, ours)) == sorted(upstream.WATCHDOG_JSON_METRICS)


def test_every_watchdog_alert_is_a_rule_with_its_queries_thresholds_and_period():
    rules = upstream.WATCHDOG_ALERTS
    assert set(rules) == set(WATCHDOG_ALERTS), "Watchdog's alert list changed: map the new ones"
    ours = {rule["alert"]: rule for rule in render.cht_rules()}
    for title, rule in rules.items():
        mine = ours[WATCHDOG_ALERTS[title]]
        assert mine["for"] == rule["for"], title
        expr = _flat(mine["expr"]).replace("on(instance)", "")
        for query in rule["queries"]:  # PromQL: ours contains it as written
            assert _flat(query).replace("on(instance)", "") in expr, (title, query)
        if rule["threshold"]:
            kind, value = rule["threshold"]
            assert expr.endswith(f"{ {'gt': '>', 'lt': '<'}[kind]}{value:g}"), (title, mine["expr"])
        for expression in rule["math"]:
            for number in re.findall(r"(?<![\w.$])\d+(?:\.\d+)?", expression):
                assert re.search(rf"(?<![\w.]){re.escape(number)}(?![\w.])", expr), (title, number)


def test_rules_name_the_instance_and_have_severity():
    for rule in [*render.cht_rules(), *render.platform_rules(MONITORING, "vsphere-k3s", BACKUP)]:
        # info only for the chart's own info alerts the platform replaces (routed nowhere, like the chart's).
        allowed = ("warning", "critical", "info") if rule["alert"] in render.CHART_ALERTS_REPLACED else ("warning", "critical")
        assert rule["labels"]["severity"] in allowed
        assert rule["annotations"]["description"]
        # Balanced brackets: a cheap guard against a broken expression.
        for left, right in ("()", "{}", "[]"):
            assert rule["expr"].count(left) == rule["expr"].count(right), rule["alert"]


# --- platform and county alerts --------------------------------------------------------------------------------


def _alert(rules, name):
    return next(r for r in rules if r["alert"] == name)


def test_platform_alerts_cover_every_condition_with_config_thresholds():
    monitoring = MonitoringConfig.model_validate(
        {"alerts": {"volumeUsedPercent": 70, "certificateRenewalDays": 100, "etcdSnapshotMaxAgeHours": 13,
                    "backupMaxAgeHours": 30, "restoreDrillMaxAgeDays": 3}}
    )
    rules = render.platform_rules(monitoring, "vsphere-k3s", BACKUP)
    assert 'kube_node_status_condition{condition="Ready",status="true"} == 0' in _alert(rules, "NodeNotReady")["expr"]
    assert "cht-couchdb" in _alert(rules, "CouchDbDown")["expr"]
    assert _alert(rules, "CountyVolumeFilling")["expr"].endswith("> 70")
    # k3s docs reference/metrics.md: k3s_certificate_expiration_seconds (remaining lifetime, seconds).
    assert _alert(rules, "K3sCertificateRenewalDue")["expr"] == f"k3s_certificate_expiration_seconds < {100 * 86400}"
    # k3s pkg/etcd/snapshotmetrics: k3s_etcd_snapshot_save_duration_seconds{status="success"|"error"} (a histogram).
    assert 'k3s_etcd_snapshot_save_duration_seconds_count{status="success"}[13h]' in _alert(rules, "EtcdSnapshotTooOld")["expr"]
    assert 'status="error"' in _alert(rules, "EtcdSnapshotFailed")["expr"]
    assert f"> {30 * 3600}" in _alert(rules, "VeleroBackupTooOld")["expr"]  # behaviour: tests/test_alerts_*.py
    # The drill's results per county: annotations on the Schedules in Velero's namespace, through
    # kube-state-metrics (components/backup/drill.py; promtool tests in tests/test_alerts_restore_drill.py).
    assert _alert(rules, "RestoreDrillFailed")["expr"] == 'cht_hosting_restore_drill_ok{namespace="backups"} == 0'
    assert f"> {3 * 86400}" in _alert(rules, "RestoreDrillOverdue")["expr"]


def test_backup_alerts_follow_the_backup_config():
    without = {r["alert"] for r in render.platform_rules(MONITORING, "vsphere-k3s", None)}
    assert not {n for n in without if n.startswith(("Velero", "RestoreDrill"))}
    suspended = BACKUP.model_copy(update={"drill": BACKUP.drill.model_copy(update={"enabled": False})})
    names = {r["alert"] for r in render.platform_rules(MONITORING, "vsphere-k3s", suspended)}
    assert "VeleroBackupTooOld" in names and not {n for n in names if n.startswith("RestoreDrill")}
    county = render.county_rules("kwale", "kwale", ChtSettings(version="5.2.0"), MONITORING, BACKUP)
    # components/backup names each county's Schedule `county-<county>`.
    assert _alert(county, "CountyNeverBackedUp")["expr"] == 'absent(velero_backup_last_successful_timestamp{schedule="county-kwale"})'
    assert "CountyNeverBackedUp" not in {r["alert"] for r in render.county_rules("kwale", "kwale", ChtSettings(version="5.2.0"), MONITORING)}
    assert render.velero_service_monitor_spec("backups")["namespaceSelector"] == {"matchNames": ["backups"]}


def test_existing_cluster_has_no_k3s_alerts():
    names = {r["alert"] for r in render.platform_rules(MONITORING, "existing", BACKUP)}
    assert not {n for n in names if n.startswith(("K3s", "Etcd"))}
    assert {"NodeNotReady", "CouchDbDown", "VeleroBackupTooOld", "RestoreDrillFailed"} <= names


def test_a_4x_county_is_warned_below_the_upgrade_headroom():
    rules = render.county_rules("kwale", "kwale", ChtSettings(version="4.22.0"), MONITORING)
    headroom = _alert(rules, "CountyUpgradeHeadroomLow")
    claims = 'namespace="kwale",persistentvolumeclaim=~"couchdb(-[0-9]+)?-claim0"'
    assert headroom["expr"] == (
        f"kubelet_volume_stats_capacity_bytes{{{claims}}} < 5 * kubelet_volume_stats_used_bytes{{{claims}}}"
    )
    assert _alert(rules, "ChtApiNotScraped")["expr"] == 'absent(up{job="cht",county="kwale"})'
    five = render.county_rules("kwale", "kwale", ChtSettings(version="5.2.0"), MONITORING)
    assert "CountyUpgradeHeadroomLow" not in {r["alert"] for r in five}


# --- Alertmanager config -----------------------------------------------------------------------------------------


def test_alertmanager_routes_every_alert_to_email_and_webhook():
    config = yaml.safe_load(render.alertmanager_config(MONITORING, "s3cret-pw", None))
    (operators, null) = config["receivers"]
    assert config["route"]["receiver"] == "operators" and null == {"name": "null"}
    (email,) = operators["email_configs"]
    assert email == {
        "to": "ops@moh.example.org, oncall@moh.example.org",
        "from": "alerts@moh.example.org",
        "smarthost": "smtp.moh.example.org:587",
        "require_tls": True,
        "send_resolved": True,
        "auth_username": "alerts",
        "auth_password": "s3cret-pw",
    }
    assert operators["webhook_configs"] == [{"url": "https://hooks.moh.example.org/cht", "send_resolved": True}]


def test_a_secret_webhook_url_is_used_and_no_route_means_none():
    monitoring = MonitoringConfig.model_validate({"webhook": {"sendResolved": False}})
    config = yaml.safe_load(render.alertmanager_config(monitoring, None, "https://hooks.example.org/x?token=abc"))
    assert config["receivers"][0] == {
        "name": "operators",
        "webhook_configs": [{"url": "https://hooks.example.org/x?token=abc", "send_resolved": False}],
    }
    bare = yaml.safe_load(render.alertmanager_config(MonitoringConfig(), None, None))
    assert bare["receivers"][0] == {"name": "operators"}
    assert render.routes(MonitoringConfig(), webhook_secret=False) == []


# --- chart values against the pinned charts ------------------------------------------------------------------------


def _walk(ours: dict, upstream: dict, path: str, free: set[str], problems: list[str]) -> None:
    for key, value in ours.items():
        here = f"{path}.{key}" if path else key
        if here in free:
            continue
        if not isinstance(upstream, dict) or key not in upstream:
            problems.append(here)
            continue
        theirs = upstream[key]
        if isinstance(value, dict) and isinstance(theirs, dict) and theirs:
            _walk(value, theirs, here, free, problems)


def test_stack_values_are_keys_of_kube_prometheus_stack_88_5_3():
    # charts/kube-prometheus-stack/values.yaml @ kube-prometheus-stack-88.5.3; its subcharts at the versions
    # its Chart.yaml pins (kube-state-metrics 8.4.0, prometheus-node-exporter 4.56.1).
    subcharts = {"kube-state-metrics", "prometheus-node-exporter"}
    for values in (render.stack_values(MONITORING, "vmware-sc", "vsphere-k3s"), render.stack_values(MONITORING, None, "existing")):
        problems: list[str] = []
        # `configSecret` is documented commented out in values.yaml (see tests/upstream.py).
        _walk({k: v for k, v in values.items() if k not in subcharts}, upstream.KPS_VALUES, "",
              {"alertmanager.alertmanagerSpec.configSecret"}, problems)
        _walk(values["kube-state-metrics"], upstream.KSM_VALUES, "", set(), problems)
        _walk(values["prometheus-node-exporter"], upstream.NODE_EXPORTER_VALUES, "", set(), problems)
        assert problems == []
        assert set(values["defaultRules"]["rules"]) <= set(upstream.KPS_DEFAULT_RULES)


def test_json_exporter_values_are_keys_of_its_chart_0_19_2():
    problems: list[str] = []
    _walk(render.json_exporter_values(MONITORING), upstream.JSON_EXPORTER_VALUES, "", set(), problems)
    assert problems == []
    # The chart renders configuration.config into config.yml verbatim (templates/configmap.yaml).
    assert upstream.JSON_EXPORTER_CONFIG_IS_TEXT and isinstance(render.json_exporter_values(MONITORING)["configuration"]["config"], str)


def test_k3s_components_are_not_scraped_separately_and_alertmanager_reads_our_secret():
    values = render.stack_values(MONITORING, "vmware-sc", "vsphere-k3s")
    for part in ("kubeControllerManager", "kubeScheduler", "kubeProxy", "kubeEtcd"):
        assert values[part] == {"enabled": False}
    assert values["kubelet"]["enabled"] and values["kubeApiServer"]["enabled"]
    spec = values["alertmanager"]["alertmanagerSpec"]
    assert spec["useExistingSecret"] is True and spec["configSecret"] == render.ALERTMANAGER_SECRET
    assert "config" not in values["alertmanager"]  # nothing secret in chart values
    prometheus = values["prometheus"]["prometheusSpec"]
    assert prometheus["storageSpec"]["volumeClaimTemplate"]["spec"]["storageClassName"] == "vmware-sc"
    assert prometheus["retention"] == "60d"
    assert values["prometheus-node-exporter"]["tolerations"] == [{"operator": "Exists"}]
    existing = render.stack_values(MONITORING, None, "existing")
    assert existing["kubeEtcd"] == {"enabled": True}
    assert "storageClassName" not in existing["prometheus"]["prometheusSpec"]["storageSpec"]["volumeClaimTemplate"]["spec"]


def test_chart_resources_come_from_the_capacity_table():
    pods = capacity.monitoring_pods(MONITORING)
    values = render.stack_values(MONITORING, None, "vsphere-k3s")
    assert values["prometheus"]["prometheusSpec"]["resources"]["requests"] == {"cpu": "1000m", "memory": "4096Mi"}
    assert values["kube-state-metrics"]["resources"] == pods["kube-state-metrics"].resources()
    assert render.json_exporter_values(MONITORING)["resources"] == pods["json-exporter"].resources()


# --- isolation ---------------------------------------------------------------------------------------------------


def test_the_scrapers_counties_admit_are_the_pods_the_charts_run():
    """Each county's `api-inbound` policy admits names.SCRAPER_POD_LABELS (components/cht/render.py): Prometheus's
    pods (prometheus-operator labels them app.kubernetes.io/name=prometheus) and the json-exporter's (its chart's
    name label, prometheus-json-exporter-0.19.2 templates/_helpers.tpl selectorLabels)."""
    assert render.PROMETHEUS_POD_LABELS == {"app.kubernetes.io/name": "prometheus"}
    assert render.JSON_EXPORTER_POD_LABELS == {"app.kubernetes.io/name": render.JSON_EXPORTER_CHART}


def test_monitoring_namespace_quota_holds_its_pods():
    quota = render.namespace_quota(MONITORING)
    pods = [p for p in capacity.monitoring_pods(MONITORING).values() if not p.per_node]
    assert int(quota["requests.cpu"].rstrip("m")) >= sum(p.cpu_m for p in pods)
    assert int(quota["requests.memory"].rstrip("Mi")) >= sum(p.memory_mi for p in pods)
    assert quota["requests.storage"] == "51Gi" and quota["persistentvolumeclaims"] == "2"
    labels = render.namespace_labels()
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"


@pytest.mark.parametrize("version,expected", [("4.2.0", False), ("4.3.0", True), ("5.2.0", True)])
def test_express_metrics_only_where_the_endpoint_exists(version, expected):
    assert render.express_metrics_enabled(ChtSettings(version=version)) is expected


def test_monitoring_namespace_egress_reaches_only_what_it_scrapes():
    policies = render.namespace_network_policies()
    egress = policies["egress-scrapes-dns-and-api"]["egress"]
    pod_ports = next(rule for rule in egress if rule["to"] == [{"namespaceSelector": {}}])["ports"]
    # The counties' API port is the one the county's own policy opens to the scrapers.
    assert {"protocol": "TCP", "port": API_PORT} in pod_ports
    assert {p["port"] for p in pod_ports} == {API_PORT, 8085, 9153}
    node_ports = next(rule for rule in egress if "ipBlock" in rule["to"][0])["ports"]
    assert {p["port"] for p in node_ports} == {443, 6443, 10250, 9100}
    # Only Alertmanager goes anywhere (SMTP server, webhooks).
    assert policies["alertmanager-to-receivers"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "alertmanager"}}
