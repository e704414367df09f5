"""cht-hosting: load and validate the stack config, compose the components, export what operators need."""

import pulumi

import config
from components.node_pool import NodePool
from components.ssh_trust import SshTrust
from components.vsphere_access import VsphereAccess
from config import capacity

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
    pulumi.export("capacityReport", capacity.table(capacity.plan(cfg)))

pulumi.export(
    "counties",
    {
        name: {
            "url": f"https://{county.host}",
            "version": county.settings.version,
            "couchdbNodes": county.settings.couchdb_nodes,
            "couchdbStorageGb": county.settings.couchdb_storage_gb,
            "cpu": county.settings.budget.cpu,
            "memoryGb": county.settings.budget.memory_gb,
        }
        for name, county in cfg.counties.items()
    },
)
