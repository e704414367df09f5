"""Each node's cloud-init, checked by the real tools that will read it on the node.

`cloud-init schema` validates every userdata; `netplan generate` turns every metadata network config into
systemd-networkd files. CI installs both (.ci/run); elsewhere, without them, these tests are skipped
(tests/tools.py).
"""

from __future__ import annotations

import subprocess

import pytest
import yaml

from config.names import decode_guestinfo
from offline.plan import VM_TYPE
from tests import tools


@pytest.fixture(scope="module")
def cloud_init() -> str:
    return tools.need("cloud-init")


@pytest.fixture(scope="module")
def netplan() -> str:
    return tools.need("netplan")


def guestinfo(vm, part: str) -> str:
    """What cloud-init reads from the VM's guestinfo key `part`."""
    extra = vm.inputs["extraConfig"]
    return decode_guestinfo(extra[f"guestinfo.{part}"], extra[f"guestinfo.{part}.encoding"])


def schema_check(cloud_init: str, path) -> subprocess.CompletedProcess:
    return subprocess.run([cloud_init, "schema", "-c", str(path)], capture_output=True, text=True)


def test_every_node_userdata_is_valid_cloud_config(cloud_init, national, tmp_path):
    vms = national.of_type(VM_TYPE)
    assert len(vms) == 12
    for vm in vms:
        userdata = guestinfo(vm, "userdata")
        path = tmp_path / f"{vm.name}.yaml"
        path.write_text(userdata)
        result = schema_check(cloud_init, path)
        assert result.returncode == 0, f"{vm.name}: {result.stdout}{result.stderr}"


def test_schema_check_catches_a_broken_document(cloud_init, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("#cloud-config\nntp: {enabled: maybe}\n")
    result = schema_check(cloud_init, path)
    assert result.returncode != 0 and "ntp.enabled" in result.stdout + result.stderr


def netplan_generate(netplan: str, root, network: dict) -> subprocess.CompletedProcess:
    folder = root / "etc" / "netplan"
    folder.mkdir(parents=True)
    path = folder / "50-cloud-init.yaml"
    path.write_text(yaml.safe_dump({"network": network}))
    path.chmod(0o600)
    return subprocess.run([netplan, "generate", "--root-dir", str(root)], capture_output=True, text=True)


def test_every_node_network_config_renders_with_netplan(netplan, national, tmp_path):
    for vm in national.of_type(VM_TYPE):
        metadata = yaml.safe_load(guestinfo(vm, "metadata"))
        root = tmp_path / vm.name
        result = netplan_generate(netplan, root, metadata["network"])
        assert result.returncode == 0, f"{vm.name}: {result.stderr}"
        (network_file,) = (root / "run" / "systemd" / "network").glob("*.network")
        text = network_file.read_text()
        ip = metadata["network"]["ethernets"]["primary"]["addresses"][0]
        assert f"Address={ip}" in text and "Gateway=10.20.0.1" in text and "DNS=10.20.0.2" in text


def test_netplan_refuses_a_broken_network_config(netplan, tmp_path):
    result = netplan_generate(netplan, tmp_path, {"version": 2, "ethernets": {"primary": {"addresses": ["not-an-ip"]}}})
    assert result.returncode != 0
