"""Whole stacks on the mock engine: composition, adding and removing a county, the dev stack, scale."""

from __future__ import annotations

import copy

import pytest
import yaml

from config import names
from offline import plan, stackfile
from offline.engine import Evaluation

COUNTIES = "cht-hosting:counties"


def prod_county_config() -> dict:
    return copy.deepcopy(yaml.safe_load(stackfile.stack_path("prod").read_text())["config"][COUNTIES])


def run(stack: str, **overrides) -> Evaluation:
    return plan.run(stack, overrides=overrides)[0]


def effective_inputs(r) -> dict:
    """The inputs Pulumi diffs: those named in ignore_changes (dotted paths) are not compared."""
    inputs = copy.deepcopy(r.inputs)
    for path in r.ignore_changes:
        *parents, last = path.split(".")
        node = inputs
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    return inputs


def inputs_by_urn(evaluation: Evaluation, dependencies: bool = True) -> dict:
    return {
        r.urn: (effective_inputs(r), sorted(r.depends_on) if dependencies else None, r.protect, r.ignore_changes)
        for r in evaluation.registrations
    }


# A county's own components: its CHT Core and its backup objects (Schedule, drill access).
COUNTY_COMPONENTS = {"cht-hosting:cht:ChtProject": "{county}", "cht-hosting:backup:CountyBackup": "{county}-backup"}


def county_urns(evaluation: Evaluation, county: str, components: dict[str, str] = COUNTY_COMPONENTS) -> set[str]:
    urns = set()
    for type_, name in components.items():
        for component in (r for r in evaluation.of_type(type_) if r.name == name.format(county=county)):
            urns |= {component.urn} | {r.urn for r in evaluation.descendants(component)}
    return urns


@pytest.fixture(scope="module")
def with_new_county() -> Evaluation:
    counties = prod_county_config()
    counties["marsabit-north"] = {}
    return run("prod", **{COUNTIES: counties})


@pytest.fixture(scope="module")
def without_lamu() -> Evaluation:
    counties = prod_county_config()
    del counties["lamu"]
    return run("prod", **{COUNTIES: counties})


def test_prod_composes_the_platform_then_fifty_counties(prod):
    counts = prod.type_counts()
    assert counts["vsphere:index/virtualMachine:VirtualMachine"] == 12
    assert counts["cht-hosting:k3s:K3sCluster"] == 1
    assert counts["cht-hosting:cht:ChtProject"] == 50
    k8s_provider = prod.named("k3s-k8s")
    for r in prod.registrations:
        if r.custom and r.type.startswith("kubernetes:") and r.type != "pulumi:providers:kubernetes":
            assert r.provider.startswith(k8s_provider.urn), r.name


def test_a_new_kubeconfig_never_replaces_the_kubernetes_provider(prod, dev):
    assert prod.named("k3s-k8s").inputs["clusterIdentifier"] == names.cluster_identifier("prod")
    assert dev.named("existing-cluster").inputs["clusterIdentifier"] == names.cluster_identifier("dev")


def test_counties_wait_for_the_storage_class_and_nothing_county_specific(prod):
    storage_class = prod.named("storage-class-class")
    for pvc in prod.of_type("kubernetes:core/v1:PersistentVolumeClaim"):
        assert storage_class.urn in pvc.depends_on, pvc.name
    projects = {r.name: county_urns(prod, r.name) for r in prod.of_type("cht-hosting:cht:ChtProject")}
    for county, urns in projects.items():
        others = set().union(*(u for c, u in projects.items() if c != county))
        for urn in urns:
            assert not set(prod.by_urn[urn].depends_on) & others, f"{county} waits for another county"


def test_adding_a_county_changes_no_existing_resource(prod, with_new_county):
    before, after = inputs_by_urn(prod), inputs_by_urn(with_new_county)
    added = set(after) - set(before)
    assert added == county_urns(with_new_county, "marsabit-north")
    assert len(added) > 20
    assert not set(before) - set(after)
    changed = [urn for urn in before if before[urn] != after[urn]]
    assert changed == []


def test_removing_a_county_touches_only_its_own_resources(prod, without_lamu):
    before, after = inputs_by_urn(prod), inputs_by_urn(without_lamu)
    assert set(before) - set(after) == county_urns(prod, "lamu")
    assert not set(after) - set(before)
    assert [urn for urn in after if before[urn] != after[urn]] == []


def test_removed_county_keeps_its_volumes_and_credentials(prod):
    lamu = county_urns(prod, "lamu")
    kept = [prod.by_urn[u] for u in lamu if prod.by_urn[u].retain_on_delete]
    kinds = {r.type for r in kept}
    assert "kubernetes:core/v1:PersistentVolumeClaim" in kinds
    assert "kubernetes:core/v1:Secret" in kinds
    assert all(r.protect for r in kept if r.type == "kubernetes:core/v1:PersistentVolumeClaim")


def test_critical_path_does_not_grow_with_counties_or_agents():
    staging = yaml.safe_load(stackfile.stack_path("staging").read_text())["config"]
    many_counties = {f"county-{i:02d}": {} for i in range(12)}
    agents = dict(staging["cht-hosting:agents"])
    agents["nodes"] = {f"uat-agent-{i}": f"10.30.0.{20 + i}" for i in range(1, 7)}
    capacity = {"onShortfall": "warn"}
    base = run("staging").critical_path()
    wide = run("staging", **{COUNTIES: many_counties, "cht-hosting:capacity": capacity}).critical_path()
    tall = run("staging", **{"cht-hosting:agents": agents}).critical_path()
    assert len(base) == len(wide) == len(tall)
    assert base[-1].type == "kubernetes:apps/v1:Deployment"  # a county workload ends the chain
    assert "kubernetes:storage.k8s.io/v1:StorageClass" in {r.type for r in base}


# --- the dev stack: counties on an existing cluster -------------------------------------------------------


@pytest.fixture(scope="module")
def dev() -> Evaluation:
    return run("dev")


def test_dev_registers_no_vsphere_or_remote_command_resource(dev):
    types = set(dev.type_counts())
    assert not {t for t in types if t.startswith(("vsphere:", "command:", "pulumi:providers:vsphere", "tls:"))}
    assert not {t for t in types if t.startswith("cht-hosting:") and t != "cht-hosting:cht:ChtProject"}
    assert dev.type_counts()["cht-hosting:cht:ChtProject"] == 2


def test_dev_counties_get_the_same_resources_as_in_prod_on_the_existing_cluster(prod, dev):
    def shape(evaluation, county):
        # The CHT Core objects only: dev has no backups configured, and monitoring is off by default on an
        # existing cluster (test_monitoring_stack covers both modes).
        only_cht = {"cht-hosting:cht:ChtProject": "{county}"}
        return sorted(
            (evaluation.by_urn[u].type, evaluation.by_urn[u].name)
            for u in county_urns(evaluation, county, only_cht)
            if not evaluation.by_urn[u].name.startswith(f"{county}-monitoring")
        )

    assert shape(dev, "kwale") == shape(prod, "kwale")
    provider = dev.named("existing-cluster")
    assert provider.inputs.get("context") == "k3d-cht-dev"
    for urn in county_urns(dev, "kwale", {"cht-hosting:cht:ChtProject": "{county}"}):
        r = dev.by_urn[urn]
        if r.custom and r.type.startswith("kubernetes:"):
            assert r.provider.startswith(provider.urn), r.name
    pvc = dev.named("kwale-couchdb-pvc")
    assert pvc.inputs["spec"]["storageClassName"] == "local-path"


# --- day-2 changes on the whole prod stack ----------------------------------------------------------------


def changed_urns(before: Evaluation, after: Evaluation) -> set[str]:
    a, b = inputs_by_urn(before), inputs_by_urn(after)
    assert set(a) == set(b), "a version bump must add or remove nothing"
    return {urn for urn in a if a[urn] != b[urn]}


def prod_config(key: str) -> dict:
    return copy.deepcopy(yaml.safe_load(stackfile.stack_path("prod").read_text())["config"][f"cht-hosting:{key}"])


def test_k3s_version_bump_changes_the_upgrade_plans_and_nothing_else(prod):
    k3s = prod_config("k3s")
    k3s["version"] = "v1.36.4+k3s1"
    bumped = run("prod", **{"cht-hosting:k3s": k3s})
    changed = changed_urns(prod, bumped)
    assert sorted(bumped.by_urn[u].type for u in changed) == ["kubernetes:upgrade.cattle.io/v1:Plan"] * 2
    for urn in changed:
        assert bumped.by_urn[urn].inputs["spec"]["version"] == "v1.36.4+k3s1"


def test_cht_version_bump_changes_images_only_never_a_volume(prod):
    cht = prod_config("cht")
    cht["version"] = "4.22.1"
    bumped = run("prod", **{"cht-hosting:cht": cht})
    changed = changed_urns(prod, bumped)
    assert {bumped.by_urn[u].type for u in changed} == {"kubernetes:apps/v1:Deployment"}
    assert len(changed) == 46 * 5 + 2 * 7 + 2 * 5  # every CHT Deployment of every county (3-node: 7, else 5)
    for urn in changed:
        before, after = prod.by_urn[urn].inputs, bumped.by_urn[urn].inputs
        for old, new in zip(before["spec"]["template"]["spec"]["containers"], after["spec"]["template"]["spec"]["containers"], strict=True):
            assert new["image"].endswith(":4.22.1") and old["image"].endswith(":4.22.0")
            assert {**new, "image": old["image"]} == old  # only the image differs


def test_removing_an_agent_removes_only_that_node_and_drains_it_first(prod):
    agents = prod_config("agents")
    del agents["nodes"]["agent-9"]
    smaller = run("prod", **{"cht-hosting:agents": agents})
    # Dependencies are compared apart: the cluster's provider stops waiting for the removed node.
    before, after = inputs_by_urn(prod, dependencies=False), inputs_by_urn(smaller, dependencies=False)
    removed = {prod.by_urn[u].name for u in set(before) - set(after)}
    assert removed == {
        "agents-agent-9", "agents-agent-9-host-key", "agents-agent-9-cns-vm",
        "agents-agent-9-lasting-host-key", "agents-agent-9-host-key-rotation", "agents-agent-9-host-key-retirement",
        "k3s-agent-9", "k3s-agent-9-configure", "k3s-agent-9-install", "k3s-agent-9-removal",
    }
    assert not set(after) - set(before)
    # Only the agents' DRS anti-affinity rule changes (one VM fewer, in place).
    assert [smaller.by_urn[u].name for u in after if before[u] != after[u]] == ["agents-anti-affinity"]
    rewired = [u for u in after if sorted(prod.by_urn[u].depends_on) != sorted(smaller.by_urn[u].depends_on)]
    assert {smaller.by_urn[u].name for u in rewired} == {"k3s-k8s", "agents-anti-affinity"}
    provider_before, provider_after = prod.named("k3s-k8s"), smaller.named("k3s-k8s")
    assert set(provider_before.depends_on) - set(provider_after.depends_on) == {prod.named("k3s-agent-9-install").urn}
    removal = prod.named("k3s-agent-9-removal")
    assert "drain" in removal.inputs["delete"] and "delete node" in removal.inputs["delete"].replace("'", "")
    install = prod.named("k3s-agent-9-install")
    assert "k3s-agent-uninstall.sh" in install.inputs["delete"]
    # The engine deletes dependents first: removal (drain) -> install (uninstall) -> configure -> VM.
    assert install.urn in removal.depends_on
    assert prod.named("k3s-agent-9-configure").urn in install.depends_on
    assert prod.named("agents-agent-9").urn in prod.named("k3s-agent-9-configure").depends_on
