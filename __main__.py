"""cht-hosting: load and validate the stack config, compose the components, export what operators need."""

import pulumi
import pulumi_kubernetes as k8s

import config
import tuning
from components.backup import render as backup_render
from components.backup import scripts as backup_scripts
from components.backup.county import CountyBackup, FinalCountyBackup
from components.backup.velero import BackupEngine
from components.cht.project import ChtProject
from components.edge.ingress import IngressEdge
from components.k3s import render as k3s_render
from components.k3s import restore as k3s_restore
from components.k3s.cluster import K3sCluster
from components.monitoring import render as monitoring_render
from components.monitoring.county import CountyMonitoring
from components.monitoring.stack import PlatformMonitoring
from components.ssh.trust import SshTrust
from components.storage import render as storage_render
from components.storage.cpi import VsphereCpi
from components.storage.csi import VsphereCsi
from components.storage.storage_class import StorageClass, storage_class_object
from components.vsphere.access import VsphereAccess
from components.vsphere.node_pool import NodePool
from config import capacity, compatibility, egress, names

tuning.apply()

# K3sCluster joins every server through the API once the cluster exists (the seed is remembered), so the
# seed may be removed and a server that sorts before it may be added.
ETCD_SEED_CAN_MOVE = True

try:
    stack = config.load()
    # What the last update deployed (a read of this stack's own outputs), checked before anything registers.
    deployed, _ = config.deployed.read(stack.config.deployed_state.organization)
    csi_cluster_id = None
    if stack.config.csi is not None:
        csi_cluster_id = stack.config.csi.cluster_id or storage_render.cluster_id(pulumi.get_project(), pulumi.get_stack())
    if problems := config.guards.check(
        stack.config, deployed, csi_cluster_id=csi_cluster_id, etcd_seed_can_move=ETCD_SEED_CAN_MOVE
    ):
        raise config.ConfigError(problems)
except config.ConfigError as error:
    # Nothing has been registered yet; RunError prints the message without a traceback.
    raise pulumi.RunError(str(error)) from None

cfg, secrets = stack.config, stack.secrets
for warning in [*config.warnings(cfg), *config.guards.unused_acceptances(cfg, deployed)]:
    pulumi.log.warn(warning)

if cfg.cluster_mode == "vsphere-k3s":
    # The platform: VMs -> k3s -> CPI -> CSI -> StorageClass, each waiting only on what it needs.
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
    # etcd snapshots leave the servers for the backup bucket, with the bucket's keys as secrets.
    etcd_s3 = (
        k3s_render.EtcdS3(
            endpoint=cfg.backup.s3.endpoint,
            bucket=cfg.backup.s3.bucket,
            folder=cfg.backup.etcd.folder,
            region=cfg.backup.s3.region,
            schedule=cfg.backup.etcd.schedule,
            retention=cfg.backup.etcd.retention,
            ca_bundle=cfg.backup.s3.ca_bundle,
            insecure=cfg.backup.s3.insecure,
        )
        if cfg.backup and cfg.backup.etcd
        else None
    )
    cluster = K3sCluster(
        "k3s",
        cfg.k3s,
        servers=servers.nodes,
        agents=agents.nodes,
        etcd_seed=config.deployed.etcd_seed(deployed, cfg),
        installed_before_vm_tracking=k3s_before_vm_tracking,
        etcd_s3=etcd_s3,
        s3_keys=(secrets.backup_access_key_id, secrets.backup_secret_access_key) if etcd_s3 else None,
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
    pulumi.export("csiClusterId", csi.cluster_id)
    pulumi.export("capacityReport", capacity.table(capacity.plan(cfg)))
    pulumi.export(
        "controlPlane",
        {
            "secretsEncryption": cfg.k3s.secrets_encryption,
            "agentToken": True,  # agents join with their own token, never the server token
            "supervisorMetrics": True,  # etcd snapshot and certificate-expiry metrics for monitoring
            "etcdSnapshots": f"s3://{etcd_s3.bucket}/{etcd_s3.folder}" if etcd_s3 else "on the servers' disks only",
        },
    )
    pulumi.export("vcenterTls", access.tls)
    # The nodes' lasting SSH host keys (public), as known_hosts lines for operators' SSH clients.
    pulumi.export(
        "sshKnownHosts",
        pulumi.Output.all(*servers.known_hosts.values(), *agents.known_hosts.values()).apply(
            lambda lines: "\n".join(lines) + "\n"
        ),
    )
    provider, storage_class_name, county_after = cluster.provider, storage_class.name, [storage_class]
    etcd_seed, k3s_config = cluster.etcd_seed, cluster.config_digests
    drill_class = None
    if cfg.backup and cfg.backup.drill.storage_class is None:
        # The drill's volumes: the county class's parameters, deleted with their claims.
        drill_class = storage_class_object(cfg.storage_class)
        drill_class["metadata"] = {
            "name": f"{cfg.storage_class.name}-restore-drill",
            "labels": {**backup_render.MANAGED, backup_render.SCRATCH_LABEL: "true"},
        }
        drill_class["reclaimPolicy"] = "Delete"
    # Monitoring pods can schedule once the CPI has initialised the nodes; Prometheus's volume claim binds
    # whenever the StorageClass appears, so the stack need not wait for the CSI chain (nor make the
    # counties' scrape objects, which wait for its CRDs, wait for it).
    monitoring_after: list[pulumi.Resource] = [cpi]
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
    etcd_seed, k3s_before_vm_tracking, k3s_config = None, frozenset(), {}
    drill_class = None
    storage_class_name, county_after, monitoring_after = existing.storage_class, [], []

# Counties deploy in parallel: each waits only for the StorageClass, never for another county.
county_access = egress.cluster_access(cfg)
projects = {
    name: ChtProject(
        name,
        county,
        storage_class=storage_class_name,
        access=county_access,
        credentials=stack.county_credentials(name),
        opts=pulumi.ResourceOptions(provider=provider, depends_on=county_after),
    )
    for name, county in cfg.counties.items()
}

if cfg.backup:
    # Velero and the drill once; each county's Schedule and drill access with the county.
    backup = cfg.backup
    engine = BackupEngine(
        "backup",
        backup,
        # Counties a drill run takes: from config, or the fewest that reach every county within 30 days.
        drill_per_run=backup_render.drill_cadence(cfg.counties, backup).per_run,
        access_key_id=secrets.backup_access_key_id,
        secret_access_key=secrets.backup_secret_access_key,
        drill_storage_class=drill_class,
        drill_storage_class_name=backup.drill.storage_class or drill_class["metadata"]["name"],
        county_storage_class_name=storage_class_name,
        opts=pulumi.ResourceOptions(provider=provider, depends_on=county_after),
    )
    for name, county in cfg.counties.items():
        CountyBackup(
            f"{name}-backup",
            county,
            backup,
            engine=engine,
            county_namespace=projects[name].ns,
            opts=pulumi.ResourceOptions(provider=provider),
        )
    # A county that leaves config gets one last backup, kept until an operator deletes it (docs/backups.md).
    removed = {name: c for name, c in (deployed.counties if deployed else {}).items() if name not in cfg.counties}
    for name, county in removed.items():
        FinalCountyBackup(
            f"{name}-final-backup", name, county.couchdb_nodes, backup, engine=engine,
            opts=pulumi.ResourceOptions(provider=provider),
        )
    pulumi.export("backup", backup_render.summary(cfg.counties, backup, cfg.k3s is not None))
    restore_scripts = {"restore-county.sh": backup_scripts.county_restore_script(velero_namespace=backup.velero.namespace)}
    if cfg.k3s is not None and cfg.control_plane is not None:
        # docs/runbooks/restore-control-plane.md: one, two or all servers lost.
        restore_scripts.update(
            k3s_restore.scripts(
                servers=cfg.control_plane.nodes,
                agents=cfg.agents.nodes if cfg.agents else (),
                api_endpoint=cfg.k3s.api_endpoint,
                version=cfg.k3s.version,
                install_script_url=cfg.k3s.install_script_url,
            )
        )
    # Plain text, no secret: the plan writes them to restore/, and `pulumi stack output restoreScripts` shows them.
    pulumi.export("restoreScripts", restore_scripts)

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

# Medic's CHT Watchdog reads this list (`pulumi stack output watchdogTargets > cht-instances.yml`); it runs
# outside the cluster so it can still alert when the cluster is down.
pulumi.export(
    "watchdogTargets",
    pulumi.Output.all(**{name: project.url for name, project in projects.items()}).apply(monitoring_render.watchdog_targets),
)

monitoring = cfg.monitoring
if monitoring is not None and monitoring.enabled:
    platform = PlatformMonitoring(
        "monitoring",
        monitoring,
        storage_class=storage_class_name,
        mode=cfg.cluster_mode,
        smtp_password=secrets.monitoring_smtp_password,
        webhook_url=secrets.monitoring_webhook_url,
        heartbeat_url=secrets.monitoring_heartbeat_url,
        backup=cfg.backup,
        opts=pulumi.ResourceOptions(provider=provider, depends_on=monitoring_after),
    )
    # Each county's scrape and alerts belong to the county (a child of its ChtProject): adding a county
    # adds them and changes nothing shared; removing one removes them with it.
    for name, county in cfg.counties.items():
        CountyMonitoring(
            f"{name}-monitoring",
            county,
            monitoring,
            backup=cfg.backup,
            opts=pulumi.ResourceOptions(parent=projects[name], depends_on=[projects[name].ns, platform.release]),
        )
    pulumi.export(
        "monitoring",
        monitoring_render.summary(
            monitoring, cfg.cluster_mode, {name: county.host for name, county in cfg.counties.items()},
            webhook_secret=secrets.monitoring_webhook_url is not None,
            heartbeat_secret=secrets.monitoring_heartbeat_url is not None,
            backup=cfg.backup,
        ),
    )

# What later updates compare their config with (config/guards.py); no secrets.
pulumi.export(
    config.deployed.OUTPUT,
    config.deployed.snapshot(
        cfg, etcd_seed=etcd_seed, csi_cluster_id=csi_cluster_id, k3s_before_vm_tracking=k3s_before_vm_tracking,
        k3s_config=k3s_config,
    ),
)
