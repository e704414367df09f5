"""The restore drill and the county restore, tested for real: shellcheck, then bash against a sandbox.

PATH holds only stubs and wrappers. `kubectl` is a fake cluster kept as files (Schedules, Backups, the
Restore it is asked to create and its volume restores, Secrets, the results ConfigMap); `curl` is a fake
CouchDB per host that insists on the admin credentials arriving as a config on stdin (`-K -`); jq, base64,
grep, sort, date and the coreutils are the real ones behind wrappers. Every stub and wrapper logs its argv,
so the tests prove the CouchDB password never appears on a command line.
"""

from __future__ import annotations

import base64
import json
import stat
import subprocess
from pathlib import Path

import pytest

from components.backup import render, scripts
from tests import tools
from tests.test_backup_render import RESTORE_SPEC

PASSWORD = "Mock'Pass\"word$(x)\\42"
USER = "medic"
REAL = ("jq", "base64", "grep", "sort", "date", "cat", "tr", "seq", "mkdir", "rm", "sleep")

# kubectl: the cluster is $STUB_STATE. Velero objects as JSON files; each call logged with its stdin.
KUBECTL = r"""
state="$STUB_STATE"
args="$*"
case "$args" in
  "get configmap -n velero restore-drill-results -o json")
    cat "$state/results.json" ;;
  "get schedules.velero.io -n velero -l cht-hosting/restore-drill=true -o json")
    cat "$state/schedules.json" ;;
  "get backups.velero.io -n velero -l velero.io/schedule-name="*" -o json")
    schedule="${args#*schedule-name=}"; schedule="${schedule%% *}"
    cat "$state/backups-$schedule.json" 2>/dev/null || echo '{"items": []}' ;;
  "create -f -")
    cat > "$state/created-restore.json" ;;
  "get restores.velero.io -n velero "*" -o jsonpath={.status.phase}")
    printf '%s' "${STUB_RESTORE_PHASE:-Completed}" ;;
  "get restores.velero.io -n velero "*" -o json")
    printf '{"metadata": {"uid": "0c7e4b1a-restore-uid"}}' ;;
  "get podvolumerestores.velero.io -n velero -l velero.io/restore-uid=0c7e4b1a-restore-uid -o json")
    cat "$state/pvrs.json" ;;
  "get secret -n "*" cht-couchdb-credentials -o json")
    cat "$state/secret.json" ;;
  "get schedules.velero.io -n velero county-"*)
    printf '%s' "${STUB_NODES:-1}" ;;
  "get persistentvolumeclaims,deployments -n "*)
    ns="${args#*-n }"; ns="${ns%% *}"
    cat "$state/left-$ns" 2>/dev/null || true ;;
  "rollout status"*) [ -z "${STUB_ROLLOUT_FAIL:-}" ] ;;
  "port-forward -n "*) printf '%s\n' "$args" >> "$state/forwards" ;;
  "patch configmap -n velero restore-drill-results --type merge -p "*)
    printf '%s\n' "${args#*-p }" >> "$state/patches" ;;
  "delete "*) printf '%s\n' "$args" >> "$state/deletes" ;;
  *) echo "kubectl stub: unexpected: $args" >&2; exit 3 ;;
esac
"""

# curl -sf --max-time N -K - URL: the config on stdin must carry exactly the admin credentials.
CURL = r"""
config="$(cat)"
expected="$(cat "$STUB_STATE/curl-config")"
[ "$config" = "$expected" ] || { echo "curl stub: wrong credentials config" >&2; exit 22; }
url="${*: -1}"
host="${url#http://}"; host="${host%%.*}"; path="/${url#http://*/}"
file="$STUB_STATE/couch-$host${path//\//_}"
[ -f "$file" ] || exit 22
cat "$file"
"""


class Cluster:
    def __init__(self, base: Path):
        self.bin = base / "bin"
        self.state = base / "state"
        self.log = base / "argv.log"
        self.bin.mkdir()
        self.state.mkdir()
        self.bash = tools.need("bash")
        log = 'printf "%s\\n" "${0##*/} $*" >> "$STUB_LOG"\n'
        for name, body in {"kubectl": KUBECTL, "curl": CURL}.items():
            self._write(name, f"#!{self.bash}\n{log}{body}")
        for name in REAL:
            self._write(name, f'#!{self.bash}\n{log}exec {tools.need(name)} "$@"\n')
        secret = {"data": {"COUCHDB_USER": _b64(USER), "COUCHDB_PASSWORD": _b64(PASSWORD)}}
        self.put("secret.json", json.dumps(secret))
        # What curl must receive on stdin: the credentials quoted for curl's config syntax.
        quoted = PASSWORD.replace("\\", "\\\\").replace('"', '\\"')
        self.put("curl-config", f'user = "{USER}:{quoted}"')
        self.put("results.json", json.dumps({"data": {"kwale": "2026-01-01T05:00:00Z ok: earlier"}}))
        self.put("schedules.json", json.dumps({"items": [_schedule("kwale"), _schedule("lamu")]}))
        for county in ("kwale", "lamu"):
            self.put(
                f"backups-county-{county}.json",
                json.dumps({"items": [_backup(county, "20260101010000", "Completed"), _backup(county, "20260102010000", "Completed"),
                                      _backup(county, "20260103010000", "PartiallyFailed")]}),
            )
        self.put("pvrs.json", json.dumps({"items": [{"spec": {"pod": {"name": "cht-couchdb-x"}}, "status": {"phase": "Completed"}}]}))

    def _write(self, name: str, text: str) -> None:
        path = self.bin / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)

    def put(self, name: str, text: str) -> None:
        (self.state / name).write_text(text)

    def couch(self, host: str, path: str, body: object) -> None:
        self.put(f"couch-{host}{path.replace('/', '_')}", json.dumps(body))

    def databases(self, host: str, counts: dict[str, int]) -> None:
        self.couch(host, "/_up", {"status": "ok"})
        self.couch(host, "/_all_dbs", sorted(counts))
        for db, count in counts.items():
            self.couch(host, "/" + db.replace("/", "%2F"), {"db_name": db, "doc_count": count})

    def run(self, script: str, *args: str, **env: str) -> subprocess.CompletedProcess:
        environment = {"PATH": str(self.bin), "STUB_STATE": str(self.state), "STUB_LOG": str(self.log), **env}
        return subprocess.run(
            [self.bash, "-c", script, "script", *args], capture_output=True, text=True, env=environment, timeout=60
        )

    def read(self, name: str) -> str:
        path = self.state / name
        return path.read_text() if path.exists() else ""

    def argv(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _schedule(county: str) -> dict:
    return {"metadata": {"name": f"county-{county}", "labels": {render.COUNTY_LABEL: county, render.DRILL_LABEL: "true"}}}


def _backup(county: str, stamp: str, phase: str) -> dict:
    return {
        "metadata": {"name": f"county-{county}-{stamp}"},
        "status": {"phase": phase, "completionTimestamp": f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T01:30:00Z"},
    }


LIVE = {"medic": 1000, "medic-sentinel": 500, "medic-users-meta": 20, "_users": 30, "medic-user-a/b-meta": 3}
DRILL = scripts.drill_script(velero_namespace="velero", max_difference_percent=10)
RESTORE = scripts.county_restore_script(velero_namespace="velero")


@pytest.fixture
def cluster(tmp_path) -> Cluster:
    return Cluster(tmp_path)


@pytest.mark.parametrize("name, script", [("restore-drill", DRILL), ("restore-county", RESTORE)])
def test_scripts_pass_shellcheck(name, script, tmp_path):
    path = tmp_path / f"{name}.sh"
    path.write_text(script)
    result = subprocess.run(
        [tools.need("shellcheck"), "--shell=bash", "--severity=style", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


def test_drill_restores_the_least_recently_drilled_county_and_passes(cluster):
    cluster.databases("couchdb", LIVE)  # live lamu: couchdb.lamu...; copy: couchdb.restore-drill-scratch...
    result = cluster.run(DRILL)
    assert result.returncode == 0, result.stderr
    assert "restore drill of county lamu" in result.stdout  # kwale was drilled before, lamu never
    restore = json.loads(cluster.read("created-restore.json"))
    spec = restore["spec"]
    # The newest Completed backup (not the PartiallyFailed one after it), into the scratch namespace.
    assert spec["backupName"] == "county-lamu-20260102010000"
    assert spec["includedNamespaces"] == ["lamu"]
    assert spec["namespaceMapping"] == {"lamu": render.DRILL_NAMESPACE}
    assert spec["resourceModifier"] == {"kind": "ConfigMap", "name": render.DRILL_MODIFIERS}
    assert spec["orLabelSelectors"] == render.drill_restore_selectors()
    assert "ingresses.networking.k8s.io" in spec["excludedResources"]
    assert set(spec) <= RESTORE_SPEC  # restore_types.go @ v1.18.1
    assert restore["metadata"]["namespace"] == "velero" and restore["metadata"]["labels"]["cht-hosting/restore"] == "drill"
    (patch,) = cluster.read("patches").splitlines()
    recorded = json.loads(patch)["data"]["lamu"]
    assert " ok: backup county-lamu-20260102010000: 5 databases compared" in recorded
    # The scratch copy is cleaned up before (a leftover) and after.
    deletes = cluster.read("deletes")
    assert deletes.count(f"-n {render.DRILL_NAMESPACE} -l cht.service") == 2


def test_drill_fails_and_records_when_the_copy_is_short(cluster):
    cluster.databases("couchdb", LIVE)
    # Both copies answer from the same fake host name "couchdb"; make the scratch one short by giving the
    # live one more: the stub tells them apart by the namespace part of the host (not modelled), so rewrite.
    script = DRILL.replace('copy="http://couchdb.$scratch', 'copy="http://copy.$scratch')
    cluster.databases("copy", {**LIVE, "medic": 800})
    result = cluster.run(script, DRILL_COUNTY="kwale")
    assert result.returncode != 0
    assert "medic: 800 documents restored, 1000 live" in result.stderr
    (patch,) = cluster.read("patches").splitlines()
    assert json.loads(patch)["data"]["kwale"].split(" ", 1)[1].startswith("failed: ")


def test_drill_fails_when_a_core_database_is_missing(cluster):
    cluster.databases("couchdb", LIVE)
    script = DRILL.replace('copy="http://couchdb.$scratch', 'copy="http://copy.$scratch')
    cluster.databases("copy", {k: v for k, v in LIVE.items() if k != "_users"})
    result = cluster.run(script, DRILL_COUNTY="kwale")
    assert result.returncode != 0 and "_users missing" in result.stderr


def test_drill_tolerates_growth_within_the_configured_margin(cluster):
    cluster.databases("couchdb", LIVE)
    script = DRILL.replace('copy="http://couchdb.$scratch', 'copy="http://copy.$scratch')
    cluster.databases("copy", {**LIVE, "medic": 901})  # within 10%
    result = cluster.run(script, DRILL_COUNTY="kwale")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "env, message",
    [
        ({"STUB_RESTORE_PHASE": "PartiallyFailed"}, "ended PartiallyFailed"),
        ({"STUB_ROLLOUT_FAIL": "1"}, "CouchDB (cht-couchdb) did not start"),
    ],
)
def test_drill_failures_fail_the_job_and_are_recorded(cluster, env, message):
    cluster.databases("couchdb", LIVE)
    result = cluster.run(DRILL, DRILL_COUNTY="kwale", **env)
    assert result.returncode != 0 and message in result.stderr
    assert "failed: " in cluster.read("patches")
    assert f"-n {render.DRILL_NAMESPACE} -l cht.service" in cluster.read("deletes")  # cleaned up anyway


def test_drill_fails_when_a_volume_did_not_come_back(cluster):
    cluster.databases("couchdb", LIVE)
    cluster.put("pvrs.json", json.dumps({"items": [{"spec": {"pod": {"name": "cht-couchdb-x"}}, "status": {"phase": "Failed"}}]}))
    result = cluster.run(DRILL, DRILL_COUNTY="kwale")
    assert result.returncode != 0 and "volumes not restored: cht-couchdb-x: Failed" in result.stderr


def test_drill_without_a_completed_backup_fails(cluster):
    cluster.put("backups-county-kwale.json", json.dumps({"items": [_backup("kwale", "20260101010000", "Failed")]}))
    result = cluster.run(DRILL, DRILL_COUNTY="kwale")
    assert result.returncode != 0 and "no completed backup of county-kwale" in result.stderr


def test_the_password_never_reaches_a_command_line(cluster):
    cluster.databases("couchdb", LIVE)
    assert cluster.run(DRILL).returncode == 0
    log = cluster.argv()
    assert "curl -sf --max-time 120 -K -" in log and "kubectl" in log
    assert PASSWORD not in log and "Pass" not in log and _b64(PASSWORD) not in log


# restore-county.sh is run against the Velero stand-in in tests/test_restore_county.py.
