"""StorageClass: the cluster's default StorageClass, backed by the vSphere CSI driver.

Creates one `storage.k8s.io/v1` StorageClass (default name `vmware-sc`) marked as the default class,
with `reclaimPolicy: Retain` (deleting a PVC never deletes the county's vSphere disk) and
`allowVolumeExpansion: true` (CouchDB volumes grow in place).

Data safety: a StorageClass holds no data, and a PersistentVolume keeps its own reclaim policy, so
replacing the class leaves every volume untouched. Its parameters are immutable in Kubernetes, so a
changed storage policy or datastore replaces the class object (delete, then create under the same
name; `delete_before_replace`), and only volumes provisioned afterwards use the new parameters.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from config.model import StorageClassConfig
from config.names import CSI_DRIVER

from . import render
from .cpi import dependencies

DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


def storage_class_object(cfg: StorageClassConfig) -> dict[str, Any]:
    """The StorageClass as a Kubernetes object (what the component registers)."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": cfg.name, "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
        "provisioner": CSI_DRIVER,
        "parameters": render.storage_class_parameters(cfg.storage_policy_name, cfg.datastore_url, cfg.fs_type),
        "reclaimPolicy": "Retain",
        "allowVolumeExpansion": True,
        # No topology in this cluster: bind as soon as the claim exists, as upstream's example does.
        "volumeBindingMode": "Immediate",
    }


class StorageClass(pulumi.ComponentResource):
    """The default vSphere StorageClass."""

    storage_class: k8s.storage.v1.StorageClass
    name: pulumi.Output[str]
    """The class name, for PVCs; resolves once the class exists (depend on it by using it)."""

    def __init__(self, name: str, cfg: StorageClassConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cht-hosting:storage:StorageClass", name, None, opts)
        obj = storage_class_object(cfg)
        self.storage_class = k8s.storage.v1.StorageClass(
            f"{name}-class",
            metadata=k8s.meta.v1.ObjectMetaArgs(**obj["metadata"]),
            provisioner=obj["provisioner"],
            parameters=obj["parameters"],
            reclaim_policy=obj["reclaimPolicy"],
            allow_volume_expansion=obj["allowVolumeExpansion"],
            volume_binding_mode=obj["volumeBindingMode"],
            # The name is fixed, so a replacement must delete the old object before creating the new one.
            opts=pulumi.ResourceOptions(parent=self, depends_on=dependencies(opts), delete_before_replace=True),
        )
        self.name = self.storage_class.metadata.apply(lambda m: m.name)
        # Marks the component complete and lists its outputs in the engine (and `pulumi stack` output).
        self.register_outputs({"name": self.name})
