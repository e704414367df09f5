"""VsphereCpi: the vSphere Cloud Provider Interface on the cluster (official vsphere-cpi Helm chart).

Creates, in kube-system:
- Secret `vsphere-cloud-secret` with `<vcenter>.username` / `<vcenter>.password` (a Pulumi secret; the
  chart is told not to create its own, so no credential is ever a chart value);
- ConfigMap `vsphere-cpi-ca` with vCenter's CA, when `vsphere.caCertificate` is set (and no thumbprint);
- Helm release `vsphere-cpi` of the chart version pinned in `cpi.version` (its minor is the k3s minor,
  checked by config), which initialises the nodes (providerID, addresses) and clears the
  `node.cloudprovider.kubernetes.io/uninitialized` taint the CSI controller does not tolerate.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from config.model import CpiConfig, VsphereConfig
from config.names import CPI_NAMESPACE

from . import render


def vcenter_access(vsphere: VsphereConfig) -> render.VcenterAccess:
    """What the in-cluster components need from the `vsphere` config (the storage account, not Pulumi's)."""
    return render.VcenterAccess(
        server=vsphere.server,
        datacenter=vsphere.datacenter,
        user=vsphere.storage_account,
        thumbprint=vsphere.thumbprint,
        ca_certificate=vsphere.ca_certificate,
        insecure=vsphere.insecure,
    )


class VsphereCpi(pulumi.ComponentResource):
    """The vSphere CPI Helm release and the Secret it reads its vCenter credentials from."""

    release: k8s.helm.v3.Release
    """The Helm release; depend on it (or on this component) to run after the nodes are initialised."""
    release_name: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        cpi: CpiConfig,
        vsphere: VsphereConfig,
        password: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ):
        """`password` is the storage account's password (`vsphereStoragePassword`, else `vspherePassword`)."""
        super().__init__("cht-hosting:storage:VsphereCpi", name, None, opts)
        after = dependencies(opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=after)
        access = vcenter_access(vsphere)
        secret_password = pulumi.Output.secret(password)

        self.credentials = k8s.core.v1.Secret(
            f"{name}-credentials",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=render.CPI_SECRET, namespace=CPI_NAMESPACE),
            type="Opaque",
            string_data=secret_password.apply(lambda pw: render.cpi_credentials(access.server, access.user, pw)),
            opts=child,
        )
        depends: list[pulumi.Resource] = [*after, self.credentials]

        values = render.cpi_values(access, image=cpi.image)
        if values["config"]["caFile"]:
            self.ca = k8s.core.v1.ConfigMap(
                f"{name}-ca",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=render.CPI_CA_CONFIGMAP, namespace=CPI_NAMESPACE),
                data={render.CPI_CA_FILE: access.ca_certificate},
                opts=child,
            )
            depends.append(self.ca)

        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            name="vsphere-cpi",
            chart="vsphere-cpi",
            version=cpi.version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=cpi.chart_repository),
            namespace=CPI_NAMESPACE,
            values=values,
            # Wait for the DaemonSet to be ready, and roll back a failed upgrade instead of leaving it half done.
            atomic=True,
            cleanup_on_fail=True,
            max_history=10,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends),
        )
        self.release_name = self.release.name
        # Marks the component complete and lists its outputs in the engine (and `pulumi stack` output).
        self.register_outputs({"release_name": self.release_name})


def dependencies(opts: pulumi.ResourceOptions | None) -> list[pulumi.Resource]:
    """The `depends_on` given to a component, for its children: the engine does not make a component's
    children wait for the component's own dependencies."""
    if opts is None or opts.depends_on is None:
        return []
    depends = opts.depends_on
    return list(depends) if isinstance(depends, (list, tuple)) else [depends]  # type: ignore[list-item]
