"""restore-county.sh, run for real against a cluster stand-in that behaves as Velero v1.18.1 and Kubernetes do
(tests/velero_standin.py names the upstream files it follows), for every county shape of the test stack
tests/stacks/Pulumi.restore.yaml: single node, 3 nodes, migrated (static volume), renamed (a migration of an
old county's volume) and a name of the maximum length.

Each county is deployed as the program renders it (components/cht/render.py: claims, static volumes,
Deployments), backed up as Velero backs it up, lost (its CouchDB claims and Deployments deleted, as the
runbook's set-aside step does), and restored by the rendered script. CouchDB answers through a stub curl
(the script only lists databases after the restore; the drill's comparison is tested against a real
CouchDB-protocol server elsewhere).
"""

from __future__ import annotations

import base64
import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from components.backup import render, scripts
from components.cht import render as cht
from config import names
from config.model import HostPathVolume
from config.validate import validate
from tests import tools
from tests.conftest import raw_config
from tests.test_backup_render import RESTORE_SPEC
from tests.velero_standin import World, get_valid_name, kubectl

ROOT = Path(__file__).resolve().parent.parent
USER, PASSWORD = "medic", "Rest0re'\"$(x)\\pw"
REAL = ("jq", "base64", "grep", "sort", "date", "cat", "tr", "seq", "sleep")
DATABASES = {"medic": 1200, "medic-sentinel": 300, "_users": 12}
LONG = "taita-taveta-county-community-health-records-north"


def restore_stack():
    values, keys = raw_config("restore")
    values["migratedCredentials"] = "[secret]"
    return validate(values, keys | {"migratedCredentials"})


STACK = restore_stack()
BACKUP = STACK.backup
CLASS = STACK.existing_cluster.storage_class
SCRIPT = scripts.county_restore_script(velero_namespace=BACKUP.velero.namespace)

CURL = r"""
config="$(cat)"
[ "$config" = "$(cat "$STUB_DIR/curl-config")" ] || { echo "curl stub: wrong credentials config" >&2; exit 22; }
url="${*: -1}"; path="/${url#http://*/}"
file="$STUB_DIR/couch${path//\//_}"
[ -f "$file" ] || exit 22
cat "$file"
"""


class Sandbox:
    """PATH holds only the kubectl stand-in, a CouchDB curl stub and wrappers around the real tools."""

    def __init__(self, base: Path):
        self.dir, self.bin = base, base / "bin"
        self.bin.mkdir()
        self.state = base / "cluster.json"
        bash = tools.need("bash")
        self._write("kubectl", f'#!{bash}\nPYTHONPATH="{ROOT}" exec "{sys.executable}" -m tests.velero_standin "{self.state}" "$@"\n')
        self._write("curl", f"#!{bash}\n{CURL}")
        for name in REAL:
            self._write(name, f'#!{bash}\nexec {tools.need(name)} "$@"\n')
        quoted = PASSWORD.replace("\\", "\\\\").replace('"', '\\"')
        (base / "curl-config").write_text(f'user = "{USER}:{quoted}"')
        self.couch("/_up", {"status": "ok"})
        self.couch("/_all_dbs", sorted(DATABASES))
        for db, count in DATABASES.items():
            self.couch(f"/{db}", {"db_name": db, "doc_count": count})
        world = World(self.state)
        world.add({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": CLASS}, "reclaimPolicy": "Retain"})
        # What BackupEngine creates in Velero's namespace.
        world.add(_config_map(render.COUNTY_MODIFIERS, render.county_restore_modifiers(CLASS)))
        world.save()

    def _write(self, name: str, text: str) -> None:
        path = self.bin / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)

    def couch(self, path: str, body: object) -> None:
        (self.dir / f"couch{path.replace('/', '_')}").write_text(json.dumps(body))

    def world(self) -> World:
        return World(self.state)

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        environment = {"PATH": str(self.bin), "STUB_DIR": str(self.dir), **env}
        return subprocess.run(
            [tools.need("bash"), "-c", SCRIPT, "restore-county.sh", *args],
            capture_output=True, text=True, env=environment, timeout=120,
        )

    def calls(self) -> str:
        path = self.state.with_suffix(".calls")
        return path.read_text() if path.exists() else ""


def _config_map(name: str, text: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "velero"}, "data": {"modifiers.yaml": text}}


def deploy(world: World, name: str, settings=None) -> None:
    """The county's CouchDB objects as the program renders them, bound as Kubernetes binds them."""
    settings = settings or STACK.counties[name].settings
    world.add(cht.credentials_secret(name, None) | {"data": {"COUCHDB_USER": _b64(USER), "COUCHDB_PASSWORD": _b64(PASSWORD)}})
    for node in cht.couch_nodes(settings):
        if settings.migration is not None:
            volume = cht.static_volume(settings, name, node)
            volume["status"] = {"phase": "Available"}
            world.add(volume)
        world.bind(world.add(cht.claim(settings, name, node, CLASS)))
        world.add(cht.couchdb_deployment(settings, name, node))


def back_up(world: World, name: str, stamp: str, *, running: bool = True, settings=None) -> str:
    """A backup by the county's Schedule: its template's labels plus the schedule-name label Velero adds
    (velero v1.18.1 pkg/builder/backup_builder.go FromSchedule)."""
    county = STACK.counties.get(name)
    labels = dict(render.schedule_spec(county, BACKUP, "velero")["template"]["metadata"]["labels"]) if county else {}
    if settings is not None:
        labels = {render.COUNTY_LABEL: name, render.NODES_LABEL: str(settings.couchdb_nodes)}
    schedule = names.schedule_name(name)
    labels["velero.io/schedule-name"] = schedule
    backup = f"{schedule}-{stamp}"
    completed = f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[8:10]}:{stamp[10:12]}:00Z"
    world.backup(name, backup, labels=labels, completed=completed, running=running)
    return backup


def lose(world: World, name: str) -> None:
    """The runbook's set-aside step: the county's CouchDB Deployments and claims deleted (volumes Released)."""
    for deployment in [d for d in world.list("Deployment", name) if d["metadata"]["labels"].get("cht.service", "").startswith("couchdb")]:
        world.remove("Deployment", name, deployment["metadata"]["name"])
    for claim in world.list("PersistentVolumeClaim", name):
        world.release(claim)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def sandbox(tmp_path) -> Sandbox:
    return Sandbox(tmp_path)


def test_the_stack_has_every_county_shape():
    counties = {name: c.settings for name, c in STACK.counties.items()}
    assert {s.couchdb_nodes for s in counties.values()} == {1, 3}
    assert sum(s.migration is not None for s in counties.values()) >= 2  # migrated and renamed
    assert max(map(len, counties)) == names.max_county_name_length()


@pytest.mark.parametrize("county", sorted(STACK.counties))
def test_every_county_shape_is_restored_from_its_newest_backup_holding_every_volume(sandbox, county):
    settings = STACK.counties[county].settings
    world = sandbox.world()
    deploy(world, county)
    good = back_up(world, county, "202601020100")
    # The newest backup was taken while CouchDB was not running: Completed, with no volume.
    empty = back_up(world, county, "202601030100", running=False)
    lose(world, county)
    world.save()

    result = sandbox.run(county)
    assert result.returncode == 0, result.stderr
    assert f"backup {empty} holds 0 of {settings.couchdb_nodes} CouchDB volume(s)" in result.stderr
    assert f"county {county} restored from {good}" in result.stdout
    assert "medic 1200 documents" in result.stdout

    world = sandbox.world()
    (restore,) = world.list("Restore", "velero")
    assert restore["status"]["phase"] == "Completed"
    assert restore["spec"]["backupName"] == good and set(restore["spec"]) <= RESTORE_SPEC
    assert restore["spec"]["resourceModifier"] == {"kind": "ConfigMap", "name": render.COUNTY_MODIFIERS}
    # Every node's claim is back, bound to a new volume on the county StorageClass, its data restored.
    claims = world.list("PersistentVolumeClaim", county)
    assert sorted(c["metadata"]["name"] for c in claims) == sorted(n.claim for n in cht.couch_nodes(settings))
    assert {c["status"]["phase"] for c in claims} == {"Bound"}
    assert {c["spec"]["storageClassName"] for c in claims} == {CLASS}
    restores = world.list("PodVolumeRestore", "velero")
    assert len(restores) == settings.couchdb_nodes and {r["status"]["phase"] for r in restores} == {"Completed"}
    deployments = world.list("Deployment", county)
    assert deployments and all(world.pod_can_start(d) for d in deployments)
    assert PASSWORD not in sandbox.calls() and _b64(PASSWORD) not in sandbox.calls()


def test_a_static_volume_stays_pending_without_the_county_modifier(sandbox):
    """The stand-in's control: Velero clears a migrated claim's volumeName and Kubernetes never provisions
    for storageClassName "", so without the modifier the restore cannot finish (the drill's own class
    would hide this)."""
    world = sandbox.world()
    world.remove("ConfigMap", "velero", render.COUNTY_MODIFIERS)
    noop = "version: v1\nresourceModifierRules:\n- conditions: {groupResource: configmaps, resourceNameRegex: '^none$'}\n  patches: [{operation: test, path: /kind, value: ConfigMap}]\n"
    world.add(_config_map(render.COUNTY_MODIFIERS, noop))
    deploy(world, "garissa")
    back_up(world, "garissa", "202601020100")
    lose(world, "garissa")
    world.save()
    result = sandbox.run("garissa")
    assert result.returncode != 0
    assert "ended PartiallyFailed" in result.stderr
    assert 'claims not bound in garissa: couchdb-claim0 (storageClassName "")' in result.stderr


def test_a_long_county_is_found_by_the_restore_uid_not_its_hashed_name(sandbox):
    world = sandbox.world()
    deploy(world, LONG)
    back_up(world, LONG, "202601020100")
    lose(world, LONG)
    world.save()
    assert sandbox.run(LONG).returncode == 0
    (restore,) = sandbox.world().list("Restore", "velero")
    name = restore["metadata"]["name"]
    assert len(name) > 63
    (volume,) = sandbox.world().list("PodVolumeRestore", "velero")
    assert volume["metadata"]["labels"]["velero.io/restore-name"] == get_valid_name(name) != name
    # Selecting by the name, as the script once did, is refused by the API (label values are at most 63).
    code, _, err = kubectl(sandbox.world(), ["get", "podvolumerestores.velero.io", "-n", "velero", "-l", f"velero.io/restore-name={name}", "-o", "json"], "")
    assert code == 1 and "must be no more than 63 characters" in err
    assert "velero.io/restore-uid=" in sandbox.calls()


def test_a_named_backup_is_used_and_refused_when_it_lacks_a_volume(sandbox):
    world = sandbox.world()
    deploy(world, "mombasa")
    older = back_up(world, "mombasa", "202601010100")
    empty = back_up(world, "mombasa", "202601020100", running=False)
    back_up(world, "mombasa", "202601030100")
    lose(world, "mombasa")
    world.save()
    result = sandbox.run("mombasa", empty)
    assert result.returncode != 0 and f"backup {empty} does not hold every CouchDB volume" in result.stderr
    assert not sandbox.world().list("Restore", "velero")
    result = sandbox.run("mombasa", older)
    assert result.returncode == 0, result.stderr
    assert sandbox.world().list("Restore", "velero")[0]["spec"]["backupName"] == older
    assert "cht-couchdb-1" in sandbox.calls() and "cht-couchdb-3" in sandbox.calls()


def test_no_backup_with_every_volume_is_refused(sandbox):
    world = sandbox.world()
    deploy(world, "kwale")
    back_up(world, "kwale", "202601020100", running=False)
    lose(world, "kwale")
    world.save()
    result = sandbox.run("kwale")
    assert result.returncode != 0 and "no completed backup of county kwale holds every CouchDB volume" in result.stderr


def test_a_host_path_volume_is_never_in_a_backup(sandbox):
    """Why config refuses hostPath with backups: Velero skips it (backupper.go isHostPathVolume), so a
    backup is Completed without it and nothing can restore it."""
    base = STACK.counties["garissa"].settings
    volume = HostPathVolume.model_construct(host_path="/srv/couchdb", node="agent-1")
    settings = base.model_copy(update={"migration": base.migration.model_copy(update={"volumes": [volume]})})
    world = sandbox.world()
    deploy(world, "garissa", settings)
    back_up(world, "garissa", "202601020100", settings=settings)
    lose(world, "garissa")
    world.save()
    result = sandbox.run("garissa")
    assert result.returncode != 0 and "holds 0 of 1 CouchDB volume(s)" in result.stderr


def test_refuses_while_couchdb_objects_remain(sandbox):
    world = sandbox.world()
    deploy(world, "kwale")
    back_up(world, "kwale", "202601020100")
    world.save()
    result = sandbox.run("kwale")
    assert result.returncode != 0 and "still has CouchDB objects" in result.stderr
    assert not sandbox.world().list("Restore", "velero")


@pytest.mark.parametrize("arg", ["", "Kwale", "a" * (names.max_county_name_length() + 1), "kwale;rm"])
def test_refuses_what_is_not_a_county_name(sandbox, arg):
    result = sandbox.run(arg)
    assert result.returncode != 0 and ("usage: restore-county.sh" in result.stderr or "is not a county name" in result.stderr)


def test_old_backups_without_the_node_count_use_the_schedule(sandbox):
    world = sandbox.world()
    settings = STACK.counties["mombasa"].settings
    deploy(world, "mombasa")
    labels = {render.COUNTY_LABEL: "mombasa", "velero.io/schedule-name": "county-mombasa"}
    world.backup("mombasa", "county-mombasa-20250101010000", labels=labels, completed="2025-01-01T01:30:00Z")
    lose(world, "mombasa")
    world.save()
    result = sandbox.run("mombasa")
    assert result.returncode != 0 and "set COUCHDB_NODES=1 or 3" in result.stderr
    world = sandbox.world()
    county = STACK.counties["mombasa"]
    world.add({"apiVersion": "velero.io/v1", "kind": "Schedule",
               "metadata": {"name": "county-mombasa", "namespace": "velero", "labels": render.schedule_labels(county, True)}})
    world.save()
    result = sandbox.run("mombasa")
    assert result.returncode == 0, result.stderr
    assert len(sandbox.world().list("PodVolumeRestore", "velero")) == settings.couchdb_nodes
