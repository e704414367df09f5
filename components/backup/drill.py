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
