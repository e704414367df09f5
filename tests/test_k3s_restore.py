"""The control-plane restore scripts (components/k3s/restore.py), run with bash in a stand-in world.

tests/restore_world.py holds the world and its stand-ins (k3s, systemctl, k3s-killall.sh, curl), each
enforcing what upstream checks (the file and version each follows are named there). The scripts are rendered
per server for that server's root, as the stack renders them for `/`. The servers' files come from the real
configure script and a rebuilt server rejoins through the real install script, as `pulumi up` runs them.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from components.k3s import files, layout, restore
from components.k3s import scripts as node_scripts
from offline import plan
from tests import tools
from tests.conftest import STACKS
from tests.restore_world import RESET_DONE, World

SERVERS = {"cp-1": "10.20.0.11", "cp-2": "10.20.0.12", "cp-3": "10.20.0.13"}
AGENTS = {"agent-1": "10.20.0.21", "agent-2": "10.20.0.22"}
VIP = "10.20.0.10"
SHAPE = files.ClusterShape(VIP, "10.42.0.0/16", "10.43.0.0/16")
TOKEN = "mockClusterTokenValue0123456789abcdef"
AGENT_TOKEN = "mockAgentTokenValue9876543210fedcba"
S3_ACCESS, S3_SECRET = "MOCKACCESSKEY0123", "mock/Secret+Key'\"$(x)0123"
ETCD = files.EtcdS3(
    endpoint="https://s3.moh.example.org:9000", bucket="cht-backups", folder="prod/etcd", region="us-east-1",
    schedule="0 */6 * * *", retention=28,
)
SNAPSHOT = "etcd-snapshot-cp-1-1760000000"
VERSION, INSTALLER = "v1.36.1+k3s1", "https://mirror.moh.example.org/k3s/install.sh"
KUBECONFIG = "apiVersion: v1\nkind: Config\nusers: [{name: admin, user: {client-key-data: bW9jaw==}}]\n"


def uuid(name: str, generation: int) -> str:
    return f"4211aaaa-000{generation}-{name}"


def scripts(world: World, name: str) -> dict[str, str]:
    return restore.scripts(
        servers=SERVERS, agents=AGENTS, api_endpoint=VIP, version=VERSION, install_script_url=INSTALLER,
        root=str(world.root(name)),
    )


def configure(world: World, name: str, generation: int) -> subprocess.CompletedProcess:
    """pulumi up's configure step on a server VM: config.yaml, the tokens and the bucket's keys (stdin)."""
    config = files.node_config(
        SHAPE, role="server", seeds_etcd=False, name=name, ip=SERVERS[name], vm_uuid=uuid(name, generation), etcd=ETCD
    )
    script = node_scripts.configure_script(
        name=name, role="server", config_yaml=config, registries_yaml=None, kube_vip_yaml=None,
        root=str(world.root(name)),
    )
    stdin = node_scripts.configure_stdin(
        "server", token=TOKEN, agent_token=AGENT_TOKEN, s3_credentials_yaml=files.s3_credentials_config(S3_ACCESS, S3_SECRET)
    )
    return world.run(name, script, stdin=stdin)


def install(world: World, name: str) -> subprocess.CompletedProcess:
    """pulumi up's install step on a joining server, handed the admin kubeconfig (as K3sNode does)."""
    script = node_scripts.install_script(
        name=name, role="server", version=VERSION, install_script_url=INSTALLER, join_url=SHAPE.api_url,
        kubeconfig_on_stdin=True, wait_seconds=0, root=str(world.root(name)),
    )
    return world.run(name, script, stdin=KUBECONFIG)


@pytest.fixture
def world(tmp_path) -> World:
    """Three servers and two agents serving cluster c0, with a snapshot of it in the bucket."""
    w = World(tmp_path, SERVERS, AGENTS, VIP, tools.need("bash"))
    state = w.load()
    nodes, secrets = {}, {}
    for name in SERVERS:
        assert configure(w, name, 1).returncode == 0
        w.install_k3s_files(name)
        member = w.root(name) / "var/lib/rancher/k3s/server/db/etcd/member"
        member.parent.mkdir(parents=True)
        member.write_text("c0")
        (w.root(name) / "etc/rancher/k3s/k3s.yaml").write_text("apiVersion: v1\nkind: Config\n")
        password = w.root(name) / "etc/rancher/node/password"
        password.parent.mkdir(parents=True)
        password.write_text(f"password-{name}-1\n")
        nodes[name] = {"providerID": f"vsphere://{uuid(name, 1)}", "etcd": True}
        secrets[name] = f"password-{name}-1"
    for name in AGENTS:
        nodes[name] = {"providerID": f"vsphere://{uuid(name, 1)}", "etcd": False}
        secrets[name] = f"password-{name}-1"
    cluster = {"nodes": nodes, "secrets": secrets, "members": sorted(SERVERS), "token": TOKEN}
    state["clusters"]["c0"] = cluster
    state["running"] = dict.fromkeys(SERVERS, "c0")
    state["agents_up"] = sorted(AGENTS)
    state["bucket"][f"{ETCD.bucket}/{ETCD.folder}/{SNAPSHOT}"] = {"token": TOKEN, "cluster": json.loads(json.dumps(cluster))}
    w.save(state)
    return w


def rebuild(world: World, name: str) -> None:
    """The VM is lost and `pulumi up` clones it again: a new UUID, its files written, k3s not installed."""
    world.lose(name)
    assert configure(world, name, 2).returncode == 0
    assert not (world.root(name) / "usr/local/bin/k3s").exists()


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def refused(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode != 0, result.stdout
    assert message in result.stderr, result.stderr


def assert_whole(world: World, generation: dict[str, int]) -> None:
    """Three servers serve one cluster; every Node names its own VM; no stale secret; nothing left behind."""
    state = world.load()
    serving = state["running"]
    assert sorted(serving) == sorted(SERVERS), serving
    (cid,) = set(serving.values())
    cluster = state["clusters"][cid]
    assert sorted(cluster["members"]) == sorted(SERVERS)
    for name in SERVERS:
        assert cluster["nodes"][name]["providerID"] == f"vsphere://{uuid(name, generation[name])}", name
        password = (world.root(name) / "etc/rancher/node/password").read_text().strip()
        assert cluster["secrets"][name] == password, name
        for leftover in (layout.RESTORE_MARK, restore.RESET_RECORD, restore.RESTORE_CONFIG_DIR):
            assert not (world.root(name) / leftover.lstrip("/")).exists(), (name, leftover)
    assert set(cluster["secrets"]) <= set(cluster["nodes"])
    assert not [e for e in state["events"] if "SPLIT BRAIN" in e], state["events"]
    # The token went to k3s through its environment only; no secret is on any command line.
    log = world.argv()
    for secret in (TOKEN, AGENT_TOKEN, S3_ACCESS, S3_SECRET):
        assert secret not in log
    assert all("token from env/flag" in e for e in state["events"] if e.startswith("reset on"))


# --- scenarios ---------------------------------------------------------------------------------------------


def test_all_servers_lost_restore_from_the_bucket_onto_rebuilt_vms(world):
    for name in SERVERS:
        rebuild(world, name)
    # The first pulumi up cannot install k3s: its installs wait for a cluster to join.
    refused(install(world, "cp-1"), "the cluster did not answer")
    for name in SERVERS:
        assert "not installed" in ok(world.run(name, scripts(world, name)["stop-server.sh"]))
    # pulumi up during the restore touches nothing on a marked server.
    refused(configure(world, "cp-1", 2), "a control-plane restore is in progress")
    out = ok(world.run("cp-2", scripts(world, "cp-2")["restore-control-plane.sh"], "--snapshot", SNAPSHOT))
    assert RESET_DONE in out and "runs again on cp-2" in out
    # A rebuilt VM has no k3s: rejoin-etcd.sh only lifts the mark, it never starts a unit that is not there.
    for name in ("cp-1", "cp-3"):
        before = len(world.argv())
        assert "pulumi up installs it" in ok(world.run(name, scripts(world, name)["rejoin-etcd.sh"]))
        assert "systemctl" not in world.argv()[before:]
        ok(install(world, name))  # the next pulumi up
    out = ok(world.run("cp-2", scripts(world, "cp-2")["finish-restore.sh"]))
    assert "joined again as vsphere://" in out  # the restored server's Node named the VM of the snapshot
    assert_whole(world, dict.fromkeys(SERVERS, 2))
    assert world.load()["resets"] == 1


def test_two_servers_lost_the_survivor_keeps_its_data(world):
    world.lose("cp-2")
    world.lose("cp-3")
    with pytest.raises(AssertionError):  # no quorum: the survivor's API does not serve
        ok(world.run("cp-1", "k3s=" + str(world.root("cp-1") / "usr/local/bin/k3s") + '\n"$k3s" kubectl get --raw=/readyz'))
    out = ok(world.run("cp-1", scripts(world, "cp-1")["restore-control-plane.sh"], "--keep-data"))
    assert RESET_DONE in out
    for name in ("cp-2", "cp-3"):
        rebuild(world, name)
        ok(install(world, name))
    out = ok(world.run("cp-1", scripts(world, "cp-1")["finish-restore.sh"]))
    assert "joins again" not in out  # the survivor's VM is the one its Node names
    assert_whole(world, {"cp-1": 1, "cp-2": 2, "cp-3": 2})
    # The reset kept the survivor's data: its cluster came from c0, not from the bucket.
    assert "--cluster-reset-restore-path" not in world.argv()


def test_one_server_lost_needs_no_reset(world):
    world.lose("cp-3")
    rebuild(world, "cp-3")
    ok(install(world, "cp-3"))  # pulumi up: the old Node (and its etcd member) goes before k3s starts
    ok(world.run("cp-1", scripts(world, "cp-1")["finish-restore.sh"]))
    assert_whole(world, {"cp-1": 1, "cp-2": 1, "cp-3": 2})
    assert world.load()["resets"] == 0


def test_data_damaged_vms_intact_the_others_rejoin(world):
    for name in ("cp-2", "cp-3"):
        assert "stopped" in ok(world.run(name, scripts(world, name)["stop-server.sh"]))
    ok(world.run("cp-1", scripts(world, "cp-1")["restore-control-plane.sh"], "--snapshot", SNAPSHOT))
    for name in ("cp-2", "cp-3"):
        assert "rejoined" in ok(world.run(name, scripts(world, name)["rejoin-etcd.sh"]))
        (aside,) = (world.root(name) / "var/lib/rancher/k3s/server").glob("db.before-restore-*")
        assert (aside / "etcd/member").read_text() == "c0"  # set aside, never deleted
    ok(world.run("cp-1", scripts(world, "cp-1")["finish-restore.sh"]))
    assert_whole(world, dict.fromkeys(SERVERS, 1))


def test_refused_while_another_server_still_runs(world):
    world.lose("cp-2")
    result = world.run("cp-1", scripts(world, "cp-1")["restore-control-plane.sh"], "--snapshot", SNAPSHOT)
    refused(result, "these servers still run k3s: cp-3 (10.20.0.13)")
    state = world.load()
    assert state["resets"] == 0 and state["running"] == {"cp-1": "c0", "cp-3": "c0"}  # nothing was touched
    assert not (world.root("cp-1") / layout.RESTORE_MARK.lstrip("/")).exists()
    # Stopped with systemctl only, kube-vip and the supervisor would outlive it; stop-server.sh stops all.
    ok(world.run("cp-3", scripts(world, "cp-3")["stop-server.sh"]))
    ok(world.run("cp-1", scripts(world, "cp-1")["restore-control-plane.sh"], "--snapshot", SNAPSHOT))


def test_reruns_change_nothing(world):
    for name in ("cp-2", "cp-3"):
        ok(world.run(name, scripts(world, name)["stop-server.sh"]))
        ok(world.run(name, scripts(world, name)["stop-server.sh"]))
    restore_cp1 = scripts(world, "cp-1")["restore-control-plane.sh"]
    ok(world.run("cp-1", restore_cp1, "--snapshot", SNAPSHOT))
    assert "already restored" in ok(world.run("cp-1", restore_cp1, "--snapshot", SNAPSHOT))
    refused(world.run("cp-1", restore_cp1, "--keep-data"), "already reset (snapshot")
    for name in ("cp-2", "cp-3"):
        ok(world.run(name, scripts(world, name)["rejoin-etcd.sh"]))
        assert "nothing to do" in ok(world.run(name, scripts(world, name)["rejoin-etcd.sh"]))
    ok(world.run("cp-1", scripts(world, "cp-1")["finish-restore.sh"]))
    ok(world.run("cp-1", scripts(world, "cp-1")["finish-restore.sh"]))
    assert world.load()["resets"] == 1
    assert_whole(world, dict.fromkeys(SERVERS, 1))


def test_an_interrupted_restore_resumes_without_a_second_reset(world):
    for name in ("cp-2", "cp-3"):
        ok(world.run(name, scripts(world, name)["stop-server.sh"]))
    unit = world.root("cp-1") / "etc/systemd/system/k3s.service"
    saved = unit.read_text()
    unit.unlink()  # the start after the reset fails
    refused(world.run("cp-1", scripts(world, "cp-1")["restore-control-plane.sh"], "--snapshot", SNAPSHOT), "")
    unit.write_text(saved)
    assert "resuming" in ok(world.run("cp-1", scripts(world, "cp-1")["restore-control-plane.sh"], "--snapshot", SNAPSHOT))
    assert world.load()["resets"] == 1


def test_pulumi_up_during_a_restore_is_refused_on_every_step(world):
    ok(world.run("cp-2", scripts(world, "cp-2")["stop-server.sh"]))
    config = world.root("cp-2") / "etc/rancher/k3s/config.yaml"
    before = config.read_text()
    root = str(world.root("cp-2"))
    steps = {
        "configure": lambda: configure(world, "cp-2", 3),
        "install": lambda: install(world, "cp-2"),
        "drain": lambda: world.run("cp-2", node_scripts.drain_script(name="cp-2", role="server", api_url=SHAPE.api_url, timeout_minutes=5, root=root)),
        "uninstall": lambda: world.run("cp-2", node_scripts.uninstall_script(name="cp-2", role="server", root=root)),
    }
    mark_log = len(world.argv())
    for step, run in steps.items():
        result = run()
        assert result.returncode != 0, step
        assert "a control-plane restore is in progress on this node" in result.stderr, (step, result.stderr)
    assert config.read_text() == before
    assert "systemctl" not in world.argv()[mark_log:] and "k3s kubectl" not in world.argv()[mark_log:]
    assert (world.root("cp-2") / "usr/local/bin/k3s").exists()


def test_rejoin_waits_for_the_restored_server(world):
    for name in SERVERS:
        ok(world.run(name, scripts(world, name)["stop-server.sh"]))
    refused(world.run("cp-2", scripts(world, "cp-2")["rejoin-etcd.sh"]), "does not answer at 10.20.0.10 yet")
    assert (world.root("cp-2") / "var/lib/rancher/k3s/server/db/etcd/member").exists()


def test_usage_and_missing_files(world):
    script = scripts(world, "cp-1")["restore-control-plane.sh"]
    for args in ((), ("--snapshot",), ("--snapshot", "../../etc/passwd"), ("--snapshot", SNAPSHOT, "x"), ("--other",)):
        refused(world.run("cp-1", script, *args), "usage: restore-control-plane.sh")
    (world.root("cp-1") / layout.TOKEN_FILE.lstrip("/")).unlink()
    refused(world.run("cp-1", script, "--snapshot", SNAPSHOT), "cluster-token is missing: run pulumi up first")
    assert world.load()["resets"] == 0


# --- the stand-ins enforce upstream's checks (so the scenarios above could fail) ---------------------------


def k3s_reset(world: World, name: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    k3s = world.root(name) / "usr/local/bin/k3s"
    return world.run(name, f'"{k3s}" server --cluster-reset "$@"', *args, **env)


def test_stand_in_refuses_a_reset_with_the_server_url_of_config_yaml(world):
    world.lose("cp-2"), world.lose("cp-3")
    ok(world.run("cp-1", f"{world.root('cp-1')}/usr/local/bin/k3s-killall.sh"))
    refused(k3s_reset(world, "cp-1"), "cannot perform cluster-reset while server URL is set")


def test_stand_in_wants_the_token_on_a_rebuilt_vm_token_file_is_not_enough(world):
    for name in SERVERS:
        rebuild(world, name)
    world.install_k3s_files("cp-1")
    no_server = world.root("cp-1") / "no-server.yaml"
    config = world.root("cp-1") / "etc/rancher/k3s/config.yaml"
    no_server.write_text("".join(line for line in config.read_text().splitlines(True) if not line.startswith("server:")))
    (world.root("cp-1") / "no-server.yaml.d").symlink_to(world.root("cp-1") / "etc/rancher/k3s/config.yaml.d")
    refused(
        k3s_reset(world, "cp-1", "--config", str(no_server), f"--cluster-reset-restore-path={SNAPSHOT}"),
        "server/token does not exist, please pass --token to complete the restoration",
    )
    ok(k3s_reset(world, "cp-1", "--config", str(no_server), f"--cluster-reset-restore-path={SNAPSHOT}", K3S_TOKEN=TOKEN))


def test_stand_in_systemd_has_no_unit_on_a_vm_without_k3s(world):
    rebuild(world, "cp-1")
    refused(world.run("cp-1", "systemctl start k3s"), "Unit k3s.service not found")


# --- the scripts themselves --------------------------------------------------------------------------------


@pytest.mark.parametrize("script", restore.SCRIPTS)
def test_shellcheck(script, tmp_path):
    text = restore.scripts(servers=SERVERS, agents=AGENTS, api_endpoint=VIP, version=VERSION, install_script_url=INSTALLER)[script]
    path = tmp_path / script
    path.write_text(text)
    result = subprocess.run([tools.need("shellcheck"), "--shell=bash", "--severity=style", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_rendered_for_the_nodes_own_root_with_config_values_as_data():
    rendered = restore.scripts(
        servers={"cp-1": "10.0.0.1"}, agents=(), api_endpoint="api.moh.example.org", version=VERSION,
        install_script_url="https://mirror.example/k3s?x=$(id)", root="/",
    )
    assert "k3s=/usr/local/bin/k3s" in rendered["stop-server.sh"]
    assert "install_script_url='https://mirror.example/k3s?x=$(id)'" in rendered["restore-control-plane.sh"]
    for text in rendered.values():
        assert "K3S_TOKEN=\"$token\"" not in text or "--token" not in text


# --- the runbook runs as written ---------------------------------------------------------------------------

RUNBOOK = Path(__file__).resolve().parents[1] / "docs" / "runbooks" / "restore-control-plane.md"
# Who "On <who>:" means in the runbook, for a restore onto cp-1 (the others: cp-2, cp-3).
WHO = {
    "every server VM that exists": ("cp-1", "cp-2", "cp-3"),
    "ONE server": ("cp-1",),
    "the survivor": ("cp-1",),
    "every other server": ("cp-2", "cp-3"),
    "the restored server": ("cp-1",),
    "a surviving server": ("cp-1",),
}


def runbook_steps(section: str) -> list[tuple[str, str]]:
    """The section's steps in order: ("pulumi up", "") or (who, "script args")."""
    text = RUNBOOK.read_text().split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    steps = []
    for line in re.split(r"\n(?=\d+\. )", text):
        if match := re.search(r"[Oo]n ([^:]+): `sudo bash ([^`]+)`", line):
            steps.append((match[1], match[2]))
        elif "`pulumi up`" in line:
            steps.append(("pulumi up", ""))
    return steps


def play(world: World, section: str, rebuilt: tuple[str, ...]) -> None:
    for who, command in runbook_steps(section):
        if who == "pulumi up":
            for name in rebuilt:
                if not (world.root(name) / "etc/rancher/k3s/config.yaml").exists():
                    assert configure(world, name, 2).returncode == 0
                elif (world.root(name) / "usr/local/bin/k3s").exists():
                    continue
                install(world, name)  # fails (and is run again) while no cluster answers
            continue
        script, *args = command.split()
        args = [SNAPSHOT if a == "<snapshot>" else a for a in args]
        for name in WHO[who]:
            ok(world.run(name, scripts(world, name)[script], *args))


def test_runbook_names_every_script_and_only_them():
    named = set(re.findall(r"sudo bash ([\w.-]+\.sh)", RUNBOOK.read_text()))
    assert named == set(restore.SCRIPTS)
    table = set(re.findall(r"^\| `([\w.-]+\.sh)` \|", RUNBOOK.read_text(), re.M))
    assert table == set(restore.SCRIPTS)


def test_runbook_all_servers_lost_as_written(world):
    for name in SERVERS:
        world.lose(name)
    play(world, "All servers lost", rebuilt=tuple(SERVERS))
    assert_whole(world, dict.fromkeys(SERVERS, 2))


def test_runbook_data_damaged_as_written(world):
    play(world, "All servers lost", rebuilt=())
    assert_whole(world, dict.fromkeys(SERVERS, 1))


def test_runbook_two_servers_lost_as_written(world):
    world.lose("cp-2"), world.lose("cp-3")
    play(world, "Two servers lost", rebuilt=("cp-2", "cp-3"))
    assert_whole(world, {"cp-1": 1, "cp-2": 2, "cp-3": 2})


def test_runbook_one_server_lost_as_written(world):
    world.lose("cp-3")
    play(world, "One server lost", rebuilt=("cp-3",))
    assert_whole(world, {"cp-1": 1, "cp-2": 1, "cp-3": 2})


@pytest.mark.parametrize("stack", ["changes", "backup"])
def test_every_stack_of_ours_exports_the_control_plane_restore_scripts(stack, tmp_path):
    """With or without a bucket: a backup-less stack restores from the servers' own snapshots. The county
    restore needs Velero, so it comes with `backup` only; a cluster of someone else's gets none of ours."""
    evaluation, _ = plan.run(stack, stack_dir=STACKS)
    scripts = evaluation.outputs["restoreScripts"]
    with_backup = evaluation.outputs.get("backup") is not None
    assert set(scripts) == set(restore.SCRIPTS) | ({"restore-county.sh", "check-bucket.sh"} if with_backup else set())
    written = plan.write_review_folder(evaluation, tmp_path / stack)
    assert {p.name for p in written if p.parent.name == "restore"} == set(scripts)


def test_a_cluster_of_someone_else_s_gets_no_control_plane_scripts():
    evaluation, _ = plan.run("backup-existing", stack_dir=STACKS)
    assert set(evaluation.outputs["restoreScripts"]) == {"restore-county.sh", "check-bucket.sh"}
    evaluation, _ = plan.run("k3d", stack_dir=STACKS)
    assert "restoreScripts" not in evaluation.outputs
