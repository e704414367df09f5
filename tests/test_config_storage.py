"""Config keys and rules added for the CPI, CSI and StorageClass (exact messages)."""

from __future__ import annotations

import pytest

from config.errors import ConfigError
from config.validate import validate
from tests.conftest import raw_config


def problems(**sections) -> list[str]:
    raw, secret_keys = raw_config("national")
    for key, value in sections.items():
        raw[key] = {**raw[key], **value}
    with pytest.raises(ConfigError) as error:
        validate(raw, secret_keys)
    return error.value.problems


def test_defaults():
    raw, secret_keys = raw_config("national")
    cfg = validate(raw, secret_keys)
    assert cfg.cpi.chart_repository == "https://kubernetes.github.io/cloud-provider-vsphere"
    assert cfg.cpi.image is None
    assert cfg.csi.manifest_url == (
        "https://raw.githubusercontent.com/kubernetes-sigs/vsphere-csi-driver/{version}/manifests/vanilla/vsphere-csi-driver.yaml"
    )
    assert cfg.csi.cluster_id is None
    assert cfg.csi.snapshots.enabled is False and cfg.csi.snapshots.deletion_policy == "Retain"


def test_verification_needs_a_thumbprint_or_ca():
    assert problems(vsphere={"thumbprint": None}) == [
        "cht-hosting:vsphere.thumbprint: the CPI and CSI must verify vCenter's certificate; set vsphere.thumbprint "
        "(SHA-1, e.g. AB:CD:...) or vsphere.caCertificate (PEM), or, for a lab only, vsphere.insecure: true"
    ]


def test_insecure_and_a_pinned_certificate_contradict():
    assert problems(vsphere={"insecure": True}) == [
        "cht-hosting:vsphere.insecure: is true while vsphere.thumbprint or vsphere.caCertificate is set; remove "
        "insecure to verify the certificate (recommended), or remove the thumbprint/CA"
    ]


def test_ca_certificate_must_be_pem():
    assert problems(vsphere={"thumbprint": None, "caCertificate": "not a cert"}) == [
        "cht-hosting:vsphere.caCertificate: is not a PEM certificate bundle; paste only the certificates, each "
        "from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----"
    ]


def test_manifest_url_needs_the_version_placeholder():
    assert problems(csi={"manifestUrl": "https://mirror.example.org/vsphere-csi-driver.yaml"}) == [
        "cht-hosting:csi.manifestUrl: 'https://mirror.example.org/vsphere-csi-driver.yaml' must contain {version} "
        "exactly once, e.g. https://mirror.moh.example.org/path/{version}/"
    ]


def test_cluster_id_at_most_64_characters():
    assert problems(csi={"clusterId": "c" * 65}) == [
        f"cht-hosting:csi.clusterId: '{'c' * 65}' is not a valid CSI cluster id; use 1-64 letters, digits, '.', '_' or '-'"
    ]


def test_chart_repository_must_be_a_url():
    assert problems(cpi={"chartRepository": "kubernetes.github.io"}) == [
        "cht-hosting:cpi.chartRepository: 'kubernetes.github.io' must start with https:// or http:// or oci://, "
        "e.g. https://mirror.moh.example.org/path"
    ]


def test_snapshots_need_a_known_snapshotter_for_the_csi_release():
    assert problems(csi={"version": "v3.6.0", "snapshots": {"enabled": True}}, k3s={"version": "v1.34.1+k3s1"}, cpi={"version": "1.34.0"}) == [
        "cht-hosting:csi.snapshots.version: no external-snapshotter release is known to be qualified for vSphere "
        "CSI v3.6.0; set it (see the CSI release notes), or add a row to config/compatibility.yaml"
    ]


def test_snapshot_version_format():
    assert problems(csi={"snapshots": {"enabled": True, "version": "8.2"}}) == [
        "cht-hosting:csi.snapshots.version: '8.2' is not an external-snapshotter release; write it as vX.Y.Z, e.g. v8.2.0"
    ]
