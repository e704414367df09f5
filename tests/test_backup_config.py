"""`cht-hosting:backup`: every value to its grammar, the keys as secrets, the per-county retention override."""

from __future__ import annotations

import copy

import pytest

from config.errors import ConfigError
from config.validate import required_secrets, validate
from tests.conftest import raw_config

ETCD_KEYS = {"etcdBackupAccessKeyId", "etcdBackupSecretAccessKey"}
KEYS = {"backupAccessKeyId", "backupSecretAccessKey", *ETCD_KEYS}
S3 = {"endpoint": "https://s3.moh.example.org:9000", "bucket": "cht-backups"}


def staging(backup: dict | None = None, **extra) -> tuple[dict, frozenset]:
    """The staging stack (its own values do not matter here) with a backup section and its keys."""
    raw, secrets = raw_config("regional")
    raw = copy.deepcopy(raw)
    for key in ("backup", *KEYS):
        raw.pop(key, None)
    if backup is not None:
        raw["backup"] = backup
        for key in KEYS:
            raw[key] = "[secret]"
        secrets = secrets | KEYS
    raw.update(extra)
    return raw, frozenset(secrets)


def problems(backup: dict | None = None, secrets: frozenset | None = None, **extra) -> list[str]:
    raw, own = staging(backup, **extra)
    with pytest.raises(ConfigError) as error:
        validate(raw, own if secrets is None else secrets)
    return error.value.problems


def test_defaults_make_a_complete_plan():
    config = validate(*staging({"s3": S3}))
    backup = config.backup
    assert backup.s3.region == "us-east-1" and backup.s3.force_path_style
    assert backup.etcd is not None and backup.etcd.schedule == "0 */6 * * *"  # on by default for our control plane
    assert backup.counties.retention_days == 30 and backup.drill.enabled


@pytest.mark.parametrize(
    "endpoint",
    ["s3.moh.example.org", "https://s3.moh.example.org/bucket", "https://user:pw@s3.example.org", "https://s3 .org",
     "https://s3.example.org:0", "ftp://s3.example.org", "https://s3.example.org/?x=1", "https://$(reboot)"],
)
def test_endpoint_is_a_bare_base_url(endpoint):
    (problem,) = problems({"s3": {**S3, "endpoint": endpoint}})
    assert problem.startswith("cht-hosting:backup.s3.endpoint: ")


def test_plain_http_needs_the_lab_flag_and_then_warns():
    (problem,) = problems({"s3": {**S3, "endpoint": "http://minio.lab:9000"}})
    assert problem.startswith("cht-hosting:backup.s3.endpoint: 'http://minio.lab:9000' is plain http")
    assert "backup.s3.insecure: true" in problem
    config = validate(*staging({"s3": {**S3, "endpoint": "http://minio.lab:9000", "insecure": True}}))
    from config.validate import warnings

    assert any(w.startswith("cht-hosting:backup.s3.insecure:") for w in warnings(config))


@pytest.mark.parametrize(
    "bucket",
    ["ab", "a" * 64, "Cht-Backups", "cht_backups", "-cht", "cht-", "cht..backups", "192.168.1.10", "xn--cht",
     "cht-s3alias", "cht.-backups", "sthree-cht"],
)
def test_bucket_follows_the_s3_naming_rules(bucket):
    (problem,) = problems({"s3": {**S3, "bucket": bucket}})
    assert problem.startswith("cht-hosting:backup.s3.bucket: ") and "is not an S3 bucket name" in problem


@pytest.mark.parametrize("bucket", ["abc", "cht-backups", "cht.backups.moh", "a" * 63, "1cht"])
def test_valid_buckets(bucket):
    assert validate(*staging({"s3": {**S3, "bucket": bucket}})).backup.s3.bucket == bucket


@pytest.mark.parametrize(
    "cron",
    ["0 1 * *", "60 1 * * *", "0 24 * * *", "0 1 0 * *", "0 1 * 13 *", "0 1 * * 7", "*/0 * * * *", "5-1 * * * *",
     "@every 1h", "0 1 * * MON;reboot", "0 1 * * *\n", "@reboot"],
)
def test_cron_schedules_are_checked_field_by_field(cron):
    (problem,) = problems({"s3": S3, "drill": {"schedule": cron}})
    assert problem.startswith("cht-hosting:backup.drill.schedule: ") and "is not a cron schedule" in problem


@pytest.mark.parametrize("cron", ["0 1 * * *", "*/15 2-4 1,15 JAN-JUN MON-FRI", "30 23 ? * sun", "@daily", "0 0 1 */3 *"])
def test_valid_cron_schedules(cron):
    # The etcd snapshots' schedule (county backups start inside backup.counties' window; the drill's must also
    # reach every county within 30 days, test_drill_cadence.py).
    assert validate(*staging({"s3": S3, "etcd": {"schedule": cron}})).backup.etcd.schedule == cron


@pytest.mark.parametrize("folder", ["/etcd", "etcd/", "a//b", "../etcd", "et cd", ".hidden", "a/./b", "é"])
def test_folders_are_plain_relative_paths(folder):
    (problem,) = problems({"s3": S3, "etcd": {"folder": folder}})
    assert problem.startswith("cht-hosting:backup.etcd.folder: ") and "is not a folder name" in problem


def test_ca_bundle_must_be_certificates_only():
    (problem,) = problems({"s3": {**S3, "caBundle": "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"}})
    assert problem.startswith("cht-hosting:backup.s3.caBundle: is not a PEM certificate bundle")


def test_the_keys_are_required_secrets_exactly_when_backup_is_set():
    raw, secrets = staging({"s3": S3})
    assert set(required_secrets(raw)) >= KEYS
    assert not KEYS & set(required_secrets(staging()[0]))
    del raw["backupSecretAccessKey"]
    with pytest.raises(ConfigError) as error:
        validate(raw, secrets)
    assert error.value.problems == [
        "cht-hosting:backupSecretAccessKey: is required because backup is set; set it with "
        "`pulumi config set --secret backupSecretAccessKey ...`"
    ]


def test_a_stack_with_only_velero_keys_is_refused_naming_both_etcd_keys_and_the_fix():
    """Migration: a stack from before the etcd snapshots had keys of their own (docs/backups.md#the-keys)."""
    raw, secrets = staging({"s3": S3})
    for key in ("etcdBackupAccessKeyId", "etcdBackupSecretAccessKey"):
        del raw[key]
    with pytest.raises(ConfigError) as error:
        validate(raw, secrets)
    assert len(error.value.problems) == 2
    for key, problem in zip(("etcdBackupAccessKeyId", "etcdBackupSecretAccessKey"), error.value.problems, strict=True):
        assert problem.startswith(f"cht-hosting:{key}: is required because backup is set (etcd snapshots no longer use ")
        for named in ("backupAccessKeyId", "backupSecretAccessKey", "etcdBackupAccessKeyId", "etcdBackupSecretAccessKey",
                      "backup.etcd.folder", "docs/backups.md#the-keys", f"`pulumi config set --secret {key} ...`"):
            assert named in problem


def test_the_etcd_keys_have_no_meaning_on_an_existing_cluster():
    raw, secrets = raw_config("backup-existing")
    assert not {"etcdBackupAccessKeyId", "etcdBackupSecretAccessKey"} & set(required_secrets(raw))
    raw = {**raw, "etcdBackupAccessKeyId": "[secret]"}
    with pytest.raises(ConfigError) as error:
        validate(raw, secrets | {"etcdBackupAccessKeyId"})
    assert error.value.problems == [
        "cht-hosting:etcdBackupAccessKeyId: has no meaning when clusterMode is existing (the program creates no VMs, "
        "k3s, CPI or CSI); remove it with `pulumi config rm etcdBackupAccessKeyId`"
    ]


def test_the_etcd_key_must_not_be_velero_s_key():
    raw, secrets = staging({"s3": S3})
    same = {"backupAccessKeyId": "AKIASHAREDKEY", "etcdBackupAccessKeyId": "AKIASHAREDKEY"}
    with pytest.raises(ConfigError) as error:
        validate(raw, secrets, secret_texts=same)
    (problem,) = error.value.problems
    assert problem.startswith("cht-hosting:etcdBackupAccessKeyId: is the same key as backupAccessKeyId (not shown")
    assert "AKIASHAREDKEY" not in problem
    validate(raw, secrets, secret_texts={**same, "etcdBackupAccessKeyId": "AKIAOTHERKEY"})


def test_a_key_in_plain_text_or_without_backup_is_refused():
    assert problems({"s3": S3}, secrets=staging({"s3": S3})[1] - {"backupAccessKeyId"}) == [
        "cht-hosting:backupAccessKeyId: is stored in plain text; set it with "
        "`pulumi config set --secret backupAccessKeyId ...`"
    ]
    raw, secrets = staging()
    raw["backupAccessKeyId"] = "[secret]"
    with pytest.raises(ConfigError) as error:
        validate(raw, secrets | {"backupAccessKeyId"})
    assert error.value.problems == [
        "cht-hosting:backupAccessKeyId: is set, but backup is not, so nothing uses it; set backup, or remove it "
        "with `pulumi config rm backupAccessKeyId`"
    ]


def test_a_county_overrides_retention_and_needs_backups_for_it():
    raw, secrets = staging({"s3": S3, "counties": {"retentionDays": 14}})
    county = next(iter(raw["counties"]))
    raw["counties"][county] = {**(raw["counties"][county] or {}), "backupRetentionDays": 90}
    config = validate(raw, secrets)
    from components.backup.render import retention_days

    assert retention_days(config.backup, config.counties[county].settings) == 90
    others = [c for c in config.counties.values() if c.name != county]
    assert all(retention_days(config.backup, c.settings) == 14 for c in others)
    raw, secrets = staging()
    raw["counties"][county] = {"backupRetentionDays": 90}
    with pytest.raises(ConfigError) as error:
        validate(raw, secrets)
    assert error.value.problems == [
        f"cht-hosting:counties.{county}.backupRetentionDays: has no effect without cht-hosting:backup; configure "
        "backups (docs/backups.md) or remove it"
    ]


def test_existing_mode_has_no_etcd_and_names_the_drill_class():
    raw, secrets = raw_config("k3d")
    velero_keys = KEYS - ETCD_KEYS  # no etcd snapshots of ours there
    raw = {**copy.deepcopy(raw), "backup": {"s3": S3, "etcd": {}}, **dict.fromkeys(velero_keys, "[secret]")}
    with pytest.raises(ConfigError) as error:
        validate(raw, secrets | velero_keys)
    assert [p.split(":", 2)[1] for p in error.value.problems] == ["backup.drill.storageClass", "backup.etcd"]
    raw["backup"] = {"s3": S3, "drill": {"storageClass": "local-path"}}
    config = validate(raw, secrets | KEYS)
    assert config.backup.etcd is None
