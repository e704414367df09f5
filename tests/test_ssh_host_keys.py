"""The host-key rotation scripts, run for real: shellcheck, then bash against a sandbox node root.

Real tools: bash, coreutils, awk and ssh-keygen (which checks the key on stdin). Stubs first on PATH:
sudo (runs its command), sshd (`-t` answers $STUB_SSHD_RC), systemctl and cloud-init; each logs its argv,
so the tests can show the private key never reaches a command line.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from components.ssh import host_keys
from tests import tools

STUBS = {
    "sudo": '[ "$1" = -n ] && shift\nexec "$@"\n',
    "sshd": 'exit "${STUB_SSHD_RC:-0}"\n',
    "systemctl": "exit 0\n",
    "cloud-init": "exit 0\n",
}


class Node:
    def __init__(self, base: Path):
        self.root = base / "root"
        (self.root / "etc/ssh/sshd_config.d").mkdir(parents=True)
        self.bin = base / "bin"
        self.bin.mkdir()
        self.log = base / "argv.log"
        for name, body in STUBS.items():
            stub = self.bin / name
            stub.write_text(f'#!/bin/bash\nprintf "%s %s\\n" {name} "$*" >> "{self.log}"\n{body}')
            stub.chmod(0o755)
        # The boot key cloud-init installed.
        self.boot = self.root / "etc/ssh/ssh_host_ed25519_key"
        self.boot.write_text("boot-private\n")
        self.boot.with_suffix(".pub").write_text("ssh-ed25519 AAAAboot\n")
        self.keys = base / "keys"
        self.keys.mkdir()

    def keypair(self, name: str) -> tuple[str, str]:
        path = self.keys / name
        subprocess.run([tools.need("ssh-keygen"), "-q", "-t", "ecdsa", "-b", "256", "-N", "", "-C", name, "-f", str(path)], check=True)
        return path.read_text(), path.with_suffix(".pub").read_text().strip()

    def run(self, command: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess:
        environment = {"PATH": f"{self.bin}:/usr/bin:/bin", "HOME": str(self.root), **env}
        return subprocess.run([tools.need("bash"), "-c", command], input=stdin, capture_output=True, text=True, env=environment, timeout=60)

    @property
    def drop_in(self) -> Path:
        return self.root / host_keys.DROP_IN.lstrip("/")

    def served(self) -> list[str]:
        return [line.split()[1] for line in self.drop_in.read_text().splitlines()]

    def calls(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


@pytest.fixture
def node(tmp_path):
    return Node(tmp_path)


@pytest.mark.parametrize("script", ["rotate", "retire"])
def test_scripts_pass_shellcheck(script, tmp_path):
    command = host_keys.rotate_script("ecdsa-sha2-nistp256 AAAAx") if script == "rotate" else host_keys.retire_script()
    sudo, _, bash, _, script = shlex.split(command)  # sudo -n bash -c '<script>'
    assert (sudo, bash) == ("sudo", "bash")
    path = tmp_path / "script.sh"
    path.write_text("#!/bin/bash\n" + script)
    result = subprocess.run([tools.need("shellcheck"), "-s", "bash", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_rotation_installs_the_lasting_key_from_stdin_and_serves_both(node):
    private, public = node.keypair("lasting")
    result = node.run(host_keys.rotate_script(public, root=str(node.root)), stdin=private)
    assert result.returncode == 0, result.stderr
    key = node.root / "etc/ssh/ssh_host_ecdsa_key"
    assert key.read_text() == private and (key.stat().st_mode & 0o777) == 0o600
    assert key.with_suffix(".pub").read_text().strip() == " ".join(public.split()[:2])
    # Both served, so a re-run pinned to the boot key still connects.
    assert node.served() == [host_keys.LASTING_KEY, host_keys.BOOT_KEY]
    assert {"sshd -t", "systemctl reload-or-restart ssh"} <= set(node.calls().splitlines())
    assert private.splitlines()[1] not in node.calls()  # the key went through stdin only
    again = node.run(host_keys.rotate_script(public, root=str(node.root)), stdin=private)
    assert again.returncode == 0 and key.read_text() == private


def test_rotation_refuses_a_key_other_than_the_pinned_one_and_changes_nothing(node):
    _, public = node.keypair("pinned")
    other, _ = node.keypair("other")
    result = node.run(host_keys.rotate_script(public, root=str(node.root)), stdin=other)
    assert result.returncode != 0 and "not the one the program pins" in result.stderr
    assert not (node.root / "etc/ssh/ssh_host_ecdsa_key").exists() and not node.drop_in.exists()
    assert not list((node.root / "etc/ssh").glob(".cht-host-key.*"))  # the temporary copy is gone
    empty = node.run(host_keys.rotate_script(public, root=str(node.root)), stdin="")
    assert empty.returncode != 0


def test_a_config_sshd_refuses_is_rolled_back(node):
    private, public = node.keypair("lasting")
    assert node.run(host_keys.rotate_script(public, root=str(node.root)), stdin=private).returncode == 0
    before = node.drop_in.read_text()
    result = node.run(host_keys.retire_script(root=str(node.root)), STUB_SSHD_RC="255")
    assert result.returncode != 0 and "nothing changed" in result.stderr
    assert node.drop_in.read_text() == before and node.boot.exists()
    reloads = [line for line in node.calls().splitlines() if line.startswith("systemctl ")]
    assert reloads == ["systemctl reload-or-restart ssh"]  # only the rotation's


def test_retirement_serves_only_the_lasting_key_and_deletes_the_boot_key(node):
    private, public = node.keypair("lasting")
    assert node.run(host_keys.rotate_script(public, root=str(node.root)), stdin=private).returncode == 0
    result = node.run(host_keys.retire_script(root=str(node.root)))
    assert result.returncode == 0, result.stderr
    assert node.served() == [host_keys.LASTING_KEY]
    assert not node.boot.exists() and not node.boot.with_suffix(".pub").exists()
    again = node.run(host_keys.retire_script(root=str(node.root)))  # idempotent: pinned to the lasting key
    assert again.returncode == 0 and node.served() == [host_keys.LASTING_KEY]


def test_retirement_without_a_lasting_key_keeps_the_boot_key(node):
    result = node.run(host_keys.retire_script(root=str(node.root)))
    assert result.returncode != 0 and "run the rotation first" in result.stderr
    assert node.boot.exists() and not node.drop_in.exists()
