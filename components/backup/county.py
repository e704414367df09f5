"""CountyBackup: one county's backup objects, named after the county, so adding a county changes no shared object.

Creates:
- Velero Schedule `county-<name>` (in Velero's namespace): the county's namespace with its objects,
  the credentials Secret and every CouchDB node's volume (kopia), kept for the county's retention.
  No owner references to the backups, and the Schedule is retained when the county leaves config, so
  a removed county's backups stay until their retention runs out.
- In the county's namespace, additive to its own isolation (nothing else opens): a NetworkPolicy letting
  the restore drill read the live CouchDB, and a RoleBinding letting it read the credentials Secret
  (drill-rehearsed counties only).

File-system backup needs nothing from the county's NetworkPolicies or quota: the node agent reads the
volume on the node, outside the county's namespace, and no pod is created in it.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from config.model import BackupConfig, County

from . import render


class CountyBackup(pulumi.ComponentResource):
    schedule: str
    """The Schedule's name (its backups are named `<schedule>-<timestamp>`)."""

    def __init__(
        self,
        name: str,
        county: County,
        backup: BackupConfig,
        *,
        engine: pulumi.Resource,
        county_namespace: pulumi.Resource,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("cht-hosting:backup:CountyBackup", name, None, opts)
        ns = backup.velero.namespace
        self.schedule = render.schedule_name(county.name)
        k8s.apiextensions.CustomResource(
            f"{name}-schedule",
            api_version=render.VELERO_API,
            kind="Schedule",
            metadata={
                "name": self.schedule,
                "namespace": ns,
                "labels": render.schedule_labels(county, backup.drill.enabled),
            },
            spec=render.schedule_spec(county, backup, ns),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[engine, county_namespace], retain_on_delete=True),
        )
        if backup.drill.enabled and render.drillable(county.settings):
            in_county = pulumi.ResourceOptions(parent=self, depends_on=[engine, county_namespace])
            labels = {**render.MANAGED, render.COUNTY_LABEL: county.name}
            k8s.networking.v1.NetworkPolicy(
                f"{name}-drill-access",
                metadata={"name": "restore-drill-reads-couchdb", "namespace": county.name, "labels": labels},
                spec=render.county_drill_network_policy(county.settings, ns),
                opts=in_county,
            )
            k8s.rbac.v1.RoleBinding(
                f"{name}-drill-credentials",
                metadata={"name": "restore-drill-reads-credentials", "namespace": county.name, "labels": labels},
                role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": render.CREDENTIALS_READER},
                subjects=[{"kind": "ServiceAccount", "name": render.DRILL, "namespace": ns}],
                opts=in_county,
            )
        # Marks the component complete and lists its outputs in the engine.
        self.register_outputs({"schedule": self.schedule})
