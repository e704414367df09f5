"""The stack output `escrow`: what a restore needs that only this stack holds (docs/runbooks/escrow.md).

It is a Pulumi secret (the mock engine reports it as one, as `pulumi stack output` would show `[secret]`), holds
exactly the values the cluster was given (the k3s tokens the nodes join with, the kopia repository password
Velero encrypts with, each county's CouchDB admin), and never reaches the plan's printout or review folder.
"""

from __future__ import annotations

import json

import pytest

from offline import engine, plan, stackfile
from offline.engine import Evaluation
from tests.conftest import STACKS, evaluate_stack, raw_config

COUNTY_KEYS = {"user", "password", "secret", "uuid"}
# A migrated county keeps the credentials it brought from Docker Compose: these, set as the secret config.
MIGRATED = {
    "garissa": {"user": "medic", "password": "GarissaOldPassw0rd", "secret": "garissa-couch-secret", "uuid": "uuid-garissa"},
    "kilifi-north": {"user": "admin", "password": "KilifiOldPassw0rd", "secret": "kilifi-couch-secret", "uuid": "uuid-kilifi"},
}


evaluate = evaluate_stack


@pytest.fixture(scope="module")
def backup() -> Evaluation:
    """A prod-like platform: three servers, agents, counties (one with 3 CouchDB nodes), backups."""
    return evaluate("backup")


@pytest.fixture(scope="module")
def restore() -> Evaluation:
    """An existing cluster with backups and migrated counties."""
    return evaluate("restore", migratedCredentials=json.dumps(MIGRATED))


def county_secret(evaluation: Evaluation, county: str) -> dict:
    (secret,) = [
        r for r in evaluation.of_type("kubernetes:core/v1:Secret")
        if r.inputs["metadata"] == {**r.inputs["metadata"], "name": "cht-couchdb-credentials", "namespace": county}
    ]
    return secret.inputs["stringData"]


def test_escrow_is_one_secret_output_with_what_a_restore_of_a_platform_needs(backup):
    assert "escrow" in backup.secret_outputs
    # The engine's own mark: plain outputs stay plain.
    assert not {"counties", "restoreScripts", "backup", "deployedState"} & backup.secret_outputs
    escrow = backup.outputs["escrow"]
    assert set(escrow) == {"stack", "k3s", "velero", "counties"}
    assert escrow["stack"] == "cht-hosting/backup"
    # The tokens the nodes were given: the server token (first line of a server's configure stdin) and the
    # agent token (an agent's only line).
    server_stdin = backup.named("k3s-cp-1-configure").inputs["stdin"]
    agent_stdin = backup.named("k3s-agent-1-configure").inputs["stdin"]
    assert escrow["k3s"] == {"token": server_stdin.split("\n")[0], "agentToken": agent_stdin.strip()}
    assert escrow["k3s"]["token"] != escrow["k3s"]["agentToken"]
    # The password Velero's Secret holds (velero v1.18.1 pkg/repository/keys/keys.go: velero-repo-credentials /
    # repository-password), and where it goes back on a rebuilt cluster.
    repository = backup.named("backup-repository-credentials").inputs
    assert escrow["velero"] == {
        "repositoryPassword": repository["stringData"]["repository-password"],
        "secret": f"{repository['metadata']['namespace']}/{repository['metadata']['name']}",
        "key": "repository-password",
    }
    # Every county's CouchDB admin, exactly as its Secret holds it.
    assert set(escrow["counties"]) == set(backup.outputs["counties"]) == {"kwale", "lamu", "mombasa"}
    for county, creds in escrow["counties"].items():
        data = county_secret(backup, county)
        assert creds == {
            "user": data["COUCHDB_USER"], "password": data["COUCHDB_PASSWORD"],
            "secret": data["COUCHDB_SECRET"], "uuid": data["COUCHDB_UUID"],
        }


def test_every_county_of_the_national_stack_is_escrowed(national):
    assert "escrow" in national.secret_outputs
    escrow = national.outputs["escrow"]
    assert set(escrow["counties"]) == set(national.outputs["counties"])
    assert all(set(c) == COUNTY_KEYS and all(c.values()) for c in escrow["counties"].values())
    assert escrow["k3s"]["token"] and escrow["velero"]["repositoryPassword"]


def test_a_migrated_county_escrows_the_credentials_it_brought(restore):
    escrow = restore.outputs["escrow"]
    assert "k3s" not in escrow  # a cluster of someone else's: no token of ours
    assert escrow["velero"]["repositoryPassword"]
    for county, creds in MIGRATED.items():
        assert escrow["counties"][county] == creds
    assert set(escrow["counties"]) == set(raw_config("restore")[0]["counties"])


@pytest.mark.parametrize(("stack", "parts"), [("changes", {"stack", "k3s", "counties"}), ("k3d", {"stack", "counties"})])
def test_without_backups_the_escrow_has_no_repository_password(stack, parts):
    evaluation = evaluate(stack)
    assert "escrow" in evaluation.secret_outputs
    assert set(evaluation.outputs["escrow"]) == parts
    assert set(evaluation.outputs["escrow"]["counties"]) == set(evaluation.outputs["counties"])


def test_the_plan_shows_the_escrow_as_a_secret_and_none_of_its_values(backup, restore, tmp_path):
    for evaluation in (backup, restore):
        values = _leaves(evaluation.outputs["escrow"]) - {evaluation.outputs["escrow"]["stack"], "medic", "admin",
                                                          "repository-password"}
        values -= {v for v in values if v.startswith("velero/")}
        assert values
        written = plan.write_review_folder(evaluation, tmp_path / evaluation.stack)
        outputs = json.loads((tmp_path / evaluation.stack / "outputs.json").read_text())
        assert outputs["escrow"] == engine.REDACTED
        assert not [p for p in written if p.parent.name == "outputs" and p.name.startswith("escrow")]
        for text in [plan.report(evaluation, [], verbose=True), *(p.read_text() for p in written)]:
            leaked = [v for v in values if v in text]
            assert not leaked, leaked


def _leaves(value) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(_leaves(v) for v in value.values()))
    return {value} if isinstance(value, str) else set()


def test_in_a_split_deployment_each_stack_escrows_its_own_part():
    """The platform stack: the tokens and the repository password; a county stack: its own counties only
    (docs/runbooks/escrow.md: keep one escrow per stack)."""
    split = STACKS / "split"
    platform = plan.run("nation", stack_dir=split)[0]
    county_stack = plan.run("nation-counties-a", stack_dir=split, references={"nation": platform.outputs})[0]
    assert {"escrow"} <= platform.secret_outputs and {"escrow"} <= county_stack.secret_outputs
    assert {"k3s", "velero"} <= set(platform.outputs["escrow"]) and not platform.outputs["escrow"]["counties"]
    own = set(stackfile.raw(stackfile.load("nation-counties-a", root=split))[0]["counties"])
    assert set(county_stack.outputs["escrow"]) == {"stack", "counties"}
    assert set(county_stack.outputs["escrow"]["counties"]) == own
