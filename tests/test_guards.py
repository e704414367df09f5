"""Edits refused against what is deployed (config/guards.py), each with its exact message; all accepted on a
first deploy. The deployed state is what the program itself exports (`deployedState`), read back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from config import deployed as deployed_state
from config import guards
from config.validate import required_secrets, validate
from offline import plan, stackfile
from offline.engine import ProgramFailed

STACKS = Path(__file__).parent / "stacks"
STACK = "guarded"
CSI_ID = "cht-hosting-guarded"


def config_of(**overrides):
    """The guarded stack's validated config, with `cht-hosting:<key>` values replaced (None removes one)."""
    file = stackfile.load(STACK, root=STACKS, overrides={f"cht-hosting:{k}": v for k, v in overrides.items()})
    raw, secret_keys = stackfile.raw(file)
    for key in required_secrets(raw):
        raw.setdefault(key, "[secret]")
        secret_keys |= {key}
    return validate(raw, secret_keys)


def section(key: str) -> dict:
    return stackfile.raw(stackfile.load(STACK, root=STACKS))[0][key]


def deployed_as(config, seed: str | None = None):
    """What the program exports for `config`, read back as the next update sees it."""
    seed = seed or min(config.control_plane.nodes)
    exported = deployed_state.snapshot(config, etcd_seed=seed, csi_cluster_id=CSI_ID)
    return deployed_state.parse(json.loads(json.dumps({"deployedState": exported})), "organization/cht-hosting/guarded")


BASE = config_of()
DEPLOYED = deployed_as(BASE)


def problems(seed_can_move: bool = True, csi_cluster_id: str = CSI_ID, **overrides) -> list[str]:
    return guards.check(
        config_of(**overrides), DEPLOYED, csi_cluster_id=csi_cluster_id, etcd_seed_can_move=seed_can_move
    )


def counties(**changes) -> dict:
    value = dict(section("counties"))
    for name, override in changes.items():
        if override is None:
            value.pop(name)
        else:
            value[name] = override
    return value


def test_the_unchanged_config_passes_and_nothing_deployed_passes_everything():
    assert guards.check(BASE, DEPLOYED, csi_cluster_id=CSI_ID) == []
    changed = config_of(counties=counties(nairobi={"couchdbNodes": 1}, kisumu={"couchdbUser": "admin"}))
    assert guards.check(changed, None, csi_cluster_id="other") == []


def test_export_has_every_remembered_value_and_no_secret():
    exported = deployed_state.snapshot(BASE, etcd_seed="cp-2", csi_cluster_id=CSI_ID)
    assert exported["schema"] == deployed_state.SCHEMA
    assert exported["counties"]["nairobi"] == {
        "couchdbNodes": 3, "couchdbStorageGb": 100, "couchdbUser": "medic", "version": "4.22.0",
        "host": BASE.counties["nairobi"].host, "upgrades": "config",
    }
    assert exported["nodes"]["cp-2"] == {
        "role": "server", "address": "10.20.0.12", "hardwareVersion": 19, "diskGb": 50, "cpus": 4, "memoryGb": 8,
        "k3sFollowsVm": True, "k3sConfig": None,
    }
    assert exported["nodes"]["agent-1"]["diskGb"] == 80
    assert (exported["etcdSeed"], exported["k3sVersion"], exported["csiClusterId"]) == ("cp-2", "v1.35.2+k3s1", CSI_ID)
    assert "[secret]" not in json.dumps(exported) and "password" not in json.dumps(exported).lower()


def test_couchdb_nodes_changed():
    assert problems(counties=counties(nairobi={"couchdbNodes": 1})) == [
        "cht-hosting:counties.nairobi.couchdbNodes: 3 CouchDB node(s) deployed, this config has 1; changing it in "
        "place starts new, empty CouchDB volumes and shards. Keep 3 and follow docs/runbooks/grow-county.md, "
        "'Resizing a county's CouchDB cluster'"
    ]
    assert problems(counties=counties(kisumu={"couchdbNodes": 3}))[0].startswith(
        "cht-hosting:counties.kisumu.couchdbNodes: 1 CouchDB node(s) deployed, this config has 3;"
    )


def test_county_renamed_names_both():
    # A state recorded before hosts were: any county removed while another is added is held to be a rename.
    unhosted = DEPLOYED.model_copy(
        update={"counties": {n: c.model_copy(update={"host": None}) for n, c in DEPLOYED.counties.items()}}
    )
    edited = config_of(counties=counties(kisumu=None, **{"kisumu-central": {}}))
    assert guards.check(edited, unhosted, csi_cluster_id=CSI_ID) == [
        "cht-hosting:counties.kisumu: deployed county 'kisumu' is missing and 'kisumu-central' is new in the same "
        "update; a county cannot be renamed (its name is its namespace and its volumes': the new one would start "
        "empty). Keep the name and change only its host, or remove and add in two separate updates "
        "(docs/runbooks/rename-county.md)"
    ]


def test_a_new_county_at_a_removed_countys_host_is_a_rename():
    host = DEPLOYED.counties["kisumu"].host
    assert host == BASE.counties["kisumu"].host
    assert problems(counties=counties(kisumu=None, **{"kisumu-central": {"host": host}})) == [
        "cht-hosting:counties.kisumu: deployed county 'kisumu' is missing and 'kisumu-central' takes its host "
        f"{host}; a county cannot be renamed (its name is its namespace and its volumes': the new "
        "one would start empty). Keep the name and change only its host, or remove and add in two separate "
        "updates (docs/runbooks/rename-county.md)"
    ]


def test_removing_one_county_and_adding_an_unrelated_one_is_accepted():
    assert problems(counties=counties(kisumu=None, **{"turkana-west": {}})) == []


def test_removing_or_adding_a_county_alone_is_accepted():
    assert problems(counties=counties(kisumu=None)) == []
    assert problems(counties=counties(**{"kisumu-central": {}})) == []


def test_couchdb_storage_shrunk_and_grown():
    assert problems(counties=counties(nakuru={"couchdbStorageGb": 150})) == [
        "cht-hosting:counties.nakuru.couchdbStorageGb: 200 GB deployed, this config has 150; a volume never "
        "shrinks. Keep 200 or more (docs/runbooks/grow-county.md)"
    ]
    assert problems(counties=counties(nakuru={"couchdbStorageGb": 300})) == []


def test_couchdb_user_changed_and_its_documented_acceptance():
    assert problems(counties=counties(kisumu={"couchdbUser": "admin"})) == [
        "cht-hosting:counties.kisumu.couchdbUser: admin user 'medic' deployed, this config has 'admin'; CouchDB "
        "keeps the admin it was set up with, so CHT would be locked out. Keep 'medic', or rotate it as "
        "docs/runbooks/rotate-credentials.md, 'Rotating a county's CouchDB admin user' says (it adds 'counties.kisumu.couchdbUser' to "
        "deployedState.accept for one update)"
    ]
    accepted = {"deployedState": {"accept": ["counties.kisumu.couchdbUser"]}}
    assert problems(counties=counties(kisumu={"couchdbUser": "admin"}), **accepted) == []
    assert guards.unused_acceptances(config_of(**accepted), DEPLOYED) == [
        "cht-hosting:deployedState.accept: 'counties.kisumu.couchdbUser' accepts nothing in this update; remove "
        "it so a later change of that user is refused again"
    ]


def test_cht_version_lowered():
    assert problems(cht={**section("cht"), "version": "4.21.0"}) == [
        f"cht-hosting:counties.{name}.version: CHT 4.22.0 deployed, this config has 4.21.0; CHT does not support "
        "downgrades (its databases and views are migrated forward, cht-core#9954). Keep 4.22.0 or a later "
        "release; to go back, restore a backup taken on the older release (docs/runbooks/restore-county.md)"
        for name in ("kisumu", "nakuru", "nairobi")
    ]


def test_cht_5_only_from_4_5():
    old = deployed_as(config_of(cht={**section("cht"), "version": "4.4.2"}))
    new = config_of(cht={**section("cht"), "version": "5.0.0"})
    assert guards.check(new, old, csi_cluster_id=CSI_ID)[0] == (
        "cht-hosting:counties.kisumu.version: CHT 4.4.2 deployed, this config has 5.0.0; CHT 5.x upgrades only "
        "from 4.5.0 or later. First set a 4.x release of at least 4.5.0 and apply, then set 5.0.0 "
        "(docs/runbooks/upgrade-cht.md)"
    )
    assert problems(cht={**section("cht"), "version": "5.0.0"}) == []  # from 4.22.0


def test_k3s_lowered_and_minor_skipped():
    k3s = section("k3s")
    assert problems(k3s={**k3s, "version": "v1.35.1+k3s1"}) == [
        "cht-hosting:k3s.version: k3s v1.35.2+k3s1 deployed, this config has v1.35.1+k3s1; Kubernetes does not "
        "support downgrades (etcd and the API objects are already on the newer release). Keep v1.35.2+k3s1 or later"
    ]
    assert problems(k3s={**k3s, "version": "v1.35.2+k3s2"}) == []
    old = deployed_as(config_of(k3s={**k3s, "version": "v1.34.1+k3s1"}, cpi={"version": "1.34.0"}))
    skipped = config_of(k3s={**k3s, "version": "v1.36.0+k3s1"}, cpi={"version": "1.36.0"}, csi={"version": "v3.8.0"})
    assert guards.check(skipped, old, csi_cluster_id=CSI_ID) == [
        "cht-hosting:k3s.version: k3s v1.34.1+k3s1 deployed, this config has v1.36.0+k3s1; Kubernetes upgrades one "
        "minor release at a time. Set a v1.35.x release, apply, then go on (docs/runbooks/upgrade-k3s.md)"
    ]
    assert guards.check(BASE, old, csi_cluster_id=CSI_ID) == []  # one minor up


def test_csi_cluster_id_changed():
    assert problems(csi_cluster_id="other-id") == [
        f"cht-hosting:csi.clusterId: cluster id '{CSI_ID}' deployed, this config gives 'other-id'; CNS tags every "
        f"volume with it, and a new id orphans every existing volume. Set csi.clusterId: {CSI_ID}"
    ]


def test_three_servers_cut_to_one():
    cp = section("controlPlane")
    assert problems(controlPlane={**cp, "nodes": {"cp-2": "10.20.0.12"}}) == [
        "cht-hosting:controlPlane.nodes: servers cp-2, cp-3, cp-4 deployed, this config removes cp-3, cp-4; etcd "
        "loses quorum when more than one member leaves at once. Remove one server per update, adding its "
        "replacement in the same update so the count stays odd (docs/runbooks/replace-node.md)",
        *(protected(n) for n in ("cp-3", "cp-4")),
    ]


def protected(name: str) -> str:
    return (
        f"cht-hosting:controlPlane.nodes.{name}: server {name} is deployed and its VM is protected; removing its line "
        "alone would drain it, remove its etcd member and uninstall k3s, then fail on the VM. To remove it: pulumi "
        "state unprotect \"$(pulumi stack --show-urns | grep -o 'urn:pulumi:[^ ]*VirtualMachine::control-plane-"
        f"{name}')\", then add 'controlPlane.nodes.{name}' to deployedState.accept for this one update "
        "(docs/runbooks/remove-node.md, 'A deployed server: lift its VM's protection first')"
    )


def test_replacing_the_seed_and_adding_a_server_that_sorts_first():
    cp = section("controlPlane")
    replaced = {**cp, "nodes": {"cp-1": "10.20.0.11", "cp-3": "10.20.0.13", "cp-4": "10.20.0.14"}}
    accepted = {"accept": ["controlPlane.nodes.cp-2"]}
    # The cluster joins through the API once it exists; the seed's VM was unprotected.
    assert problems(controlPlane=replaced, deployedState=accepted) == []
    assert problems(seed_can_move=False, controlPlane=replaced, deployedState=accepted) == [
        "cht-hosting:controlPlane.nodes.cp-2: cp-2 seeded etcd and the other servers join through it; removing it "
        "would re-seed etcd on another server. Keep it",
        "cht-hosting:controlPlane.nodes.cp-1: sorts before cp-2, the server that seeded etcd, and would seed a "
        "second cluster; choose a name that sorts after it",
    ]


def test_a_deployed_servers_removal_is_refused_until_its_vm_is_unprotected_and_accepted():
    """Control-plane VMs are protected (components/vsphere/node_pool.py); pulumi refuses a protected delete only in
    the VM's own step, after the drain, etcd member removal and uninstall (pulumi pkg/resource/deploy/step.go)."""
    cp = section("controlPlane")
    swapped = {**cp, "nodes": {"cp-2": "10.20.0.12", "cp-3": "10.20.0.13", "cp-5": "10.20.0.15"}}
    assert problems(controlPlane=swapped) == [protected("cp-4")]
    accepted = config_of(controlPlane=swapped, deployedState={"accept": ["controlPlane.nodes.cp-4"]})
    assert guards.check(accepted, DEPLOYED, csi_cluster_id=CSI_ID) == []
    assert guards.unused_acceptances(accepted, DEPLOYED) == []
    # Left in place after the update (cp-4 is no longer deployed), the entry is named as accepting nothing.
    assert guards.unused_acceptances(accepted, deployed_as(accepted)) == [
        "cht-hosting:deployedState.accept: 'controlPlane.nodes.cp-4' accepts nothing in this update (no deployed "
        "server cp-4 leaves); remove it"
    ]
    # An agent is not protected: it leaves without any of this.
    agents = section("agents")
    assert problems(agents={**agents, "nodes": {"agent-1": "10.20.0.21"}}, capacity={"spareAgents": 0, "onShortfall": "warn"}) == []


def test_a_server_cannot_be_accepted_under_another_key():
    with pytest.raises(Exception, match="cannot be accepted"):
        config_of(deployedState={"accept": ["controlPlane.nodes.cp-4; reboot"]})


def test_node_address_changed():
    agents = section("agents")
    assert problems(agents={**agents, "nodes": {**agents["nodes"], "agent-1": "10.20.0.31"}}) == [
        "cht-hosting:agents.nodes.agent-1: node agent-1 is deployed at 10.20.0.21, this config has 10.20.0.31; the "
        "VM keeps the address it was built with (cloud-init runs once), so the cluster would lose it. Keep "
        "10.20.0.21, or replace the node (docs/runbooks/replace-node.md)"
    ]


def test_node_role_changed():
    agents, cp = section("agents"), section("controlPlane")
    moved = problems(
        agents={**agents, "nodes": {"agent-2": "10.20.0.22"}},
        controlPlane={**cp, "nodes": {"cp-2": "10.20.0.12", "cp-3": "10.20.0.13", "agent-1": "10.20.0.21"}},
        capacity={"spareAgents": 0, "onShortfall": "warn"},
    )
    assert moved[0].startswith("cht-hosting:controlPlane.nodes.agent-1: node agent-1 is deployed as an agent;")


def test_hardware_version_and_disk_lowered():
    vsphere, agents = section("vsphere"), section("agents")
    assert problems(vsphere={**vsphere, "hardwareVersion": 17}) == [
        f"cht-hosting:vsphere.hardwareVersion: node {n} runs hardware version 19, this config has 17; a VM's "
        "hardware version cannot be lowered. Keep 19 or higher"
        for n in ("cp-2", "cp-3", "cp-4", "agent-1", "agent-2", "agent-3", "agent-4")
    ]
    assert problems(agents={**agents, "diskGb": 60}) == [
        f"cht-hosting:agents.diskGb: node {n} has a 80 GB disk deployed, this config has 60; vSphere never shrinks "
        "a disk. Keep 80 or more"
        for n in ("agent-1", "agent-2", "agent-3", "agent-4")
    ]
    assert problems(vsphere={**vsphere, "hardwareVersion": 20}, agents={**agents, "diskGb": 100}) == []


def test_pod_and_service_networks_are_fixed_once_deployed():
    k3s = section("k3s")
    assert problems(k3s={**k3s, "clusterCidr": "10.52.0.0/16"}) == [
        "cht-hosting:k3s.clusterCidr: 10.42.0.0/16 deployed, this config has 10.52.0.0/16; k3s fixes the pod and "
        "service networks when the cluster is created (each node's pod range, every Service's address, CoreDNS's), "
        "and the county NetworkPolicies would leave the wrong network out. Keep 10.42.0.0/16; other networks need a "
        "new cluster, the counties moved to it by backup and restore (docs/runbooks/restore-county.md)"
    ]
    assert problems(k3s={**k3s, "serviceCidr": "10.53.0.0/16"})[0].startswith(
        "cht-hosting:k3s.serviceCidr: 10.43.0.0/16 deployed, this config has 10.53.0.0/16;"
    )
    # A state recorded before the networks were is not refused for them.
    legacy = DEPLOYED.model_copy(update={"cluster_cidr": None, "service_cidr": None})
    assert guards.check(config_of(k3s={**k3s, "clusterCidr": "10.52.0.0/16"}), legacy, csi_cluster_id=CSI_ID) == []


def test_the_nodes_admin_user_is_fixed_once_deployed():
    assert problems(ssh={**section("ssh"), "user": "opsadmin"}) == [
        "cht-hosting:ssh.user: 'chtadmin' deployed, this config has 'opsadmin'; cloud-init created the nodes' admin "
        "user once, when each VM was built, so the program could no longer log in to configure, restart or remove "
        "k3s. Keep 'chtadmin'"
    ]
    legacy = DEPLOYED.model_copy(update={"ssh_user": None})
    assert guards.check(config_of(ssh={**section("ssh"), "user": "opsadmin"}), legacy, csi_cluster_id=CSI_ID) == []


def test_cluster_mode_changed():
    existing = config_of(
        clusterMode="existing", existingCluster={"storageClass": "local-path"}, vsphere=None, network=None,
        controlPlane=None, agents=None, ssh=None, k3s=None, cpi=None, csi=None, vsphereStoragePassword=None, capacity=None,
    )
    assert guards.check(existing, DEPLOYED) == [
        "cht-hosting:clusterMode: vsphere-k3s is deployed, this config has existing; the update would delete "
        "everything the other mode built (VMs, volumes, counties). Keep clusterMode: vsphere-k3s, and build the "
        "other mode in a stack of its own"
    ]


def test_all_problems_at_once():
    found = problems(
        counties=counties(nairobi={"couchdbNodes": 1}, nakuru={"couchdbStorageGb": 10}),
        k3s={**section("k3s"), "version": "v1.35.0+k3s1"},
        csi_cluster_id="x",
    )
    assert [p.split(":")[1] for p in found] == [
        "counties.nakuru.couchdbStorageGb", "counties.nairobi.couchdbNodes", "k3s.version", "csi.clusterId"
    ]


def test_legacy_outputs_remember_counties():
    legacy = deployed_state.parse(
        {"counties": {"kisumu": {"url": "https://k", "version": "4.22.0", "couchdbNodes": 1, "couchdbStorageGb": 100,
                                 "cpu": 2, "memoryGb": 8}}, "csiClusterId": CSI_ID},
        "o/p/s",
    )
    assert guards.check(config_of(counties=counties(kisumu={"couchdbNodes": 3})), legacy, csi_cluster_id=CSI_ID)[0].startswith(
        "cht-hosting:counties.kisumu.couchdbNodes: 1 CouchDB node(s) deployed"
    )


@pytest.mark.parametrize(
    "edit", [{"k3sVersion": "garbage"}, {"counties": {"kisumu": {"couchdbNodes": 1, "couchdbStorageGb": 100, "version": "5.x"}}}]
)
def test_a_deployed_state_with_versions_this_program_never_wrote_is_refused_not_a_traceback(edit):
    state = {**deployed_state.snapshot(BASE, etcd_seed="cp-2", csi_cluster_id=CSI_ID), **edit}
    with pytest.raises(deployed_state.ConfigError, match="is not one this program wrote"):
        deployed_state.parse({"deployedState": state}, "o/p/s")


def test_a_deployed_state_from_a_newer_program_is_refused():
    with pytest.raises(Exception, match="newer cht-hosting"):
        deployed_state.parse({"deployedState": {"schema": 99}}, "o/p/s")


# --- through the program: the StackReference read, before any registration ------------------------------


def _outputs(tmp_path) -> dict:
    evaluation, _ = plan.run(STACK, stack_dir=STACKS)
    return json.loads(json.dumps(evaluation.outputs, default=str))


def test_program_refuses_before_registering_and_accepts_on_a_first_deploy(tmp_path):
    outputs = _outputs(tmp_path)
    nodes = {"cht-hosting:counties": {**counties(), "nairobi": {"couchdbNodes": 1}}}
    with pytest.raises(ProgramFailed) as refused:
        plan.run(STACK, overrides=nodes, stack_dir=STACKS, deployed=outputs)
    assert "cht-hosting:counties.nairobi.couchdbNodes: 3 CouchDB node(s) deployed" in refused.value.message
    assert "Traceback" not in refused.value.message
    evaluation, _ = plan.run(STACK, overrides=nodes, stack_dir=STACKS)  # a first deploy
    assert evaluation.outputs["deployedState"]["counties"]["nairobi"]["couchdbNodes"] == 1


def test_cli_checks_a_pull_request_against_production(tmp_path, capsys):
    deployed = tmp_path / "prod.json"
    deployed.write_text(json.dumps(_outputs(tmp_path)))
    assert plan.main(["guarded", "--stack-dir", str(STACKS), "--deployed", str(deployed)]) == 0
    (tmp_path / "Pulumi.guarded.yaml").write_text(
        (STACKS / "Pulumi.guarded.yaml").read_text().replace("nakuru: {couchdbStorageGb: 200}", "nakuru: {}")
    )
    assert plan.main(["guarded", "--stack-dir", str(tmp_path), "--deployed", str(deployed)]) == 2
    assert "cht-hosting:counties.nakuru.couchdbStorageGb: 200 GB deployed, this config has 100" in capsys.readouterr().err


def test_every_procedure_a_guard_names_is_a_docs_page_and_section():
    import re

    docs = Path(__file__).parent.parent / "docs"
    source = Path(guards.__file__).read_text()
    assert set(re.findall(r"procedure\('([^']+)'\)", source)) == set(guards.PROCEDURES)  # each one used
    for page, section in guards.PROCEDURES.values():
        assert (docs / page).is_file(), page
        headings = re.findall(r"^#+ (.+)$", (docs / page).read_text(), re.M)
        assert section is None or section in headings, (page, section)


def test_the_stack_reads_itself_by_organization_project_and_stack(monkeypatch):
    import pulumi

    read = []

    class Recording(pulumi.StackReference):
        def __init__(self, name, stack_name=None, opts=None):
            read.append(stack_name)
            super().__init__(name, stack_name, opts)

    monkeypatch.setattr(pulumi, "StackReference", Recording)
    plan.run(STACK, stack_dir=STACKS)
    plan.run(STACK, overrides={"cht-hosting:deployedState": {"organization": "moh-kenya"}}, stack_dir=STACKS)
    # A self-managed backend reports the organization `organization`; a configured one wins.
    assert read == ["organization/cht-hosting/guarded", "moh-kenya/cht-hosting/guarded"]


def test_a_migrated_countys_couchdb_user_comes_from_its_credentials():
    secure = {k: {"secure": f"v1:{k}"} for k in ("user", "password", "secret", "uuid")}
    migrated = config_of(
        counties=counties(kisumu={"couchdbUser": "admin", "migration": {"volumes": [{"volumeHandle": "fcd-1"}]}}),
        migratedCredentials={"kisumu": secure},
    )
    assert guards.check(migrated, DEPLOYED, csi_cluster_id=CSI_ID) == []
