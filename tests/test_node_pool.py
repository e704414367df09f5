"""NodePool and SshTrust, built from the national stack's validated config on the mock engine."""

from __future__ import annotations

import base64
import itertools
import shlex

import pytest
import yaml

from components.vsphere import node_pool
from tests.nodes_build import build, national_config

VM = "vsphere:index/virtualMachine:VirtualMachine"
KEY = "tls:index/privateKey:PrivateKey"
RULE = "vsphere:index/computeClusterVmAntiAffinityRule:ComputeClusterVmAntiAffinityRule"
PERMISSIONS = "vsphere:index/entityPermissions:EntityPermissions"
SERVERS = ["cp-1", "cp-2", "cp-3"]
AGENTS = [f"agent-{i}" for i in range(1, 10)]


@pytest.fixture(scope="module")
def built():
    return build(national_config())


@pytest.fixture(scope="module")
def ev(built):
    return built.evaluation


def vm_of(ev, node):
    pool = "control-plane" if node.startswith("cp-") else "agents"
    return ev.named(f"{pool}-{node}")


def cloud_init_of(ev, node):
    extra = vm_of(ev, node).inputs["extraConfig"]
    assert extra["guestinfo.userdata.encoding"] == extra["guestinfo.metadata.encoding"] == "base64"
    userdata = base64.b64decode(extra["guestinfo.userdata"]).decode()
    assert userdata.startswith("#cloud-config\n")
    return yaml.safe_load(base64.b64decode(extra["guestinfo.metadata"])), yaml.safe_load(userdata)


# --- the VMs ---------------------------------------------------------------------------------------------


def test_prod_has_three_server_and_nine_agent_vms_named_after_their_nodes(ev):
    vms = ev.of_type(VM)
    assert sorted(v.inputs["name"] for v in vms) == sorted(SERVERS + AGENTS)
    for pool, names in (("control-plane", SERVERS), ("agents", AGENTS)):
        component = ev.named(pool)
        assert component.type == "cht-hosting:vsphere:NodePool"
        assert sorted(c.inputs["name"] for c in ev.children(component) if c.type == VM) == names


@pytest.mark.parametrize(("node", "cpus", "memory"), [("cp-2", 4, 8 * 1024), ("agent-7", 48, 192 * 1024)])
def test_each_vm_gets_its_pools_size(ev, node, cpus, memory):
    inputs = vm_of(ev, node).inputs
    assert inputs["numCpus"] == cpus
    assert inputs["memory"] == memory
    assert inputs["disks"] == [{"label": "disk0", "size": 50, "unitNumber": 0, "thinProvisioned": True}]


def test_every_vm_meets_the_csi_prerequisites(ev):
    for vm in ev.of_type(VM):
        assert vm.inputs["enableDiskUuid"] is True
        assert vm.inputs["hardwareVersion"] == 19
        assert vm.inputs["scsiType"] == "pvscsi"
        assert vm.inputs["networkInterfaces"] == [{"networkId": "network-13", "adapterType": "vmxnet3"}]


def test_every_vm_is_a_full_clone_of_the_template_looked_up_by_name_in_the_right_place(ev):
    from offline.fakes import fake_uuid

    template_uuid = fake_uuid("template", "ubuntu-24.04-cloudimg")
    for vm in ev.of_type(VM):
        assert vm.inputs["clone"] == {"templateUuid": template_uuid, "linkedClone": False}
        assert "customize" not in vm.inputs["clone"]  # cloud-init only; guest customization would fight it
        assert vm.inputs["guestId"] == "ubuntu64Guest" and vm.inputs["firmware"] == "efi"  # as the template
        assert vm.inputs["folder"] == "cht-hosting"
        assert vm.inputs["resourcePoolId"] == "resgroup-9"  # the cluster's root pool
        assert vm.inputs["datastoreId"] == "datastore-11"
        assert vm.inputs["waitForGuestNetTimeout"] > 0


def test_every_vm_uses_the_explicit_vsphere_provider(ev):
    provider = ev.named("vsphere-provider")
    for vm in ev.of_type(VM):
        assert vm.provider.startswith(provider.urn + "::")


def test_a_configured_resource_pool_is_looked_up_inside_the_cluster():
    cfg = national_config()
    vsphere = cfg.vsphere.model_copy(update={"resource_pool": "cht"})
    ev = build(cfg.model_copy(update={"vsphere": vsphere}), export_handles=False).evaluation
    assert ev.named("control-plane-cp-1").inputs["resourcePoolId"] != "resgroup-9"
    assert ev.named("control-plane-cp-1").inputs["resourcePoolId"].startswith("resgroup-")


def test_a_hardware_version_below_15_is_refused_by_config():
    from config.errors import ConfigError

    raw = national_config().vsphere.model_dump(by_alias=True, exclude_none=True)
    with pytest.raises(ConfigError) as error:
        national_config(vsphere={**raw, "hardwareVersion": 14})
    assert "cht-hosting:vsphere.hardwareVersion: hardware version 14 cannot run the vSphere CSI driver" in str(error.value)


# --- day-2 safety ------------------------------------------------------------------------------------------


def test_a_rebuilt_template_or_edited_cloud_init_never_touches_a_node(ev):
    for vm in ev.of_type(VM):
        assert {"clone", "extraConfig"} <= set(vm.ignore_changes)


def test_known_perpetual_diffs_of_pulumi_vsphere_are_suppressed_with_engine_names(ev):
    for vm in ev.of_type(VM):
        assert {"eptRviMode", "hvMode", "syncTimeWithHost"} <= set(vm.ignore_changes)
        assert all("_" not in path for path in vm.ignore_changes)  # engine (camelCase) names only


def test_control_plane_vms_are_protected_and_agents_are_not(ev):
    for node in SERVERS:
        assert vm_of(ev, node).protect is True
    for node in AGENTS:
        assert vm_of(ev, node).protect is False


def test_a_replaced_vm_is_deleted_first_because_its_name_and_address_are_fixed(ev):
    assert all(vm.delete_before_replace for vm in ev.of_type(VM))


def test_adding_one_agent_touches_no_other_resource(ev):
    cfg = national_config()
    agents = cfg.agents.model_copy(update={"nodes": {**cfg.agents.nodes, "agent-10": "10.20.0.30"}})
    bigger = build(cfg.model_copy(update={"agents": agents}), export_handles=False).evaluation
    before = {r.urn: r.inputs for r in ev.registrations}
    after = {r.urn: r.inputs for r in bigger.registrations}
    added = set(after) - set(before)
    assert sorted(u.rsplit("::", 1)[1] for u in added) == [
        "agents-agent-10",
        "agents-agent-10-cns-vm",
        "agents-agent-10-host-key",
        "agents-agent-10-host-key-retirement",
        "agents-agent-10-host-key-rotation",
        "agents-agent-10-lasting-host-key",
        "agents-agent-10-vm-back",
    ]
    assert set(before) <= set(after)
    # The pool's DRS rule lists one more VM (an in-place update); nothing else changes.
    changed = {u.rsplit("::", 1)[1] for u in before if after[u] != before[u]}
    assert changed == {"agents-anti-affinity"}
    rule = bigger.named("agents-anti-affinity").inputs["virtualMachineIds"]
    assert len(rule) == 10 and set(ev.named("agents-anti-affinity").inputs["virtualMachineIds"]) < set(rule)


def test_removing_one_agent_touches_no_other_resource(ev):
    cfg = national_config()
    nodes = {k: v for k, v in cfg.agents.nodes.items() if k != "agent-4"}
    smaller = build(cfg.model_copy(update={"agents": cfg.agents.model_copy(update={"nodes": nodes})}), False).evaluation
    before = {r.urn: r.inputs for r in ev.registrations}
    after = {r.urn: r.inputs for r in smaller.registrations}
    assert sorted(u.rsplit("::", 1)[1] for u in set(before) - set(after)) == [
        "agents-agent-4",
        "agents-agent-4-cns-vm",
        "agents-agent-4-host-key",
        "agents-agent-4-host-key-retirement",
        "agents-agent-4-host-key-rotation",
        "agents-agent-4-lasting-host-key",
        "agents-agent-4-vm-back",
    ]
    changed = {u.rsplit("::", 1)[1] for u in after if after[u] != before[u]}
    assert changed == {"agents-anti-affinity"}
    assert len(smaller.named("agents-anti-affinity").inputs["virtualMachineIds"]) == 8


# --- cloud-init --------------------------------------------------------------------------------------------


def test_cloud_init_travels_only_through_guestinfo_as_a_secret(ev):
    for vm in ev.of_type(VM):
        assert "extraConfig" in vm.secret_inputs  # it carries the node's host private key
        assert set(vm.inputs["extraConfig"]) == {
            "guestinfo.metadata",
            "guestinfo.metadata.encoding",
            "guestinfo.userdata",
            "guestinfo.userdata.encoding",
        }


@pytest.mark.parametrize(("node", "ip"), [("cp-1", "10.20.0.11"), ("agent-9", "10.20.0.29")])
def test_each_vms_metadata_has_its_hostname_and_static_address(ev, node, ip):
    meta, user = cloud_init_of(ev, node)
    assert meta["local-hostname"] == meta["instance-id"] == user["hostname"] == node
    (nic,) = meta["network"]["ethernets"].values()
    assert nic["addresses"] == [f"{ip}/24"]
    assert nic["routes"] == [{"to": "default", "via": "10.20.0.1"}]
    assert nic["nameservers"]["addresses"] == ["10.20.0.2", "10.20.0.3"]


def test_each_vms_userdata_authorizes_the_program_key_and_the_operators_keys():
    ops = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIops ops@moh.example.org"
    cfg = national_config()
    built = build(cfg.model_copy(update={"ssh": cfg.ssh.model_copy(update={"authorized_keys": [ops]})}))
    program_key = built.evaluation.named("ssh-program-key")
    assert program_key.inputs["algorithm"] == "ED25519"
    for node in ("cp-1", "agent-3"):
        _, user = cloud_init_of(built.evaluation, node)
        (admin,) = user["users"]
        assert admin["name"] == "chtadmin"
        assert len(admin["ssh_authorized_keys"]) == 2
        assert admin["ssh_authorized_keys"][0].startswith("ssh-ed25519 ") and "ssh-program-key" in admin["ssh_authorized_keys"][0]
        assert admin["ssh_authorized_keys"][1] == ops
        assert user["ntp"] == {"enabled": True, "servers": ["ntp.moh.example.org"]}


def test_each_vm_boots_with_its_own_host_key_from_cloud_init(ev):
    seen = set()
    for node in SERVERS + AGENTS:
        host_key = ev.named(f"{'control-plane' if node in SERVERS else 'agents'}-{node}-host-key")
        assert host_key.type == KEY and host_key.inputs["algorithm"] == "ED25519"
        meta, user = cloud_init_of(ev, node)
        public = user["ssh_keys"]["ed25519_public"]
        assert public.startswith("ssh-ed25519 ")
        assert user["ssh_keys"]["ed25519_private"]
        assert user["ssh_deletekeys"] is True and user["ssh_genkeytypes"] == ["ed25519"]
        assert meta["redact"] == ["userdata"]  # cloud-init blanks the guest's own copy once read
        seen.add(public)
    assert len(seen) == 12


def pool_of(node: str) -> str:
    return "control-plane" if node in SERVERS else "agents"


def test_the_boot_key_is_trusted_for_one_step_then_every_connection_pins_a_key_vcenter_never_saw(ev):
    """The boot key's private half is readable in the VM's extraConfig; the lasting key travels on stdin only."""
    handles = ev.outputs["handles"]
    lasting_publics = set()
    for node in SERVERS + AGENTS:
        prefix = f"{pool_of(node)}-{node}"
        _, user = cloud_init_of(ev, node)
        boot_public = user["ssh_keys"]["ed25519_public"]
        lasting = ev.named(f"{prefix}-lasting-host-key")
        assert lasting.type == KEY and lasting.inputs["algorithm"] == "ECDSA" and lasting.inputs["ecdsaCurve"] == "P256"
        rotation, retirement = ev.named(f"{prefix}-host-key-rotation"), ev.named(f"{prefix}-host-key-retirement")
        # The rotation is the only connection pinned to the boot key.
        assert rotation.inputs["connection"]["hostKey"] == boot_public
        assert "connection" in rotation.secret_inputs and "stdin" in rotation.secret_inputs
        assert rotation.inputs["stdin"].startswith("mockkey")  # the lasting private key, on stdin only
        assert rotation.inputs["stdin"] not in rotation.inputs["create"]
        assert rotation.inputs["logging"] == "none"
        pinned = handles[node]["hostKey"]
        assert pinned.startswith("ecdsa-sha2-nistp256 ") and pinned != boot_public
        assert retirement.inputs["connection"]["hostKey"] == pinned
        assert f"expected='{pinned}'" in shlex.split(rotation.inputs["create"])[-1]
        assert "ssh_host_ed25519_key" in retirement.inputs["create"] and "rm -f" in retirement.inputs["create"]
        # Both run again only on a new VM, never because a later program version edits their scripts.
        vm = vm_of(ev, node)
        assert rotation.inputs["triggers"] == retirement.inputs["triggers"] == [fake_vm_uuid(vm.name)]
        assert set(rotation.ignore_changes) >= {"create", "connection", "stdin"}
        assert rotation.urn in retirement.depends_on and vm.urn in rotation.depends_on
        lasting_publics.add(pinned)
    assert len(lasting_publics) == 12


def fake_vm_uuid(vm_name: str) -> str:
    from offline.fakes import fake_uuid

    return fake_uuid("vm", vm_name).upper()


def test_a_guestinfo_edit_never_touches_a_deployed_vm(ev):
    for vm in ev.of_type(VM):
        assert "extraConfig" in vm.ignore_changes and "clone" in vm.ignore_changes


# --- handles -------------------------------------------------------------------------------------------------


def test_each_node_exposes_name_ip_role_and_lower_case_bios_uuid(built, ev):
    from offline.fakes import fake_uuid

    assert sorted(built.nodes) == sorted(SERVERS + AGENTS)
    for name, handle in built.nodes.items():
        out = ev.outputs["handles"][name]
        assert handle.name == name
        assert handle.role == ("server" if name in SERVERS else "agent")
        assert out["uuid"] == fake_uuid("vm", vm_of(ev, name).name)  # the mock reports it upper-case
        assert out["uuid"] == out["uuid"].lower()
        assert handle.vm is not None
    assert ev.outputs["handles"]["agent-5"]["ip"] == "10.20.0.25"


def test_each_connection_uses_the_program_key_as_a_secret_and_bounded_retries(built, ev):
    program_key = ev.named("ssh-program-key")
    for _name, out in ev.outputs["handles"].items():
        assert out["host"] == out["ip"]
        assert out["user"] == "chtadmin"
        assert out["privateKey"].startswith("mockkey") and out["privateKeyIsSecret"] is True
        assert out["perDialTimeout"] > 0 and out["dialErrorLimit"] > 0
    assert program_key.type == KEY


# --- placement -----------------------------------------------------------------------------------------------


def test_each_pool_is_kept_on_distinct_hosts_by_default(ev):
    from offline.fakes import fake_uuid

    for pool, names in (("control-plane", SERVERS), ("agents", AGENTS)):
        rule = ev.named(f"{pool}-anti-affinity")
        assert rule.type == RULE and rule.parent == ev.named(pool).urn
        assert rule.inputs["computeClusterId"] == "domain-c8"
        assert rule.inputs["virtualMachineIds"] == [fake_uuid("vm", f"{pool}-{n}").upper() for n in names]
        assert rule.inputs["enabled"] is True and rule.inputs["mandatory"] is False
    assert len(ev.of_type(RULE)) == 2


def test_a_pool_with_anti_affinity_off_gets_no_rule():
    cfg = national_config()
    ev = build(cfg.model_copy(update={"agents": cfg.agents.model_copy(update={"anti_affinity": False})}), False).evaluation
    assert [r.name for r in ev.of_type(RULE)] == ["control-plane-anti-affinity"]


def test_a_single_server_gets_no_rule_of_its_own():
    cfg = national_config()
    one = cfg.control_plane.model_copy(update={"nodes": {"cp-1": "10.20.0.11"}})
    ev = build(cfg.model_copy(update={"control_plane": one}), False).evaluation
    assert [r.name for r in ev.of_type(RULE)] == ["agents-anti-affinity"]


def test_a_pools_vms_change_one_at_a_time_each_after_the_previous_node_is_healthy(ev):
    # The provider powers a VM off for a new CPU count, memory or hardware version (no hot add): each VM of a
    # pool depends on the previous node's `vm-back`, which waits until k3s on it is healthy again.
    for pool, nodes in (("control-plane", SERVERS), ("agents", AGENTS)):
        ordered = sorted(nodes, key=node_pool.node_order)
        assert not any("vm-back" in dep for dep in vm_of(ev, ordered[0]).depends_on)
        for before, node in itertools.pairwise(ordered):
            assert ev.named(f"{pool}-{before}-vm-back").urn in vm_of(ev, node).depends_on, (before, node)
            back = ev.named(f"{pool}-{before}-vm-back")
            assert back.inputs["create"] == back.inputs["update"]
            assert "after a change of its VM: cpus" in back.inputs["create"]


def test_a_new_cpu_count_changes_the_wait_so_it_runs_again(ev):
    cfg = national_config()
    bigger = cfg.model_copy(update={"agents": cfg.agents.model_copy(update={"cpus": cfg.agents.cpus + 2})})
    after = build(bigger, export_handles=False).evaluation
    for node in AGENTS:
        was, now = ev.named(f"agents-{node}-vm-back").inputs, after.named(f"agents-{node}-vm-back").inputs
        assert was["update"] != now["update"] and f"cpus {cfg.agents.cpus + 2}," in now["update"]
        assert was["triggers"] == now["triggers"]  # the same VM: an update (the wait), never a replacement
