"""A county's backup objects, named after the county and owned by its ChtProject, so adding a county changes no
shared object; and FinalCountyBackup, a removed county's last backup.

`county_backup` creates:
- Velero Schedule `county-<name>` (in Velero's namespace): the county's namespace with its objects,
  the credentials Secret and every CouchDB node's volume (kopia), kept for the county's retention.
  No owner references to the backups. The Schedule is deleted when the county leaves config: left running,
  it would take backups without volume data (no CouchDB pod runs) that replace the good ones as they expire.
  `FinalCountyBackup` keeps the county's data instead.
- Nothing in the county's namespace: the backup's record hook runs through Velero (its exec in CouchDB
  node 1), and the restore drill reads only the copy it restores elsewhere.

File-system backup needs nothing from the county's NetworkPolicies or quota: the node agent reads the
volume on the node, outside the county's namespace, and no pod is created in it.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from config import names
from config.model import BackupConfig, County

from . import render

# The Schedule was the only child of a per-county component `cht-hosting:backup:CountyBackup` named
# `<county>-backup`: at the stack's root (releases up to ad19a31), then under the county's ChtProject (d556a29).
# It now belongs to the ChtProject itself. The aliases carry it over from either: the Schedule is neither
# replaced nor deleted, and the empty component leaves the state (a component's delete touches no cluster).
OLD_COMPONENT = "cht-hosting:backup:CountyBackup"


def county_backup(
    name: str,
    county: County,
    backup: BackupConfig,
    *,
    engine: pulumi.Resource | None,
    county_namespace: pulumi.Resource,
    opts: pulumi.ResourceOptions,
) -> k8s.apiextensions.CustomResource:
    """The county's Velero Schedule `county-<name>` as `<name>-schedule` (name: `<county>-backup`); `opts`
    gives its parent, the county's ChtProject (whose provider it uses)."""
    ns = backup.velero.namespace
    return k8s.apiextensions.CustomResource(
        f"{name}-schedule",
        api_version=render.VELERO_API,
        kind="Schedule",
        metadata={
            "name": names.schedule_name(county.name),
            "namespace": ns,
            "labels": render.schedule_labels(county, backup.drill.enabled),
        },
        spec=render.schedule_spec(county, backup, ns),
        opts=pulumi.ResourceOptions.merge(
            opts,
            pulumi.ResourceOptions(
                # `engine` None: Velero is the platform stack's, deployed before any county stack updates.
                depends_on=[r for r in (engine, county_namespace) if r is not None],
                aliases=[
                    pulumi.Alias(parent=pulumi.create_urn(name, OLD_COMPONENT)),
                    pulumi.Alias(parent=pulumi.create_urn(name, OLD_COMPONENT, parent=opts.parent)),
                ],
            ),
        ),
    )


class FinalCountyBackup(pulumi.ComponentResource):
    """A county that left config: one last backup, `county-<name>-final`, kept until an operator deletes it.

    Registered in the update that removes the county (the deployed state still lists it), it completes
    before Pulumi deletes the county's workloads, so its CouchDB volumes are in it. Retained: later updates
    forget it, Velero keeps it."""

    def __init__(
        self,
        name: str,
        county: str,
        couchdb_nodes: int,
        backup: BackupConfig,
        *,
        engine: pulumi.Resource | None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("cht-hosting:backup:FinalCountyBackup", name, None, opts)
        body = render.final_backup(county, couchdb_nodes)
        k8s.apiextensions.CustomResource(
            f"{name}-backup",
            api_version=render.VELERO_API,
            kind="Backup",
            metadata={**body["metadata"], "namespace": backup.velero.namespace},
            spec=body["spec"],
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[engine] if engine is not None else [],
                retain_on_delete=True,
                # A large county's volumes take hours to read (see the backup window in the plan).
                custom_timeouts=pulumi.CustomTimeouts(create="12h"),
            ),
        )
        self.register_outputs({"backup": names.final_backup_name(county)})
