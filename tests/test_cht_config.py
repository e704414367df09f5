"""Config keys added for ChtProject: defaults, per-county overrides and the exact messages."""

from __future__ import annotations

import pytest

from config.errors import ConfigError
from config.validate import validate
from tests.conftest import BACKUP_KEYS, raw_config


def counties(secret: bool = False, **per_county):
    extra = {"migratedCredentials": "[secret]"} if secret else {}
    values, keys = raw_config("national", counties=per_county, **extra)
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
    assert problems(lamu={"migration": {"volumes": [{"volumeHandle": "fcd-1"}, {"volumeHandle": "fcd-2"}]}}) == [
        "cht-hosting:counties.lamu.migration.volumes: 2 volume(s) for 1 CouchDB node(s); give exactly one per node, "
        "in node order",
        "cht-hosting:counties.lamu.migration: a migrated county must keep its CouchDB user, password, secret and "
        "uuid; set them with `pulumi config set --secret --path 'migratedCredentials.lamu.password' ...` (and user, "
        "secret, uuid; see couchdb-migration get-env)",
    ]


def test_a_clustered_compose_county_is_not_migrated_by_its_volumes():
    """Compose names its nodes couchdb@couchdb-N.local (cht-core 5.2.0 scripts/build/cht-couchdb-cluster.yml.template
    SVC_NAME=couchdb-N.local; couchdb/docker-entrypoint.sh writes it into vm.args), and the shard maps in `_dbs`
    name those nodes; here the nodes are couchdb@couchdb-N.<ns>.svc.cluster.local, so no path may bring the
    volumes as they are (medic/couchdb-migration `move-node` needs the old cluster's shard map, by hand)."""
    volumes = [{"volumeHandle": f"fcd-{n}"} for n in (1, 2, 3)]
    assert problems(secret=False, mombasa={"couchdbNodes": 3, "migration": {"volumes": volumes}})[0] == (
        "cht-hosting:counties.mombasa.migration: a clustered Compose county cannot be brought over by its volumes: "
        "its shard maps name the Compose nodes (couchdb@couchdb-N.local), which do not exist here. Deploy it as a "
        "new county and replicate its data, or migrate it by hand (docs/runbooks/migrate-from-compose.md); "
        "remove migration or set couchdbNodes: 1 for a single-node one"
    )
    with pytest.raises(ConfigError) as error:
        counties(secret=True, mombasa={"couchdbNodes": 3, "migration": {"volumes": volumes}})
    assert len(error.value.problems) == 1  # refused even with every credential in place


def test_a_budget_too_small_for_its_services_is_refused_with_the_minimum():
    (problem,) = problems(kwale={"budget": {"cpu": 0.5, "memoryGb": 1}})
    assert problem.startswith("cht-hosting:counties.kwale.budget: 0.5 CPU / 1 GB is too small for CHT 4.22.0 with 1 ")
    assert problem.endswith("give it at least 0.7 CPU and 2 GB")
    counties(kwale={"budget": {"cpu": 0.7, "memoryGb": 2}})  # the minimum it names is accepted


def test_quota_headroom_and_log_level_keys():
    s = counties(kwale={"quotaHeadroomPercent": 50, "logLevel": "debug"}).counties["kwale"].settings
    assert (s.quota_headroom_percent, s.log_level) == (50, "debug")
    assert counties(kwale={}).counties["kwale"].settings.quota_headroom_percent == 25
    assert problems(kwale={"quotaHeadroomPercent": 150}) == [
        "cht-hosting:counties.kwale.quotaHeadroomPercent: must be at most 100, got 150"
    ]
    (problem,) = problems(kwale={"logLevel": "verbose"})
    assert problem.startswith("cht-hosting:counties.kwale.logLevel: ")


def test_log_level_on_a_release_whose_api_ignores_it_is_a_warning():
    from config.validate import warnings

    config = counties(kwale={"logLevel": "debug"}, lamu={"logLevel": "debug", "version": "5.2.0"})
    found = [w for w in warnings(config) if "logLevel" in w]
    assert found == [
        "cht-hosting:counties.kwale.logLevel: debug reaches CouchDB only; API and Sentinel read a log level from "
        "CHT 5.2.0 on, 4.22.0 logs at info"
    ]


def test_migration_with_credentials_is_valid():
    # hostPath only without backups (Velero never backs one up: tests/test_backup_hygiene.py)
    values, keys = raw_config("national", counties={"lamu": {"migration": {"volumes": [{"hostPath": "/srv/couchdb1", "node": "agent-3"}]}}},
                              migratedCredentials="[secret]")
    for key in ("backup", *BACKUP_KEYS):
        values.pop(key, None)
    county = validate(values, (keys - BACKUP_KEYS) | {"migratedCredentials"})
    volume = county.counties["lamu"].settings.migration.volumes[0]
    assert (volume.host_path, volume.node) == ("/srv/couchdb1", "agent-3")


def test_migration_data_path_must_be_relative():
    (problem,) = problems(lamu={"migration": {"volumes": [{"volumeHandle": "x"}], "dataPath": "/srv/data"}})
    assert problem.startswith("cht-hosting:counties.lamu.migration.dataPath: '/srv/data' is not a relative path")


def test_migration_does_not_belong_in_the_defaults():
    values, keys = raw_config("national", migratedCredentials="[secret]")
    values["cht"] = {**values["cht"], "migration": {"volumes": [{"volumeHandle": "fcd-1"}]}}
    with pytest.raises(ConfigError) as error:
        validate(values, keys | {"migratedCredentials"})
    assert (
        "cht-hosting:cht.migration: a migration brings one county's existing data; move it under "
        "counties.<name>.migration"
    ) in error.value.problems


def test_migrated_credentials_must_be_secret():
    values, keys = raw_config("national", migratedCredentials={"lamu": {}})
    with pytest.raises(ConfigError) as error:
        validate(values, keys)
    assert error.value.problems == [
        "cht-hosting:migratedCredentials: is stored in plain text; set it with "
        "`pulumi config set --secret migratedCredentials ...`",
        # lamu is not migrated, so nothing would read its entry either.
        "cht-hosting:migratedCredentials.lamu: is set, but county lamu has no migration, so nothing uses it; set its "
        "migration, or remove it with `pulumi config rm --path 'migratedCredentials.lamu'`",
    ]


def test_migrated_credentials_entry_must_be_complete():
    """Checked once, in validation, on the secret's shape (validation sees `[secret]` or "" for each leaf)."""
    values, keys = raw_config(
        "national",
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
