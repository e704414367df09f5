"""K3sNode: one node's k3s lifecycle, from its configuration to its removal.

Creates, on the node's own SSH connection (children named `<name>-<step>`, `<name>` = `<cluster>-<node>`):
- `configure`: waits for cloud-init, writes config.yaml, the token file (from stdin; an agent's holds the
  agent token), registries.yaml and, on servers, the agent token, the etcd S3 key drop-in and CA (from
  stdin) and the kube-vip manifest; re-runs in place when that configuration changes (restarting k3s).
- `install`: installs k3s once. A `k3s.version` bump never re-runs it (`ignore_changes=["create"]`):
  upgrades are the Plans' job. It is replaced, never updated, when the node's VM changes (the VM's UUID is
  its trigger): its `delete` uninstalls k3s from the old VM, and the new VM gets k3s again under the same
  node name. A joining node is handed the admin kubeconfig: on a VM that never ran k3s, a Node of its name
  is a lost predecessor's, deleted before k3s starts.
- `removal`: nothing on create; its `delete` drains the node and deletes its Node object (freeing a
  server's etcd seat and the node-password secret) before `install`'s delete uninstalls k3s. Replaced with
  the VM too, so a replaced node is drained and deleted before its new VM joins.

Both replacements delete before they create: the old VM answers at the same address as the new one, so an
uninstall that ran after the new install would remove k3s from the new VM.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
from pulumi_command import remote

from ..vsphere.node import NodeHandle
from . import files, scripts

# Commands that carry a secret on stdin never stream output to the engine log.
_SECRET_OUTPUTS = ["stdout", "stderr"]


@dataclass(frozen=True)
class NodeSettings:
    """What every node is given alike, decided once by K3sCluster."""

    shape: files.ClusterShape
    version: str
    install_script_url: str
    registries_yaml: str | None
    kube_vip_yaml: str | None
    """The kube-vip manifest servers carry, or None (load-balancer mode)."""
    drain_timeout_minutes: int
    secrets_encryption: bool = True
    """`secrets-encryption` on every server (it must match on all of them)."""
    etcd: files.EtcdS3 | None = None
    """Scheduled etcd snapshots to S3 on every server, or None (k3s's local defaults)."""


class K3sNode(pulumi.ComponentResource):
    install: remote.Command
    """Done once k3s runs on the node; what later steps wait for."""
    configure: remote.Command
    """Done once the node's configuration is written and, after a change, k3s restarted and the node healthy."""
    config_digest: str
    """Identifies the configuration `configure` writes (scripts.configuration_digest); remembered in deployedState."""

    def __init__(
        self,
        name: str,
        node: NodeHandle,
        settings: NodeSettings,
        *,
        seeds_etcd: bool,
        token: pulumi.Output[str],
        agent_token: pulumi.Output[str],
        kubeconfig: pulumi.Output[str] | None,
        s3_keys: tuple[pulumi.Input[str], pulumi.Input[str]] | None = None,
        after: Sequence[pulumi.Resource] = (),
        follows_vm: bool = True,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`seeds_etcd`: this server starts the cluster (only before it exists). `token` joins servers,
        `agent_token` agents (an agent is only ever given the agent token). `kubeconfig`: the admin
        kubeconfig a joining node checks for its predecessor's Node with, and an agent drains itself with
        (servers drain with their own); every node but the first server has it. `s3_keys`: the etcd snapshot
        bucket's access and secret key (servers, with `settings.etcd`). `after`: what must be up first.
        `follows_vm=False`: k3s was installed before installs followed their VM; the trigger is kept out of the
        diff, since adding it to a deployed install would replace it (uninstall k3s) on the next update."""
        super().__init__("cht-hosting:k3s:K3sNode", name, None, opts)
        if node.role == "agent" and kubeconfig is None:
            raise ValueError(f"{node.name}: an agent needs the cluster's kubeconfig to drain itself")
        if seeds_etcd and kubeconfig is not None:
            raise ValueError(f"{node.name}: the seed starts the cluster; there is no kubeconfig before it")
        parent = opts.parent if opts else None
        # Before nodes had a component of their own their commands were the cluster's children: the alias keeps
        # their URNs, so a deployed cluster sees no delete (no uninstall) and no create.
        moved = [pulumi.Alias(parent=parent)] if parent else []
        # The VM's identity: a replaced VM (a new UUID) replaces the install and the removal.
        vm_identity = [node.uuid]
        untracked = [] if follows_vm else ["triggers"]
        shape = settings.shape

        def node_config(uuid: str) -> str:
            return files.node_config(
                shape,
                role=node.role,
                seeds_etcd=seeds_etcd,
                name=node.name,
                ip=node.ip,
                vm_uuid=uuid,
                secrets_encryption=settings.secrets_encryption,
                etcd=settings.etcd,
            )

        def configure_script(config: str) -> str:
            return scripts.configure_script(
                name=node.name,
                role=node.role,
                config_yaml=config,
                registries_yaml=settings.registries_yaml,
                kube_vip_yaml=settings.kube_vip_yaml if node.role == "server" else None,
                s3_ca_bundle=settings.etcd.ca_bundle if settings.etcd and node.role == "server" else None,
            )

        self.config_digest = scripts.configuration_digest(configure_script(node_config(scripts.DIGEST_VM_UUID)))
        script = node.uuid.apply(lambda uuid: scripts.as_root(configure_script(node_config(uuid))))
        if settings.etcd is not None and node.role == "server" and s3_keys is None:
            raise ValueError(f"{node.name}: etcd snapshots to S3 need the bucket's keys")
        keys = s3_keys if settings.etcd is not None and node.role == "server" else (None, None)
        # Everything secret reaches the node on stdin only (scripts.configure_stdin says what, in which order).
        stdin = pulumi.Output.secret(
            pulumi.Output.all(token, agent_token, *keys).apply(
                lambda v: scripts.configure_stdin(
                    node.role,
                    token=v[0],
                    agent_token=v[1],
                    s3_credentials_yaml=files.s3_credentials_config(v[2], v[3]) if v[2] is not None else None,
                )
            )
        )
        self.configure = configure = remote.Command(
            f"{name}-configure",
            connection=node.connection,
            create=script,
            update=script,  # a configuration change updates the files in place; never a replacement
            stdin=stdin,  # the only way the tokens and the S3 keys reach a node
            logging=remote.Logging.NONE,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[node.vm, *after],
                additional_secret_outputs=_SECRET_OUTPUTS,
                aliases=moved,
            ),
        )
        # With the kubeconfig, a node that replaces a lost VM deletes its predecessor's Node before k3s starts.
        with_kubeconfig = (
            {"stdin": pulumi.Output.secret(kubeconfig), "logging": remote.Logging.NONE} if kubeconfig is not None else {}
        )
        self.install = remote.Command(
            f"{name}-install",
            connection=node.connection,
            create=scripts.as_root(
                scripts.install_script(
                    name=node.name,
                    role=node.role,
                    version=settings.version,
                    install_script_url=settings.install_script_url,
                    join_url=None if seeds_etcd else shape.api_url,
                    kubeconfig_on_stdin=kubeconfig is not None,
                )
            ),
            # A renewed kubeconfig (stdin) updates the stored inputs; nothing re-runs on the node.
            update=f"echo k3s stays as installed on {node.name}",
            delete=scripts.as_root(scripts.uninstall_script(name=node.name, role=node.role)),
            triggers=vm_identity,
            **with_kubeconfig,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[configure],
                additional_secret_outputs=_SECRET_OUTPUTS if kubeconfig is not None else None,
                # Installed once; later versions arrive through the upgrade Plans. A node added (or replaced)
                # later installs the version configured at that time.
                ignore_changes=["create", *untracked],
                delete_before_replace=True,
                aliases=moved,
            ),
        )
        note = f"echo {node.name} is drained before k3s leaves it"
        drain = scripts.as_root(
            scripts.drain_script(
                name=node.name,
                role=node.role,
                api_url=shape.api_url,
                timeout_minutes=settings.drain_timeout_minutes,
                kube_vip=settings.kube_vip_yaml is not None,
            )
        )
        self.removal = remote.Command(
            f"{name}-removal",
            connection=node.connection,
            create=note,
            update=note,  # a changed timeout (or a renewed kubeconfig) updates the stored delete; nothing runs
            delete=drain,
            triggers=vm_identity,
            **(with_kubeconfig if node.role == "agent" else {}),
            # Depends on `install`, so the engine deletes it first: drain, then uninstall, then the VM goes.
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[self.install],
                ignore_changes=untracked,
                delete_before_replace=True,
                additional_secret_outputs=_SECRET_OUTPUTS if node.role == "agent" else None,
                aliases=moved,
            ),
        )
        # Marks the component complete (the engine records it as created once its children are).
        self.register_outputs({})
