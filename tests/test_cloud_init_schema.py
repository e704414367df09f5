"""Every node's userdata in the prod stack passes cloud-init's own schema (`cloud-init schema`).

CI installs cloud-init (.ci/run); elsewhere these tests are skipped unless CI is set.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from offline.plan import VM_TYPE, _decode_guestinfo

CLOUD_INIT = shutil.which("cloud-init")
pytestmark = pytest.mark.skipif(
    not CLOUD_INIT and not os.environ.get("CI"), reason="cloud-init is not installed (CI installs it)"
)


def schema_check(path) -> subprocess.CompletedProcess:
    return subprocess.run([CLOUD_INIT, "schema", "-c", str(path)], capture_output=True, text=True)


def test_every_node_userdata_is_valid_cloud_config(prod, tmp_path):
    vms = prod.of_type(VM_TYPE)
    assert len(vms) == 12
    for vm in vms:
        userdata = _decode_guestinfo(vm.inputs["extraConfig"], "userdata")
        path = tmp_path / f"{vm.name}.yaml"
        path.write_text(userdata)
        result = schema_check(path)
        assert result.returncode == 0, f"{vm.name}: {result.stdout}{result.stderr}"


def test_schema_check_catches_a_broken_document(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("#cloud-config\nntp: {enabled: maybe}\n")
    result = schema_check(path)
    assert result.returncode != 0 and "ntp.enabled" in result.stdout + result.stderr
