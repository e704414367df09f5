"""A release that changes where resources sit must take over every deployed resource: no delete, no create.

The deployed side is a recorded list of engine URNs (tests/stacks/state/*.urns, what `pulumi stack --show-urns`
lists for the stack as an earlier release deployed it); the current program's registrations are matched to them
the way the engine does (offline/urns.py, following pulumi v3.259.0 step_generator.go).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from offline import plan, urns

STACKS = Path(__file__).parent / "stacks"


def _recorded(name: str) -> set[str]:
    lines = (STACKS / "state" / name).read_text().splitlines()
    return {line for line in lines if line and not line.startswith("#")}


def _taken(evaluation, olds: set[str]) -> tuple[set[str], set[str]]:
    """(old URNs nobody takes: deleted, new URNs taking nothing: created)."""
    resources = urns.engine_urns(evaluation)
    taken = urns.matches(resources, olds, evaluation.stack)
    return olds - set(taken.values()), {r.urn for r in resources} - set(taken)


# What issue 24's merges replace, per county (CHANGELOG.md): the empty components and the objects whose flows or
# scrapes now live in one merged object. Nothing else may leave or arrive.
MERGED_AWAY = {
    ("cht-hosting:backup:CountyBackup", "{c}-backup"),
    ("cht-hosting:monitoring:CountyMonitoring", "{c}-monitoring"),
    ("kubernetes:monitoring.coreos.com/v1:Probe", "{c}-monitoring-probe"),
    ("kubernetes:monitoring.coreos.com/v1:ServiceMonitor", "{c}-monitoring-express-metrics"),
    ("kubernetes:monitoring.coreos.com/v1:PrometheusRule", "{c}-monitoring-rules"),
    ("kubernetes:networking.k8s.io/v1:NetworkPolicy", "{c}-monitoring-netpol"),
    ("kubernetes:networking.k8s.io/v1:NetworkPolicy", "{c}-netpol-same-namespace-only"),
    ("kubernetes:networking.k8s.io/v1:NetworkPolicy", "{c}-netpol-egress-dns-and-own-pods"),
    ("kubernetes:networking.k8s.io/v1:NetworkPolicy", "{c}-netpol-api-from-ingress-controller"),
    ("kubernetes:networking.k8s.io/v1:NetworkPolicy", "{c}-netpol-egress-api-sentinel-outside"),
    # The server list is plain env of its readers; traefik's transport is the platform's one.
    ("kubernetes:core/v1:ConfigMap", "{c}-couchdb-servers"),
    ("kubernetes:traefik.io/v1alpha1:ServersTransport", "{c}-api-transport"),
    # With upgrades: config (these counties) the healthcheck runs in the haproxy pod (a workload of no data).
    ("kubernetes:apps/v1:Deployment", "{c}-healthcheck-deployment"),
    ("kubernetes:core/v1:Service", "{c}-healthcheck-service"),
}
MERGED_INTO = {
    ("kubernetes:networking.k8s.io/v1:NetworkPolicy", "{c}-netpol-isolation"),
    ("kubernetes:networking.k8s.io/v1:NetworkPolicy", "{c}-netpol-api-and-sentinel"),
}
SHARED_NEW = {
    ("kubernetes:traefik.io/v1alpha1:ServersTransport", "api-transport"),
    ("kubernetes:monitoring.coreos.com/v1:Probe", "monitoring-county-probe"),
    ("kubernetes:monitoring.coreos.com/v1:ServiceMonitor", "monitoring-county-express-metrics"),
    ("kubernetes:monitoring.coreos.com/v1:PrometheusRule", "monitoring-cht-counties-rules"),
}

# A command per node VM, new since ad19a31 (a pool's VMs change one at a time: components/vsphere/node_pool.py).
VM_BACK = "command:remote:Command"


def _shared_new(evaluation) -> set[tuple[str, str]]:
    vm_backs = {(VM_BACK, r.name) for r in evaluation.of_type(VM_BACK) if r.name.endswith("-vm-back")}
    return SHARED_NEW | vm_backs


def _kinds(found: set[str]) -> set[tuple[str, str]]:
    return {(urns.parts(u)[2].split("$")[-1], urns.parts(u)[3]) for u in found}


def test_a_state_of_ad19a31_keeps_everything_but_what_the_merges_replace():
    """The Schedule moves under its ChtProject (aliases); what `pulumi up` deletes is exactly the merged-away
    objects (none holds data: no volume, credentials, random value, CouchDB workload or Schedule), and it creates
    only what they were merged into."""
    evaluation, _ = plan.run("backup", stack_dir=STACKS)
    deleted, created = _taken(evaluation, _recorded("backup-ad19a31.urns"))
    schedules = evaluation.of_type("kubernetes:velero.io/v1:Schedule")
    counties = {s.name.removesuffix("-backup-schedule") for s in schedules}
    assert _kinds(deleted) == {(t, n.format(c=c)) for c in counties for t, n in MERGED_AWAY}
    assert _kinds(created) == {(t, n.format(c=c)) for c in counties for t, n in MERGED_INTO} | _shared_new(evaluation)
    assert schedules and all(evaluation.by_urn[s.parent].type == "cht-hosting:cht:ChtProject" for s in schedules)


def test_a_state_of_d556a29_moves_its_schedules_too():
    """The release between (d556a29: CountyBackup under the county's ChtProject) is taken over the same way."""
    evaluation, _ = plan.run("backup", stack_dir=STACKS)
    schedules = evaluation.of_type("kubernetes:velero.io/v1:Schedule")
    counties = {s.name.removesuffix("-backup-schedule") for s in schedules}
    olds = set()
    for urn in _recorded("backup-ad19a31.urns"):
        stack, project, qualified, name = urns.parts(urn)
        if qualified.startswith("cht-hosting:backup:CountyBackup"):
            qualified = f"cht-hosting:cht:ChtProject${qualified}"
        olds.add(urns.make(stack, project, qualified, name))
    deleted, created = _taken(evaluation, olds)
    assert ("cht-hosting:cht:ChtProject$cht-hosting:backup:CountyBackup", "kwale-backup") in {
        urns.parts(u)[2:] for u in deleted}
    assert _kinds(deleted) == {(t, n.format(c=c)) for c in counties for t, n in MERGED_AWAY}
    assert _kinds(created) == {(t, n.format(c=c)) for c in counties for t, n in MERGED_INTO} | _shared_new(evaluation)


def test_without_the_alias_the_county_backups_would_be_replaced():
    """The matching is not vacuous: without the alias, each Schedule is deleted and created anew."""
    evaluation, _ = plan.run("backup", stack_dir=STACKS)
    stripped = dataclasses.replace(
        evaluation, registrations=[dataclasses.replace(r, aliases=()) for r in evaluation.registrations]
    )
    deleted, created = _taken(stripped, _recorded("backup-ad19a31.urns"))
    counties = {s.name.removesuffix("-backup-schedule") for s in evaluation.of_type("kubernetes:velero.io/v1:Schedule")}
    merged_away = {n.format(c=c) for c in counties for _, n in MERGED_AWAY}
    assert {urns.parts(u)[3] for u in deleted} - merged_away == {f"{c}-backup-schedule" for c in counties}
    assert {urns.parts(u)[3] for u in created} - {n.format(c=c) for c in counties for _, n in MERGED_INTO} - {
        n for _, n in _shared_new(evaluation)} == {f"{c}-backup-schedule" for c in counties}
