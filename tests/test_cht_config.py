"""Config keys added for ChtProject: defaults, per-county overrides and the exact messages."""

from __future__ import annotations

import pytest

from config.errors import ConfigError
from config.validate import validate
from tests.conftest import raw_config


def counties(secret: bool = False, **per_county):
    extra = {"migratedCredentials": "[secret]"} if secret else {}
    values, keys = raw_config("prod", counties=per_county, **extra)
    return validate(values, keys | ({"migratedCredentials"} if secret else set()))


def problems(**per_county) -> list[str]:
    with pytest.raises(ConfigError) as error:
        counties(**per_county)
    return error.value.problems


def test_defaults():
    s = counties(kwale={}).counties["kwale"].settings
    assert (s.upgrades, s.couchdb_user, s.tls.secret_name, s.tls.cluster_issuer, s.migration) == (
        "config", "medic", "cht-tls", None, None
    )
    assert s.upgrade_service_image == "medicmobile/upgrade-service:0.32"


def test_county_overrides_the_same_keys():
    s = counties(kwale={"upgrades": "admin-app", "tls": {"clusterIssuer": "letsencrypt"}, "couchdbUser": "chtadmin"})
    settings = s.counties["kwale"].settings
    assert settings.upgrades == "admin-app" and settings.couchdb_user == "chtadmin"
    assert settings.tls.cluster_issuer == "letsencrypt" and settings.tls.secret_name == "cht-tls"


def test_admin_app_is_refused_on_5x():
    assert problems(kwale={"version": "5.2.0", "upgrades": "admin-app"}) == [
        "cht-hosting:counties.kwale.upgrades: CHT 5.2.0 has no upgrade service (Medic removed it in 5.x); set "
        "upgrades: config. Coming from admin-app on 4.x: first set version to the release the admin app shows and "
        "upgrades: config, apply, then set the 5.x version"
    ]


def test_unknown_upgrade_policy():
    assert problems(kwale={"upgrades": "auto"}) == [
        "cht-hosting:counties.kwale.upgrades: must be 'config' or 'admin-app', got 'auto'"
    ]


def test_couchdb_user_must_be_url_safe():
    assert problems(kwale={"couchdbUser": "Med:ic"}) == [
        "cht-hosting:counties.kwale.couchdbUser: 'Med:ic' is not a usable CouchDB admin name; use 1-32 lower-case "
        "letters, digits, '_' or '-', starting with a letter (it goes into COUCH_URL unencoded), e.g. medic"
    ]


def test_migration_needs_one_volume_per_node_and_credentials():
    assert problems(mombasa={"couchdbNodes": 3, "migration": {"volumes": [{"volumeHandle": "fcd-1"}]}}) == [
        "cht-hosting:counties.mombasa.migration.volumes: 1 volume(s) for 3 CouchDB node(s); give exactly one per node, "
        "in node order",
        "cht-hosting:counties.mombasa.migration: a migrated county must keep its CouchDB user, password, secret and "
        "uuid; set them with `pulumi config set --secret --path 'migratedCredentials.mombasa.password' ...` (and user, "
        "secret, uuid; see couchdb-migration get-env)",
    ]


def test_migration_with_credentials_is_valid():
    county = counties(secret=True, lamu={"migration": {"volumes": [{"hostPath": "/srv/couchdb1", "node": "agent-3"}]}})
    volume = county.counties["lamu"].settings.migration.volumes[0]
    assert (volume.host_path, volume.node) == ("/srv/couchdb1", "agent-3")


def test_migration_data_path_must_be_relative():
    (problem,) = problems(lamu={"migration": {"volumes": [{"volumeHandle": "x"}], "dataPath": "/srv/data"}})
    assert problem.startswith("cht-hosting:counties.lamu.migration.dataPath: '/srv/data' is not a relative path")


def test_migration_does_not_belong_in_the_defaults():
    values, keys = raw_config("prod", migratedCredentials="[secret]")
    values["cht"] = {**values["cht"], "migration": {"volumes": [{"volumeHandle": "fcd-1"}]}}
    with pytest.raises(ConfigError) as error:
        validate(values, keys | {"migratedCredentials"})
    assert (
        "cht-hosting:cht.migration: a migration brings one county's existing data; move it under "
        "counties.<name>.migration"
    ) in error.value.problems


def test_migrated_credentials_must_be_secret():
    values, keys = raw_config("prod", migratedCredentials={"lamu": {}})
    with pytest.raises(ConfigError) as error:
        validate(values, keys)
    assert error.value.problems == [
        "cht-hosting:migratedCredentials: is stored in plain text; set it with "
        "`pulumi config set --secret migratedCredentials ...`"
    ]


def test_migrated_credentials_entry_must_be_complete():
    """Checked once, in validation, on the secret's shape (validation sees `[secret]` or "" for each leaf)."""
    values, keys = raw_config(
        "prod",
        migratedCredentials={"lamu": {"user": "[secret]", "password": "[secret]", "secret": ""}},
    )
    values["counties"] = {**values["counties"], "lamu": {"migration": {"volumes": [{"volumeHandle": "fcd-1"}]}}}
    with pytest.raises(ConfigError) as error:
        validate(values, keys | {"migratedCredentials"})
    assert error.value.problems == [
        "cht-hosting:migratedCredentials.lamu: missing secret, uuid of the migrated county; set each with "
        "`pulumi config set --secret --path 'migratedCredentials.lamu.<key>' ...` (the values couchdb-migration "
        "get-env prints)"
    ]
