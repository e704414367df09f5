"""Backups across the whole program: etcd snapshots to S3 on every server, one Velero Schedule per county,
the restore drill, and the S3 keys nowhere but in secrets.

Fixed numbers come from tests/stacks/Pulumi.backup*.yaml; the checks on the national test stack (a copy of the
national example) hold for any valid stack.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import yaml

from components.backup import render as backup_render
from components.k3s import layout
from config.validate import validate
from offline import plan, stackfile
from offline.engine import Evaluation
from tests.conftest import evaluate_stack, raw_config

STACKS = Path(__file__).parent / "stacks"
SCHEDULE = "kubernetes:velero.io/v1:Schedule"
CMD = "command:remote:Command"
ACCESS_KEY = "AKIAMOCKBACKUPKEY7Q2"
SECRET_KEY = "mock/Backup+Secret'Key\"$(touch x)9Zr"
# The servers' own pair for etcd snapshots (never Velero's).
ETCD_ACCESS_KEY = "AKIAMOCKETCDKEY00K3S"
ETCD_SECRET_KEY = "mock/Etcd+Secret'Key\"$(touch y)4Qp"
KEY_TEXTS = (ACCESS_KEY, "Backup+Secret", ETCD_ACCESS_KEY, "Etcd+Secret")


def evaluate_with_keys(stack: str) -> Evaluation:
    """The stack with real-looking keys set as secrets, as `pulumi config set --secret` would."""
    keys = {"backupAccessKeyId": ACCESS_KEY, "backupSecretAccessKey": SECRET_KEY}
    if "cht-hosting:clusterMode" not in stackfile.load(stack, root=STACKS).config:  # vsphere-k3s: the servers' etcd pair too
        keys |= {"etcdBackupAccessKeyId": ETCD_ACCESS_KEY, "etcdBackupSecretAccessKey": ETCD_SECRET_KEY}
    return evaluate_stack(stack, **keys)


@pytest.fixture(scope="module")
def backup() -> Evaluation:
    return evaluate_with_keys("backup")


@pytest.fixture(scope="module")
def existing() -> Evaluation:
    return evaluate_with_keys("backup-existing")


def server_config(evaluation: Evaluation, node: str) -> dict:
    """The config.yaml a node's configure script writes (the heredoc after the config path)."""
    script = shlex.split(evaluation.named(f"k3s-{node}-configure").inputs["create"])[-1]  # sudo -n bash -c <script>
    body = script.split(f"{layout.CONFIG_FILE} 600 <<'CHT_HOSTING_EOF'\n", 1)[1].split("\nCHT_HOSTING_EOF", 1)[0]
    return yaml.safe_load(body)


# --- control plane ---------------------------------------------------------------------------------------


def test_every_server_snapshots_etcd_to_the_bucket_on_schedule(backup):
    for node in ("cp-1", "cp-2", "cp-3"):
        config = server_config(backup, node)
        # k3s-io/docs docs/cli/etcd-snapshot.md (S3 Compatible Object Store Support; Creating Snapshots)
        assert {k: v for k, v in config.items() if k.startswith("etcd-")} == {
            "etcd-s3": True,
            "etcd-s3-endpoint": "minio.backup.moh.example.org:9000",
            "etcd-s3-bucket": "cht-backups",
            "etcd-s3-folder": "test/etcd",
            "etcd-s3-region": "moh-1",
            "etcd-s3-endpoint-ca": layout.S3_CA_FILE,
            "etcd-snapshot-schedule-cron": "0 */4 * * *",
            "etcd-snapshot-retention": 42,
            "etcd-snapshot-compress": True,
        }
        assert config["secrets-encryption"] is True and config["supervisor-metrics"] is True
        assert config["agent-token-file"] == layout.AGENT_TOKEN_FILE
        script = backup.named(f"k3s-{node}-configure").inputs["create"]
        assert "MIIBszCCAVmgAwIBAgIUQk5wYWNrZWQtdGVzdC1jYS1vbmx5MAoGCCqGSM49BAMC" in script  # the CA file


def test_agents_get_no_etcd_keys_and_join_with_the_agent_token(backup):
    for node in ("agent-1", "agent-2"):
        config = server_config(backup, node)
        assert not {k for k in config if k.startswith(("etcd-", "agent-token", "secrets-encryption"))}
        assert config["token-file"] == layout.TOKEN_FILE
        stdin = backup.named(f"k3s-{node}-configure").inputs["stdin"]
        assert not any(text in stdin for text in KEY_TEXTS)
        assert stdin.count("\n") == 1  # one line: the agent token


def test_the_servers_get_only_their_own_etcd_keys_on_stdin_as_a_drop_in(backup):
    """A server compromise does not expose Velero's key (docs/backups.md#the-keys)."""
    for node in ("cp-1", "cp-2", "cp-3"):
        configure = backup.named(f"k3s-{node}-configure")
        assert "stdin" in configure.secret_inputs and configure.inputs["logging"] == "none"
        _token, _agent_token, drop_in = configure.inputs["stdin"].split("\n", 2)
        assert yaml.safe_load(drop_in) == {"etcd-s3-access-key": ETCD_ACCESS_KEY, "etcd-s3-secret-key": ETCD_SECRET_KEY}
        assert ACCESS_KEY not in configure.inputs["stdin"] and "Backup+Secret" not in configure.inputs["stdin"]


def test_velero_gets_only_its_own_keys(backup, existing):
    """And a Velero (namespace) compromise does not expose the servers' key."""
    for evaluation in (backup, existing):
        cloud = evaluation.named("backup-s3-credentials").inputs["stringData"]["cloud"]
        assert cloud == backup_render.aws_credentials_file(ACCESS_KEY, SECRET_KEY)
        assert ETCD_ACCESS_KEY not in cloud and "Etcd+Secret" not in cloud
        for r in evaluation.registrations:
            if r.inputs.get("metadata", {}).get("namespace") == "velero":
                assert "Etcd+Secret" not in json.dumps(r.inputs) and ETCD_ACCESS_KEY not in json.dumps(r.inputs)


def test_no_key_in_any_plain_input_output_plan_or_review_file(backup, existing, tmp_path):
    """Done when: nothing in the plan's output or the stack's plain outputs carries a key."""
    for evaluation in (backup, existing):
        for r in evaluation.registrations:
            for key, value in r.inputs.items():
                if key in r.secret_inputs:
                    continue
                text = json.dumps(value)
                assert not any(t in text for t in KEY_TEXTS), f"{r.name}.{key} carries a key"
        outputs = json.dumps(evaluation.outputs)
        assert not any(t in outputs for t in KEY_TEXTS)
        printed = plan.report(evaluation, [])
        written = plan.write_review_folder(evaluation, tmp_path / evaluation.stack)
        for text in [printed, *(p.read_text() for p in written)]:
            assert not any(t in text for t in KEY_TEXTS)
    # The Secret Velero reads holds the keys, as a Pulumi secret.
    credentials = backup.named("backup-s3-credentials")
    assert "stringData" in credentials.secret_inputs
    assert credentials.inputs["stringData"]["cloud"] == backup_render.aws_credentials_file(ACCESS_KEY, SECRET_KEY)


# --- counties --------------------------------------------------------------------------------------------


def test_one_schedule_per_county_covering_its_namespace_and_every_volume(backup):
    schedules = {r.inputs["metadata"]["name"]: r for r in backup.of_type(SCHEDULE)}
    assert set(schedules) == {"county-kwale", "county-lamu", "county-mombasa"}
    retention = {"kwale": 14, "lamu": 60, "mombasa": 14}
    for county, days in retention.items():
        r = schedules[f"county-{county}"]
        assert r.inputs["metadata"]["namespace"] == "velero"
        # A county leaving config loses its Schedule (no backups without data) and gets a final backup
        # (tests/test_backup_hygiene.py).
        assert not r.retain_on_delete
        spec = r.inputs["spec"]
        # Its own start inside the window (windowStart 02:30, the default 8 h): tests/test_backup_hygiene.py.
        minute, hour, *rest = spec["schedule"].split()
        assert rest == ["*", "*", "*"] and 150 <= int(hour) * 60 + int(minute) < 150 + 8 * 60
        assert spec["useOwnerReferencesInBackup"] is False
        template = spec["template"]
        assert template["includedNamespaces"] == [county]
        assert template["defaultVolumesToFsBackup"] is True  # every CouchDB node's volume, through kopia
        assert template["ttl"] == f"{days * 24}h0m0s"
        # The Schedule belongs to the county's own component (its ChtProject), not to a shared one, and
        # carries over from the per-county component it had before issue 24 without a replacement.
        assert backup.by_urn[r.parent].name == county and backup.by_urn[r.parent].type == "cht-hosting:cht:ChtProject"
        old = f"urn:pulumi:{backup.stack}::cht-hosting::cht-hosting:backup:CountyBackup::{county}-backup"
        root, under_project = (a["spec"]["parentUrn"] for a in r.aliases)  # tests/test_layout_moves.py
        assert root == old and under_project.endswith(f"cht-hosting:cht:ChtProject$cht-hosting:backup:CountyBackup::{county}-backup")
        assert r.urn.replace("cht-hosting:cht:ChtProject$", "cht-hosting:backup:CountyBackup$") == (
            f"urn:pulumi:{backup.stack}::cht-hosting::cht-hosting:backup:CountyBackup$kubernetes:velero.io/v1:Schedule::"
            f"{county}-backup-schedule"
        )


def test_the_drill_reads_no_live_county_and_every_backup_records_what_it_holds(backup):
    # Nothing of the drill in a county's namespace: it reads only the copy it restores in the scratch namespace.
    assert not [r for r in backup.registrations if "drill" in r.name and r.inputs.get("metadata", {}).get("namespace") in
                {"kwale", "lamu", "mombasa"}]
    for r in backup.of_type(SCHEDULE):
        county = r.inputs["spec"]["template"]["includedNamespaces"][0]
        (hook,) = r.inputs["spec"]["template"]["hooks"]["resources"]
        node = "couchdb-1" if county == "mombasa" else "couchdb"  # node 1 of the clustered county
        assert hook["labelSelector"] == {"matchLabels": {"cht.service": node}}
        assert r.inputs["metadata"]["labels"][backup_render.DRILL_LABEL] == "true"  # every county, 3-node too


def test_velero_and_the_drill_are_once_per_cluster(backup):
    release = backup.named("backup-velero")
    assert release.inputs["chart"] == "velero" and release.inputs["version"] == "12.1.0"
    assert release.inputs["namespace"] == "velero"
    cronjob = backup.named("backup-restore-drill")
    assert cronjob.inputs["metadata"] == {"name": "restore-drill", "namespace": "velero", "labels": backup_render.MANAGED}
    assert cronjob.inputs["spec"]["schedule"] == "0 6 * * 0"
    drill_class = backup.named("backup-drill-class")
    assert drill_class.inputs["reclaimPolicy"] == "Delete"
    assert drill_class.inputs["metadata"]["name"] == "vmware-sc-restore-drill"
    modifiers = backup.named("backup-drill-modifiers").inputs["data"]["modifiers.yaml"]
    assert "vmware-sc-restore-drill" in modifiers
    scripts = backup.named("backup-drill-script").inputs["data"]
    assert set(scripts) == {"restore-drill.sh", "compare-backup.sh"}
    assert "per_run='1'" in scripts["restore-drill.sh"]  # countiesPerRun from the stack


def test_the_county_restore_modifier_names_the_county_storage_class(backup, existing):
    """restore-county.sh hands Velero `restore-county-modifiers`: a migrated county's claim comes back on
    the counties' StorageClass (the StorageClass the program creates, or existingCluster.storageClass)."""
    for evaluation, klass in ((backup, "vmware-sc"), (existing, "local-path")):
        modifiers = evaluation.named("backup-county-restore-modifiers")
        assert modifiers.inputs["metadata"]["name"] == backup_render.COUNTY_MODIFIERS
        assert modifiers.inputs["data"] == {"modifiers.yaml": backup_render.county_restore_modifiers(klass)}


def test_existing_cluster_mode_backs_up_counties_with_the_same_keys(existing):
    assert not existing.of_type(CMD)  # no control plane of ours: no etcd snapshots
    assert {r.inputs["metadata"]["name"] for r in existing.of_type(SCHEDULE)} == {"county-nairobi", "county-kwale"}
    assert not existing.of_type("kubernetes:storage.k8s.io/v1:StorageClass")  # the drill uses the named class
    assert "local-path" in existing.named("backup-drill-modifiers").inputs["data"]["modifiers.yaml"]
    assert existing.outputs["backup"]["etcdSnapshots"] is None
    assert any("backup.s3.insecure" in w for w in existing.warnings)


def test_the_plan_prints_schedules_retention_the_drill_and_the_storage_estimate(backup):
    printed = plan.report(backup, [], verbose=True)  # per-county rows: the county list is printed once otherwise
    assert "etcd snapshots: every server, cron '0 */4 * * *', 42 kept, folder test/etcd/" in printed
    crons = {r.inputs["metadata"]["name"]: r.inputs["spec"]["schedule"] for r in backup.of_type(SCHEDULE)}
    assert f"lamu     county-lamu  cron '{crons['county-lamu']}'  kept 60 days  1 volume  drilled" in printed
    assert f"mombasa  county-mombasa  cron '{crons['county-mombasa']}'  kept 14 days  3 volumes  drilled" in printed
    # 800 GiB at 100 MiB/s, county by county (each rounded up to a minute)
    assert "backup window: 02:30 UTC for 8 h, about 2.3 h of reads one county at a time at 100 MiB/s: fits" in printed
    assert "restore drill: CronJob restore-drill in velero, cron '0 6 * * 0'" in printed
    # The cadence: 1 county a run, weekly, 3 counties: each back within 21 days (under the 30-day bound).
    assert "1 of 3 counties a run (backup.drill.countiesPerRun): every county drilled within 21 days" in printed
    # 100 GB x (1 + 1% x 14) = 114, x (1 + 1% x 60) = 160, 600 x 1.14 = 684 (each rounded up)
    assert "  kwale                            100         14          115" in printed
    assert "  lamu                             100         60          160" in printed
    assert "  mombasa                          600         14          685" in printed
    assert "  total                            800                     960" in printed
    assert backup.outputs["backup"]["estimateTotalGb"] == 960
    assert "secrets encryption on" in printed and "agents join with their own token" in printed


# --- the national test stack: properties that hold for any valid one ---------------------------------------


def test_national_backs_up_every_county_and_snapshots_etcd_off_the_servers(national):
    counties = validate(*raw_config("national")).counties
    schedules = {r.inputs["spec"]["template"]["includedNamespaces"][0]: r for r in national.of_type(SCHEDULE)}
    assert set(schedules) == set(counties)
    for r in schedules.values():
        assert r.inputs["spec"]["template"]["defaultVolumesToFsBackup"] is True
    servers = [r for r in national.of_type(CMD) if r.name.endswith("-configure") and "cluster-token" in r.inputs["create"]]
    for r in servers:
        if "agent-token-file" in r.inputs["create"]:
            assert "etcd-s3: true" in r.inputs["create"] and "secrets-encryption: true" in r.inputs["create"]
    assert national.named("backup-restore-drill").inputs["metadata"]["name"] == "restore-drill"


def test_backups_are_encrypted_with_a_generated_password_set_before_velero_starts(backup):
    """Velero would otherwise create velero-repo-credentials with its public default (velero v1.18.1
    pkg/repository/keys/keys.go: "static-passw0rd"), and it cannot be changed after the first backup."""
    password = backup.named("backup-repository-password")
    assert password.protect and password.type == "random:index/randomPassword:RandomPassword"
    secret = backup.named("backup-repository-credentials")
    assert secret.inputs["metadata"]["name"] == "velero-repo-credentials"
    assert secret.inputs["metadata"]["namespace"] == "velero"
    assert set(secret.inputs["stringData"]) == {"repository-password"} and "stringData" in secret.secret_inputs
    assert "static-passw0rd" not in json.dumps(secret.inputs)
    assert secret.retain_on_delete
    assert secret.urn in backup.named("backup-velero").depends_on
