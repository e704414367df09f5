"""The monitoring stack on the mock engine: a stack of our own (tests/stacks/Pulumi.watched.yaml), one county
added to it, the national stack's properties, and every object against its schema."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from components.monitoring import scrape, values
from config import names
from config.validate import validate
from offline import alerts, plan, scrapes
from offline.engine import Evaluation
from tests import upstream
from tests.conftest import raw_config

STACKS = Path(__file__).resolve().parent / "stacks"
PROBE = "kubernetes:monitoring.coreos.com/v1:Probe"
SERVICE_MONITOR = "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"
RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
RELEASE = "kubernetes:helm.sh/v3:Release"
NEW_COUNTY = "delta"


def watched(**overrides) -> Evaluation:
    evaluation, _ = plan.run("watched", overrides=overrides or None, stack_dir=STACKS)
    return evaluation


@pytest.fixture(scope="session")
def base() -> Evaluation:
    return watched()


@pytest.fixture(scope="session")
def grown() -> Evaluation:
    """The same stack with one county more: the operator's one-line edit."""
    document = yaml.safe_load((STACKS / "Pulumi.watched.yaml").read_text())
    counties = dict(document["config"]["cht-hosting:counties"], **{NEW_COUNTY: {}})
    return watched(**{"cht-hosting:counties": counties})


def _by_type(evaluation: Evaluation, type_: str) -> list:
    return evaluation.of_type(type_)


def _in_namespace(evaluation: Evaluation, type_: str, namespace: str) -> list:
    return [r for r in evaluation.of_type(type_) if r.inputs["metadata"]["namespace"] == namespace]


# --- adding a county adds its own objects and changes nothing else --------------------------------------------


def _probed(evaluation: Evaluation) -> dict[str, dict]:
    """What Prometheus would scrape for each county (offline/scrapes.py): county -> the Probe target's labels."""
    objects = alerts.Objects.of(evaluation)
    found = [t for probe in objects.kind("Probe") for t in scrapes.probe_targets(probe, objects.kind("Ingress"))]
    return {t["county"]: t for t in found}


def _express(evaluation: Evaluation) -> dict[str, dict]:
    objects = alerts.Objects.of(evaluation)
    found = [t for m in objects.kind("ServiceMonitor") if m["metadata"]["name"] == scrape.EXPRESS_MONITOR
             for t in scrapes.service_monitor_targets(m, objects.kind("Service"))]
    return {t["county"]: t for t in found}


def test_adding_a_county_adds_only_its_own_objects(base, grown):
    before = {r.urn: r for r in base.registrations}
    after = {r.urn: r for r in grown.registrations}
    assert set(before) <= set(after), "a county's addition removed or renamed something"
    changed = [urn for urn, r in before.items() if after[urn].inputs != r.inputs]
    assert changed == [], f"adding a county changed shared objects: {changed}"
    added = [after[urn] for urn in set(after) - set(before)]
    assert added and all(r.name.startswith(f"{NEW_COUNTY}-") or r.name == NEW_COUNTY for r in added)
    # No monitoring object of its own: the county is scraped and alerted on by its labels.
    assert not {r.type for r in added} & {PROBE, SERVICE_MONITOR, RULE}


def test_adding_a_county_adds_it_to_the_watchdog_list_and_the_scrapes(base, grown):
    before = yaml.safe_load(base.outputs["watchdogTargets"])
    after = yaml.safe_load(grown.outputs["watchdogTargets"])
    new = {"targets": [f"https://{NEW_COUNTY}.cht.test.example.org"]}
    assert new not in before and sorted([*before, new], key=str) == sorted(after, key=str)
    assert NEW_COUNTY not in _probed(base)
    target = _probed(grown)[NEW_COUNTY]["__param_target"]
    assert target == f"http://api.{NEW_COUNTY}.svc.cluster.local:5988/api/v2/monitoring?connected_user_interval=30"
    assert grown.outputs["monitoring"]["scrapes"][NEW_COUNTY] == target


# --- what one stack deploys --------------------------------------------------------------------------------------


def test_every_county_is_scraped_with_its_host_as_instance(base):
    hosts = {"alpha": "alpha.cht.test.example.org", "beta": "beta.cht.test.example.org", "gamma": "gamma.cht.test.example.org"}
    (probe,) = _by_type(base, PROBE)
    spec = probe.inputs["spec"]
    assert probe.inputs["metadata"]["namespace"] == "monitoring"
    assert spec["jobName"] == "cht" and spec["interval"] == "120s" and spec["module"] == "default"
    assert spec["prober"] == {"url": "cht-json-exporter.monitoring.svc:7979", "scheme": "http", "path": "/probe"}
    probed = _probed(base)
    assert {county: t["instance"] for county, t in probed.items()} == hosts
    assert all(t["job"] == "cht" and t["namespace"] == county for county, t in probed.items())
    # gamma runs CHT 4.2.0, which has no /api/v1/express-metrics (4.3.0+).
    express = _express(base)
    assert {county: t["instance"] for county, t in express.items()} == {c: hosts[c] for c in ("alpha", "beta")}
    assert all(t["job"] == "cht-express-metrics" and t["service"] == "api" for t in express.values())


def test_each_county_admits_the_scrapers_in_its_api_policy(base):
    """The scrapers reach each county's API through the county's own `api-and-sentinel` policy (no policy of monitoring's)."""
    for county in ("alpha", "beta", "gamma"):
        policies = {p.inputs["metadata"]["name"]: p for p in _in_namespace(base, "kubernetes:networking.k8s.io/v1:NetworkPolicy", county)}
        (rule,) = policies["api-and-sentinel"].inputs["spec"]["ingress"]
        peers = [peer["podSelector"]["matchLabels"] for peer in rule["from"]]
        assert all(pod in peers for pod in names.SCRAPER_POD_LABELS)
        assert "allow-monitoring-scrape" not in policies


def test_alert_rules_for_each_condition(base):
    rules = {}
    for r in _by_type(base, RULE):
        for group in r.inputs["spec"]["groups"]:
            for rule in group["rules"]:
                rules.setdefault(rule["alert"], []).append((r.inputs["metadata"]["namespace"], rule))
    conditions = {
        "Watchdog's CHT alerts": {
            "ChtApiServerDown", "ChtSentinelBacklog", "ChtOutboundPushBacklog", "ChtDbFragmentation", "ChtDbConflictsRate",
            "ChtUsersOverReplicationLimit", "ChtServerTimeInaccurate", "ChtClientFeedbackRate", "ChtMessageDeliveryRate",
        },
        "node or agent down": {"NodeNotReady", "NodeKubeletDown"},
        "CouchDB down": {"CouchDbDown"},
        "volume above threshold": {"CountyVolumeFilling"},
        "k3s certificates": {"K3sCertificateRenewalDue"},
        "etcd snapshot too old": {"EtcdSnapshotTooOld"},
        "county backup too old": {"VeleroBackupTooOld", "CountyNeverBackedUp"},
        "restore drill failing": {"RestoreDrillFailed", "RestoreDrillOverdue", "RestoreDrillInterrupted"},
        "county backup without CouchDB volume data": {"CountyBackupWithoutVolumeData"},
    }
    for condition, expected in conditions.items():
        assert expected <= set(rules), condition
    # The stack's thresholds reach the rules.
    ((_, filling),) = rules["CountyVolumeFilling"]
    assert filling["expr"].endswith("> 75")
    ((_, certs),) = rules["K3sCertificateRenewalDue"]
    assert certs["expr"] == f"k3s_certificate_expiration_seconds < {100 * 86400}"
    # Every county's rules in one group in the monitoring namespace (tests/test_alerts_county.py).
    assert {ns for entries in rules.values() for ns, _ in entries} == {"monitoring"}
    velero = next(r for r in _by_type(base, SERVICE_MONITOR) if r.inputs["metadata"]["name"] == "velero")
    assert velero.inputs["spec"]["namespaceSelector"] == {"matchNames": ["backups"]}
    node_agents = next(r for r in base.registrations if r.type == "kubernetes:monitoring.coreos.com/v1:PodMonitor")
    assert node_agents.inputs["spec"]["namespaceSelector"] == {"matchNames": ["backups"]}
    # Below the upgrade headroom: the 4.x counties, by their namespace's label.
    majors = {r.inputs["metadata"]["name"]: r.inputs["metadata"]["labels"].get("cht-hosting/cht-major")
              for r in base.of_type("kubernetes:core/v1:Namespace") if "cht-hosting/county" in r.inputs["metadata"].get("labels", {})}
    assert majors == {"alpha": "4", "beta": "5", "gamma": "4"} and len(rules["CountyUpgradeHeadroomLow"]) == 1


def test_releases_are_pinned_and_alertmanager_secret_is_a_secret(base):
    releases = {r.inputs["name"]: r for r in _by_type(base, RELEASE) if r.inputs["namespace"] == "monitoring"}
    assert releases["monitoring"].inputs["chart"] == "kube-prometheus-stack"
    assert releases["monitoring"].inputs["version"] == "88.5.3"
    assert releases["cht-json-exporter"].inputs["version"] == "0.19.2"
    assert releases["monitoring"].inputs["repositoryOpts"]["repo"] == "https://prometheus-community.github.io/helm-charts"
    (secret,) = [r for r in base.of_type("kubernetes:core/v1:Secret") if r.inputs["metadata"]["name"] == values.ALERTMANAGER_SECRET]
    assert "stringData" in secret.secret_inputs
    config = yaml.safe_load(secret.inputs["stringData"]["alertmanager.yaml"])
    (email,) = config["receivers"][0]["email_configs"]
    assert email["auth_password"] in base.secret_values
    assert config["receivers"][0]["webhook_configs"] == [{"url": "https://hooks.test.example.org/cht", "send_resolved": True}]
    # No SMTP password in chart values or in any plain output.
    assert email["auth_password"] not in json.dumps([r.inputs for r in _by_type(base, RELEASE)])
    assert email["auth_password"] not in json.dumps(base.outputs)


def test_the_county_scrapes_and_rules_wait_for_the_crds(base):
    release = next(r for r in _by_type(base, RELEASE) if r.inputs["name"] == "monitoring")
    for r in [*_by_type(base, PROBE), *_by_type(base, SERVICE_MONITOR), *_by_type(base, RULE)]:
        assert release.urn in r.depends_on, r.name


def test_the_plan_lists_what_is_watched_and_where_alerts_go(base):
    text = plan.report(base, [])
    assert "Watchdog targets (`pulumi stack output watchdogTargets > cht-instances.yml`): 3 counties" in text
    assert "scraped: all 3 counties' /api/v2/monitoring" in text
    assert "ChtApiServerDown" in text and "EtcdSnapshotTooOld" in text and "RestoreDrillFailed" in text
    assert (
        "alerts go to: e-mail to ops@test.example.org, oncall@test.example.org via smtp.test.example.org:587; "
        "webhook https://hooks.test.example.org/cht"
    ) in text
    assert "requested by monitoring" in text and "prometheus x1" in text


def test_capacity_counts_the_monitoring_requests(base):
    report = base.outputs["capacityReport"]
    # Prometheus 2 CPU / 6 GB from the stack file, node-exporter on each of 3 agents.
    assert "prometheus x1                                        2           6" in report
    # node-exporter comes off each agent's allocatable, as Velero's node agent does: 16 - 1 reserved - 0.5 - 0.05.
    assert "node-exporter (on each agent)" in report
    assert report.startswith("Agents: 4 x (14.35 CPU, ")  # and traefik's 0.1 on each
    assert "requested by monitoring" in report and "in total" in report


# --- schemas: built-in kinds for the cluster's minor, CRDs as kube-prometheus-stack-88.5.3 defines them ----------


def _strict(schema: dict) -> dict:
    """A CRD schema that refuses unknown fields (the API server would prune them silently)."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


def _crd_schemas() -> dict[str, dict]:
    return {kind: _strict(schema) for kind, schema in upstream.CRD_SCHEMAS.items()}


def _monitoring_objects(evaluation: Evaluation):
    for r in evaluation.registrations:
        if r.type.startswith("kubernetes:monitoring.coreos.com/") or (
            r.type.startswith("kubernetes:") and r.custom and "kind" in r.inputs
            and (r.inputs["metadata"].get("namespace") == "monitoring" or r.inputs["metadata"].get("name") == "monitoring")
        ):
            yield r


def test_every_monitoring_object_is_schema_valid(base):
    schemas = _crd_schemas()
    minor = "1.36.0"
    checked = {"custom": 0, "builtin": 0}
    for r in _monitoring_objects(base):
        if r.type.startswith("kubernetes:monitoring.coreos.com/"):
            try:
                jsonschema.Draft7Validator(schemas[r.inputs["kind"]]).validate(r.inputs)
            except jsonschema.ValidationError as error:
                pytest.fail(f"{r.name} ({r.inputs['kind']}): {error.message} at {list(error.absolute_path)}")
            checked["custom"] += 1
        else:
            try:
                kubernetes_validate.validate(r.inputs, minor, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{r.name} ({r.inputs['kind']}): {error.message} at {list(error.path)}")
            checked["builtin"] += 1
    # The counties' Probe and ServiceMonitor, Velero's ServiceMonitor and node-agent PodMonitor, 3 rules
    # (Watchdog's, the platform's, the counties'); namespace, quota, limits, 4 policies, the Secret (the
    # counties admit the scrapers in their own api-and-sentinel policy, checked with the county's objects).
    assert checked == {"custom": 7, "builtin": 8}


def test_strict_crd_schema_catches_an_unknown_field():
    schema = _crd_schemas()["Probe"]
    probe = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "Probe",
        "metadata": {"name": "x", "namespace": "y"},
        "spec": {"prober": {"url": "a:1", "pathh": "/probe"}},
    }
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema).validate(probe)


# --- the national stack and existing-cluster mode ----------------------------------------------------------------------


def test_national_exports_every_county_to_watchdog_and_scrapes_each(national):
    counties = validate(*raw_config("national")).counties
    targets = yaml.safe_load(national.outputs["watchdogTargets"])
    assert sorted(t["targets"][0] for t in targets) == sorted(f"https://{c.host}" for c in counties.values())
    assert set(_probed(national)) == set(counties)
    assert set(national.outputs["monitoring"]["scrapes"]) == set(counties)


def test_existing_cluster_mode_is_optional_and_watchdog_targets_are_exported_anyway():
    off, _ = plan.run("k3d", stack_dir=STACKS)
    assert not off.of_type(PROBE) and "monitoring" not in off.outputs
    assert len(yaml.safe_load(off.outputs["watchdogTargets"])) == 2
    on, _ = plan.run("k3d", overrides={"cht-hosting:monitoring": {"enabled": True}}, stack_dir=STACKS)
    assert len(_probed(on)) == 2
    rules = [rule["alert"] for r in on.of_type(RULE) for g in r.inputs["spec"]["groups"] for rule in g["rules"]]
    assert "K3sCertificateRenewalDue" not in rules and "NodeNotReady" in rules
    release = next(r for r in on.of_type(RELEASE) if r.inputs["name"] == "monitoring")
    claim = release.inputs["values"]["prometheus"]["prometheusSpec"]["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert claim["storageClassName"] == "local-path"


def test_the_monitoring_share_can_tip_the_capacity_check():
    import math

    from config import capacity
    from config.errors import ConfigError
    from config.secrets import SECRETS
    from offline import stackfile

    raw, secrets = stackfile.raw(stackfile.load("watched", root=STACKS))
    raw["vspherePassword"] = "[secret]"
    dropped = {s.key for s in SECRETS if s.needed_when == "backup"} | {"monitoringSmtpPassword", "backup"}
    raw = {k: v for k, v in raw.items() if k not in dropped}
    secrets = (secrets | {"vspherePassword"}) - dropped
    raw["monitoring"] = {"enabled": False}
    off = capacity.plan(validate(raw, secrets))
    assert off.fits and not off.platform
    # A Prometheus just larger than the room the counties leave: the same counties no longer fit.
    slack = off.allocatable_cpu - off.requested_cpu
    raw["monitoring"] = {"prometheus": {"cpu": math.ceil(slack) + 1}}
    with pytest.raises(ConfigError) as error:
        validate(raw, secrets)
    (problem,) = error.value.problems
    if math.ceil(slack) + 1 > off.cpu_per_agent:  # then Prometheus alone is larger than an agent: refused as such
        assert problem.startswith("cht-hosting:monitoring.prometheus: one pod (prometheus) requests ")
    else:
        assert problem.startswith(
            f"cht-hosting:agents.nodes: the counties' quotas (budgets plus headroom) admit {off.county_cpu:g} CPU and "
            f"{off.county_memory_gb:g} GB and the monitoring stack requests "
        )
    raw["capacity"] = {"onShortfall": "warn"}
    raw["monitoring"] = {"prometheus": {"cpu": min(math.ceil(slack) + 1, math.floor(off.cpu_per_agent) - 1)}}
    on = capacity.plan(validate(raw, secrets))
    assert on.requested_cpu == pytest.approx(off.requested_cpu + on.platform_cpu)
    assert on.cpu_per_agent == pytest.approx(off.cpu_per_agent - 0.05)  # node-exporter on each agent
