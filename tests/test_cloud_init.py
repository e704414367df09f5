"""The cloud-init documents a node boots with (pure render, no mocks)."""

from __future__ import annotations

import base64

import pytest
import yaml

from components.vsphere import cloud_init
from config.validate import validate
from tests.conftest import raw_config

HOST_KEY = cloud_init.HostKey(
    private_openssh="-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n",
    public_openssh="ssh-ed25519 AAAAC3host cp-1\n",
)


@pytest.fixture(scope="module")
def cfg():
    return validate(*raw_config("national"))


def test_metadata_sets_identity_and_static_netplan_from_the_node_ip(cfg):
    meta = yaml.safe_load(cloud_init.metadata("cp-1", "10.20.0.11", cfg.network))
    assert meta["instance-id"] == meta["local-hostname"] == "cp-1"
    assert meta["network"]["version"] == 2
    (nic,) = meta["network"]["ethernets"].values()
    assert nic["match"] == {"driver": "vmxnet3"}
    assert nic["dhcp4"] is False
    assert nic["addresses"] == ["10.20.0.11/24"]
    assert nic["routes"] == [{"to": "default", "via": "10.20.0.1"}]
    assert nic["nameservers"] == {"addresses": ["10.20.0.2", "10.20.0.3"], "search": ["moh.example.org"]}


def test_metadata_asks_the_datasource_to_redact_the_userdata(cfg):
    assert yaml.safe_load(cloud_init.metadata("cp-1", "10.20.0.11", cfg.network))["redact"] == ["userdata"]


def test_metadata_omits_search_domains_when_none_are_configured(cfg):
    network = cfg.network.model_copy(update={"search_domains": []})
    (nic,) = yaml.safe_load(cloud_init.metadata("a", "10.20.0.21", network))["network"]["ethernets"].values()
    assert "search" not in nic["nameservers"]


def _userdata(**overrides) -> dict:
    args = dict(
        hostname="cp-1",
        admin_user="chtadmin",
        authorized_keys=["ssh-ed25519 AAAAprogram", "ssh-ed25519 AAAAops ops@moh"],
        ntp_servers=["ntp.moh.example.org"],
        host_key=HOST_KEY,
    )
    args.update(overrides)
    text = cloud_init.userdata(**args)
    assert text.startswith("#cloud-config\n")  # without this line cloud-init ignores the document
    return yaml.safe_load(text)


def test_userdata_creates_the_admin_user_with_every_key_and_no_password():
    (user,) = _userdata()["users"]
    assert user["name"] == "chtadmin"
    assert user["ssh_authorized_keys"] == ["ssh-ed25519 AAAAprogram", "ssh-ed25519 AAAAops ops@moh"]
    assert user["lock_passwd"] is True
    assert user["sudo"] == "ALL=(ALL) NOPASSWD:ALL"


def test_userdata_refuses_logins_by_password_and_as_root():
    doc = _userdata()
    assert doc["ssh_pwauth"] is False
    assert doc["disable_root"] is True


def test_userdata_installs_the_pinned_host_key_and_generates_no_other():
    doc = _userdata()
    assert doc["ssh_keys"] == {
        "ed25519_private": HOST_KEY.private_openssh,
        "ed25519_public": "ssh-ed25519 AAAAC3host cp-1",
    }
    assert doc["ssh_deletekeys"] is True
    assert doc["ssh_genkeytypes"] == ["ed25519"]


def test_userdata_enables_time_sync_with_the_configured_servers():
    assert _userdata()["ntp"] == {"enabled": True, "servers": ["ntp.moh.example.org"]}
    assert _userdata(ntp_servers=[])["ntp"] == {"enabled": True}


def test_userdata_keeps_k3s_interfaces_out_of_vmware_tools_guest_info():
    (tools,) = [f for f in _userdata()["write_files"] if f["path"] == "/etc/vmware-tools/tools.conf"]
    assert "[guestinfo]" in tools["content"]
    assert "exclude-nics=cni0,flannel*,veth*" in tools["content"].splitlines()


def test_userdata_sets_the_hostname():
    doc = _userdata()
    assert doc["hostname"] == "cp-1" and doc["preserve_hostname"] is False


def test_userdata_without_any_key_is_refused():
    with pytest.raises(ValueError, match="authorized key"):
        cloud_init.userdata("cp-1", "chtadmin", [], [], HOST_KEY)


def test_guestinfo_is_base64_with_its_encoding_declared():
    extra = cloud_init.guestinfo("meta: 1\n", "#cloud-config\nx: 2\n")
    assert set(extra) == {
        "guestinfo.metadata",
        "guestinfo.metadata.encoding",
        "guestinfo.userdata",
        "guestinfo.userdata.encoding",
    }
    assert extra["guestinfo.metadata.encoding"] == extra["guestinfo.userdata.encoding"] == "base64"
    assert base64.b64decode(extra["guestinfo.userdata"]).decode() == "#cloud-config\nx: 2\n"
    assert base64.b64decode(extra["guestinfo.metadata"]).decode() == "meta: 1\n"
