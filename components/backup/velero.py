"""BackupEngine: Velero on the cluster, writing to the ministry's S3-compatible storage, and the restore drill.

Creates once per cluster (a county's own Schedule is `county_backup`'s, under its ChtProject):
- Namespace (Velero's) and Secret `velero-s3-credentials` (the key pair, AWS ini format; a Pulumi secret,
  never a chart value);
- Secret `velero-repo-credentials`: the kopia repositories' encryption password, generated once (protected,
  retained) before Velero starts, so the backups in the bucket are not encrypted with Velero's public default;
  a cluster rebuilt from the same stack gets the same password back and can read them;
- Helm release `velero` (vmware-tanzu/helm-charts velero, pinned): server, AWS object-store plugin, the
  node agent on every node that runs county pods (kopia file-system backup), one storage location;
- the drill: StorageClass for its volumes (deleted with their claims), the scratch namespace and its
  NetworkPolicy, ServiceAccount, Roles, the resource-modifier ConfigMap, the scripts' ConfigMap (the drill
  and the comparison, components/backup/drill.py) and the CronJob `restore-drill`. Its results live on the
  counties' Schedules; it reads no live county;
- ConfigMap `restore-county-modifiers`: what restore-county.sh hands Velero so a migrated county's claim
  comes back on the county StorageClass.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from config.model import BackupConfig, ChtSettings, StorageClassConfig

from .. import helm
from ..storage.storage_class import storage_class_object
from . import drill, render, scripts


def drill_class(county_class: StorageClassConfig | None) -> dict:
    """The drill's StorageClass: the county class's parameters, deleted with its claims."""
    if county_class is None:
        # Validation requires backup.drill.storageClass when the program creates no StorageClass.
        raise ValueError("the drill needs backup.drill.storageClass when the program creates no StorageClass")
    obj = storage_class_object(county_class)
    obj["metadata"] = {
        "name": f"{county_class.name}-restore-drill",
        "labels": {**render.MANAGED, render.SCRATCH_LABEL: "true"},
    }
    obj["reclaimPolicy"] = "Delete"
    return obj


class BackupEngine(pulumi.ComponentResource):
    namespace: str
    """Velero's namespace (Schedules live there)."""
    release: k8s.helm.v3.Release
    restore_scripts: dict[str, str]
    """The restore scripts by file name: restore-county.sh, check-bucket.sh, and the cluster's own
    (`cluster_restore_scripts`)."""
    escrow: pulumi.Output[dict]
    """The kopia repositories' password (without it no county backup can be read); a secret, for the stack
    output `escrow` (docs/runbooks/escrow.md)."""

    def __init__(
        self,
        name: str,
        backup: BackupConfig,
        *,
        drill_per_run: int,
        access_key_id: pulumi.Input[str],
        secret_access_key: pulumi.Input[str],
        county_class: StorageClassConfig | None,
        county_storage_class_name: pulumi.Input[str],
        cluster_restore_scripts: dict[str, str] | None = None,
        counties: Iterable[ChtSettings] = (),
        opts: pulumi.ResourceOptions | None = None,
    ):
        """`county_class`: the counties' StorageClass as the program creates it (the drill gets a class of its own
        with its parameters, deleted with its claims), or None when the cluster brings its classes (existing-cluster
        mode: `backup.drill.storageClass` names the drill's). `county_storage_class_name`: the counties' StorageClass,
        onto which restore-county.sh brings back a static (migrated) county's volumes. `cluster_restore_scripts`:
        the control plane's restore scripts, exported with restore-county.sh and check-bucket.sh. `counties`: their
        settings (check-bucket.sh compares the bucket's lock with the shortest time a county backup is kept)."""
        super().__init__("cht-hosting:backup:BackupEngine", name, None, opts)
        ns = backup.velero.namespace
        self.namespace = ns
        drill_storage_class = drill_class(county_class) if backup.drill.storage_class is None else None
        drill_storage_class_name = backup.drill.storage_class or drill_storage_class["metadata"]["name"]
        # Plain text, no secret: the plan writes them to restore/, `pulumi stack output restoreScripts` shows them.
        self.restore_scripts = {**scripts.scripts(backup, counties), **(cluster_restore_scripts or {})}
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": ns, "labels": dict(render.MANAGED)},
            # The namespace holds the Schedules and the record of every backup: never deleted by a config edit.
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
        )
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        credentials = k8s.core.v1.Secret(
            f"{name}-s3-credentials",
            metadata={"name": render.CREDENTIALS_SECRET, "namespace": ns, "labels": dict(render.MANAGED)},
            type="Opaque",
            string_data=pulumi.Output.secret(
                pulumi.Output.all(access_key_id, secret_access_key).apply(
                    lambda keys: {"cloud": render.aws_credentials_file(keys[0], keys[1])}
                )
            ),
            opts=in_ns,
        )
        # Never changes: a new password would make every existing backup unreadable.
        repository_password = random.RandomPassword(
            f"{name}-repository-password",
            length=48,
            special=False,
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        self.escrow = pulumi.Output.secret(
            {
                "repositoryPassword": repository_password.result,
                "secret": f"{ns}/{render.REPOSITORY_SECRET}",
                "key": render.REPOSITORY_KEY,
            }
        )
        repository = k8s.core.v1.Secret(
            f"{name}-repository-credentials",
            metadata={"name": render.REPOSITORY_SECRET, "namespace": ns, "labels": dict(render.MANAGED)},
            type="Opaque",
            string_data={render.REPOSITORY_KEY: pulumi.Output.secret(repository_password.result)},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace], retain_on_delete=True),
        )
        velero = backup.velero
        self.release = helm.release(
            f"{name}-velero",
            name=render.RELEASE,
            chart="velero",
            version=velero.chart_version,
            repository=velero.chart_repository,
            namespace=ns,
            values=render.velero_values(backup),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace, credentials, repository]),
        )
        k8s.core.v1.ConfigMap(
            f"{name}-county-restore-modifiers",
            metadata={"name": render.COUNTY_MODIFIERS, "namespace": ns, "labels": dict(render.MANAGED)},
            data={"modifiers.yaml": pulumi.Output.from_input(county_storage_class_name).apply(render.county_restore_modifiers)},
            opts=in_ns,
        )
        self._drill(name, backup, drill_per_run, drill_storage_class, drill_storage_class_name, in_ns)
        # Marks the component complete and lists its outputs in the engine.
        self.register_outputs({"namespace": ns})

    def _drill(
        self,
        name: str,
        backup: BackupConfig,
        per_run: int,
        storage_class: dict | None,
        class_name: str,
        opts: pulumi.ResourceOptions,
    ) -> None:
        ns = backup.velero.namespace
        meta = lambda n, namespace=ns: {"name": n, "namespace": namespace, "labels": dict(render.MANAGED)}  # noqa: E731
        after: list[pulumi.Resource] = []
        if storage_class is not None:
            after.append(
                k8s.storage.v1.StorageClass(
                    f"{name}-drill-class",
                    metadata=storage_class["metadata"],
                    provisioner=storage_class["provisioner"],
                    parameters=storage_class["parameters"],
                    reclaim_policy=storage_class["reclaimPolicy"],
                    allow_volume_expansion=storage_class["allowVolumeExpansion"],
                    volume_binding_mode=storage_class["volumeBindingMode"],
                    opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
                )
            )
        scratch = k8s.core.v1.Namespace(
            f"{name}-drill-namespace",
            metadata={"name": render.DRILL_NAMESPACE, "labels": dict(render.MANAGED)},
            opts=pulumi.ResourceOptions(parent=self),
        )
        in_scratch = pulumi.ResourceOptions(parent=self, depends_on=[scratch])
        k8s.networking.v1.NetworkPolicy(
            f"{name}-drill-isolation",
            metadata=meta("restore-drill-isolation", render.DRILL_NAMESPACE),
            spec=render.scratch_network_policy(ns),
            opts=in_scratch,
        )
        account = k8s.core.v1.ServiceAccount(f"{name}-drill-account", metadata=meta(render.DRILL), opts=opts)
        subject = [{"kind": "ServiceAccount", "name": render.DRILL, "namespace": ns}]
        role = k8s.rbac.v1.Role(f"{name}-drill-role", metadata=meta(render.DRILL), rules=render.velero_role_rules(), opts=opts)
        k8s.rbac.v1.RoleBinding(
            f"{name}-drill-binding",
            metadata=meta(render.DRILL),
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": render.DRILL},
            subjects=subject,
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[account, role])),
        )
        scratch_role = k8s.rbac.v1.Role(
            f"{name}-drill-scratch-role",
            metadata=meta(render.DRILL, render.DRILL_NAMESPACE),
            rules=render.scratch_role_rules(),
            opts=in_scratch,
        )
        k8s.rbac.v1.RoleBinding(
            f"{name}-drill-scratch-binding",
            metadata=meta(render.DRILL, render.DRILL_NAMESPACE),
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": render.DRILL},
            subjects=subject,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[scratch_role, account]),
        )
        k8s.core.v1.ConfigMap(
            f"{name}-drill-modifiers",
            metadata=meta(render.DRILL_MODIFIERS),
            data={"modifiers.yaml": render.drill_modifiers(class_name)},
            opts=opts,
        )
        job = drill.drill_script(
            velero_namespace=ns, per_run=per_run, timeout_seconds=backup.drill.timeout_minutes * 60, storage_class=class_name
        )
        compare = drill.compare_script()
        script_map = k8s.core.v1.ConfigMap(
            f"{name}-drill-script",
            metadata=meta(render.DRILL_SCRIPT_CONFIGMAP),
            data={drill.DRILL_SCRIPT: job, drill.COMPARE_SCRIPT: compare},
            opts=opts,
        )
        script_hash = hashlib.sha256((job + compare).encode()).hexdigest()[:16]
        k8s.batch.v1.CronJob(
            f"{name}-restore-drill",
            metadata=meta(render.DRILL),
            spec=render.drill_cronjob(backup, per_run=per_run, script_hash=script_hash),
            opts=pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(depends_on=[script_map, account, self.release, *after])
            ),
        )
