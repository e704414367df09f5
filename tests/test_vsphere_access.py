"""VsphereAccess: the provider, the lookups, the CNS roles and who gets them where."""

from __future__ import annotations

import pytest

from components.vsphere.access import CNS_ROLES, SYSTEM_PRIVILEGES, principal
from config.errors import ConfigError
from tests.nodes_build import PASSWORD, build, national_config

ROLE = "vsphere:index/role:Role"
PERMISSIONS = "vsphere:index/entityPermissions:EntityPermissions"
STORAGE = "VSPHERE.LOCAL\\k8s-cns"
VM = "vsphere:index/virtualMachine:VirtualMachine"

# The privilege IDs per role as the CSI prerequisites list them (System.* included).
DOCUMENTED = {
    "CNS-VM": {"VirtualMachine.Config.AddExistingDisk", "VirtualMachine.Config.AddRemoveDevice", *SYSTEM_PRIVILEGES},
    "CNS-DATASTORE": {"Datastore.FileManagement", *SYSTEM_PRIVILEGES},
    "CNS-SEARCH-AND-SPBM": {"Cns.Searchable", "StorageProfile.View", *SYSTEM_PRIVILEGES},
}


@pytest.fixture(scope="module")
def ev():
    return build(national_config(), export_handles=False).evaluation


def test_the_provider_uses_the_configured_server_and_user_and_a_secret_password(ev):
    provider = ev.named("vsphere-provider")
    assert provider.type == "pulumi:providers:vsphere"
    assert provider.inputs["vsphereServer"] == "vcenter.moh.example.org"
    assert provider.inputs["user"] == "pulumi@vsphere.local"
    assert provider.inputs["password"] == PASSWORD
    assert "password" in provider.secret_inputs
    assert provider.parent == ev.named("vsphere").urn


def test_the_three_cns_roles_carry_the_documented_privileges(ev):
    roles = {r.inputs["name"]: r for r in ev.of_type(ROLE)}
    assert set(roles) == set(DOCUMENTED)
    for name, role in roles.items():
        privileges = role.inputs["rolePrivileges"]
        assert privileges == sorted(privileges)
        # vCenter adds System.* to every role and the provider hides them on read: listing them would never settle.
        assert not set(privileges) & set(SYSTEM_PRIVILEGES)
        assert set(privileges) | set(SYSTEM_PRIVILEGES) == DOCUMENTED[name]


def _grants(ev):
    return {r.name: r for r in ev.of_type(PERMISSIONS)}


def test_shared_entities_grant_the_storage_account_the_right_role(ev):
    roles = {r.inputs["name"]: r for r in ev.of_type(ROLE)}
    role_id = {name: f"{r.name}-id" for name, r in roles.items()}
    grants = _grants(ev)
    expected = {
        "vsphere-cns-search": ("Folder", role_id["CNS-SEARCH-AND-SPBM"], False),
        "vsphere-cns-datastore": ("Datastore", role_id["CNS-DATASTORE"], False),
        "vsphere-read-only-datacenter": ("Datacenter", "-2", False),
        "vsphere-read-only-cluster": ("ClusterComputeResource", "-2", True),
    }
    for name, (entity_type, role, propagate) in expected.items():
        grant = grants[name]
        assert grant.inputs["entityType"] == entity_type
        assert grant.inputs["permissions"] == [
            {"userOrGroup": STORAGE, "isGroup": False, "propagate": propagate, "roleId": role}
        ]
    assert grants["vsphere-cns-datastore"].inputs["entityId"] == "datastore-11"
    assert grants["vsphere-read-only-datacenter"].inputs["entityId"] == "datacenter-3"
    assert grants["vsphere-read-only-cluster"].inputs["entityId"] == "domain-c8"
    assert grants["vsphere-cns-search"].inputs["entityId"].startswith("group-v")  # the root folder "/"


def test_grants_on_shared_entities_never_strip_other_permissions(ev):
    # The provider rewrites the whole permission list of an entity on update and delete.
    for name, grant in _grants(ev).items():
        if name.startswith("vsphere-"):
            assert grant.ignore_changes == ("permissions",)
            assert grant.retain_on_delete is True


def test_every_node_vm_grants_cns_vm_to_the_storage_account(ev):
    cns_vm = next(r for r in ev.of_type(ROLE) if r.inputs["name"] == "CNS-VM")
    per_vm = {name: g for name, g in _grants(ev).items() if name.endswith("-cns-vm")}
    assert len(per_vm) == 12
    for name, grant in per_vm.items():
        vm = ev.named(name.removesuffix("-cns-vm"))
        assert grant.parent == vm.parent  # lives in the node's pool, comes and goes with the node
        assert grant.inputs["entityType"] == "VirtualMachine"
        assert grant.inputs["entityId"].startswith("vm-")  # the VM's moid
        assert grant.inputs["permissions"] == [
            {"userOrGroup": STORAGE, "isGroup": False, "propagate": False, "roleId": f"{cns_vm.name}-id"}
        ]


def without_role_management(**vsphere):
    cfg = national_config()
    update = {"manage_cns_roles": False, **vsphere}
    return build(cfg.model_copy(update={"vsphere": cfg.vsphere.model_copy(update=update)}), False).evaluation


def test_where_the_vcenter_team_makes_the_roles_every_vm_still_gets_its_cns_vm_grant():
    ev = without_role_management()
    assert ev.of_type(ROLE) == []  # no role and no shared grant is made here
    assert {g.name for g in ev.of_type(PERMISSIONS)} == {f"{vm.name}-cns-vm" for vm in ev.of_type(VM)}
    assert len(ev.of_type(VM)) == 12
    # The mock answers a role lookup with an id derived from the label it was asked for.
    from offline.fakes import digest

    role_id = f"role-{digest('role-label', 'CNS-VM', length=6)}"
    for grant in ev.of_type(PERMISSIONS):
        vm = ev.named(grant.name.removesuffix("-cns-vm"))
        assert grant.parent == vm.parent and grant.inputs["entityType"] == "VirtualMachine"
        assert grant.inputs["permissions"] == [
            {"userOrGroup": STORAGE, "isGroup": False, "propagate": False, "roleId": role_id}
        ]


def test_a_node_added_later_gets_its_grant_without_touching_the_others():
    cfg = national_config()
    vsphere = cfg.vsphere.model_copy(update={"manage_cns_roles": False})
    agents = cfg.agents.model_copy(update={"nodes": {**cfg.agents.nodes, "agent-10": "10.20.0.30"}})
    before = build(cfg.model_copy(update={"vsphere": vsphere}), False).evaluation
    after = build(cfg.model_copy(update={"vsphere": vsphere, "agents": agents}), False).evaluation
    grants_before = {g.name: g.inputs for g in before.of_type(PERMISSIONS)}
    grants_after = {g.name: g.inputs for g in after.of_type(PERMISSIONS)}
    assert set(grants_after) - set(grants_before) == {"agents-agent-10-cns-vm"}
    assert all(grants_after[name] == inputs for name, inputs in grants_before.items())


def test_no_vm_grant_to_the_account_pulumi_itself_uses():
    # A permission on the VM would replace that account's inherited rights there (it creates the VMs).
    ev = without_role_management(storage_user=None)
    assert ev.of_type(PERMISSIONS) == []


def test_the_roles_are_never_granted_to_the_account_pulumi_uses():
    raw = national_config().vsphere.model_dump(by_alias=True, exclude_none=True)
    del raw["storageUser"]
    with pytest.raises(ConfigError) as error:
        national_config(vsphere=raw)
    assert (
        "cht-hosting:vsphere.storageUser: the CNS roles would be granted to pulumi@vsphere.local, the account "
        "Pulumi itself uses, and a role set on the node VMs, the datastore and the datacenter replaces the rights "
        "it inherits there; set storageUser to a dedicated account (e.g. k8s-cns@vsphere.local), "
        "or set vsphere.manageCnsRoles: false if the vCenter team grants the roles"
    ) in error.value.problems
    assert national_config(vsphere={**raw, "manageCnsRoles": False}).vsphere.storage_user is None


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("k8s-cns@vsphere.local", "VSPHERE.LOCAL\\k8s-cns"),
        ("svc@moh.example.org", "MOH.EXAMPLE.ORG\\svc"),
        ("MOH\\svc-k8s", "MOH\\svc-k8s"),
        ("localuser", "localuser"),
    ],
)
def test_principal_is_written_as_vcenter_stores_it(user, expected):
    assert principal(user) == expected


def test_role_table_matches_the_roles_created(ev):
    assert {r.inputs["name"] for r in ev.of_type(ROLE)} == set(CNS_ROLES)
