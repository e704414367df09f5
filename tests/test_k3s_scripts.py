"""The scripts K3sNode runs over SSH, tested for real: shellcheck, then bash against a sandbox.

The scripts are rendered for the sandbox: a directory standing in for the node's root, passed as the
renderers' `root` (the component renders `/`; the scripts read no variable that could move them). PATH holds
only stubs: curl, systemctl, cloud-init and sudo are fakes, and so is the k3s binary the fake installer puts
under the sandbox root; the coreutils the scripts use are wrappers around the real ones. Every stub and
wrapper logs its argv, so the tests can prove that no secret appears on a command line.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from components.k3s import files, layout, scripts
from tests import tools

TOKEN = "mocktokenK3sSecretValue0123456789abcdef"
AGENT_TOKEN = "mockAgentTokenValue9876543210fedcba"
# Quotes, `$(`, `/` and `+` in a key must stay data all the way into the drop-in.
S3_ACCESS, S3_SECRET = "MOCKACCESSKEY0123", "mock/Secret+Key'\"$(x)0123"
ETCD = files.EtcdS3(
    endpoint="https://s3.moh.example.org:9000", bucket="cht-backups", folder="cht-hosting/etcd", region="us-east-1",
    schedule="0 */6 * * *", retention=28, ca_bundle="-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
)
SHAPE = files.ClusterShape("10.20.0.10", "10.42.0.0/16", "10.43.0.0/16")
KUBECONFIG = "apiVersion: v1\nkind: Config\nusers: [{name: admin, user: {client-key-data: bW9jaw==}}]\n"
REAL = ("cat", "mktemp", "chmod", "cmp", "cp", "mv", "rm", "mkdir", "dirname", "sleep", "sh", "date", "grep", "timeout")

STUBS = {
    # curl: `-o FILE URL` downloads a fake installer; anything else (the /ping probe) answers.
    "curl": r"""
out=""; prev=""
for a in "$@"; do [ "$prev" = "-o" ] && out="$a"; prev="$a"; done
[ -n "${STUB_CURL_FAIL:-}" ] && exit 22
if [ -n "$out" ]; then
  cat > "$out" <<'INSTALLER'
echo "fake installer exec=$INSTALL_K3S_EXEC version=$INSTALL_K3S_VERSION skip=${INSTALL_K3S_SKIP_ENABLE:-}${INSTALL_K3S_SKIP_START:-}" >> "$STUB_LOG.installer"
[ -n "${STUB_INSTALL_FAIL:-}" ] && exit 1
mkdir -p "$STUB_ROOT/usr/local/bin" "$STUB_ROOT/state"
cp "$STUB_K3S" "$STUB_ROOT/usr/local/bin/k3s"
[ "${INSTALL_K3S_SKIP_ENABLE:-}" = true ] || : > "$STUB_ROOT/state/enabled"
INSTALLER
fi
exit 0
""",
    "systemctl": r"""
case "$1" in
  is-enabled|is-active) [ -e "$STUB_ROOT/state/enabled" ] ;;
  restart) [ -z "${STUB_RESTART_FAIL:-}" ] ;;
  enable) [ "$2" = --now ] && : > "$STUB_ROOT/state/enabled" ;;
  *) exit 0 ;;
esac
""",
    "cloud-init": r"""exit "${STUB_CLOUD_INIT_RC:-0}"
""",
    "sudo": r"""
[ "$1" = -n ] && shift
exec "$@"
""",
}
# The k3s binary: `k3s kubectl [--kubeconfig F] [--server U] VERB node NAME ...`; nodes are files under state/nodes.
K3S = r"""
[ "$1" = kubectl ] || exit 0
shift
while [ "${1#--}" != "$1" ]; do
  case "$1" in
    --kubeconfig) printf "kubeconfig %s\n" "$(cat "$2")" >> "$STUB_LOG.k3s"; shift 2 ;;
    --server) printf "server %s\n" "$2" >> "$STUB_LOG.k3s"; shift 2 ;;
    *) shift ;;
  esac
done
verb="$1"; node="$3"
[ "$verb" = drain ] && node="$2"
case "$verb" in
  get)
    [ -n "${STUB_API_DOWN:-}" ] && { echo "The connection to the server 10.20.0.10:6443 was refused" >&2; exit 1; }
    # After a restart: the local API server's /readyz, and the node's Ready condition (tests/test_k3s_rolling.py).
    if [ "$2" = --raw ]; then
      [ -z "${STUB_UNHEALTHY:-}" ] || { echo "[-]etcd failed: reason withheld" >&2; exit 1; }
      echo ok; exit 0
    fi
    case "$*" in *jsonpath=*) echo "${STUB_NODE_READY:-True}"; exit 0 ;; esac
    [ -e "$STUB_ROOT/state/nodes/$node" ] && { echo "node/$node"; exit 0; }
    echo "Error from server (NotFound): nodes \"$node\" not found" >&2; exit 1 ;;
  drain) [ -z "${STUB_DRAIN_FAIL:-}" ] ;;
  delete) rm -f "$STUB_ROOT/state/nodes/$node" ;;
esac
"""


class Sandbox:
    def __init__(self, base: Path):
        self.root = base / "root"
        self.bin = base / "bin"
        self.log = base / "argv.log"
        self.root.mkdir()
        self.bin.mkdir()
        (self.root / "state").mkdir()
        log_line = 'printf "%s\\n" "${0##*/} $*" >> "$STUB_LOG"\n'
        self.bash = tools.need("bash")
        for name, body in STUBS.items():
            self._write(name, f"#!{self.bash}\n" + log_line + body)
        for name in (*REAL, "bash"):
            self._write(name, f'#!{self.bash}\n{log_line}exec {tools.need(name)} "$@"\n')
        self.k3s = base / "k3s"
        self.k3s.write_text(f"#!{self.bash}\n" + log_line.replace("${0##*/}", "k3s") + K3S)
        self.k3s.chmod(0o755)

    def _write(self, name: str, text: str) -> None:
        path = self.bin / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)

    def run(self, script: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess:
        environment = {
            "PATH": str(self.bin),
            "STUB_ROOT": str(self.root),
            "STUB_K3S": str(self.k3s),
            "STUB_LOG": str(self.log),
            **env,
        }
        return subprocess.run(
            [self.bash, "-c", script], input=stdin, capture_output=True, text=True, env=environment, timeout=30
        )

    @property
    def at(self) -> str:
        """The sandbox as the root the scripts are rendered for."""
        return str(self.root)

    def file(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def argv(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def add_node(self, name: str) -> None:
        (self.root / "state" / "nodes").mkdir(exist_ok=True)
        (self.root / "state" / "nodes" / name).touch()

    def install_k3s(self) -> None:
        target = self.file(layout.K3S_BIN)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.k3s, target)

    def kubectl_log(self) -> str:
        path = Path(str(self.log) + ".k3s")
        return path.read_text() if path.exists() else ""


@pytest.fixture
def box(tmp_path) -> Sandbox:
    return Sandbox(tmp_path)


def configure(
    role: layout.Role = "server", seeds: bool = False, mirrors=None, kube_vip: bool = True, root: str = "/", etcd=None
) -> str:
    name = {"server": "cp-2", "agent": "agent-1"}[role]
    config = files.node_config(
        SHAPE, role=role, seeds_etcd=seeds, name=name, ip="10.20.0.12", vm_uuid="4211ABCD-0001", etcd=etcd
    )
    return scripts.configure_script(
        name=name,
        role=role,
        config_yaml=config,
        registries_yaml=files.registries_config(mirrors or {}),
        kube_vip_yaml=files.kube_vip_manifest("10.20.0.10", version="v1.0.0", interface=None) if kube_vip else None,
        root=root,
        s3_ca_bundle=etcd.ca_bundle if etcd else None,
    )


def stdin_for(role: layout.Role = "server", s3: bool = False) -> str:
    """What the component sends: the tokens and, on servers with snapshots to S3, the key drop-in."""
    creds = files.s3_credentials_config(S3_ACCESS, S3_SECRET) if s3 else None
    return scripts.configure_stdin(role, token=TOKEN, agent_token=AGENT_TOKEN, s3_credentials_yaml=creds)


def install(role: layout.Role = "server", join: bool = True, root: str = "/", kubeconfig: bool = False) -> str:
    return scripts.install_script(
        name="cp-2" if role == "server" else "agent-1",
        role=role,
        version="v1.36.1+k3s1",
        install_script_url="https://mirror.moh.example.org/k3s/install.sh",
        join_url=SHAPE.api_url if join else None,
        kubeconfig_on_stdin=kubeconfig,
        wait_seconds=0,  # the endpoint probe gives up at once when it fails
        root=root,
    )


def drain(role: layout.Role = "agent", name: str = "agent-1", minutes: int = 7, root: str = "/") -> str:
    return scripts.drain_script(name=name, role=role, api_url=SHAPE.api_url, timeout_minutes=minutes, root=root)


ALL_SCRIPTS = {
    "configure-server": configure("server", mirrors={"docker.io": ["https://mirror.example"]}),
    "configure-seed-lb": configure("server", seeds=True, kube_vip=False),
    "configure-agent": configure("agent"),
    "configure-server-etcd-s3": configure("server", etcd=ETCD),
    "install-seed": install("server", join=False),
    "install-agent": install("agent"),
    "install-server-with-kubeconfig": install("server", kubeconfig=True),
    "uninstall-server": scripts.uninstall_script(name="cp-2", role="server"),
    "uninstall-agent": scripts.uninstall_script(name="agent-1", role="agent"),
    "drain-agent": drain("agent"),
    "drain-server": drain("server", name="cp-2"),
}


def test_production_scripts_work_on_the_nodes_own_root():
    """Rendered for `/`, the scripts name the node's real paths and read no variable that could move them."""
    for name, script in ALL_SCRIPTS.items():
        assert "SANDBOX" not in script and "root=" not in script, name
    assert "put /etc/rancher/k3s/config.yaml 600" in ALL_SCRIPTS["configure-server"]
    assert "if [ -x /usr/local/bin/k3s ]" in ALL_SCRIPTS["install-agent"]
    assert "/usr/local/bin/k3s-uninstall.sh ||" in ALL_SCRIPTS["uninstall-server"]
    with pytest.raises(ValueError, match="absolute"):
        scripts.uninstall_script(name="cp-2", role="server", root="relative/dir")


@pytest.mark.parametrize("name", sorted(ALL_SCRIPTS))
def test_script_passes_shellcheck(name, tmp_path):
    path = tmp_path / f"{name}.sh"
    path.write_text(ALL_SCRIPTS[name])
    result = subprocess.run([tools.need("shellcheck"), "--shell=bash", "--severity=style", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_configure_writes_files_and_rerun_changes_nothing(box):
    script = configure("server", mirrors={"docker.io": ["https://mirror.example"]}, root=box.at)
    first = box.run(script, stdin=stdin_for("server"))
    assert first.returncode == 0, first.stderr
    assert box.file(layout.TOKEN_FILE).read_text() == TOKEN + "\n"
    assert box.file(layout.AGENT_TOKEN_FILE).read_text() == AGENT_TOKEN + "\n"
    assert not box.file(layout.S3_CREDENTIALS_FILE).exists()
    assert oct(box.file(layout.TOKEN_FILE).stat().st_mode & 0o777) == "0o600"
    assert "provider-id=vsphere://4211abcd-0001" in box.file(layout.CONFIG_FILE).read_text()
    assert "https://mirror.example" in box.file(layout.REGISTRIES_FILE).read_text()
    assert "kube-vip" in box.file(layout.KUBE_VIP_FILE).read_text()
    before = {p: p.stat().st_mtime_ns for p in box.root.rglob("*") if p.is_file()}

    # k3s now runs; a second run with the same inputs must neither touch a file nor restart it.
    (box.root / "state" / "enabled").touch()
    box.install_k3s()
    second = box.run(script, stdin=stdin_for("server"))
    assert second.returncode == 0, second.stderr
    assert "up to date (changed=0)" in second.stdout
    assert "systemctl restart" not in box.argv()
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_configure_restarts_k3s_when_the_config_changes(box):
    assert box.run(configure("server", root=box.at), stdin=stdin_for("server")).returncode == 0
    (box.root / "state" / "enabled").touch()
    box.install_k3s()
    changed = box.run(
        configure("server", mirrors={"docker.io": ["https://mirror.example"]}, root=box.at), stdin=stdin_for("server")
    )
    assert changed.returncode == 0, changed.stderr
    assert "systemctl restart k3s" in box.argv()
    # A mirror removed from config removes the file again.
    assert box.run(configure("server", root=box.at), stdin=stdin_for("server")).returncode == 0
    assert not box.file(layout.REGISTRIES_FILE).exists()


def test_configure_fails_with_a_message_without_a_token(box):
    result = box.run(configure("agent", root=box.at), stdin="")
    assert result.returncode != 0
    assert "no cluster token on stdin" in result.stderr
    assert not box.file(layout.CONFIG_FILE).exists()


def test_configure_fails_when_cloud_init_failed(box):
    result = box.run(configure("agent", root=box.at), stdin=stdin_for("agent"), STUB_CLOUD_INIT_RC="1")
    assert result.returncode != 0
    assert "cloud-init failed" in result.stderr


def test_configure_fails_when_the_restart_fails(box):
    assert box.run(configure("agent", root=box.at), stdin=stdin_for("agent")).returncode == 0
    (box.root / "state" / "enabled").touch()
    box.install_k3s()
    result = box.run(
        configure("agent", mirrors={"docker.io": ["https://m.example"]}, root=box.at),
        stdin=stdin_for("agent"),
        STUB_RESTART_FAIL="1",
    )
    assert result.returncode != 0
    assert "did not restart" in result.stderr


def test_a_replaced_vm_deletes_its_old_node_before_k3s_first_starts(box):
    """The new VM never ran k3s, so a Node of its name is its predecessor's: deleted, then k3s starts."""
    box.add_node("agent-1")
    result = box.run(install("agent", root=box.at, kubeconfig=True), stdin=KUBECONFIG)
    assert result.returncode == 0, result.stderr
    assert "skip=truetrue" in Path(str(box.log) + ".installer").read_text()  # installed, not started
    log = box.argv()
    assert log.index(" delete node agent-1 --wait=false") < log.index("systemctl daemon-reload")
    assert log.index("systemctl daemon-reload") < log.index("systemctl enable --now k3s-agent")
    assert "still in the cluster from the VM this one replaced" in result.stdout
    assert not (box.root / "state" / "nodes" / "agent-1").exists()
    assert "client-key-data: bW9jaw==" in box.kubectl_log() and "bW9jaw==" not in log
    # Installed now: a second run touches nothing, the cluster included.
    again = box.run(install("agent", root=box.at, kubeconfig=True), stdin=KUBECONFIG)
    assert again.returncode == 0 and "already installed" in again.stdout


def test_a_new_node_with_a_kubeconfig_deletes_nothing(box):
    box.add_node("agent-2")
    result = box.run(install("agent", root=box.at, kubeconfig=True), stdin=KUBECONFIG)
    assert result.returncode == 0, result.stderr
    assert "delete node" not in box.argv() and (box.root / "state" / "nodes" / "agent-2").exists()
    assert "systemctl enable --now k3s-agent" in box.argv()


@pytest.mark.parametrize(
    "stdin, env, message",
    [
        ("", {}, "no kubeconfig on stdin"),
        (KUBECONFIG, {"STUB_API_DOWN": "1"}, "cannot reach the cluster at https://10.20.0.10:6443 to check for an old node"),
    ],
)
def test_a_replacing_install_stops_before_starting_k3s_when_it_cannot_check(box, stdin, env, message):
    result = box.run(install("server", root=box.at, kubeconfig=True), stdin=stdin, **env)
    assert result.returncode != 0 and message in result.stderr
    assert "systemctl enable" not in box.argv() and not (box.root / "state" / "enabled").exists()


def test_install_runs_the_installer_once(box):
    first = box.run(install("agent", root=box.at))
    assert first.returncode == 0, first.stderr
    installer_log = Path(str(box.log) + ".installer").read_text()
    assert "exec=agent version=v1.36.1+k3s1" in installer_log
    assert "curl -ksf --max-time 5 https://10.20.0.10:6443/ping" in box.argv()
    assert "https://mirror.moh.example.org/k3s/install.sh" in box.argv()

    second = box.run(install("agent", root=box.at))
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
    result = box.run(install("server", join=False, root=box.at), **env)
    assert result.returncode != 0
    assert message in result.stderr


def test_joining_node_gives_up_when_the_endpoint_never_answers(box):
    result = box.run(install("agent", root=box.at), STUB_CURL_FAIL="1")
    assert result.returncode != 0
    assert "did not answer at https://10.20.0.10:6443" in result.stderr


def test_no_secret_in_any_argv(box):
    """The token and the kubeconfig go through stdin into 0600 files; no stub or coreutil sees them as arguments."""
    for script, stdin in (
        (configure("server", root=box.at, etcd=ETCD), stdin_for("server", s3=True)),
        (configure("agent", root=box.at), stdin_for("agent")),
        (install("agent", root=box.at), ""),
    ):
        for secret in (TOKEN, AGENT_TOKEN, S3_ACCESS, S3_SECRET):
            assert secret not in script
        assert box.run(script, stdin=stdin).returncode == 0
    # Also through the exact command line the component sends over SSH (sudo -n bash -c '<script>').
    script = configure("server", mirrors={"docker.io": ["https://m.example"]}, root=box.at)
    assert box.run(scripts.as_root(script), stdin=stdin_for("server", s3=True)).returncode == 0
    box.add_node("agent-1")
    assert box.run(scripts.as_root(drain("agent", root=box.at)), stdin=KUBECONFIG).returncode == 0
    log = box.argv()
    assert "sudo -n bash -c" in log and "cat" in log and "mktemp" in log and "k3s kubectl" in log
    assert TOKEN not in log and "bW9jaw==" not in log
    for secret in (AGENT_TOKEN, S3_ACCESS, S3_SECRET):
        assert secret not in log


def test_server_writes_the_s3_keys_to_a_root_only_drop_in_k3s_parses(box):
    import yaml

    result = box.run(configure("server", root=box.at, etcd=ETCD), stdin=stdin_for("server", s3=True))
    assert result.returncode == 0, result.stderr
    creds = box.file(layout.S3_CREDENTIALS_FILE)
    assert oct(creds.stat().st_mode & 0o777) == "0o600"
    # Quotes, '$(' and '/' in a key stay data: the drop-in parses back to exactly the keys.
    assert yaml.safe_load(creds.read_text()) == {"etcd-s3-access-key": S3_ACCESS, "etcd-s3-secret-key": S3_SECRET}
    assert box.file(layout.S3_CA_FILE).read_text() == ETCD.ca_bundle
    config = yaml.safe_load(box.file(layout.CONFIG_FILE).read_text())
    assert config["etcd-s3-endpoint-ca"] == layout.S3_CA_FILE and "etcd-s3-access-key" not in config
    # Snapshots back to the servers only: the next run removes the keys and the CA from the node.
    (box.root / "state" / "enabled").touch()
    box.install_k3s()
    again = box.run(configure("server", root=box.at), stdin=stdin_for("server"))
    assert again.returncode == 0, again.stderr
    assert not creds.exists() and not box.file(layout.S3_CA_FILE).exists()
    assert "systemctl restart k3s" in box.argv()


def test_agent_holds_only_the_agent_token(box):
    result = box.run(configure("agent", root=box.at), stdin=stdin_for("agent"))
    assert result.returncode == 0, result.stderr
    assert box.file(layout.TOKEN_FILE).read_text() == AGENT_TOKEN + "\n"
    assert not box.file(layout.AGENT_TOKEN_FILE).exists()
    assert TOKEN not in "".join(p.read_text() for p in box.root.rglob("*") if p.is_file())


def test_server_refuses_to_run_without_the_agent_token(box):
    result = box.run(configure("server", root=box.at), stdin=TOKEN + "\n")
    assert result.returncode != 0
    assert "no agent token on stdin" in result.stderr
    assert not box.file(layout.CONFIG_FILE).exists()


def test_an_agent_drains_itself_with_the_kubeconfig_it_is_given(box):
    box.install_k3s()
    box.add_node("agent-1")
    result = box.run(drain("agent", root=box.at), stdin=KUBECONFIG)
    assert result.returncode == 0, result.stderr
    log = box.argv()
    assert "drain agent-1 --ignore-daemonsets --delete-emptydir-data --timeout=7m" in log
    assert log.index(" drain agent-1") < log.index(" delete node agent-1")
    assert not (box.root / "state" / "nodes" / "agent-1").exists()
    # Every kubectl call went to the API endpoint with the kubeconfig from stdin (written to a temporary file).
    calls = box.kubectl_log()
    assert "server https://10.20.0.10:6443" in calls and "client-key-data: bW9jaw==" in calls
    # Run again (e.g. a retried delete): the node is gone, nothing to do.
    again = box.run(drain("agent", root=box.at), stdin=KUBECONFIG)
    assert again.returncode == 0 and "nothing to drain" in again.stdout


def test_an_agent_refuses_to_drain_without_a_kubeconfig(box):
    box.install_k3s()
    result = box.run(drain("agent", root=box.at), stdin="")
    assert result.returncode != 0 and "no kubeconfig on stdin" in result.stderr


def test_a_server_drains_itself_through_the_endpoint_with_its_own_kubeconfig(box):
    box.install_k3s()
    box.add_node("cp-2")
    result = box.run(drain("server", name="cp-2", root=box.at))
    assert result.returncode == 0, result.stderr
    assert f"--kubeconfig {box.file(layout.KUBECONFIG_FILE)} --server https://10.20.0.10:6443 delete node cp-2" in box.argv()
    assert not (box.root / "state" / "nodes" / "cp-2").exists()


def test_a_vm_without_k3s_has_nothing_to_drain(box):
    """A new VM in place of a lost one: the drain says what to do by hand instead of failing the update."""
    result = box.run(drain("agent", root=box.at), stdin=KUBECONFIG)
    assert result.returncode == 0, result.stderr
    assert "k3s is not installed on this VM" in result.stdout and "kubectl delete node agent-1" in result.stdout


def test_drain_timeout_stops_the_removal(box):
    box.install_k3s()
    box.add_node("agent-1")
    result = box.run(drain("agent", root=box.at), stdin=KUBECONFIG, STUB_DRAIN_FAIL="1")
    assert result.returncode != 0
    assert "did not finish within 7 minutes" in result.stderr
    assert "delete node" not in box.argv()


def test_drain_fails_when_the_api_is_unreachable(box):
    box.install_k3s()
    result = box.run(drain("agent", root=box.at), stdin=KUBECONFIG, STUB_API_DOWN="1")
    assert result.returncode != 0
    assert "cannot reach the cluster at https://10.20.0.10:6443" in result.stderr


def test_uninstall_runs_the_agent_uninstaller_once_installed(box):
    missing = box.run(scripts.uninstall_script(name="agent-1", role="agent", root=box.at))
    assert missing.returncode == 0 and "not installed" in missing.stdout
    script = box.file("/usr/local/bin/k3s-agent-uninstall.sh")
    script.parent.mkdir(parents=True)
    script.write_text(f'#!{box.bash}\nprintf "%s\\n" "uninstalled" >> "{box.log}"\n')
    script.chmod(0o755)
    result = box.run(scripts.uninstall_script(name="agent-1", role="agent", root=box.at))
    assert result.returncode == 0, result.stderr
    assert "uninstalled" in box.argv()


def test_sandbox_is_hermetic(box):
    """A command the stubs do not provide fails, so the tests above cannot silently use a host tool."""
    assert box.run("kubectl version").returncode == 127
    assert box.run("k3s --version").returncode == 127  # k3s exists only where the installer put it, under the root
