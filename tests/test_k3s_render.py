"""Pure renderers of the k3s files (components/k3s/files.py: node config, kube-vip, kubeconfig rewrite, nginx) and upgrade Plans (plans.py)."""

from __future__ import annotations

import kubernetes_validate
import pytest
import yaml

from components.k3s import files, layout, plans, scripts
from config import names

SHAPE = files.ClusterShape("10.20.0.10", "10.42.0.0/16", "10.43.0.0/16")
SERVER_IPS = ("10.20.0.11", "10.20.0.12", "10.20.0.13")
# Flags k3s refuses to join on when they differ between servers (k3s docs: "critical configuration values").
CRITICAL = ("cluster-cidr", "service-cidr", "disable", "disable-cloud-controller")


def config(role="server", seeds=False, name="cp-1", ip="10.20.0.11", uuid="4211ABCD-EF00-1111-2222-333344445555"):
    return yaml.safe_load(files.node_config(SHAPE, role=role, seeds_etcd=seeds, name=name, ip=ip, vm_uuid=uuid))


def test_the_seed_initialises_etcd_with_every_flag():
    c = config(seeds=True)
    assert c["cluster-init"] is True and "server" not in c
    assert c["token-file"] == layout.TOKEN_FILE and "token" not in c
    # Only the shared endpoint: k3s adds the node's own name and IPs to its certificates (k3s-io/k3s
    # pkg/cli/server/server.go, "add the localhost name/ip and node name/ip to the SAN list").
    assert c["tls-san"] == ["10.20.0.10"]
    assert c["node-ip"] == "10.20.0.11" and c["node-name"] == "cp-1"
    assert c["disable-cloud-controller"] is True
    assert c["kubelet-arg"] == ["cloud-provider=external", "provider-id=vsphere://4211abcd-ef00-1111-2222-333344445555"]
    assert c["node-taint"] == [names.SERVER_TAINT]
    assert c["disable"] == ["servicelb", "local-storage"]  # traefik stays for ingress
    assert (c["cluster-cidr"], c["service-cidr"]) == ("10.42.0.0/16", "10.43.0.0/16")


def test_other_servers_join_through_the_api_endpoint_with_identical_critical_flags():
    first, other = config(seeds=True), config(name="cp-2", ip="10.20.0.12")
    assert other["server"] == "https://10.20.0.10:6443" and "cluster-init" not in other
    assert {k: first[k] for k in CRITICAL} == {k: other[k] for k in CRITICAL}
    assert first["tls-san"] == other["tls-san"]


def test_agents_join_the_endpoint_with_the_cloud_provider_flags_and_no_server_flags():
    c = config(role="agent", name="agent-1", ip="10.20.0.21")
    assert c["server"] == "https://10.20.0.10:6443"
    assert c["kubelet-arg"][0] == "cloud-provider=external"
    assert c["kubelet-arg"][1].startswith("provider-id=vsphere://4211abcd")
    assert not set(c) & {"node-taint", "tls-san", "cluster-init", "disable", "cluster-cidr"}


def test_once_the_cluster_exists_the_seed_joins_like_every_other_server():
    """k3s ignores cluster-init and server on a server with etcd data on disk (k3s-io/docs
    docs/datastore/ha-embedded.md @ 0c96e6d: "If an etcd datastore is found on disk ... the datastore arguments
    (--cluster-init, --server, ...) are ignored"; k3s-io/k3s pkg/cluster/bootstrap.go @ 9977f0e,
    shouldBootstrapLoad: an initialized datastore skips bootstrapping and ignores a failure to reach the join
    URL, "as this will break cold cluster restart"). So the seed's switch to `server:` is safe, and a
    config that names no other node is what lets any server go or come without touching the rest."""
    seed_after = config(name="cp-1")
    other = config(name="cp-2", ip="10.20.0.12")
    assert seed_after["server"] == "https://10.20.0.10:6443" and "cluster-init" not in seed_after
    assert {k: v for k, v in seed_after.items() if k not in ("node-name", "node-ip")} == {
        k: v for k, v in other.items() if k not in ("node-name", "node-ip")
    }


def test_an_agent_cannot_seed():
    with pytest.raises(ValueError, match="only a server can seed etcd"):
        config(role="agent", seeds=True, name="agent-1")


def test_registries():
    assert files.registries_config({}) is None
    doc = yaml.safe_load(files.registries_config({"docker.io": ["https://m1.example", "https://m2.example"]}))
    assert doc == {"mirrors": {"docker.io": {"endpoint": ["https://m1.example", "https://m2.example"]}}}


def kube_vip(interface=None):
    docs = list(yaml.safe_load_all(files.kube_vip_manifest("10.20.0.10", version="v1.0.0", interface=interface)))
    for doc in docs:
        kubernetes_validate.validate(doc, "1.35", strict=True)
    ds = next(d for d in docs if d["kind"] == "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    return pod, {e["name"]: e["value"] for e in pod["containers"][0]["env"]}


def test_kube_vip_manifest_validates_and_holds_the_vip_on_servers():
    pod, env = kube_vip()
    assert env["address"] == "10.20.0.10" and env["cp_enable"] == "true" and env["vip_arp"] == "true"
    assert pod["containers"][0]["image"] == "ghcr.io/kube-vip/kube-vip:v1.0.0"
    assert pod["hostNetwork"] is True
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [
        {"key": "node-role.kubernetes.io/control-plane", "operator": "In", "values": ["true"]},
        {"key": layout.LEAVING_LABEL, "operator": "DoesNotExist"},  # a leaving server gives up the VIP first
    ]}]
    # Its own server's API server (kube-vip v1.0.0 pkg/manager/manager.go reads /etc/kubernetes/admin.conf).
    assert env["kubernetes_addr"] == "127.0.0.1:6443"
    assert pod["containers"][0]["volumeMounts"] == [
        {"name": "kubeconfig", "mountPath": "/etc/kubernetes/admin.conf", "readOnly": True}
    ]
    assert {"operator": "Exists"} in pod["tolerations"]  # runs despite the server taint


def test_kube_vip_finds_its_interface_unless_one_is_configured():
    """kube-vip v1.0.0 (kube-vip/kube-vip tag v1.0.0): `cmd/kube-vip.go` calls `vip.GetDefaultGatewayInterface()`
    (`pkg/vip/util.go`: the link of the default route) when `initConfig.Interface` is empty, and
    `pkg/kubevip/config_environment.go` sets it only from a non-empty `vip_interface`. The prefix length is read
    from `vip_subnet` (`pkg/kubevip/config_envvar.go`); v1.0.0 reads no `vip_cidr`."""
    _, env = kube_vip()
    assert "vip_interface" not in env
    assert env["vip_subnet"] == "32" and "vip_cidr" not in env
    _, env = kube_vip(interface="ens224")
    assert env["vip_interface"] == "ens224"


def test_kubeconfig_rewritten_to_the_endpoint_with_stack_names():
    raw = """apiVersion: v1
clusters:
- cluster: {certificate-authority-data: Q0E=, server: 'https://127.0.0.1:6443'}
  name: default
contexts:
- context: {cluster: default, user: default}
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user: {client-certificate-data: Q0VSVA==, client-key-data: S0VZ}
"""
    doc = yaml.safe_load(files.kubeconfig_for(raw, api_endpoint="10.20.0.10", stack="prod"))
    name = names.cluster_identifier("prod")
    assert doc["clusters"] == [
        {"name": name, "cluster": {"certificate-authority-data": "Q0E=", "server": "https://10.20.0.10:6443"}}
    ]
    assert doc["users"][0] == {"name": name, "user": {"client-certificate-data": "Q0VSVA==", "client-key-data": "S0VZ"}}
    assert doc["contexts"][0]["context"] == {"cluster": name, "user": name}
    assert doc["current-context"] == name
    assert "default" not in files.kubeconfig_for(raw, api_endpoint="10.20.0.10", stack="prod")


def test_kubeconfig_rewrite_refuses_something_else():
    with pytest.raises(ValueError, match="not a kubeconfig"):
        files.kubeconfig_for("sudo: a password is required\n", api_endpoint="10.20.0.10", stack="prod")


def test_nginx_stream_config_balances_every_server():
    text = files.nginx_stream_config(SERVER_IPS, stack="prod")
    assert text.count("server 10.20.0.1") == 3
    for ip in SERVER_IPS:
        assert f"server {ip}:6443 " in text
    assert "listen 6443;" in text and text.strip().startswith("#") and text.count("{") == text.count("}")


def test_upgrade_plans():
    server, agent = plans.upgrade_plans("v1.36.4+k3s1")
    for plan in (server, agent):
        assert plan["version"] == "v1.36.4+k3s1" and plan["concurrency"] == 1 and plan["cordon"] is True
        assert plan["upgrade"] == {"image": "rancher/k3s-upgrade"}
    assert server["nodeSelector"]["matchExpressions"][0]["operator"] == "In"
    assert agent["nodeSelector"]["matchExpressions"][0]["operator"] == "DoesNotExist"
    assert agent["prepare"]["args"] == ["prepare", plans.SERVER_PLAN]  # agents wait for the servers
    assert "prepare" not in server


def test_as_root_quotes_the_script():
    assert scripts.as_root("echo 'hi'") == "sudo -n bash -c 'echo '\"'\"'hi'\"'\"''"
