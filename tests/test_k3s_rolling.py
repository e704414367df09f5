"""Rolling node changes: a configuration change restarts k3s node by node, each bounded and health-gated.

The restart runs in each node's `configure` (scripts.configure_script), and each node's configure waits for the
previous node (K3sCluster: servers in join order through the previous server's install, agents through the
previous agent's configure), so the engine never restarts two servers, or two agents, at once, and a node that
does not come back stops the roll with what is wrong. Upstream it relies on:
- k3s install.sh: the units are `Type=notify` with `TimeoutStartSec=0` (so the restart itself is bounded
  here) and `KillMode=process` (a restart of k3s-agent leaves the pods running: agents are not drained for it);
- k3s `pkg/cli/server/server.go`: a server notifies READY once its API server and etcd are ready; the health
  gate then asks the node's own API server for /readyz (etcd included) and its Node's Ready condition;
- Kubernetes' node authorizer: a kubelet may read its own Node (the agent's health check uses the kubelet's
  kubeconfig, /var/lib/rancher/k3s/agent/kubelet.kubeconfig).
"""

from __future__ import annotations

import pytest

from components.k3s import files, layout, scripts
from tests.test_k3s_cluster import run, urn
from tests.test_k3s_scripts import Sandbox, configure, stdin_for


@pytest.fixture
def running(tmp_path) -> Sandbox:
    """A node whose k3s runs with the first configuration."""
    box = Sandbox(tmp_path)
    assert box.run(configure("server", root=box.at), stdin=stdin_for("server")).returncode == 0
    (box.root / "state" / "enabled").touch()
    box.install_k3s()
    for kubeconfig in (layout.KUBECONFIG_FILE, layout.AGENT_KUBECONFIG_FILE):  # k3s writes both once it runs
        box.file(kubeconfig).parent.mkdir(parents=True, exist_ok=True)
        box.file(kubeconfig).write_text("apiVersion: v1\nkind: Config\n")
    return box


def changed(role: layout.Role, box: Sandbox, timeout: int = scripts.RESTART_TIMEOUT_SECONDS) -> str:
    name = {"server": "cp-2", "agent": "agent-1"}[role]
    config = files.node_config(files.ClusterShape("10.20.0.10", "10.42.0.0/16", "10.43.0.0/16"), role=role, seeds_etcd=False,
                           name=name, ip="10.20.0.12", vm_uuid="4211ABCD-0001")
    return scripts.configure_script(
        name=name, role=role, config_yaml=config, registries_yaml=files.registries_config({"docker.io": ["https://m.example"]}),
        kube_vip_yaml=None, root=box.at, restart_timeout_seconds=timeout,
    )


def test_a_changed_server_restarts_and_is_healthy_before_its_configure_ends(running):
    result = running.run(changed("server", running), stdin=stdin_for("server"))
    assert result.returncode == 0, result.stderr
    assert "waiting until cp-2 is healthy (at most 600 s)" in result.stdout
    assert "cp-2 is healthy after its restart" in result.stdout
    argv = running.argv()
    restart = argv.index("timeout 600 systemctl restart k3s")
    assert argv.index("get --raw /readyz", restart) < argv.index("get node cp-2 -o jsonpath=", restart)
    assert f"--kubeconfig {running.file(layout.KUBECONFIG_FILE)} get --raw /readyz" in argv


def test_an_agent_checks_its_own_node_with_the_kubelets_credentials(running):
    result = running.run(changed("agent", running), stdin=stdin_for("agent"))
    assert result.returncode == 0, result.stderr
    argv = running.argv()
    assert "timeout 600 systemctl restart k3s-agent" in argv
    assert f"--kubeconfig {running.file(layout.AGENT_KUBECONFIG_FILE)} get node agent-1 -o jsonpath=" in argv
    assert "/readyz" not in argv  # an agent runs no API server


def test_a_server_that_does_not_come_back_stops_the_roll_with_the_reason(running):
    result = running.run(changed("server", running, timeout=1), stdin=stdin_for("server"), STUB_UNHEALTHY="1")
    assert result.returncode == 1
    assert "cp-2 was not healthy 1 s after k3s restarted with the new configuration: [-]etcd failed" in result.stderr
    assert "The nodes after cp-2 were not restarted" in result.stderr


def test_a_node_that_is_not_ready_stops_the_roll(running):
    result = running.run(changed("agent", running, timeout=1), stdin=stdin_for("agent"), STUB_NODE_READY="False")
    assert result.returncode == 1
    assert "agent-1 was not healthy 1 s after k3s-agent restarted with the new configuration: node agent-1 is not Ready (False)" in result.stderr


def test_a_restart_that_fails_says_so_and_goes_no_further(running):
    result = running.run(changed("server", running), stdin=stdin_for("server"), STUB_RESTART_FAIL="1")
    assert result.returncode == 1
    assert "k3s did not restart with the new configuration within 600 s on cp-2" in result.stderr
    assert "get node" not in running.argv().split("timeout 600 systemctl restart k3s", 1)[1]


def test_nodes_restart_one_at_a_time_in_a_fixed_order():
    ev, _ = run()
    chain = lambda name, after: urn(ev, after) in ev.named(name).depends_on  # noqa: E731
    # Servers: each configure after the previous server's install (which follows that server's configure).
    assert chain("k3s-cp-2-configure", "k3s-cp-1-install") and chain("k3s-cp-3-configure", "k3s-cp-2-install")
    assert chain("k3s-cp-1-install", "k3s-cp-1-configure")
    # Agents: each configure after the previous agent's configure.
    assert chain("k3s-agent-2-configure", "k3s-agent-1-configure")
    assert chain("k3s-agent-3-configure", "k3s-agent-2-configure")
    assert not chain("k3s-agent-3-configure", "k3s-agent-1-configure")  # a chain, not a fan-in


# --- a VM changed by the provider (powered off and on): the next VM of the pool waits for this node ----------

SHAPE = "cpus 6, memory 16 GB, hardware version 19"


def vm_back(role: layout.Role, box: Sandbox, timeout: int = scripts.VM_BACK_TIMEOUT_SECONDS) -> str:
    name = {"server": "cp-2", "agent": "agent-1"}[role]
    return scripts.vm_back_script(
        name=name, role=role, cpus=6, memory_gb=16, hardware_version=19, timeout_seconds=timeout, root=box.at
    )


def test_after_its_vm_changed_a_server_is_healthy_before_the_next_vm_changes(running):
    result = running.run(vm_back("server", running))
    assert result.returncode == 0, result.stderr
    assert "cp-2 is healthy after its VM changed" in result.stdout
    argv = running.argv()
    assert argv.index("systemctl is-active --quiet k3s") < argv.index("get --raw /readyz") < argv.index("get node cp-2")
    assert "restart" not in argv  # the VM's boot started k3s (enabled unit); this only waits


def test_a_node_that_does_not_come_back_after_its_vm_changed_stops_the_pool(running):
    result = running.run(vm_back("agent", running, timeout=1), STUB_NODE_READY="False")
    assert result.returncode == 1
    assert (
        f"agent-1 was not healthy 1 s after its VM changed ({SHAPE}): node agent-1 is not Ready (False). "
        "The VMs after agent-1 in its pool were not changed" in result.stderr
    )


def test_a_new_vm_before_its_k3s_install_has_nothing_to_wait_for(tmp_path):
    box = Sandbox(tmp_path)  # k3s not installed: its unit is not enabled
    result = box.run(vm_back("server", box))
    assert result.returncode == 0, result.stderr
    assert "k3s is not installed on cp-2 yet; nothing to wait for" in result.stdout
    assert "kubectl" not in box.argv()
