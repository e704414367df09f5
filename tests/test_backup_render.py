"""What we render for Velero and its chart, checked against upstream at the pinned tags.

The upstream key sets below were read from (and are named with) their source files:
- vmware-tanzu/helm-charts, tag velero-12.1.0, charts/velero/values.yaml and templates/ (deployment.yaml:
  image.digest / image.tag; backupstoragelocation.yaml: caCert passed through as given, "a base64 encoded CA
  bundle" per values.yaml; secret.yaml + deployment.yaml: credentials.existingSecret mounted at
  /credentials/cloud as AWS_SHARED_CREDENTIALS_FILE);
- vmware-tanzu/velero, tag v1.18.1, pkg/apis/velero/v1/schedule_types.go, backup_types.go, restore_types.go,
  labels_annotations.go, pkg/metrics/metrics.go, site/content/docs/v1.18/restore-resource-modifiers.md;
- velero-io/velero-plugin-for-aws (the repository moved from vmware-tanzu, whose snapshot ends at v1.14.0-rc.1),
  tag v1.14.2, the newest v1.14 release: velero-plugin-for-aws/object_store.go (config keys; the same file as
  at v1.14.0-rc.1) and README.md "Compatibility" (plugin v1.14.x goes with Velero v1.18.x).
"""

from __future__ import annotations

import base64

import pytest
import yaml

from components.backup import drill, render
from config import names
from config.model import BackupConfig, ChtSettings, County

# charts/velero/values.yaml @ velero-12.1.0: the value paths we set (lists by their item keys).
CHART_VALUES = {
    "image.repository", "image.tag", "image.digest", "initContainers", "resources", "snapshotsEnabled",
    "deployNodeAgent", "nodeAgent.resources", "metrics.enabled", "credentials.useSecret",
    "credentials.existingSecret", "configuration.uploaderType", "configuration.defaultVolumesToFsBackup",
    "configuration.backupStorageLocation",
}
BSL_ITEM = {"name", "provider", "bucket", "caCert", "prefix", "default", "validationFrequency", "backupSyncPeriod",
            "accessMode", "credential", "config", "annotations"}
# velero-plugin-for-aws object_store.go @ v1.14.2 (the config keys it reads)
AWS_CONFIG = {"region", "s3ForcePathStyle", "s3Url", "insecureSkipTLSVerify", "publicUrl", "kmsKeyId",
              "serverSideEncryption", "customerKeyEncryptionFile", "signatureVersion", "profile", "bucket",
              "prefix", "credentialsFile", "enableSharedConfig", "tagging", "checksumAlgorithm", "caCert"}
# schedule_types.go ScheduleSpec / backup_types.go BackupSpec @ v1.18.1 (json names)
SCHEDULE_SPEC = {"template", "schedule", "useOwnerReferencesInBackup", "paused", "skipImmediately"}
BACKUP_SPEC = {"metadata", "includedNamespaces", "excludedNamespaces", "includedResources", "excludedResources",
               "includedClusterScopedResources", "excludedClusterScopedResources",
               "includedNamespaceScopedResources", "excludedNamespaceScopedResources", "labelSelector",
               "orLabelSelectors", "snapshotVolumes", "ttl", "includeClusterResources", "hooks", "storageLocation",
               "volumeSnapshotLocations", "defaultVolumesToRestic", "defaultVolumesToFsBackup", "orderedResources",
               "csiSnapshotTimeout", "itemOperationTimeout", "resourcePolicy", "snapshotMoveData", "datamover",
               "uploaderConfig", "volumeGroupSnapshotLabelKey"}
# restore_types.go RestoreSpec @ v1.18.1 (what the drill and the county restore set, via jq in the scripts)
RESTORE_SPEC = {"backupName", "scheduleName", "includedNamespaces", "excludedNamespaces", "includedResources",
                "excludedResources", "namespaceMapping", "labelSelector", "orLabelSelectors", "restorePVs",
                "restoreStatus", "preserveNodePorts", "includeClusterResources", "hooks", "existingResourcePolicy",
                "itemOperationTimeout", "resourceModifier", "uploaderConfig"}

BACKUP = BackupConfig.model_validate(
    {
        "s3": {
            "endpoint": "https://s3.moh.example.org:9000",
            "bucket": "cht-backups",
            "caBundle": "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n",
        },
        "counties": {"retentionDays": 21},
        "velero": {"image": "registry.moh.example.org/velero/velero:v1.18.1"},
    }
)


def paths(values: dict, prefix: str = "") -> set[str]:
    found = set()
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and path not in ("resources", "nodeAgent.resources"):
            found |= paths(value, f"{path}.")
        else:
            found.add(path)
    return found


def test_chart_values_are_keys_the_chart_has():
    values = render.velero_values(BACKUP)
    assert paths(values) <= CHART_VALUES
    (location,) = values["configuration"]["backupStorageLocation"]
    assert set(location) <= BSL_ITEM and set(location["config"]) <= AWS_CONFIG
    # Every config value a string: the chart quotes them into the BSL (templates/backupstoragelocation.yaml).
    assert all(isinstance(v, str) for v in location["config"].values())


def test_storage_location_reaches_minio_over_tls_with_the_private_ca():
    (location,) = render.velero_values(BACKUP)["configuration"]["backupStorageLocation"]
    assert location["provider"] == "aws" and location["bucket"] == "cht-backups"
    assert location["prefix"] == "cht-hosting/counties" and location["default"] is True
    assert location["config"] == {"region": "us-east-1", "s3ForcePathStyle": "true", "s3Url": "https://s3.moh.example.org:9000"}
    assert base64.b64decode(location["caCert"]).decode() == BACKUP.s3.ca_bundle


def test_file_system_backup_of_every_volume_with_the_node_agent_and_our_own_secret():
    values = render.velero_values(BACKUP)
    assert values["deployNodeAgent"] is True
    assert values["configuration"]["uploaderType"] == "kopia"
    assert values["configuration"]["defaultVolumesToFsBackup"] is True
    assert values["snapshotsEnabled"] is False  # CSI snapshots stay on the datastore: not a backup
    assert values["credentials"] == {"useSecret": True, "existingSecret": render.CREDENTIALS_SECRET}
    (plugin,) = values["initContainers"]
    assert plugin["image"] == "docker.io/velero/velero-plugin-for-aws:v1.14.2"
    assert plugin["volumeMounts"] == [{"mountPath": "/target", "name": "plugins"}]
    assert values["image"] == {"repository": "registry.moh.example.org/velero/velero", "tag": "v1.18.1"}
    digest = BACKUP.model_copy(update={"velero": BACKUP.velero.model_copy(update={"image": "r.example.org/velero@sha256:" + "a" * 64})})
    assert render.velero_values(digest)["image"] == {"repository": "r.example.org/velero", "digest": "sha256:" + "a" * 64}


def test_credentials_file_is_the_aws_ini_the_plugin_reads():
    text = render.aws_credentials_file("AKIAEXAMPLE", "se/cr+et=")
    assert text == "[default]\naws_access_key_id=AKIAEXAMPLE\naws_secret_access_key=se/cr+et=\n"
    with pytest.raises(ValueError):
        render.aws_credentials_file("AKIA\n[other]", "x")


def county(name: str, **settings) -> County:
    base = {"version": "4.22.0", **settings}
    return County(name=name, host=f"{name}.example.org", settings=ChtSettings.model_validate(base))


def test_schedule_uses_only_fields_velero_has_and_keeps_backups_of_a_removed_county():
    spec = render.schedule_spec(county("kwale"), BACKUP, "velero")
    assert set(spec) <= SCHEDULE_SPEC and set(spec["template"]) <= BACKUP_SPEC
    assert spec["useOwnerReferencesInBackup"] is False  # deleting the Schedule never deletes a backup
    assert spec["template"]["ttl"] == "504h0m0s"  # 21 days
    assert spec["template"]["includedNamespaces"] == ["kwale"]
    assert "includeClusterResources" not in spec["template"]  # not the whole cluster's objects, per county
    own = render.schedule_spec(county("lamu", backupRetentionDays=90), BACKUP, "velero")
    assert own["template"]["ttl"] == "2160h0m0s"


def test_schedule_name_and_labels_come_from_the_county():
    assert names.schedule_name("homa-bay") == "county-homa-bay"
    labels = render.schedule_labels(county("homa-bay", couchdbNodes=3), drill_enabled=True)
    assert labels[render.COUNTY_LABEL] == "homa-bay" and labels[render.NODES_LABEL] == "3"
    assert labels[render.DRILL_LABEL] == "true"  # clustered counties are drilled too (scratch Services)
    assert render.schedule_labels(county("kwale"), drill_enabled=False)[render.DRILL_LABEL] == "false"
    assert render.schedule_labels(county("kwale"), drill_enabled=True)[render.DRILL_LABEL] == "true"


def test_resource_modifier_follows_the_documented_format():
    rules = yaml.safe_load(render.drill_modifiers("vmware-sc-restore-drill"))
    assert rules["version"] == "v1"
    (rule,) = rules["resourceModifierRules"]
    assert rule["conditions"] == {"groupResource": "persistentvolumeclaims"}
    assert rule["patches"] == [{"operation": "replace", "path": "/spec/storageClassName", "value": "vmware-sc-restore-drill"}]


def test_drill_restores_only_couchdb_and_runs_least_privileged():
    (selector,) = render.drill_restore_selectors()
    (expression,) = selector["matchExpressions"]
    assert expression["key"] == "cht.service" and expression["operator"] == "In"
    assert set(expression["values"]) == {"couchdb", "couchdb-1", "couchdb-2", "couchdb-3"}  # no api, no sentinel
    verbs = {(g, r): set(rule["verbs"]) for rule in render.velero_role_rules() for g in rule["apiGroups"] for r in rule["resources"]}
    assert verbs[("velero.io", "backups")] == {"get", "list"}  # never deletes a backup
    assert ("velero.io", "deletebackuprequests") not in verbs
    assert verbs[("velero.io", "schedules")] == {"get", "list", "patch"}  # results as the Schedules' annotations
    # It reads no live county: no rule names a county's namespace or its Secrets outside the scratch namespace.
    assert not any("secrets" in rule["resources"] for rule in render.velero_role_rules())
    scratch = render.scratch_network_policy("velero")
    assert scratch["policyTypes"] == ["Ingress", "Egress"]  # a restored copy never reaches a live county


def test_drill_cronjob_deadline_is_above_the_script_and_its_cleanup():
    spec = render.drill_cronjob(BACKUP, per_run=3, script_hash="abc")
    job = spec["jobTemplate"]["spec"]
    county_seconds = BACKUP.drill.timeout_minutes * 60
    # The script stops each county within its timeout, cleans up within CLEANUP_SECONDS and takes no county it
    # cannot finish: the Job controller never kills it first.
    assert job["activeDeadlineSeconds"] > 3 * (county_seconds + drill.CLEANUP_SECONDS)
    assert job["template"]["spec"]["terminationGracePeriodSeconds"] > drill.CLEANUP_SECONDS
    assert job["backoffLimit"] == 0
    assert spec["concurrencyPolicy"] == "Forbid" and spec["suspend"] is False
    (container,) = job["template"]["spec"]["containers"]
    assert container["resources"] == render.DRILL_JOB and container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["command"] == ["bash", f"{drill.SCRIPT_DIR}/{drill.DRILL_SCRIPT}"]


def test_storage_estimate_assumptions():
    counties = {"a": county("a", couchdbStorageGb=100), "b": county("b", couchdbNodes=3, couchdbStorageGb=50, backupRetentionDays=60)}
    estimates = {e.county: e for e in render.storage_estimate(counties, BACKUP)}
    # full volume once + 0.5%/day of it for each kept day, rounded up
    assert estimates["a"].estimate_gb == 111  # 100 * (1 + 0.005 * 21) = 110.5
    assert estimates["b"].volume_gb == 150 and estimates["b"].estimate_gb == 195  # 150 * 1.3
