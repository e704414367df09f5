"""Pure renderers of the bash scripts that put k3s on a node and take it off, run as root over SSH.

Nothing here imports Pulumi, so every script is tested directly (under shellcheck and bash). The scripts that
touch the node's files take the directory they treat as the node's root (`root`): the component renders them
for `/`; tests render them for a sandbox directory. Lifecycle of one node, in the order `K3sNode` runs it:

- configure  (`configure_script`): wait for cloud-init, write config.yaml, the token file (read from stdin),
  registries.yaml and, on servers, the kube-vip manifest (files.py renders them); restart k3s if it runs and
  a file changed.
- install    (`install_script`): install k3s through the install script once; a joining node first waits for
  the API endpoint. A second run finds k3s installed and does nothing (upgrades are plans.py's Plans' job).
- remove     (`drain_script`, run on the node itself: drain it, delete its Node; then `uninstall_script`).

The control-plane restore scripts are restore.py's; every script here refuses to run while RESTORE_MARK is on
the node.
"""

from __future__ import annotations

import hashlib
import posixpath
import shlex

from config.names import KUBE_SYSTEM

from .layout import (
    AGENT_KUBECONFIG_FILE,
    AGENT_TOKEN_FILE,
    BIN_DIR,
    CONFIG_FILE,
    K3S_BIN,
    KUBE_VIP_FILE,
    KUBECONFIG_FILE,
    LEAVING_LABEL,
    REGISTRIES_FILE,
    RESTORE_MARK,
    S3_CA_FILE,
    S3_CREDENTIALS_FILE,
    TOKEN_FILE,
    Role,
    service_name,
)

# How long a node's restart after a configuration change may take until the node is healthy again.
RESTART_TIMEOUT_SECONDS = 600
# How long a node may take after its VM was powered off and on (boot, then k3s) until it is healthy again.
VM_BACK_TIMEOUT_SECONDS = 900
# Stands in for the VM's UUID in a configuration digest: a new VM is a replacement, not a restart.
DIGEST_VM_UUID = "vm-uuid"


def configure_stdin(role: Role, *, token: str, agent_token: str, s3_credentials_yaml: str | None = None) -> str:
    """What `configure_script` reads on stdin: the join token; on servers also the agent token and the S3 drop-in.

    Agents get only the agent token (as their join token), so an agent's disk never holds the server token.
    """
    for value, what in ((token, "cluster token"), (agent_token, "agent token")):
        if not value or "\n" in value:
            raise ValueError(f"the {what} must be one non-empty line")
    if role == "agent":
        return agent_token + "\n"
    return f"{token}\n{agent_token}\n{s3_credentials_yaml or ''}"


SHEBANG = """\
#!/usr/bin/env bash
set -euo pipefail
fail() { echo "cht-hosting: $*" >&2; exit 1; }
"""

_PUT = """\
changed=0
# put PATH MODE: install stdin as PATH unless PATH already holds exactly that; remember a change.
put() {
  local path="$1" mode="$2" tmp
  mkdir -p "$(dirname "$path")"
  tmp="$(mktemp "$path.XXXXXX")"
  cat >"$tmp"
  chmod "$mode" "$tmp"
  if [ -f "$path" ] && cmp -s "$tmp" "$path"; then
    rm -f "$tmp"
  else
    mv -f "$tmp" "$path"
    changed=1
  fi
}
# drop PATH: remove a file we no longer manage.
drop() {
  if [ -e "$1" ]; then
    rm -f "$1"
    changed=1
  fi
}
"""


def _restore_guard(root: str) -> str:
    """Refuse to touch k3s on a node where a control-plane restore is under way (RESTORE_MARK)."""
    return f"""if [ -e {on_node(root, RESTORE_MARK)} ]; then
  fail "a control-plane restore is in progress on this node ({RESTORE_MARK}); pulumi up leaves k3s alone here until it is done. Finish it (docs/runbooks/restore-control-plane.md), then run pulumi up again"
fi
"""


def on_node(root: str, path: str) -> str:
    """`path` of the node under `root` ("/" on a node), quoted for the shell."""
    if not posixpath.isabs(root):
        raise ValueError(f"root must be an absolute path, got {root!r}")
    return shlex.quote(posixpath.join(root, path.lstrip("/")))


def _heredoc(target: str, mode: str, text: str) -> str:
    delimiter = "CHT_HOSTING_EOF"
    if delimiter in text:
        raise ValueError(f"{target} contains the heredoc delimiter {delimiter}")
    return f"put {target} {mode} <<'{delimiter}'\n{text.rstrip(chr(10))}\n{delimiter}\n"


def configure_script(
    *,
    name: str,
    role: Role,
    config_yaml: str,
    registries_yaml: str | None,
    kube_vip_yaml: str | None,
    root: str = "/",
    s3_ca_bundle: str | None = None,
    restart_timeout_seconds: int = RESTART_TIMEOUT_SECONDS,
) -> str:
    """Configure one node; secrets arrive on stdin (`configure_stdin`) and only ever go to 0600 files.

    stdin: the join token (first line); on servers then the agent token (second line) and the S3 key
    drop-in (the rest; empty when snapshots stay on the servers, which removes the drop-in).
    """
    parts = [
        SHEBANG,
        f"# Configure k3s on {name} ({role}).\n",
        _restore_guard(root),
        _PUT,
        """\
# The VM's first boot (users, keys, packages) must be done before k3s goes on it.
if command -v cloud-init >/dev/null 2>&1; then
  status=0
  cloud-init status --wait >/dev/null || status=$?
  # 2 means finished with recoverable errors, which cloud-init reports for harmless warnings.
  if [ "$status" -ne 0 ] && [ "$status" -ne 2 ]; then
    fail "cloud-init failed on this node (exit $status); see /var/log/cloud-init-output.log"
  fi
fi
token=""
IFS= read -r token || true
[ -n "$token" ] || fail "no cluster token on stdin"
""",
        f'put {on_node(root, TOKEN_FILE)} 600 <<<"$token"\n',
        "unset token\n",
    ]
    if role == "server":
        parts.append(
            f"""\
agent_token=""
IFS= read -r agent_token || true
[ -n "$agent_token" ] || fail "no agent token on stdin"
put {on_node(root, AGENT_TOKEN_FILE)} 600 <<<"$agent_token"
unset agent_token
# The rest of stdin is the S3 key drop-in; nothing there means snapshots stay on the servers.
s3_credentials="$(cat)"
if [ -n "$s3_credentials" ]; then
  put {on_node(root, S3_CREDENTIALS_FILE)} 600 <<<"$s3_credentials"
else
  drop {on_node(root, S3_CREDENTIALS_FILE)}
fi
unset s3_credentials
"""
        )
        parts.append(
            _heredoc(on_node(root, S3_CA_FILE), "644", s3_ca_bundle) if s3_ca_bundle else f"drop {on_node(root, S3_CA_FILE)}\n"
        )
    parts += [
        _heredoc(on_node(root, CONFIG_FILE), "600", config_yaml),
        _heredoc(on_node(root, REGISTRIES_FILE), "600", registries_yaml)
        if registries_yaml
        else f"drop {on_node(root, REGISTRIES_FILE)}\n",
    ]
    if role == "server":
        parts.append(
            _heredoc(on_node(root, KUBE_VIP_FILE), "600", kube_vip_yaml) if kube_vip_yaml else f"drop {on_node(root, KUBE_VIP_FILE)}\n"
        )
    parts.append(_restart_when_changed(name=name, role=role, timeout_seconds=restart_timeout_seconds, root=root))
    return "".join(parts)


def configuration_digest(configure: str) -> str:
    """What identifies a node's configuration in `deployedState` (the plan compares it to say which nodes restart):
    the configure script rendered without secrets (they come on stdin) and with `DIGEST_VM_UUID` for the VM."""
    return hashlib.sha256(configure.encode()).hexdigest()[:16]


def _healthy(*, name: str, role: Role, root: str) -> str:
    """A `healthy` shell function: this node's Node is Ready and, on a server, the local API server's /readyz
    (etcd included) answers ok; on failure `$why` says what is wrong. A server asks with k3s's admin
    kubeconfig (its own API server), an agent with its kubelet's own credentials (the node authorizer lets a
    kubelet read its own Node)."""
    k3s = on_node(root, K3S_BIN)
    kubeconfig = on_node(root, KUBECONFIG_FILE if role == "server" else AGENT_KUBECONFIG_FILE)
    ready_jsonpath = "{.status.conditions[?(@.type==\"Ready\")].status}"
    readyz = (
        f"""  why="$({k3s} kubectl --kubeconfig {kubeconfig} get --raw /readyz 2>&1)" || return 1
"""
        if role == "server"
        else ""
    )
    return f"""\
healthy() {{
{readyz}  ready="$({k3s} kubectl --kubeconfig {kubeconfig} get node {name} -o jsonpath='{ready_jsonpath}' 2>/dev/null)" \\
    || {{ why="node {name} could not be read from the cluster"; return 1; }}
  [ "$ready" = True ] || {{ why="node {name} is not Ready (${{ready:-no Ready condition yet}})"; return 1; }}
}}
"""


def _restart_when_changed(*, name: str, role: Role, timeout_seconds: int, root: str) -> str:
    """Restart k3s when a file changed, then wait (bounded) until this node is healthy again (`_healthy`).

    The next node's configure waits for this one (servers one after another, agents one after another), so a
    node that does not come back stops the roll here, with what is wrong, instead of taking the next node down
    too. `systemctl restart` returns once k3s reports ready (install.sh: Type=notify; a server sends READY=1
    once its API server and etcd are up); it is bounded, because the unit has TimeoutStartSec=0.
    """
    service = service_name(role)
    return f"""\
# k3s reads these files only at start; the install script does not notice them changing.
{_healthy(name=name, role=role, root=root)}\
if [ "$changed" -eq 1 ] && systemctl is-enabled --quiet {service} 2>/dev/null; then
  echo "cht-hosting: configuration of {name} changed; restarting {service}, then waiting until {name} is healthy (at most {timeout_seconds} s)"
  deadline=$((SECONDS + {timeout_seconds}))
  timeout {timeout_seconds} systemctl restart {service} \\
    || fail "{service} did not restart with the new configuration within {timeout_seconds} s on {name}; see journalctl -u {service}. The nodes after {name} were not restarted: fix it and run pulumi up again"
  why="not checked yet"
  until healthy; do
    [ "$SECONDS" -lt "$deadline" ] || fail "{name} was not healthy {timeout_seconds} s after {service} restarted with the new configuration: $why. The nodes after {name} were not restarted: see journalctl -u {service}, fix it and run pulumi up again"
    sleep 5
  done
  echo "cht-hosting: {name} is healthy after its restart"
else
  echo "cht-hosting: configuration of {name} is up to date (changed=$changed)"
fi
"""


def vm_back_script(
    *, name: str, role: Role, cpus: int, memory_gb: int, hardware_version: int,
    timeout_seconds: int = VM_BACK_TIMEOUT_SECONDS, root: str = "/",
) -> str:
    """After the provider changed this node's VM (its CPUs, memory and hardware version, which it changes with
    the VM powered off), wait, bounded, until k3s on it is healthy again.

    The next VM of the pool waits for this script (NodePool), so the provider powers off one server, or one
    agent, at a time, and a node that does not come back stops the roll. The script text names the VM's shape
    (CPUs, memory, hardware version), so a changed shape runs it again (as the command's update); on a new VM,
    before k3s is installed, it has nothing to wait for.
    """
    service = service_name(role)
    # Numbers only (validated config): nothing but digits and these words reaches the script's text.
    shape = f"cpus {int(cpus)}, memory {int(memory_gb)} GB, hardware version {int(hardware_version)}"
    return f"""\
{SHEBANG}# {name} ({role}) after a change of its VM: {shape}.
{_healthy(name=name, role=role, root=root)}\
if ! systemctl is-enabled --quiet {service} 2>/dev/null; then
  echo "cht-hosting: k3s is not installed on {name} yet; nothing to wait for"
  exit 0
fi
echo "cht-hosting: waiting until {name} is healthy after its VM changed (at most {timeout_seconds} s)"
deadline=$((SECONDS + {timeout_seconds}))
why="not checked yet"
until {{ systemctl is-active --quiet {service} || {{ why="{service} is not active"; false; }}; }} && healthy; do
  [ "$SECONDS" -lt "$deadline" ] || fail "{name} was not healthy {timeout_seconds} s after its VM changed ({shape}): ${{why}}. The VMs after {name} in its pool were not changed: see journalctl -u {service}, fix it and run pulumi up again"
  sleep 5
done
echo "cht-hosting: {name} is healthy after its VM changed"
"""


def _kubectl(root: str, api_url: str, kubeconfig: str) -> str:
    """A `kubectl` shell function: the node's k3s binary, talking to the API endpoint with `kubeconfig`."""
    return f"""kubectl() {{ {on_node(root, K3S_BIN)} kubectl --kubeconfig {kubeconfig} --server {shlex.quote(api_url)} "$@"; }}
"""


def _kubeconfig_from_stdin(purpose: str) -> str:
    """Reads the admin kubeconfig from stdin into a 0600 temporary file, `$kubeconfig`, removed on exit."""
    return f"""kubeconfig="$(mktemp)"
trap 'rm -f "$kubeconfig"' EXIT
chmod 600 "$kubeconfig"
cat >"$kubeconfig"
[ -s "$kubeconfig" ] || fail "no kubeconfig on stdin to {purpose} with"
"""


def _delete_node(name: str, wait_seconds: int = 300) -> str:
    """Deletes Node `name` and waits until it is gone (a server's goes once k3s has removed its etcd member)."""
    return f"""kubectl delete node {name} --wait=false >/dev/null || fail "could not delete node {name} from the cluster"
# The API endpoint may move to another server meanwhile (a server's own member is being removed).
deadline=$((SECONDS + {wait_seconds}))
while :; do
  out="$(kubectl get node {name} -o name 2>&1)" || case "$out" in *NotFound*|*"not found"*) break ;; esac
  [ "$SECONDS" -lt "$deadline" ] || fail "node {name} was still in the cluster {wait_seconds} s after its deletion: $out"
  sleep 5
done
"""


def _give_up_vip(name: str, wait_seconds: int) -> str:
    """A leaving server's kube-vip gives up the VIP before the server's etcd member (and API server) goes.

    The label takes the server out of kube-vip's DaemonSet (`kube_vip_manifest`); the DaemonSet controller
    deletes the pod, and on SIGTERM kube-vip v1.0.0 releases the lease and deletes the VIP
    (`pkg/cluster/clusterLeaderElection.go`: ReleaseOnCancel, onStoppedLeading -> DeleteIP). An empty answer
    through the API endpoint once the pod is gone proves another server holds the VIP.
    """
    return f"""kubectl label node {name} {LEAVING_LABEL}=true --overwrite >/dev/null \\
  || fail "could not label node {name} {LEAVING_LABEL}=true (it makes kube-vip leave this server)"
deadline=$((SECONDS + {wait_seconds}))
while :; do
  if out="$(kubectl -n {KUBE_SYSTEM} get pods -l app.kubernetes.io/name=kube-vip --field-selector spec.nodeName={name} -o name 2>&1)" \\
    && [ -z "$out" ]; then
    break
  fi
  [ "$SECONDS" -lt "$deadline" ] || fail "kube-vip still ran on {name} (or the API endpoint did not answer) {wait_seconds} s after it was asked to leave: $out. Nothing was deleted; find out why (kubectl -n {KUBE_SYSTEM} get pods -o wide -l app.kubernetes.io/name=kube-vip) and run pulumi up again"
  sleep 2
done
echo "cht-hosting: kube-vip left {name}; another server holds the API endpoint"
"""


def install_script(
    *,
    name: str,
    role: Role,
    version: str,
    install_script_url: str,
    join_url: str | None,
    kubeconfig_on_stdin: bool = False,
    wait_seconds: int = 900,
    root: str = "/",
) -> str:
    """Install k3s once. A node that finds k3s installed exits without touching it (the Plans upgrade it).

    `kubeconfig_on_stdin` (a joining node once the cluster has an admin kubeconfig): before k3s first starts
    here, a Node of this name still in the cluster belongs to a VM this one replaced (this VM never ran k3s):
    it is deleted, so the node joins again under its name (k3s refuses a name whose node-password secret, kept
    until the Node is deleted, does not match).
    """
    service = service_name(role)
    q = shlex.quote
    parts = [
        SHEBANG,
        f"# Install k3s {version} on {name} ({role}), once.\n",
        _restore_guard(root),
        f"""if [ -x {on_node(root, K3S_BIN)} ] && systemctl is-enabled --quiet {service} 2>/dev/null; then
  echo "cht-hosting: k3s is already installed on {name}; nothing to do (upgrades run through system-upgrade-controller)"
  exit 0
fi
""",
    ]
    if kubeconfig_on_stdin:
        if not join_url:
            raise ValueError(f"{name}: only a joining node is handed the cluster's kubeconfig")
        parts.append(_kubeconfig_from_stdin(f"check the cluster for an old node {name}"))
    if join_url:
        parts.append(
            # Config values reach the script as quoted data in variables, never as code (even in messages).
            f"""# Join only once the cluster answers at the API endpoint.
join_url={q(join_url)}
deadline=$((SECONDS + {wait_seconds}))
until curl -ksf --max-time 5 "$join_url/ping" >/dev/null; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    fail "the cluster did not answer at $join_url within {wait_seconds}s; check that the servers run and the API endpoint reaches them"
  fi
  sleep 5
done
"""
        )
    # With a kubeconfig, k3s is installed without starting: the old node goes first.
    skip = "INSTALL_K3S_SKIP_ENABLE=true INSTALL_K3S_SKIP_START=true " if kubeconfig_on_stdin else ""
    cleanup = '"$installer" "$kubeconfig"' if kubeconfig_on_stdin else '"$installer"'
    parts.append(
        f"""installer="$(mktemp)"
trap 'rm -f {cleanup}' EXIT
install_script_url={q(install_script_url)}
curl -sfL --retry 5 --retry-delay 2 -o "$installer" "$install_script_url" \\
  || fail "could not download the k3s install script from $install_script_url; check the node's network or k3s.installScriptUrl"
{skip}INSTALL_K3S_VERSION={q(version)} INSTALL_K3S_EXEC={role} sh "$installer" \\
  || fail "the k3s install script failed on {name}; see journalctl -u {service}"
"""
    )
    if kubeconfig_on_stdin:
        assert join_url is not None
        parts += [
            _kubectl(root, join_url, '"$kubeconfig"'),
            f"""if out="$(kubectl get node {name} -o name 2>&1)"; then
  echo "cht-hosting: node {name} is still in the cluster from the VM this one replaced; deleting it"
""",
            "".join(f"  {line}\n" for line in _delete_node(name).splitlines()),
            f"""else
  case "$out" in
    *NotFound*|*"not found"*) ;;
    *) fail "cannot reach the cluster at $join_url to check for an old node {name}: $out" ;;
  esac
fi
# The installer skipped what it does last (k3s install.sh service_enable_and_start: enable, daemon-reload, start).
systemctl daemon-reload
systemctl enable --now {service} || fail "{service} did not start on {name}; see journalctl -u {service}"
""",
        ]
    parts.append(
        f"""systemctl is-active --quiet {service} || fail "{service} is not running on {name} after the install; see journalctl -u {service}. If a node named {name} was in the cluster before (a replaced VM), delete it first: kubectl delete node {name}"
echo "cht-hosting: k3s {version} installed on {name}"
"""
    )
    return "".join(parts)


def uninstall_script(*, name: str, role: Role, root: str = "/") -> str:
    """Remove k3s from a node that leaves the cluster (its VM is deleted or replaced right after)."""
    script = on_node(root, f"{BIN_DIR}/k3s-uninstall.sh" if role == "server" else f"{BIN_DIR}/k3s-agent-uninstall.sh")
    return f"""{SHEBANG}# Uninstall k3s from {name} ({role}).
{_restore_guard(root)}if [ -x {script} ]; then
  {script} || fail "{script} failed on {name}"
  echo "cht-hosting: k3s removed from {name}"
else
  echo "cht-hosting: k3s is not installed on {name}; nothing to do"
fi
"""


def drain_script(
    *,
    name: str,
    role: Role,
    api_url: str,
    timeout_minutes: int,
    kube_vip: bool = False,
    vip_wait_seconds: int = 120,
    delete_wait_seconds: int = 300,
    root: str = "/",
) -> str:
    """Run on the node itself before it goes: drain it, then delete its Node (a server's etcd seat goes with it).

    kubectl talks to the API endpoint, never to this node's own API server, which stops answering once its etcd
    member is removed. A server uses its own admin kubeconfig (k3s.yaml); an agent has none and is handed the
    cluster's on stdin, which goes to a 0600 temporary file. With `kube_vip`, a server first makes its kube-vip
    give up the VIP (`_give_up_vip`), so the endpoint never points at an API server that is going away. Every
    wait is bounded and says what to do when it runs out; nothing is deleted before the drain and the VIP move
    have succeeded.
    """
    if role == "server":
        credentials = _kubectl(root, api_url, on_node(root, KUBECONFIG_FILE))
    else:
        credentials = _kubeconfig_from_stdin(f"drain {name}") + _kubectl(root, api_url, '"$kubeconfig"')
    step_down = _give_up_vip(name, vip_wait_seconds) if kube_vip and role == "server" else ""
    return f"""{SHEBANG}# Drain {name} ({role}) and remove it from the cluster.
{_restore_guard(root)}if [ ! -x {on_node(root, K3S_BIN)} ]; then
  echo "cht-hosting: k3s is not installed on this VM; nothing to drain here. If the cluster still lists node {name}, delete it: kubectl delete node {name}"
  exit 0
fi
api_url={shlex.quote(api_url)}
{credentials}if ! out="$(kubectl get node {name} -o name 2>&1)"; then
  case "$out" in
    *NotFound*|*"not found"*)
      echo "cht-hosting: node {name} is not in the cluster; nothing to drain"
      exit 0 ;;
    *) fail "cannot reach the cluster at $api_url to drain {name}: $out" ;;
  esac
fi
kubectl drain {name} --ignore-daemonsets --delete-emptydir-data --timeout={timeout_minutes}m \\
  || fail "draining {name} did not finish within {timeout_minutes} minutes; find the pods that block it (kubectl get pods -A -o wide --field-selector spec.nodeName={name}), fix them, and run pulumi up again"
{step_down}{_delete_node(name, delete_wait_seconds)}echo "cht-hosting: node {name} drained and removed from the cluster"
"""


def read_kubeconfig_command() -> str:
    return f"sudo -n cat {KUBECONFIG_FILE}"


def as_root(script: str) -> str:
    """The command line that runs `script` as root over SSH (the script text carries no secret)."""
    return f"sudo -n bash -c {shlex.quote(script)}"
