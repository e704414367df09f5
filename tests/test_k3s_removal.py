"""Removing a server never strands the API endpoint: the rendered drain script against a stand-in cluster.

The stand-in (`CLUSTER`, the `k3s kubectl` the script calls) models what decides where the VIP is:
- kube-vip v1.0.0 `pkg/cluster/clusterLeaderElection.go`: the leader holds the VIP while it renews its lease;
  when renewing fails (`OnStoppedLeading`) or it gets SIGTERM (`ReleaseOnCancel`, then `onStoppedLeading`)
  it deletes the VIP, and another running kube-vip whose API answers takes the lease.
- kube-vip v1.0.0 `pkg/manager/manager.go`: with `/etc/kubernetes/admin.conf` present and `kubernetes_addr`
  set it talks to that address (here its own server's API); without the file it uses the in-cluster client,
  which reaches the API through the `kubernetes` Service, i.e. any server (the "incluster" mode below, where a
  server whose API server is gone keeps the lease: kube-vip#1786).
- k3s `pkg/etcd/member_controller.go` (`OnRemove` -> `RemovePeer`): deleting a server's Node removes its etcd
  member, and its API server stops answering.
- Kubernetes' DaemonSet controller deletes a pod from a node that no longer matches the pod's node affinity
  (after a moment: one stand-in call later).
Which mode the stand-in runs in, and whether the DaemonSet leaves a labelled node, is read from the manifest
`kube_vip_manifest` renders, not assumed.
"""

from __future__ import annotations

import pytest
import yaml

from components.k3s import files, layout, scripts
from tests.test_k3s_scripts import SHAPE, Sandbox

SERVERS = ("cp-1", "cp-2", "cp-3")
# `k3s kubectl [--kubeconfig F] [--server U] ARGS`; the cluster's state is files under cluster/.
CLUSTER = r"""
[ "$1" = kubectl ] || exit 0
shift
c="$STUB_ROOT/cluster"
while [ "${1#--}" != "$1" ]; do
  case "$1" in
    --server) [ "$2" = "$STUB_API_URL" ] || { echo "unexpected server $2" >&2; exit 9; }; shift 2 ;;
    *) shift 2 ;;
  esac
done
# The DaemonSet controller: a pod asked to leave (the label) goes one call later; SIGTERM releases the lease.
for t in "$c"/terminating/*; do
  [ -e "$t" ] || continue
  n="${t##*/}"
  if [ -s "$t" ]; then rm -f "$c/kubevip/$n" "$t"; [ "$(cat "$c/vip")" = "$n" ] && : > "$c/vip"; else echo seen > "$t"; fi
done
# kube-vip's leader election: the holder keeps the VIP while it can renew its lease.
holder="$(cat "$c/vip")"
if [ -n "$holder" ]; then
  if [ ! -e "$c/kubevip/$holder" ] || { [ "$STUB_KUBEVIP_MODE" = local ] && [ ! -e "$c/api/$holder" ]; }; then
    holder=""
  fi
fi
if [ -z "$holder" ]; then
  for k in "$c"/kubevip/*; do  # glob order: by name
    n="${k##*/}"
    if [ -e "$k" ] && [ -e "$c/api/$n" ]; then holder="$n"; break; fi
  done
fi
printf '%s' "$holder" > "$c/vip"
echo "vip=$holder $*" >> "$STUB_LOG.cluster"
if [ -z "$holder" ] || [ ! -e "$c/api/$holder" ]; then
  echo "The connection to the server 10.20.0.10:6443 was refused - did you specify the right host or port?" >&2
  exit 1
fi
case "$1 $2" in
  "get node")
    [ -e "$c/nodes/$3" ] && { echo "node/$3"; exit 0; }
    echo "Error from server (NotFound): nodes \"$3\" not found" >&2; exit 1 ;;
  "drain "*) exit 0 ;;
  "label node")
    [ "$STUB_DS_LEAVES_LABELLED" = 1 ] && [ -e "$c/kubevip/$3" ] && : > "$c/terminating/$3"
    exit 0 ;;
  "delete node")
    rm -f "$c/nodes/$3" "$c/api/$3"  # its etcd member goes, and with it its API server
    exit 0 ;;
  "-n kube-system")
    node=""
    for a in "$@"; do [ "${a#spec.nodeName=}" != "$a" ] && node="${a#spec.nodeName=}"; done
    [ -e "$c/kubevip/$node" ] && echo "pod/kube-vip-$node"
    exit 0 ;;
esac
echo "stand-in: unexpected kubectl $*" >&2
exit 9
"""


def kube_vip_pod(manifest: str) -> dict:
    return next(d for d in yaml.safe_load_all(manifest) if d["kind"] == "DaemonSet")["spec"]["template"]["spec"]


def stand_in_modes(manifest: str) -> dict[str, str]:
    """How the rendered kube-vip behaves, by the rules of manager.go (see the module docstring)."""
    pod = kube_vip_pod(manifest)
    container = pod["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
    host_files = {v["name"]: v["hostPath"]["path"] for v in pod.get("volumes", []) if "hostPath" in v}
    admin_conf = [n for n, path in mounts.items() if path == "/etc/kubernetes/admin.conf"]
    local = bool(admin_conf) and host_files.get(admin_conf[0]) == layout.KUBECONFIG_FILE
    local = local and env.get("kubernetes_addr", "").startswith("127.0.0.1:")
    terms = pod.get("affinity", {}).get("nodeAffinity", {}).get("requiredDuringSchedulingIgnoredDuringExecution", {})
    leaves = any(
        e == {"key": layout.LEAVING_LABEL, "operator": "DoesNotExist"}
        for term in terms.get("nodeSelectorTerms", [])
        for e in term.get("matchExpressions", [])
    )
    return {"STUB_KUBEVIP_MODE": "local" if local else "incluster", "STUB_DS_LEAVES_LABELLED": "1" if leaves else "0"}


MANIFEST = files.kube_vip_manifest("10.20.0.10", version="v1.0.0", interface=None)


@pytest.fixture
def cluster(tmp_path) -> Sandbox:
    box = Sandbox(tmp_path)
    box.k3s.write_text(f"#!{box.bash}\n" + CLUSTER)
    box.install_k3s()
    kubeconfig = box.file(layout.KUBECONFIG_FILE)
    kubeconfig.parent.mkdir(parents=True, exist_ok=True)
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    state = box.root / "cluster"
    for part in ("nodes", "api", "kubevip", "terminating"):
        (state / part).mkdir(parents=True)
    for name in (*SERVERS, "agent-1"):
        (state / "nodes" / name).touch()
    for name in SERVERS:
        (state / "api" / name).touch()
        (state / "kubevip" / name).touch()
    (state / "vip").write_text("cp-2")  # the server that leaves holds the VIP: the case that stranded it
    return box


def remove(box: Sandbox, manifest: str | None = MANIFEST, **waits: int):
    script = scripts.drain_script(
        name="cp-2", role="server", api_url=SHAPE.api_url, timeout_minutes=10, kube_vip=manifest is not None,
        root=box.at, **waits,
    )
    modes = stand_in_modes(manifest or MANIFEST)
    return box.run(script, STUB_API_URL=SHAPE.api_url, **modes)


def vip(box: Sandbox) -> str:
    return (box.root / "cluster" / "vip").read_text()


def calls(box: Sandbox) -> list[str]:
    return [line.split(" ", 1)[1] for line in (box.log.parent / "argv.log.cluster").read_text().splitlines()]


def test_the_rendered_kube_vip_talks_to_its_own_api_server_and_leaves_a_labelled_server():
    assert stand_in_modes(MANIFEST) == {"STUB_KUBEVIP_MODE": "local", "STUB_DS_LEAVES_LABELLED": "1"}
    pod = kube_vip_pod(MANIFEST)
    assert pod["volumes"] == [{"name": "kubeconfig", "hostPath": {"path": "/etc/rancher/k3s/k3s.yaml", "type": "File"}}]
    assert pod["containers"][0]["volumeMounts"][0]["readOnly"] is True


def test_removing_the_vip_holder_moves_the_vip_before_its_api_server_goes(cluster):
    result = remove(cluster)
    assert result.returncode == 0, result.stderr
    assert "kube-vip left cp-2; another server holds the API endpoint" in result.stdout
    assert vip(cluster) in ("cp-1", "cp-3")
    assert not (cluster.root / "cluster" / "nodes" / "cp-2").exists()
    log = calls(cluster)
    steps = [next(i for i, c in enumerate(log) if c.startswith(verb)) for verb in ("drain", "label node", "delete node")]
    assert steps == sorted(steps)
    # The Node was deleted (its etcd member and API server removed) only once another server held the VIP.
    deleted = next(c for c in (cluster.log.parent / "argv.log.cluster").read_text().splitlines() if " delete node " in c)
    assert not deleted.startswith("vip=cp-2 ")


def test_local_kube_vip_alone_gives_up_the_vip_when_its_api_server_goes(cluster):
    """Without the step-down (as a server removed by an older program would be), the local client suffices."""
    result = remove(cluster, manifest=None)
    assert result.returncode == 0, result.stderr
    assert vip(cluster) in ("cp-1", "cp-3")


def test_the_stand_in_strands_the_vip_as_kube_vip_1786_describes(cluster):
    """In-cluster kube-vip and no step-down: the removed server keeps the lease, the poll fails (bounded)."""
    script = scripts.drain_script(
        name="cp-2", role="server", api_url=SHAPE.api_url, timeout_minutes=10, root=cluster.at, delete_wait_seconds=1
    )
    result = cluster.run(script, STUB_API_URL=SHAPE.api_url, STUB_KUBEVIP_MODE="incluster", STUB_DS_LEAVES_LABELLED="0")
    assert result.returncode == 1
    assert "node cp-2 was still in the cluster 1 s after its deletion: The connection to the server" in result.stderr
    assert vip(cluster) == "cp-2"


def test_a_kube_vip_that_does_not_leave_stops_the_removal_before_anything_is_deleted(cluster):
    """A DaemonSet without the leaving rule (a manifest k3s has not applied yet): bounded wait, clear failure."""
    pod_rule_missing = MANIFEST.replace(f"key: {layout.LEAVING_LABEL}", "key: example.org/unrelated")
    script = scripts.drain_script(
        name="cp-2", role="server", api_url=SHAPE.api_url, timeout_minutes=10, kube_vip=True, root=cluster.at,
        vip_wait_seconds=1,
    )
    result = cluster.run(script, STUB_API_URL=SHAPE.api_url, **stand_in_modes(pod_rule_missing))
    assert result.returncode == 1
    assert "kube-vip still ran on cp-2 (or the API endpoint did not answer) 1 s after it was asked to leave" in result.stderr
    assert "Nothing was deleted" in result.stderr
    assert (cluster.root / "cluster" / "nodes" / "cp-2").exists() and vip(cluster) == "cp-2"


def test_removing_a_server_that_does_not_hold_the_vip_leaves_the_vip_alone(cluster):
    (cluster.root / "cluster" / "vip").write_text("cp-1")
    result = remove(cluster)
    assert result.returncode == 0, result.stderr
    assert vip(cluster) == "cp-1"


def test_agents_have_no_vip_to_give_up():
    script = scripts.drain_script(name="agent-1", role="agent", api_url=SHAPE.api_url, timeout_minutes=10, kube_vip=True)
    assert layout.LEAVING_LABEL not in script
