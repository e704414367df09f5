"""The default StorageClass, the CPI -> CSI -> StorageClass order, and secret hygiene over the chain."""

from __future__ import annotations

import kubernetes_validate

from components.storage.render import gcfg_quote
from config import names
from tests.storage_stack import KUBECONFIG, PASSWORD, build, provider_urn, stack_config


def test_default_class_retains_and_expands(national_storage):
    storage_class = national_storage.named("storage-class-class")
    assert storage_class.type == "kubernetes:storage.k8s.io/v1:StorageClass"
    assert storage_class.inputs == {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": "vmware-sc", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": names.CSI_DRIVER,
        "parameters": {"csi.storage.k8s.io/fstype": "ext4", "storagepolicyname": "cht-couchdb"},
        "reclaimPolicy": "Retain",
        "allowVolumeExpansion": True,
        "volumeBindingMode": "Immediate",
    }
    kubernetes_validate.validate(storage_class.inputs, "1.35", strict=True)
    assert national_storage.outputs["storageClass"] == "vmware-sc"


def test_parameter_change_replaces_only_the_class_object(national_storage):
    storage_class = national_storage.named("storage-class-class")
    assert storage_class.delete_before_replace  # fixed name: delete the old object, then create the new
    assert not storage_class.protect


def test_datastore_url_name_and_fstype_come_from_config():
    evaluation = build(
        stack_config(storageClass={"name": "cht-gold", "storagePolicyName": None, "datastoreUrl": "ds:///vmfs/volumes/vsan:52/", "fsType": "xfs"})
    )
    inputs = evaluation.named("storage-class-class").inputs
    assert inputs["metadata"]["name"] == "cht-gold"
    assert inputs["parameters"] == {"csi.storage.k8s.io/fstype": "xfs", "datastoreurl": "ds:///vmfs/volumes/vsan:52/"}
    assert evaluation.outputs["storageClass"] == "cht-gold"


def test_only_one_default_class(national_storage):
    defaults = [
        r for r in national_storage.registrations
        if r.inputs.get("kind") == "StorageClass"
        and (r.inputs.get("metadata") or {}).get("annotations", {}).get("storageclass.kubernetes.io/is-default-class") == "true"
    ]
    assert [r.name for r in defaults] == ["storage-class-class"]


def test_chain_is_cpi_then_csi_then_storage_class_on_the_clusters_provider(national_storage):
    provider = provider_urn(national_storage)
    cpi, csi, sc = national_storage.named("vsphere-cpi-release"), national_storage.named("vsphere-csi-driver"), national_storage.named("storage-class-class")
    assert cpi.urn in csi.depends_on
    assert csi.urn in sc.depends_on
    for r in national_storage.registrations:
        if (r.custom and r.type.startswith("kubernetes:")) or r.type.startswith("kubernetes:yaml"):
            assert r.provider.startswith(provider + "::"), r.name
    order = [r.name for r in national_storage.registrations]
    assert order.index("vsphere-cpi-release") < order.index("vsphere-csi-driver") < order.index("storage-class-class")


def contains(value, needle: str) -> bool:
    if isinstance(value, str):
        return needle in value
    if isinstance(value, dict):
        return any(contains(v, needle) for v in value.values())
    if isinstance(value, list):
        return any(contains(v, needle) for v in value)
    return False


def test_no_secret_in_plain_inputs_or_outputs():
    evaluation = build(stack_config(csi={"snapshots": {"enabled": True}}))
    escaped = gcfg_quote(PASSWORD)[1:-1]  # as csi-vsphere.conf carries it
    holders = set()
    for r in evaluation.registrations:
        plain = {k: v for k, v in r.inputs.items() if k not in r.secret_inputs}
        assert not contains(plain, PASSWORD) and not contains(plain, escaped), r.name
        assert not contains(plain, KUBECONFIG), r.name
        if contains(r.inputs, PASSWORD) or contains(r.inputs, escaped):
            holders.add(r.name)
    assert holders == {"vsphere-cpi-credentials", "vsphere-csi-config"}
    assert not contains(evaluation.outputs, PASSWORD)
    assert "kubeconfig" in evaluation.named("k8s").secret_inputs
