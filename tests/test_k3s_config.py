"""Config keys K3sCluster added under `cht-hosting:k3s`: defaults and exact messages."""

from __future__ import annotations

import pytest

from config import ConfigError
from config.validate import validate
from tests.conftest import raw_config

K3S = {"version": "v1.35.8+k3s1", "apiEndpoint": "10.20.0.10"}


def problems(**k3s) -> list[str]:
    values, secret_keys = raw_config("national", k3s={**K3S, **k3s})
    with pytest.raises(ConfigError) as error:
        validate(values, secret_keys)
    return error.value.problems


def test_defaults():
    values, secret_keys = raw_config("national", k3s=K3S)
    k3s = validate(values, secret_keys).k3s
    assert k3s.kube_vip_version == "v1.0.0"
    assert k3s.kube_vip_interface is None  # kube-vip finds the default route's interface itself
    assert k3s.system_upgrade_controller_version == "v0.20.1"
    assert k3s.registry_mirrors == {}
    assert k3s.drain_timeout_minutes == 10


def test_kube_vip_version():
    assert problems(kubeVipVersion="1.0") == [
        "cht-hosting:k3s.kubeVipVersion: '1.0' is not a kube-vip release; write it as vX.Y.Z, e.g. v1.0.0"
    ]


def test_system_upgrade_controller_version():
    assert problems(systemUpgradeControllerVersion="latest") == [
        "cht-hosting:k3s.systemUpgradeControllerVersion: 'latest' is not a system-upgrade-controller release; "
        "write it as vX.Y.Z, e.g. v0.20.1"
    ]


def test_kube_vip_interface():
    values, secret_keys = raw_config("national", k3s={**K3S, "kubeVipInterface": "ens224"})
    assert validate(values, secret_keys).k3s.kube_vip_interface == "ens224"
    assert problems(kubeVipInterface="ens 192") == [
        "cht-hosting:k3s.kubeVipInterface: 'ens 192' is not a network interface name; use the name `ip link` "
        "shows on the servers, e.g. ens192"
    ]


def test_registry_mirror_endpoint_needs_a_scheme():
    assert problems(registryMirrors={"docker.io": ["mirror.moh.example.org"]}) == [
        "cht-hosting:k3s.registryMirrors.docker.io[0]: 'mirror.moh.example.org' must start with https:// or "
        "http://, e.g. https://mirror.moh.example.org/path"
    ]


def test_registry_mirror_needs_an_endpoint():
    assert problems(registryMirrors={"docker.io": []}) == [
        "cht-hosting:k3s.registryMirrors.docker.io: needs at least one entry"
    ]


def test_drain_timeout():
    assert problems(drainTimeoutMinutes=0) == ["cht-hosting:k3s.drainTimeoutMinutes: must be a positive number, got 0"]


def test_removing_a_server_to_an_even_count_is_refused():
    values, secret_keys = raw_config("national")
    values["controlPlane"] = {**values["controlPlane"], "nodes": {"cp-1": "10.20.0.11", "cp-2": "10.20.0.12"}}
    with pytest.raises(ConfigError) as error:
        validate(values, secret_keys)
    assert error.value.problems == [
        "cht-hosting:controlPlane.nodes: 2 control-plane nodes; etcd needs an odd number (1, 3 or 5) to keep "
        "quorum, add or remove one"
    ]


def test_the_remembered_etcd_seed():
    """None only while no cluster exists; a cluster recorded without its seed exists all the same."""
    from config import deployed

    values, secret_keys = raw_config("national", k3s=K3S)
    cfg = validate(values, secret_keys)
    first_server = next(iter(cfg.control_plane.nodes))
    assert deployed.etcd_seed(None, cfg) is None
    current = deployed.parse({"deployedState": deployed.snapshot(cfg, etcd_seed="cp-x", csi_cluster_id=None)}, "o/p/s")
    assert deployed.etcd_seed(current, cfg) == "cp-x"
    legacy = deployed.parse({"counties": {"nairobi": {"couchdbNodes": 1, "couchdbStorageGb": 100, "version": "4.22.0"}}}, "o/p/s")
    assert legacy is not None and legacy.etcd_seed is None
    assert deployed.etcd_seed(legacy, cfg) == first_server
