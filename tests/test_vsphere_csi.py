"""VsphereCsi on the mock engine: namespace, config Secret, driver manifest, transforms, snapshots."""

from __future__ import annotations

import kubernetes_validate
import pulumi
import pytest

from components.storage import csi as vsphere_csi
from config import names
from tests.storage_stack import PASSWORD, build, provider_urn, stack_config
from tests.test_vsphere_render import controller_deployment, parse_gcfg

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@pytest.fixture(scope="module")
def with_snapshots():
    return build(stack_config(csi={"snapshots": {"enabled": True}}))


def test_namespace_and_config_secret(national_storage):
    namespace = national_storage.named("vsphere-csi-namespace")
    secret = national_storage.named("vsphere-csi-config")
    assert namespace.inputs["metadata"]["name"] == "vmware-system-csi"
    assert secret.inputs["metadata"] == {"name": "vsphere-config-secret", "namespace": "vmware-system-csi"}
    assert "stringData" in secret.secret_inputs
    assert namespace.urn in secret.depends_on
    for obj in (namespace.inputs, secret.inputs):
        kubernetes_validate.validate(obj, "1.35", strict=True)


def test_rendered_conf_parses_back(national_storage):
    data = national_storage.named("vsphere-csi-config").inputs["stringData"]
    assert set(data) == {"csi-vsphere.conf"}
    conf = parse_gcfg(data["csi-vsphere.conf"])
    assert conf["Global"]["cluster-id"] == "cht-hosting-prod" == national_storage.outputs["csiClusterId"]
    vcenter = conf["VirtualCenter vcenter.moh.example.org"]
    assert vcenter["user"] == "k8s-cns@vsphere.local"
    assert vcenter["password"] == PASSWORD
    assert vcenter["datacenters"] == "MOH-DC1"
    assert vcenter["insecure-flag"] == "false"
    assert vcenter["thumbprint"].startswith("AB:CD")


def test_configured_cluster_id_wins():
    evaluation = build(stack_config(csi={"clusterId": "moh-kenya-cht"}))
    conf = parse_gcfg(evaluation.named("vsphere-csi-config").inputs["stringData"]["csi-vsphere.conf"])
    assert conf["Global"]["cluster-id"] == "moh-kenya-cht"


def test_ca_certificate_travels_in_the_secret():
    evaluation = build(stack_config(vsphere={"thumbprint": None, "caCertificate": PEM}))
    data = evaluation.named("vsphere-csi-config").inputs["stringData"]
    assert data["vsphere-ca.pem"] == PEM
    assert parse_gcfg(data["csi-vsphere.conf"])["VirtualCenter vcenter.moh.example.org"]["ca-file"] == "/etc/cloud/vsphere-ca.pem"


def test_driver_manifest_is_the_pinned_upstream_file(national_storage):
    driver = national_storage.named("vsphere-csi-driver")
    assert driver.type == "kubernetes:yaml/v2:ConfigFile"
    assert driver.inputs["file"] == (
        "https://raw.githubusercontent.com/kubernetes-sigs/vsphere-csi-driver/v3.7.3/manifests/vanilla/vsphere-csi-driver.yaml"
    )
    assert national_storage.named("vsphere-csi-config").urn in driver.depends_on
    assert national_storage.named("vsphere-csi-namespace").urn in driver.depends_on


def test_manifest_url_can_point_at_a_mirror():
    evaluation = build(stack_config(csi={"manifestUrl": "https://mirror.moh.example.org/csi/{version}/driver.yaml"}))
    assert evaluation.named("vsphere-csi-driver").inputs["file"] == "https://mirror.moh.example.org/csi/v3.7.3/driver.yaml"


def test_driver_transform_fits_the_controller_to_the_cluster():
    transform = vsphere_csi.object_transform(lambda obj: vsphere_csi.render.adjust_csi_object(obj, 1))
    opts = pulumi.ResourceOptions()
    args = pulumi.ResourceTransformArgs(
        custom=True, type_="kubernetes:apps/v1:Deployment", name="vsphere-csi-driver:vmware-system-csi/vsphere-csi-controller",
        props=controller_deployment(), opts=opts,
    )
    result = transform(args)
    assert result.props["spec"]["replicas"] == 1
    assert result.opts is opts
    other = pulumi.ResourceTransformArgs(
        custom=True, type_="kubernetes:storage.k8s.io/v1:CSIDriver", name="x",
        props={"kind": "CSIDriver", "metadata": {"name": "csi.vsphere.vmware.com"}}, opts=opts,
    )
    assert transform(other) is None


def test_component_wires_its_transform_with_the_control_plane_count(monkeypatch):
    seen = []
    original = vsphere_csi.render.adjust_csi_object
    monkeypatch.setattr(vsphere_csi.render, "adjust_csi_object", lambda obj, n: seen.append(n) or original(obj, n))
    captured = []
    real = vsphere_csi.k8s.yaml.v2.ConfigFile

    def spy(name, file, opts=None, **kwargs):
        captured.append((name, opts.transforms))
        return real(name, file=file, opts=opts, **kwargs)

    monkeypatch.setattr(vsphere_csi.k8s.yaml.v2, "ConfigFile", spy)
    build(stack_config(), control_plane_nodes=5)
    (transforms,) = [t for n, t in captured if n == "vsphere-csi-driver"]
    result = transforms[0](
        pulumi.ResourceTransformArgs(True, "kubernetes:apps/v1:Deployment", "c", controller_deployment(), pulumi.ResourceOptions())
    )
    assert seen == [5] and result.props["spec"]["replicas"] == 3


def test_csi_waits_for_the_cpi_and_uses_the_clusters_provider(national_storage):
    cpi = national_storage.named("vsphere-cpi-release")
    for name in ("vsphere-csi-namespace", "vsphere-csi-config", "vsphere-csi-driver"):
        child = national_storage.named(name)
        assert cpi.urn in child.depends_on, name
        assert child.provider.startswith(provider_urn(national_storage) + "::")


def test_snapshots_are_off_by_default(national_storage):
    assert not [r for r in national_storage.registrations if "snapshot" in r.name]
    assert national_storage.outputs.get("snapshotClass") is None


def test_snapshots_install_crds_controller_and_class(with_snapshots):
    base = "https://raw.githubusercontent.com/kubernetes-csi/external-snapshotter/v8.2.0"  # qualified for v3.7
    crds = [with_snapshots.named(f"vsphere-csi-crd-{c}") for c in ("volumesnapshotclasses", "volumesnapshotcontents", "volumesnapshots")]
    assert crds[2].inputs["file"] == f"{base}/client/config/crd/snapshot.storage.k8s.io_volumesnapshots.yaml"
    controller = with_snapshots.named("vsphere-csi-snapshot-controller")
    assert controller.inputs["file"] == f"{base}/deploy/kubernetes/snapshot-controller/setup-snapshot-controller.yaml"
    assert all(c.urn in controller.depends_on for c in crds)
    snapshot_class = with_snapshots.named("vsphere-csi-snapshot-class")
    assert snapshot_class.type == "kubernetes:snapshot.storage.k8s.io/v1:VolumeSnapshotClass"
    assert snapshot_class.inputs == {
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshotClass",
        "metadata": {"name": "vsphere-snapshots"},
        "driver": names.CSI_DRIVER,
        "deletionPolicy": "Retain",
    }
    assert all(c.urn in snapshot_class.depends_on for c in crds)
    assert with_snapshots.named("vsphere-csi-driver").urn in snapshot_class.depends_on
    assert with_snapshots.outputs["snapshotClass"] == "vsphere-snapshots"


def test_snapshot_version_can_be_pinned():
    evaluation = build(stack_config(csi={"snapshots": {"enabled": True, "version": "v8.2.0", "deletionPolicy": "Delete"}}))
    assert "/v8.2.0/" in evaluation.named("vsphere-csi-snapshot-rbac").inputs["file"]
    assert evaluation.named("vsphere-csi-snapshot-class").inputs["deletionPolicy"] == "Delete"
