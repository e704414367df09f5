"""cht-hosting: load and validate the stack config, compose the components, export what operators need."""

import pulumi

import config
import tuning
from components.backup import render as backup_render
from components.backup.county import FinalCountyBackup, county_backup
from components.backup.velero import BackupEngine
from components.cht.project import ChtProject
from components.k3s.cluster import ETCD_SEED_CAN_MOVE
from components.monitoring import scrape as monitoring_scrape
from components.monitoring import summary as monitoring_summary
from components.monitoring.stack import PlatformMonitoring
from components.platform import build_vsphere_platform, from_platform_stack, use_existing_cluster
from components.storage import render as storage_render
from config import egress

tuning.apply()

try:
    stack = config.load()
    layout, organization = stack.layout, stack.config.deployed_state.organization
    # What the last update deployed (a read of this stack's own outputs), checked before anything registers.
    deployed, _ = config.deployed.read(organization)
    csi_cluster_id = None
    if stack.config.csi is not None:
        platform_stack = layout.platform or pulumi.get_stack()
        csi_cluster_id = stack.config.csi.cluster_id or storage_render.cluster_id(pulumi.get_project(), platform_stack)
    if problems := config.guards.check_stack(
        stack.config, layout, deployed, csi_cluster_id=csi_cluster_id, etcd_seed_can_move=ETCD_SEED_CAN_MOVE,
        # What another stack of the deployment deployed: read only for a county that moves to it.
        held_by=lambda other: set(getattr(config.deployed.read(organization, other)[0], "counties", {})),
    ):
        raise config.ConfigError(problems)
except config.ConfigError as error:
    # Nothing has been registered yet; RunError prints the message without a traceback.
    raise pulumi.RunError(str(error)) from None

cfg, secrets = stack.config, stack.secrets
for warning in [*config.warnings(cfg), *config.guards.unused_acceptances(cfg, deployed)]:
    pulumi.log.warn(warning)

# The platform: provider, StorageClass and what counties wait on, whichever cluster mode builds it; a county
# stack reads them from its platform stack (config/layout.py).
if not layout.builds_platform:
    platform = from_platform_stack(stack, organization)
    pulumi.export("platformStack", layout.platform)
elif cfg.cluster_mode == "vsphere-k3s":
    platform = build_vsphere_platform(stack, deployed)
else:
    platform = use_existing_cluster(stack)
    if layout.role == "platform" and secrets.kubeconfig is not None:
        pulumi.export("kubeconfig", secrets.kubeconfig)  # what its county stacks connect with
provider = platform.provider
# The counties this stack registers (a single stack: all; the deployment's others are checked, not built).
counties = stack.own_counties

# Counties deploy in parallel: each waits only for the StorageClass, never for another county.
county_access = egress.cluster_access(cfg)
projects = {
    name: ChtProject(
        name,
        county,
        storage_class=platform.storage_class_name,
        access=county_access,
        credentials=stack.county_credentials(name),
        ingress_after=platform.ingress_after,
        app_may_have_upgraded=config.deployed.app_may_have_upgraded(deployed, name),
        opts=pulumi.ResourceOptions(provider=provider, depends_on=platform.county_after),
    )
    for name, county in counties.items()
}

if cfg.backup:
    # Velero and the drill once (the platform's); each county's Schedule and drill access with the county.
    backup = cfg.backup
    engine = None
    if layout.builds_platform:
        engine = BackupEngine(
            "backup",
            backup,
            # Counties a drill run takes: from config, or the fewest that reach every county within 30 days.
            drill_per_run=backup_render.drill_cadence(cfg.counties, backup).per_run,
            access_key_id=secrets.backup_access_key_id,
            secret_access_key=secrets.backup_secret_access_key,
            county_class=platform.county_class,
            county_storage_class_name=platform.storage_class_name,
            cluster_restore_scripts=platform.restore_scripts,
            counties=[county.settings for county in cfg.counties.values()],
            opts=pulumi.ResourceOptions(provider=provider, depends_on=platform.county_after),
        )
    for name, county in counties.items():
        # The county's own Schedule, a child of its ChtProject: moving or removing the county takes it along
        # (county_backup aliases it from the CountyBackup component that held it before).
        county_backup(
            f"{name}-backup",
            county,
            backup,
            engine=engine,
            county_namespace=projects[name].ns,
            opts=pulumi.ResourceOptions(parent=projects[name]),  # the county owns its Schedule
        )
    # A county that leaves the deployment gets one last backup, kept until an operator deletes it
    # (docs/backups.md); one that moves to another stack of it keeps running there.
    removed = {name: c for name, c in (deployed.counties if deployed else {}).items() if name not in cfg.counties}
    for name, county in removed.items():
        FinalCountyBackup(
            f"{name}-final-backup", name, county.couchdb_nodes, backup, engine=engine,
            opts=pulumi.ResourceOptions(provider=provider),
        )
    if engine is not None:
        pulumi.export("backup", backup_render.summary(cfg.counties, backup, cfg.k3s is not None))

# The control plane's restore scripts on every stack that builds ours, with or without a bucket (they restore from
# the servers' own snapshots too); with backups the engine adds the counties'. Plain text: the plan writes restore/.
restore_scripts = engine.restore_scripts if cfg.backup and engine is not None else platform.restore_scripts
if restore_scripts:
    pulumi.export("restoreScripts", restore_scripts)

# What a restore needs that only this stack holds, a secret kept off the cluster (docs/runbooks/escrow.md).
escrow: dict = {"stack": f"{pulumi.get_project()}/{pulumi.get_stack()}"}
if platform.escrow is not None:
    escrow["k3s"] = platform.escrow
if cfg.backup and engine is not None:
    escrow["velero"] = engine.escrow
escrow["counties"] = {name: project.escrow for name, project in projects.items()}
pulumi.export("escrow", pulumi.Output.secret(escrow))

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
        for name, county in counties.items()
    },
)

# Medic's CHT Watchdog reads this list (`pulumi stack output watchdogTargets > cht-instances.yml`); it runs
# outside the cluster so it can still alert when the cluster is down.
# A platform stack lists every county of the deployment (each county stack, its own).
watched = cfg.counties if layout.role == "platform" else counties
pulumi.export("watchdogTargets", monitoring_scrape.watchdog_targets({name: c.url for name, c in watched.items()}))

monitoring = cfg.monitoring
# Every county, in whichever stack, is scraped and alerted on by its labels: a county adds no monitoring
# object, so a county stack has none.
if monitoring is not None and monitoring.enabled and layout.builds_platform:
    PlatformMonitoring(
        "monitoring",
        monitoring,
        storage_class=platform.storage_class_name,
        mode=cfg.cluster_mode,
        smtp_password=secrets.monitoring_smtp_password,
        webhook_url=secrets.monitoring_webhook_url,
        heartbeat_url=secrets.monitoring_heartbeat_url,
        backup=cfg.backup,
        opts=pulumi.ResourceOptions(provider=provider, depends_on=platform.monitoring_after),
    )
    pulumi.export(
        "monitoring",
        monitoring_summary.summary(
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
        cfg, etcd_seed=platform.etcd_seed, csi_cluster_id=csi_cluster_id,
        k3s_before_vm_tracking=platform.k3s_before_vm_tracking, k3s_config=platform.k3s_config,
        counties=counties, platform=layout.builds_platform,
    ),
)
