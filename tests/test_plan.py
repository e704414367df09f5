"""The offline plan command: the README's main command, on the tests' own stacks (tests/stacks/)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from offline import plan, stackfile
from tests.conftest import STACKS

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def national_plan(tmp_path_factory) -> tuple[str, Path]:
    out = tmp_path_factory.mktemp("plan-national")
    result = subprocess.run(
        [sys.executable, "-m", "offline.plan", "national", "--stack-dir", str(STACKS), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout, out


def test_national_plan_lists_fifty_counties(national_plan):
    printed, out = national_plan
    assert "Counties (50):" in printed
    county_section = printed.split("Counties (50):")[1].split("\n\n")[0]
    county_lines = [line for line in county_section.splitlines() if line.startswith("  ")]
    assert len(county_lines) == 50
    assert county_lines[0].split()[0] == "mombasa"
    assert "https://nairobi.echis.moh.example.org  CHT 4.22.0  CouchDB x3 (500 GB each)" in printed
    outputs = json.loads((out / "outputs.json").read_text())
    assert len(outputs["counties"]) == 50


def test_national_plan_warns_about_the_unset_secret(national_plan):
    printed, _ = national_plan
    assert "cht-hosting:vspherePassword is not set in Pulumi.national.yaml; a placeholder stands in" in printed


def test_plan_never_prints_a_secret(national_plan):
    printed, out = national_plan
    everything = printed + "".join(p.read_text() for p in out.rglob("*") if p.is_file())
    assert stackfile.PLACEHOLDER not in everything
    assert "PRIVATE KEY-----\nmock" not in everything and "_private: mock" not in everything  # generated keys
    assert "<secret>" in everything


def _write_stack(folder: Path, name: str, changes: dict) -> None:
    document = yaml.safe_load((STACKS / "Pulumi.national.yaml").read_text())
    document["config"].update(changes)
    (folder / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump(document))


def test_bad_config_lists_every_problem_without_a_traceback(tmp_path):
    _write_stack(tmp_path, "broken", {
        "cht-hosting:k3s": {"version": "v1.36", "apiEndpoint": "10.20.0.10"},
        "cht-hosting:counties": {"Nairobi": {}, "kwale": {"couchdbNodes": 2}},
    })
    result = subprocess.run(
        [sys.executable, "-m", "offline.plan", "broken", "--stack-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.splitlines()[0] == "The stack config has 3 problems:"
    assert "  - cht-hosting:k3s.version: 'v1.36' is not a k3s release" in result.stderr
    assert "  - cht-hosting:counties.Nairobi: 'Nairobi' is not a valid county name" in result.stderr
    assert "  - cht-hosting:counties.kwale.couchdbNodes: CouchDB runs as 1 node" in result.stderr


def test_bad_config_registers_nothing(tmp_path):
    _write_stack(tmp_path, "broken", {"cht-hosting:cht": {"version": "4.x"}})
    with pytest.raises(plan.ProgramFailed) as failure:
        plan.run("broken", stack_dir=tmp_path)
    assert "cht-hosting:cht.version: '4.x' is not a CHT Core release" in failure.value.message


def test_a_county_listed_twice_is_an_error(tmp_path):
    text = (STACKS / "Pulumi.national.yaml").read_text().replace("      kwale: {}\n", "      kwale: {}\n      kwale: {}\n")
    (tmp_path / "Pulumi.twice.yaml").write_text(text)
    with pytest.raises(stackfile.StackFileError) as error:
        stackfile.load("twice", root=tmp_path)
    line = text.splitlines().index("      kwale: {}") + 1
    assert str(error.value) == (
        f"Pulumi.twice.yaml: line {line + 1}: key 'kwale' appears twice (first on line {line}); keep one"
    )


def test_unknown_stack_names_the_stacks_that_exist(tmp_path, capsys):
    for name in ("lab", "county-pilot"):
        (tmp_path / f"Pulumi.{name}.yaml").write_text("config: {}\n")
    assert plan.main(["nosuch", "--stack-dir", str(tmp_path)]) == 2
    assert "Pulumi.nosuch.yaml not found; stacks here: county-pilot, lab" in capsys.readouterr().err


def _migrated_stack(folder: Path, name: str, credentials: dict) -> None:
    document = yaml.safe_load((STACKS / "Pulumi.regional.yaml").read_text())
    # A single-node county: a clustered Compose county is refused (its shard maps name the Compose nodes).
    document["config"]["cht-hosting:counties"]["kwale"] = {"migration": {"volumes": [{"volumeHandle": "fcd-1"}]}}
    document["config"]["cht-hosting:migratedCredentials"] = credentials
    (folder / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump(document))


def test_secrets_set_leaf_by_leaf_with_path_plan_and_stay_hidden(tmp_path):
    # `pulumi config set --secret --path 'migratedCredentials.kwale.password' ...` writes `secure:` leaves.
    leaves = {k: {"secure": f"v1:{k}"} for k in ("user", "password", "secret", "uuid")}
    _migrated_stack(tmp_path, "migrated", {"kwale": leaves})
    file = stackfile.load("migrated", root=tmp_path)
    assert "cht-hosting:migratedCredentials" in file.secret_keys
    assert json.loads(file.config["cht-hosting:migratedCredentials"])["kwale"]["password"] == stackfile.PLACEHOLDER
    evaluation, _ = plan.run("migrated", stack_dir=tmp_path)
    written = plan.write_review_folder(evaluation, tmp_path / "out")
    kwale = (tmp_path / "out" / "manifests" / "kwale.yaml").read_text()
    assert "COUCHDB_PASSWORD: <secret>" in kwale
    assert "volumeHandle: fcd-1" in (tmp_path / "out" / "manifests" / "_cluster.yaml").read_text()
    assert not any(stackfile.PLACEHOLDER in p.read_text() for p in written)


def test_migrated_county_without_its_credentials_entry_is_refused(tmp_path):
    _migrated_stack(tmp_path, "migrated", {"nairobi": {"password": {"secure": "v1:x"}}})
    with pytest.raises(plan.ProgramFailed) as failure:
        plan.run("migrated", stack_dir=tmp_path)
    assert failure.value.message.splitlines()[1:] == [
        # The entry given is another county's, which has no migration: nothing would read it.
        "  - cht-hosting:migratedCredentials.nairobi: is set, but county nairobi has no migration, so nothing uses "
        "it; set its migration, or remove it with `pulumi config rm --path 'migratedCredentials.nairobi'`",
        "  - cht-hosting:migratedCredentials.kwale: missing user, password, secret, uuid of the migrated county; "
        "set each with `pulumi config set --secret --path 'migratedCredentials.kwale.<key>' ...` (the values "
        "couchdb-migration get-env prints)"
    ]


def test_plan_says_when_a_county_lets_the_admin_app_upgrade(tmp_path):
    document = yaml.safe_load((STACKS / "Pulumi.regional.yaml").read_text())
    document["config"]["cht-hosting:counties"]["nairobi"] = {"upgrades": "admin-app"}
    (tmp_path / "Pulumi.adminapp.yaml").write_text(yaml.safe_dump(document))
    evaluation, notes = plan.run("adminapp", stack_dir=tmp_path)
    assert (
        "cht-hosting:counties.nairobi.upgrades: admin-app: after creation Pulumi ignores the county's CHT containers "
        "(images, resources, env), so an upgrade done in the admin app is never reverted; what runs may differ "
        "from version 4.22.0 in config"
    ) in plan.report(evaluation, notes)
