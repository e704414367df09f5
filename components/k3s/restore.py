"""Control-plane restore scripts: one, two or all servers lost, as upstream k3s accepts it.

Run by an operator with `sudo bash <script>` on the servers (docs/runbooks/restore-control-plane.md says in
which order). Pure renderers, like scripts.py: `root` is the directory treated as the node's root (the stack
renders `/`; tests render a sandbox per server). What upstream checks, and how these scripts meet it (k3s
`pkg/cli/server/server.go`, `pkg/cluster/managed.go`, `pkg/configfilearg/parser.go`, `pkg/etcd/member_controller.go`,
`pkg/nodepassword/`; docs.k3s.io cli/etcd-snapshot.md):

- `--cluster-reset` is refused while a server URL is set ("cannot perform cluster-reset while server URL is
  set", PR #8385), and every server of an existing cluster has `server:` in config.yaml. The reset reads a
  restore-time copy of the config and its `.d` drop-ins with the `server` key left out (`--config`; the copy
  is root-only and removed afterwards); config.yaml itself is never edited, so `pulumi up` has nothing to
  put back.
- A restore from a snapshot needs `--token`/`K3S_TOKEN` or `<data-dir>/server/token`; `token-file` does not
  satisfy that check, and a rebuilt VM has no `server/token`. The token goes from the root-only token file to
  `K3S_TOKEN` in k3s's environment, never on a command line.
- Every other server is stopped and checked before the reset: none answers on :6443, nor does the API
  endpoint once this server is stopped too (no second cluster behind the VIP). `stop-server.sh` stops k3s
  with `k3s-killall.sh` (kube-vip's container outlives `systemctl stop k3s`) and keeps it from starting at boot.
- RESTORE_MARK (layout.py) is on every server the restore touches until it serves the restored cluster: the
  configure, install, drain and uninstall scripts of `pulumi up` refuse to run there meanwhile.
- The way back to three servers: an intact VM rejoins with `rejoin-etcd.sh` (its etcd data set aside, as the
  docs' "remove db, start"); a rebuilt VM has no k3s and is installed and joined by the next `pulumi up`
  (`rejoin-etcd.sh` only lifts the mark there, it never starts a unit that was never installed).
- The snapshot holds the old Nodes: after the reset the other servers' Nodes and node-password secrets are
  deleted (they are no etcd members any more; whatever rejoins registers again with its own VM's provider
  ID and password). k3s itself deletes the restored server's own node-password secret on its first start
  after a reset (managed.go). `finish-restore.sh` deletes what is left: Nodes of VMs no longer in the stack,
  orphaned node-password secrets, and, when this server's Node still names the VM the snapshot was taken on
  (spec.providerID is immutable), it joins this server again under a fresh Node once the others hold quorum.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping

from . import layout
from .scripts import SHEBANG, on_node

KILLALL = f"{layout.BIN_DIR}/k3s-killall.sh"
DB_DIR = f"{layout.DATA_DIR}/server/db"
RESET_FLAG = f"{DB_DIR}/reset-flag"  # k3s refuses a second reset while it exists (pkg/cluster/managed.go)
SNAPSHOT_DIR = f"{DB_DIR}/snapshots"
# The restore-time config: config.yaml and its drop-ins without `server`; root-only, removed after the reset.
RESTORE_CONFIG_DIR = f"{layout.CONFIG_DIR}/restore-config"
# What this server was reset from, so a rerun resumes instead of resetting twice; finish-restore.sh removes it.
RESET_RECORD = f"{layout.CONFIG_DIR}/restore-reset-done"
NODE_PASSWORD_SUFFIX = ".node-password.k3s"  # k3s pkg/nodepassword: `<node>.node-password.k3s` in kube-system
API_WAIT_SECONDS = 600

SCRIPTS = ("stop-server.sh", "restore-control-plane.sh", "rejoin-etcd.sh", "finish-restore.sh")


def _prelude(*, servers: Mapping[str, str], api_endpoint: str, root: str, what: str) -> str:
    """Shared start: the stack's servers as data, paths under `root`, and the helpers every script uses."""
    on = on_node
    q = shlex.quote
    ips = "".join(f"server_ip[{q(name)}]={q(ip)}\n" for name, ip in sorted(servers.items()))
    return f"""{SHEBANG}# {what}
umask 077
# Only what this script passes reaches k3s: no server URL, config file or token from the caller's environment.
unset K3S_URL K3S_CONFIG_FILE K3S_TOKEN K3S_TOKEN_FILE
declare -A server_ip=()
# The settings every restore script shares (not each script uses each of them).
# shellcheck disable=SC2034
{{
{ips}api_endpoint={q(api_endpoint)}
k3s={on(root, layout.K3S_BIN)}
killall={on(root, KILLALL)}
config={on(root, layout.CONFIG_FILE)}
token_file={on(root, layout.TOKEN_FILE)}
kubeconfig={on(root, layout.KUBECONFIG_FILE)}
mark={on(root, layout.RESTORE_MARK)}
record={on(root, RESET_RECORD)}
db={on(root, DB_DIR)}
}}
# The node this VM is, from the config pulumi up wrote; only the stack's servers take part in a restore.
this_server() {{
  local name
  [ -s "$config" ] || fail "$config is missing: run pulumi up first (it writes each VM's config, token and bucket keys)"
  name="$(sed -n 's/^node-name:[[:space:]]*//p' "$config" | tr -d "'\\"")"
  [ -n "$name" ] && [ -n "${{server_ip[$name]:-}}" ] || fail "this VM (node '$name') is not one of the stack's servers: ${{!server_ip[*]}}"
  printf '%s\\n' "$name"
}}
# answers ADDRESS: a k3s supervisor (or the API endpoint) serves there (k3s /ping needs no credentials).
answers() {{ curl -ksf --max-time 5 "https://$1:{layout.API_PORT}/ping" >/dev/null 2>&1; }}
installed() {{ [ -x "$k3s" ]; }}
mark_restore() {{
  mkdir -p "$(dirname "$mark")"
  printf '%s %s\\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1" >>"$mark"
}}
# Stop k3s here and everything it started (kube-vip's container outlives `systemctl stop k3s`), keep it from
# starting at boot, and check that nothing answers any more.
stop_local() {{
  if [ -x "$killall" ]; then
    "$killall" >/dev/null 2>&1 || true
  else
    systemctl stop k3s 2>/dev/null || true
  fi
  systemctl disable k3s >/dev/null 2>&1 || true
  if systemctl is-active --quiet k3s 2>/dev/null; then
    fail "k3s still runs on this server after stopping it; see systemctl status k3s"
  fi
  if answers 127.0.0.1; then
    fail "something still answers on :{layout.API_PORT} on this server after stopping k3s"
  fi
}}
kubectl() {{ "$k3s" kubectl --kubeconfig "$kubeconfig" "$@"; }}
wait_for_api() {{
  local deadline=$((SECONDS + {API_WAIT_SECONDS}))
  until kubectl get --raw=/readyz >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || fail "the API on this server did not become ready within {API_WAIT_SECONDS}s; see journalctl -u k3s"
    sleep 5
  done
}}
"""


def stop_server_script(*, servers: Mapping[str, str], api_endpoint: str, root: str = "/") -> str:
    """`stop-server.sh`: on every server VM that exists, before the restore; idempotent."""
    return (
        _prelude(servers=servers, api_endpoint=api_endpoint, root=root, what="Stop k3s on this server for a control-plane restore.")
        + """self="$(this_server)"
mark_restore "stop-server.sh: stopped for a control-plane restore"
if ! installed; then
  echo "cht-hosting: k3s is not installed on $self (a rebuilt VM): nothing runs here. Marked: pulumi up leaves it alone until rejoin-etcd.sh"
  exit 0
fi
stop_local
echo "cht-hosting: k3s stopped on $self and checked (not active, nothing answers on :6443, not started at boot). It stays stopped until rejoin-etcd.sh"
"""
    )


def restore_script(
    *, servers: Mapping[str, str], api_endpoint: str, version: str, install_script_url: str, root: str = "/"
) -> str:
    """`restore-control-plane.sh --snapshot <name> | --keep-data` on the ONE server the cluster comes back on."""
    on, q = on_node, shlex.quote
    # Top-level `server` key, quoted or not (k3s reads YAML; our files are yaml.safe_dump's).
    server_key = r"""'^["'"'"']?server["'"'"']?[[:space:]]*:'"""
    return (
        _prelude(
            servers=servers, api_endpoint=api_endpoint, root=root,
            what="Reset the control plane onto this server: from a snapshot, or keeping this server's data.",
        )
        + f"""usage() {{
  fail "usage: restore-control-plane.sh --snapshot <name> (a name as 'k3s etcd-snapshot ls' or the bucket lists it) | --keep-data (the survivor of two lost servers)"
}}
snapshot=""
case "${{1:-}}" in
  --snapshot)
    [ $# -eq 2 ] || usage
    snapshot="$2"
    [[ "$snapshot" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || usage
    mode="snapshot $snapshot" ;;
  --keep-data)
    [ $# -eq 1 ] || usage
    mode="keep-data" ;;
  *) usage ;;
esac
self="$(this_server)"
[ -s "$token_file" ] || fail "$token_file is missing: run pulumi up first (it writes the cluster's token, which decrypts the snapshot's bootstrap data)"
restore_path=""
if [ -n "$snapshot" ]; then
  if grep -qx 'etcd-s3: true' "$config"; then
    # k3s downloads it from the bucket its config names, with the keys of the root-only drop-in.
    [ -s {on(root, layout.S3_CREDENTIALS_FILE)} ] || fail "{layout.S3_CREDENTIALS_FILE} is missing: run pulumi up first (it writes the bucket's keys)"
    restore_path="$snapshot"
  else
    restore_path={on(root, SNAPSHOT_DIR)}/"$snapshot"
    [ -f "$restore_path" ] || fail "no snapshot $snapshot in {SNAPSHOT_DIR} on this server, and no bucket in $config"
  fi
fi
if [ -f "$record" ]; then
  done_mode="$(cat "$record")"
  [ "$done_mode" = "$mode" ] || fail "this server was already reset ($done_mode). To reset again: stop k3s, remove {RESET_RECORD} and {RESET_FLAG}, and run this again"
  if [ ! -e "$mark" ]; then
    echo "cht-hosting: the control plane was already restored on $self ($done_mode). Next: rejoin-etcd.sh on the other servers, pulumi up, then finish-restore.sh here"
    exit 0
  fi
  echo "cht-hosting: resuming the restore on $self ($done_mode was already reset)"
else
  # Nobody else may serve a cluster while this one is reset: a second cluster behind the VIP is split brain.
  busy=()
  for name in $(printf '%s\\n' "${{!server_ip[@]}}" | sort); do
    [ "$name" = "$self" ] && continue
    if answers "${{server_ip[$name]}}"; then busy+=("$name (${{server_ip[$name]}})"); fi
  done
  [ ${{#busy[@]}} -eq 0 ] || fail "these servers still run k3s: ${{busy[*]}}. Run stop-server.sh on each (or power its VM off in vCenter), then run this again; nothing was changed"
  mark_restore "restore-control-plane.sh $mode"
  if installed; then stop_local; fi
  if answers "$api_endpoint"; then
    fail "the API endpoint $api_endpoint still answers with every server stopped: another machine serves it (a server outside this stack, or a VM left running). Stop it first; nothing was reset"
  fi
  [ ! -e {on(root, RESET_FLAG)} ] || fail "{RESET_FLAG} is there from an earlier reset done by hand; k3s refuses to reset again while it exists. Remove it if you mean to reset, then run this again"
  if ! installed; then
    # A rebuilt VM: pulumi up wrote its files but could not install k3s (it waits for a cluster to join).
    installer="$(mktemp)"
    install_script_url={q(install_script_url)}
    curl -sfL --retry 5 --retry-delay 2 -o "$installer" "$install_script_url" \\
      || fail "could not download the k3s install script from $install_script_url"
    INSTALL_K3S_VERSION={q(version)} INSTALL_K3S_EXEC=server INSTALL_K3S_SKIP_START=true sh "$installer" \\
      || fail "the k3s install script failed"
    rm -f "$installer"
    systemctl disable k3s >/dev/null 2>&1 || true
  fi
  # The reset reads a copy of the config without `server` (k3s refuses a reset while a server URL is set).
  restore_config={on(root, RESTORE_CONFIG_DIR)}
  rm -rf "$restore_config"
  mkdir -p "$restore_config/config.yaml.d"
  trap 'rm -rf "$restore_config"' EXIT
  grep -Ev {server_key} "$config" >"$restore_config/config.yaml" || true
  for dropin in "$config.d"/*.yaml "$config.d"/*.yml; do
    [ -f "$dropin" ] || continue
    grep -Ev {server_key} "$dropin" >"$restore_config/config.yaml.d/${{dropin##*/}}" || true
  done
  args=(server --config "$restore_config/config.yaml" --cluster-reset)
  [ -z "$restore_path" ] || args+=(--cluster-reset-restore-path="$restore_path")
  echo "cht-hosting: resetting the cluster onto $self ($mode); k3s keeps the current database as etcd-old-<time>"
  token="$(cat "$token_file")"
  K3S_TOKEN="$token" "$k3s" "${{args[@]}}" \\
    || fail "the reset failed; see the output above. Fix what it names and run this again"
  unset token
  rm -rf "$restore_config"
  printf '%s\\n' "$mode" >"$record"
fi
systemctl enable k3s >/dev/null 2>&1 || true
systemctl start k3s || fail "k3s did not start after the reset; see journalctl -u k3s"
wait_for_api
# The other servers are no etcd members any more; their Nodes and node-password secrets from the snapshot
# go, so whatever rejoins (this VM or a rebuilt one) registers again with its own provider ID and password.
for name in $(printf '%s\\n' "${{!server_ip[@]}}" | sort); do
  [ "$name" = "$self" ] && continue
  kubectl delete node "$name" --ignore-not-found --wait=false >/dev/null || fail "could not delete the old Node $name"
  kubectl -n kube-system delete secret "$name{NODE_PASSWORD_SUFFIX}" --ignore-not-found >/dev/null \\
    || fail "could not delete the old node-password secret of $name"
done
rm -f "$mark"
echo "cht-hosting: the control plane runs again on $self ($mode). Next: rejoin-etcd.sh on every other server VM, then pulumi refresh and pulumi up, then finish-restore.sh here"
"""
    )


def rejoin_script(*, servers: Mapping[str, str], api_endpoint: str, root: str = "/") -> str:
    """`rejoin-etcd.sh` on every other server VM once the restored server runs; idempotent."""
    return (
        _prelude(
            servers=servers, api_endpoint=api_endpoint, root=root,
            what="Rejoin this server to the restored cluster; its old etcd data is set aside, never deleted.",
        )
        + f"""self="$(this_server)"
if [ -f "$record" ]; then
  fail "$self is the server the cluster was restored on; rejoin-etcd.sh is for the other servers"
fi
if [ ! -e "$mark" ]; then
  if installed && systemctl is-active --quiet k3s; then
    echo "cht-hosting: no restore is in progress on $self and k3s runs: nothing to do"
    exit 0
  fi
  fail "no restore is in progress on $self ({layout.RESTORE_MARK} is absent): run stop-server.sh here before the restore"
fi
if ! installed; then
  # A rebuilt VM: no k3s unit exists, so there is nothing to start; the next pulumi up installs and joins it.
  rm -f "$mark"
  echo "cht-hosting: k3s is not installed on $self (a rebuilt VM): pulumi up installs it and joins it to the restored cluster"
  exit 0
fi
answers "$api_endpoint" || fail "the restored cluster does not answer at $api_endpoint yet: run restore-control-plane.sh on the server you restore on first"
stop_local
if [ -d "$db" ]; then
  aside="$db.before-restore-$(date -u +%Y%m%dT%H%M%SZ)"
  mv "$db" "$aside" || fail "could not move {DB_DIR} aside"
  echo "cht-hosting: the old etcd data of $self is in $aside (delete it once the cluster is healthy)"
fi
systemctl enable k3s >/dev/null 2>&1 || true
systemctl start k3s || fail "k3s did not start on $self; see journalctl -u k3s"
rm -f "$mark"
echo "cht-hosting: $self rejoined the restored cluster"
"""
    )


def finish_script(*, servers: Mapping[str, str], agents: Iterable[str], api_endpoint: str, root: str = "/") -> str:
    """`finish-restore.sh` on the restored server once every server is back: clean up what the snapshot held."""
    q = shlex.quote
    known = " ".join(q(n) for n in sorted({*servers, *agents}))
    return (
        _prelude(
            servers=servers, api_endpoint=api_endpoint, root=root,
            what="After a restore: check every server is back, delete stale Nodes and node-password secrets.",
        )
        + f"""known=({known})
self="$(this_server)"
[ ! -e "$mark" ] || fail "a restore is still in progress on $self; finish it first (restore-control-plane.sh or rejoin-etcd.sh)"
wait_for_api
ready() {{ [ "$("$@" -o jsonpath='{{.status.conditions[?(@.type=="Ready")].status}}' 2>/dev/null)" = True ]; }}
missing=()
for name in $(printf '%s\\n' "${{!server_ip[@]}}" | sort); do
  ready kubectl get node "$name" || missing+=("$name")
done
[ ${{#missing[@]}} -eq 0 ] || fail "these servers are not back yet: ${{missing[*]}}. Run rejoin-etcd.sh on an intact VM, pulumi up for a rebuilt one, then this again"
# Nodes of VMs that are no longer in the stack, and node-password secrets without a Node.
for node in $(kubectl get nodes -o jsonpath='{{.items[*].metadata.name}}'); do
  case " ${{known[*]}} " in *" $node "*) continue ;; esac
  if ready kubectl get node "$node"; then
    echo "cht-hosting: node $node runs but is not in the stack; left alone (remove it yourself if it should not be there)" >&2
    continue
  fi
  echo "cht-hosting: deleting node $node (not in the stack, not ready)"
  kubectl delete node "$node" --wait=false >/dev/null || fail "could not delete node $node"
done
nodes=" $(kubectl get nodes -o jsonpath='{{.items[*].metadata.name}}') "
for secret in $(kubectl -n kube-system get secrets -o jsonpath='{{.items[*].metadata.name}}'); do
  case "$secret" in *{NODE_PASSWORD_SUFFIX}) ;; *) continue ;; esac
  case "$nodes" in *" ${{secret%{NODE_PASSWORD_SUFFIX}}} "*) continue ;; esac
  echo "cht-hosting: deleting $secret (its node is gone)"
  kubectl -n kube-system delete secret "$secret" --ignore-not-found >/dev/null || fail "could not delete $secret"
done
# This server's Node came back from the snapshot: on a rebuilt VM it still names the old VM (spec.providerID
# is immutable, so the vSphere CPI and CSI look for a VM that is gone). It joins again under a fresh Node.
want="$(sed -n 's/^- provider-id=//p' "$config" | tr -d "'\\"")"
have="$(kubectl get node "$self" -o jsonpath='{{.spec.providerID}}')"
if [ -n "$want" ] && [ "$have" != "$want" ]; then
  others=()
  for name in $(printf '%s\\n' "${{!server_ip[@]}}" | sort); do [ "$name" = "$self" ] || others+=("$name"); done
  [ ${{#others[@]}} -ge 2 ] || fail "node $self names $have, not this VM ($want), and no two other servers hold etcd quorum while it joins again; the CPI cannot manage this node (see the runbook)"
  via="https://${{server_ip[${{others[0]}}]}}:{layout.API_PORT}"
  peer() {{ "$k3s" kubectl --kubeconfig "$kubeconfig" --server "$via" "$@"; }}
  mark_restore "finish-restore.sh: $self joins again under a Node of its own VM"
  echo "cht-hosting: node $self names $have, not this VM ($want): it joins again (its Node and etcd member go first)"
  peer delete node "$self" --wait=false >/dev/null || fail "could not delete node $self through ${{others[0]}}"
  deadline=$((SECONDS + 300))
  while :; do
    out="$(peer get node "$self" -o name 2>&1)" || case "$out" in *NotFound*|*"not found"*) break ;; esac
    [ "$SECONDS" -lt "$deadline" ] || fail "node $self was still in the cluster 5 minutes after its deletion: $out"
    sleep 5
  done
  stop_local
  aside="$db.before-rejoin-$(date -u +%Y%m%dT%H%M%SZ)"
  mv "$db" "$aside" || fail "could not move {DB_DIR} aside"
  systemctl enable k3s >/dev/null 2>&1 || true
  systemctl start k3s || fail "k3s did not start on $self; see journalctl -u k3s"
  deadline=$((SECONDS + {API_WAIT_SECONDS}))
  until ready peer get node "$self" && [ "$(peer get node "$self" -o jsonpath='{{.spec.providerID}}')" = "$want" ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "node $self did not come back ready as $want; see journalctl -u k3s"
    sleep 5
  done
  rm -f "$mark"
  echo "cht-hosting: node $self joined again as $want (its old etcd data is in $aside)"
fi
rm -f "$record"
echo "cht-hosting: the restore is finished: every server is back, no stale Node or node-password secret is left"
"""
    )


def scripts(
    *,
    servers: Mapping[str, str],
    agents: Iterable[str],
    api_endpoint: str,
    version: str,
    install_script_url: str,
    root: str = "/",
) -> dict[str, str]:
    """Every control-plane restore script by file name (the stack exports them with the other restore scripts)."""
    common = {"servers": servers, "api_endpoint": api_endpoint, "root": root}
    rendered = {
        "stop-server.sh": stop_server_script(**common),
        "restore-control-plane.sh": restore_script(**common, version=version, install_script_url=install_script_url),
        "rejoin-etcd.sh": rejoin_script(**common),
        "finish-restore.sh": finish_script(**common, agents=agents),
    }
    assert tuple(rendered) == SCRIPTS
    return rendered
