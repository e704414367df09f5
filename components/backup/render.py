"""Pure rendering for county backups: Velero's chart values, per-county Schedules, the restore drill's
objects and RBAC, and the storage estimate. No Pulumi here.

Upstream (checked in tests/test_backup_render.py): vmware-tanzu/helm-charts `charts/velero` at tag
velero-12.1.0 (values.yaml, templates/backupstoragelocation.yaml, deployment.yaml, secret.yaml) and
vmware-tanzu/velero at v1.18.1 (pkg/apis/velero/v1/schedule_types.go, restore_types.go;
site/content/docs/v1.18/restore-resource-modifiers.md).
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass

import yaml

from config import backup_window, cadence, grammar, names
from config.capacity import DRILL_JOB_REQUESTS, NODE_AGENT_REQUESTS, VELERO_SERVER_REQUESTS
from config.model import BackupConfig, ChtSettings, County

from ..cht import render as cht
from . import drill

VELERO_API = "velero.io/v1"
# Velero's release name; the chart names its Deployment and the node agent DaemonSet after it.
RELEASE = names.VELERO_RELEASE
CREDENTIALS_SECRET = "velero-s3-credentials"
# The kopia repositories' encryption key: Velero creates this Secret with a fixed, public password
# ("static-passw0rd", velero v1.18.1 pkg/repository/keys/keys.go) unless it exists, and it can only be set
# before the first backup. We create it first, with a generated password.
REPOSITORY_SECRET = "velero-repo-credentials"
REPOSITORY_KEY = "repository-password"
STORAGE_LOCATION = "default"
DRILL = "restore-drill"
DRILL_NAMESPACE = names.DRILL_NAMESPACE
DRILL_MODIFIERS = "restore-drill-modifiers"
# The real restore's resource modifiers: a static (migrated or renamed) county's claim comes back on the
# county StorageClass (see county_restore_modifiers).
COUNTY_MODIFIERS = "restore-county-modifiers"
DRILL_SCRIPT_CONFIGMAP = "restore-drill-script"
DRILL_LABEL = "cht-hosting/restore-drill"
COUNTY_LABEL = "cht-hosting/county"
NODES_LABEL = "cht-hosting/couchdb-nodes"
MANAGED = {"app.kubernetes.io/managed-by": "cht-hosting", "app.kubernetes.io/part-of": "cht-hosting-backup"}
DRILL_POD_LABELS = {"app.kubernetes.io/name": DRILL}
# Marks the drill's StorageClass (reclaimPolicy Delete) as scratch only; the policy pack allows only that.
SCRATCH_LABEL = "cht-hosting/scratch-volumes"



def _resources(requests: tuple[float, float], limit_factor: int) -> dict:
    cpu_m, memory_mi = round(requests[0] * 1000), round(requests[1] * 1024)
    return {
        "requests": {"cpu": f"{cpu_m}m", "memory": f"{memory_mi}Mi"},
        "limits": {"cpu": f"{cpu_m * limit_factor}m", "memory": f"{memory_mi * limit_factor}Mi"},
    }


# Requests as the capacity check counts them (config/capacity.py). Kopia hashes and compresses on the
# node agent, so its limits leave room for a large first backup.
VELERO_SERVER = _resources(VELERO_SERVER_REQUESTS, 2)
NODE_AGENT = _resources(NODE_AGENT_REQUESTS, 4)
DRILL_JOB = _resources(DRILL_JOB_REQUESTS, 2)


FINAL_TTL = "876000h0m0s"
"""A removed county's final backup is kept 100 years: in practice until an operator deletes it."""
FINAL_LABEL = "cht-hosting/final-backup"


def final_backup(county: str, couchdb_nodes: int) -> dict:
    """A removed county's last backup (velero v1.18.1 backup_types.go): like its Schedule's, with a TTL no
    garbage collection reaches, taken while its CouchDB still runs. The program waits for it to complete
    (`pulumi.com/waitFor`) before the county's workloads go: Pulumi deletes what left the program only after
    everything registered is done, and a backup of a pod that is not Running holds no volume data
    (pkg/podvolume/backupper.go)."""
    return {
        "metadata": {
            "name": names.final_backup_name(county),
            "labels": {**MANAGED, COUNTY_LABEL: county, NODES_LABEL: str(couchdb_nodes), FINAL_LABEL: "true"},
            "annotations": {"pulumi.com/waitFor": "jsonpath={.status.phase}=Completed"},
        },
        "spec": {
            "includedNamespaces": [county],
            "defaultVolumesToFsBackup": True,
            "storageLocation": STORAGE_LOCATION,
            "ttl": FINAL_TTL,
            "snapshotVolumes": False,
        },
    }


def retention_days(backup: BackupConfig, settings: ChtSettings) -> int:
    return settings.backup_retention_days or backup.counties.retention_days


def drillable(settings: ChtSettings) -> bool:
    """Every county is rehearsed in the scratch namespace; a clustered one through scratch Services its nodes
    reach by their live names (components/backup/drill.py)."""
    return True


def couchdb_services(settings: ChtSettings) -> list[str]:
    return [node.service for node in cht.couch_nodes(settings)]


# --- Velero ------------------------------------------------------------------------------------------


def aws_credentials_file(access_key: str, secret_key: str) -> str:
    """The `cloud` key of the credentials Secret: the AWS shared-credentials (ini) format the plugin reads
    (chart values.yaml, credentials.secretContents)."""
    for value in (access_key, secret_key):
        if not value or any(c in value for c in "\r\n"):
            raise ValueError("the backup access key and secret key must be single, non-empty lines")
    return f"[default]\naws_access_key_id={access_key}\naws_secret_access_key={secret_key}\n"


def velero_values(backup: BackupConfig) -> dict:
    """Chart values (velero-12.1.0): one S3 storage location, kopia file-system backup of every pod volume,
    the node agent on every agent, no volume snapshots (the CSI snapshots stay on the datastore), the
    credentials from our own Secret (never a chart value)."""
    s3, velero = backup.s3, backup.velero
    config = {"region": s3.region, "s3ForcePathStyle": str(s3.force_path_style).lower(), "s3Url": s3.endpoint}
    if s3.insecure and s3.endpoint.startswith("https://"):
        config["insecureSkipTLSVerify"] = "true"
    location: dict = {
        "name": STORAGE_LOCATION,
        "provider": "aws",
        "bucket": s3.bucket,
        "prefix": backup.counties.prefix,
        "default": True,
        "accessMode": "ReadWrite",
        "config": config,
    }
    if s3.ca_bundle:
        # The chart passes caCert through as base64 (its values.yaml: "a base64 encoded CA bundle").
        location["caCert"] = base64.b64encode(s3.ca_bundle.encode()).decode()
    values: dict = {
        "initContainers": [
            {
                "name": "velero-plugin-for-aws",
                "image": velero.aws_plugin_image,
                "imagePullPolicy": "IfNotPresent",
                "volumeMounts": [{"mountPath": "/target", "name": "plugins"}],
            }
        ],
        "configuration": {
            "backupStorageLocation": [location],
            "uploaderType": "kopia",
            "defaultVolumesToFsBackup": True,
        },
        "snapshotsEnabled": False,
        "credentials": {"useSecret": True, "existingSecret": CREDENTIALS_SECRET},
        "deployNodeAgent": True,
        "nodeAgent": {"resources": NODE_AGENT},
        "resources": VELERO_SERVER,
        "metrics": {"enabled": True},
    }
    if velero.image:
        # The chart writes repository@digest when a digest is given, else repository:tag (templates/deployment.yaml).
        reference, _, digest = velero.image.partition("@")
        repository, tag = reference, ""
        if ":" in reference.rsplit("/", 1)[-1]:
            repository, tag = reference.rsplit(":", 1)
        values["image"] = {"repository": repository, **({"digest": digest} if digest else {"tag": tag})}
    return values


def schedule_spec(county: County, backup: BackupConfig, velero_namespace: str) -> dict:
    """One county's Schedule (velero v1.18.1 schedule_types.go / backup_types.go): the whole namespace,
    every pod volume through kopia, kept `retention_days`. No owner references: deleting the Schedule
    (a county removed from config) leaves its backups in place until their ttl, and its final backup
    (`final_backup`) beyond."""
    days = retention_days(backup, county.settings)
    return {
        "schedule": backup_window.cron(county.name, county, backup),
        "useOwnerReferencesInBackup": False,
        "template": {
            # Cluster-scoped objects left at Velero's default for a namespace backup: only those the county's
            # objects refer to (its PersistentVolumes), never the whole cluster's.
            "includedNamespaces": [county.name],
            "defaultVolumesToFsBackup": True,
            "storageLocation": STORAGE_LOCATION,
            "ttl": f"{days * 24}h0m0s",
            "snapshotVolumes": False,
            # On every backup: restore-county.sh finds a county's backups (its final one too, after the
            # Schedule is gone) and how many CouchDB volumes each must hold.
            "metadata": {"labels": {COUNTY_LABEL: county.name, NODES_LABEL: str(county.settings.couchdb_nodes)}},
            # What the backup holds, recorded into it for the restore drill (components/backup/drill.py).
            "hooks": drill.record_hooks(county.settings, county.name),
        },
    }


def schedule_labels(county: County, drill_enabled: bool) -> dict[str, str]:
    labels = {**MANAGED, COUNTY_LABEL: county.name, NODES_LABEL: str(county.settings.couchdb_nodes)}
    labels[DRILL_LABEL] = str(drill_enabled and drillable(county.settings)).lower()
    return labels


# --- the restore drill -------------------------------------------------------------------------------


def drill_modifiers(storage_class: str) -> str:
    """Restore resource modifiers (velero docs v1.18 restore-resource-modifiers.md): the drill's volumes
    come from a class that deletes them, so a drill never leaves a volume behind."""
    rules = {
        "version": "v1",
        "resourceModifierRules": [
            {
                "conditions": {"groupResource": "persistentvolumeclaims"},
                "patches": [{"operation": "replace", "path": "/spec/storageClassName", "value": storage_class}],
            }
        ],
    }
    return yaml.safe_dump(rules, sort_keys=False)


def county_restore_modifiers(storage_class: str) -> str:
    """Resource modifiers for a county's real restore (velero v1.18.1 internal/resourcemodifiers).

    A migrated or renamed county's claim is static: `storageClassName: ""` and `volumeName` of its
    pre-existing PV. Velero does not restore a PV whose data is in a pod volume backup; it clears the
    claim's `volumeName` for a new, dynamically provisioned one (pkg/restore/restore.go, the
    `pvsToProvision` branch), and Kubernetes never provisions for an explicit `""`: the claim would stay
    Pending and the volume restore wait for it until Velero's fs-backup timeout. Modifiers run after that
    reset (restore.go applies `resourceModifiers` last), so this rule gives such a claim the county
    StorageClass; the merge patch also drops any `volumeName` left (a `remove` JSON patch would fail
    where Velero already removed it, json_patch.go). Claims on a StorageClass already do not match
    (`matches` is a JSON-patch test of the path, resource_modifiers.go matchConditions)."""
    patch = yaml.safe_dump({"spec": {"storageClassName": storage_class, "volumeName": None}}, sort_keys=False)
    rules = {
        "version": "v1",
        "resourceModifierRules": [
            {
                "conditions": {
                    "groupResource": "persistentvolumeclaims",
                    "matches": [{"path": "/spec/storageClassName", "value": ""}],
                },
                "mergePatches": [{"patchData": patch}],
            }
        ],
    }
    return yaml.safe_dump(rules, sort_keys=False)


def drill_restore_selectors() -> list[dict]:
    """Only CouchDB comes back in the scratch namespace: its Deployments, pods, Services, volumes, the
    servers ConfigMap and the credentials. API and Sentinel never start there (they would send messages)."""
    services = sorted({n.service for n in any_county_couch_nodes()})
    return [{"matchExpressions": [{"key": "cht.service", "operator": "In", "values": services}]}]


def couch_nodes_of(count: int) -> list[cht.CouchNode]:
    """A county's CouchDB nodes when it runs `count` of them: their names, Deployments, claims and Services
    depend on the count only (couch_nodes also reads the version, for nouveau in 5.x: any will do)."""
    return cht.couch_nodes(ChtSettings.model_construct(couchdb_nodes=count, version="4.22.0"))


def any_county_couch_nodes() -> list[cht.CouchNode]:
    """Every CouchDB node a county may have, whichever shape it runs: what the cluster-wide scripts and selectors
    name, so that they fit every county."""
    return [node for count in grammar.COUCHDB_NODE_COUNTS for node in couch_nodes_of(count)]


def scratch_network_policy(velero_namespace: str) -> dict:
    """The scratch namespace talks to itself and DNS only, and only the drill reaches in: a restored CouchDB
    can never reach the live counties (whose node names it carries)."""
    return {
        "podSelector": {},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [
            {"from": [{"podSelector": {}}]},
            {"from": [_drill_peer(velero_namespace)], "ports": [{"protocol": "TCP", "port": cht.COUCHDB_PORT}]},
        ],
        "egress": [
            {"to": [{"podSelector": {}}]},
            {
                "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
            },
        ],
    }


def _drill_peer(velero_namespace: str) -> dict:
    return {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": velero_namespace}},
        "podSelector": {"matchLabels": dict(DRILL_POD_LABELS)},
    }


def velero_role_rules() -> list[dict]:
    """In Velero's namespace: read backups, record results on the Schedules, run and clean up its own restores
    and a clustered county's per-drill resource modifiers."""
    return [
        {"apiGroups": ["velero.io"], "resources": ["backups"], "verbs": ["get", "list"]},
        {"apiGroups": ["velero.io"], "resources": ["schedules"], "verbs": ["get", "list", "patch"]},
        {"apiGroups": ["velero.io"], "resources": ["restores"], "verbs": ["create", "get", "list", "watch", "delete"]},
        {"apiGroups": ["velero.io"], "resources": ["podvolumerestores"], "verbs": ["get", "list"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [drill.RUN_MODIFIERS], "verbs": ["get", "delete"]},
    ]


def scratch_role_rules() -> list[dict]:
    """In the scratch namespace: a clustered copy's Services, watch the restored CouchDB start, read its
    credentials (the county's, restored with it) and its backup record, delete it all after."""
    verbs = ["get", "list", "watch", "delete", "deletecollection"]
    return [
        {"apiGroups": [""], "resources": ["pods", "services", "persistentvolumeclaims", "configmaps", "secrets"], "verbs": verbs},
        {"apiGroups": [""], "resources": ["services"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]},
        {"apiGroups": ["apps"], "resources": ["deployments", "replicasets"], "verbs": verbs},
    ]


def drill_cadence(counties: dict[str, County], backup: BackupConfig) -> cadence.Cadence:
    """How many counties a run drills and how often each county comes back (config/cadence.py)."""
    drilled = sum(1 for county in counties.values() if drillable(county.settings))
    return cadence.cadence(backup.drill.schedule, drilled, backup.drill.counties_per_run)


def drill_cronjob(backup: BackupConfig, *, per_run: int, script_hash: str) -> dict:
    """The CronJob `restore-drill`: `per_run` counties a run, one after the other; each county's result goes on
    its Schedule (annotations; kube-state-metrics exports them), so it outlives the Job. The Job's deadline is
    above the script's own limits and the pod's grace period covers a copy's cleanup: the script, not the Job
    controller, ends a drill, records it and deletes the copy."""
    drill_config = backup.drill
    timeout = drill_config.timeout_minutes * 60
    return {
        "schedule": drill_config.schedule,
        "timeZone": "Etc/UTC",
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": 3600,
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 3,
        "suspend": not drill_config.enabled,
        "jobTemplate": {
            "spec": {
                "backoffLimit": 0,  # a failed drill is a result, not something to retry over it
                "activeDeadlineSeconds": drill.job_deadline_seconds(per_run, timeout),
                "ttlSecondsAfterFinished": 7 * 24 * 3600,
                "template": {
                    "metadata": {"labels": dict(DRILL_POD_LABELS), "annotations": {"cht-hosting/script": script_hash}},
                    "spec": {
                        "serviceAccountName": DRILL,
                        "restartPolicy": "Never",
                        "terminationGracePeriodSeconds": drill.CLEANUP_SECONDS + 120,
                        "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "seccompProfile": {"type": "RuntimeDefault"}},
                        "containers": [
                            {
                                "name": DRILL,
                                "image": drill_config.image,
                                "command": ["bash", f"{drill.SCRIPT_DIR}/{drill.DRILL_SCRIPT}"],
                                "env": [
                                    {"name": "DRILL_TIMEOUT_SECONDS", "value": str(timeout)},
                                    {"name": "HOME", "value": "/tmp"},
                                ],
                                "resources": DRILL_JOB,
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                                "volumeMounts": [
                                    {"name": "script", "mountPath": drill.SCRIPT_DIR, "readOnly": True},
                                    {"name": "tmp", "mountPath": "/tmp"},
                                ],
                            }
                        ],
                        "volumes": [
                            {"name": "script", "configMap": {"name": DRILL_SCRIPT_CONFIGMAP}},
                            # The backup record of one county at a time (small: ids, revs, a sample).
                            {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
                        ],
                    },
                },
            }
        },
    }


# --- storage estimate ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StorageEstimate:
    county: str
    volume_gb: int
    retention_days: int
    estimate_gb: int


def storage_estimate(counties: dict[str, County], backup: BackupConfig) -> list[StorageEstimate]:
    """Upper bound per county: kopia keeps one full copy of every CouchDB volume (assumed full), deduplicated
    and compressed (assumed 1:1, CouchDB files compress little), plus the changed data of each retained day
    (`growthPercentPerDay` of the volume). Objects and Secrets are negligible."""
    daily = backup.counties.growth_percent_per_day / 100
    found = []
    for name, county in counties.items():
        volume = county.settings.couchdb_storage_gb * county.settings.couchdb_nodes
        days = retention_days(backup, county.settings)
        found.append(StorageEstimate(name, volume, days, math.ceil(volume * (1 + daily * days))))
    return found


def estimate_table(estimates: list[StorageEstimate], backup: BackupConfig) -> str:
    total = sum(e.estimate_gb for e in estimates)
    lines = [
        f"Assumptions: every CouchDB volume full, stored once (kopia deduplicates, compression ignored), plus "
        f"{backup.counties.growth_percent_per_day:g}% of it changed per day kept for the retention period; "
        "etcd snapshots (a few MB each) not counted.",
        "",
        f"  {'county':<24}{'volumes GB':>12}{'kept days':>11}{'estimate GB':>13}",
        *(f"  {e.county:<24}{e.volume_gb:>12}{e.retention_days:>11}{e.estimate_gb:>13}" for e in estimates),
        f"  {'total':<24}{sum(e.volume_gb for e in estimates):>12}{'':>11}{total:>13}",
    ]
    return "\n".join(lines)


def summary(counties: dict[str, County], backup: BackupConfig, control_plane: bool) -> dict:
    """The stack output `backup` (plain: where, when, how long, the drill and the storage estimate; no key)."""
    estimates = {e.county: e for e in storage_estimate(counties, backup)}
    etcd = backup.etcd if control_plane else None
    return {
        "storage": {
            "endpoint": backup.s3.endpoint, "bucket": backup.s3.bucket, "region": backup.s3.region,
            "objectLock": backup.s3.object_lock,
        },
        "etcdSnapshots": (
            {"schedule": etcd.schedule, "retention": etcd.retention, "folder": etcd.folder} if etcd else None
        ),
        "velero": {"namespace": backup.velero.namespace, "chart": backup.velero.chart_version, "prefix": backup.counties.prefix},
        "counties": {
            name: {
                "schedule": names.schedule_name(name),
                "cron": backup_window.cron(name, county, backup),
                "retentionDays": retention_days(backup, county.settings),
                "couchdbVolumes": county.settings.couchdb_nodes,
                "drilled": backup.drill.enabled and drillable(county.settings),
                "estimateGb": estimates[name].estimate_gb,
            }
            for name, county in counties.items()
        },
        "drill": drill_summary(counties, backup),
        "window": {
            "start": backup.counties.window_start,
            "hours": backup.counties.window_hours,
            "readMibPerSecond": backup.counties.read_mib_per_second,
            "estimatedHours": round(sum(s.read_minutes for s in backup_window.slots(counties, backup)) / 60, 1),
            "fits": backup_window.overrun(counties, backup) is None,
            "plan": backup_window.table(counties, backup),
        },
        "estimateTotalGb": sum(e.estimate_gb for e in estimates.values()),
        "estimate": estimate_table(list(estimates.values()), backup),
    }


def drill_summary(counties: dict[str, County], backup: BackupConfig) -> dict:
    """The drill in the stack output `backup` and the plan: where, how often each county, the goals."""
    plan = drill_cadence(counties, backup)
    d = backup.drill
    return {
        "cronJob": DRILL,
        "namespace": backup.velero.namespace,
        "scratchNamespace": DRILL_NAMESPACE,
        "schedule": d.schedule,
        "enabled": d.enabled,
        "countiesDrilled": plan.counties,
        "countiesPerRun": plan.per_run,
        "countiesPerRunFromConfig": d.counties_per_run is not None,
        "everyCountyWithinDays": None if plan.interval_days == float("inf") else round(plan.interval_days, 1),
        "boundDays": cadence.MAX_INTERVAL_DAYS,
        "runMaxHours": round(drill.run_seconds(plan.per_run, d.timeout_minutes * 60) / 3600, 1),
        "restoreTimeGoalMinutes": d.restore_time_goal_minutes,
        "recoveryPointGoalHours": d.recovery_point_goal_hours,
        "results": f"annotations {drill.ANNOTATION_PREFIX}* on each Schedule county-<name> in {backup.velero.namespace}",
    }
