"""The platform the counties run on, in either cluster mode, as one result: `Platform`.

- `build_vsphere_platform`: VMs -> k3s -> CPI -> CSI -> StorageClass, and the ingress edge; each waits only on
  what it needs.
- `use_existing_cluster`: a cluster the operator brings (k3d on a laptop, EKS, ...): only a provider for it.

Both export what operators need of the platform; `__main__.py` composes the counties, backups and monitoring
on the result without asking which mode built it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

import config
from config import capacity, compatibility, names
from config.model import StorageClassConfig

from .edge.ingress import IngressEdge, api_transport
from .k3s.cluster import K3sCluster
from .ssh.trust import SshTrust
from .storage.cpi import VsphereCpi
from .storage.csi import VsphereCsi
from .storage.storage_class import StorageClass
from .vsphere.access import VsphereAccess
from .vsphere.node_pool import NodePool


@dataclass(frozen=True)
class Platform:
    """What the counties, backups and monitoring are built on."""

    provider: k8s.Provider
    """The Kubernetes provider of the cluster."""
    storage_class_name: pulumi.Input[str]
    """The counties' StorageClass (its name resolves once the class exists)."""
    county_class: StorageClassConfig | None
    """The counties' StorageClass as the program creates it (the drill's class copies it); None: the cluster's own."""
    county_after: list[pulumi.Resource] = field(default_factory=list)
    """What the counties (and Velero) wait on: the StorageClass, when the program creates it."""
    ingress_after: list[pulumi.Resource] = field(default_factory=list)
    """What a county's way in (API Service, Ingress) waits on: the shared ServersTransport, where this stack makes
    it (a county stack: its platform stack made it before)."""
    monitoring_after: list[pulumi.Resource] = field(default_factory=list)
    """What the monitoring stack waits on: the CPI (its pods schedule once the nodes are initialised)."""
    etcd_seed: str | None = None
    """The server that seeded etcd (remembered in deployedState); None without k3s."""
    k3s_before_vm_tracking: frozenset[str] = frozenset()
    """Nodes whose k3s install predates installs that follow their VM (config/deployed.py)."""
    k3s_config: dict[str, str] = field(default_factory=dict)
    """Each node's k3s configuration digest (deployedState), by node name."""
    escrow: pulumi.Output[dict] | None = None
    """The k3s tokens a control-plane restore needs (a secret, for the stack output `escrow`); None without k3s."""
    restore_scripts: dict[str, str] = field(default_factory=dict)
    """The control plane's restore scripts (exported on every stack of ours; with backups, beside the counties')."""


def build_vsphere_platform(stack: config.Stack, deployed: config.deployed.DeployedState | None) -> Platform:
    """VMs, k3s, CPI, CSI, StorageClass and the ingress edge on vSphere, and their outputs."""
    cfg, secrets = stack.config, stack.secrets
    access = VsphereAccess("vsphere", cfg.vsphere, secrets)
    ssh = SshTrust("ssh", cfg.ssh)
    servers = NodePool("control-plane", cfg.control_plane, role="server", access=access, network=cfg.network, trust=ssh)
    agents = NodePool("agents", cfg.agents, role="agent", access=access, network=cfg.network, trust=ssh)
    k3s_before_vm_tracking = config.deployed.k3s_installs_before_vm_tracking(deployed, cfg)
    if k3s_before_vm_tracking:
        pulumi.log.warn(
            f"k3s on {', '.join(sorted(k3s_before_vm_tracking))} was installed before node installs followed their "
            "VM: a replaced VM of these nodes does not get k3s again. Replace such a node by removing it in one "
            "update and adding it in the next (docs/runbooks/replace-node.md)"
        )
    cluster = K3sCluster(
        "k3s",
        cfg.k3s,
        servers=servers.nodes,
        agents=agents.nodes,
        etcd_seed=config.deployed.etcd_seed(deployed, cfg),
        installed_before_vm_tracking=k3s_before_vm_tracking,
        # etcd snapshots leave the servers for the backup bucket with the servers' own key pair (never Velero's).
        backup=cfg.backup,
        s3_keys=(secrets.etcd_backup_access_key_id, secrets.etcd_backup_secret_access_key),
    )

    def on_cluster(*after: pulumi.Resource) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(provider=cluster.provider, depends_on=list(after))

    # The CPI initialises the nodes (removes their uninitialized taint) before the CSI controller can run.
    storage_password = secrets.storage_password
    cpi = VsphereCpi("vsphere-cpi", cfg.cpi, cfg.vsphere, storage_password, opts=on_cluster())
    csi = VsphereCsi(
        "vsphere-csi", cfg.csi, cfg.vsphere, storage_password,
        control_plane_nodes=len(cfg.control_plane.nodes), opts=on_cluster(cpi),
    )
    storage_class = StorageClass("storage-class", cfg.storage_class, opts=on_cluster(csi))
    edge = IngressEdge(
        "ingress",
        cfg.ingress,
        hosts={name: county.host for name, county in cfg.counties.items()},
        agent_ips=list(cfg.agents.nodes.values()),
        # Validation refuses a k3s release the table cannot place, so this is True or False here.
        traefik_chart_v40=bool(compatibility.traefik_chart_v40(cfg.k3s.version)),
        opts=on_cluster(),
    )

    pulumi.export("kubeconfig", cluster.kubeconfig)
    pulumi.export("apiUrl", cluster.api_url)
    # Remembered (here and in deployedState) for the next update: once the cluster exists no server is seeded again.
    pulumi.export("etcdSeed", cluster.etcd_seed)
    if cluster.lb_nginx_config:
        pulumi.export("apiLoadBalancerNginxConfig", cluster.lb_nginx_config)
    pulumi.export("edgeNginxConfig", edge.edge_nginx_config)
    pulumi.export("storageClass", storage_class.name)
    export_api_transport()
    pulumi.export("csiClusterId", csi.cluster_id)
    pulumi.export("capacityReport", capacity.table(capacity.plan(cfg)))
    pulumi.export("controlPlane", cluster.summary)
    pulumi.export("vcenterTls", access.tls)
    # The nodes' lasting SSH host keys (public), as known_hosts lines for operators' SSH clients.
    pulumi.export(
        "sshKnownHosts",
        pulumi.Output.all(*servers.known_hosts.values(), *agents.known_hosts.values()).apply(
            lambda lines: "\n".join(lines) + "\n"
        ),
    )
    return Platform(
        provider=cluster.provider,
        storage_class_name=storage_class.name,
        county_class=cfg.storage_class,
        county_after=[storage_class],
        ingress_after=[edge.api_transport],
        # Monitoring pods can schedule once the CPI has initialised the nodes; Prometheus's volume claim binds
        # whenever the StorageClass appears, so the stack need not wait for the CSI chain (nor make the
        # counties' scrape objects, which wait for its CRDs, wait for it).
        monitoring_after=[cpi],
        etcd_seed=cluster.etcd_seed,
        k3s_before_vm_tracking=k3s_before_vm_tracking,
        k3s_config=cluster.config_digests,
        escrow=cluster.escrow,
        restore_scripts=cluster.restore_scripts,
    )


def use_existing_cluster(stack: config.Stack) -> Platform:
    """An existing cluster (k3d on a laptop, EKS, ...): only the counties, on its own StorageClass."""
    existing = stack.config.existing_cluster
    provider = k8s.Provider(
        PROVIDER_NAMES["existing"],
        kubeconfig=stack.secrets.kubeconfig,  # None: the operator's own kubeconfig ($KUBECONFIG or ~/.kube/config)
        context=existing.context,
        # A new kubeconfig or context for the same cluster updates the provider instead of replacing
        # everything on it (the counties' volumes included).
        cluster_identifier=names.cluster_identifier(pulumi.get_stack()),
    )
    # traefik runs in kube-system there too (docs/existing-cluster.md); the counties' API Services name this.
    transport = api_transport(pulumi.ResourceOptions(provider=provider))
    export_api_transport()
    return Platform(
        provider=provider, storage_class_name=existing.storage_class, county_class=None, ingress_after=[transport]
    )


# The Kubernetes provider's name in each cluster mode. A county stack names its own provider the same, at the
# stack's root: where `pulumi state move` puts the copy of the platform's provider it takes along with a county
# (the copy's parent is not moved, so it lands at the root), so the moved county keeps its provider.
PROVIDER_NAMES = {"vsphere-k3s": "k3s-k8s", "existing": "existing-cluster"}


def export_api_transport() -> None:
    """What county stacks check before they update: the traefik ServersTransport their API Services name exists
    (the platform deploys it; a county stack updated before its platform would name one that is not there)."""
    pulumi.export("apiTransport", names.API_TRANSPORT_REFERENCE)


def platform_not_ready(outputs: dict, platform_stack: str) -> str | None:
    """Why a county stack must wait for its platform stack's update, or None when the platform runs this release."""
    if outputs.get("apiTransport") == names.API_TRANSPORT_REFERENCE:
        return None
    state = "has not been deployed yet" if not outputs else "has not been updated to this release yet"
    return (
        f"{config.PROJECT}:stacks.platform: the platform stack {platform_stack} {state} (its outputs have no "
        f"apiTransport {names.API_TRANSPORT_REFERENCE}, the traefik ServersTransport this stack's county API Services "
        f"name); run `pulumi up --stack {platform_stack}` first, then this stack (README, 'Deploying for real'; "
        "docs/runbooks/move-stacks.md)"
    )


def from_platform_stack(stack: config.Stack, organization: str | None) -> Platform:
    """A county stack: the cluster and StorageClass its platform stack deployed (read through a StackReference)."""
    cfg, platform_stack = stack.config, stack.layout.platform
    assert platform_stack is not None
    reference = pulumi.StackReference(
        "platform",
        stack_name=config.deployed.stack_name(organization or pulumi.get_organization(), pulumi.get_project(), platform_stack),
    )
    from pulumi.runtime.sync_await import _sync_await  # the SDK's own way to wait inside a program (invokes)

    # Before anything of the counties is registered: their objects name what the platform deploys.
    problem = platform_not_ready(_sync_await(reference.outputs.future()) or {}, platform_stack)
    if problem:
        raise pulumi.RunError(problem)
    kubeconfig = reference.get_output("kubeconfig")
    provider = k8s.Provider(
        PROVIDER_NAMES[cfg.cluster_mode],
        # vsphere-k3s: the cluster's admin kubeconfig; existing: the platform's kubeconfig when it has one, else the
        # operator's own ($KUBECONFIG or ~/.kube/config), as in the platform stack.
        kubeconfig=pulumi.Output.secret(kubeconfig) if cfg.cluster_mode == "vsphere-k3s" else kubeconfig,
        **({"context": cfg.existing_cluster.context} if cfg.existing_cluster is not None else {}),
        # The platform stack's identifier: the same cluster, so the provider a county moved with is this one.
        cluster_identifier=names.cluster_identifier(platform_stack),
    )
    return Platform(provider=provider, storage_class_name=config.deployed.storage_class_of(cfg), county_class=cfg.storage_class)
