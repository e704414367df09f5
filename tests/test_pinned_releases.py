"""The example stacks pin only vSphere CPI / CSI / external-snapshotter releases checked upstream.

An operator bumping a version in a stack file adds it here with where it was checked, so a release that
does not exist is caught in review, not by a failed `pulumi up`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from config import compatibility

ROOT = Path(__file__).resolve().parent.parent

CHECKED = {
    "cpi": {
        # kubernetes/cloud-provider-vsphere: charts/vsphere-cpi/Chart.yaml at tag v1.36.0 (version 1.36.0) and the
        # chart repository's index.yaml (gh-pages: vsphere-cpi-1.36.0.tgz).
        "1.36.0",
    },
    "csi": {
        # kubernetes-sigs/vsphere-csi-driver: tag v3.7.3 (manifests/vanilla/vsphere-csi-driver.yaml, driver:v3.7.3).
        "v3.7.3",
        # Release v3.8.0 as recorded by newreleases.io (notes: Kubernetes 1.34-1.36); the stored snapshot of the
        # repository predates it (newest v3.8.0-rc.1). See config/compatibility.yaml.
        "v3.8.0",
    },
    "snapshotter": {
        # kubernetes-csi/external-snapshotter tags v8.2.0 and v8.4.0, each with client/config/crd/*.yaml and
        # deploy/kubernetes/snapshot-controller/{rbac,setup}-snapshot-controller.yaml.
        "v8.2.0",
        "v8.4.0",
    },
}


def stack_files() -> list[Path]:
    return sorted(ROOT.glob("Pulumi.*.yaml"))


def pins(path: Path) -> dict[str, str]:
    config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
    found = {}
    if cpi := config.get("cht-hosting:cpi"):
        found["cpi"] = str(cpi["version"])
    if csi := config.get("cht-hosting:csi"):
        found["csi"] = str(csi["version"])
        snapshots = csi.get("snapshots") or {}
        found["snapshotter"] = str(snapshots.get("version") or compatibility.qualified_snapshotter(found["csi"]))
    return found


@pytest.mark.parametrize("path", stack_files(), ids=lambda p: p.name)
def test_each_stack_pins_checked_releases(path):
    for component, version in pins(path).items():
        assert version in CHECKED[component], f"{path.name}: {component} {version} was not checked upstream"


def test_every_qualified_snapshotter_was_checked():
    for csi in compatibility.table()["snapshotter"]:
        assert compatibility.qualified_snapshotter(f"{csi}.0") in CHECKED["snapshotter"]
