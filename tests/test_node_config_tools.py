"""Each node's cloud-init, checked by the real tools that will read it on the node.

`cloud-init schema` validates every userdata; `netplan generate` turns every metadata network config into
systemd-networkd files. CI installs both (.ci/run); elsewhere these tests are skipped unless CI is set.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from config.names import decode_guestinfo
from offline.plan import VM_TYPE

CLOUD_INIT = shutil.which("cloud-init")
NETPLAN = shutil.which("netplan") or shutil.which("netplan", path="/usr/sbin")
needs_cloud_init = pytest.mark.skipif(
    not CLOUD_INIT and not os.environ.get("CI"), reason="cloud-init is not installed (CI installs it)"
)
needs_netplan = pytest.mark.skipif(
    not NETPLAN and not os.environ.get("CI"), reason="netplan is not installed (CI installs it)"
)


def guestinfo(vm, part: str) -> str:
    """What cloud-init reads from the VM's guestinfo key `part`."""
    extra = vm.inputs["extraConfig"]
    return decode_guestinfo(extra[f"guestinfo.{part}"], extra[f"guestinfo.{part}.encoding"])


def schema_check(path) -> subprocess.CompletedProcess:
    return subprocess.run([CLOUD_INIT, "schema", "-c", str(path)], capture_output=True, text=True)


@needs_cloud_init
def test_every_node_userdata_is_valid_cloud_config(prod, tmp_path):
    vms = prod.of_type(VM_TYPE)
    assert len(vms) == 12
    for vm in vms:
        userdata = guestinfo(vm, "userdata")
        path = tmp_path / f"{vm.name}.yaml"
        path.write_text(userdata)
        result = schema_check(path)
        assert result.returncode == 0, f"{vm.name}: {result.stdout}{result.stderr}"


@needs_cloud_init
def test_schema_check_catches_a_broken_document(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("#cloud-config\nntp: {enabled: maybe}\n")
    result = schema_check(path)
    assert result.returncode != 0 and "ntp.enabled" in result.stdout + result.stderr


def netplan_generate(root, network: dict) -> subprocess.CompletedProcess:
    folder = root / "etc" / "netplan"
    folder.mkdir(parents=True)
    path = folder / "50-cloud-init.yaml"
    path.write_text(yaml.safe_dump({"network": network}))
    path.chmod(0o600)
    return subprocess.run([NETPLAN, "generate", "--root-dir", str(root)], capture_output=True, text=True)


@needs_netplan
def test_every_node_network_config_renders_with_netplan(prod, tmp_path):
    for vm in prod.of_type(VM_TYPE):
        metadata = yaml.safe_load(guestinfo(vm, "metadata"))
        root = tmp_path / vm.name
        result = netplan_generate(root, metadata["network"])
        assert result.returncode == 0, f"{vm.name}: {result.stderr}"
        (network_file,) = (root / "run" / "systemd" / "network").glob("*.network")
        text = network_file.read_text()
        ip = metadata["network"]["ethernets"]["primary"]["addresses"][0]
        assert f"Address={ip}" in text and "Gateway=10.20.0.1" in text and "DNS=10.20.0.2" in text


@needs_netplan
def test_netplan_refuses_a_broken_network_config(tmp_path):
    result = netplan_generate(tmp_path, {"version": 2, "ethernets": {"primary": {"addresses": ["not-an-ip"]}}})
    assert result.returncode != 0
