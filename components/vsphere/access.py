"""VsphereAccess: how the program reaches vCenter, what it looks up there, and the CNS roles.

Creates:
- a check of vCenter's certificate against `vsphere.thumbprint` / `vsphere.caCertificate` on the machine
  running `pulumi` (`tls_check.py` through `command.local.run`, every preview and update), unless
  `vsphere.insecure`;
- an explicit `vsphere.Provider` (server and user from `vsphere`, password from the `vspherePassword` secret),
  configured only with the check's result, so it never logs in to a vCenter whose certificate failed it;
- lookups: datacenter, compute cluster, resource pool, datastore, network, template, and (for the roles)
  the root folder and the built-in Read-only role;
- when `vsphere.manageCnsRoles`: the CNS-VM, CNS-DATASTORE and CNS-SEARCH-AND-SPBM roles, and grants to
  the storage account (`vsphere.storageUser`, default `vsphere.user`) on the vCenter root, the datastore,
  the datacenter and the cluster;
- otherwise (the vCenter team made the roles): a lookup of the existing role named CNS-VM.
CNS-VM is granted per VM by `NodePool` in both cases, so a node added later gets its grant, and the
grant lives and dies with the node.

Grants on shared entities (root folder, datacenter, cluster, datastore) ignore later changes and are
retained on delete: pulumi-vsphere reads back *every* permission on an entity and, on update or delete,
removes the ones not in the program, which would strip the vCenter team's own permissions after a refresh.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_vsphere as vsphere
from pulumi_command import local

from config import Secrets
from config.errors import key_path
from config.model import VsphereConfig

from . import tls_check

# Privilege IDs per role (vsphere-csi-driver prerequisites; VMware CNS docs). vCenter adds System.Anonymous,
# System.Read and System.View to every role itself, and the provider hides them when reading a role back,
# so listing them would be a permanent diff.
SYSTEM_PRIVILEGES = ("System.Anonymous", "System.Read", "System.View")
CNS_ROLES: dict[str, tuple[str, ...]] = {
    "CNS-VM": ("VirtualMachine.Config.AddExistingDisk", "VirtualMachine.Config.AddRemoveDevice"),
    "CNS-DATASTORE": ("Datastore.FileManagement",),
    "CNS-SEARCH-AND-SPBM": ("Cns.Searchable", "StorageProfile.View"),
}
READ_ONLY_LABEL = "Read-only"
# The check runs as a script of its own (stdin), so a failure's message is the script's, not its source.
TLS_CHECK_SOURCE = Path(tls_check.__file__).read_text()
TLS_CHECK_COMMAND = "import sys; exec(compile(sys.stdin.read(), 'vcenter-tls-check', 'exec'))"
CNS_VM_ROLE = "CNS-VM"


def principal(user: str) -> str:
    """`k8s-cns@vsphere.local` -> `VSPHERE.LOCAL\\k8s-cns`, the form vCenter stores permissions under."""
    if "\\" in user or "@" not in user:
        return user
    name, _, domain = user.rpartition("@")
    return f"{domain.upper()}\\{name}"


@dataclass(frozen=True)
class Grant:
    """One permission the storage account needs on a shared entity."""

    suffix: str
    entity_type: str
    role: str
    propagate: bool


# Where each role goes (read-only on the ancestors of the node VMs, which the CPI/CSI need for topology;
# propagated on the cluster so it reaches the ESXi hosts).
SHARED_GRANTS = (
    Grant("cns-search", "Folder", "CNS-SEARCH-AND-SPBM", propagate=False),
    Grant("cns-datastore", "Datastore", "CNS-DATASTORE", propagate=False),
    Grant("read-only-datacenter", "Datacenter", READ_ONLY_LABEL, propagate=False),
    Grant("read-only-cluster", "ClusterComputeResource", READ_ONLY_LABEL, propagate=True),
)


class VsphereAccess(pulumi.ComponentResource):
    config: VsphereConfig
    provider: vsphere.Provider
    datacenter_id: pulumi.Output[str]
    cluster_id: pulumi.Output[str]
    resource_pool_id: pulumi.Output[str]
    datastore_id: pulumi.Output[str]
    network_id: pulumi.Output[str]
    template: pulumi.Output[vsphere.GetVirtualMachineResult]
    """The Ubuntu cloud-image template VM (its id is the UUID a clone starts from)."""
    roles: dict[str, vsphere.Role]
    """The CNS roles by name; empty when `manageCnsRoles` is false."""
    cns_vm_role_id: pulumi.Output[str] | None
    """The CNS-VM role every node VM grants to the storage account (created here, or looked up by name);
    None when the storage account is the Pulumi account itself (see `_cns_vm_role`)."""
    storage_principal: str
    """The storage account as vCenter names it in permissions."""
    tls: str
    """What protects the program's own connection to vCenter (for the plan and the stack outputs)."""

    def __init__(
        self,
        name: str,
        cfg: VsphereConfig,
        secrets: Secrets,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("cht-hosting:vsphere:VsphereAccess", name, None, opts)
        self.config = cfg
        self.tls = tls_check.protection(
            cfg.server, cfg.thumbprint, cfg.ca_certificate, cfg.insecure, key=key_path("vsphere")
        )
        server: pulumi.Input[str] = cfg.server
        if not cfg.insecure:
            verified = local.run_output(
                command=TLS_CHECK_COMMAND,
                interpreter=[sys.executable, "-c"],
                stdin=TLS_CHECK_SOURCE,
                environment={
                    "CHT_VCENTER_HOST": cfg.server,
                    "CHT_VCENTER_PORT": "443",
                    "CHT_VCENTER_THUMBPRINT": cfg.thumbprint or "",
                    "CHT_VCENTER_CA_PEM": cfg.ca_certificate or "",
                    "CHT_CONFIG_KEY": key_path("vsphere"),
                },
                opts=pulumi.InvokeOutputOptions(parent=self),
            )
            # The provider's inputs wait for the check; a failed check fails the run before the provider exists.
            server = verified.stdout.apply(lambda _: cfg.server)
        self.provider = vsphere.Provider(
            f"{name}-provider",
            vsphere_server=server,
            user=cfg.user,
            password=pulumi.Output.secret(secrets.vsphere_password),
            allow_unverified_ssl=cfg.insecure,
            opts=pulumi.ResourceOptions(parent=self),
        )
        invoke = pulumi.InvokeOutputOptions(parent=self, provider=self.provider)

        datacenter = vsphere.get_datacenter_output(name=cfg.datacenter, opts=invoke)
        self.datacenter_id = datacenter.id
        cluster = vsphere.get_compute_cluster_output(
            name=cfg.compute_cluster, datacenter_id=self.datacenter_id, opts=invoke
        )
        self.cluster_id = cluster.id
        if cfg.resource_pool:
            self.resource_pool_id = vsphere.get_resource_pool_output(
                name=f"{cfg.compute_cluster}/Resources/{cfg.resource_pool}",
                datacenter_id=self.datacenter_id,
                opts=invoke,
            ).id
        else:
            self.resource_pool_id = cluster.resource_pool_id
        self.datastore_id = vsphere.get_datastore_output(
            name=cfg.datastore, datacenter_id=self.datacenter_id, opts=invoke
        ).id
        self.network_id = vsphere.get_network_output(
            name=cfg.network, datacenter_id=self.datacenter_id, opts=invoke
        ).id
        self.template = vsphere.get_virtual_machine_output(
            name=cfg.template, datacenter_id=self.datacenter_id, opts=invoke
        )

        self.storage_principal = principal(cfg.storage_account)
        self.roles = {}
        if cfg.manage_cns_roles:
            self._cns_roles(name, invoke)
        self.cns_vm_role_id = self._cns_vm_role(invoke)

        self.register_outputs(
            {
                "datacenterId": self.datacenter_id,
                "clusterId": self.cluster_id,
                "resourcePoolId": self.resource_pool_id,
                "datastoreId": self.datastore_id,
                "networkId": self.network_id,
                "templateUuid": self.template.id,
                "roles": {role: r.id for role, r in self.roles.items()},
            }
        )

    def _cns_roles(self, name: str, invoke: pulumi.InvokeOutputOptions) -> None:
        child = pulumi.ResourceOptions(parent=self, provider=self.provider)
        for role, privileges in CNS_ROLES.items():
            self.roles[role] = vsphere.Role(
                f"{name}-{role.lower()}", name=role, role_privileges=sorted(privileges), opts=child
            )
        role_ids = {role: r.id for role, r in self.roles.items()}
        role_ids[READ_ONLY_LABEL] = vsphere.get_role_output(label=READ_ONLY_LABEL, opts=invoke).id
        entity_ids = {
            "Folder": vsphere.get_folder_output(path="/", opts=invoke).id,
            "Datastore": self.datastore_id,
            "Datacenter": self.datacenter_id,
            "ClusterComputeResource": self.cluster_id,
        }
        shared = pulumi.ResourceOptions(
            parent=self, provider=self.provider, ignore_changes=["permissions"], retain_on_delete=True
        )
        for grant in SHARED_GRANTS:
            vsphere.EntityPermissions(
                f"{name}-{grant.suffix}",
                entity_id=entity_ids[grant.entity_type],
                entity_type=grant.entity_type,
                permissions=[self.permission(role_ids[grant.role], grant.propagate)],
                opts=shared,
            )

    def _cns_vm_role(self, invoke: pulumi.InvokeOutputOptions) -> pulumi.Output[str] | None:
        if CNS_VM_ROLE in self.roles:
            return self.roles[CNS_VM_ROLE].id
        if self.storage_principal.lower() == principal(self.config.user).lower():
            # A permission set on the VM itself replaces, for that account, what it inherits there: granting
            # CNS-VM to the account that creates the VMs would take its own rights on them away. That account
            # already holds more than CNS-VM on its VMs.
            return None
        # Made by the vCenter team under the name VMware's CNS documentation gives it (label = name for a
        # custom role; pulumi-vsphere 4.18.2 get_role looks a role up by its label).
        return vsphere.get_role_output(label=CNS_VM_ROLE, opts=invoke).id

    def permission(self, role_id: pulumi.Input[str], propagate: bool) -> vsphere.EntityPermissionsPermissionArgs:
        """The storage account's permission with `role_id` (one per entity, so the list is trivially sorted)."""
        return vsphere.EntityPermissionsPermissionArgs(
            user_or_group=self.storage_principal, is_group=False, propagate=propagate, role_id=role_id
        )
