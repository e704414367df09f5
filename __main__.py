"""cht-hosting: load and validate the stack config, compose the components, export what operators need."""

import pulumi

import config
from config import capacity

try:
    stack = config.load()
except config.ConfigError as error:
    # Nothing has been registered yet; RunError prints the message without a traceback.
    raise pulumi.RunError(str(error)) from None

cfg = stack.config
for warning in config.warnings(cfg):
    pulumi.log.warn(warning)

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

if cfg.cluster_mode == "vsphere-k3s":
    pulumi.export("capacityReport", capacity.table(capacity.plan(cfg)))
