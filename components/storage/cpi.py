"""VsphereCpi: the vSphere Cloud Provider Interface on the cluster (official vsphere-cpi Helm chart).

Creates, in kube-system:
- Secret `vsphere-cloud-secret` with `<vcenter>.username` / `<vcenter>.password` (a Pulumi secret; the
  chart is told not to create its own, so no credential is ever a chart value);
- ConfigMap `cloud-config`: the CPI's vsphere.conf (YAML; vCenter, datacenter, how to verify vCenter's
  certificate, which Secret holds the credentials) and, with `vsphere.caCertificate`, the CA bundle
  `vsphere-ca.pem` it names as `caFile`. Rendered by us, not by the chart: chart 1.36.0 writes the CA as
  `ca-file`, which CPI v1.36.0 does not read (see `render.cpi_conf`);
- Helm release `vsphere-cpi` of the chart version pinned in `cpi.version` (its minor is the k3s minor,
  checked by config) with its own config and Secret turned off, so its DaemonSet mounts `cloud-config`.
  It initialises the nodes (providerID, addresses) and clears the
  `node.cloudprovider.kubernetes.io/uninitialized` taint the CSI controller does not tolerate.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from config.model import CpiConfig, VsphereConfig
from config.names import CPI_NAMESPACE

from .. import helm
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

        config_data = render.cpi_config_data(access)
        self.config_map = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=render.CPI_CONFIGMAP, namespace=CPI_NAMESPACE),
            data=config_data,
            opts=child,
        )
        depends.append(self.config_map)
        values = render.cpi_values(config_data, image=cpi.image)

        self.release = helm.release(
            f"{name}-release",
            name="vsphere-cpi",
            chart="vsphere-cpi",
            version=cpi.version,
            repository=cpi.chart_repository,
            namespace=CPI_NAMESPACE,
            values=values,
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
