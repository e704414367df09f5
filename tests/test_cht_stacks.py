"""Whole stacks: the national plan and the same counties on the latest released 5.x render everything issue 13 asks.

Properties that hold for any valid stack are checked on the national test stack (tests/stacks, a copy of the national
example; and on it with every county moved to 5.2.0); fixed numbers come from the test stack tests/stacks/Pulumi.cht5.yaml.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from components.cht import render
from config import egress
from config.validate import validate
from offline import plan
from tests.conftest import raw_config

STACKS = Path(__file__).parent / "stacks"
LATEST_5X = "5.2.0"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"


@pytest.fixture(scope="module")
def national_on_5x():
    values, _ = raw_config("national")
    cht = {**values["cht"], "version": LATEST_5X}
    evaluation, _ = plan.run("national", overrides={"cht-hosting:cht": cht}, stack_dir=STACKS)
    return evaluation


@pytest.fixture(scope="module")
def cht5():
    evaluation, _ = plan.run("cht5", stack_dir=STACKS)
    return evaluation


def county_objects(evaluation, county: str, type_: str) -> dict[str, dict]:
    project = evaluation.named(county)
    return {r.inputs["metadata"]["name"]: r.inputs for r in evaluation.descendants(project) if r.type == type_}


def containers(deployment: dict) -> list[dict]:
    return deployment["spec"]["template"]["spec"]["containers"]


def check_county(evaluation, county: str, nodes: int, five: bool) -> None:
    deployments = county_objects(evaluation, county, DEPLOYMENT)
    services = county_objects(evaluation, county, SERVICE)
    couch = [n for n in deployments if n.startswith("cht-couchdb")]
    assert len(couch) == nodes
    first = "cht-couchdb" if nodes == 1 else "cht-couchdb-1"
    # 5.x: one nouveau, beside node 1, behind `nouveau`; no per-node nouveau in any released image.
    with_nouveau = [n for n in couch if any(c["name"] == "cht-couchdb-nouveau" for c in containers(deployments[n]))]
    assert with_nouveau == ([first] if five else [])
    assert ("nouveau" in services) is five and not any(s.startswith("nouveau-") for s in services)
    if five:
        assert services["nouveau"]["spec"]["selector"] == {"cht.service": first.removeprefix("cht-")}
    # Hardened pods, no token anywhere (no upgrade service in these stacks).
    for name, d in deployments.items():
        pod = d["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False, name
        for c in containers(d):
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
            assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    namespace = evaluation.named(f"{county}-namespace").inputs["metadata"]["labels"]
    assert namespace["pod-security.kubernetes.io/enforce"] == "baseline"
    # Placement and disruption budget exactly for clustered counties.
    budgets = county_objects(evaluation, county, "kubernetes:policy/v1:PodDisruptionBudget")
    assert bool(budgets) is (nodes > 1)
    for name in couch:
        assert ("affinity" in deployments[name]["spec"]["template"]["spec"]) is (nodes > 1)
    # Egress: API and Sentinel reach the outside world but not the protected networks.
    policies = county_objects(evaluation, county, "kubernetes:networking.k8s.io/v1:NetworkPolicy")
    (rule,) = policies["api-and-sentinel"]["spec"]["egress"]
    assert rule["to"][0]["ipBlock"]["cidr"] == "0.0.0.0/0"
    # No response buffering anywhere on the way in.
    assert not evaluation.of_type("kubernetes:traefik.io/v1alpha1:Middleware")


@pytest.mark.parametrize("stack", ["national", "national_on_5x"])
def test_every_national_county_renders_as_the_released_images_need(stack, request, national_counties):
    evaluation = request.getfixturevalue(stack)
    five = stack == "national_on_5x"
    for name, county in national_counties.items():
        check_county(evaluation, name, county.settings.couchdb_nodes, five or county.settings.version.startswith("5"))


def test_national_protects_the_node_network_api_and_vcenter(national):
    config = validate(*raw_config("national"))
    access = egress.cluster_access(config)
    assert access.protected[0] == config.network.cidr
    # The pod and Service networks (the `kubernetes` Service address 10.43.0.1 with them).
    assert {"10.42.0.0/16", "10.43.0.0/16"} <= set(access.protected)
    policy = county_objects(national, "kwale", "kubernetes:networking.k8s.io/v1:NetworkPolicy")["api-and-sentinel"]
    assert policy["spec"]["egress"][0]["to"][0]["ipBlock"]["except"] == list(access.protected)


def test_the_5x_test_stack(cht5):
    check_county(cht5, "kwale", 1, True)
    check_county(cht5, "mombasa", 3, True)
    policy = county_objects(cht5, "kwale", "kubernetes:networking.k8s.io/v1:NetworkPolicy")["api-and-sentinel"]
    # vCenter (10.30.0.5) and the API VIP (10.30.0.10) are inside the node network, which is excepted whole,
    # and so are the pod and Service networks.
    assert policy["spec"]["egress"][0]["to"][0]["ipBlock"]["except"] == ["10.30.0.0/24", "10.42.0.0/16", "10.43.0.0/16"]
    kwale = county_objects(cht5, "kwale", DEPLOYMENT)
    api_env = {e["name"]: e.get("value") for e in containers(kwale["cht-api"])[0]["env"]}
    assert api_env["LOG_LEVEL"] == "debug"
    couch_env = {e["name"]: e.get("value") for e in containers(kwale["cht-couchdb"])[0]["env"]}
    assert couch_env["COUCHDB_LOG_LEVEL"] == "debug"
    assert county_objects(cht5, "lamu", "kubernetes:core/v1:ResourceQuota")["cht-budget"]["spec"]["hard"]["requests.cpu"] == "4000m"
    assert county_objects(cht5, "kwale", "kubernetes:core/v1:ResourceQuota")["cht-budget"]["spec"]["hard"]["requests.cpu"] == "5000m"
    # The way in: the edge sends the PROXY protocol, traefik trusts exactly the edge proxies.
    values = yaml.safe_load(cht5.named("ingress-traefik").inputs["spec"]["valuesContent"])
    assert values["ports"]["websecure"]["proxyProtocol"]["trustedIPs"] == ["192.0.2.10", "192.0.2.11"]
    assert "proxy_protocol on;" in cht5.outputs["edgeNginxConfig"]


def test_existing_cluster_mode_uses_its_protected_networks():
    values, secret_keys = raw_config("k3d")
    values["existingCluster"] = {**values["existingCluster"], "protectedNetworks": ["192.168.1.0/24"]}
    access = egress.cluster_access(validate(values, secret_keys))
    assert access.protected == ("192.168.1.0/24",)
    assert access.kube_api == (("0.0.0.0/0", 443), ("0.0.0.0/0", 6443))


def test_upgrade_service_reaches_the_servers_and_the_kubernetes_service(national):
    config = validate(*raw_config("national"))
    access = egress.cluster_access(config)
    servers = {f"{ip}/32" for ip in config.control_plane.nodes.values()}
    assert servers <= {cidr for cidr, port in access.kube_api if port == 6443}
    assert ("10.43.0.1/32", 443) in access.kube_api
    s = config.counties["kwale"].settings.model_copy(update={"upgrades": "admin-app"})
    policy = {p["metadata"]["name"]: p for p in render.network_policies(s, "kwale", access)}
    assert "egress-upgrade-service-kubernetes-api" in policy
