"""VsphereCsi: the vSphere Container Storage Interface driver (upstream vanilla manifest).

Creates:
- Namespace `vmware-system-csi` (the driver manifest does not contain it; upstream ships it as a
  separate namespace.yaml);
- Secret `vsphere-config-secret` with `csi-vsphere.conf` (and vCenter's CA as `vsphere-ca.pem` when
  `vsphere.caCertificate` is set), a Pulumi secret, with a `cluster-id` that is stable for the stack;
- the upstream `vsphere-csi-driver.yaml` of `csi.version` (from `csi.manifestUrl`, so an air-gapped
  site can mirror it), fitted to this cluster by a transform: controller replicas = min(3, control-plane
  nodes), scheduled on the servers and tolerating their `CriticalAddonsOnly` taint;
- with `csi.snapshots.enabled`: the snapshot CRDs, the snapshot-controller (kube-system) and a
  VolumeSnapshotClass `vsphere-snapshots`.

Construct it after the VsphereCpi (`depends_on=[cpi]`): the CSI controller does not tolerate the
`node.cloudprovider.kubernetes.io/uninitialized` taint that the CPI clears.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from config import compatibility
from config.model import CsiConfig, VsphereConfig
from config.names import CSI_NAMESPACE

from . import render
from .cpi import dependencies, vcenter_access

SNAPSHOT_CLASS = "vsphere-snapshots"


def object_transform(
    adjust: Callable[[dict[str, Any]], dict[str, Any] | None],
) -> Callable[[pulumi.ResourceTransformArgs], pulumi.ResourceTransformResult | None]:
    """A Pulumi transform that applies a pure object adjustment to a manifest's Kubernetes objects."""

    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        if not args.type_.startswith("kubernetes:") or not isinstance(args.props, dict) or "kind" not in args.props:
            return None
        adjusted = adjust(dict(args.props))
        if adjusted is None:
            return None
        return pulumi.ResourceTransformResult(props=adjusted, opts=args.opts)

    return transform


class VsphereCsi(pulumi.ComponentResource):
    """The vSphere CSI driver, its vCenter config Secret, and optionally CSI snapshots."""

    driver: k8s.yaml.v2.ConfigFile
    """The upstream driver manifest; depend on it (or on this component) before provisioning volumes."""
    cluster_id: str
    """The CNS cluster id written to csi-vsphere.conf."""
    snapshot_class_name: pulumi.Output[str] | None

    def __init__(
        self,
        name: str,
        csi: CsiConfig,
        vsphere: VsphereConfig,
        password: pulumi.Input[str],
        control_plane_nodes: int,
        opts: pulumi.ResourceOptions | None = None,
    ):
        """`password`: the storage account's password; `control_plane_nodes`: how many k3s servers there are."""
        super().__init__("cht-hosting:storage:VsphereCsi", name, None, opts)
        # Every child waits for what the component waits for (the CPI): see `dependencies`.
        self._after = after = dependencies(opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=after)
        access = vcenter_access(vsphere)
        self.cluster_id = csi.cluster_id or render.cluster_id(pulumi.get_project(), pulumi.get_stack())
        cluster_id = self.cluster_id

        self.namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=CSI_NAMESPACE),
            opts=child,
        )

        def secret_data(password_value: str) -> dict[str, str]:
            data = {render.CSI_CONF_KEY: render.csi_conf(access, password_value, cluster_id)}
            if access.ca_certificate and not access.insecure:
                data[render.CSI_CA_KEY] = access.ca_certificate
            return data

        self.config_secret = k8s.core.v1.Secret(
            f"{name}-config",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=render.CSI_SECRET, namespace=CSI_NAMESPACE),
            type="Opaque",
            string_data=pulumi.Output.secret(password).apply(secret_data),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*after, self.namespace]),
        )

        self.driver = k8s.yaml.v2.ConfigFile(
            f"{name}-driver",
            file=render.manifest_url(csi.manifest_url, csi.version),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*after, self.namespace, self.config_secret],
                transforms=[object_transform(lambda obj: render.adjust_csi_object(obj, control_plane_nodes))],
            ),
        )

        self.snapshot_class_name = None
        if csi.snapshots.enabled:
            self._snapshots(name, csi, control_plane_nodes)

        # Marks the component complete and lists its outputs in the engine (and `pulumi stack` output).
        self.register_outputs({"cluster_id": self.cluster_id, "snapshot_class_name": self.snapshot_class_name})

    def _snapshots(self, name: str, csi: CsiConfig, control_plane_nodes: int) -> None:
        version = csi.snapshots.version or compatibility.qualified_snapshotter(csi.version)
        if version is None:  # config validation reports this first; guard direct use
            raise ValueError(f"no external-snapshotter release is known for vSphere CSI {csi.version}")
        urls = render.snapshot_urls(csi.snapshots.base_url, version)
        self.snapshot_crds = [
            k8s.yaml.v2.ConfigFile(
                f"{name}-crd-{crd}", file=urls[crd], opts=pulumi.ResourceOptions(parent=self, depends_on=self._after)
            )
            for crd in render.SNAPSHOT_CRDS
        ]
        self.snapshot_rbac = k8s.yaml.v2.ConfigFile(
            f"{name}-snapshot-rbac", file=urls["rbac"], opts=pulumi.ResourceOptions(parent=self, depends_on=self._after)
        )
        self.snapshot_controller = k8s.yaml.v2.ConfigFile(
            f"{name}-snapshot-controller",
            file=urls["controller"],
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*self.snapshot_crds, self.snapshot_rbac],
                transforms=[
                    object_transform(lambda obj: render.adjust_snapshot_object(obj, control_plane_nodes, version))
                ],
            ),
        )
        self.snapshot_class = VolumeSnapshotClass(
            f"{name}-snapshot-class",
            render.volume_snapshot_class(SNAPSHOT_CLASS, csi.snapshots.deletion_policy),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*self.snapshot_crds, self.driver]),
        )
        self.snapshot_class_name = pulumi.Output.from_input(SNAPSHOT_CLASS)


class VolumeSnapshotClass(pulumi.CustomResource):
    """A snapshot.storage.k8s.io/v1 VolumeSnapshotClass. The SDK's generic CustomResource takes only a
    `spec`, while this kind has top-level fields (driver, deletionPolicy)."""

    def __init__(self, name: str, obj: dict[str, Any], opts: pulumi.ResourceOptions | None = None):
        super().__init__("kubernetes:snapshot.storage.k8s.io/v1:VolumeSnapshotClass", name, dict(obj), opts)
