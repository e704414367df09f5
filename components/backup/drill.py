"""The restore drill's scripts: what a backup holds, recorded at backup time, and the check of a restored copy
against that record. Pure functions returning bash; no Pulumi.

- `record_script`: a Velero pre-backup hook (velero v1.18.1 docs backup-hooks.md; Backup spec `hooks.resources`)
  run inside CouchDB node 1's container (bash and curl, no jq: the cht-couchdb image). It writes, for every
  database, CouchDB's own figures (`doc_count`, `doc_del_count`, `update_seq`), the design documents (ids and
  revs), and a sample of documents (ids, revs, bodies and attachment digests; every id and rev when the
  database is small), into a file on CouchDB's volume. The hook runs before the volume is read, so the record
  travels inside the backup it describes.
- `compare_script`: after the restore, compares the copy with that record, with no tolerance: every recorded
  database, the same figures, every recorded document by id and rev with the same body, every attachment read
  back and its MD5 digest checked. CouchDB keeps serving while its files are copied, so a database written to
  between the record and the copy is newer than the record: its update_seq is higher. Such a database is held
  to what cannot shrink: every recorded document present at the recorded revision or a later one (deleted only
  by a later revision), documents plus tombstones (`doc_count + doc_del_count`, which only purges lower) at
  least the recorded number, design documents the same or later. A database whose update_seq equals the
  record's must match it exactly.

The record is one line per item, `<kind>\\t<database>\\t<json>`: CouchDB's JSON with its line breaks removed
(JSON strings never hold a raw line break, so nothing else changes), database names as CouchDB allows them
(`^[a-z][a-z0-9_$()+/-]*$`, or `_users`/`_replicator`/`_global_changes`: no tab, no line break).
"""

from __future__ import annotations

import json

from config import cadence, names

# On CouchDB's data volume (mounted at /opt/couchdb/data whatever the subPath; cht-core's chart and ours), beside
# the database files: CouchDB only opens `*.couch` files, so it ignores this one.
RECORD_PATH = "/opt/couchdb/data/cht-hosting-backup-record.tsv"
RECORD_FORMAT = "cht-hosting-backup-record 1"
# Databases with at most this many documents are recorded whole (every id and rev, e.g. _users); larger ones
# through a sample of SAMPLE_PER_KEY documents from each of SAMPLE_KEYS (ids are spread over the key space;
# CouchDB places a document in a shard by a hash of its id, so the sample reaches every shard).
FULL_LIST_MAX_DOCS = 20000
SAMPLE_PER_KEY = 8
SAMPLE_KEYS = ("", *"0123456789abcdef", "_", "o")  # CHT's own ids: uuids, `_design/…`, `org.couchdb.user:…`
# The hook's own limit (Velero's hook timeout is set above it, see hook_spec).
RECORD_TIMEOUT_SECONDS = 600

_RECORD = r"""#!/usr/bin/env bash
# cht-hosting: record what this backup holds (a Velero pre-backup hook in CouchDB's container).
set -euo pipefail
base="${CHT_HOSTING_RECORD_BASE:-http://127.0.0.1:5984}"
out="${CHT_HOSTING_RECORD_FILE:-__RECORD_PATH__}"
full_max="${CHT_HOSTING_RECORD_FULL_MAX:-__FULL_MAX__}"
per_key=__PER_KEY__
deadline=$((SECONDS + __TIMEOUT__))
# The admin from the container's environment reaches curl as a config on stdin, never as an argument.
quote() { local v="${1//\\/\\\\}"; printf '%s' "${v//\"/\\\"}"; }
# get PATH: CouchDB's answer on one line (JSON strings hold no raw line break, so only layout goes).
get() {
  local body
  [ "$SECONDS" -lt "$deadline" ] || { echo "cht-hosting: the backup record took too long" >&2; exit 1; }
  body="$(printf 'user = "%s:%s"\n' "$(quote "${COUCHDB_USER:-}")" "$(quote "${COUCHDB_PASSWORD:-}")" \
    | curl -sf --max-time 300 -K - "$base$1")"
  body="${body//$'\r'/}"
  printf '%s' "${body//$'\n'/}"
}
emit() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$tmp"; }
# Database names need only '/' escaped in a URL path (CouchDB's allowed characters otherwise pass as they are).
path_of() { printf '%s' "${1//\//%2F}"; }
tmp="$out.partial"
# A record left from an earlier backup would describe older data: gone first, whatever happens next.
rm -f "$tmp" "$out"
emit format - '"__FORMAT__"'
emit time - "$(date -u +%s)"
dbs="$(get /_all_dbs)"
emit dbs - "$dbs"
count=0
# _all_dbs is a JSON array of names without quotes, commas or brackets inside them.
for db in $(printf '%s' "$dbs" | tr -d '[]"' | tr ',' ' '); do
  p="$(path_of "$db")"
  info="$(get "/$p")"
  emit info "$db" "$info"
  emit design "$db" "$(get "/$p/_all_docs?startkey=%22_design%2F%22&endkey=%22_design0%22")"
  docs="$(printf '%s' "$info" | sed -n 's/.*"doc_count":\([0-9]*\).*/\1/p')"
  if [ -n "$docs" ] && [ "$docs" -le "$full_max" ]; then
    emit all "$db" "$(get "/$p/_all_docs")"
  fi
  for key in __SAMPLE_KEYS__; do
    emit sample "$db" "$(get "/$p/_all_docs?include_docs=true&limit=$per_key&startkey=%22$key%22")"
  done
  count=$((count + 1))
done
emit end - "$count"
mv -f "$tmp" "$out"
echo "cht-hosting: recorded $count database(s) in $out"
"""


def record_script() -> str:
    """The pre-backup hook (bash; CouchDB's container has bash, curl, sed and tr)."""
    keys = " ".join(f"'{k}'" if k else "''" for k in SAMPLE_KEYS)
    return (
        _RECORD.replace("__RECORD_PATH__", RECORD_PATH)
        .replace("__FULL_MAX__", str(FULL_LIST_MAX_DOCS))
        .replace("__PER_KEY__", str(SAMPLE_PER_KEY))
        .replace("__TIMEOUT__", str(RECORD_TIMEOUT_SECONDS))
        .replace("__FORMAT__", RECORD_FORMAT)
        .replace("__SAMPLE_KEYS__", keys)
    )


_COMPARE = r"""#!/usr/bin/env bash
# cht-hosting: compare a restored CouchDB with the record its backup holds.
# Usage: compare-backup.sh RECORD BASE_URL; the admin in COUCH_USER / COUCH_PASSWORD (environment).
# Prints what it checked; every difference on stderr; exits 1 on any difference, 2 on an unusable record.
set -euo pipefail
record="$1" base="$2"
quote() { local v="${1//\\/\\\\}"; printf '%s' "${v//\"/\\\"}"; }
config() { printf 'user = "%s:%s"\n' "$(quote "${COUCH_USER:-}")" "$(quote "${COUCH_PASSWORD:-}")"; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# get PATH OUT [json]: CouchDB's answer into OUT; non-zero unless it is a 200. `json` asks for JSON where
# CouchDB would otherwise answer multipart (open_revs). The admin reaches curl on stdin, never as an argument.
get() {
  local status accept=()
  [ "${3:-}" != json ] || accept=(-H 'Accept: application/json')
  status="$(config | curl -s --max-time 300 -K - "${accept[@]}" -o "$2" -w '%{http_code}' "$base$1")" || return 1
  [ "$status" = 200 ]
}
# post PATH FILE OUT: POST the JSON in FILE, the answer into OUT, as get.
post() {
  local status
  status="$(config | curl -s --max-time 300 -K - -H 'Content-Type: application/json' --data-binary "@$2" \
    -o "$3" -w '%{http_code}' "$base$1")" || return 1
  [ "$status" = 200 ]
}
# uri TEXT: percent-encoded as a path segment (every byte but unreserved ones), in bash (no process per call).
uri() {
  local LC_ALL=C text="$1" out='' c i
  for ((i = 0; i < ${#text}; i++)); do
    c="${text:i:1}"
    case "$c" in
      [A-Za-z0-9._~-]) out+="$c" ;;
      *) printf -v c '%%%02X' "'$c"; out+="$c" ;;
    esac
  done
  printf '%s' "$out"
}
# The digest CouchDB gives an attachment: "md5-" and the base64 of the MD5's 16 bytes.
md5_digest() {
  local hex bytes=''
  hex="$(md5sum "$1")"
  hex="${hex:0:32}"
  while [ -n "$hex" ]; do bytes="$bytes\\x${hex:0:2}"; hex="${hex:2}"; done
  printf 'md5-%s' "$(printf '%b' "$bytes" | base64)"
}
problems=0
problem() { echo "difference: $*" >&2; problems=$((problems + 1)); }

[ -f "$record" ] || { echo "cht-hosting: no backup record at $record (a backup taken before the record hook)" >&2; exit 2; }
# The record split once into $tmp/record/<kind>/<database> (a '/' in a name as %2F), one JSON per line.
mkdir -p "$tmp/record"
awk -F '\t' -v dir="$tmp/record" '{
  name = $2; gsub("/", "%2F", name); kind = $1; sub(/^[^\t]*\t[^\t]*\t/, "")
  if (!(kind in made)) { made[kind] = 1; system("mkdir -p \"" dir "/" kind "\"") }
  print > (dir "/" kind "/" name)
}' "$record"
at() { printf '%s' "$tmp/record/$1/${2//\//%2F}"; }
line() { local f; f="$(at "$1" "$2")"; [ ! -f "$f" ] || { IFS= read -r REPLY <"$f" || true; printf '%s' "$REPLY"; }; }
[ "$(line format -)" = '"__FORMAT__"' ] || { echo "cht-hosting: $record is not a backup record this drill reads" >&2; exit 2; }
[ -n "$(line end -)" ] || { echo "cht-hosting: the backup record is incomplete (its hook did not finish)" >&2; exit 2; }
echo "record: taken at $(line time -) (seconds since 1970, UTC)"
get /_all_dbs "$tmp/copy-dbs" || { echo "cht-hosting: cannot list the restored databases" >&2; exit 1; }

# The figures, the design documents and the whole list of a small database, in one pass: a `state` line
# (same, changed: written to after the record, behind: changes lost), the differences, and the _bulk_get
# request of the documents to read back by id and rev (the sample; in a changed database also every
# listed document the copy holds at another rev, to check that its revision descends from the recorded one).
# shellcheck disable=SC2016
compare_db='
def rows: [.rows[]? | {id, rev: .value.rev}];
def seq: .update_seq | tostring | split("-")[0] | tonumber;
def differ($w; $g): ($g | map({key: .id, value: .rev}) | from_entries) as $m | [$w[] | select($m[.id] != .rev)];
def total: .doc_count + (.doc_del_count // 0);
def say($list; $what): $list | if length > 0
  then "problem\t\(length) \($what), e.g. \(.[:3] | map(.id) | join(", ") | gsub("[\t\n\r]"; " "))" else empty end;
($wi[0]) as $wi | ($gi[0]) as $gi | ($wi | seq) as $ws | ($gi | seq) as $gs
| (if $gs > $ws then "changed" elif $gs < $ws then "behind" else "same" end) as $state
| ($wd[0] | rows) as $wdr | ($gd | if length > 0 then .[0] | rows else [] end) as $gdr
| ($wa | if length > 0 then .[0] | rows else [] end) as $war | ($ga | if length > 0 then .[0] | rows else [] end) as $gar
| [$s[] | .rows[]? | select(.doc != null) | {id, rev: .value.rev}] as $sample
| "state\t\($state)\t\($ws)\t\($gs)\t\(($wdr + $war) | length)",
  (if $state == "behind" then "problem\tupdate_seq \($gs), behind the recorded \($ws) (changes lost)" else empty end),
  (if $state != "changed" then
     (if [$wi.doc_count, $wi.doc_del_count] != [$gi.doc_count, $gi.doc_del_count] then
        "problem\t\($gi | {doc_count, doc_del_count} | tojson), recorded \($wi | {doc_count, doc_del_count} | tojson)" else empty end),
     say(differ($wdr; $gdr); "recorded design document(s) missing or at another rev"),
     say(differ($gdr; $wdr); "design document(s) not in the record"),
     say(differ($war; $gar); "recorded document(s) missing or at another rev"),
     (if ($wa | length) > 0 then say(differ($gar; $war); "document(s) not in the record") else empty end)
   elif ($gi | total) < ($wi | total) then
     "problem\t\($gi | total) documents and tombstones, fewer than the \($wi | total) recorded (lost, though written to after the record)"
   else empty end),
  "bulk\t\({docs: ((if $state == "changed" then differ($wdr; $gdr) + differ($war; $gar) else [] end) + $sample
    | unique_by(.id) | map({id, rev}))} | tojson)"
'
# Each document read back: ok, differs (same rev, another body), missing (with its path), or an attachment to
# read back whole (its path and recorded digest).
# shellcheck disable=SC2016
verdicts='
(reduce .results[] as $r ({}; .[$r.id] = ((.[$r.id] // []) + [$r.docs[]? | .ok // empty]))) as $got
| ([$s[] | .rows[]? | select(.doc != null) | {key: .id, value: .doc}] | from_entries) as $bodies
| $req[0].docs[] | . as $want | $bodies[.id] as $body
| ([$got[$want.id][]? | select(._rev == $want.rev)] | .[0]) as $doc
| if $doc == null then ["missing", .id, .rev, "/\(.id | @uri)?open_revs=all&revs=true"]
  elif $body != null and $body._rev == $want.rev and $doc != $body then ["differs", .id, .rev]
  else ["ok", .id, .rev], (if $body._rev == $want.rev then ($body._attachments // {}) | to_entries[]
    | ["attachment", $want.id, $want.rev, "/\($want.id | @uri)/\(.key | @uri)?rev=\($want.rev | @uri)", .value.digest]
    else empty end)
  end | @tsv
'
# shellcheck disable=SC2016
descends='($rev | split("-")) as [$gen, $hash]
  | any(.[] | .ok // empty | ._revisions | (.start - ($gen | tonumber)) as $back | $back >= 0 and .ids[$back] == $hash)'

exact=0 newer=0 checked_docs=0 checked_attachments=0
for db in $(jq -r '.[]' "$(at dbs -)"); do
  p="$(uri "$db")"
  if ! get "/$p" "$tmp/got-info"; then
    problem "database $db is missing"
    continue
  fi
  : >"$tmp/got-design"
  : >"$tmp/got-all"
  get "/$p/_all_docs?startkey=%22_design%2F%22&endkey=%22_design0%22" "$tmp/got-design" || problem "$db: design documents unreadable"
  if [ -f "$(at all "$db")" ]; then
    get "/$p/_all_docs" "$tmp/got-all" || problem "$db: documents unreadable"
  fi
  : >"$tmp/want-all"
  [ ! -f "$(at all "$db")" ] || cp "$(at all "$db")" "$tmp/want-all"
  cp "$(at sample "$db")" "$tmp/sample"
  state=same
  while IFS=$'\t' read -r kind a b c d; do
    case "$kind" in
      state) state="$a" want_seq="$b" got_seq="$c" checked_docs=$((checked_docs + d)) ;;
      problem) problem "$db: $a" ;;
      bulk) printf '%s' "$a" >"$tmp/bulk-request" ;;
    esac
  done < <(jq -rn --slurpfile wi "$(at info "$db")" --slurpfile gi "$tmp/got-info" --slurpfile wd "$(at design "$db")" \
    --slurpfile gd "$tmp/got-design" --slurpfile wa "$tmp/want-all" --slurpfile ga "$tmp/got-all" \
    --slurpfile s "$tmp/sample" "$compare_db")
  if ! post "/$p/_bulk_get" "$tmp/bulk-request" "$tmp/bulk"; then
    problem "$db: documents unreadable by id and rev"
    continue
  fi
  while IFS=$'\t' read -r kind id rev path digest; do
    case "$kind" in
      ok) checked_docs=$((checked_docs + 1)) ;;
      differs) problem "$db: document $id at $rev differs from the one recorded" ;;
      attachment)
        if ! get "/$p$path" "$tmp/attachment"; then
          problem "$db: an attachment of $id at $rev is missing ($path)"
        elif [ "$(md5_digest "$tmp/attachment")" != "$digest" ]; then
          problem "$db: an attachment of $id at $rev does not match its digest $digest ($path)"
        else
          checked_attachments=$((checked_attachments + 1))
        fi ;;
      missing)
        if [ "$state" != changed ]; then
          problem "$db: document $id at $rev is missing"
        elif get "/$p$path" "$tmp/leaves" json && jq -e --arg rev "$rev" "$descends" "$tmp/leaves" >/dev/null; then
          checked_docs=$((checked_docs + 1))
        else
          problem "$db: document $id (recorded at $rev) is missing, or no revision of it descends from that one"
        fi ;;
    esac
  done < <(jq -r --slurpfile req "$tmp/bulk-request" --slurpfile s "$tmp/sample" "$verdicts" "$tmp/bulk")
  if [ "$state" = changed ]; then
    newer=$((newer + 1))
    echo "ok $db: written to after the record (update_seq $want_seq -> $got_seq), every recorded document there"
  else
    exact=$((exact + 1))
    echo "checked $db: update_seq $got_seq, recorded $want_seq"
  fi
done
summary="$exact database(s) compared exactly, $newer written to after the record; $checked_docs document(s) and $checked_attachments attachment(s) checked"
if [ "$problems" -gt 0 ]; then
  echo "cht-hosting: the copy differs from its backup record in $problems way(s); $summary" >&2
  exit 1
fi
echo "summary: $summary"
"""


def compare_script() -> str:
    """The check of a restored copy (bash, curl, jq, awk, md5sum, base64: the drill image)."""
    return _COMPARE.replace("__FORMAT__", RECORD_FORMAT)


def record_hooks(settings, county_namespace: str) -> dict:
    """The Backup template's `hooks` (velero v1.18.1 pkg/apis/velero/v1/backup_types.go BackupHooks): the record
    runs in CouchDB node 1 (the only node of a single-node county), before Velero reads its volume.
    onError Continue: a failed record must not cost the backup its data; the hook first removes the previous
    record, so such a backup carries none and its drill fails saying so."""
    from ..cht import render as cht

    node = cht.couch_nodes(settings)[0]
    return {
        "resources": [
            {
                "name": "cht-hosting-backup-record",
                "includedNamespaces": [county_namespace],
                "labelSelector": {"matchLabels": {"cht.service": node.service}},
                "pre": [
                    {
                        "exec": {
                            "container": node.container,
                            "command": ["/bin/bash", "-c", record_script()],
                            "onError": "Continue",
                            # Velero's default is 30s; the script stops itself first.
                            "timeout": f"{RECORD_TIMEOUT_SECONDS + 60}s",
                        }
                    }
                ],
            }
        ]
    }


# --- the drill Job ------------------------------------------------------------------------------------------

# Where the drill keeps what it found, per county, on the county's Schedule (velero namespace): kept with the
# Schedule whatever happens to the Job, read by kube-state-metrics (monitoring) and by the next run's choice.
ANNOTATION_PREFIX = "restore-drill.cht-hosting/"
ANNOTATIONS = {
    "started": "started",  # epoch seconds a drill of the county began
    "finished": "finished",  # epoch seconds it ended (either way)
    "ok": "ok",  # 1 the last drill passed, 0 it failed
    "succeeded": "succeeded",  # epoch seconds of the last drill that passed
    "restore_seconds": "restore-seconds",  # RTO: Restore created -> every CouchDB node answering (last pass)
    "backup_age_seconds": "backup-age-seconds",  # RPO: the backup's record (data) time -> the Restore (last pass)
    "backup": "backup",  # the backup the last drill restored
    "message": "message",  # what the last drill found, one line
}
CLEANUP_SECONDS = cadence.CLEANUP_MINUTES * 60  # the pod's grace period covers it


def annotation(key: str) -> str:
    return ANNOTATION_PREFIX + ANNOTATIONS[key]


_DRILL = r"""
# cht-hosting: the restore drill. Picks the counties to drill (failed and interrupted first, then never
# drilled, then the longest since a pass), and for each, in a process of its own: restores its newest
# backup into the scratch namespace, measures the time until every CouchDB node answers, compares the copy
# with the record the backup holds (compare-backup.sh), records the result on the county's Schedule, and
# deletes the copy, whatever happened (its EXIT and TERM traps).
per_run="${DRILL_COUNTIES_PER_RUN:-$per_run}"
record_on_schedule() {  # COUNTY KEY=VALUE...: annotations on the county's Schedule (values are data, not code)
  local county="$1"; shift
  kubectl annotate schedules.velero.io -n "$velero_ns" "county-$county" --overwrite "$@" >/dev/null \
    || echo "cht-hosting: could not record the drill of $county on its Schedule" >&2
}

# --- one county (bash restore-drill.sh --county NAME) ---
drill_county() {
  county="$1"
  deadline=$((SECONDS + timeout))
  started="$(date -u +%s)"
  tmpdir="$(mktemp -d)"
  record_on_schedule "$county" "${a_started}=$started"
  result_recorded=""
  fail() {
    echo "cht-hosting: drill of $county failed: $*" >&2
    if [ -z "$result_recorded" ]; then
      result_recorded=1
      record_on_schedule "$county" "${a_finished}=$(date -u +%s)" "${a_ok}=0" "${a_message}=failed: $(printf '%s' "$*" | tr '\n\t' '  ' | cut -c1-900)"
    fi
    exit 1
  }
  set -E
  trap 'fail "stopped at line $LINENO"' ERR
  trap 'fail "stopped: the Job reached its deadline or was deleted"' TERM
  trap 'cleanup; rm -rf "$tmpdir"' EXIT
  echo "cht-hosting: restore drill of county $county"
  cleanup
  nodes="$(kubectl get schedules.velero.io -n "$velero_ns" "county-$county" -o jsonpath='{.metadata.labels.cht-hosting/couchdb-nodes}')" \
    || fail "cannot read the Schedule county-$county"
  nodes="${nodes:-1}"
  backup="$(latest_backup "county-$county")"
  [ -n "$backup" ] || fail "no completed backup of county-$county"
  if [ "$nodes" = 1 ]; then
    couch_deployments="cht-couchdb" first="couchdb" container="cht-couchdb"
    modifiers="$drill_modifiers"
  else
    # A clustered CouchDB's nodes know each other as couchdb-N.<county>.svc.cluster.local (its shard map says so):
    # in the copy those names lead to Services of the scratch namespace (made first, their addresses given to the
    # restored pods as hostAliases), never to the live county.
    couch_deployments="" first="couchdb-1" container="cht-couchdb-1" aliases='[]'
    for n in $(seq 1 "$nodes"); do
      couch_deployments="$couch_deployments cht-couchdb-$n"
      jq -n --arg name "couchdb-$n" --arg ns "$scratch" --argjson ports "$couch_ports" '{
        apiVersion: "v1", kind: "Service",
        metadata: {name: $name, namespace: $ns, labels: {"cht.service": $name, "cht-hosting/restore-drill": "scratch"}},
        spec: {selector: {"cht.service": $name}, ports: $ports}}' | kubectl create -f - >/dev/null \
        || fail "could not create Service couchdb-$n in $scratch"
      ip="$(kubectl get service -n "$scratch" "couchdb-$n" -o jsonpath='{.spec.clusterIP}')"
      aliases="$(jq -c --arg ip "$ip" --arg host "couchdb-$n.$county.svc.cluster.local" '. + [{ip: $ip, hostnames: [$host]}]' <<<"$aliases")"
    done
    modifiers="$drill_run_modifiers"
    jq -n --arg name "$modifiers" --arg ns "$velero_ns" --arg class "$drill_class" --arg aliases "$aliases" '{
      apiVersion: "v1", kind: "ConfigMap", metadata: {name: $name, namespace: $ns},
      data: {"modifiers.yaml": ({version: "v1", resourceModifierRules: [
        {conditions: {groupResource: "persistentvolumeclaims"},
         patches: [{operation: "replace", path: "/spec/storageClassName", value: $class}]},
        {conditions: {groupResource: "pods"},
         patches: [{operation: "add", path: "/spec/hostAliases", value: $aliases}]}]} | tojson)}}' \
      | kubectl create -f - >/dev/null || fail "could not create the resource modifiers $modifiers"
  fi
  restore="drill-$(date -u +%s)"
  restore_started="$(date -u +%s)"
  drill_modifiers="$modifiers"  # start_restore's drill restores use this resource-modifier ConfigMap
  start_restore "$restore" "$backup" "$county" "$scratch" drill
  wait_restore "$restore"
  check_volumes "$restore" "$nodes"
  copy="http://$first.$scratch.svc.cluster.local:5984"
  # The copy's admin is the county's, restored with it (cht-couchdb-credentials); the drill reads no live county.
  read_credentials "$scratch"
  wait_rollout "$scratch"
  for n in $(seq 1 "$nodes"); do
    if [ "$nodes" = 1 ]; then wait_up "$scratch" "$copy"; else wait_up "$scratch" "http://couchdb-$n.$scratch.svc.cluster.local:5984"; fi
  done
  restored="$(date -u +%s)"
  rto=$((restored - restore_started))
  # The record the backup holds, from node 1's restored volume.
  kubectl exec -n "$scratch" "deployment/cht-couchdb${first#couchdb}" -c "$container" -- cat "$record_path" >"$tmpdir/record.tsv" \
    || fail "backup $backup holds no record of its databases (taken before the record hook, or the hook failed: see the backup's logs)"
  recorded_at="$(awk -F '\t' '$1 == "time" { print $3; exit }' "$tmpdir/record.tsv")"
  [ -n "$recorded_at" ] || fail "backup $backup: its record has no time"
  rpo=$((restore_started - recorded_at))
  COUCH_USER="$couch_user" COUCH_PASSWORD="$couch_password" bash "$compare" "$tmpdir/record.tsv" "$copy" >"$tmpdir/compare.out" 2>&1 \
    || { cat "$tmpdir/compare.out" >&2
         fail "backup $backup: $(grep '^difference: ' "$tmpdir/compare.out" | head -n 3 | sed 's/^difference: //' | tr '\n' ';')$(tail -n 1 "$tmpdir/compare.out")"; }
  cat "$tmpdir/compare.out"
  summary="backup $backup: $(tail -n 1 "$tmpdir/compare.out" | sed 's/^summary: //'); restored in ${rto}s, data ${rpo}s old"
  result_recorded=1
  record_on_schedule "$county" "${a_finished}=$(date -u +%s)" "${a_ok}=1" "${a_succeeded}=$(date -u +%s)" \
    "${a_rto}=$rto" "${a_rpo}=$rpo" "${a_backup}=$backup" "${a_message}=ok: $summary"
  echo "cht-hosting: drill of $county passed: $summary"
}

cleanup() {
  kubectl delete deployments,replicasets,pods,services,persistentvolumeclaims,configmaps,secrets \
    -n "$scratch" -l cht.service --wait=true --timeout="${cleanup_seconds}s" >/dev/null 2>&1 \
    || echo "cht-hosting: cleaning up $scratch did not finish; the next drill tries again" >&2
  kubectl delete configmap -n "$velero_ns" "$drill_run_modifiers" --ignore-not-found >/dev/null 2>&1 || true
  kubectl delete restores.velero.io -n "$velero_ns" -l cht-hosting/restore=drill --wait=false >/dev/null 2>&1 || true
}

if [ "${1:-}" = --county ]; then
  drill_county "$2"
  exit 0
fi

# --- the run: which counties, one after the other ---
# First up to $retries counties whose drill failed or never finished (started after it last finished), the
# longest since a pass first; then $per_run others: never drilled, then the longest since they last passed. A
# county that keeps failing (it alerts) thus never takes the others' slots. DRILL_COUNTIES picks by hand.
pick_counties() {
  kubectl get schedules.velero.io -n "$velero_ns" -l cht-hosting/restore-drill=true -o json | jq -r \
    --arg started "$a_started" --arg finished "$a_finished" --arg ok "$a_ok" --arg succeeded "$a_succeeded" '
    [.items[] | (.metadata.annotations // {}) as $a | {
      county: .metadata.labels["cht-hosting/county"],
      failed: (($a[$ok] // "") == "0" or (($a[$started] // "0") | tonumber) > (($a[$finished] // "0") | tonumber)),
      passed: (($a[$succeeded] // "0") | tonumber)}]
    | sort_by([.passed, .county]) | .[] | "\(if .failed then "retry" else "due" end) \(.county)"'
}
counties="${DRILL_COUNTIES:-}"
if [ -z "$counties" ]; then
  picked="$(pick_counties)" || fail "cannot list the Schedules labelled cht-hosting/restore-drill=true"
  counties="$(awk -v r="$retries" -v p="$per_run" '
    $1 == "retry" && r-- > 0 { printf "%s ", $2 }
    $1 == "due" && p-- > 0 { due = due $2 " " }
    END { printf "%s", due }' <<<"$picked")"
fi
[ -n "$counties" ] || fail "no county is scheduled for the drill (no Schedule labelled cht-hosting/restore-drill=true)"
stop="" child="" failed=0
trap 'stop=1; [ -z "$child" ] || kill -TERM "$child" 2>/dev/null || true' TERM INT
for county in $counties; do
  [ -z "$stop" ] || break
  # A county that could not finish before the Job's deadline is left for the next run (it stays first).
  if [ $((SECONDS + timeout + cleanup_seconds)) -gt "$run_seconds" ]; then
    echo "cht-hosting: no time left in this run for $county; the next run takes it first" >&2
    break
  fi
  bash "$0" --county "$county" &
  child=$!
  status=0
  while :; do
    wait "$child" && status=0 || status=$?
    # A trapped signal interrupts wait (status > 128) while the county's process goes on: wait again.
    kill -0 "$child" 2>/dev/null || break
  done
  child=""
  [ "$status" = 0 ] || failed=$((failed + 1))
done
[ "$failed" = 0 ] || fail "$failed county drill(s) failed; see the Schedules' $a_message annotations"
echo "cht-hosting: restore drill run done: $counties"
"""


def drill_script(*, velero_namespace: str, per_run: int, timeout_seconds: int, storage_class: str) -> str:
    """The CronJob's command: `per_run` counties one after the other, each within `timeout_seconds`."""
    from ..cht import render as cht
    from . import render, scripts

    # The Services a clustered copy's nodes reach each other through: the ports of the county's own.
    ports = cht.couchdb_service("restore-drill", render.couch_nodes_of(3)[0])["spec"]["ports"]
    constants = scripts._constants(
        velero_namespace,
        scratch=DRILL_NAMESPACE,
        per_run=str(per_run),
        retries=str(cadence.RETRIES_PER_RUN),
        run_seconds=str(run_seconds(per_run, timeout_seconds)),
        cleanup_seconds=str(CLEANUP_SECONDS),
        drill_class=storage_class,
        drill_run_modifiers=RUN_MODIFIERS,
        couch_ports=json.dumps(ports, separators=(",", ":")),
        record_path=RECORD_PATH,
        compare=f"{SCRIPT_DIR}/{COMPARE_SCRIPT}",
        **{f"a_{key}": annotation(name) for key, name in _SHORT.items()},
    )
    return scripts._HEAD + constants + scripts._STEPS + _DRILL


def run_seconds(per_run: int, timeout_seconds: int) -> int:
    """What one run may take: each county (and each retry) its timeout and its cleanup."""
    return (per_run + cadence.RETRIES_PER_RUN) * (timeout_seconds + CLEANUP_SECONDS)


def job_deadline_seconds(per_run: int, timeout_seconds: int) -> int:
    """The Job's activeDeadlineSeconds: above the script's own limits, so the script ends (and records) first."""
    return run_seconds(per_run, timeout_seconds) + 600


DRILL_NAMESPACE = names.DRILL_NAMESPACE
RUN_MODIFIERS = "restore-drill-run-modifiers"  # a clustered county's modifiers (its Services' addresses), per drill
SCRIPT_DIR = "/drill"
DRILL_SCRIPT = "restore-drill.sh"
COMPARE_SCRIPT = "compare-backup.sh"

_SHORT = {
    "started": "started", "finished": "finished", "ok": "ok", "succeeded": "succeeded",
    "rto": "restore_seconds", "rpo": "backup_age_seconds", "backup": "backup", "message": "message",
}


# --- what monitoring reads: the results on the Schedules, as metrics, and the alerts on them -------------------

METRIC_PREFIX = "cht_hosting_restore_drill"
# metric name (after the prefix) -> where kube-state-metrics reads it on a Schedule
_METRICS = {
    "enabled": (["metadata", "labels", "cht-hosting/restore-drill"], "1 when the county is drilled."),
    "created_timestamp_seconds": (["metadata", "creationTimestamp"], "When the county's Schedule was created."),
    "started_timestamp_seconds": (["metadata", "annotations", annotation("started")], "When the county's last drill began."),
    "finished_timestamp_seconds": (["metadata", "annotations", annotation("finished")], "When the county's last drill ended."),
    "ok": (["metadata", "annotations", annotation("ok")], "1 when the county's last drill passed, 0 when it failed."),
    "succeeded_timestamp_seconds": (
        ["metadata", "annotations", annotation("succeeded")], "When a drill of the county last passed."),
    "restore_seconds": (
        ["metadata", "annotations", annotation("restore_seconds")],
        "Restore time (RTO) of the last passing drill: from the Velero Restore to every CouchDB node answering."),
    "backup_age_seconds": (
        ["metadata", "annotations", annotation("backup_age_seconds")],
        "Recovery point (RPO) of the last passing drill: how old the restored data was (its record) at the restore."),
}


def kube_state_metrics_values() -> dict:
    """kube-state-metrics (chart kube-state-metrics-8.4.0, kube-state-metrics v2.20.0) values that export the
    drill's results from the Schedules as `cht_hosting_restore_drill_*{county, schedule, namespace}`
    (docs/metrics/extend/customresourcestate-metrics.md: metricNamePrefix, labelsFromPath, Gauge paths; strings
    parse as numbers, "true" as 1, RFC3339 times as timestamps). Custom resources join KSM's resources by
    themselves (internal/discovery/discovery.go); the chart adds the CRD list/watch rule, we add the Schedules'."""
    return {
        "customResourceState": {
            "enabled": True,
            "config": {
                "kind": "CustomResourceStateMetrics",
                "spec": {
                    "resources": [
                        {
                            "groupVersionKind": {"group": "velero.io", "version": "v1", "kind": "Schedule"},
                            "metricNamePrefix": METRIC_PREFIX,
                            "labelsFromPath": {
                                "namespace": ["metadata", "namespace"],
                                "schedule": ["metadata", "name"],
                                "county": ["metadata", "labels", "cht-hosting/county"],
                            },
                            "metrics": [
                                {"name": name, "help": help_, "each": {"type": "Gauge", "gauge": {"path": path}}}
                                for name, (path, help_) in _METRICS.items()
                            ],
                        }
                    ]
                },
            },
        },
        "rbac": {"extraRules": [{"apiGroups": ["velero.io"], "resources": ["schedules"], "verbs": ["list", "watch"]}]},
    }


def restore_drill_rules(
    *, velero_namespace: str, max_age_days: int, goal_minutes: int, goal_hours: int, county_seconds: int
) -> list[dict]:
    """Per county, from the results on its Schedule: the last drill failed (until a later one passes), a drill
    that never finished, no pass for `max_age_days` (a county never drilled counts from its Schedule's
    creation), restore time or recovery point over their goals."""
    m = METRIC_PREFIX
    ns = f'namespace="{velero_namespace}"'
    enabled = f"{m}_enabled{{{ns}}} == 1"

    def rule(alert: str, expr: str, for_: str, severity: str, summary: str, description: str) -> dict:
        return {"alert": alert, "expr": expr, "for": for_, "labels": {"severity": severity},
                "annotations": {"summary": summary, "description": description}}

    see = (f"See the Schedule's annotations: kubectl -n {velero_namespace} get schedule {{{{ $labels.schedule }}}} "
           "-o yaml; the Job's log: kubectl -n " + velero_namespace + " logs job/<restore-drill-...>.")
    return [
        rule("RestoreDrillFailed", f"{m}_ok{{{ns}}} == 0", "1m", "critical",
             "A county's restore drill failed",
             "The last restore drill of county {{ $labels.county }} failed: its newest backup did not restore "
             "whole. It is drilled again first on the next run; this alert stays until a drill passes. " + see),
        rule("RestoreDrillInterrupted",
             f"(time() - {m}_started_timestamp_seconds{{{ns}}} > {county_seconds}) and "
             f"(({m}_started_timestamp_seconds{{{ns}}} > {m}_finished_timestamp_seconds{{{ns}}}) or "
             f"({m}_started_timestamp_seconds{{{ns}}} unless {m}_finished_timestamp_seconds{{{ns}}}))",
             "10m", "critical", "A county's restore drill never finished",
             "A restore drill of county {{ $labels.county }} started but recorded no result (killed, or its Job "
             "deleted); it is drilled again first on the next run, and a copy may remain in the scratch "
             "namespace until then. " + see),
        rule("RestoreDrillOverdue",
             f"(time() - {m}_succeeded_timestamp_seconds{{{ns}}} > {max_age_days * 86400} and on (namespace, schedule) {enabled}) or "
             f"(time() - {m}_created_timestamp_seconds{{{ns}}} > {max_age_days * 86400} and on (namespace, schedule) {enabled} "
             f"unless on (namespace, schedule) {m}_succeeded_timestamp_seconds{{{ns}}})",
             "1h", "critical", "A county's backups have not been proven by a restore drill lately",
             f"No restore drill of county {{{{ $labels.county }}}} has passed for over {max_age_days} days "
             "(or ever, since its Schedule was created): its backups are untested. Check that the CronJob "
             f"{velero_namespace}/restore-drill runs and that its runs reach every county. " + see),
        rule("RestoreDrillRestoreTimeOverGoal", f"{m}_restore_seconds{{{ns}}} > {goal_minutes * 60}", "1m", "warning",
             "A county's restore takes longer than the restore time goal",
             f"The last drill of county {{{{ $labels.county }}}} took {{{{ $value | humanizeDuration }}}} from the "
             f"Velero Restore to every CouchDB node answering, over the {goal_minutes}-minute goal "
             "(backup.drill.restoreTimeGoalMinutes)."),
        rule("RestoreDrillRecoveryPointOverGoal", f"{m}_backup_age_seconds{{{ns}}} > {goal_hours * 3600}", "1m", "warning",
             "A county's restored data is older than the recovery point goal",
             f"The last drill of county {{{{ $labels.county }}}} restored data {{{{ $value | humanizeDuration }}}} "
             f"old, over the {goal_hours}-hour goal (backup.drill.recoveryPointGoalHours): backups are too "
             "rare or take too long."),
    ]
