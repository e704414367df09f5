"""An independent scanner over the rendered county manifests: checkov's Kubernetes checks.

checkov pins many libraries, so it lives in a venv of its own (`.ci/checkov-venv.sh`; `.ci/run` and the workflows
set CHECKOV to it); here it is found through the CHECKOV environment variable, else on PATH. Without it the
tests are skipped, except in CI, where they fail (tests/tools.py).
The manifests are what the program registers for every county of the national stack, of the same kind of
counties on the latest released 5.x (tests/stacks/Pulumi.cht5.yaml: single-node and clustered), and of a
4.x county with the upgrade service.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml

from offline import plan
from tests import tools
from tests.test_cht_project import build_counties, county

STACKS = Path(__file__).parent / "stacks"

# The checks the issue names: privilege escalation, privileged, seccomp, NET_RAW, service-account tokens.
REQUIRED = {
    "CKV_K8S_20": "allowPrivilegeEscalation",
    "CKV_K8S_16": "privileged",
    "CKV_K8S_31": "seccomp",
    "CKV_K8S_28": "NET_RAW",
    "CKV_K8S_38": "service-account token",
}


def county_manifests(evaluation) -> list[dict]:
    objects = []
    for project in evaluation.of_type("cht-hosting:cht:ChtProject"):
        for r in evaluation.descendants(project):
            if r.type.startswith("kubernetes:") and "kind" in r.inputs:
                objects.append(r.inputs)
    return objects


def checkov() -> str:
    path = os.environ.get("CHECKOV") or tools.find("checkov")
    if not path:
        tools.unavailable(f"checkov is not installed ({tools.INSTALL['checkov']})")
    return path


def scan(binary: str, objects: list[dict], out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    by_namespace: dict[str, list[dict]] = {}
    for obj in objects:
        by_namespace.setdefault(obj["metadata"].get("namespace", "cluster"), []).append(obj)
    for namespace, docs in by_namespace.items():
        (out / f"{namespace}.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    result = subprocess.run(
        [binary, "-d", str(out), "--framework", "kubernetes", "-o", "json", "--compact"],
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode in (0, 1), result.stderr  # 1: some check failed (e.g. ones we do not claim)
    report = json.loads(result.stdout)
    return report["results"] if isinstance(report, dict) else report[0]["results"]


def failures(results: dict) -> list[str]:
    return [
        f"{f['check_id']} ({REQUIRED[f['check_id']]}): {f['resource']} in {Path(f['file_path']).name}"
        for f in results["failed_checks"]
        if f["check_id"] in REQUIRED
    ]


def test_checkov_passes_every_county_workload(national, tmp_path):
    binary = checkov()
    five, _ = plan.run("cht5", stack_dir=STACKS)
    admin_app = build_counties({"garissa": county("garissa", upgrades="admin-app")})
    objects = county_manifests(national) + county_manifests(five) + county_manifests(admin_app)
    results = scan(binary, objects, tmp_path / "manifests")
    assert failures(results) == []
    # The scanner really looked at every workload: each Deployment passed each required check (or, for the
    # upgrade service's token, was skipped with its reason).
    deployments = sum(1 for o in objects if o["kind"] == "Deployment")
    for check in REQUIRED:
        seen = [p for p in results["passed_checks"] + results["skipped_checks"] if p["check_id"] == check]
        assert len(seen) >= deployments, check
    skipped = [s for s in results["skipped_checks"] if s["check_id"] == "CKV_K8S_38"]
    assert [s["resource"].split(".")[-1] for s in skipped] == ["upgrade-service"]


def test_checkov_catches_what_it_should(tmp_path):
    """A control: the same scan fails a container that may escalate and keeps NET_RAW (the scan is not blind)."""
    binary = checkov()
    evaluation = build_counties({"kwale": county()})
    objects = county_manifests(evaluation)
    api = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "cht-api")
    container = api["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"] = {"allowPrivilegeEscalation": True}
    found = failures(scan(binary, [api], tmp_path / "control"))
    assert {f.split()[0] for f in found} >= {"CKV_K8S_20", "CKV_K8S_28"}
