"""docs/runbooks/secrets-encryption.md run as written against the stand-in k3s (tests/restore_world.py).

The stand-in follows k3s's secrets-encrypt handlers and PR #13370 (the stages, which server loaded which
config); see tests/restore_world.py for the files and versions. The runbook's `pulumi up` step is the real
configure script with `k3s.secretsEncryption: true`, which rewrites config.yaml and restarts k3s.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from components.k3s import files, scripts
from config import guards
from tests import tools
from tests.restore_world import World
from tests.test_k3s_restore import AGENT_TOKEN, AGENTS, SERVERS, SHAPE, TOKEN, VIP, uuid

RUNBOOK = Path(__file__).resolve().parents[1] / "docs" / "runbooks" / "secrets-encryption.md"
STATUS_WORDS = ("Encryption Status", "Current Rotation Stage", "Server Encryption Hashes", "All hashes match", "AES-CBC")


def configure(world: World, name: str, encryption: bool):
    config = files.node_config(
        SHAPE, role="server", seeds_etcd=False, name=name, ip=SERVERS[name], vm_uuid=uuid(name, 1),
        secrets_encryption=encryption,
    )
    script = scripts.configure_script(
        name=name, role="server", config_yaml=config, registries_yaml=None, kube_vip_yaml=None, root=str(world.root(name))
    )
    return world.run(name, script, stdin=scripts.configure_stdin("server", token=TOKEN, agent_token=AGENT_TOKEN))


@pytest.fixture
def world(tmp_path) -> World:
    """Three servers serving a cluster built without secrets encryption."""
    w = World(tmp_path, SERVERS, AGENTS, VIP, tools.need("bash"))
    for name in SERVERS:
        assert configure(w, name, False).returncode == 0
        w.install_k3s_files(name)
        member = w.root(name) / "var/lib/rancher/k3s/server/db/etcd/member"
        member.parent.mkdir(parents=True)
        member.write_text("c0")
    state = w.load()
    state["clusters"]["c0"] = {
        "nodes": {n: {"providerID": f"vsphere://{uuid(n, 1)}", "etcd": True} for n in SERVERS},
        "secrets": {}, "members": sorted(SERVERS), "token": TOKEN,
    }
    w.save(state)
    for name in SERVERS:
        assert w.run(name, "systemctl start k3s").returncode == 0
    return w


def k3s(world: World, name: str, command: str):
    return world.run(name, f"{world.root(name)}/usr/local/bin/{command}")


def steps() -> list[str]:
    procedure = RUNBOOK.read_text().split("## Secrets encryption", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\d+\. (.*?)(?=^\d+\. |\Z)", procedure, re.M | re.S)


def play(world: World) -> None:
    for step in steps():
        commands = re.findall(r"`(sudo [^`]+|pulumi up)`", step)
        servers = list(SERVERS) if step.startswith("On each server") else ["cp-1"]
        expected = [s for s in re.findall(r"`([^`]+)`", step) if any(w in s for w in STATUS_WORDS)]
        for command in commands:
            if command == "pulumi up":
                assert guards.SECRETS_ENCRYPTION in step  # the acceptance the guard asks for
                for name in sorted(SERVERS):  # K3sNode configures the servers one after another
                    result = configure(world, name, True)
                    assert result.returncode == 0, result.stderr
                continue
            if command == "sudo k3s etcd-snapshot save":
                continue  # the snapshot itself is the restore runbook's (tests/test_k3s_restore.py)
            for name in servers:
                word = command.split()[1]
                result = world.run(name, command.removeprefix("sudo ")) if word == "systemctl" else k3s(
                    world, name, command.removeprefix("sudo ")
                )
                assert result.returncode == 0, (command, result.stderr)
                if command.endswith("status"):
                    for text in expected:
                        assert text.split(": ", 1)[-1] in result.stdout, (step, text, result.stdout)


def test_the_runbook_turns_encryption_on_as_upstream_accepts_it(world):
    play(world)
    status = k3s(world, "cp-2", "k3s secrets-encrypt status").stdout
    assert "Encryption Status: Enabled" in status and "All hashes match" in status
    assert not [e for e in world.load()["events"] if e.startswith("UNSUPPORTED")]


def test_the_old_order_fails_against_the_stand_in(world):
    """The README's former procedure (enable, restart without the flag, reencrypt) never encrypts."""
    assert k3s(world, "cp-1", "k3s secrets-encrypt enable").returncode == 0
    for name in SERVERS:
        assert world.run(name, "systemctl restart k3s").returncode == 0
    result = k3s(world, "cp-1", "k3s secrets-encrypt reencrypt")
    assert result.returncode != 0 and "incorrect stage start" in result.stderr
    assert "Encryption Status: Disabled" in k3s(world, "cp-1", "k3s secrets-encrypt status").stdout


def test_rotate_keys_waits_for_every_server_to_load_the_config(world):
    assert k3s(world, "cp-1", "k3s secrets-encrypt enable").returncode == 0
    assert configure(world, "cp-1", True).returncode == 0  # only one server restarted with the flag
    result = k3s(world, "cp-1", "k3s secrets-encrypt rotate-keys")
    assert result.returncode != 0 and "hash does not match" in result.stderr


def test_the_flag_alone_is_recorded_as_unsupported(world):
    assert configure(world, "cp-1", True).returncode == 0
    assert any(e.startswith("UNSUPPORTED") for e in world.load()["events"])
