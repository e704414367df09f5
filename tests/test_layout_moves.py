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


def test_county_backup_under_its_project_keeps_every_deployed_resource():
    """The county's Schedule moves under its ChtProject; only the empty CountyBackup components that held it
    leave the state (a component's delete is a state entry, nothing in the cluster)."""
    evaluation, _ = plan.run("backup", stack_dir=STACKS)
    deleted, created = _taken(evaluation, _recorded("backup-ad19a31.urns"))
    schedules = evaluation.of_type("kubernetes:velero.io/v1:Schedule")
    counties = {s.name.removesuffix("-backup-schedule") for s in schedules}
    assert {urns.parts(u)[2:] for u in deleted} == {("cht-hosting:backup:CountyBackup", f"{c}-backup") for c in counties}
    assert created == set()
    assert schedules and all(evaluation.by_urn[s.parent].type == "cht-hosting:cht:ChtProject" for s in schedules)


def test_without_the_alias_the_county_backups_would_be_replaced():
    """The matching is not vacuous: without the alias, each Schedule is deleted and created anew."""
    evaluation, _ = plan.run("backup", stack_dir=STACKS)
    stripped = dataclasses.replace(
        evaluation, registrations=[dataclasses.replace(r, aliases=()) for r in evaluation.registrations]
    )
    deleted, created = _taken(stripped, _recorded("backup-ad19a31.urns"))
    counties = {s.name.removesuffix("-backup-schedule") for s in evaluation.of_type("kubernetes:velero.io/v1:Schedule")}
    assert {urns.parts(u)[3] for u in deleted} == {f"{c}-backup{s}" for c in counties for s in ("", "-schedule")}
    assert len(created) == len(deleted)
