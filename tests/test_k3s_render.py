"""Pure renderers of k3s_render: node config files, kube-vip, kubeconfig rewrite, nginx, upgrade Plans."""

from __future__ import annotations

import kubernetes_validate
import pytest
import yaml

from components.k3s import render as r
from config import names

SHAPE = r.ClusterShape("10.20.0.10", ("10.20.0.11", "10.20.0.12", "10.20.0.13"), "10.42.0.0/16", "10.43.0.0/16")
# Flags k3s refuses to join on when they differ between servers (k3s docs: "critical configuration values").
CRITICAL = ("cluster-cidr", "service-cidr", "disable", "disable-cloud-controller")


def config(role="server", first=False, name="cp-1", ip="10.20.0.11", uuid="4211ABCD-EF00-1111-2222-333344445555"):
    return yaml.safe_load(r.node_config(SHAPE, role=role, first=first, name=name, ip=ip, vm_uuid=uuid))


def test_first_server_initialises_etcd_with_every_flag():
    c = config(first=True)
    assert c["cluster-init"] is True and "server" not in c
    assert c["token-file"] == r.TOKEN_FILE and "token" not in c
    assert c["tls-san"] == ["10.20.0.10", "10.20.0.11", "10.20.0.12", "10.20.0.13"]
    assert c["node-ip"] == "10.20.0.11" and c["node-name"] == "cp-1"
    assert c["disable-cloud-controller"] is True
    assert c["kubelet-arg"] == ["cloud-provider=external", "provider-id=vsphere://4211abcd-ef00-1111-2222-333344445555"]
    assert c["node-taint"] == [names.SERVER_TAINT]
    assert c["disable"] == ["servicelb", "local-storage"]  # traefik stays for ingress
    assert (c["cluster-cidr"], c["service-cidr"]) == ("10.42.0.0/16", "10.43.0.0/16")


def test_other_servers_join_through_the_api_endpoint_with_identical_critical_flags():
    first, other = config(first=True), config(name="cp-2", ip="10.20.0.12")
    assert other["server"] == "https://10.20.0.10:6443" and "cluster-init" not in other
    assert {k: first[k] for k in CRITICAL} == {k: other[k] for k in CRITICAL}
    assert first["tls-san"] == other["tls-san"]


def test_agents_join_the_endpoint_with_the_cloud_provider_flags_and_no_server_flags():
    c = config(role="agent", name="agent-1", ip="10.20.0.21")
    assert c["server"] == "https://10.20.0.10:6443"
    assert c["kubelet-arg"][0] == "cloud-provider=external"
    assert c["kubelet-arg"][1].startswith("provider-id=vsphere://4211abcd")
    assert not set(c) & {"node-taint", "tls-san", "cluster-init", "disable", "cluster-cidr"}


def test_agent_config_does_not_depend_on_the_server_list():
    """Adding a server must not rewrite (and restart) every agent."""
    bigger = r.ClusterShape(SHAPE.api_endpoint, (*SHAPE.server_ips, "10.20.0.14", "10.20.0.15"), "10.42.0.0/16", "10.43.0.0/16")
    args = dict(role="agent", first=False, name="agent-1", ip="10.20.0.21", vm_uuid="x")
    assert r.node_config(SHAPE, **args) == r.node_config(bigger, **args)


def test_registries():
    assert r.registries_config({}) is None
    doc = yaml.safe_load(r.registries_config({"docker.io": ["https://m1.example", "https://m2.example"]}))
    assert doc == {"mirrors": {"docker.io": {"endpoint": ["https://m1.example", "https://m2.example"]}}}


def test_kube_vip_manifest_validates_and_holds_the_vip_on_servers():
    docs = list(yaml.safe_load_all(r.kube_vip_manifest("10.20.0.10", version="v1.0.0", interface="ens192")))
    for doc in docs:
        kubernetes_validate.validate(doc, "1.36", strict=True)
    ds = next(d for d in docs if d["kind"] == "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env["address"] == "10.20.0.10" and env["vip_interface"] == "ens192" and env["cp_enable"] == "true"
    assert pod["containers"][0]["image"] == "ghcr.io/kube-vip/kube-vip:v1.0.0"
    assert pod["hostNetwork"] is True
    assert pod["nodeSelector"] == {"node-role.kubernetes.io/control-plane": "true"}
    assert {"operator": "Exists"} in pod["tolerations"]  # runs despite the server taint


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
    doc = yaml.safe_load(r.kubeconfig_for(raw, api_endpoint="10.20.0.10", stack="prod"))
    name = names.cluster_identifier("prod")
    assert doc["clusters"] == [
        {"name": name, "cluster": {"certificate-authority-data": "Q0E=", "server": "https://10.20.0.10:6443"}}
    ]
    assert doc["users"][0] == {"name": name, "user": {"client-certificate-data": "Q0VSVA==", "client-key-data": "S0VZ"}}
    assert doc["contexts"][0]["context"] == {"cluster": name, "user": name}
    assert doc["current-context"] == name
    assert "default" not in r.kubeconfig_for(raw, api_endpoint="10.20.0.10", stack="prod")


def test_kubeconfig_rewrite_refuses_something_else():
    with pytest.raises(ValueError, match="not a kubeconfig"):
        r.kubeconfig_for("sudo: a password is required\n", api_endpoint="10.20.0.10", stack="prod")


def test_nginx_stream_config_balances_every_server():
    text = r.nginx_stream_config(SHAPE.server_ips, stack="prod")
    assert text.count("server 10.20.0.1") == 3
    for ip in SHAPE.server_ips:
        assert f"server {ip}:6443 " in text
    assert "listen 6443;" in text and text.strip().startswith("#") and text.count("{") == text.count("}")


def test_upgrade_plans():
    server, agent = r.upgrade_plans("v1.36.4+k3s1")
    for plan in (server, agent):
        assert plan["version"] == "v1.36.4+k3s1" and plan["concurrency"] == 1 and plan["cordon"] is True
        assert plan["upgrade"] == {"image": "rancher/k3s-upgrade"}
    assert server["nodeSelector"]["matchExpressions"][0]["operator"] == "In"
    assert agent["nodeSelector"]["matchExpressions"][0]["operator"] == "DoesNotExist"
    assert agent["prepare"]["args"] == ["prepare", r.SERVER_PLAN]  # agents wait for the servers
    assert "prepare" not in server


def test_as_root_quotes_the_script():
    assert r.as_root("echo 'hi'") == "sudo -n bash -c 'echo '\"'\"'hi'\"'\"''"
