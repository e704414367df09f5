"""K3sCluster: HA k3s (embedded etcd) on the node VMs, over the pinned SSH connections.

Creates:
- the cluster token (pulumi-random, protected: it joins servers and encrypts etcd's bootstrap data, so a
  restore from a snapshot needs it) and the agent token (protected: agents join with it and cannot join as
  servers);
- one `K3sNode` per node (`<name>-<node>`: its configure, install and removal together, see node.py);
- the admin kubeconfig (read from a server, rewritten to the API endpoint) and the Kubernetes provider;
- `K3sUpgrades` (system-upgrade-controller Plans).

The etcd seed is a bootstrap role, remembered: while the cluster does not exist (`etcd_seed=None`) the first
server by name starts etcd (`cluster-init`) and exports its name (`etcd_seed`); once it exists every server,
the seed included, joins through the API endpoint. So removing or replacing the seed, or adding a server that
sorts before it, changes no other server's config, and nothing is ever seeded twice.

Order on a new cluster: the seed -> the other servers one after another (etcd grows one member at a time) ->
agents once the seed is up (configured one after another, installed in parallel). On later updates only new or
replaced nodes run anything, and a configuration change restarts k3s node by node: the servers in join order,
each healthy before the next, and the agents likewise (scripts.configure_script, at most 600 s per node).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
from pulumi_command import remote

from config.model import BackupConfig, K3sConfig
from config.names import cluster_identifier

from ..vsphere.node import NodeHandle
from . import files, scripts
from . import restore as k3s_restore
from .node import K3sNode, NodeSettings
from .upgrades import K3sUpgrades

# Every server joins through the API once the cluster exists (the seed is remembered), so the seed may be
# removed and a server that sorts before it may be added (config/guards.py reads this).
ETCD_SEED_CAN_MOVE = True

# The kubeconfig read carries admin credentials in its output: never streamed to the engine log.
_SECRET_OUTPUTS = ["stdout", "stderr"]


def _as_list(nodes: Sequence[NodeHandle] | Mapping[str, NodeHandle]) -> list[NodeHandle]:
    return list(nodes.values()) if isinstance(nodes, Mapping) else list(nodes)


def check_nodes(servers: Sequence[NodeHandle], agents: Sequence[NodeHandle]) -> list[str]:
    """Problems with the node lists (config validation refuses these first; this guards the component)."""
    problems = []
    if len(servers) % 2 == 0:
        problems.append(f"K3sCluster needs an odd number of servers for etcd quorum, got {len(servers)}")
    problems += [f"node {n.name} is given as a server but has role {n.role}" for n in servers if n.role != "server"]
    problems += [f"node {n.name} is given as an agent but has role {n.role}" for n in agents if n.role != "agent"]
    names = [n.name for n in [*servers, *agents]]
    problems += [f"node name {dup} appears twice" for dup in sorted({x for x in names if names.count(x) > 1})]
    return problems


def bootstrap_order(server_names: Sequence[str], etcd_seed: str | None) -> tuple[str, list[str]]:
    """The seed (remembered, or the first server by name on a new cluster) and the servers in join order."""
    seed = etcd_seed if etcd_seed is not None else min(server_names)
    rest = sorted(n for n in server_names if n != seed)
    return seed, ([seed, *rest] if seed in server_names else rest)


class K3sCluster(pulumi.ComponentResource):
    kubeconfig: pulumi.Output[str]
    """Admin kubeconfig pointing at the API endpoint; a secret."""
    provider: k8s.Provider
    """Kubernetes provider for everything in the cluster; waits for every node to be installed."""
    etcd_seed: str
    """The server that started etcd: remembered (exported as `etcdSeed`) and passed back on later updates."""
    nodes: dict[str, K3sNode]
    """Each node's lifecycle, by node name."""
    escrow: pulumi.Output[dict]
    """What a restore needs and only this stack holds: the server token (it decrypts a snapshot's bootstrap data)
    and the agent token; a secret (the stack output `escrow`, docs/runbooks/escrow.md)."""
    config_digests: dict[str, str]
    """Each node's configuration digest, by node name: a changed one restarts k3s on that node."""
    lb_nginx_config: str | None
    """nginx stream config for the external load balancer (apiEndpointMode load-balancer), else None."""
    api_url: str
    """https://<apiEndpoint>:6443"""
    etcd_s3: files.EtcdS3 | None
    """Where the servers send scheduled etcd snapshots (the backup bucket), or None (the servers' disks only)."""
    restore_scripts: dict[str, str]
    """The control-plane restore scripts by file name (docs/runbooks/restore-control-plane.md)."""

    def __init__(
        self,
        name: str,
        k3s: K3sConfig,
        *,
        servers: Sequence[NodeHandle] | Mapping[str, NodeHandle],
        agents: Sequence[NodeHandle] | Mapping[str, NodeHandle],
        etcd_seed: str | None = None,
        installed_before_vm_tracking: frozenset[str] = frozenset(),
        backup: BackupConfig | None = None,
        s3_keys: tuple[pulumi.Input[str], pulumi.Input[str]] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`etcd_seed`: the server that seeded etcd, as the last update exported it; None while the cluster
        does not exist yet (then the first server by name seeds it). `installed_before_vm_tracking`: nodes
        whose deployed install has no VM trigger yet (it is kept out of their diff, see K3sNode). `backup` (with
        its `etcd` part) and `s3_keys` (access key, secret key; Pulumi secrets): scheduled etcd snapshots to the
        backup bucket."""
        super().__init__("cht-hosting:k3s:K3sCluster", name, None, opts)
        servers, agents = _as_list(servers), _as_list(agents)
        problems = check_nodes(servers, agents)
        if problems:
            raise pulumi.RunError("; ".join(problems))
        self.etcd_s3 = etcd_s3 = files.etcd_s3(backup)
        if etcd_s3 is None:
            s3_keys = None
        self.restore_scripts = k3s_restore.scripts(
            servers={s.name: s.ip for s in servers},
            agents=[a.name for a in agents],
            api_endpoint=k3s.api_endpoint,
            version=k3s.version,
            install_script_url=k3s.install_script_url,
        )
        stack = pulumi.get_stack()
        by_name = {n.name: n for n in servers}
        self.etcd_seed, join_order = bootstrap_order(list(by_name), etcd_seed)
        cluster_exists = etcd_seed is not None
        shape = files.ClusterShape(
            api_endpoint=k3s.api_endpoint, cluster_cidr=k3s.cluster_cidr, service_cidr=k3s.service_cidr
        )
        self.api_url = shape.api_url
        settings = NodeSettings(
            shape=shape,
            version=k3s.version,
            install_script_url=k3s.install_script_url,
            registries_yaml=files.registries_config(k3s.registry_mirrors),
            kube_vip_yaml=(
                files.kube_vip_manifest(
                    k3s.api_endpoint, version=k3s.kube_vip_version, interface=k3s.kube_vip_interface
                )
                if k3s.api_endpoint_mode == "kube-vip"
                else None
            ),
            drain_timeout_minutes=k3s.drain_timeout_minutes,
            secrets_encryption=k3s.secrets_encryption,
            etcd=etcd_s3,
        )
        token = random.RandomPassword(
            f"{name}-token",
            length=48,
            special=False,
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        # Agents join with this one (k3s `agent-token`): an agent's disk never holds a token that admits a server.
        agent_token = random.RandomPassword(
            f"{name}-agent-token",
            length=48,
            special=False,
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        self.escrow = pulumi.Output.secret({"token": token.result, "agentToken": agent_token.result})
        child = pulumi.ResourceOptions(parent=self)

        def node(handle: NodeHandle, after: list[pulumi.Resource], kubeconfig=None) -> K3sNode:
            return K3sNode(
                f"{name}-{handle.name}",
                handle,
                settings,
                seeds_etcd=handle.name == self.etcd_seed and not cluster_exists,
                token=token.result,
                agent_token=agent_token.result,
                kubeconfig=kubeconfig,
                s3_keys=s3_keys,
                after=after,
                follows_vm=handle.name not in installed_before_vm_tracking,
                opts=child,
            )

        # Servers join one after another (etcd adds one learner at a time); the seed, when present, first. The
        # first one has no kubeconfig to be given yet: it is where the kubeconfig is read from.
        self.nodes = {}
        first, *joining = join_order
        self.nodes[first] = node(by_name[first], [])
        read = remote.Command(
            f"{name}-kubeconfig",
            connection=by_name[first].connection,
            create=scripts.read_kubeconfig_command(),
            logging=remote.Logging.NONE,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.nodes[first].install], additional_secret_outputs=_SECRET_OUTPUTS
            ),
        )
        self.kubeconfig = pulumi.Output.secret(
            read.stdout.apply(lambda raw: files.kubeconfig_for(raw, api_endpoint=k3s.api_endpoint, stack=stack))
        )
        previous = self.nodes[first].install
        for server_name in joining:
            self.nodes[server_name] = node(by_name[server_name], [previous], kubeconfig=self.kubeconfig)
            previous = self.nodes[server_name].install
        # Agents join once the first server is up, and are configured one after another: a configuration change
        # restarts them one at a time, each healthy again before the next (scripts.configure_script). They are
        # not drained for it: k3s-agent's unit stops only k3s itself (install.sh KillMode=process), so the pods
        # keep running through the restart, while a drain would move every CouchDB volume off the node and back.
        previous_agent: K3sNode | None = None
        for agent in agents:
            after = [self.nodes[first].install, *([previous_agent.configure] if previous_agent else [])]
            previous_agent = self.nodes[agent.name] = node(agent, after, kubeconfig=self.kubeconfig)

        self.config_digests = {name: n.config_digest for name, n in self.nodes.items()}
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            # A re-read kubeconfig (a renewed client certificate) must update the provider, never replace it:
            # a replaced provider replaces every object on it, the counties' volumes included.
            cluster_identifier=cluster_identifier(stack),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[n.install for n in self.nodes.values()]),
        )
        self.lb_nginx_config = (
            files.nginx_stream_config([s.ip for s in servers], stack=stack)
            if k3s.api_endpoint_mode == "load-balancer"
            else None
        )
        self.upgrades = K3sUpgrades(
            f"{name}-upgrades",
            version=k3s.version,
            controller_version=k3s.system_upgrade_controller_version,
            controller_url=k3s.system_upgrade_controller_url,
            opts=pulumi.ResourceOptions(parent=self, providers=[self.provider]),
        )
        self.summary = {
            "secretsEncryption": k3s.secrets_encryption,
            "agentToken": True,  # agents join with their own token, never the server token
            "supervisorMetrics": True,  # etcd snapshot and certificate-expiry metrics for monitoring
            "etcdSnapshots": f"s3://{etcd_s3.bucket}/{etcd_s3.folder}" if etcd_s3 else "on the servers' disks only",
        }
        """The `controlPlane` output: what the plan says of the control plane."""
        # Marks the component complete; the outputs show on the component in the CLI.
        self.register_outputs({"kubeconfig": self.kubeconfig, "apiUrl": self.api_url, "etcdSeed": self.etcd_seed})
