"""The drill's record and comparison, run for real: the pre-backup hook (`drill.record_script`) against a
CouchDB-protocol server ("the county at backup time"), then the drill's comparison (`drill.compare_script`, the
file the Job runs) against a second one holding a copy: exact, or missing a shard's worth of `medic`, a
database, some `_users`, a design document, an attachment; and copies written to after the record.

The servers are express-pouchdb on 127.0.0.1 (tests/couchdb_server.py says where it differs from CouchDB).
A copy is built by the same writes as the county (PouchDB's revisions are deterministic, as CouchDB's), so an
exact copy holds the same documents, revisions, attachments and update_seq, as a restored volume does.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest

from components.backup import drill
from config import cadence
from tests import tools
from tests.couchdb_server import Couch, shard_of

USER = "medic"
PASSWORD = "Mock'Pass\"word$(x)\\42 "
DATABASES = ("medic", "medic-sentinel", "medic-users-meta", "medic-logs", "_users", "medic-user-chw1-meta")


def _attachment(text: str) -> dict:
    return {"content_type": "text/plain", "data": base64.b64encode(text.encode()).decode()}


def county_writes(skip=lambda db, doc_id: False, skip_dbs=()) -> list[tuple[str, str, dict]]:
    """The county's history as (db, operation, doc); `skip` leaves documents out (a copy that lost them)."""
    ops: list[tuple[str, str, dict]] = []
    for db in DATABASES:
        if db not in skip_dbs:
            ops.append((db, "create", {}))

    def put(db: str, doc: dict) -> None:
        if db not in skip_dbs and not skip(db, doc["_id"]):
            ops.append((db, "put", doc))

    put("medic", {"_id": "_design/medic", "views": {"contacts": {"map": "function (doc) { emit(doc._id); }"}}})
    put("medic", {"_id": "_design/medic-client", "validate_doc_update": ""})
    for n in range(120):
        doc = {"_id": f"{n * 2654435761 % 2**32:08x}-report-{n}", "type": "data_record", "n": n}
        if n % 25 == 0:
            doc["_attachments"] = {"content": _attachment(f"form {n} " * 50)}
        put("medic", doc)
    for n in range(0, 120, 30):  # later revisions of some reports, and a few deleted
        put("medic", {"_id": f"{n * 2654435761 % 2**32:08x}-report-{n}", "update": "second"})
    for n in range(5, 120, 40):
        put("medic", {"_id": f"{n * 2654435761 % 2**32:08x}-report-{n}", "delete": True})
    for n in range(30):
        put("medic-sentinel", {"_id": f"{n:04d}-info", "transitions": {"n": n}})
    for n in range(20):
        put("medic-users-meta", {"_id": f"feedback-{n:03d}", "meta": n})
        put("medic-logs", {"_id": f"connected-user-{n:03d}", "log": n})
        put("medic-user-chw1-meta", {"_id": f"read:report:{n:03d}"})
    put("_users", {"_id": "_design/_auth", "validate_doc_update": "function () {}"})
    for n in range(30):
        put("_users", {"_id": f"org.couchdb.user:chw{n:02d}", "type": "user", "name": f"chw{n:02d}", "roles": ["chw"]})
    return ops


def apply(couch: Couch, ops) -> None:
    """The writes in order, batched into _bulk_docs (a batch never holds one document twice)."""
    latest: dict[tuple[str, str], dict] = {}
    batch: list[dict] = []
    batch_db = None

    def flush() -> None:
        if batch:
            for result in couch.request("POST", f"/{batch_db}/_bulk_docs", {"docs": batch}):
                latest[(batch_db, result["id"])]["_rev"] = result["rev"]
            batch.clear()

    for db, op, doc in ops:
        if op == "create" or db != batch_db or any(d["_id"] == doc.get("_id") for d in batch):
            flush()
            batch_db = db
        if op == "create":
            couch.create(db)
            continue
        previous = latest.get((db, doc["_id"]))
        body = {k: v for k, v in doc.items() if k != "delete"}
        if previous is not None:
            body = {**previous, **body}
            if doc.get("delete"):
                body = {"_id": doc["_id"], "_rev": previous["_rev"], "_deleted": True}
        latest[(db, doc["_id"])] = body
        batch.append(body)
    flush()


LATER = [  # written after the record, before the volume was read
    ("medic", "put", {"_id": "ffffffff-report-new-1", "type": "data_record"}),
    ("medic", "put", {"_id": "00000001-report-new-2", "type": "data_record"}),
    ("medic", "put", {"_id": f"{30 * 2654435761 % 2**32:08x}-report-30", "update": "third"}),
    ("medic", "put", {"_id": f"{65 * 2654435761 % 2**32:08x}-report-65", "delete": True}),
    ("_users", "put", {"_id": "org.couchdb.user:chw99", "type": "user", "name": "chw99", "roles": ["chw"]}),
]


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    tools.need("jq")
    county = Couch(USER, PASSWORD)
    copy = Couch(USER, PASSWORD)
    try:
        yield county, copy, tmp_path_factory.mktemp("drill")
    finally:
        county.stop()
        copy.stop()


def _bash() -> str:
    bash = tools.find("bash")
    if bash is None:
        tools.unavailable("bash is not installed")
    return bash


def record(county: Couch, path: Path, ops, full_max: int | None = None) -> subprocess.CompletedProcess:
    county.wipe()
    apply(county, ops)
    script = path / "record.sh"
    script.write_text(drill.record_script())
    env = {
        "PATH": os.environ["PATH"],
        "COUCHDB_USER": USER,
        "COUCHDB_PASSWORD": PASSWORD,
        "CHT_HOSTING_RECORD_BASE": county.base,
        "CHT_HOSTING_RECORD_FILE": str(path / "record.tsv"),
    }
    if full_max is not None:
        env["CHT_HOSTING_RECORD_FULL_MAX"] = str(full_max)
    return subprocess.run([_bash(), str(script)], env=env, capture_output=True, text=True, timeout=120)


def compare(copy: Couch, path: Path, ops) -> subprocess.CompletedProcess:
    copy.wipe()
    apply(copy, ops)
    return run_compare(path, copy)


def run_compare(path: Path, copy: Couch) -> subprocess.CompletedProcess:
    script = path / "compare-backup.sh"
    script.write_text(drill.compare_script())
    env = {"PATH": os.environ["PATH"], "COUCH_USER": USER, "COUCH_PASSWORD": PASSWORD}
    return subprocess.run(
        [_bash(), str(script), str(path / "record.tsv"), copy.base], env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def the_record(servers) -> str:
    """The hook run once on the county: its record's text."""
    county, _, path = servers
    done = record(county, path, county_writes())
    assert done.returncode == 0, done.stderr
    return (path / "record.tsv").read_text()


@pytest.fixture
def recorded(servers, the_record, tmp_path):
    _, copy, _ = servers
    (tmp_path / "record.tsv").write_text(the_record)
    return copy, tmp_path


def test_the_record_holds_every_database_with_its_figures_design_documents_and_a_sample(the_record, servers):
    lines = [line.split("\t", 2) for line in the_record.splitlines()]
    kinds = {(kind, db) for kind, db, _ in lines}
    assert lines[0][0] == "format" and lines[-1] == ["end", "-", str(len(DATABASES))]
    for db in DATABASES:
        assert {("info", db), ("design", db), ("sample", db), ("all", db)} <= kinds
    assert not (servers[2] / "record.tsv.partial").exists()


def test_an_exact_copy_passes(recorded):
    copy, path = recorded
    done = compare(copy, path, county_writes())
    assert done.returncode == 0, done.stderr
    for db in DATABASES:
        assert f"checked {db}: update_seq" in done.stdout
    assert "6 database(s) compared exactly, 0 written to after the record" in done.stdout
    # Every attachment of the sample was read back and matched its digest.
    assert " 0 attachment(s)" not in done.stdout


@pytest.mark.parametrize(
    "case, ops, expected",
    [
        ("a shard of medic", county_writes(skip=lambda db, i: db == "medic" and shard_of(i) == 3), "medic: update_seq"),
        ("a database", county_writes(skip_dbs=("medic-logs",)), "database medic-logs is missing"),
        ("10% of _users", county_writes(skip=lambda db, i: db == "_users" and i.endswith(("3", "7", "1"))), "_users: {\"doc_count\":22"),
        ("one user", county_writes(skip=lambda db, i: i == "org.couchdb.user:chw17"), "_users: 1 recorded document(s) missing"),
        ("a design document", county_writes(skip=lambda db, i: i == "_design/medic-client"), "design document(s) missing"),
        ("one report", county_writes(skip=lambda db, i: i.endswith("report-103")), "medic: {\"doc_count\":118"),
    ],
)
def test_a_copy_missing_anything_fails(recorded, case, ops, expected):
    copy, path = recorded
    done = compare(copy, path, ops)
    assert done.returncode == 1, f"{case}: {done.stdout}"
    assert expected in done.stderr, done.stderr


def test_a_copy_missing_an_attachment_fails(recorded):
    copy, path = recorded
    ops = [(db, op, {k: v for k, v in doc.items() if k != "_attachments"} if doc.get("_id", "").endswith("report-50") else doc)
           for db, op, doc in county_writes()]
    done = compare(copy, path, ops)
    assert done.returncode == 1
    assert "report-50" in done.stderr


def test_an_attachment_whose_data_differs_from_its_digest_fails(recorded):
    """Bytes damaged inside an attachment leave its stub (and digest) as recorded; the drill reads the data."""
    copy, path = recorded
    copy.wipe()
    apply(copy, county_writes())
    copy.request("PUT", "/_standin/damaged-attachments", {"on": True})
    try:
        done = run_compare(path, copy)
    finally:
        copy.request("PUT", "/_standin/damaged-attachments", {"on": False})
    assert done.returncode == 1
    assert "does not match its digest md5-" in done.stderr
    assert "differs from the one recorded" not in done.stderr


def test_a_copy_written_to_after_the_record_passes(recorded):
    copy, path = recorded
    done = compare(copy, path, county_writes() + LATER)
    assert done.returncode == 0, done.stderr
    assert "ok medic: written to after the record" in done.stdout
    assert "ok _users: written to after the record" in done.stdout
    assert "checked medic-sentinel: update_seq" in done.stdout


@pytest.mark.parametrize("full_max", [None, 0], ids=["whole-list", "sample-only"])
def test_a_copy_written_to_after_the_record_that_lost_a_shard_fails(servers, full_max, tmp_path):
    """More written after the record than the shard held: the counts alone would pass; the documents do not."""
    county, copy, _ = servers
    path = tmp_path
    done = record(county, path, county_writes(), full_max=full_max)
    assert done.returncode == 0, done.stderr
    lost = lambda db, i: db == "medic" and shard_of(i) == 5  # noqa: E731
    more = [("medic", "put", {"_id": f"{n:08x}-later", "type": "data_record"}) for n in range(60)]
    done = compare(copy, path, county_writes(skip=lost) + more)
    assert done.returncode == 1, done.stdout
    assert "medic: document" in done.stderr and "is missing" in done.stderr


def test_a_record_the_hook_did_not_finish_is_refused(recorded):
    copy, path = recorded
    text = (path / "record.tsv").read_text()
    (path / "record.tsv").write_text(text[: text.rindex("end\t")])
    done = compare(copy, path, county_writes())
    assert done.returncode == 2
    assert "incomplete" in done.stderr


def test_scripts_pass_shellcheck(tmp_path):
    shellcheck = tools.find("shellcheck")
    if shellcheck is None:
        tools.unavailable("shellcheck is not installed")
    job = drill.drill_script(velero_namespace="velero", per_run=2, timeout_seconds=600, storage_class="sc")
    for name, text in (("record.sh", drill.record_script()), ("compare.sh", drill.compare_script()), ("job.sh", job)):
        (tmp_path / name).write_text(text)
        done = subprocess.run([shellcheck, "--shell=bash", "--severity=style", str(tmp_path / name)], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("nodes, service, container", [(1, "couchdb", "cht-couchdb"), (3, "couchdb-1", "cht-couchdb-1")])
def test_the_record_runs_before_the_backup_in_couchdb_node_1(nodes, service, container):
    """velero v1.18.1 backup_types.go: hooks.resources[].pre[].exec {container, command, onError, timeout}."""
    from config.model import ChtSettings

    settings = ChtSettings.model_construct(couchdb_nodes=nodes, version="4.22.0")
    hooks = drill.record_hooks(settings, "kisumu")["resources"]
    assert len(hooks) == 1
    hook = hooks[0]
    assert hook["includedNamespaces"] == ["kisumu"]
    assert hook["labelSelector"] == {"matchLabels": {"cht.service": service}}
    exec_ = hook["pre"][0]["exec"]
    assert exec_["container"] == container
    assert exec_["command"] == ["/bin/bash", "-c", drill.record_script()]
    # A failed record never costs the backup its data; Velero waits longer than the script runs.
    assert exec_["onError"] == "Continue"
    assert int(exec_["timeout"].rstrip("s")) > drill.RECORD_TIMEOUT_SECONDS
    assert drill.RECORD_PATH.startswith("/opt/couchdb/data/")


# --- the drill Job itself: kubectl a stub cluster kept as files, curl, jq and the comparison real -------------

KUBECTL = r"""#!/usr/bin/env bash
printf 'kubectl %s\n' "$*" >> "$STUB_LOG"
state="$STUB_STATE"
args="$*"
case "$args" in
  "get schedules.velero.io -n velero -l cht-hosting/restore-drill=true -o json") cat "$state/schedules.json" ;;
  "annotate schedules.velero.io -n velero county-"*)
    county="${args#*county-}"; county="${county%% *}"
    shift 6; printf '%s\n' "$@" >> "$state/annotations-$county" ;;
  "get schedules.velero.io -n velero county-"*" -o jsonpath="*)
    county="${args#*county-}"; county="${county%% *}"; cat "$state/nodes-$county" ;;
  "get backups.velero.io -n velero -l velero.io/schedule-name="*" -o json")
    schedule="${args#*schedule-name=}"; schedule="${schedule%% *}"
    cat "$state/backups-$schedule.json" 2>/dev/null || echo '{"items": []}' ;;
  "create -f -")
    body="$(cat)"; kind="$(jq -r .kind <<<"$body")"; name="$(jq -r .metadata.name <<<"$body")"
    printf '%s' "$body" > "$state/created-$kind-$name.json" ;;
  "get service -n restore-drill-scratch couchdb-"*" -o jsonpath={.spec.clusterIP}")
    n="${args#*couchdb-}"; printf '10.43.7.%s' "${n%% *}" ;;
  "get restores.velero.io -n velero "*" -o jsonpath={.status.phase}") printf 'Completed' ;;
  "get restores.velero.io -n velero "*" -o json") printf '{"metadata": {"uid": "0b7e-drill"}}' ;;
  "get podvolumerestores.velero.io -n velero -l velero.io/restore-uid=0b7e-drill -o json")
    n="$(cat "$state/current-nodes" 2>/dev/null || echo 1)"
    jq -n --argjson n "$n" '{items: [range($n) | {spec: {pod: {name: "cht-couchdb-x"}}, status: {phase: "Completed"}}]}' ;;
  "get secret -n restore-drill-scratch cht-couchdb-credentials -o json") cat "$state/secret.json" ;;
  "rollout status"*) : ;;
  "exec -n restore-drill-scratch deployment/"*" -- cat "*)
    cat "$state/record-$(cat "$state/current-county").tsv" ;;
  "delete "*) : ;;
  *) echo "kubectl stub: unexpected: $args" >&2; exit 3 ;;
esac
"""


class DrillCluster:
    """The stub cluster: Schedules (with annotations), backups, the restored copy's record; the copy itself is
    the express-pouchdb `copy` server, reached by the in-cluster names through curl's connect-to."""

    def __init__(self, base: Path, copy: Couch):
        self.base, self.copy = base, copy
        self.state = base / "state"
        self.bin = base / "bin"
        self.state.mkdir()
        self.bin.mkdir()
        self.log = base / "argv.log"
        (self.bin / "kubectl").write_text(KUBECTL)
        (self.bin / "kubectl").chmod(0o755)
        # curl: the real one, its argv logged (the password must never be there).
        curl = tools.need("curl")
        (self.bin / "curl").write_text(f'#!/usr/bin/env bash\nprintf "curl %s\\n" "$*" >> "$STUB_LOG"\nexec {curl} "$@"\n')
        (self.bin / "curl").chmod(0o755)
        port = copy.base.rsplit(":", 1)[1]
        hosts = ["couchdb", "couchdb-1", "couchdb-2", "couchdb-3"]
        (base / ".curlrc").write_text("".join(
            f"connect-to = {h}.restore-drill-scratch.svc.cluster.local:5984:127.0.0.1:{port}\n" for h in hosts))
        secret = {"data": {"COUCHDB_USER": base64.b64encode(USER.encode()).decode(),
                           "COUCHDB_PASSWORD": base64.b64encode(PASSWORD.encode()).decode()}}
        (self.state / "secret.json").write_text(json.dumps(secret))
        self.schedules: list[dict] = []
        self.scripts = base / "drill"
        self.scripts.mkdir()

    def county(self, name: str, nodes: int, record_text: str, annotations: dict | None = None) -> None:
        labels = {"cht-hosting/county": name, "cht-hosting/restore-drill": "true", "cht-hosting/couchdb-nodes": str(nodes)}
        self.schedules.append({"metadata": {"name": f"county-{name}", "labels": labels, "annotations": annotations or {}}})
        (self.state / "schedules.json").write_text(json.dumps({"items": self.schedules}))
        (self.state / f"nodes-{name}").write_text(str(nodes))
        (self.state / f"record-{name}.tsv").write_text(record_text)
        backups = [{"metadata": {"name": f"county-{name}-2027010101{n}000"},
                    "status": {"phase": phase, "completionTimestamp": f"2027-01-0{n}T01:30:00Z"}}
                   for n, phase in ((1, "Completed"), (2, "Completed"), (3, "PartiallyFailed"))]
        (self.state / f"backups-county-{name}.json").write_text(json.dumps({"items": backups}))

    def run(self, **env: str) -> subprocess.CompletedProcess:
        job = drill.drill_script(velero_namespace="velero", per_run=2, timeout_seconds=600, storage_class="sc-restore-drill")
        # The real script path is fixed (/drill/...); the test's copy of the ConfigMap lives in a folder of its own.
        job = job.replace(f"compare='{drill.SCRIPT_DIR}/{drill.COMPARE_SCRIPT}'", f"compare='{self.scripts}/{drill.COMPARE_SCRIPT}'")
        (self.scripts / drill.DRILL_SCRIPT).write_text(job)
        (self.scripts / drill.COMPARE_SCRIPT).write_text(drill.compare_script())
        # The stub's exec reads the record of the county being drilled; the drill names it in its restore.
        wrapper = self.bin / "kubectl"
        text = wrapper.read_text()
        if "current-county" not in text.split("case", 1)[0]:
            wrapper.write_text(text.replace('args="$*"\n', 'args="$*"\n'
                'case "$args" in "create -f -") ;; *county-*) c="${args#*county-}"; c="${c%% *}"; '
                'printf %s "$c" > "$state/current-county"; cat "$state/nodes-$c" > "$state/current-nodes" 2>/dev/null ;; esac\n', 1))
        environment = {"PATH": f"{self.bin}:{os.environ['PATH']}", "HOME": str(self.base), "STUB_STATE": str(self.state),
                       "STUB_LOG": str(self.log), "DRILL_TIMEOUT_SECONDS": "600", **env}
        return subprocess.run([_bash(), str(self.scripts / drill.DRILL_SCRIPT)], env=environment,
                              capture_output=True, text=True, timeout=600)

    def annotations(self, county: str) -> dict[str, str]:
        path = self.state / f"annotations-{county}"
        lines = path.read_text().splitlines() if path.exists() else []
        return dict(line.split("=", 1) for line in lines)

    def created(self, kind: str, name: str) -> dict:
        return json.loads((self.state / f"created-{kind}-{name}.json").read_text())


def _a(key: str) -> str:
    return drill.annotation(key)


def test_the_drill_job_restores_checks_and_records_each_county_on_its_schedule(servers, the_record, tmp_path):
    _, copy, _ = servers
    copy.wipe()
    apply(copy, county_writes())
    cluster = DrillCluster(tmp_path, copy)
    cluster.county("kwale", 1, the_record)
    cluster.county("nairobi", 3, the_record)
    done = cluster.run()
    assert done.returncode == 0, done.stderr
    for county in ("kwale", "nairobi"):
        found = cluster.annotations(county)
        assert found[_a("ok")] == "1" and found[_a("backup")] == f"county-{county}-20270101012000"  # newest Completed
        assert int(found[_a("restore_seconds")]) >= 0 and int(found[_a("backup_age_seconds")]) >= 0
        assert int(found[_a("succeeded")]) >= int(found[_a("started")])
        assert found[_a("message")].startswith("ok: backup county-")
    # The 3-node copy: Services in the scratch namespace, their addresses as the restored pods' hostAliases for
    # the county's own node names; its restore uses those modifiers.
    for n in (1, 2, 3):
        service = cluster.created("Service", f"couchdb-{n}")
        assert service["metadata"]["namespace"] == "restore-drill-scratch"
        assert service["spec"]["selector"] == {"cht.service": f"couchdb-{n}"}
        assert {p["port"] for p in service["spec"]["ports"]} == {5984, 4369, 9100}
    modifiers = cluster.created("ConfigMap", drill.RUN_MODIFIERS)
    rules = json.loads(modifiers["data"]["modifiers.yaml"])["resourceModifierRules"]
    (pods,) = [r for r in rules if r["conditions"]["groupResource"] == "pods"]
    aliases = json.loads(pods["patches"][0]["value"])
    assert aliases == [{"ip": f"10.43.7.{n}", "hostnames": [f"couchdb-{n}.nairobi.svc.cluster.local"]} for n in (1, 2, 3)]
    log = cluster.log.read_text()
    assert "exec -n restore-drill-scratch deployment/cht-couchdb-1 -c cht-couchdb-1 -- cat" in log
    assert PASSWORD not in log and base64.b64encode(PASSWORD.encode()).decode() not in log
    assert "delete deployments,replicasets,pods,services,persistentvolumeclaims,configmaps,secrets -n restore-drill-scratch" in log


def test_a_failed_county_is_recorded_the_run_goes_on_and_fails(servers, the_record, tmp_path):
    _, copy, _ = servers
    copy.wipe()
    apply(copy, county_writes(skip_dbs=("medic-logs",)))
    cluster = DrillCluster(tmp_path, copy)
    cluster.county("kwale", 1, the_record)
    cluster.county("lamu", 1, "")  # a backup with no record
    done = cluster.run()
    assert done.returncode == 1
    assert cluster.annotations("kwale")[_a("ok")] == "0"
    assert "database medic-logs is missing" in cluster.annotations("kwale")[_a("message")]
    assert _a("succeeded") not in cluster.annotations("kwale")
    assert cluster.annotations("lamu")[_a("ok")] == "0"
    assert "2 county drill(s) failed" in done.stderr


def test_one_failed_or_interrupted_county_is_retried_first_besides_the_counties_due(tmp_path, servers):
    _, copy, _ = servers
    cluster = DrillCluster(tmp_path, copy)
    passed = lambda t: {_a("started"): str(t), _a("finished"): str(t + 60), _a("ok"): "1", _a("succeeded"): str(t + 60)}  # noqa: E731
    cluster.county("a-old-pass", 1, "", passed(1000))
    cluster.county("b-recent-pass", 1, "", passed(9000))
    cluster.county("c-failed", 1, "", {**passed(100), _a("started"): "5000", _a("finished"): "5100", _a("ok"): "0"})
    cluster.county("d-never", 1, "")
    cluster.county("e-interrupted", 1, "", {**passed(2000), _a("started"): "8000"})
    done = cluster.run(DRILL_COUNTIES_PER_RUN="2")
    order = [line.split()[-1] for line in done.stdout.splitlines() if line.startswith("cht-hosting: restore drill of county")]
    # cadence.RETRIES_PER_RUN (1) retry, the longest since a pass first; then 2 due: never drilled, oldest pass.
    assert cadence.RETRIES_PER_RUN == 1
    assert order == ["c-failed", "d-never", "a-old-pass"]


def test_a_county_that_keeps_failing_never_delays_the_others(tmp_path, servers):
    # The cadence (config/cadence.py) promises every county within ceil(N / per run) runs: two counties that
    # fail at every run must not take the slots of the three due ones.
    _, copy, _ = servers
    cluster = DrillCluster(tmp_path, copy)
    failing = {_a("started"): "5000", _a("finished"): "5100", _a("ok"): "0"}
    cluster.county("a-failing", 1, "", failing)
    cluster.county("b-failing", 1, "", failing)
    for name in ("c-due", "d-due", "e-due"):
        cluster.county(name, 1, "")
    done = cluster.run(DRILL_COUNTIES_PER_RUN="3")
    order = [line.split()[-1] for line in done.stdout.splitlines() if line.startswith("cht-hosting: restore drill of county")]
    assert order == ["a-failing", "c-due", "d-due", "e-due"]
