"""The GitHub Actions workflows: actionlint-clean, the security contract they keep, and the plan-diff script.

actionlint (with shellcheck, both pinned in requirements-dev.txt) checks syntax, expressions, action
inputs and the shell in `run:` steps. The structural tests pin what a linter cannot know: fork code never
meets a secret or a write token, previews only run for branches of this repository, deploys wait for the
protected environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from config import layout
from offline import stackfile
from tests import tools
from tests.conftest import STACKS

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
PLAN_DIFF = ROOT / ".github" / "scripts" / "offline-plan-diff.sh"


def load(name: str) -> dict:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads the key `on` as True
    return workflow


def steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def uses(job: dict, action: str) -> list[dict]:
    return [s for s in steps(job) if str(s.get("uses", "")).split("@")[0] == action]


def test_actionlint_accepts_every_workflow():
    result = subprocess.run(
        [tools.need("actionlint"), "-oneline", "-shellcheck", tools.need("shellcheck")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def test_the_pull_request_workflow_runs_fork_code_without_secrets_or_write_access():
    text = (WORKFLOWS / "pr.yml").read_text()
    workflow = load("pr.yml")
    assert set(workflow["on"]) == {"pull_request"}  # never pull_request_target: that runs with a write token
    assert workflow["permissions"] == {"contents": "read"}
    assert "secrets." not in text
    assert all(s.get("with", {}).get("persist-credentials") is False
               for job in workflow["jobs"].values() for s in uses(job, "actions/checkout"))
    assert "make test" in [s.get("run") for s in steps(workflow["jobs"]["test"])]
    plan = workflow["jobs"]["offline-plan"]
    refs = {s["with"]["path"]: s["with"]["ref"] for s in uses(plan, "actions/checkout")}
    assert refs == {"head": "${{ github.event.pull_request.head.sha }}", "base": "${{ github.event.pull_request.base.sha }}"}
    assert any("offline-plan-diff.sh base head offline-plan" in s.get("run", "") for s in steps(plan))
    [upload] = uses(plan, "actions/upload-artifact")
    assert upload["with"]["name"] == "offline-plan" and upload["if"] == "always()"


def test_the_comment_workflow_never_runs_pull_request_code():
    workflow = load("pr-comment.yml")
    assert workflow["on"] == {"workflow_run": {"workflows": [load("pr.yml")["name"]], "types": ["completed"]}}
    [job] = workflow["jobs"].values()
    assert not uses(job, "actions/checkout") and not any("run" in s for s in steps(job))
    [download] = uses(job, "actions/download-artifact")
    assert download["with"]["run-id"] == "${{ github.event.workflow_run.id }}"
    [script] = uses(job, "actions/github-script")
    body = script["with"]["script"]
    # The artifact is untrusted: its PR number must belong to the commit the plan ran on.
    assert "Number.isSafeInteger(number)" in body and "pr.head.sha !== context.payload.workflow_run.head_sha" in body
    assert "updateComment" in body and "<!-- cht-hosting:offline-plan -->" in body


def test_previews_run_only_for_branches_of_this_repository_with_the_policy_pack():
    workflow = load("preview.yml")
    jobs = workflow["jobs"]
    assert jobs["stacks"]["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
    assert jobs["preview"]["needs"] == "stacks"  # so the gate holds for every stack
    assert jobs["preview"]["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.stacks.outputs.stacks) }}"
    [pulumi] = uses(jobs["preview"], "pulumi/actions")
    assert pulumi["uses"] == "pulumi/actions@v7"
    assert {k: pulumi["with"][k] for k in ("command", "diff", "comment-on-pr", "policyPacks")} == {
        "command": "preview", "diff": True, "comment-on-pr": True, "policyPacks": "policy",
    }
    assert pulumi["if"] == "steps.credentials.outputs.ready == 'true'"  # a stack without credentials is skipped


def test_deploys_happen_on_main_behind_the_production_environment():
    workflow = load("deploy.yml")
    assert workflow["on"] == {"push": {"branches": ["main"]}}
    up = workflow["jobs"]["up"]
    assert up["environment"] == "production" and up["needs"] == "test"
    assert up["strategy"]["max-parallel"] == 1
    [pulumi] = uses(up, "pulumi/actions")
    assert pulumi["with"]["command"] == "up" and pulumi["with"]["policyPacks"] == "policy"
    assert workflow["concurrency"]["cancel-in-progress"] is False  # never cancel an `up` halfway


def _copy_project(dst: Path) -> Path:
    """The project with one small stack of the tests' own (regional) instead of the operator's stacks."""
    ignore = shutil.ignore_patterns("venv", ".venv", ".git", "build", "__pycache__", ".pytest_cache", "tests")
    shutil.copytree(ROOT, dst, ignore=ignore)
    for stack_file in dst.glob("Pulumi.*.yaml"):
        stack_file.unlink()
    shutil.copy(STACKS / "Pulumi.regional.yaml", dst / "Pulumi.regional.yaml")
    return dst


def test_plan_diff_script_shows_a_removed_county_and_fails_on_a_broken_head_stack(tmp_path):
    base = _copy_project(tmp_path / "base")
    head = _copy_project(tmp_path / "head")
    stack_file = head / "Pulumi.regional.yaml"
    text = stack_file.read_text()
    assert "    kwale: {couchdbNodes: 3}\n" in text
    stack_file.write_text(text.replace("    kwale: {couchdbNodes: 3}\n", ""))
    (head / "Pulumi.broken.yaml").write_text("config:\n  cht-hosting:bogus: 1\n")

    env = {**os.environ, "PYTHON": sys.executable, "BASE_SHA": "a" * 40, "HEAD_SHA": "b" * 40}
    result = subprocess.run(
        ["bash", str(PLAN_DIFF), str(base), str(head), str(tmp_path / "out")],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 1, result.stderr  # the broken head stack fails the check
    assert "Stacks that do not plan on the head: broken" in result.stderr

    diff = (tmp_path / "out" / "plan.diff").read_text()
    assert "--- base/regional/plan.txt" in diff and "+++ head/regional/plan.txt" in diff
    assert any(line.startswith("-") and "kwale" in line for line in diff.splitlines())
    assert "-Stack broken does not exist on the base." in diff  # absent on base, failed on head
    assert "head/broken/PLAN-FAILED.txt" in diff and "bogus" in diff

    comment = (tmp_path / "out" / "comment.md").read_text()
    assert comment.startswith("<!-- cht-hosting:offline-plan -->\n### Offline plan: base `aaaaaaa` → head `bbbbbbb`")
    assert "Stacks: broken regional." in comment
    assert ":x: **broken** does not plan on the head" in comment
    assert "`````diff\n" in comment and diff[:200] in comment


def test_plan_diff_script_reports_no_change(tmp_path):
    base = _copy_project(tmp_path / "base")
    env = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run(
        ["bash", str(PLAN_DIFF), str(base), str(base), str(tmp_path / "out")],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "plan.diff").read_text() == ""
    assert "No change to the rendered output of any stack." in (tmp_path / "out" / "comment.md").read_text()


@pytest.mark.parametrize("name", sorted(p.name for p in WORKFLOWS.glob("*.yml")))
def test_every_job_has_least_privilege_permissions_declared(name):
    assert "permissions" in load(name), f"{name} must declare its token permissions"


def test_the_plan_diff_script_passes_shellcheck():
    result = subprocess.run([tools.need("shellcheck"), str(PLAN_DIFF)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout


CI_STACKS = ROOT / ".github" / "scripts" / "ci-stacks.sh"


def test_ci_previews_and_deploys_every_stack_but_a_laptops(tmp_path):
    tools.need("jq")  # the script prints its list through jq
    # The operator's stacks: all but those on an existing cluster reached through a laptop's own kubeconfig.
    reachable = []
    for stack in stackfile.available_stacks(ROOT):
        config = stackfile.load(stack, ROOT).config
        if config.get("cht-hosting:clusterMode") != "existing" or "cht-hosting:kubeconfig" in config:
            reachable.append(stack)
    # County stacks (a `stacks.platform`) after the platform and single stacks (the next test says why).
    reachable.sort(key=lambda stack: layout.platform_stack(stackfile.raw(stackfile.load(stack, ROOT))[0]) is not None)
    result = subprocess.run(["bash", str(CI_STACKS), str(ROOT)], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == reachable
    (tmp_path / "Pulumi.eks.yaml").write_text(
        "config:\n  cht-hosting:clusterMode: existing\n  cht-hosting:kubeconfig:\n    secure: v1:abc\n"
    )
    (tmp_path / "Pulumi.laptop.yaml").write_text("config:\n  cht-hosting:clusterMode: existing\n")
    result = subprocess.run(["bash", str(CI_STACKS), str(tmp_path)], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == ["eks"]


def test_preview_and_deploy_list_their_stacks_with_the_same_script():
    for name in ("preview.yml", "deploy.yml"):
        steps = [s for job in load(name)["jobs"].values() for s in job.get("steps", [])]
        assert any(".github/scripts/ci-stacks.sh" in str(s.get("run", "")) for s in steps), name


def test_ci_updates_a_platform_stack_before_its_county_stacks(tmp_path):
    """Deploy runs the stacks one at a time in this order: a county stack reads its platform's outputs."""
    tools.need("jq")
    split = ROOT / "tests" / "stacks" / "split"
    result = subprocess.run(["bash", str(CI_STACKS), str(split)], capture_output=True, text=True, check=True)
    listed = json.loads(result.stdout)
    assert listed[0] == "nation" and sorted(listed[1:]) == [f"nation-counties-{x}" for x in "abcd"]
    # Pulumi.prod-counties-a.yaml sorts before Pulumi.prod.yaml; a flow-style `stacks` counts too.
    (tmp_path / "Pulumi.prod-counties-a.yaml").write_text("config:\n  cht-hosting:stacks: {platform: prod}\n")
    (tmp_path / "Pulumi.prod.yaml").write_text("config:\n  cht-hosting:stacks:\n    counties: [prod-counties-a]\n")
    result = subprocess.run(["bash", str(CI_STACKS), str(tmp_path)], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == ["prod", "prod-counties-a"]
