"""K3sCluster: HA k3s (embedded etcd) on the node VMs, over the pinned SSH connections.

Creates, per node (children named `<name>-<node>-<step>`):
- `configure`: waits for cloud-init, writes config.yaml, the token file (from stdin), registries.yaml and,
  on servers in kube-vip mode, the kube-vip manifest; re-runs (in place) when that configuration changes.
- `install`: installs k3s once through the install script. Its script is created once and then ignored
  (`ignore_changes=["create"]`), so a `k3s.version` bump never re-runs it: upgrades are the Plans' job.
  Its `delete` uninstalls k3s before the VM goes.
- `removal` (every node but the first server): its `delete`, run on the first server, drains the node and
  deletes its Node object (which frees a server's etcd seat) before the node's k3s is uninstalled.
And once: the cluster token (pulumi-random, protected), the kubeconfig (read from the first server,
rewritten to the API endpoint), the Kubernetes provider, and `K3sUpgrades` (system-upgrade-controller Plans).

Order: first server -> other servers one after another -> agents in parallel once the first server is up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
from pulumi_command import remote

from config.model import K3sConfig
from config.names import cluster_identifier

from ..vsphere.node import NodeHandle
from . import render as k3s_render
from .upgrades import K3sUpgrades

# Commands that carry the token (or print the kubeconfig) never stream output to the engine log.
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


class K3sCluster(pulumi.ComponentResource):
    kubeconfig: pulumi.Output[str]
    """Admin kubeconfig pointing at the API endpoint; a secret."""
    provider: k8s.Provider
    """Kubernetes provider for everything in the cluster; waits for every node to be installed."""
    lb_nginx_config: str | None
    """nginx stream config for the external load balancer (apiEndpointMode load-balancer), else None."""
    api_url: str
    """https://<apiEndpoint>:6443"""

    def __init__(
        self,
        name: str,
        k3s: K3sConfig,
        *,
        servers: Sequence[NodeHandle] | Mapping[str, NodeHandle],
        agents: Sequence[NodeHandle] | Mapping[str, NodeHandle],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`servers` in config order: the first one initialises etcd and runs the drains."""
        super().__init__("cht-hosting:k3s:K3sCluster", name, None, opts)
        servers, agents = _as_list(servers), _as_list(agents)
        problems = check_nodes(servers, agents)
        if problems:
            raise pulumi.RunError("; ".join(problems))
        stack = pulumi.get_stack()
        shape = k3s_render.ClusterShape(
            api_endpoint=k3s.api_endpoint,
            server_ips=tuple(s.ip for s in servers),
            cluster_cidr=k3s.cluster_cidr,
            service_cidr=k3s.service_cidr,
        )
        self.api_url = shape.api_url
        kube_vip = (
            k3s_render.kube_vip_manifest(k3s.api_endpoint, version=k3s.kube_vip_version, interface=k3s.kube_vip_interface)
            if k3s.api_endpoint_mode == "kube-vip"
            else None
        )
        registries = k3s_render.registries_config(k3s.registry_mirrors)

        # The token joins nodes and encrypts etcd's bootstrap data: it must never change, so it is protected.
        token = random.RandomPassword(
            f"{name}-token",
            length=48,
            special=False,
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )

        def node_commands(node: NodeHandle, first: bool, after: list[pulumi.Resource]) -> remote.Command:
            config_yaml = node.uuid.apply(
                lambda uuid: k3s_render.node_config(
                    shape, role=node.role, first=first, name=node.name, ip=node.ip, vm_uuid=uuid
                )
            )
            script = config_yaml.apply(
                lambda text: k3s_render.as_root(
                    k3s_render.configure_script(
                        name=node.name,
                        role=node.role,
                        config_yaml=text,
                        registries_yaml=registries,
                        kube_vip_yaml=kube_vip,
                    )
                )
            )
            configure = remote.Command(
                f"{name}-{node.name}-configure",
                connection=node.connection,
                create=script,
                update=script,  # a configuration change updates the files in place; never a replacement
                stdin=pulumi.Output.secret(token.result),  # the only way the token reaches a node
                logging=remote.Logging.NONE,
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[node.vm, *after], additional_secret_outputs=_SECRET_OUTPUTS
                ),
            )
            install = remote.Command(
                f"{name}-{node.name}-install",
                connection=node.connection,
                create=k3s_render.as_root(
                    k3s_render.install_script(
                        name=node.name,
                        role=node.role,
                        version=k3s.version,
                        install_script_url=k3s.install_script_url,
                        join_url=None if first else shape.api_url,
                    )
                ),
                delete=k3s_render.as_root(k3s_render.uninstall_script(name=node.name, role=node.role)),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[configure],
                    # Installed once; later versions arrive through the upgrade Plans. A node added later
                    # installs the version configured at that time.
                    ignore_changes=["create"],
                ),
            )
            return install

        first_server, *other_servers = servers
        first_install = node_commands(first_server, True, [])
        installs = [first_install]
        # Servers join one at a time (etcd grows by one member at a time); agents all at once.
        for server in other_servers:
            installs.append(node_commands(server, False, [installs[-1]]))
        for agent in agents:
            installs.append(node_commands(agent, False, [first_install]))

        drain_minutes = k3s.drain_timeout_minutes
        for node, install in zip([*other_servers, *agents], installs[1:], strict=True):
            note = f"echo {node.name} is drained from {first_server.name} before it is removed"
            remote.Command(
                f"{name}-{node.name}-removal",
                connection=first_server.connection,
                create=note,
                update=note,  # a changed timeout updates the stored delete command, nothing runs
                delete=k3s_render.as_root(k3s_render.drain_script(name=node.name, timeout_minutes=drain_minutes)),
                # Deleted before `install` (which it depends on), so the drain runs before the uninstall.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[install, first_install]),
            )

        read = remote.Command(
            f"{name}-kubeconfig",
            connection=first_server.connection,
            create=k3s_render.read_kubeconfig_command(),
            logging=remote.Logging.NONE,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[first_install], additional_secret_outputs=_SECRET_OUTPUTS
            ),
        )
        self.kubeconfig = pulumi.Output.secret(
            read.stdout.apply(lambda raw: k3s_render.kubeconfig_for(raw, api_endpoint=k3s.api_endpoint, stack=stack))
        )
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            # A re-read kubeconfig (a renewed client certificate) must update the provider, never replace it:
            # a replaced provider replaces every object on it, the counties' volumes included.
            cluster_identifier=cluster_identifier(stack),
            opts=pulumi.ResourceOptions(parent=self, depends_on=installs),
        )
        self.lb_nginx_config = (
            k3s_render.nginx_stream_config(shape.server_ips, stack=stack)
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
        # Marks the component complete; the outputs show on the component in the CLI.
        self.register_outputs({"kubeconfig": self.kubeconfig, "apiUrl": self.api_url})
