"""The monitoring renderers against their upstreams: Medic's CHT Watchdog 1.23.1 and the pinned charts."""

from __future__ import annotations

import re

import pytest
import yaml

from components.cht import render as cht_render
from components.cht.render import API_PORT
from components.monitoring import namespace, rules, scrape, values
from config import capacity, names
from config.model import BackupConfig, ChtSettings, MonitoringConfig
from offline import scrapes
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
    ours = yaml.safe_load(scrape.watchdog_targets({"kwale": "https://kwale.example.org", "bomet": "https://bomet.example.org"}))
    assert [set(entry) for entry in ours] == [{"targets"}] * 2
    assert ours == [{"targets": ["https://bomet.example.org"]}, {"targets": ["https://kwale.example.org"]}]


def test_targets_add_one_entry_per_county_and_change_no_other():
    before = scrape.watchdog_targets({"a": "https://a.example.org", "c": "https://c.example.org"})
    after = scrape.watchdog_targets({"a": "https://a.example.org", "b": "https://b.example.org", "c": "https://c.example.org"})
    removed = [line for line in before.splitlines() if line not in after.splitlines()]
    added = [line for line in after.splitlines() if line not in before.splitlines()]
    assert removed == [] and added == ["  - https://b.example.org"]


def test_probe_reads_what_watchdogs_cht_job_reads():
    # exporters/json/config/scrape_config.yml @ 1.23.1, job `cht`.
    cht = upstream.WATCHDOG_CHT_JOB
    suffix = cht["target_replacement"].replace("${1}", "")
    exporter = cht["exporter_address"]

    spec = scrape.probe_spec(MONITORING.scrape_interval_seconds)
    assert spec["jobName"] == cht["job_name"]
    assert spec["prober"]["path"] == cht["metrics_path"]
    assert [spec["module"]] == cht["module"]
    assert spec["prober"]["url"].endswith(":" + exporter.rsplit(":", 1)[1])
    assert suffix == scrape.MONITORING_PATH == "/api/v2/monitoring?connected_user_interval=30"
    # One Probe for every county: what Prometheus makes of it for a county's Ingress (offline/scrapes.py follows
    # prometheus-operator v0.93 promcfg.go). Watchdog's `instance` is the host without scheme; ours too.
    ingress = cht_render.ingress(ChtSettings(version="4.22.0"), "kwale", "kwale.example.org")
    probe = {"metadata": {"name": scrape.PROBE, "namespace": "monitoring"}, "spec": spec}
    (target,) = scrapes.probe_targets(probe, [ingress])
    assert target["__param_target"] == f"http://api.kwale.svc.cluster.local:{API_PORT}{suffix}"
    assert {k: target[k] for k in ("job", "instance", "county", "namespace")} == {
        "job": "cht", "instance": "kwale.example.org", "county": "kwale", "namespace": "kwale"
    }


def test_probe_and_express_monitor_select_only_the_counties_api():
    """Other Ingresses and Services (another app's, a county's other Services) are not scraped."""
    settings = ChtSettings(version="4.22.0")
    probe = {"metadata": {"name": scrape.PROBE, "namespace": "monitoring"}, "spec": scrape.probe_spec(60)}
    other = {"metadata": {"name": "grafana", "namespace": "tools", "labels": {"app.kubernetes.io/name": "grafana"}},
             "spec": {"rules": [{"host": "grafana.example.org", "http": {"paths": [{"path": "/"}]}}]}}
    assert scrapes.probe_targets(probe, [other]) == []
    monitor = {"metadata": {"name": scrape.EXPRESS_MONITOR, "namespace": "monitoring"},
               "spec": scrape.express_service_monitor_spec(60)}
    services = [svc.service_object for svc in cht_render.stateless_services(settings, "kwale", "kwale.example.org") if svc.service_object]
    (target,) = scrapes.service_monitor_targets(monitor, services)
    assert {k: target[k] for k in ("job", "instance", "county", "namespace", "service")} == {
        "job": scrape.EXPRESS_JOB, "instance": "kwale.example.org", "county": "kwale", "namespace": "kwale", "service": "api"
    }
    assert monitor["spec"]["endpoints"][0]["path"] == scrape.EXPRESS_METRICS_PATH


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

    ours = yaml.safe_load(values.json_exporter_config())["modules"]["default"]["metrics"]
    assert sorted(map(key, ours)) == sorted(upstream.WATCHDOG_JSON_METRICS)


def test_every_watchdog_alert_is_a_rule_with_its_queries_thresholds_and_period():
    theirs = upstream.WATCHDOG_ALERTS
    assert set(theirs) == set(WATCHDOG_ALERTS), "Watchdog's alert list changed: map the new ones"
    ours = {rule["alert"]: rule for rule in rules.cht_rules()}
    for title, rule in theirs.items():
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
    for rule in [*rules.cht_rules(), *rules.platform_rules(MONITORING, "vsphere-k3s", BACKUP)]:
        # info only for the chart's own info alerts the platform replaces (routed nowhere, like the chart's).
        allowed = ("warning", "critical", "info") if rule["alert"] in values.CHART_ALERTS_REPLACED else ("warning", "critical")
        assert rule["labels"]["severity"] in allowed
        assert rule["annotations"]["description"]
        # Balanced brackets: a cheap guard against a broken expression.
        for left, right in ("()", "{}", "[]"):
            assert rule["expr"].count(left) == rule["expr"].count(right), rule["alert"]


# --- platform and county alerts --------------------------------------------------------------------------------


def _alert(found, name):
    return next(r for r in found if r["alert"] == name)


def test_platform_alerts_cover_every_condition_with_config_thresholds():
    monitoring = MonitoringConfig.model_validate(
        {"alerts": {"volumeUsedPercent": 70, "certificateRenewalDays": 100, "etcdSnapshotMaxAgeHours": 13,
                    "backupMaxAgeHours": 30, "restoreDrillMaxAgeDays": 3}}
    )
    found = rules.platform_rules(monitoring, "vsphere-k3s", BACKUP)
    assert 'kube_node_status_condition{condition="Ready",status="true"} == 0' in _alert(found, "NodeNotReady")["expr"]
    assert "cht-couchdb" in _alert(found, "CouchDbDown")["expr"]
    assert _alert(found, "CountyVolumeFilling")["expr"].endswith("> 70")
    # k3s docs reference/metrics.md: k3s_certificate_expiration_seconds (remaining lifetime, seconds).
    assert _alert(found, "K3sCertificateRenewalDue")["expr"] == f"k3s_certificate_expiration_seconds < {100 * 86400}"
    # k3s pkg/etcd/snapshotmetrics: k3s_etcd_snapshot_save_duration_seconds{status="success"|"error"} (a histogram).
    assert 'k3s_etcd_snapshot_save_duration_seconds_count{status="success"}[13h]' in _alert(found, "EtcdSnapshotTooOld")["expr"]
    assert 'status="error"' in _alert(found, "EtcdSnapshotFailed")["expr"]
    assert f"> {30 * 3600}" in _alert(found, "VeleroBackupTooOld")["expr"]  # behaviour: tests/test_alerts_*.py
    # The drill's results per county: annotations on the Schedules in Velero's namespace, through
    # kube-state-metrics (components/backup/drill.py; promtool tests in tests/test_alerts_restore_drill.py).
    assert _alert(found, "RestoreDrillFailed")["expr"] == 'cht_hosting_restore_drill_ok{namespace="backups"} == 0'
    assert f"> {3 * 86400}" in _alert(found, "RestoreDrillOverdue")["expr"]


def test_backup_alerts_follow_the_backup_config():
    without = {r["alert"] for r in rules.platform_rules(MONITORING, "vsphere-k3s", None)}
    assert not {n for n in without if n.startswith(("Velero", "RestoreDrill"))}
    suspended = BACKUP.model_copy(update={"drill": BACKUP.drill.model_copy(update={"enabled": False})})
    names = {r["alert"] for r in rules.platform_rules(MONITORING, "vsphere-k3s", suspended)}
    assert "VeleroBackupTooOld" in names and not {n for n in names if n.startswith("RestoreDrill")}
    county = rules.county_rules(MONITORING, BACKUP)
    # components/backup names each county's Schedule `county-<county>`.
    assert _alert(county, "CountyNeverBackedUp")["expr"] == (
        f'label_replace({rules.COUNTIES}, "schedule", "county-$1", "county", "(.+)") '
        "unless on (schedule) velero_backup_last_successful_timestamp"
    )
    assert "CountyNeverBackedUp" not in {r["alert"] for r in rules.county_rules(MONITORING)}
    assert scrape.velero_service_monitor_spec("backups")["namespaceSelector"] == {"matchNames": ["backups"]}


def test_existing_cluster_has_no_k3s_alerts():
    names = {r["alert"] for r in rules.platform_rules(MONITORING, "existing", BACKUP)}
    assert not {n for n in names if n.startswith(("K3s", "Etcd"))}
    assert {"NodeNotReady", "CouchDbDown", "VeleroBackupTooOld", "RestoreDrillFailed"} <= names


def test_county_alerts_key_on_the_counties_labels_as_kube_state_metrics_exports_them():
    """One group for every county: the counties are the API Deployments labelled with their county, the 4.x ones
    by their namespace's major-version label; kube-state-metrics exports exactly those labels."""
    county = rules.county_rules(MONITORING, BACKUP)
    allowlist = values.stack_values(MONITORING, None, "vsphere-k3s", BACKUP)["kube-state-metrics"]["metricLabelsAllowlist"]
    assert allowlist == ["deployments=[cht-hosting/county,cht.service]", "namespaces=[cht-hosting/cht-major]"]
    assert _alert(county, "ChtApiNotScraped")["expr"] == (
        'max by (namespace, county) (label_replace(kube_deployment_labels{label_cht_service="api", '
        'label_cht_hosting_county!=""}, "county", "$1", "label_cht_hosting_county", "(.+)")) '
        'unless on (namespace) up{job="cht"}'
    )
    headroom = _alert(county, "CountyUpgradeHeadroomLow")
    claims = 'persistentvolumeclaim=~"couchdb(-[0-9]+)?-claim0"'
    assert headroom["expr"] == (
        f"(kubelet_volume_stats_capacity_bytes{{{claims}}} < 5 * kubelet_volume_stats_used_bytes{{{claims}}}) "
        'and on (namespace) kube_namespace_labels{label_cht_hosting_cht_major="4"}'
    )
    # The labels come from the counties' own objects.
    assert cht_render.namespace("kwale", ChtSettings(version="4.22.0"))["metadata"]["labels"]["cht-hosting/cht-major"] == "4"
    assert cht_render.namespace("kwale", ChtSettings(version="5.2.0"))["metadata"]["labels"]["cht-hosting/cht-major"] == "5"
    api = next(s for s in cht_render.stateless_services(ChtSettings(version="4.22.0"), "kwale") if s.service == "api")
    assert {"cht-hosting/county": "kwale", "cht.service": "api"}.items() <= api.deployment["metadata"]["labels"].items()
    assert "CountyNeverBackedUp" not in {r["alert"] for r in rules.county_rules(MONITORING)}


# --- Alertmanager config -----------------------------------------------------------------------------------------


def test_alertmanager_routes_every_alert_to_email_and_webhook():
    config = yaml.safe_load(values.alertmanager_config(MONITORING, "s3cret-pw", None))
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
    config = yaml.safe_load(values.alertmanager_config(monitoring, None, "https://hooks.example.org/x?token=abc"))
    assert config["receivers"][0] == {
        "name": "operators",
        "webhook_configs": [{"url": "https://hooks.example.org/x?token=abc", "send_resolved": False}],
    }
    bare = yaml.safe_load(values.alertmanager_config(MonitoringConfig(), None, None))
    assert bare["receivers"][0] == {"name": "operators"}
    assert values.routes(MonitoringConfig(), webhook_secret=False) == []


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
    for chart in (values.stack_values(MONITORING, "vmware-sc", "vsphere-k3s"), values.stack_values(MONITORING, None, "existing")):
        problems: list[str] = []
        # `configSecret` is documented commented out in values.yaml (see tests/upstream.py).
        _walk({k: v for k, v in chart.items() if k not in subcharts}, upstream.KPS_VALUES, "",
              {"alertmanager.alertmanagerSpec.configSecret"}, problems)
        _walk(chart["kube-state-metrics"], upstream.KSM_VALUES, "", set(), problems)
        _walk(chart["prometheus-node-exporter"], upstream.NODE_EXPORTER_VALUES, "", set(), problems)
        assert problems == []
        assert set(chart["defaultRules"]["rules"]) <= set(upstream.KPS_DEFAULT_RULES)


def test_json_exporter_values_are_keys_of_its_chart_0_19_2():
    problems: list[str] = []
    _walk(values.json_exporter_values(MONITORING), upstream.JSON_EXPORTER_VALUES, "", set(), problems)
    assert problems == []
    # The chart renders configuration.config into config.yml verbatim (templates/configmap.yaml).
    assert upstream.JSON_EXPORTER_CONFIG_IS_TEXT and isinstance(values.json_exporter_values(MONITORING)["configuration"]["config"], str)


def test_k3s_components_are_not_scraped_separately_and_alertmanager_reads_our_secret():
    chart = values.stack_values(MONITORING, "vmware-sc", "vsphere-k3s")
    for part in ("kubeControllerManager", "kubeScheduler", "kubeProxy", "kubeEtcd"):
        assert chart[part] == {"enabled": False}
    assert chart["kubelet"]["enabled"] and chart["kubeApiServer"]["enabled"]
    spec = chart["alertmanager"]["alertmanagerSpec"]
    assert spec["useExistingSecret"] is True and spec["configSecret"] == values.ALERTMANAGER_SECRET
    assert "config" not in chart["alertmanager"]  # nothing secret in chart values
    prometheus = chart["prometheus"]["prometheusSpec"]
    assert prometheus["storageSpec"]["volumeClaimTemplate"]["spec"]["storageClassName"] == "vmware-sc"
    assert prometheus["retention"] == "60d"
    assert chart["prometheus-node-exporter"]["tolerations"] == [{"operator": "Exists"}]
    existing = values.stack_values(MONITORING, None, "existing")
    assert existing["kubeEtcd"] == {"enabled": True}
    assert "storageClassName" not in existing["prometheus"]["prometheusSpec"]["storageSpec"]["volumeClaimTemplate"]["spec"]


def test_chart_resources_come_from_the_capacity_table():
    pods = capacity.monitoring_pods(MONITORING)
    chart = values.stack_values(MONITORING, None, "vsphere-k3s")
    assert chart["prometheus"]["prometheusSpec"]["resources"]["requests"] == {"cpu": "1000m", "memory": "4096Mi"}
    assert chart["kube-state-metrics"]["resources"] == pods["kube-state-metrics"].resources()
    assert values.json_exporter_values(MONITORING)["resources"] == pods["json-exporter"].resources()


# --- isolation ---------------------------------------------------------------------------------------------------


def test_the_scrapers_counties_admit_are_the_pods_the_charts_run():
    """Each county's `api-and-sentinel` policy admits names.SCRAPER_POD_LABELS (components/cht/render.py): Prometheus's
    pods (prometheus-operator labels them app.kubernetes.io/name=prometheus) and the json-exporter's (its chart's
    name label, prometheus-json-exporter-0.19.2 templates/_helpers.tpl selectorLabels)."""
    assert names.SCRAPER_POD_LABELS == (
        {"app.kubernetes.io/name": "prometheus"}, {"app.kubernetes.io/name": values.JSON_EXPORTER_CHART}
    )


def test_monitoring_namespace_quota_holds_its_pods():
    quota = namespace.namespace_quota(MONITORING)
    pods = [p for p in capacity.monitoring_pods(MONITORING).values() if not p.per_node]
    assert int(quota["requests.cpu"].rstrip("m")) >= sum(p.cpu_m for p in pods)
    assert int(quota["requests.memory"].rstrip("Mi")) >= sum(p.memory_mi for p in pods)
    assert quota["requests.storage"] == "51Gi" and quota["persistentvolumeclaims"] == "2"
    labels = namespace.namespace_labels()
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"


@pytest.mark.parametrize("version,expected", [("4.2.0", False), ("4.3.0", True), ("5.2.0", True)])
def test_express_metrics_only_where_the_endpoint_exists(version, expected):
    """The API Service says so (a label the one ServiceMonitor selects) from CHT 4.3.0 on."""
    assert cht_render.express_metrics(ChtSettings(version=version)) is expected
    api = next(s for s in cht_render.stateless_services(ChtSettings(version=version), "kwale") if s.service == "api")
    assert (api.service_object["metadata"]["labels"].get("cht-hosting/express-metrics") == "true") is expected


def test_monitoring_namespace_egress_reaches_only_what_it_scrapes():
    policies = namespace.namespace_network_policies()
    egress = policies["egress-scrapes-dns-and-api"]["egress"]
    pod_ports = next(rule for rule in egress if rule["to"] == [{"namespaceSelector": {}}])["ports"]
    # The counties' API port is the one the county's own policy opens to the scrapers.
    assert {"protocol": "TCP", "port": API_PORT} in pod_ports
    assert {p["port"] for p in pod_ports} == {API_PORT, 8085, 9153}
    node_ports = next(rule for rule in egress if "ipBlock" in rule["to"][0])["ports"]
    assert {p["port"] for p in node_ports} == {443, 6443, 10250, 9100}
    # Only Alertmanager goes anywhere (SMTP server, webhooks).
    assert policies["alertmanager-to-receivers"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "alertmanager"}}
