"""The plan against a deployed state begins with what changes and what to do outside Pulumi.

Two levels: `offline.changes` on deployed-state fixtures (pure, fast), and the whole plan of an edited copy of
a test stack of its own (tests/stacks/Pulumi.changes.yaml) against that stack's own outputs.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from offline import changes, plan
from tests.conftest import STACKS

STACK = "changes"

# --- fixtures: what a deployed stack's outputs hold (the keys `pulumi stack output --json` prints) ----------

EDGE = """stream {
    map $ssl_preread_server_name $backend {
        kisumu.example.org  traefik;  # kisumu
        nakuru.example.org  traefik;  # nakuru
    }
    upstream traefik {
        server 10.20.0.21:30443;
        server 10.20.0.22:30443;
    }
}
"""


def _deployed() -> dict:
    counties = {
        "kisumu": {"couchdbNodes": 1, "couchdbStorageGb": 100, "couchdbUser": "medic", "version": "4.22.0"},
        "nakuru": {"couchdbNodes": 1, "couchdbStorageGb": 200, "couchdbUser": "medic", "version": "4.22.0"},
    }
    nodes = {
        "cp-1": {"role": "server", "address": "10.20.0.11", "hardwareVersion": 19, "diskGb": 50},
        "agent-1": {"role": "agent", "address": "10.20.0.21", "hardwareVersion": 19, "diskGb": 80},
        "agent-2": {"role": "agent", "address": "10.20.0.22", "hardwareVersion": 19, "diskGb": 80},
    }
    return {
        "deployedState": {"schema": 1, "counties": counties, "nodes": nodes, "k3sVersion": "v1.35.2+k3s1",
                          "secretsEncryption": True, "etcdSeed": "cp-1", "csiClusterId": "cht-hosting-test"},
        "counties": {
            name: {"url": f"https://{name}.example.org", "version": "4.22.0", "couchdbNodes": 1,
                   "couchdbStorageGb": c["couchdbStorageGb"], "cpu": 2.0, "memoryGb": 8.0}
            for name, c in counties.items()
        },
        "edgeNginxConfig": EDGE,
        "watchdogTargets": "".join(f"- targets:\n  - https://{n}.example.org\n" for n in counties),
    }


def _with_county(outputs: dict, name: str, storage: int = 100) -> None:
    outputs["deployedState"]["counties"][name] = {
        "couchdbNodes": 1, "couchdbStorageGb": storage, "couchdbUser": "medic", "version": "4.22.0"
    }
    outputs["counties"][name] = {"url": f"https://{name}.example.org", "version": "4.22.0", "couchdbNodes": 1,
                                 "couchdbStorageGb": storage, "cpu": 2.0, "memoryGb": 8.0}
    outputs["edgeNginxConfig"] = outputs["edgeNginxConfig"].replace(
        "    }\n    upstream", f"        {name}.example.org  traefik;  # {name}\n    }}\n    upstream"
    )
    outputs["watchdogTargets"] += f"- targets:\n  - https://{name}.example.org\n"


def test_nothing_deployed_is_a_first_update():
    summary = changes.summarize({}, _deployed())
    assert summary.first_update
    assert changes.lines(summary, "prod.json") == [
        "Changes: nothing deployed in prod.json (no deployedState): this plan is a first update."
    ]


def test_the_same_outputs_change_nothing():
    assert changes.lines(changes.summarize(_deployed(), _deployed()), "prod.json") == [
        "Changes against what is deployed (prod.json):",
        "  none: `pulumi up` would change nothing the outputs show.",
    ]


def test_a_restart_alone_is_a_change():
    # A node's k3s configuration that changes restarts k3s there, even when no other output changes (e.g. the
    # seed's first update after the cluster exists): the summary never says "none" over a restart.
    was, now = _deployed(), _deployed()
    was["deployedState"]["nodes"]["cp-1"]["k3sConfig"] = "0" * 16
    now["deployedState"]["nodes"]["cp-1"]["k3sConfig"] = "1" * 16
    lines = changes.lines(changes.summarize(was, now), "prod.json")
    assert "  none: `pulumi up` would change nothing the outputs show." not in lines
    assert any(line.startswith("    k3s on cp-1 (its configuration changed)") for line in lines)


def test_a_fleet_wide_edit_reads_as_one_line_per_change_not_one_per_county():
    # A new CHT release for every county: one line saying what, naming every county it applies to, not the same
    # line per county (issue 25: repetition collapsed). Changes that differ per county stay lines of their own.
    now = _deployed()
    for county in now["counties"]:
        now["deployedState"]["counties"][county]["version"] = now["counties"][county]["version"] = "4.23.0"
    now["counties"]["kisumu"]["url"] = "https://kisumu.health.example.org"
    now["counties"]["nakuru"]["url"] = "https://nakuru.health.example.org"
    lines = changes.lines(changes.summarize(_deployed(), now), "x")
    assert "  Counties changed (2):" in lines
    assert "    kisumu: version 4.22.0 -> 4.23.0; url https://kisumu.example.org -> https://kisumu.health.example.org" in lines
    assert "  What restarts (2):" in lines
    assert "    kisumu, nakuru: its pods, one Deployment at a time (new CHT images)" in lines
    assert (
        "    1. kisumu, nakuru: give it a certificate for its new host (TLS Secret in its namespace) and point the new "
        "DNS name at the edge proxies"
    ) in lines
    del now["counties"]["kisumu"]["url"], now["counties"]["nakuru"]["url"]
    now["counties"]["kisumu"]["url"], now["counties"]["nakuru"]["url"] = "https://kisumu.example.org", "https://nakuru.example.org"
    assert "    kisumu, nakuru: version 4.22.0 -> 4.23.0" in changes.lines(changes.summarize(_deployed(), now), "x")


def test_an_added_county_asks_for_its_certificate_the_edge_and_watchdog_and_escrow():
    now = _deployed()
    _with_county(now, "homa-bay")
    summary = changes.summarize(_deployed(), now, tls={"homa-bay": None})
    assert summary.counties_added == ["homa-bay"]
    assert not summary.counties_changed and not summary.counties_removed and not summary.grows
    text = "\n".join(changes.lines(summary, "prod.json"))
    assert "  Counties added (1): homa-bay" in text
    assert "kubectl -n homa-bay create secret tls cht-tls" in text
    assert "Reload the edge proxies" in text and "`+ homa-bay.example.org traefik; # homa-bay`" in text
    assert "Refresh Watchdog's targets" in text
    assert "Back up the Pulumi state" in text and "homa-bay's CouchDB credentials" in text
    assert "Refresh the escrow: `pulumi stack output escrow --show-secrets`" in text


def test_a_county_whose_certificate_cert_manager_issues_asks_for_no_secret():
    now = _deployed()
    _with_county(now, "homa-bay")
    summary = changes.summarize(_deployed(), now, tls={"homa-bay": "letsencrypt"})
    assert not any("create secret tls" in step for step in summary.after)


def test_a_grown_volume_grows_in_place_and_restarts_nothing():
    now = _deployed()
    now["deployedState"]["counties"]["kisumu"]["couchdbStorageGb"] = 300
    now["counties"]["kisumu"]["couchdbStorageGb"] = 300
    summary = changes.summarize(_deployed(), now)
    assert summary.counties_changed == {"kisumu": ["couchdbStorageGb 100 -> 300"]}
    assert summary.grows == [
        "kisumu: 1 CouchDB volume 100 -> 300 GB (the CSI driver grows the disk and its file system online; "
        "CouchDB keeps running)"
    ]
    assert summary.restarts == [] and summary.after == []
    assert "  Volumes that grow in place (1):" in changes.lines(summary, "x")


def test_a_budget_or_version_change_restarts_the_countys_pods():
    now = _deployed()
    now["counties"]["nakuru"].update(cpu=4.0)
    now["counties"]["kisumu"]["version"] = now["deployedState"]["counties"]["kisumu"]["version"] = "4.23.0"
    summary = changes.summarize(_deployed(), now)
    assert summary.counties_changed == {"kisumu": ["version 4.22.0 -> 4.23.0"], "nakuru": ["cpu 2.0 -> 4.0"]}
    assert summary.restarts == [
        "kisumu: its pods, one Deployment at a time (new CHT images)",
        "nakuru: its pods, one Deployment at a time (new requests and limits (budget))",
    ]


def test_a_switch_of_upgrades_mode_restarts_haproxy_with_or_without_its_healthcheck():
    was = _deployed()
    was["deployedState"]["counties"]["kisumu"]["upgrades"] = "config"
    now = _deployed()
    now["deployedState"]["counties"]["kisumu"]["upgrades"] = "admin-app"
    now["deployedState"]["counties"]["nakuru"]["upgrades"] = "config"  # recorded for the first time: no change
    summary = changes.summarize(was, now)
    assert summary.counties_changed == {"kisumu": ["upgrades config -> admin-app"]}
    assert summary.restarts == [
        "kisumu: its pods, one Deployment at a time (the upgrade service comes or goes, the healthcheck leaves or "
        "joins the haproxy pod)"
    ]


def test_a_removed_county_keeps_its_data_and_leaves_the_edge():
    now = _deployed()
    del now["deployedState"]["counties"]["nakuru"], now["counties"]["nakuru"]
    now["edgeNginxConfig"] = EDGE.replace("        nakuru.example.org  traefik;  # nakuru\n", "")
    lines = changes.lines(changes.summarize(_deployed(), now), "x")
    assert "  Counties removed (1): nakuru" in lines
    assert "    (their namespaces, volumes and credentials are kept)" in lines
    assert not any("final" in line for line in lines)  # no backups deployed: no final backup is taken
    assert any(line.strip().startswith("1. Reload the edge proxies") for line in lines)
    # Its volumes are protected in the state: without lifting that first, `pulumi up` stops at the first of
    # them once the county's workloads are gone (docs/runbooks/remove-county.md, steps 1-2).
    assert changes.summarize(_deployed(), now).before == [
        "nakuru: lift the protection of its volumes (`pulumi state unprotect` each URN that "
        "`pulumi stack --show-urns | grep '::nakuru-'` lists: its PVCs and PVs); else `pulumi up` stops at the first "
        "of them once the county's workloads are deleted (docs/runbooks/remove-county.md)"
    ]


def test_a_removed_county_with_backups_keeps_its_final_backup_until_an_operator_deletes_it():
    # The update that removes a backed-up county takes velero/county-<name>-final, kept 100 years (__main__.py,
    # components/backup/county.py FinalCountyBackup); the plan said its backups "stay until they expire".
    was, now = _deployed(), _deployed()
    for outputs in (was, now):
        outputs["backup"] = {"counties": {c: {"schedule": f"county-{c}"} for c in ("kisumu", "nakuru")}}
    del now["deployedState"]["counties"]["nakuru"], now["counties"]["nakuru"], now["backup"]["counties"]["nakuru"]
    lines = changes.lines(changes.summarize(was, now), "x")
    assert (
        "    nakuru: backed up a last time first, velero/county-nakuru-final (kept until an operator deletes it); its "
        "scheduled backups expire after their retention (docs/backups.md#a-removed-county)"
    ) in lines
    assert not any("until they expire" in line for line in lines)


def test_a_vm_resize_says_which_vms_power_off():
    # The node VMs have no CPU or memory hot add (components/vsphere/node_pool.py), so the vSphere provider
    # shuts a VM down to change either; the plan said nothing changes for agents.cpus or agents.memoryGb.
    was, now = _deployed(), _deployed()
    for outputs, (cpus, memory) in ((was, (48, 192)), (now, (64, 256))):
        for node in ("agent-1", "agent-2"):
            outputs["deployedState"]["nodes"][node].update(cpus=cpus, memoryGb=memory)
    lines = changes.lines(changes.summarize(was, now), "x")
    assert "    agent-1, agent-2: cpus 48 -> 64; memoryGb 192 -> 256" in lines
    assert (
        "    agent-1, agent-2: its VM (vSphere changes its CPUs or memory while it is off; one VM of its pool at a "
        "time, each healthy again (Node Ready; a server's API and etcd) before the next, not drained)" in lines
    )
    assert "  none: `pulumi up` would change nothing the outputs show." not in lines


def test_a_hardware_version_upgrade_says_why_its_vms_power_off_once():
    # vSphere upgrades a VM's hardware version only while it is off; with a resize in the same edit the plan
    # names one reason per VM, the first that applies (offline/changes.py _VM_OFF_FOR).
    was, now = _deployed(), _deployed()
    now["deployedState"]["nodes"]["agent-1"].update(hardwareVersion=21, cpus=64)
    was["deployedState"]["nodes"]["agent-1"].update(cpus=48)
    lines = changes.lines(changes.summarize(was, now), "x")
    vm_lines = [line for line in lines if "its VM (" in line]
    assert vm_lines == [
        "    agent-1: its VM (vSphere upgrades the hardware version while it is off; one VM of its pool at a time, "
        "each healthy again (Node Ready; a server's API and etcd) before the next, not drained)"
    ]


def test_an_added_agent_asks_to_reload_the_edge_proxies():
    now = _deployed()
    now["deployedState"]["nodes"]["agent-3"] = {"role": "agent", "address": "10.20.0.23", "hardwareVersion": 19, "diskGb": 80}
    now["edgeNginxConfig"] = EDGE.replace("        server 10.20.0.22:30443;\n", "        server 10.20.0.22:30443;\n        server 10.20.0.23:30443;\n")
    summary = changes.summarize(_deployed(), now)
    assert summary.nodes_added == ["agent-3"] and summary.before == []
    assert summary.after[0].startswith("Reload the edge proxies") and "`+ server 10.20.0.23:30443;`" in summary.after[0]
    assert "the host keys of agent-3" in summary.after[-1]


def test_a_removed_agent_leaves_the_edge_before_it_drains():
    now = _deployed()
    del now["deployedState"]["nodes"]["agent-2"]
    now["edgeNginxConfig"] = EDGE.replace("        server 10.20.0.22:30443;\n", "")
    summary = changes.summarize(_deployed(), now)
    assert summary.nodes_removed == ["agent-2"] and summary.after == []
    assert summary.before[0].startswith("Reload the edge proxies") and "agents leaving (agent-2)" in summary.before[0]
    lines = changes.lines(summary, "x")
    assert lines.index("  Before `pulumi up` (1):") < len(lines)


def test_a_k3s_step_is_a_platform_change_that_upgrades_every_node():
    now = _deployed()
    now["deployedState"]["k3sVersion"] = "v1.36.1+k3s1"
    summary = changes.summarize(_deployed(), now)
    assert summary.platform == ["k3s v1.35.2+k3s1 -> v1.36.1+k3s1"]
    assert summary.restarts[0].startswith("every node's k3s, one node at a time")
    assert summary.nodes_changed == {}


def test_any_other_output_that_changes_is_named():
    now = _deployed()
    now["capacityReport"] = "Agents: 3\nFits.\n"
    summary = changes.summarize({**_deployed(), "capacityReport": "Agents: 2\nFits.\n"}, now)
    assert summary.outputs_changed == ["capacityReport"]
    assert changes._line_delta("a:  1\nb: 2\n", "a: 1\nb: 3\n") == " (`+ b: 3`, `- b: 2`)"  # realigned is not changed


# --- the whole plan: a test stack of its own, planned against its own outputs ------------------------------


@pytest.fixture(scope="module")
def deployed() -> dict:
    """What the stack exports once its cluster exists: the second update's outputs (on the first, the etcd seed
    starts the cluster; on every later one it joins through the API endpoint like the other servers)."""
    first, _ = plan.run(STACK, stack_dir=STACKS)
    evaluation, _ = plan.run(STACK, stack_dir=STACKS, deployed=json.loads(json.dumps(first.outputs, default=str)))
    return json.loads(json.dumps(evaluation.outputs, default=str))


def _edited(tmp_path: Path, edit) -> Path:
    document = yaml.safe_load((STACKS / f"Pulumi.{STACK}.yaml").read_text())
    edit(document["config"])
    (tmp_path / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump(document))
    return tmp_path


def test_the_plan_of_an_everyday_edit_begins_with_its_summary(deployed, tmp_path, capsys):
    def edit(config):
        config["cht-hosting:counties"]["homa-bay"] = {}
        config["cht-hosting:counties"]["nakuru"] = {"couchdbStorageGb": 300}
        config["cht-hosting:agents"]["nodes"]["agent-3"] = "10.20.0.23"

    folder = _edited(tmp_path, edit)
    source = tmp_path / "deployed.json"
    source.write_text(json.dumps(deployed))
    out = tmp_path / "plan"
    assert plan.main([STACK, "--stack-dir", str(folder), "--deployed", str(source), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    body = printed.split("\n\n")
    assert body[1].splitlines()[0] == f"Changes against what is deployed ({source}):"
    summary = body[1]
    assert "  Counties added (1): homa-bay" in summary
    assert "    nakuru: couchdbStorageGb 200 -> 300" in summary
    assert "    nakuru: 1 CouchDB volume 200 -> 300 GB" in summary
    assert "  Nodes added (1): agent-3" in summary
    assert "Reload the edge proxies" in summary and "`+ server 10.20.0.23:" in summary
    assert "kubectl -n homa-bay create secret tls cht-tls" in summary
    assert "Counties removed" not in summary and "Nodes removed" not in summary
    # The folder's plan says the same, and the edge config is a file a diff reads line by line.
    assert summary in (out / "plan.txt").read_text()
    edge = (out / "outputs" / "edgeNginxConfig").read_text()
    assert "server 10.20.0.23:" in edge and edge.count("\n") > 5


def test_the_county_list_is_printed_once_and_the_tree_only_when_verbose(deployed, tmp_path, capsys):
    source = tmp_path / "deployed.json"
    source.write_text(json.dumps(deployed))
    assert plan.main([STACK, "--stack-dir", str(STACKS), "--deployed", str(source)]) == 0
    printed = capsys.readouterr().out
    assert "  none: `pulumi up` would change nothing the outputs show." in printed
    # One row per county in one table (the container split groups alike counties; the critical path names one).
    assert [line.split()[0] for line in printed.splitlines() if line.strip()].count("kisumu") == 1
    assert "Component tree:" not in printed and "Resources by type:" not in printed
    assert "cht-hosting:cht:ChtProject x3" in printed
    assert plan.main([STACK, "--stack-dir", str(STACKS), "--verbose"]) == 0
    verbose = capsys.readouterr().out
    assert "Component tree:" in verbose and "Resources by type:" in verbose
    assert "cht-hosting:cht:ChtProject kisumu" in verbose


def test_a_refused_edit_says_so_first_and_exits_2(deployed, tmp_path, capsys):
    folder = _edited(tmp_path, lambda config: config["cht-hosting:counties"].update(nakuru={}))
    source = tmp_path / "deployed.json"
    source.write_text(json.dumps(deployed))
    assert plan.main([STACK, "--stack-dir", str(folder), "--deployed", str(source)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[0] == f"Changes against what is deployed ({source}): refused; nothing would be applied."
    assert "cht-hosting:counties.nakuru.couchdbStorageGb: 200 GB deployed, this config has 100" in err


def test_a_review_folder_stands_for_the_deployed_outputs(deployed, tmp_path, capsys):
    base = tmp_path / "base"
    base.mkdir()
    (base / "outputs.json").write_text(json.dumps(copy.deepcopy(deployed)))
    assert plan.main([STACK, "--stack-dir", str(STACKS), "--deployed", str(base)]) == 0
    assert "  none: `pulumi up` would change nothing the outputs show." in capsys.readouterr().out
