"""cht-hosting: load and validate the stack config, compose the components, export what operators need."""

import pulumi
import pulumi_kubernetes as k8s

import config
import tuning
from components.cht.project import ChtProject
from components.edge.ingress import IngressEdge
from components.k3s.cluster import K3sCluster
from components.ssh.trust import SshTrust
from components.storage.cpi import VsphereCpi
from components.storage.csi import VsphereCsi
from components.storage.storage_class import StorageClass
from components.vsphere.access import VsphereAccess
from components.vsphere.node_pool import NodePool
from config import capacity, names

tuning.apply()

try:
    stack = config.load()
except config.ConfigError as error:
    # Nothing has been registered yet; RunError prints the message without a traceback.
    raise pulumi.RunError(str(error)) from None

cfg, secrets = stack.config, stack.secrets
for warning in config.warnings(cfg):
    pulumi.log.warn(warning)

if cfg.cluster_mode == "vsphere-k3s":
    # The platform: VMs -> k3s -> CPI -> CSI -> StorageClass, each waiting only on what it needs.
    access = VsphereAccess("vsphere", cfg.vsphere, secrets)
    ssh = SshTrust("ssh", cfg.ssh)
    servers = NodePool("control-plane", cfg.control_plane, role="server", access=access, network=cfg.network, trust=ssh)
    agents = NodePool("agents", cfg.agents, role="agent", access=access, network=cfg.network, trust=ssh)
    cluster = K3sCluster("k3s", cfg.k3s, servers=servers.nodes, agents=agents.nodes)

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
        opts=on_cluster(),
    )

    pulumi.export("kubeconfig", cluster.kubeconfig)
    pulumi.export("apiUrl", cluster.api_url)
    if cluster.lb_nginx_config:
        pulumi.export("apiLoadBalancerNginxConfig", cluster.lb_nginx_config)
    pulumi.export("edgeNginxConfig", edge.edge_nginx_config)
    pulumi.export("storageClass", storage_class.name)
    pulumi.export("csiClusterId", csi.cluster_id)
    pulumi.export("capacityReport", capacity.table(capacity.plan(cfg)))
    provider, storage_class_name, county_after = cluster.provider, storage_class.name, [storage_class]
else:
    # An existing cluster (k3d on a laptop, EKS, ...): only the counties, on its own StorageClass.
    existing = cfg.existing_cluster
    provider = k8s.Provider(
        "existing-cluster",
        kubeconfig=secrets.kubeconfig,  # None: the operator's own kubeconfig ($KUBECONFIG or ~/.kube/config)
        context=existing.context,
        # A new kubeconfig or context for the same cluster updates the provider instead of replacing
        # everything on it (the counties' volumes included).
        cluster_identifier=names.cluster_identifier(pulumi.get_stack()),
    )
    storage_class_name, county_after = existing.storage_class, []

# Counties deploy in parallel: each waits only for the StorageClass, never for another county.
projects = {
    name: ChtProject(
        name,
        county,
        storage_class=storage_class_name,
        credentials=stack.county_credentials(name),
        opts=pulumi.ResourceOptions(provider=provider, depends_on=county_after),
    )
    for name, county in cfg.counties.items()
}

pulumi.export(
    "counties",
    {
        name: {
            "url": projects[name].url,
            "version": county.settings.version,
            "couchdbNodes": county.settings.couchdb_nodes,
            "couchdbStorageGb": county.settings.couchdb_storage_gb,
            "cpu": county.settings.budget.cpu,
            "memoryGb": county.settings.budget.memory_gb,
        }
        for name, county in cfg.counties.items()
    },
)
