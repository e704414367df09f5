"""config.load(): the program's only reader of stack config, through Pulumi's own config runtime."""

from __future__ import annotations

import json

import pulumi
import pytest

import config
from offline import stackfile
from offline.engine import ROOT, record
from tests.conftest import USER_STACKS


@pytest.mark.parametrize("stack", USER_STACKS)
def test_every_user_stack_loads_through_pulumi_config(stack, stack_config):
    values, secret_keys = stack_config(stack, root=ROOT)
    seen = {}

    def program():
        loaded = config.load()
        seen["config"] = loaded.config
        pulumi.export("password", loaded.secrets.vsphere_password)

    evaluation = record(program, stack=stack, config=values, secret_keys=secret_keys)
    assert seen["config"].counties
    # A county stack of a split deployment has no secret of the platform's (config/layout.py).
    county_stack = "platform" in json.loads(values.get("cht-hosting:stacks", "{}"))
    expected = stackfile.PLACEHOLDER if seen["config"].cluster_mode == "vsphere-k3s" and not county_stack else None
    assert evaluation.outputs["password"] == expected


def test_a_secret_leaf_inside_an_object_key_is_refused(stack_config):
    values, secret_keys = stack_config("regional")

    def program():
        config.load()

    with pytest.raises(config.ConfigError) as error:
        record(program, config=values, secret_keys=[*secret_keys, "cht-hosting:network"])
    assert error.value.problems == [
        "cht-hosting:network: is set as a secret, but secrets belong in keys of their own "
        "(vspherePassword, vsphereStoragePassword, kubeconfig, migratedCredentials, backupAccessKeyId, "
        "backupSecretAccessKey, etcdBackupAccessKeyId, etcdBackupSecretAccessKey, monitoringSmtpPassword, monitoringWebhookUrl, "
        "monitoringHeartbeatUrl); set it again without --secret"
    ]


def test_the_etcd_key_equal_to_velero_s_is_refused_through_pulumi_config(stack_config):
    """config.load() hands validation both access keys (never shown) so one leaked key cannot reach both."""
    values, secret_keys = stack_config("backup")
    values["cht-hosting:backupAccessKeyId"] = values["cht-hosting:etcdBackupAccessKeyId"] = "AKIASHAREDBYBOTH01"

    with pytest.raises(config.ConfigError) as error:
        record(config.load, config=values, secret_keys=secret_keys)
    (problem,) = error.value.problems
    assert problem.startswith("cht-hosting:etcdBackupAccessKeyId: is the same key as backupAccessKeyId")
    assert "AKIASHAREDBYBOTH01" not in str(error.value)
    values["cht-hosting:etcdBackupAccessKeyId"] = "AKIATHESERVERSOWN1"
    record(config.load, config=values, secret_keys=secret_keys)
