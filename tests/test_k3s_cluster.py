"""K3sCluster on the mock engine: order of bootstrap, secrets, upgrades that touch only the Plans, removal."""

from __future__ import annotations

import pulumi
import pytest
import yaml
from pulumi_command import remote

from components.k3s.cluster import K3sCluster
from components.vsphere.node import NodeHandle
from config import names
from config.model import K3sConfig
from offline import fakes
from offline.engine import Evaluation, ProgramFailed, record

CMD = "command:remote:Command"
PLAN = "kubernetes:upgrade.cattle.io/v1:Plan"
SERVERS = {"cp-1": "10.20.0.11", "cp-2": "10.20.0.12", "cp-3": "10.20.0.13"}
AGENTS = {"agent-1": "10.20.0.21", "agent-2": "10.20.0.22", "agent-3": "10.20.0.23"}
BASE = dict(version="v1.36.3+k3s1", apiEndpoint="10.20.0.10")


class NodeVm(pulumi.CustomResource):
    """Stands in for the NodePool's VM: only its identity matters to K3sCluster (depends_on)."""

    def __init__(self, name: str):
        super().__init__("test:index:Vm", name, {})


def handles(nodes: dict[str, str], role: str) -> list[NodeHandle]:
    out = []
    for name, ip in nodes.items():
        out.append(
            NodeHandle(
                name=name,
                ip=ip,
                role=role,  # type: ignore[arg-type]
                uuid=pulumi.Output.from_input(fakes.fake_uuid("vm", name)),
                connection=remote.ConnectionArgs(host=ip, user="chtadmin", private_key="dummy-key", host_key="ssh-ed25519 AAAAdummy"),
                vm=NodeVm(f"{name}-vm"),
            )
        )
    return out


def run(servers=SERVERS, agents=AGENTS, **k3s) -> tuple[Evaluation, dict]:
    seen: dict = {}

    def build():
        cluster = K3sCluster(
            "k3s",
            K3sConfig.model_validate({**BASE, **k3s}),
            servers=handles(servers, "server"),
            agents=handles(agents, "agent"),
        )
        seen["cluster"] = cluster
        pulumi.export("kubeconfig", cluster.kubeconfig)

    return record(build), seen


@pytest.fixture(scope="module")
def kube_vip() -> tuple[Evaluation, dict]:
    return run()


def urn(ev: Evaluation, name: str) -> str:
    return ev.named(name).urn


def test_every_child_is_parented_and_named_after_its_node(kube_vip):
    ev, _ = kube_vip
    component = ev.named("k3s")
    assert component.type == "cht-hosting:k3s:K3sCluster"
    own = [r for r in ev.registrations if not r.name.endswith("-vm")]
    assert all(r.parent == component.urn or r in ev.descendants(component) for r in own if r is not component)
    names = {r.name for r in ev.of_type(CMD)}
    for node in [*SERVERS, *AGENTS]:
        assert {f"k3s-{node}-configure", f"k3s-{node}-install"} <= names
    assert {f"k3s-{n}-removal" for n in ["cp-2", "cp-3", *AGENTS]} <= names
    assert "k3s-cp-1-removal" not in names


def test_bootstrap_order(kube_vip):
    ev, _ = kube_vip
    token = urn(ev, "k3s-token")
    deps = lambda name: set(ev.named(name).depends_on) - {token}  # noqa: E731
    assert deps("k3s-cp-1-configure") == {urn(ev, "cp-1-vm")}
    assert deps("k3s-cp-1-install") == {urn(ev, "k3s-cp-1-configure")}
    # Servers join one after the other...
    assert urn(ev, "k3s-cp-1-install") in deps("k3s-cp-2-configure")
    assert urn(ev, "k3s-cp-2-install") in deps("k3s-cp-3-configure")
    # ...agents all at once, as soon as the first server is up.
    for agent in AGENTS:
        assert deps(f"k3s-{agent}-configure") == {urn(ev, f"{agent}-vm"), urn(ev, "k3s-cp-1-install")}
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
    assert "cluster-init: true" in ev.named("k3s-cp-1-configure").inputs["create"]
    assert "server: https://10.20.0.10:6443" in ev.named("k3s-cp-2-configure").inputs["create"]
    install = ev.named("k3s-agent-1-install").inputs["create"]
    assert "INSTALL_K3S_VERSION=v1.36.3+k3s1 INSTALL_K3S_EXEC=agent" in install and "https://get.k3s.io" in install


def test_token_reaches_nodes_only_through_stdin_and_never_a_log(kube_vip):
    ev, _ = kube_vip
    token = ev.named("k3s-token")
    assert token.type == "random:index/randomPassword:RandomPassword" and token.protect
    value = fakes.RESOURCE_OUTPUTS[token.type](type("A", (), {"name": "k3s-token", "inputs": token.inputs})())["result"]
    for r in ev.registrations:
        for key, input_value in r.inputs.items():
            if key == "stdin":
                assert input_value == value and "stdin" in r.secret_inputs, r.name
                assert r.inputs["logging"] == "none"
                assert {"stdout", "stderr"} <= set(r.additional_secret_outputs)
            else:
                assert value not in str(input_value), f"{r.name}.{key} carries the token"
        assert "environment" not in r.inputs
    assert len([r for r in ev.of_type(CMD) if "stdin" in r.inputs]) == len(SERVERS) + len(AGENTS)


def test_kubeconfig_is_a_secret_rewritten_to_the_endpoint(kube_vip):
    ev, seen = kube_vip
    read = ev.named("k3s-kubeconfig")
    assert read.inputs["create"] == "sudo -n cat /etc/rancher/k3s/k3s.yaml"
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
    assert plans["k3s-server"]["version"] == plans["k3s-agent"]["version"] == "v1.36.3+k3s1"
    assert plans["k3s-agent"]["prepare"]["args"] == ["prepare", "k3s-server"]


def _effective_inputs(ev: Evaluation) -> dict[str, dict]:
    """What the engine would diff: inputs minus the fields the resource tells it to ignore."""
    return {r.name: {k: v for k, v in r.inputs.items() if k not in r.ignore_changes} for r in ev.registrations}


def test_version_bump_changes_the_plans_and_nothing_else(kube_vip):
    before, _ = kube_vip
    after, _ = run(version="v1.36.4+k3s1")
    old, new = _effective_inputs(before), _effective_inputs(after)
    assert old.keys() == new.keys()
    changed = {name for name in old if old[name] != new[name]}
    assert changed == {"k3s-upgrades-server-plan", "k3s-upgrades-agent-plan"}
    # The install scripts do carry the version, for nodes created later; the engine ignores it on existing ones.
    for r in after.of_type(CMD):
        if r.name.endswith("-install"):
            assert r.ignore_changes == ("create",) and "v1.36.4+k3s1" in r.inputs["create"]
    # Options too: nothing gains a replacement trigger or a new dependency.
    opts = lambda ev: {r.name: (set(r.depends_on), r.replace_on_changes, r.protect) for r in ev.registrations}  # noqa: E731
    assert opts(before) == opts(after)


def test_removing_an_agent_drains_it_from_the_first_server_then_uninstalls(kube_vip):
    ev, _ = kube_vip
    removal = ev.named("k3s-agent-3-removal")
    assert removal.inputs["connection"]["host"] == SERVERS["cp-1"]  # kubectl runs on the first server
    assert "k3s kubectl drain agent-3 --ignore-daemonsets --delete-emptydir-data --timeout=10m" in removal.inputs["delete"]
    assert "kubectl delete node agent-3" in removal.inputs["delete"]
    # Pulumi deletes dependents first: removal (drain) -> install (uninstall) -> configure -> VM.
    assert urn(ev, "k3s-agent-3-install") in removal.depends_on
    install = ev.named("k3s-agent-3-install")
    assert "/usr/local/bin/k3s-agent-uninstall.sh" in install.inputs["delete"]
    assert urn(ev, "agent-3-vm") in ev.named("k3s-agent-3-configure").depends_on
    assert "k3s-uninstall.sh" in ev.named("k3s-cp-3-install").inputs["delete"]

    smaller, _ = run(agents={k: v for k, v in AGENTS.items() if k != "agent-3"})
    gone = {r.name for r in ev.registrations} - {r.name for r in smaller.registrations}
    assert gone == {"agent-3-vm", "k3s-agent-3-configure", "k3s-agent-3-install", "k3s-agent-3-removal"}
    old, new = _effective_inputs(ev), _effective_inputs(smaller)
    assert {n for n in new if old[n] != new[n]} == set()  # no other node is touched


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


def test_prod_config_bootstraps_every_node():
    """The prod stack's k3s slice and nodes, as the lead composes them in __main__.py."""
    from config.validate import validate
    from tests.conftest import raw_config

    cfg = validate(*raw_config("prod"))
    seen: dict = {}

    def build():
        seen["cluster"] = K3sCluster(
            "k3s",
            cfg.k3s,
            servers=handles(cfg.control_plane.nodes, "server"),
            agents=handles(cfg.agents.nodes, "agent"),
        )

    ev = record(build, stack="prod")
    configured = {r.name for r in ev.of_type(CMD) if r.name.endswith("-configure")}
    assert configured == {f"k3s-{n}-configure" for n in [*cfg.control_plane.nodes, *cfg.agents.nodes]}
    assert len(configured) == 12
    for r in ev.of_type(PLAN):
        assert r.inputs["spec"]["version"] == "v1.36.3+k3s1"
    assert yaml.safe_load(ev.named("k3s-k8s").inputs["kubeconfig"])["current-context"] == names.cluster_identifier("prod")


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
