"""Pure renderers of the files a k3s cluster is made of: on every node config.yaml (on servers with the etcd
snapshot keys) and registries.yaml; on servers the S3 key drop-in and kube-vip's manifest (in k3s's
auto-deploy directory); for the operator the admin kubeconfig and an external load balancer's nginx config.

Nothing here imports Pulumi, so every function is tested directly. Where each file goes on a node is
layout.py's; scripts.py's `configure_script` writes them there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import yaml

from config.model import BackupConfig
from config.names import CONTROL_PLANE_LABEL, KUBE_SYSTEM, PROJECT, SERVER_TAINT, cluster_identifier

from .layout import (
    AGENT_TOKEN_FILE,
    API_PORT,
    KUBECONFIG_FILE,
    LEAVING_LABEL,
    S3_CA_FILE,
    TOKEN_FILE,
    Role,
    api_url,
)

# Where kube-vip v1.0.0 looks for a kubeconfig before falling back to the in-cluster client (pkg/manager/manager.go).
KUBE_VIP_KUBECONFIG = "/etc/kubernetes/admin.conf"
# servicelb: the API endpoint is kube-vip or an external LB; local-storage: volumes come from the vSphere CSI.
DISABLED_ADDONS = ("servicelb", "local-storage")


@dataclass(frozen=True)
class EtcdS3:
    """Where and when the servers send etcd snapshots (k3s `etcd-snapshot-*` and `etcd-s3-*` keys).

    `endpoint` is the storage's URL as configured (https://host[:port]); k3s wants host[:port] and a
    separate switch for plain http.
    """

    endpoint: str
    bucket: str
    folder: str
    region: str
    schedule: str
    retention: int
    ca_bundle: str | None = None
    insecure: bool = False

    @property
    def host(self) -> str:
        return self.endpoint.split("://", 1)[1].rstrip("/")

    @property
    def plain_http(self) -> bool:
        return self.endpoint.startswith("http://")


def etcd_s3(backup: BackupConfig | None) -> EtcdS3 | None:
    """The etcd snapshot target of a stack's `backup` section (its bucket, and the `etcd` part's folder and
    schedule), or None when etcd snapshots stay on the servers."""
    if backup is None or backup.etcd is None:
        return None
    return EtcdS3(
        endpoint=backup.s3.endpoint,
        bucket=backup.s3.bucket,
        folder=backup.etcd.folder,
        region=backup.s3.region,
        schedule=backup.etcd.schedule,
        retention=backup.etcd.retention,
        ca_bundle=backup.s3.ca_bundle,
        insecure=backup.s3.insecure,
    )


def etcd_config(etcd: EtcdS3) -> dict:
    """The server config.yaml keys for scheduled snapshots to S3 (k3s-io/docs docs/cli/etcd-snapshot.md)."""
    config: dict = {
        "etcd-snapshot-schedule-cron": etcd.schedule,
        "etcd-snapshot-retention": etcd.retention,
        "etcd-snapshot-compress": True,
        "etcd-s3": True,
        "etcd-s3-endpoint": etcd.host,
        "etcd-s3-bucket": etcd.bucket,
        "etcd-s3-folder": etcd.folder,
        "etcd-s3-region": etcd.region,
    }
    if etcd.ca_bundle:
        config["etcd-s3-endpoint-ca"] = S3_CA_FILE
    if etcd.plain_http:
        config["etcd-s3-insecure"] = True  # k3s: "Disables S3 over HTTPS"
    elif etcd.insecure:
        config["etcd-s3-skip-ssl-verify"] = True
    return config


def s3_credentials_config(access_key: str, secret_key: str) -> str:
    """The root-only drop-in with the S3 key pair; YAML-quoted by the dumper, whatever the keys contain."""
    if not access_key or not secret_key:
        raise ValueError("the backup access key and secret key must not be empty")
    return yaml.safe_dump(
        {"etcd-s3-access-key": access_key, "etcd-s3-secret-key": secret_key}, sort_keys=True, default_flow_style=False
    )



@dataclass(frozen=True)
class ClusterShape:
    """What every node's config depends on: the same values on every server, so critical flags agree.

    Nothing here names another node, so adding or removing a node changes no other node's config.
    """

    api_endpoint: str
    cluster_cidr: str
    service_cidr: str

    @property
    def api_url(self) -> str:
        return api_url(self.api_endpoint)



def node_config(
    shape: ClusterShape,
    *,
    role: Role,
    seeds_etcd: bool,
    name: str,
    ip: str,
    vm_uuid: str,
    secrets_encryption: bool = True,
    etcd: EtcdS3 | None = None,
) -> str:
    """/etc/rancher/k3s/config.yaml for one node. Tokens and S3 keys are only referenced (files), never inlined.

    Servers also get the agent token file (agents join with it, never with the server token), secrets
    encryption, supervisor metrics (etcd snapshot and certificate-expiry metrics for monitoring) and, with
    `etcd`, scheduled snapshots to S3; these must agree on every server, so they come from the cluster.

    `seeds_etcd`: this server starts a new etcd cluster (`cluster-init`); only ever true while the cluster does
    not exist yet. Every other server, the seed itself once the cluster exists, joins through the API endpoint:
    a server with etcd data on disk ignores both keys (k3s-io/docs docs/datastore/ha-embedded.md), so the
    seed's switch from one to the other changes nothing in etcd. The file does change: the first update after
    the cluster exists restarts k3s on the seed once, health-gated like any configuration change, and the plan
    lists it under what restarts (a control-plane restore needs `server:` there, issue 20).
    """
    config: dict = {
        "node-name": name,
        "node-ip": ip,
        "token-file": TOKEN_FILE,
        # k3s adds cloud-provider=external itself only while its own CCM runs; we disable that CCM for the
        # vSphere CPI, so every node says it explicitly, with the VM the CPI must find.
        "kubelet-arg": ["cloud-provider=external", f"provider-id=vsphere://{vm_uuid.lower()}"],
    }
    if role == "server":
        if seeds_etcd:
            config["cluster-init"] = True
        else:
            config["server"] = shape.api_url
        config.update(
            {
                # k3s adds the node's own name and IPs to its certificates itself (k3s pkg/cli/server/server.go,
                # "node name/ip to the SAN list"); only the shared endpoint needs naming.
                "tls-san": [shape.api_endpoint],
                "disable-cloud-controller": True,
                "disable": list(DISABLED_ADDONS),
                "cluster-cidr": shape.cluster_cidr,
                "service-cidr": shape.service_cidr,
                "node-taint": [SERVER_TAINT],
                "write-kubeconfig-mode": "0600",
                "agent-token-file": AGENT_TOKEN_FILE,
                "secrets-encryption": secrets_encryption,
                "supervisor-metrics": True,
            }
        )
        if etcd is not None:
            config.update(etcd_config(etcd))
    else:
        if seeds_etcd:
            raise ValueError(f"{name} is an agent; only a server can seed etcd")
        config["server"] = shape.api_url
    return yaml.safe_dump(config, sort_keys=True, default_flow_style=False)


def registries_config(mirrors: Mapping[str, Sequence[str]]) -> str | None:
    """/etc/rancher/k3s/registries.yaml, or None when no mirror is configured."""
    if not mirrors:
        return None
    return yaml.safe_dump(
        {"mirrors": {registry: {"endpoint": list(endpoints)} for registry, endpoints in sorted(mirrors.items())}},
        sort_keys=True,
        default_flow_style=False,
    )


def kube_vip_manifest(vip: str, *, version: str, interface: str | None) -> str:
    """kube-vip as a DaemonSet on the servers, auto-deployed by k3s from its manifests directory.

    Every server carries the file, so the VIP survives the loss of any one server; leader election keeps
    the address on exactly one of them. Without `interface`, kube-vip binds the VIP to the interface of the
    default route (kube-vip v1.0.0 `cmd/kube-vip.go`: an empty `vip_interface` -> `GetDefaultGatewayInterface`),
    so the NIC's name (ens160, ens192 or ens224 under ESXi) does not matter.

    kube-vip talks to its own server's API, never through the `kubernetes` Service (kube-vip#1786: with the
    in-cluster client a server whose API server is gone keeps renewing the lease through the others, and keeps
    the VIP). kube-vip v1.0.0 `pkg/manager/manager.go`: when `/etc/kubernetes/admin.conf` exists it builds its
    client from that file, with `kubernetes_addr` (`pkg/kubevip/config_envvar.go`) as the address; the k3s admin
    kubeconfig (k3s.yaml, which k3s writes on every server) is mounted there and the address is this server's
    own API server. Once that API server stops answering, the lease is not renewed: `onStoppedLeading`
    (`pkg/cluster/clusterLeaderElection.go`) deletes the VIP and another server takes it within the lease.
    A server that is leaving carries `LEAVING_LABEL`, which the DaemonSet does not run on: its pod gets SIGTERM,
    gives up the lease (`ReleaseOnCancel`) and deletes the VIP, before the server's etcd member goes.
    """
    labels = {"app.kubernetes.io/name": "kube-vip", "app.kubernetes.io/part-of": PROJECT}
    env = {
        "address": vip,
        "port": str(API_PORT),
        **({"vip_interface": interface} if interface else {}),
        "vip_arp": "true",
        # The VIP's prefix length: v1.0.0 reads `vip_subnet` (pkg/kubevip/config_envvar.go); `vip_cidr` is not read.
        "vip_subnet": "32",
        "cp_enable": "true",
        "cp_namespace": KUBE_SYSTEM,
        "svc_enable": "false",
        "vip_leaderelection": "true",
        "vip_leasename": "plndr-cp-lock",
        "vip_leaseduration": "5",
        "vip_renewdeadline": "3",
        "vip_retryperiod": "1",
        # This server's own API server (the admin kubeconfig below is k3s's, whose certificate names 127.0.0.1).
        "kubernetes_addr": f"127.0.0.1:{API_PORT}",
    }
    docs = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "kube-vip", "namespace": KUBE_SYSTEM}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "system:kube-vip-role"},
            "rules": [
                {"apiGroups": [""], "resources": ["services/status"], "verbs": ["update"]},
                {"apiGroups": [""], "resources": ["services", "endpoints"], "verbs": ["list", "get", "watch", "update"]},
                {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list", "get", "watch", "update", "patch"]},
                {
                    "apiGroups": ["coordination.k8s.io"],
                    "resources": ["leases"],
                    "verbs": ["list", "get", "watch", "update", "create"],
                },
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "get", "watch", "update"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "system:kube-vip-binding"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:kube-vip-role"},
            "subjects": [{"kind": "ServiceAccount", "name": "kube-vip", "namespace": KUBE_SYSTEM}],
        },
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "kube-vip", "namespace": KUBE_SYSTEM, "labels": labels},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": "kube-vip",
                        "hostNetwork": True,
                        "priorityClassName": "system-node-critical",
                        "affinity": {
                            "nodeAffinity": {
                                "requiredDuringSchedulingIgnoredDuringExecution": {
                                    "nodeSelectorTerms": [
                                        {
                                            "matchExpressions": [
                                                {"key": CONTROL_PLANE_LABEL, "operator": "In", "values": ["true"]},
                                                # A leaving server gives up the VIP first (drain_script).
                                                {"key": LEAVING_LABEL, "operator": "DoesNotExist"},
                                            ]
                                        }
                                    ]
                                }
                            }
                        },
                        # The servers carry our taint and, until the CPI runs, the uninitialized taint.
                        "tolerations": [{"operator": "Exists"}],
                        "containers": [
                            {
                                "name": "kube-vip",
                                "image": f"ghcr.io/kube-vip/kube-vip:{version}",
                                "imagePullPolicy": "IfNotPresent",
                                "args": ["manager"],
                                "env": [{"name": k, "value": v} for k, v in env.items()],
                                "securityContext": {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}},
                                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
                                "volumeMounts": [
                                    {"name": "kubeconfig", "mountPath": KUBE_VIP_KUBECONFIG, "readOnly": True}
                                ],
                            }
                        ],
                        "volumes": [
                            {"name": "kubeconfig", "hostPath": {"path": KUBECONFIG_FILE, "type": "File"}}
                        ],
                    },
                },
            },
        },
    ]
    return yaml.safe_dump_all(docs, sort_keys=True, default_flow_style=False)


def nginx_stream_config(server_ips: Sequence[str], *, stack: str) -> str:
    """An nginx `stream` block balancing TCP :6443 across the servers, for an external load balancer."""
    upstreams = "\n".join(f"        server {ip}:{API_PORT} max_fails=2 fail_timeout=10s;" for ip in server_ips)
    return (
        f"# k3s API load balancer for cht-hosting stack '{stack}': include at the top level of nginx.conf\n"
        "# (outside `http`); needs the stream module. TLS passes through to the servers.\n"
        "stream {\n"
        f"    upstream cht_hosting_{stack.replace('-', '_')}_k3s_api {{\n"
        f"{upstreams}\n"
        "    }\n"
        "    server {\n"
        f"        listen {API_PORT};\n"
        f"        proxy_pass cht_hosting_{stack.replace('-', '_')}_k3s_api;\n"
        "        proxy_connect_timeout 5s;\n"
        "        proxy_timeout 30m;\n"
        "    }\n"
        "}\n"
    )


def kubeconfig_for(raw: str, *, api_endpoint: str, stack: str) -> str:
    """k3s.yaml from a server, pointed at the API endpoint, with names unique per stack."""
    doc = yaml.safe_load(raw)
    name = cluster_identifier(stack)
    try:
        cluster = dict(doc["clusters"][0]["cluster"])
        user = dict(doc["users"][0]["user"])
    except (KeyError, IndexError, TypeError):
        raise ValueError(f"{KUBECONFIG_FILE} on the server is not a kubeconfig k3s wrote") from None
    cluster["server"] = api_url(api_endpoint)
    rewritten = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }
    return yaml.safe_dump(rewritten, sort_keys=False, default_flow_style=False)

