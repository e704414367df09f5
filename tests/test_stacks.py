"""Whole stacks on the mock engine.

The tests' own stacks (tests/stacks/) pin numbers: the national example's composition, a day-2 change's exact
effect, the k3d stack. The operator's stacks (every Pulumi.<stack>.yaml at the repository root, discovered)
are checked only by what holds for any valid stack: it validates (capacity fits, or fails with its message),
it evaluates, every county gets its objects, and counties and agents added to and removed from a copy of it
change nothing but their own resources.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from pathlib import Path

import pytest
import yaml

from config import capacity, layout, names
from config.errors import ConfigError
from config.validate import validate, warnings
from offline import plan, stackfile
from offline.engine import ROOT, Evaluation
from tests.conftest import STACKS, USER_STACKS, raw_config

COUNTIES = "cht-hosting:counties"


def run(stack: str, **overrides) -> Evaluation:
    """One of the tests' own stacks, with whole `project:key` sections replaced."""
    return plan.run(stack, overrides=overrides, stack_dir=STACKS)[0]


def section(stack: str, key: str):
    """A copy of one `cht-hosting:<key>` section of one of the tests' own stacks."""
    return copy.deepcopy(yaml.safe_load(stackfile.stack_path(stack, STACKS).read_text())["config"][f"cht-hosting:{key}"])


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


# A county's own component: its CHT Core, which owns its backup Schedule and monitoring too.
COUNTY_COMPONENTS = {"cht-hosting:cht:ChtProject": "{county}"}


def county_urns(evaluation: Evaluation, county: str, components: dict[str, str] = COUNTY_COMPONENTS) -> set[str]:
    urns = set()
    for type_, name in components.items():
        for component in (r for r in evaluation.of_type(type_) if r.name == name.format(county=county)):
            urns |= {component.urn} | {r.urn for r in evaluation.descendants(component)}
    return urns


def test_national_composes_the_platform_then_fifty_counties(national):
    counts = national.type_counts()
    assert counts["vsphere:index/virtualMachine:VirtualMachine"] == 12
    assert counts["cht-hosting:k3s:K3sCluster"] == 1
    assert counts["cht-hosting:cht:ChtProject"] == 50
    k8s_provider = national.named("k3s-k8s")
    for r in national.registrations:
        if r.custom and r.type.startswith("kubernetes:") and r.type != "pulumi:providers:kubernetes":
            assert r.provider.startswith(k8s_provider.urn), r.name


def test_a_new_kubeconfig_never_replaces_the_kubernetes_provider(national, k3d):
    assert national.named("k3s-k8s").inputs["clusterIdentifier"] == names.cluster_identifier("national")
    assert k3d.named("existing-cluster").inputs["clusterIdentifier"] == names.cluster_identifier("k3d")


def test_counties_wait_for_the_storage_class_and_nothing_county_specific(national):
    storage_class = national.named("storage-class-class")
    for pvc in national.of_type("kubernetes:core/v1:PersistentVolumeClaim"):
        assert storage_class.urn in pvc.depends_on, pvc.name
    projects = {r.name: county_urns(national, r.name) for r in national.of_type("cht-hosting:cht:ChtProject")}
    for county, urns in projects.items():
        others = set().union(*(u for c, u in projects.items() if c != county))
        for urn in urns:
            assert not set(national.by_urn[urn].depends_on) & others, f"{county} waits for another county"


def test_removed_county_keeps_its_volumes_and_credentials(national):
    lamu = county_urns(national, "lamu")
    kept = [national.by_urn[u] for u in lamu if national.by_urn[u].retain_on_delete]
    kinds = {r.type for r in kept}
    assert "kubernetes:core/v1:PersistentVolumeClaim" in kinds
    assert "kubernetes:core/v1:Secret" in kinds
    assert all(r.protect for r in kept if r.type == "kubernetes:core/v1:PersistentVolumeClaim")


def test_critical_path_does_not_grow_with_counties_or_agents():
    many_counties = {f"county-{i:02d}": {} for i in range(12)}
    agents = section("regional", "agents")
    agents["nodes"] = {f"uat-agent-{i}": f"10.30.0.{20 + i}" for i in range(1, 7)}
    capacity = {"onShortfall": "warn"}
    base = run("regional").critical_path()
    wide = run("regional", **{COUNTIES: many_counties, "cht-hosting:capacity": capacity}).critical_path()
    tall = run("regional", **{"cht-hosting:agents": agents}).critical_path()
    assert len(base) == len(wide)
    # A pool's VMs change one at a time (components/vsphere/node_pool.py: each VM after the node before it is
    # healthy, `<node>-vm-back`), so a first deploy clones them one after another too: each added agent adds
    # its VM's steps (clone, host-key rotation and retirement, vm-back) to the chain, and nothing else.
    added = len(agents["nodes"]) - len(section("regional", "agents")["nodes"])
    assert len(tall) == len(base) + 4 * added
    assert all(r.name.startswith(("agents-uat-agent-", "k3s-uat-agent-")) for r in tall if r.name not in {b.name for b in base})
    assert base[-1].type == "kubernetes:apps/v1:Deployment"  # a county workload ends the chain
    assert "kubernetes:storage.k8s.io/v1:StorageClass" in {r.type for r in base}


# --- the k3d stack: counties on an existing cluster -------------------------------------------------------


@pytest.fixture(scope="module")
def k3d() -> Evaluation:
    return run("k3d")


def test_k3d_registers_no_vsphere_or_remote_command_resource(k3d):
    types = set(k3d.type_counts())
    assert not {t for t in types if t.startswith(("vsphere:", "command:", "pulumi:providers:vsphere", "tls:"))}
    assert not {t for t in types if t.startswith("cht-hosting:") and t != "cht-hosting:cht:ChtProject"}
    assert k3d.type_counts()["cht-hosting:cht:ChtProject"] == 2


def test_k3d_counties_get_the_same_resources_as_in_national_on_the_existing_cluster(national, k3d):
    def shape(evaluation, county):
        # The CHT Core objects only: k3d has no backups configured (a county's Schedule is its ChtProject's
        # child), and monitoring is off by default on an
        # existing cluster (test_monitoring_stack covers both modes).
        only_cht = {"cht-hosting:cht:ChtProject": "{county}"}
        return sorted(
            (evaluation.by_urn[u].type, evaluation.by_urn[u].name)
            for u in county_urns(evaluation, county, only_cht)
            if not evaluation.by_urn[u].name.startswith((f"{county}-monitoring", f"{county}-backup"))
        )

    assert shape(k3d, "kwale") == shape(national, "kwale")
    provider = k3d.named("existing-cluster")
    assert provider.inputs.get("context") == "k3d-cht-dev"
    for urn in county_urns(k3d, "kwale", {"cht-hosting:cht:ChtProject": "{county}"}):
        r = k3d.by_urn[urn]
        if r.custom and r.type.startswith("kubernetes:"):
            assert r.provider.startswith(provider.urn), r.name
    pvc = k3d.named("kwale-couchdb-pvc")
    assert pvc.inputs["spec"]["storageClassName"] == "local-path"


# --- day-2 changes on the whole national stack ----------------------------------------------------------------


def changed_urns(before: Evaluation, after: Evaluation) -> set[str]:
    a, b = inputs_by_urn(before), inputs_by_urn(after)
    assert set(a) == set(b), "a version bump must add or remove nothing"
    return {urn for urn in a if a[urn] != b[urn]}


def test_k3s_version_bump_changes_the_upgrade_plans_and_nothing_else(national):
    k3s = section("national", "k3s")
    k3s["version"] = "v1.35.9+k3s1"
    bumped = run("national", **{"cht-hosting:k3s": k3s})
    changed = changed_urns(national, bumped)
    assert sorted(bumped.by_urn[u].type for u in changed) == ["kubernetes:upgrade.cattle.io/v1:Plan"] * 2
    for urn in changed:
        assert bumped.by_urn[urn].inputs["spec"]["version"] == "v1.35.9+k3s1"


def test_cht_version_bump_changes_images_only_never_a_volume(national):
    cht = section("national", "cht")
    cht["version"] = "4.22.1"
    bumped = run("national", **{"cht-hosting:cht": cht})
    changed = changed_urns(national, bumped)
    assert {bumped.by_urn[u].type for u in changed} == {"kubernetes:apps/v1:Deployment"}
    # Every CHT Deployment of every county (3-node: 6, else 4; the healthcheck runs in the haproxy pod).
    assert len(changed) == 46 * 4 + 2 * 6 + 2 * 4
    for urn in changed:
        before, after = national.by_urn[urn].inputs, bumped.by_urn[urn].inputs
        for old, new in zip(before["spec"]["template"]["spec"]["containers"], after["spec"]["template"]["spec"]["containers"], strict=True):
            assert new["image"].endswith(":4.22.1") and old["image"].endswith(":4.22.0")
            assert {**new, "image": old["image"]} == old  # only the image differs


def test_removing_an_agent_removes_only_that_node_and_drains_it_first(national):
    agents = section("national", "agents")
    del agents["nodes"]["agent-9"]
    smaller = run("national", **{"cht-hosting:agents": agents})
    # Dependencies are compared apart: the cluster's provider stops waiting for the removed node.
    before, after = inputs_by_urn(national, dependencies=False), inputs_by_urn(smaller, dependencies=False)
    removed = {national.by_urn[u].name for u in set(before) - set(after)}
    assert removed == {
        "agents-agent-9", "agents-agent-9-host-key", "agents-agent-9-cns-vm",
        "agents-agent-9-lasting-host-key", "agents-agent-9-host-key-rotation", "agents-agent-9-host-key-retirement",
        "agents-agent-9-vm-back",
        "k3s-agent-9", "k3s-agent-9-configure", "k3s-agent-9-install", "k3s-agent-9-removal",
    }
    assert not set(after) - set(before)
    # Only the agents' DRS anti-affinity rule changes (one VM fewer, in place).
    assert [smaller.by_urn[u].name for u in after if before[u] != after[u]] == ["agents-anti-affinity"]
    rewired = [u for u in after if sorted(national.by_urn[u].depends_on) != sorted(smaller.by_urn[u].depends_on)]
    assert {smaller.by_urn[u].name for u in rewired} == {"k3s-k8s", "agents-anti-affinity"}
    provider_before, provider_after = national.named("k3s-k8s"), smaller.named("k3s-k8s")
    assert set(provider_before.depends_on) - set(provider_after.depends_on) == {national.named("k3s-agent-9-install").urn}
    removal = national.named("k3s-agent-9-removal")
    assert "drain" in removal.inputs["delete"] and "delete node" in removal.inputs["delete"].replace("'", "")
    install = national.named("k3s-agent-9-install")
    assert "k3s-agent-uninstall.sh" in install.inputs["delete"]
    # The engine deletes dependents first: removal (drain) -> install (uninstall) -> configure -> VM.
    assert install.urn in removal.depends_on
    assert national.named("k3s-agent-9-configure").urn in install.depends_on
    assert national.named("agents-agent-9").urn in national.named("k3s-agent-9-configure").depends_on


# --- the operator's stacks: properties that hold for any valid stack ---------------------------------------


def user_documents() -> dict[str, dict]:
    """Every operator stack file, as documents: a stack of a split deployment is evaluated with its siblings."""
    return {stack: yaml.safe_load(stackfile.stack_path(stack, ROOT).read_text()) for stack in USER_STACKS}


def _stacks_key(document: dict) -> dict:
    value = document["config"].get("cht-hosting:stacks")
    return value if isinstance(value, dict) else {}


def platform_of(documents: dict[str, dict], stack: str) -> str:
    """The stack whose file holds the platform settings (nodes, capacity): a county stack's platform, else itself."""
    return _stacks_key(documents[stack]).get("platform") or stack


def county_file_of(documents: dict[str, dict], stack: str) -> str:
    """Where an operator adds a county to this stack's deployment: this stack's file when it holds counties
    (or is a single stack), else its platform's first county stack's."""
    if documents[stack]["config"].get(COUNTIES) or not _stacks_key(documents[stack]).get("counties"):
        return stack
    return _stacks_key(documents[stack])["counties"][0]


def vsphere_mode(document: dict) -> bool:
    return document["config"].get("cht-hosting:clusterMode", "vsphere-k3s") == "vsphere-k3s"


def capacity_warns(documents: dict[str, dict], stack: str) -> dict[str, dict]:
    """The same stack files with a capacity shortfall of `stack`'s deployment as a warning, so every other
    property can be checked."""
    documents = copy.deepcopy(documents)
    document = documents[platform_of(documents, stack)]
    if vsphere_mode(document):
        document["config"]["cht-hosting:capacity"] = {**(document["config"].get("cht-hosting:capacity") or {}), "onShortfall": "warn"}
    return documents


class _Plain(yaml.SafeDumper):
    """Writes a value used twice out twice: stack files refuse YAML aliases, as an operator would write them."""

    def ignore_aliases(self, data) -> bool:
        return True


def evaluate(documents: dict[str, dict], stack: str, folder: Path) -> Evaluation:
    """Stack documents written to `folder` as Pulumi.<stack>.yaml (their names kept: names derive from them), and
    `stack` evaluated there (a county stack on its platform's offline plan)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, document in documents.items():
        (folder / f"Pulumi.{name}.yaml").write_text(yaml.dump(document, Dumper=_Plain, sort_keys=False))
    return plan.run(stack, stack_dir=folder)[0]


@pytest.fixture(scope="module")
def user_stacks(tmp_path_factory) -> dict[str, Evaluation]:
    """Each operator stack evaluated once (a capacity shortfall as a warning; see the next test for it)."""
    documents = user_documents()
    return {
        stack: evaluate(capacity_warns(documents, stack), stack, tmp_path_factory.mktemp(stack))
        for stack in USER_STACKS
    }


def lenient(values: dict) -> dict:
    """Raw config values with a capacity shortfall as a warning (vsphere-k3s mode: the only mode with capacity)."""
    if values.get("clusterMode", "vsphere-k3s") != "vsphere-k3s":
        return values
    return {**values, "capacity": {**(values.get("capacity") or {}), "onShortfall": "warn"}}


@pytest.mark.parametrize("stack", USER_STACKS)
def test_a_user_stack_validates_and_its_capacity_fits_or_fails_with_its_message(stack):
    values, secrets = raw_config(stack, root=ROOT)
    config = validate(lenient(values), secrets)  # valid in every other respect
    message = capacity.shortfall(capacity.plan(config), config) if config.capacity else None
    if message is None:
        validate(values, secrets)
    elif (values.get("capacity") or {}).get("onShortfall") == "warn":
        assert message in warnings(validate(values, secrets))
    else:
        with pytest.raises(ConfigError) as error:
            validate(values, secrets)
        assert error.value.problems == [message]


@pytest.mark.parametrize("stack", USER_STACKS)
def test_a_user_stack_gives_every_county_its_objects(stack, user_stacks):
    """Every county the stack holds (in a split deployment, the counties of its own file) gets its objects."""
    evaluation = user_stacks[stack]
    values, secrets = raw_config(stack, root=ROOT)
    counties = validate(lenient(values), secrets).counties
    shape = layout.assemble(*stackfile.raw(stackfile.load(stack, root=ROOT)), stack, root=ROOT)[0]
    own = {name: county for name, county in counties.items() if shape.own(name)}
    assert {r.name for r in evaluation.of_type("cht-hosting:cht:ChtProject")} == set(own)
    exported = evaluation.outputs["counties"]
    assert set(exported) == set(own)
    for name, county in own.items():
        objects = [evaluation.by_urn[u] for u in county_urns(evaluation, name, {"cht-hosting:cht:ChtProject": "{county}"})]
        kinds = [r.inputs.get("kind") for r in objects if r.custom]
        namespace = next(r for r in objects if r.inputs.get("kind") == "Namespace")
        assert namespace.inputs["metadata"]["name"] == names.namespace(name)
        assert namespace.inputs["metadata"]["labels"][names.COUNTY_LABEL] == name
        assert kinds.count("PersistentVolumeClaim") == county.settings.couchdb_nodes, name
        assert {"Deployment", "Service", "Secret", "Ingress", "NetworkPolicy", "ResourceQuota"} <= set(kinds), name
        assert exported[name]["url"] == f"https://{county.host}"


@pytest.mark.parametrize("stack", USER_STACKS)
def test_a_user_stack_passes_the_policy_pack(stack, user_stacks):
    from tests.test_policy import run_pack

    assert run_pack(user_stacks[stack]) == []


def free_address(document: dict) -> str:
    """The highest address of the node network that no node, endpoint, gateway or resolver uses."""
    config = document["config"]
    network = ipaddress.ip_network(config["cht-hosting:network"]["cidr"])
    used = {config["cht-hosting:network"]["gateway"], config["cht-hosting:k3s"]["apiEndpoint"]}
    used |= set(config["cht-hosting:network"].get("dns") or [])
    for pool in ("controlPlane", "agents"):
        used |= set(config[f"cht-hosting:{pool}"]["nodes"].values())
    return str(next(ip for ip in reversed(list(network.hosts())) if str(ip) not in used))


def named_after(evaluation: Evaluation, node: str) -> set[str]:
    """A node's own resources: those whose name carries the node's name as a whole, and their children."""
    pattern = re.compile(rf"(^|-){re.escape(node)}(-|$)")
    own = [r for r in evaluation.registrations if pattern.search(r.name)]
    return {r.urn for r in own} | {d.urn for r in own for d in evaluation.descendants(r)}


# What may change when an agent comes or goes: the agent pool's DRS rule lists the pool's VMs, and the
# cluster's Kubernetes provider waits for every node's install.
POOL_WIDE = {"vsphere:index/computeClusterVmAntiAffinityRule:ComputeClusterVmAntiAffinityRule"}
WAITS_FOR_EVERY_NODE = {"pulumi:providers:kubernetes", *POOL_WIDE}


@pytest.mark.parametrize("stack", USER_STACKS)
def test_counties_and_agents_added_and_removed_in_a_user_stack_change_nothing_else(stack, tmp_path):
    """Two counties and an agent added, one county and one agent removed, in a copy of the operator's stack files.
    In a split deployment the counties change in the file that holds them (this stack's, or for a platform stack
    without counties its first county stack's) and the agents in the platform's file; the stack evaluated
    changes only in what it holds of them."""
    before_docs = capacity_warns(user_documents(), stack)
    after_docs = copy.deepcopy(before_docs)
    platform, county_file = platform_of(after_docs, stack), county_file_of(after_docs, stack)
    config = after_docs[platform]["config"]
    counties = after_docs[county_file]["config"][COUNTIES]
    # A new county as the operator would write it: like an existing one (not migrated), under a new name.
    template = next((c for c in counties.values() if not (c or {}).get("migration")), {}) or {}
    added = [n for n in ("added-county-a", "added-county-b") if n not in counties][:2]
    for name in added:
        county = copy.deepcopy({k: v for k, v in template.items() if k != "migration"})
        if "host" in county:
            county["host"] = f"{name}.{county['host'].split('.', 1)[1]}"
        counties[name] = county
    removed = next(n for n in counties if n not in added and not (counties[n] or {}).get("migration"))
    del counties[removed]
    added_agent = removed_agent = None
    if vsphere_mode(after_docs[platform]):
        agents = config["cht-hosting:agents"]["nodes"]
        added_agent = "added-agent"
        agents[added_agent] = free_address(after_docs[platform])
        # Any agent whose name no other node's name contains, so its resources are told apart by name.
        nodes = [*agents, *config["cht-hosting:controlPlane"]["nodes"]]
        removed_agent = next(a for a in agents if a != added_agent and not any(a in n for n in nodes if n != a))
        del agents[removed_agent]
    # What of it this stack registers: the counties where it holds them, the agents where it builds the platform.
    if county_file != stack:
        added, removed = [], None
    if platform != stack:
        added_agent = removed_agent = None

    before = evaluate(before_docs, stack, tmp_path / "before")
    after = evaluate(after_docs, stack, tmp_path / "after")  # validates and evaluates: ProgramFailed otherwise

    gone = (county_urns(before, removed) if removed else set()) | (named_after(before, removed_agent) if removed_agent else set())
    new = set().union(*(county_urns(after, n) for n in added)) | (named_after(after, added_agent) if added_agent else set())
    if removed:
        assert len(county_urns(before, removed)) > 10 and all(len(county_urns(after, n)) > 10 for n in added)
    if removed_agent:
        assert named_after(before, removed_agent) and named_after(after, added_agent)
    a, b = inputs_by_urn(before, dependencies=False), inputs_by_urn(after, dependencies=False)
    assert set(a) - set(b) == gone
    assert set(b) - set(a) == new
    changed = {after.by_urn[u].type for u in set(a) & set(b) if a[u] != b[u]}
    assert changed <= (POOL_WIDE if added_agent else set()), changed
    rewired = {
        after.by_urn[u].type
        for u in set(a) & set(b)
        if set(before.by_urn[u].depends_on) - gone != set(after.by_urn[u].depends_on) - new
    }
    assert rewired <= (WAITS_FOR_EVERY_NODE if added_agent else set()), rewired
