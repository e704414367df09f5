"""Backup hygiene: what config refuses so that no backup is Completed without the data it should hold, and
the objects the real restore relies on."""

from __future__ import annotations

import pytest
import yaml

from components.backup import render
from config.errors import ConfigError
from config.validate import validate
from tests.conftest import raw_config


def _restore_stack(**counties):
    values, keys = raw_config("restore")
    values["counties"] = {**values["counties"], **counties}
    values["migratedCredentials"] = "[secret]"
    return validate(values, keys | {"migratedCredentials"})


def test_host_path_volumes_are_refused_while_backups_are_on():
    """velero v1.18.1 pkg/podvolume/backupper.go skips hostPath volumes: every backup would lack the county."""
    volume = {"hostPath": "/srv/cht/lamu", "node": "agent-1"}
    with pytest.raises(ConfigError) as error:
        _restore_stack(lamu={"migration": {"volumes": [volume]}})
    (problem,) = error.value.problems
    assert problem.startswith("cht-hosting:counties.lamu.migration.volumes[0].hostPath: Velero never backs up a hostPath volume")
    assert "volumeHandle" in problem and "remove cht-hosting:backup" in problem


def test_host_path_volumes_are_accepted_without_backups():
    values, keys = raw_config("restore", counties={"lamu": {"migration": {"volumes": [{"hostPath": "/srv/cht/lamu", "node": "agent-1"}]}}})
    for key in ("backup", "backupAccessKeyId", "backupSecretAccessKey"):
        values.pop(key)
    values["migratedCredentials"] = "[secret]"
    config = validate(values, (keys - {"backupAccessKeyId", "backupSecretAccessKey"}) | {"migratedCredentials"})
    assert config.counties["lamu"].settings.migration is not None


def test_the_county_modifier_only_touches_static_claims():
    """internal/resourcemodifiers at v1.18.1: one rule, on claims whose class is "" (a JSON-patch test), a
    merge patch that sets the county class and drops volumeName (no error where Velero already dropped it)."""
    rules = yaml.safe_load(render.county_restore_modifiers("cht-couchdb"))
    assert rules["version"] == "v1"
    (rule,) = rules["resourceModifierRules"]
    assert rule["conditions"] == {"groupResource": "persistentvolumeclaims", "matches": [{"path": "/spec/storageClassName", "value": ""}]}
    (patch,) = rule["mergePatches"]
    assert yaml.safe_load(patch["patchData"]) == {"spec": {"storageClassName": "cht-couchdb", "volumeName": None}}
    assert set(rule) == {"conditions", "mergePatches"}  # one kind of patch per rule (resource_modifiers_validator.go)
