"""K3sCluster on the mock engine: a K3sNode per node, bootstrap order, the remembered etcd seed, secrets,
upgrades that touch only the Plans, removal and replacement of nodes."""

from __future__ import annotations

import json
from pathlib import Path

import pulumi
import pytest
import yaml
from pulumi_command import remote

from components.k3s.cluster import K3sCluster
from components.vsphere.node import NodeHandle
from config import layout, names
from config.model import K3sConfig
from offline import fakes, plan, stackfile
from offline.engine import ROOT, Evaluation, ProgramFailed, record
from tests.conftest import USER_STACKS

CMD = "command:remote:Command"
PLAN = "kubernetes:upgrade.cattle.io/v1:Plan"
SERVERS = {"cp-1": "10.20.0.11", "cp-2": "10.20.0.12", "cp-3": "10.20.0.13"}
AGENTS = {"agent-1": "10.20.0.21", "agent-2": "10.20.0.22", "agent-3": "10.20.0.23"}
BASE = dict(version="v1.36.1+k3s1", apiEndpoint="10.20.0.10")
NODE = "cht-hosting:k3s:K3sNode"


class NodeVm(pulumi.CustomResource):
    """Stands in for the NodePool's VM: only its identity matters to K3sCluster (depends_on)."""

    def __init__(self, name: str):
        super().__init__("test:index:Vm", name, {})


def handles(nodes: dict[str, str], role: str, uuids: dict[str, str] | None = None) -> list[NodeHandle]:
    out = []
    for name, ip in nodes.items():
        out.append(
            NodeHandle(
                name=name,
                ip=ip,
                role=role,  # type: ignore[arg-type]
                uuid=pulumi.Output.from_input((uuids or {}).get(name, fakes.fake_uuid("vm", name))),
                connection=remote.ConnectionArgs(host=ip, user="chtadmin", private_key="dummy-key", host_key="ssh-ed25519 AAAAdummy"),
                vm=NodeVm(f"{name}-vm"),
            )
        )
    return out


def run(servers=SERVERS, agents=AGENTS, etcd_seed=None, uuids=None, installed_before_vm_tracking=frozenset(), **k3s) -> tuple[Evaluation, dict]:
    seen: dict = {}

    def build():
        cluster = K3sCluster(
            "k3s",
            K3sConfig.model_validate({**BASE, **k3s}),
            servers=handles(servers, "server", uuids),
            agents=handles(agents, "agent", uuids),
            etcd_seed=etcd_seed,
            installed_before_vm_tracking=installed_before_vm_tracking,
        )
        seen["cluster"] = cluster
        pulumi.export("kubeconfig", cluster.kubeconfig)

    return record(build), seen


@pytest.fixture(scope="module")
def kube_vip() -> tuple[Evaluation, dict]:
    return run()


def urn(ev: Evaluation, name: str) -> str:
    return ev.named(name).urn


def test_each_node_is_a_component_holding_its_own_lifecycle(kube_vip):
    ev, _ = kube_vip
    component = ev.named("k3s")
    assert component.type == "cht-hosting:k3s:K3sCluster"
    own = [r for r in ev.registrations if not r.name.endswith("-vm")]
    assert all(r.parent == component.urn or r in ev.descendants(component) for r in own if r is not component)
    for node in [*SERVERS, *AGENTS]:
        lifecycle = ev.named(f"k3s-{node}")
        assert lifecycle.type == NODE and lifecycle.parent == component.urn
        steps = {r.name: r for r in ev.children(lifecycle)}
        assert set(steps) == {f"k3s-{node}-configure", f"k3s-{node}-install", f"k3s-{node}-removal"}
        # Every step runs on the node's own connection: nothing about one node lives on another.
        assert {r.inputs["connection"]["host"] for r in steps.values()} == {{**SERVERS, **AGENTS}[node]}


def test_commands_keep_the_urns_they_had_as_the_clusters_children(kube_vip):
    """An alias to the cluster as parent: a deployed cluster sees no delete (uninstall) and no create."""
    ev, _ = kube_vip
    cluster = ev.named("k3s").urn
    for node in [*SERVERS, *AGENTS]:
        for step in ("configure", "install", "removal"):
            assert ev.named(f"k3s-{node}-{step}").aliases == ({"spec": {"parentUrn": cluster}},)


def test_bootstrap_order(kube_vip):
    ev, _ = kube_vip
    tokens = {urn(ev, "k3s-token"), urn(ev, "k3s-agent-token")}
    deps = lambda name: set(ev.named(name).depends_on) - tokens  # noqa: E731
    assert deps("k3s-cp-1-configure") == {urn(ev, "cp-1-vm")}
    assert deps("k3s-cp-1-install") == {urn(ev, "k3s-cp-1-configure")}
    # Servers join one after the other...
    assert urn(ev, "k3s-cp-1-install") in deps("k3s-cp-2-configure")
    assert urn(ev, "k3s-cp-2-install") in deps("k3s-cp-3-configure")
    # ...agents as soon as the first server is up, configured one after another (a change restarts them one
    # at a time: tests/test_k3s_rolling.py), their installs not waiting for each other.
    previous: set[str] = set()
    for agent in AGENTS:
        assert deps(f"k3s-{agent}-configure") == {urn(ev, f"{agent}-vm"), urn(ev, "k3s-cp-1-install"), *previous}
        assert urn(ev, f"k3s-{agent}-configure") in deps(f"k3s-{agent}-install")
        assert not any(urn(ev, f"k3s-{a}-install") in deps(f"k3s-{agent}-install") for a in AGENTS)
        previous = {urn(ev, f"k3s-{agent}-configure")}
    provider = ev.named("k3s-k8s")
    assert {urn(ev, f"k3s-{n}-install") for n in [*SERVERS, *AGENTS]} <= set(provider.depends_on)


def test_every_node_gets_its_flags_and_vm_uuid(kube_vip):
    ev, _ = kube_vip
    for node in [*SERVERS, *AGENTS]:
        script = ev.named(f"k3s-{node}-configure").inputs["create"]
        assert f"provider-id=vsphere://{fakes.fake_uuid('vm', node)}" in script
        assert "cloud-provider=external" in script and f"node-name: {node}" in script
        assert (names.SERVER_TAINT in script) == (node in SERVERS)
        assert ("disable-cloud-controller: true" in script) == (node in SERVERS)
        assert ("ghcr.io/kube-vip/kube-vip:v1.0.0" in script) == (node in SERVERS)
        # kube-vip finds the interface itself unless k3s.kubeVipInterface names one.
        assert "vip_interface" not in script
    assert "cluster-init: true" in ev.named("k3s-cp-1-configure").inputs["create"]
    assert "server: https://10.20.0.10:6443" in ev.named("k3s-cp-2-configure").inputs["create"]
    install = ev.named("k3s-agent-1-install").inputs["create"]
    assert "INSTALL_K3S_VERSION=v1.36.1+k3s1 INSTALL_K3S_EXEC=agent" in install and "https://get.k3s.io" in install


def test_a_configured_kube_vip_interface_reaches_every_server():
    ev, _ = run(kubeVipInterface="ens224")
    for node in SERVERS:
        assert "value: ens224" in ev.named(f"k3s-{node}-configure").inputs["create"]


def token_value(ev: Evaluation, name: str) -> str:
    token = ev.named(name)
    assert token.type == "random:index/randomPassword:RandomPassword" and token.protect
    return fakes.RESOURCE_OUTPUTS[token.type](type("A", (), {"name": name, "inputs": token.inputs})())["result"]


def test_secrets_reach_nodes_only_through_stdin_and_never_a_log(kube_vip):
    """The tokens go to every configure, the admin kubeconfig to every agent's removal: on stdin only.
    Servers get both tokens; an agent gets only the agent token (it cannot join as a server)."""
    ev, _ = kube_vip
    value, agent_value = token_value(ev, "k3s-token"), token_value(ev, "k3s-agent-token")
    assert value != agent_value
    kubeconfig = ev.named("k3s-k8s").inputs["kubeconfig"]
    for r in ev.registrations:
        for key, input_value in r.inputs.items():
            if key == "stdin":
                assert "stdin" in r.secret_inputs, r.name
                assert r.inputs["logging"] == "none"
                assert {"stdout", "stderr"} <= set(r.additional_secret_outputs)
            elif r.name != "k3s-k8s":
                for secret in (value, agent_value):
                    assert secret not in str(input_value), f"{r.name}.{key} carries a token"
                assert "client-key-data" not in str(input_value), f"{r.name}.{key} carries the kubeconfig"
        assert "environment" not in r.inputs
    stdin = {r.name: r.inputs.get("stdin") for r in ev.of_type(CMD)}
    for server in SERVERS:
        assert stdin[f"k3s-{server}-configure"] == f"{value}\n{agent_value}\n"
    for agent in AGENTS:
        assert stdin[f"k3s-{agent}-configure"] == f"{agent_value}\n"
    assert {name for name, given in stdin.items() if given and value in given} == {f"k3s-{n}-configure" for n in SERVERS}
    with_kubeconfig = {name for name, given in stdin.items() if given == kubeconfig}
    # Every joining node checks for its predecessor's Node with it; agents also drain themselves with it.
    joining = [n for n in [*SERVERS, *AGENTS] if n != "cp-1"]
    assert with_kubeconfig == {f"k3s-{n}-install" for n in joining} | {f"k3s-{n}-removal" for n in AGENTS}


def test_kubeconfig_is_a_secret_rewritten_to_the_endpoint(kube_vip):
    ev, seen = kube_vip
    read = ev.named("k3s-kubeconfig")
    assert read.inputs["create"] == "sudo -n cat /etc/rancher/k3s/k3s.yaml"
    assert read.inputs["connection"]["host"] == SERVERS["cp-1"]  # the seed
    assert read.inputs["logging"] == "none" and {"stdout", "stderr"} <= set(read.additional_secret_outputs)
    provider = ev.named("k3s-k8s")
    assert "kubeconfig" in provider.secret_inputs
    doc = yaml.safe_load(provider.inputs["kubeconfig"])
    assert doc["clusters"][0]["cluster"]["server"] == "https://10.20.0.10:6443"
    assert doc["current-context"] == names.cluster_identifier("test")
    assert doc["users"][0]["user"]["client-key-data"]
    assert ev.outputs["kubeconfig"] == provider.inputs["kubeconfig"]
    assert seen["cluster"].lb_nginx_config is None


def test_everything_in_cluster_uses_the_provider(kube_vip):
    ev, _ = kube_vip
    provider = ev.named("k3s-k8s")
    k8s = [r for r in ev.registrations if r.type.startswith("kubernetes:")]
    assert len(ev.of_type(PLAN)) == 2 and len(k8s) == 4
    assert all(r.provider.startswith(provider.urn) for r in k8s)
    plans = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in ev.of_type(PLAN)}
    assert plans["k3s-server"]["version"] == plans["k3s-agent"]["version"] == BASE["version"]
    assert plans["k3s-agent"]["prepare"]["args"] == ["prepare", "k3s-server"]


def _effective_inputs(ev: Evaluation) -> dict[str, dict]:
    """What the engine would diff: inputs minus the fields the resource tells it to ignore."""
    return {r.name: {k: v for k, v in r.inputs.items() if k not in r.ignore_changes} for r in ev.registrations}


def _changed(before: Evaluation, after: Evaluation, but: frozenset[str] = frozenset()) -> set[str]:
    old, new = _effective_inputs(before), _effective_inputs(after)
    drop = lambda inputs: {k: v for k, v in inputs.items() if k not in but}  # noqa: E731
    return {name for name in old.keys() & new.keys() if drop(old[name]) != drop(new[name])}


# When the first server leaves, the kubeconfig is read from another server (its own admin client certificate):
# the copy other nodes hold on stdin changes, and the server it is now read from holds none (nor its logging
# switch). That update runs only an echo on them.
KUBECONFIG_COPY = frozenset({"stdin", "logging"})


def test_version_bump_changes_the_plans_and_nothing_else(kube_vip):
    before, _ = kube_vip
    after, _ = run(version="v1.36.2+k3s1")
    assert {r.name for r in before.registrations} == {r.name for r in after.registrations}
    assert _changed(before, after) == {"k3s-upgrades-server-plan", "k3s-upgrades-agent-plan"}
    # The install scripts do carry the version, for nodes created later; the engine ignores it on existing ones.
    for r in after.of_type(CMD):
        if r.name.endswith("-install"):
            assert r.ignore_changes == ("create",) and "v1.36.2+k3s1" in r.inputs["create"]
    # Options too: nothing gains a replacement trigger or a new dependency.
    opts = lambda ev: {r.name: (set(r.depends_on), r.replace_on_changes, r.protect) for r in ev.registrations}  # noqa: E731
    assert opts(before) == opts(after)


@pytest.mark.parametrize(
    "servers, agents",
    [
        (SERVERS, {**AGENTS, "agent-0": "10.20.0.20"}),  # an agent that sorts first
        ({**SERVERS, "cp-0": "10.20.0.14", "cp-4": "10.20.0.15"}, AGENTS),  # servers before and after the seed
    ],
    ids=["agent", "servers"],
)
def test_adding_nodes_changes_no_other_nodes_commands_or_config(kube_vip, servers, agents):
    before, _ = kube_vip
    after, _ = run(servers=servers, agents=agents, etcd_seed="cp-1")  # the cluster exists: cp-1 seeded it
    existing = {f"k3s-{n}-{step}" for n in [*SERVERS, *AGENTS] for step in ("configure", "install", "removal")}
    changed = _changed(before, after)
    # The seed's one-time switch from cluster-init to joining through the endpoint, and nothing else.
    assert changed & existing == {"k3s-cp-1-configure"}
    assert "cluster-init" not in after.named("k3s-cp-1-configure").inputs["create"]
    new = {n for n in [*servers, *agents] if n not in SERVERS and n not in AGENTS}
    for n in new:
        assert "server: https://10.20.0.10:6443" in after.named(f"k3s-{n}-configure").inputs["create"]
    # Against a cluster that already remembers its seed, adding nodes changes no existing command at all.
    remembered, _ = run(etcd_seed="cp-1")
    assert _changed(remembered, after) & existing == set()


def test_the_first_server_by_name_seeds_a_new_cluster_and_is_exported():
    ev, seen = run(servers={"cp-b": "10.20.0.12", "cp-a": "10.20.0.11", "cp-c": "10.20.0.13"})
    assert seen["cluster"].etcd_seed == "cp-a"
    seeding = [r.name for r in ev.of_type(CMD) if "cluster-init: true" in r.inputs.get("create", "")]
    assert seeding == ["k3s-cp-a-configure"]
    # The seed does not wait for a cluster to answer; everyone else does.
    assert "/ping" not in ev.named("k3s-cp-a-install").inputs["create"]
    assert all("/ping" in ev.named(f"k3s-{n}-install").inputs["create"] for n in ["cp-b", "cp-c", *AGENTS])


@pytest.mark.parametrize(
    "servers",
    [
        {"cp-2": "10.20.0.12", "cp-3": "10.20.0.13", "cp-4": "10.20.0.14"},  # cp-1 removed (cp-4 added)
        SERVERS,  # cp-1 replaced (a new VM UUID below)
        {"cp-0": "10.20.0.14", **SERVERS, "cp-4": "10.20.0.15"},  # one that sorts before cp-1 added
    ],
    ids=["seed-removed", "seed-replaced", "server-before-seed"],
)
def test_a_remembered_seed_re_seeds_nothing(servers):
    """Deployed seed cp-1; whatever happens to it, no server starts a new etcd and none that stays is touched."""
    deployed, _ = run(agents={}, etcd_seed="cp-1")
    ev, seen = run(servers=servers, agents={}, etcd_seed="cp-1", uuids={"cp-1": "4211aaaa-0000-0000-0000-00000000cafe"})
    assert seen["cluster"].etcd_seed == "cp-1"  # still remembered, also once cp-1 is gone
    assert [r.name for r in ev.of_type(CMD) if "cluster-init" in r.inputs.get("create", "")] == []
    for name in servers:
        assert "server: https://10.20.0.10:6443" in ev.named(f"k3s-{name}-configure").inputs["create"]
    # k3s-uninstall.sh runs only when a node's own install is deleted, on that node; no surviving server's
    # install or removal changes (only a replaced cp-1's, through its VM's UUID).
    for r in ev.of_type(CMD):
        if "k3s-uninstall.sh" in r.inputs.get("delete", ""):
            node = r.name.removeprefix("k3s-").removesuffix("-install")
            assert r.inputs["connection"]["host"] == servers[node]
    survivors = {f"k3s-{n}-{step}" for n in servers if n != "cp-1" for step in ("configure", "install", "removal")}
    assert _changed(deployed, ev, but=KUBECONFIG_COPY) & survivors == set()
    if "cp-1" in servers:
        assert _changed(deployed, ev) == {"k3s-cp-1-configure", "k3s-cp-1-install", "k3s-cp-1-removal"}


def test_replacing_a_vm_replaces_its_install_and_drain_and_nothing_else(kube_vip):
    """The install and the removal carry the VM's UUID as their trigger (pulumi-command v1.2.1
    provider/pkg/provider/common/inputs.go: `Triggers ... provider:"replaceOnChanges"`): a new VM gets k3s
    again, after the old node was drained and deleted (the removal is deleted first, then the install)."""
    before, _ = kube_vip
    new_uuid = "4211bbbb-0000-0000-0000-00000000beef"
    after, _ = run(uuids={"agent-2": new_uuid}, etcd_seed="cp-1")
    remembered, _ = run(etcd_seed="cp-1")
    assert _changed(remembered, after) == {"k3s-agent-2-configure", "k3s-agent-2-install", "k3s-agent-2-removal"}
    for step in ("install", "removal"):
        r = after.named(f"k3s-agent-2-{step}")
        assert r.inputs["triggers"] == [new_uuid] and "triggers[*]" in r.replace_on_changes
        assert r.delete_before_replace  # the old VM answers at the same address: its uninstall must come first
    assert urn(after, "k3s-agent-2-install") in after.named("k3s-agent-2-removal").depends_on
    # A VM that was lost (not drained): its first install deletes the old Node before k3s starts.
    install = after.named("k3s-agent-2-install")
    assert "still in the cluster from the VM this one replaced" in install.inputs["create"]
    assert install.inputs["stdin"] == after.named("k3s-k8s").inputs["kubeconfig"] and "stdin" in install.secret_inputs
    assert "INSTALL_K3S_SKIP_START=true" in install.inputs["create"]
    # The server the kubeconfig is read from has none to check with: it starts k3s at once.
    seed_install = after.named("k3s-cp-1-install")
    assert "stdin" not in seed_install.inputs and "SKIP_START" not in seed_install.inputs["create"]
    # Same name, new VM: the new kubelet registers as agent-2 with the new VM's provider ID.
    config = after.named("k3s-agent-2-configure").inputs["create"]
    assert "node-name: agent-2" in config and f"provider-id=vsphere://{new_uuid}" in config
    assert before.named("k3s-agent-2-configure").inputs["update"]  # a config change updates in place


def test_removing_a_node_drains_it_on_itself_then_uninstalls(kube_vip):
    ev, _ = kube_vip
    removal = ev.named("k3s-agent-3-removal")
    assert removal.inputs["connection"]["host"] == AGENTS["agent-3"]
    drain = removal.inputs["delete"]
    assert "drain agent-3 --ignore-daemonsets --delete-emptydir-data --timeout=10m" in drain
    assert "delete node agent-3" in drain and "--server https://10.20.0.10:6443" in drain
    # Pulumi deletes dependents first: removal (drain) -> install (uninstall) -> configure -> VM.
    assert urn(ev, "k3s-agent-3-install") in removal.depends_on
    install = ev.named("k3s-agent-3-install")
    assert "/usr/local/bin/k3s-agent-uninstall.sh" in install.inputs["delete"]
    assert urn(ev, "agent-3-vm") in ev.named("k3s-agent-3-configure").depends_on
    assert "k3s-uninstall.sh" in ev.named("k3s-cp-3-install").inputs["delete"]
    # A server drains itself with its own admin kubeconfig, through the endpoint.
    assert "--kubeconfig /etc/rancher/k3s/k3s.yaml --server https://10.20.0.10:6443" in ev.named("k3s-cp-1-removal").inputs["delete"]

    smaller, _ = run(agents={k: v for k, v in AGENTS.items() if k != "agent-3"})
    gone = {r.name for r in ev.registrations} - {r.name for r in smaller.registrations}
    assert gone == {"agent-3-vm", "k3s-agent-3", "k3s-agent-3-configure", "k3s-agent-3-install", "k3s-agent-3-removal"}
    assert _changed(ev, smaller) == set()  # no other node is touched


def test_drain_timeout_is_configurable(kube_vip):
    ev, _ = run(drainTimeoutMinutes=25)
    assert "--timeout=25m" in ev.named("k3s-agent-1-removal").inputs["delete"]
    assert ev.named("k3s-agent-1-removal").inputs["update"]  # changed in place, never a replacement that drains


def test_load_balancer_mode_exports_an_nginx_config_and_deploys_no_kube_vip():
    ev, seen = run(apiEndpoint="k3s-api.moh.example.org", apiEndpointMode="load-balancer")
    config = seen["cluster"].lb_nginx_config
    for ip in SERVERS.values():
        assert f"server {ip}:6443" in config
    for node in SERVERS:
        script = ev.named(f"k3s-{node}-configure").inputs["create"]
        assert "kube-vip" not in script.replace("cht-kube-vip.yaml", "")
        assert "- k3s-api.moh.example.org" in script  # tls-san
    assert yaml.safe_load(ev.named("k3s-k8s").inputs["kubeconfig"])["clusters"][0]["cluster"]["server"] == (
        "https://k3s-api.moh.example.org:6443"
    )


def test_registry_mirrors_reach_every_node():
    ev, _ = run(registryMirrors={"docker.io": ["https://mirror.moh.example.org"]})
    for node in [*SERVERS, *AGENTS]:
        assert "https://mirror.moh.example.org" in ev.named(f"k3s-{node}-configure").inputs["create"]


def test_an_even_number_of_servers_is_refused():
    with pytest.raises(ProgramFailed, match="odd number of servers"):
        run(servers={"cp-1": "10.20.0.11", "cp-2": "10.20.0.12"})


@pytest.mark.parametrize("stack", USER_STACKS)
def test_a_user_stack_bootstraps_every_node(stack):
    """Any valid stack: every configured node gets its lifecycle, exactly one server seeds, the Plans pin its version."""
    from config.validate import validate
    from tests.conftest import raw_config

    cfg = validate(*raw_config(stack, root=ROOT))
    if cfg.cluster_mode != "vsphere-k3s":
        pytest.skip(f"{stack} runs on an existing cluster")
    if layout.assemble(*stackfile.raw(stackfile.load(stack, root=ROOT)), stack, root=ROOT)[0].role == "counties":
        pytest.skip(f"{stack} is a county stack: its platform stack builds the nodes")
    seen: dict = {}

    def build():
        seen["cluster"] = K3sCluster(
            "k3s",
            cfg.k3s,
            servers=handles(cfg.control_plane.nodes, "server"),
            agents=handles(cfg.agents.nodes, "agent"),
        )

    ev = record(build, stack=stack)
    nodes = [*cfg.control_plane.nodes, *cfg.agents.nodes]
    assert {r.name for r in ev.of_type(NODE)} == {f"k3s-{n}" for n in nodes}
    assert [r.name for r in ev.of_type(CMD) if "cluster-init: true" in r.inputs.get("create", "")] == [
        f"k3s-{min(cfg.control_plane.nodes)}-configure"
    ]
    for r in ev.of_type(PLAN):
        assert r.inputs["spec"]["version"] == cfg.k3s.version
    assert yaml.safe_load(ev.named("k3s-k8s").inputs["kubeconfig"])["current-context"] == names.cluster_identifier(stack)


def test_upgrade_controller_manifests_can_come_from_a_mirror():
    evaluation, _ = run(
        systemUpgradeControllerUrl="https://mirror.moh.example.org/suc/{version}/",
        systemUpgradeControllerVersion="v0.20.1",
    )
    files = sorted(r.inputs["file"] for r in evaluation.of_type("kubernetes:yaml/v2:ConfigFile"))
    assert files == [
        "https://mirror.moh.example.org/suc/v0.20.1/crd.yaml",
        "https://mirror.moh.example.org/suc/v0.20.1/system-upgrade-controller.yaml",
    ]


# --- through the program: the seed remembered in the stack's own outputs -----------------------------------

GUARDED = Path(__file__).parent / "stacks"


@pytest.fixture(scope="module")
def first_deploy() -> Evaluation:
    evaluation, _ = plan.run("guarded", stack_dir=GUARDED)
    return evaluation


def _deployed(evaluation: Evaluation) -> dict:
    return json.loads(json.dumps(evaluation.outputs, default=str))


def _control_plane(**nodes: str) -> dict:
    """The guarded stack's servers replaced by `nodes`; a deployed server that leaves is accepted, as after
    `pulumi state unprotect` of its VM (docs/runbooks/remove-node.md)."""
    section = stackfile.raw(stackfile.load("guarded", root=GUARDED))[0]["controlPlane"]
    leaving = [f"controlPlane.nodes.{n}" for n in section["nodes"] if n not in nodes]
    return {"cht-hosting:controlPlane": {**section, "nodes": nodes}, "cht-hosting:deployedState": {"accept": leaving}}


def test_a_first_deploy_seeds_the_first_server_by_name_and_remembers_it(first_deploy):
    seed = min(stackfile.raw(stackfile.load("guarded", root=GUARDED))[0]["controlPlane"]["nodes"])
    assert first_deploy.outputs["etcdSeed"] == first_deploy.outputs["deployedState"]["etcdSeed"] == seed
    assert [r.name for r in first_deploy.of_type(CMD) if "cluster-init: true" in r.inputs.get("create", "")] == [
        f"k3s-{seed}-configure"
    ]


@pytest.mark.parametrize(
    "servers",
    [
        {"cp-3": "10.20.0.13", "cp-4": "10.20.0.14", "cp-5": "10.20.0.15"},  # the seed cp-2 out, cp-5 in
        {"cp-0": "10.20.0.30", "cp-1": "10.20.0.31", "cp-2": "10.20.0.12", "cp-3": "10.20.0.13", "cp-4": "10.20.0.14"},
    ],
    ids=["seed-removed", "servers-sorting-first-added"],
)
def test_once_deployed_the_seed_moves_without_re_seeding_or_touching_another_server(first_deploy, servers):
    deployed = _deployed(first_deploy)
    seed = deployed["etcdSeed"]
    unchanged, _ = plan.run("guarded", stack_dir=GUARDED, deployed=deployed)
    edited, _ = plan.run("guarded", overrides=_control_plane(**servers), stack_dir=GUARDED, deployed=deployed)
    assert edited.outputs["etcdSeed"] == edited.outputs["deployedState"]["etcdSeed"] == seed  # still remembered
    assert [r.name for r in edited.of_type(CMD) if "cluster-init" in r.inputs.get("create", "")] == []
    # Every server that stays keeps its commands exactly (no restart, no reinstall, no uninstall); the seed's
    # own config switched to joining through the endpoint on the first update after the cluster existed.
    assert "cluster-init" not in unchanged.named(f"k3s-{seed}-configure").inputs["create"]
    stays = {f"k3s-{n}-{step}" for n in servers for step in ("configure", "install", "removal")}
    assert _changed(unchanged, edited, but=KUBECONFIG_COPY) & stays == set()
    for name in _changed(unchanged, edited) & stays:  # only the kubeconfig copies, on a no-op update
        assert edited.named(name).inputs["update"].startswith("echo ")
    # k3s-uninstall.sh is stored only as each server's own install's delete, run on that server.
    for r in edited.of_type(CMD):
        if "k3s-uninstall.sh" in r.inputs.get("delete", ""):
            assert r.inputs["connection"]["host"] == servers[r.name.removeprefix("k3s-").removesuffix("-install")]


def test_installs_deployed_before_vm_tracking_are_not_replaced_by_the_upgrade():
    """Adding a trigger to a deployed install would replace it (pulumi-command v1.2.1: triggers are
    replaceOnChanges): its delete uninstalls k3s. Such nodes keep the trigger out of their diff."""
    ev, _ = run(etcd_seed="cp-1", installed_before_vm_tracking=frozenset({"cp-2", "agent-2"}))
    for node in [*SERVERS, *AGENTS]:
        install, removal = ev.named(f"k3s-{node}-install"), ev.named(f"k3s-{node}-removal")
        old = node in {"cp-2", "agent-2"}
        assert ("triggers" in install.ignore_changes) == old and "create" in install.ignore_changes
        assert ("triggers" in removal.ignore_changes) == old


def test_a_cluster_deployed_before_vm_tracking_keeps_its_installs_and_records_new_nodes_as_tracked(first_deploy):
    deployed = _deployed(first_deploy)
    for node in deployed["deployedState"]["nodes"].values():
        del node["k3sFollowsVm"]  # what a program before this one recorded
    servers = stackfile.raw(stackfile.load("guarded", root=GUARDED))[0]["controlPlane"]["nodes"]
    grown = {**servers, "cp-8": "10.20.0.18", "cp-9": "10.20.0.19"}
    ev, _ = plan.run("guarded", overrides=_control_plane(**grown), stack_dir=GUARDED, deployed=deployed)
    state = ev.outputs["deployedState"]["nodes"]
    for name in deployed["deployedState"]["nodes"]:
        assert "triggers" in ev.named(f"k3s-{name}-install").ignore_changes and state[name]["k3sFollowsVm"] is False
    for name in ("cp-8", "cp-9"):
        assert "triggers" not in ev.named(f"k3s-{name}-install").ignore_changes and state[name]["k3sFollowsVm"] is True
    assert any("was installed before node installs followed their VM" in w for w in ev.warnings)
    # A first deploy tracks every node.
    assert all(node["k3sFollowsVm"] for node in first_deploy.outputs["deployedState"]["nodes"].values())
