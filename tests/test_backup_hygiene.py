"""Backup hygiene: what config refuses so that no backup is Completed without the data it should hold, and
the objects the real restore relies on."""

from __future__ import annotations

import itertools

import pytest
import yaml

from components.backup import render
from config import backup_window
from config.errors import ConfigError
from config.validate import required_secrets, validate, warnings
from offline import engine, stackfile
from tests.conftest import BACKUP_KEYS, STACKS, raw_config
from tests.test_backup_render import BACKUP_SPEC


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
    for key in ("backup", *BACKUP_KEYS):
        values.pop(key, None)
    values["migratedCredentials"] = "[secret]"
    config = validate(values, (keys - BACKUP_KEYS) | {"migratedCredentials"})
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


# --- a removed county ----------------------------------------------------------------------------------------

BACKUP = "kubernetes:velero.io/v1:Backup"
SCHEDULE = "kubernetes:velero.io/v1:Schedule"


def _evaluate(counties: dict | None = None, outputs: dict | None = None):
    overrides = {"cht-hosting:counties": counties} if counties is not None else None
    file = stackfile.load("backup-existing", root=STACKS, overrides=overrides)
    config, secret_keys = dict(file.config), list(file.secret_keys)
    for key in required_secrets(stackfile.raw(file)[0]):
        config.setdefault(f"cht-hosting:{key}", stackfile.PLACEHOLDER)
        secret_keys.append(f"cht-hosting:{key}")
    return engine.evaluate("backup-existing", config, secret_keys, stack_outputs=outputs)


def test_a_removed_county_loses_its_schedule_and_gets_a_final_backup_kept_until_deleted():
    first = _evaluate()
    assert not first.of_type(BACKUP)  # nothing was removed: no final backup
    for schedule in first.of_type(SCHEDULE):
        assert not schedule.retain_on_delete  # removing a county deletes its Schedule (no empty backups)
    second = _evaluate({"nairobi": {}}, outputs=first.outputs)
    assert {s.inputs["metadata"]["name"] for s in second.of_type(SCHEDULE)} == {"county-nairobi"}
    (final,) = second.of_type(BACKUP)
    meta, spec = final.inputs["metadata"], final.inputs["spec"]
    assert meta["name"] == "county-kwale-final" and meta["namespace"] == "velero"
    assert meta["labels"][render.COUNTY_LABEL] == "kwale" and meta["labels"][render.NODES_LABEL] == "1"
    # Taken before the workloads go: Pulumi waits for it (pulumi-kubernetes >= 4.18 `pulumi.com/waitFor`).
    assert meta["annotations"]["pulumi.com/waitFor"] == "jsonpath={.status.phase}=Completed"
    assert spec["includedNamespaces"] == ["kwale"] and spec["defaultVolumesToFsBackup"] is True
    hours = int(spec["ttl"].split("h")[0])
    assert hours >= 100 * 365 * 24  # no garbage collection reaches it
    assert final.retain_on_delete  # later updates forget it; Velero keeps it
    assert set(spec) <= BACKUP_SPEC
    # The next update (kwale no longer deployed) registers no final backup again.
    third = _evaluate({"nairobi": {}}, outputs=second.outputs)
    assert not third.of_type(BACKUP)


# --- the backup window ----------------------------------------------------------------------------------------


def _national(**counties_cfg):
    values, keys = raw_config("national")
    values["backup"] = {**values["backup"], "counties": {**values["backup"].get("counties", {}), **counties_cfg}}
    return values, keys


def _minutes(cron: str) -> int:
    minute, hour, day, month, weekday = cron.split()
    assert (day, month, weekday) == ("*", "*", "*")  # daily
    return int(hour) * 60 + int(minute)


def test_every_county_starts_inside_the_window_and_the_plan_shows_they_fit():
    config = validate(*_national())
    cfg = config.backup.counties
    start = _minutes(f"{cfg.window_start[3:]} {cfg.window_start[:2]} * * *")
    window = cfg.window_hours * 60
    for name, county in config.counties.items():
        offset = (_minutes(backup_window.cron(name, county, config.backup)) - start) % (24 * 60)
        read = backup_window.read_minutes(backup_window.volume_gib(county), config.backup)
        assert offset + read <= window, name  # its own read fits after its start
    planned = backup_window.slots(config.counties, config.backup)
    # One at a time (Velero's default concurrency 1): no two reads overlap, and the last ends in the window.
    for before, after in itertools.pairwise(planned):
        assert after.start >= before.end and after.start >= after.offset
    assert planned[-1].end <= window
    assert backup_window.overrun(config.counties, config.backup) is None
    assert len({backup_window.cron(n, c, config.backup) for n, c in config.counties.items()}) > len(config.counties) // 2


def test_adding_or_growing_a_county_moves_no_other_county():
    values, keys = _national()
    before = validate(values, keys)
    grown = next(iter(before.counties))
    assert "kakamega-east" not in before.counties
    values["counties"] = {**values["counties"], "kakamega-east": {}, grown: {**values["counties"][grown], "couchdbStorageGb": 900}}
    after = validate(values, keys)
    for name, county in before.counties.items():
        if name == grown:
            continue
        assert backup_window.cron(name, county, before.backup) == backup_window.cron(name, after.counties[name], after.backup)


def test_a_window_the_counties_do_not_fit_in_is_refused_or_warned():
    with pytest.raises(ConfigError) as error:
        validate(*_national(windowHours=4))
    (problem,) = [p for p in error.value.problems if "windowHours" in p]
    assert problem.startswith("cht-hosting:backup.counties.windowHours: the counties' backups need about ")
    assert "one county at a time" in problem and "set onOverrun: warn" in problem
    config = validate(*_national(windowHours=4, onOverrun="warn"))
    assert any(w.startswith("cht-hosting:backup.counties.windowHours: ") for w in warnings(config))


def test_the_removed_schedule_key_names_its_replacement():
    with pytest.raises(ConfigError) as error:
        validate(*_national(schedule="30 2 * * *"))
    (problem,) = [p for p in error.value.problems if "counties.schedule" in p]
    assert "replaced by windowStart and windowHours" in problem and "'02:30'" in problem


@pytest.mark.parametrize("value", ["1:00", "24:00", "01:60", "0100", "01:00\n"])
def test_window_start_is_a_time_of_day(value):
    with pytest.raises(ConfigError) as error:
        validate(*_national(windowStart=value))
    assert any(p.startswith("cht-hosting:backup.counties.windowStart: ") and "HH:MM" in p for p in error.value.problems)
