"""A deployment split into a platform stack and county stacks (config/layout.py), on the mock engine.

tests/stacks/split/ is the national example (tests/stacks/Pulumi.national.yaml) as a platform stack `nation`
and four county stacks. What a county stack registers for a county must be what the single stack registers
for it (engine URN modulo the stack name, after `pulumi state move` puts the county at the stack's root, and
inputs), so a move replaces and deletes nothing; a county added to one county stack changes nothing else.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from config import names
from offline import plan, stackfile, urns
from offline.engine import ProgramFailed

STACKS = Path(__file__).parent / "stacks"
SPLIT = STACKS / "split"
COUNTY_STACKS = ("nation-counties-a", "nation-counties-b", "nation-counties-c", "nation-counties-d")


@pytest.fixture(scope="module")
def platform():
    return plan.run("nation", stack_dir=SPLIT)[0]


@pytest.fixture(scope="module")
def county_a(platform):
    return plan.run("nation-counties-a", stack_dir=SPLIT, references={"nation": platform.outputs})[0]


@pytest.fixture(scope="module")
def national():
    return plan.run("national", stack_dir=STACKS)[0]


def _counties(stack: str) -> list[str]:
    return list(stackfile.raw(stackfile.load(stack, root=SPLIT))[0]["counties"])


def _moved(evaluation, county: str) -> dict[str, dict]:
    """The county's resources as `pulumi state move` writes them into a stack named `moved`: its ChtProject
    (and everything under it) by engine URN, with inputs."""
    resources = urns.engine_urns(evaluation)
    project = next(r for r in resources if r.registration.type == "cht-hosting:cht:ChtProject" and r.registration.name == county)
    by_parent: dict[str, list] = {}
    for r in resources:
        by_parent.setdefault(r.parent, []).append(r)
    found, todo = {}, [project]
    while todo:
        r = todo.pop()
        found[urns.with_stack(r.urn, "moved")] = r.registration.inputs
        todo += by_parent.get(r.urn, [])
    return found


def test_every_county_is_in_exactly_one_county_stack_and_the_platform_holds_none(platform, national):
    held = [c for s in COUNTY_STACKS for c in _counties(s)]
    assert sorted(held) == sorted(national.outputs["counties"]) and len(held) == len(set(held))
    assert not platform.of_type("cht-hosting:cht:ChtProject")
    # Capacity still sees every county: the platform's report is the single stack's.
    assert platform.outputs["capacityReport"] == national.outputs["capacityReport"]


def test_a_county_stack_registers_what_the_single_stack_registers_for_its_counties(county_a, national):
    for county in _counties("nation-counties-a"):
        assert _moved(county_a, county) == _moved(national, county), county


def test_a_county_stack_provider_is_the_platform_provider_state_move_copies(platform, county_a):
    """The copy lands at the root (its parent K3sCluster stays): same name, same inputs, so nothing is replaced."""
    copied = platform.named("k3s-k8s")
    own = county_a.named("k3s-k8s")
    assert own.parent.endswith("pulumi:pulumi:Stack::cht-hosting-nation-counties-a") or own.parent == ""
    assert own.inputs == copied.inputs
    assert {r.provider.rsplit("::", 1)[0] for r in county_a.registrations if r.custom and r.provider} == {own.urn}


def test_the_stack_a_county_edit_previews_is_small(platform, county_a, national):
    assert len(county_a.registrations) <= 500
    assert len(platform.registrations) <= 500
    # The single stack a county edit previews otherwise: every county of the nation (bench/budgets.py prints both).
    assert len(national.registrations) > 4 * len(county_a.registrations)


def test_a_county_added_to_a_copy_changes_only_that_county_in_its_stack(tmp_path, platform, county_a):
    for f in SPLIT.glob("Pulumi.*.yaml"):
        (tmp_path / f.name).write_text(f.read_text())
    path = tmp_path / "Pulumi.nation-counties-a.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"]["cht-hosting:counties"]["new-county"] = {}
    path.write_text(yaml.safe_dump(doc))
    after = plan.run("nation-counties-a", stack_dir=tmp_path, references={"nation": platform.outputs})[0]
    before = {r.urn: r.inputs for r in county_a.registrations}
    now = {r.urn: r.inputs for r in after.registrations}
    added = set(now) - set(before)
    assert added and all("new-county" in urn for urn in added)
    assert set(before) <= set(now)
    assert {u: i for u, i in now.items() if u in before} == before
    # The other county stacks see the county (capacity, names) and register nothing new.
    other = plan.run("nation-counties-b", stack_dir=tmp_path, references={"nation": platform.outputs})[0]
    again = plan.run("nation-counties-b", stack_dir=SPLIT, references={"nation": platform.outputs})[0]
    assert {r.urn: r.inputs for r in other.registrations} == {r.urn: r.inputs for r in again.registrations}


def _copy_with(tmp_path, stack: str, edit) -> Path:
    for f in SPLIT.glob("Pulumi.*.yaml"):
        (tmp_path / f.name).write_text(f.read_text())
    path = tmp_path / f"Pulumi.{stack}.yaml"
    doc = yaml.safe_load(path.read_text())
    edit(doc["config"])
    path.write_text(yaml.safe_dump(doc))
    return tmp_path


def test_a_county_in_two_stacks_and_a_platform_key_in_a_county_stack_are_refused_at_once(tmp_path, platform):
    def edit(config):
        config["cht-hosting:counties"]["nairobi"] = {}  # nairobi is in another county stack
        config["cht-hosting:cht"] = {"version": "4.22.0"}

    folder = _copy_with(tmp_path, "nation-counties-a", edit)
    with pytest.raises(ProgramFailed) as failure:
        plan.run("nation-counties-a", stack_dir=folder, references={"nation": platform.outputs})
    message = failure.value.message
    assert failure.value.registered == 0
    assert "cht-hosting:counties.nairobi: is in Pulumi.nation-counties-" in message
    assert "a county belongs to exactly one stack of the deployment" in message
    assert "cht-hosting:cht: a county stack takes it from its platform stack's file Pulumi.nation.yaml" in message


def test_a_county_stack_the_platform_does_not_list_is_refused(tmp_path, platform):
    folder = _copy_with(tmp_path, "nation", lambda config: config["cht-hosting:stacks"]["counties"].remove("nation-counties-d"))
    with pytest.raises(ProgramFailed) as failure:
        plan.run("nation-counties-d", stack_dir=folder, references={"nation": platform.outputs})
    assert "Pulumi.nation.yaml does not list this stack in its stacks.counties; add `nation-counties-d`" in failure.value.message


def test_moving_a_county_out_of_the_platform_stack_before_its_state_moved_is_refused(national):
    """The platform stack deployed nairobi (a single stack before the split); nairobi's county stack has not
    deployed it: `pulumi up` on the platform would delete it, so it is refused, naming the procedure."""
    deployed = {"deployedState": national.outputs["deployedState"]}
    holder = next(s for s in COUNTY_STACKS if "nairobi" in _counties(s))
    with pytest.raises(ProgramFailed) as failure:
        plan.run("nation", stack_dir=SPLIT, deployed=deployed, references={s: {} for s in COUNTY_STACKS})
    assert (
        f"cht-hosting:counties.nairobi: moves from this stack to {holder} (Pulumi.{holder}.yaml), whose deployed state "
        "does not hold it yet" in failure.value.message
    )
    assert "docs/runbooks/move-stacks.md" in failure.value.message


def test_once_the_county_stacks_hold_them_the_platform_takes_no_final_backup(national, platform):
    # The single stack's state, as if it had been named like the platform (the CNS cluster id follows the name).
    deployed = {"deployedState": {**national.outputs["deployedState"], "csiClusterId": "cht-hosting-nation"}}
    references = {}
    for s in COUNTY_STACKS:
        state = dict(national.outputs["deployedState"])
        state["counties"] = {c: v for c, v in state["counties"].items() if c in _counties(s)}
        references[s] = {"deployedState": state}
    evaluation, _ = plan.run("nation", stack_dir=SPLIT, deployed=deployed, references=references)
    assert not evaluation.of_type("cht-hosting:backup:FinalCountyBackup")
    assert evaluation.outputs["deployedState"]["counties"] == {}


def test_an_existing_cluster_splits_the_same_way(tmp_path):
    """Existing-cluster mode: the county stack's provider is the platform's `existing-cluster` (same context,
    same cluster identifier), and its counties are registered as the single stack registers them."""
    single_file = STACKS / "Pulumi.k3d.yaml"
    doc = yaml.safe_load(single_file.read_text())
    counties = doc["config"].pop("cht-hosting:counties")
    doc["config"]["cht-hosting:stacks"] = {"counties": ["k3d-counties"]}
    (tmp_path / "Pulumi.k3d.yaml").write_text(yaml.safe_dump(doc))
    (tmp_path / "Pulumi.k3d-counties.yaml").write_text(
        yaml.safe_dump({"config": {"cht-hosting:stacks": {"platform": "k3d"}, "cht-hosting:counties": counties}})
    )
    single = plan.run("k3d", stack_dir=STACKS)[0]
    platform = plan.run("k3d", stack_dir=tmp_path)[0]
    county_stack = plan.run("k3d-counties", stack_dir=tmp_path, references={"k3d": platform.outputs})[0]
    assert county_stack.named("existing-cluster").inputs == single.named("existing-cluster").inputs
    for county in counties:
        assert _moved(county_stack, county) == _moved(single, county), county
    assert not platform.of_type("cht-hosting:cht:ChtProject")
    assert platform.outputs["apiTransport"] == names.API_TRANSPORT_REFERENCE


@pytest.mark.parametrize(
    ("outputs", "state"),
    [({}, "has not been deployed yet"), ({"kubeconfig": "x", "storageClass": "vmware-sc"}, "has not been updated to this release yet")],
)
def test_a_county_stack_waits_for_its_platform_to_run_this_release(platform, outputs, state):
    """The county API Services name the platform's shared traefik ServersTransport: a county stack updated before
    its platform (or before the platform exists) is refused before any county object is registered, saying which
    stack to update first; on the platform's outputs of this release it goes on."""
    assert platform.outputs["apiTransport"] == names.API_TRANSPORT_REFERENCE
    metadata = platform.named("api-transport").inputs["metadata"]
    assert (metadata["namespace"], metadata["name"]) == (names.INGRESS_NAMESPACE, names.API_TRANSPORT)
    with pytest.raises(ProgramFailed) as failure:
        plan.run("nation-counties-b", stack_dir=SPLIT, references={"nation": outputs})
    assert f"cht-hosting:stacks.platform: the platform stack nation {state}" in failure.value.message
    assert "run `pulumi up --stack nation` first, then this stack" in failure.value.message
    assert failure.value.registered <= 2  # the stack and its StackReference: no county object


def test_the_offline_plan_of_a_county_stack_takes_its_platform_from_a_file(tmp_path, platform, capsys):
    """`--reference <platform>=<outputs>`: a county stack planned on what its platform deployed (a review folder
    or `pulumi stack output --json`); without it, on the platform's own offline plan."""
    (tmp_path / "outputs.json").write_text(__import__("json").dumps(platform.outputs))
    assert plan.main(["nation-counties-c", "--stack-dir", str(SPLIT), "--reference", f"nation={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert "Counties (13):" in out and "the platform stack nation's outputs are those of its offline plan" not in out
    assert "Backups: Velero, the drill and the window are the platform stack's (nation)" in out
    assert plan.main(["nation-counties-c", "--stack-dir", str(SPLIT), "--reference", "nation"]) == 2
    assert "--reference nation: write it as STACK=FILE" in capsys.readouterr().err


def test_make_plan_plans_a_platform_stack_and_then_each_county_stack(tmp_path, capsys):
    """`offline.plan <platform> --county-stacks` (what `make plan` runs): the platform, then every county stack on
    the platform's plan, each with its review folder inside the platform's; the platform says where its counties
    are, and a county stack whose monitoring it is."""
    out = tmp_path / "plan-nation"
    assert plan.main(["nation", "--stack-dir", str(SPLIT), "--county-stacks", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Counties (0 in this stack; the deployment's 50 are in its county stacks" in text
    for stack in COUNTY_STACKS:
        assert f"County stack {stack} (on the plan of nation above)" in text
        assert (out / stack / "manifests").is_dir(), stack
    assert text.count("Monitoring on the cluster: the platform stack's (nation); it finds this stack's counties") == 4
    held = sorted(p.stem for s in COUNTY_STACKS for p in (out / s / "manifests").glob("*.yaml"))
    assert set(_counties("nation-counties-a")) <= set(held)
    # Against what is deployed, each county stack is planned against its own outputs: the plan says how.
    deployed = tmp_path / "deployed.json"
    deployed.write_text("{}")
    assert plan.main(["nation", "--stack-dir", str(SPLIT), "--county-stacks", "--deployed", str(deployed)]) == 0
    text = capsys.readouterr().out
    assert f"--reference nation={deployed}" in text and "County stack nation-counties-a (" not in text


@pytest.mark.parametrize(
    ("platform_name", "message"),
    [
        ("bad name!", "cht-hosting:stacks.platform: 'bad name!' is not a stack name; use the name of a stack"),
        ("missing", "cht-hosting:stacks.platform: Pulumi.missing.yaml not found; stacks here: nation, nation-counties-a"),
        (5, "cht-hosting:stacks.platform: 5 is not text; use the name of a stack"),
    ],
)
def test_a_county_stack_whose_platform_file_cannot_be_read_says_only_that(tmp_path, platform_name, message):
    folder = _copy_with(tmp_path, "nation-counties-a", lambda config: config.update({"cht-hosting:stacks": {"platform": platform_name}}))
    with pytest.raises(ProgramFailed) as failure:
        plan.run("nation-counties-a", stack_dir=folder)
    assert failure.value.message.startswith("The stack config has 1 problem:") and failure.value.registered == 0
    assert message in failure.value.message
