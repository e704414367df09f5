"""A k3s node as this program's files and scripts see it: where k3s and this program keep each file, k3s's
binary and services, the API port, and the label a leaving server carries.

Stated once here for the node's files (files.py), the scripts that write and run them (scripts.py) and the
control-plane restore scripts (restore.py). Standard library only; nothing here imports Pulumi.
"""

from __future__ import annotations

from typing import Literal

from config.names import PROJECT

CONFIG_DIR = "/etc/rancher/k3s"
CONFIG_FILE = f"{CONFIG_DIR}/config.yaml"
TOKEN_FILE = f"{CONFIG_DIR}/cluster-token"
# Servers only: the token agents join with (agents keep it in TOKEN_FILE), so an agent cannot join as a server.
AGENT_TOKEN_FILE = f"{CONFIG_DIR}/agent-token"
# k3s reads config.yaml.d/*.yaml after config.yaml (docs.k3s.io installation/configuration.md); the S3 keys
# live in a root-only drop-in of their own, written from stdin, so they are never in an argv, a log or the
# plan's scripts. `k3s server --cluster-reset` reads it too, so a restore from S3 names only the snapshot.
S3_CREDENTIALS_FILE = f"{CONFIG_DIR}/config.yaml.d/cht-etcd-s3-credentials.yaml"
S3_CA_FILE = f"{CONFIG_DIR}/etcd-s3-ca.pem"
REGISTRIES_FILE = f"{CONFIG_DIR}/registries.yaml"
KUBECONFIG_FILE = f"{CONFIG_DIR}/k3s.yaml"
# Present on a server from the moment a control-plane restore touches it until it serves the restored cluster
# (components/k3s/restore.py writes and removes it): while it is there, configure, install, drain and uninstall
# refuse to run, so a `pulumi up` during a restore cannot restart, rejoin or remove k3s behind the operator.
RESTORE_MARK = f"{CONFIG_DIR}/restore-in-progress"
# k3s's data directory (its default --data-dir).
DATA_DIR = "/var/lib/rancher/k3s"
# The kubelet's own credentials on every node (k3s writes it; the node authorizer lets it read its own Node).
AGENT_KUBECONFIG_FILE = f"{DATA_DIR}/agent/kubelet.kubeconfig"
# k3s applies every manifest in server/manifests (its auto-deploy directory).
KUBE_VIP_FILE = f"{DATA_DIR}/server/manifests/cht-kube-vip.yaml"
# A server on its way out: kube-vip's DaemonSet leaves it (its pod gives up the VIP) before its Node is deleted.
LEAVING_LABEL = f"{PROJECT}/leaving"
# Where the k3s install script puts k3s and its uninstall and killall scripts (INSTALL_K3S_BIN_DIR's default).
BIN_DIR = "/usr/local/bin"
K3S_BIN = f"{BIN_DIR}/k3s"
API_PORT = 6443

Role = Literal["server", "agent"]


def service_name(role: Role) -> str:
    return "k3s" if role == "server" else "k3s-agent"


def api_url(endpoint: str) -> str:
    """The k3s API at `endpoint` (the VIP, the load balancer or a server's own address)."""
    return f"https://{endpoint}:{API_PORT}"
