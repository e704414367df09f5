"""NodePool: one VM per configured node, cloned from the Ubuntu cloud-image template, ready for the CPI and CSI.

Per node (children named `<pool>-<node>-...`, so adding or removing one node touches no other):
- `tls.PrivateKey` `<pool>-<node>-host-key`: the node's boot SSH host key (ed25519), installed by cloud-init
  from guestinfo and trusted for one step only, since any vCenter account that reads the VM reads it too;
- `tls.PrivateKey` `<pool>-<node>-lasting-host-key` (ECDSA P-256) and two commands over SSH
  (`components/ssh/host_keys.py`): `<pool>-<node>-host-key-rotation` (pinned to the boot key) installs it
  from stdin, `<pool>-<node>-host-key-retirement` (pinned to it) retires the boot key. Every other
  connection to the node pins the lasting key and waits for the retirement;
- `vsphere.VirtualMachine` `<pool>-<node>`: disk.EnableUUID, hardware version >= 15 (validated in config),
  PVSCSI, one vmxnet3 NIC, cloud-init through guestinfo (secret: it carries the host private key);
- `vsphere.EntityPermissions` `<pool>-<node>-cns-vm`: the CNS-VM role (made by the program, or the existing
  one looked up by name) for the storage account, unless that account is the Pulumi account itself.
- `remote.Command` `<pool>-<node>-vm-back`: after the provider changed the VM (CPUs, memory, hardware
  version: with the VM off), waits, bounded, until k3s on it is healthy again; the pool's next VM depends on it,
  so VMs change one at a time (nodes in natural order: agent-2 before agent-10).
Per pool: a DRS anti-affinity rule `<pool>-anti-affinity` (`antiAffinity`, on by default for both pools: the
capacity plan survives losing `capacity.spareAgents` agents only if one ESXi host failure takes one agent).

Day 2: the clone block and the guestinfo are ignored after creation (cloud-init runs once; a rebuilt
template or a changed key list must not replace or reboot a node), control-plane VMs are protected, and
a replacement deletes the old VM first (fixed name and address).
"""

from __future__ import annotations

import re
from typing import Literal

import pulumi
import pulumi_tls as tls
import pulumi_vsphere as vsphere
from pulumi_command import remote

from config.model import NetworkConfig, NodePoolConfig

from ..k3s import scripts
from ..ssh import host_keys
from ..ssh.trust import SshTrust
from . import cloud_init
from .access import VsphereAccess
from .node import NodeHandle

# After creation, these never change a node:
# - clone: a rebuilt or renamed template (the TF provider's recommended pattern, terraform-provider-vsphere#1474);
# - extraConfig: cloud-init reads it on first boot only, and a change would reboot the VM for nothing;
# - eptRviMode, hvMode, syncTimeWithHost: perpetual diffs the provider reports (pulumi-vsphere#472).
IGNORED_VM_CHANGES = ["clone", "extraConfig", "eptRviMode", "hvMode", "syncTimeWithHost"]

# A fresh VM needs a few minutes before sshd answers (boot, cloud-init); the provider retries with backoff.
SSH_PER_DIAL_TIMEOUT = 15
SSH_DIAL_ERROR_LIMIT = 60
GUEST_NET_TIMEOUT_MINUTES = 10


def node_order(name: str) -> tuple:
    """agent-2 before agent-10: a node added at the end of a numbered pool joins the end of its chain."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


class NodePool(pulumi.ComponentResource):
    nodes: dict[str, NodeHandle]
    """Node name -> handle (name, IP, lower-case BIOS UUID, pinned SSH connection, VM)."""
    known_hosts: dict[str, pulumi.Output[str]]
    """Node name -> its known_hosts line (`<ip> <lasting public key>`), for operators' SSH clients."""
    vms: dict[str, vsphere.VirtualMachine]
    anti_affinity: vsphere.ComputeClusterVmAntiAffinityRule | None

    def __init__(
        self,
        name: str,
        pool: NodePoolConfig,
        *,
        role: Literal["server", "agent"],
        access: VsphereAccess,
        network: NetworkConfig,
        trust: SshTrust,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("cht-hosting:vsphere:NodePool", name, None, opts)
        self.nodes, self.vms, self.known_hosts = {}, {}, {}
        # One VM of the pool at a time: each waits until the one before is healthy again (`<node>-vm-back`), so a
        # change the provider makes with VMs powered off (CPUs, memory, hardware version) never takes two
        # servers (etcd quorum) or two agents (a 3-node county's CouchDB) down at once.
        previous: remote.Command | None = None
        for node, ip in sorted(pool.nodes.items(), key=lambda item: node_order(item[0])):
            self.nodes[node], previous = self._node(name, node, ip, pool, role, access, network, trust, previous)
            self.vms[node] = self.nodes[node].vm

        self.anti_affinity = None
        if pool.anti_affinity and len(self.vms) >= 2:  # a rule needs two VMs to keep apart
            self.anti_affinity = vsphere.ComputeClusterVmAntiAffinityRule(
                f"{name}-anti-affinity",
                name=f"{access.config.folder}-{name}",
                compute_cluster_id=access.cluster_id,
                virtual_machine_ids=[vm.id for _, vm in sorted(self.vms.items())],
                enabled=True,
                # Advisory: with fewer hosts than VMs (maintenance, a failed host) the VMs still power on.
                mandatory=False,
                opts=pulumi.ResourceOptions(parent=self, provider=access.provider),
            )

        self.register_outputs(
            {
                "nodes": {
                    node: {"ip": handle.ip, "uuid": handle.uuid, "role": handle.role}
                    for node, handle in self.nodes.items()
                },
                "knownHosts": self.known_hosts,
            }
        )

    def _node(
        self,
        pool_name: str,
        node: str,
        ip: str,
        pool: NodePoolConfig,
        role: Literal["server", "agent"],
        access: VsphereAccess,
        network: NetworkConfig,
        trust: SshTrust,
        previous: remote.Command | None,
    ) -> tuple[NodeHandle, remote.Command]:
        cfg = access.config
        prefix = f"{pool_name}-{node}"
        host_key = tls.PrivateKey(
            f"{prefix}-host-key", algorithm="ED25519", opts=pulumi.ResourceOptions(parent=self)
        )
        host_public = host_key.public_key_openssh.apply(str.strip)
        meta = cloud_init.metadata(node, ip, network)
        extra_config = pulumi.Output.secret(
            pulumi.Output.all(trust.authorized_keys, host_key.private_key_openssh, host_public).apply(
                lambda args: cloud_init.guestinfo(
                    meta,
                    cloud_init.userdata(
                        node,
                        trust.user,
                        args[0],
                        list(network.ntp),
                        cloud_init.HostKey(private_openssh=args[1], public_openssh=args[2]),
                    ),
                )
            )
        )
        template = access.template
        vm = vsphere.VirtualMachine(
            prefix,
            name=node,
            folder=cfg.folder,
            resource_pool_id=access.resource_pool_id,
            datastore_id=access.datastore_id,
            num_cpus=pool.cpus,
            memory=pool.memory_gb * 1024,
            guest_id=template.guest_id,
            firmware=template.firmware,
            hardware_version=cfg.hardware_version,
            scsi_type="pvscsi",
            enable_disk_uuid=True,
            network_interfaces=[
                vsphere.VirtualMachineNetworkInterfaceArgs(network_id=access.network_id, adapter_type="vmxnet3")
            ],
            disks=[
                vsphere.VirtualMachineDiskArgs(
                    label="disk0",
                    size=pool.disk_gb,
                    unit_number=0,
                    thin_provisioned=template.disks.apply(lambda disks: disks[0].thin_provisioned if disks else True),
                )
            ],
            clone=vsphere.VirtualMachineCloneArgs(template_uuid=template.id, linked_clone=False),
            extra_config=extra_config,
            wait_for_guest_net_timeout=GUEST_NET_TIMEOUT_MINUTES,
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=access.provider,
                ignore_changes=IGNORED_VM_CHANGES,
                protect=role == "server",
                delete_before_replace=True,
                depends_on=[previous] if previous is not None else None,
            ),
        )
        if access.cns_vm_role_id is not None:
            vsphere.EntityPermissions(
                f"{prefix}-cns-vm",
                entity_id=vm.moid,
                entity_type="VirtualMachine",
                permissions=[access.permission(access.cns_vm_role_id, propagate=False)],
                opts=pulumi.ResourceOptions(parent=self, provider=access.provider),
            )
        ssh = dict(
            host=ip,
            user=trust.user,
            private_key=trust.private_key,
            per_dial_timeout=SSH_PER_DIAL_TIMEOUT,
            dial_error_limit=SSH_DIAL_ERROR_LIMIT,
        )
        lasting_key = tls.PrivateKey(
            f"{prefix}-lasting-host-key",
            algorithm="ECDSA",
            ecdsa_curve="P256",
            opts=pulumi.ResourceOptions(parent=self),
        )
        lasting_public = lasting_key.public_key_openssh.apply(lambda key: " ".join(key.split()[:2]))
        # Both steps run again only on a new VM (its UUID); an edited script never re-runs the rotation on a
        # node that no longer serves the boot key its connection pins.
        on_this_vm = [vm.uuid]
        rotation = remote.Command(
            f"{prefix}-host-key-rotation",
            connection=remote.ConnectionArgs(**ssh, host_key=host_public),
            create=lasting_public.apply(host_keys.rotate_script),
            stdin=pulumi.Output.secret(lasting_key.private_key_openssh),  # never in guestinfo or a command line
            logging=remote.Logging.NONE,
            triggers=on_this_vm,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[vm], ignore_changes=["create", "connection", "stdin"]
            ),
        )
        lasting = remote.ConnectionArgs(**ssh, host_key=lasting_public)
        retirement = remote.Command(
            f"{prefix}-host-key-retirement",
            connection=lasting,
            create=host_keys.retire_script(),
            triggers=on_this_vm,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[rotation], ignore_changes=["create"]),
        )
        # The pinned key as an output of the retirement: whatever connects to the node waits for it.
        pinned = pulumi.Output.all(retirement.id, lasting_public).apply(lambda done: done[1])
        self.known_hosts[node] = lasting_public.apply(lambda key: f"{ip} {key}")
        connection = remote.ConnectionArgs(**ssh, host_key=pinned)
        # The script names the VM's shape: a changed shape updates this command, which waits for k3s to be back.
        back = scripts.as_root(
            scripts.vm_back_script(
                name=node, role=role, cpus=pool.cpus, memory_gb=pool.memory_gb, hardware_version=cfg.hardware_version
            )
        )
        vm_back = remote.Command(
            f"{prefix}-vm-back",
            connection=connection,
            create=back,
            update=back,
            triggers=on_this_vm,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[vm]),
        )
        handle = NodeHandle(
            name=node,
            ip=ip,
            role=role,
            uuid=vm.uuid.apply(str.lower),
            connection=connection,
            vm=vm,
        )
        return handle, vm_back
