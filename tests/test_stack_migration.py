"""The migration from one stack to a platform stack and county stacks (docs/runbooks/move-stacks.md), on the
mock engine: the single stack's state, moved with `pulumi state move` as offline/urns.py models it, is what the
split program registers, so `pulumi up` on each stack has nothing to create, replace or delete.

The single stack is the national example (tests/stacks/Pulumi.national.yaml); the split is tests/stacks/split/
with the platform stack named like the single stack (`national`), as the runbook keeps it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from offline import plan, stackfile, urns

STACKS = Path(__file__).parent / "stacks"


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> Path:
    """tests/stacks/split/ with its platform stack `nation` renamed `national` (the single stack's name)."""
    folder = tmp_path_factory.mktemp("split")
    for f in (STACKS / "split").glob("Pulumi.*.yaml"):
        name = f.name.replace("Pulumi.nation", "Pulumi.national")
        text = f.read_text().replace("platform: nation\n", "platform: national\n").replace("- nation-counties", "- national-counties")
        (folder / name).write_text(text)
    return folder


def _county_stacks(folder: Path) -> dict[str, list[str]]:
    listed = stackfile.raw(stackfile.load("national", root=folder))[0]["stacks"]["counties"]
    return {s: list(stackfile.raw(stackfile.load(s, root=folder))[0]["counties"]) for s in listed}


@pytest.fixture(scope="module")
def single():
    """The single stack as deployed: its update after the first (the cluster exists, its seed is remembered)."""
    first = plan.run("national", stack_dir=STACKS)[0]
    return plan.run("national", stack_dir=STACKS, deployed=first.outputs)[0]


def _inputs(evaluation) -> dict[str, dict]:
    return {r.urn: r.registration.inputs for r in urns.engine_urns(evaluation)}


def test_state_move_then_up_creates_replaces_and_deletes_nothing(single, split):
    before = urns.engine_urns(single)
    before_inputs = {r.urn: r.registration.inputs for r in before}
    stacks = _county_stacks(split)
    remaining = dict(before_inputs)
    references = {}
    for stack, counties in stacks.items():
        projects = [r.urn for r in before if r.registration.type == "cht-hosting:cht:ChtProject" and r.registration.name in counties]
        moved = urns.state_move(before, projects, stack)
        for old in moved:
            if not old.split("::")[-2].startswith(urns.PROVIDER_PREFIX) and "$pulumi:providers:" not in old:
                remaining.pop(old, None)
        # The county stack's program, on the platform's outputs, registers exactly what was moved into it.
        platform_outputs = single.outputs
        county = plan.run(stack, stack_dir=split, references={"national": platform_outputs})[0]
        registered = _inputs(county)
        assert set(registered) == set(moved.values()), stack
        for old, new in moved.items():
            assert registered[new] == before_inputs[old], new
        references[stack] = county.outputs
    # The platform stack, against the single stack's deployed state, once every county stack holds its counties.
    platform = plan.run("national", stack_dir=split, deployed=single.outputs, references=references)[0]
    registered = _inputs(platform)
    assert set(registered) == set(remaining)
    changed = sorted(u for u in registered if registered[u] != remaining[u])
    assert changed == [], changed[:5]
    assert not platform.of_type("cht-hosting:backup:FinalCountyBackup")


def test_the_move_model_takes_children_and_copies_providers(single):
    before = urns.engine_urns(single)
    project = next(r for r in before if r.registration.type == "cht-hosting:cht:ChtProject" and r.registration.name == "kwale")
    moved = urns.state_move(before, [project.urn], "dest")
    subtree = [
        r for r in before
        if r.urn == project.urn
        or (r.urn.split("::")[2].startswith("cht-hosting:cht:ChtProject$") and r.registration.name.startswith("kwale-"))
    ]
    assert len(moved) == len(subtree) + 1  # and the copied provider
    assert "urn:pulumi:dest::cht-hosting::pulumi:providers:kubernetes::k3s-k8s" in moved.values()
