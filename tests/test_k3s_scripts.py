"""The scripts K3sCluster runs over SSH, tested for real: shellcheck, then bash against a sandbox.

The sandbox is a directory standing in for the node's root (`CHT_SANDBOX_ROOT`) and a PATH holding only
stubs: curl, systemctl, cloud-init, k3s and sudo are fakes; the coreutils the scripts use are wrappers
around the real ones. Every stub and wrapper logs its argv, so the tests can prove that the token never
appears on a command line.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from components.k3s import render as r

SHELLCHECK = Path("/work/main/venv/bin/shellcheck")
TOKEN = "mocktokenK3sSecretValue0123456789abcdef"
SHAPE = r.ClusterShape("10.20.0.10", ("10.20.0.11", "10.20.0.12", "10.20.0.13"), "10.42.0.0/16", "10.43.0.0/16")
REAL = ("cat", "mktemp", "chmod", "cmp", "mv", "rm", "mkdir", "dirname", "sleep", "sh")

STUBS = {
    # curl: `-o FILE URL` downloads a fake installer; anything else (the /ping probe) answers.
    "curl": r"""
out=""; prev=""
for a in "$@"; do [ "$prev" = "-o" ] && out="$a"; prev="$a"; done
[ -n "${STUB_CURL_FAIL:-}" ] && exit 22
if [ -n "$out" ]; then
  cat > "$out" <<'INSTALLER'
echo "fake installer exec=$INSTALL_K3S_EXEC version=$INSTALL_K3S_VERSION" >> "$STUB_LOG.installer"
[ -n "${STUB_INSTALL_FAIL:-}" ] && exit 1
mkdir -p "$CHT_SANDBOX_ROOT/usr/local/bin" "$CHT_SANDBOX_ROOT/state"
printf '#!/bin/bash\nexit 0\n' > "$CHT_SANDBOX_ROOT/usr/local/bin/k3s"
chmod +x "$CHT_SANDBOX_ROOT/usr/local/bin/k3s"
: > "$CHT_SANDBOX_ROOT/state/enabled"
INSTALLER
fi
exit 0
""",
    "systemctl": r"""
case "$1" in
  is-enabled|is-active) [ -e "$CHT_SANDBOX_ROOT/state/enabled" ] ;;
  restart) [ -z "${STUB_RESTART_FAIL:-}" ] ;;
  *) exit 0 ;;
esac
""",
    "cloud-init": r"""exit "${STUB_CLOUD_INIT_RC:-0}"
""",
    # k3s kubectl: nodes exist as files under state/nodes.
    "k3s": r"""
[ "$1" = kubectl ] || exit 0
node="$4"
case "$2" in
  get)
    [ -n "${STUB_API_DOWN:-}" ] && { echo "The connection to the server 127.0.0.1:6443 was refused" >&2; exit 1; }
    [ -e "$CHT_SANDBOX_ROOT/state/nodes/$node" ] && { echo "node/$node"; exit 0; }
    echo "Error from server (NotFound): nodes \"$node\" not found" >&2; exit 1 ;;
  drain) node="$3"; [ -z "${STUB_DRAIN_FAIL:-}" ] ;;
  delete) rm -f "$CHT_SANDBOX_ROOT/state/nodes/$4" ;;
esac
""",
    "sudo": r"""
[ "$1" = -n ] && shift
exec "$@"
""",
}


class Sandbox:
    def __init__(self, base: Path):
        self.root = base / "root"
        self.bin = base / "bin"
        self.log = base / "argv.log"
        self.root.mkdir()
        self.bin.mkdir()
        (self.root / "state").mkdir()
        log_line = 'printf "%s\\n" "${0##*/} $*" >> "$STUB_LOG"\n'
        for name, body in STUBS.items():
            self._write(name, "#!/bin/bash\n" + log_line + body)
        for name in REAL:
            self._write(name, f'#!/bin/bash\n{log_line}exec /usr/bin/{name} "$@"\n')
        self._write("bash", f'#!/bin/bash\n{log_line}exec /usr/bin/bash "$@"\n')

    def _write(self, name: str, text: str) -> None:
        path = self.bin / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)

    def run(self, script: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess:
        environment = {"PATH": str(self.bin), "CHT_SANDBOX_ROOT": str(self.root), "STUB_LOG": str(self.log), **env}
        return subprocess.run(
            ["/usr/bin/bash", "-c", script], input=stdin, capture_output=True, text=True, env=environment, timeout=30
        )

    def file(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def argv(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def add_node(self, name: str) -> None:
        (self.root / "state" / "nodes").mkdir(exist_ok=True)
        (self.root / "state" / "nodes" / name).touch()


@pytest.fixture
def box(tmp_path) -> Sandbox:
    return Sandbox(tmp_path)


def configure(role: r.Role = "server", first: bool = False, mirrors=None, kube_vip: bool = True) -> str:
    name = {"server": "cp-2", "agent": "agent-1"}[role]
    config = r.node_config(SHAPE, role=role, first=first, name=name, ip="10.20.0.12", vm_uuid="4211ABCD-0001")
    return r.configure_script(
        name=name,
        role=role,
        config_yaml=config,
        registries_yaml=r.registries_config(mirrors or {}),
        kube_vip_yaml=r.kube_vip_manifest("10.20.0.10", version="v1.0.0", interface="ens192") if kube_vip else None,
    )


def install(role: r.Role = "server", join: bool = True) -> str:
    return r.install_script(
        name="cp-2" if role == "server" else "agent-1",
        role=role,
        version="v1.36.3+k3s1",
        install_script_url="https://mirror.moh.example.org/k3s/install.sh",
        join_url=SHAPE.api_url if join else None,
        wait_seconds=0,  # the endpoint probe gives up at once when it fails
    )


ALL_SCRIPTS = {
    "configure-server": configure("server", mirrors={"docker.io": ["https://mirror.example"]}),
    "configure-first-server-lb": configure("server", first=True, kube_vip=False),
    "configure-agent": configure("agent"),
    "install-first-server": install("server", join=False),
    "install-agent": install("agent"),
    "uninstall-server": r.uninstall_script(name="cp-2", role="server"),
    "uninstall-agent": r.uninstall_script(name="agent-1", role="agent"),
    "drain": r.drain_script(name="agent-1", timeout_minutes=10),
}


@pytest.mark.parametrize("name", sorted(ALL_SCRIPTS))
def test_script_passes_shellcheck(name, tmp_path):
    path = tmp_path / f"{name}.sh"
    path.write_text(ALL_SCRIPTS[name])
    result = subprocess.run([str(SHELLCHECK), "--shell=bash", "--severity=style", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_configure_writes_files_and_rerun_changes_nothing(box):
    script = configure("server", mirrors={"docker.io": ["https://mirror.example"]})
    first = box.run(script, stdin=TOKEN + "\n")
    assert first.returncode == 0, first.stderr
    assert box.file(r.TOKEN_FILE).read_text() == TOKEN + "\n"
    assert oct(box.file(r.TOKEN_FILE).stat().st_mode & 0o777) == "0o600"
    assert "provider-id=vsphere://4211abcd-0001" in box.file(r.CONFIG_FILE).read_text()
    assert "https://mirror.example" in box.file(r.REGISTRIES_FILE).read_text()
    assert "kube-vip" in box.file(r.KUBE_VIP_FILE).read_text()
    before = {p: p.stat().st_mtime_ns for p in box.root.rglob("*") if p.is_file()}

    # k3s now runs; a second run with the same inputs must neither touch a file nor restart it.
    (box.root / "state" / "enabled").touch()
    second = box.run(script, stdin=TOKEN + "\n")
    assert second.returncode == 0, second.stderr
    assert "up to date (changed=0)" in second.stdout
    assert "systemctl restart" not in box.argv()
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_configure_restarts_k3s_when_the_config_changes(box):
    assert box.run(configure("server"), stdin=TOKEN).returncode == 0
    (box.root / "state" / "enabled").touch()
    changed = box.run(configure("server", mirrors={"docker.io": ["https://mirror.example"]}), stdin=TOKEN)
    assert changed.returncode == 0, changed.stderr
    assert "systemctl restart k3s" in box.argv()
    # A mirror removed from config removes the file again.
    assert box.run(configure("server"), stdin=TOKEN).returncode == 0
    assert not box.file(r.REGISTRIES_FILE).exists()


def test_configure_fails_with_a_message_without_a_token(box):
    result = box.run(configure("agent"), stdin="")
    assert result.returncode != 0
    assert "no cluster token on stdin" in result.stderr
    assert not box.file(r.CONFIG_FILE).exists()


def test_configure_fails_when_cloud_init_failed(box):
    result = box.run(configure("agent"), stdin=TOKEN, STUB_CLOUD_INIT_RC="1")
    assert result.returncode != 0
    assert "cloud-init failed" in result.stderr


def test_configure_fails_when_the_restart_fails(box):
    assert box.run(configure("agent"), stdin=TOKEN).returncode == 0
    (box.root / "state" / "enabled").touch()
    result = box.run(configure("agent", mirrors={"docker.io": ["https://m.example"]}), stdin=TOKEN, STUB_RESTART_FAIL="1")
    assert result.returncode != 0
    assert "did not restart" in result.stderr


def test_install_runs_the_installer_once(box):
    first = box.run(install("agent"))
    assert first.returncode == 0, first.stderr
    installer_log = Path(str(box.log) + ".installer").read_text()
    assert "exec=agent version=v1.36.3+k3s1" in installer_log
    assert "curl -ksf --max-time 5 https://10.20.0.10:6443/ping" in box.argv()
    assert "https://mirror.moh.example.org/k3s/install.sh" in box.argv()

    second = box.run(install("agent"))
    assert second.returncode == 0, second.stderr
    assert "already installed" in second.stdout
    assert Path(str(box.log) + ".installer").read_text() == installer_log  # the installer did not run again


@pytest.mark.parametrize(
    "env, message",
    [
        ({"STUB_CURL_FAIL": "1"}, "could not download the k3s install script"),
        ({"STUB_INSTALL_FAIL": "1"}, "the k3s install script failed"),
    ],
)
def test_install_fails_with_a_message(box, env, message):
    result = box.run(install("server", join=False), **env)
    assert result.returncode != 0
    assert message in result.stderr


def test_joining_node_gives_up_when_the_endpoint_never_answers(box):
    result = box.run(install("agent"), STUB_CURL_FAIL="1")
    assert result.returncode != 0
    assert "did not answer at https://10.20.0.10:6443" in result.stderr


def test_no_secret_in_any_argv(box):
    """The token goes through stdin into a file; neither a stub nor a coreutil ever sees it as an argument."""
    for script in (configure("server"), configure("agent"), install("agent")):
        assert TOKEN not in script
        assert box.run(script, stdin=TOKEN).returncode == 0
    # Also through the exact command line the component sends over SSH (sudo -n bash -c '<script>').
    assert box.run(r.as_root(configure("server", mirrors={"docker.io": ["https://m.example"]})), stdin=TOKEN).returncode == 0
    log = box.argv()
    assert "sudo -n bash -c" in log and "cat" in log and "mktemp" in log
    assert TOKEN not in log


def test_drain_then_delete_node(box):
    box.add_node("agent-1")
    result = box.run(r.drain_script(name="agent-1", timeout_minutes=7))
    assert result.returncode == 0, result.stderr
    log = box.argv()
    assert "k3s kubectl drain agent-1 --ignore-daemonsets --delete-emptydir-data --timeout=7m" in log
    assert log.index("kubectl drain") < log.index("kubectl delete node agent-1")
    # Run again (e.g. a retried delete): the node is gone, nothing to do.
    again = box.run(r.drain_script(name="agent-1", timeout_minutes=7))
    assert again.returncode == 0 and "nothing to drain" in again.stdout


def test_drain_timeout_stops_the_removal(box):
    box.add_node("agent-1")
    result = box.run(r.drain_script(name="agent-1", timeout_minutes=7), STUB_DRAIN_FAIL="1")
    assert result.returncode != 0
    assert "did not finish within 7 minutes" in result.stderr
    assert "delete node" not in box.argv()


def test_drain_fails_when_the_api_is_unreachable(box):
    result = box.run(r.drain_script(name="agent-1", timeout_minutes=7), STUB_API_DOWN="1")
    assert result.returncode != 0
    assert "cannot reach the cluster" in result.stderr


def test_uninstall_runs_the_agent_uninstaller_once_installed(box):
    missing = box.run(r.uninstall_script(name="agent-1", role="agent"))
    assert missing.returncode == 0 and "not installed" in missing.stdout
    script = box.file("/usr/local/bin/k3s-agent-uninstall.sh")
    script.parent.mkdir(parents=True)
    script.write_text(f'#!/bin/bash\nprintf "%s\\n" "uninstalled" >> "{box.log}"\n')
    script.chmod(0o755)
    result = box.run(r.uninstall_script(name="agent-1", role="agent"))
    assert result.returncode == 0, result.stderr
    assert "uninstalled" in box.argv()


def test_sandbox_is_hermetic(box):
    """A command the stubs do not provide fails, so the tests above cannot silently use a host tool."""
    assert os.path.exists(SHELLCHECK)
    assert box.run("kubectl version").returncode == 127
