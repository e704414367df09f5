"""The restore scripts: the scheduled drill (components/backup/drill.py) and a county's real restore share
the same steps.

Pure functions returning bash. They run with kubectl, jq and curl (and base64) on PATH; tests run them
under shellcheck and against a sandbox of stub commands (tests/test_backup_scripts.py). CouchDB
credentials are read into shell variables and reach curl as a config on stdin (`curl -K -`): never an
argument, so never in a process list or a log.

- `county_restore_script`: the same restore into the county's own namespace, for real.
- `bucket_check_script`: asks the store whether the bucket keeps immutable copies (`backup.s3.objectLock`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from config import names
from config.model import BackupConfig, ChtSettings

from . import render

_HEAD = """\
#!/usr/bin/env bash
set -euo pipefail
fail() { echo "cht-hosting: $*" >&2; exit 1; }
"""

# Shared steps. Velero objects are built with jq from --arg values (data, never code).
_STEPS = r"""
timeout="${RESTORE_TIMEOUT_SECONDS:-${DRILL_TIMEOUT_SECONDS:-14400}}"
deadline=$((SECONDS + timeout))

# latest_backup SCHEDULE: the newest Completed backup of a county's Schedule.
latest_backup() {
  kubectl get backups.velero.io -n "$velero_ns" -l "velero.io/schedule-name=$1" -o json \
    | jq -r '[.items[] | select(.status.phase == "Completed")] | sort_by(.status.completionTimestamp) | last | .metadata.name // empty'
}

# start_restore NAME BACKUP FROM TO KIND: a Velero Restore of namespace FROM into TO. KIND drill restores
# only CouchDB and its credentials, onto volumes that are deleted with their claims.
start_restore() {
  local selectors='[]' modifier=''
  if [ "$5" = drill ]; then
    selectors="$drill_selectors"
    modifier="$drill_modifiers"
  else
    modifier="$county_modifiers"  # a migrated county's claims come back on the county StorageClass
  fi
  jq -n --arg name "$1" --arg ns "$velero_ns" --arg backup "$2" --arg from "$3" --arg to "$4" \
    --arg kind "$5" --arg modifier "$modifier" --argjson selectors "$selectors" '{
      apiVersion: "velero.io/v1", kind: "Restore",
      metadata: {name: $name, namespace: $ns, labels: {"cht-hosting/restore": $kind, "cht-hosting/county": $from}},
      spec: ({
        backupName: $backup, includedNamespaces: [$from], restorePVs: true,
        excludedResources: ["ingresses.networking.k8s.io"]
      }
      + (if $to != $from then {namespaceMapping: {($from): $to}} else {} end)
      + (if ($selectors | length) > 0 then {orLabelSelectors: $selectors} else {} end)
      + (if $modifier != "" then {resourceModifier: {kind: "ConfigMap", name: $modifier}} else {} end))
    }' | kubectl create -f - >/dev/null || fail "could not create restore $1"
}

# wait_restore NAME: until Velero finishes; anything but Completed fails.
wait_restore() {
  local phase
  while :; do
    phase="$(kubectl get restores.velero.io -n "$velero_ns" "$1" -o jsonpath='{.status.phase}')" || phase=""
    case "$phase" in
      Completed) return 0 ;;
      PartiallyFailed|Failed|FailedValidation)
        fail "restore $1 ended $phase; see: velero restore describe $1 --details -n $velero_ns" ;;
    esac
    [ "$SECONDS" -lt "$deadline" ] || fail "restore $1 did not finish within ${timeout}s (phase '${phase}')"
    sleep 10
  done
}

# check_volumes NAME EXPECTED: every CouchDB node's volume came back (CHT keeps one copy of each shard).
# Volume restores are found by the restore's uid: Velero hashes a label value over 63 characters
# (velero v1.18.1 pkg/label/label.go GetValidName, used for velero.io/restore-name in
# pkg/podvolume/restorer.go), so a long county's restore name would find none.
check_volumes() {
  local uid summary done_count bad
  uid="$(kubectl get restores.velero.io -n "$velero_ns" "$1" -o json | jq -r '.metadata.uid // empty')"
  [ -n "$uid" ] || fail "restore $1 has no uid"
  summary="$(kubectl get podvolumerestores.velero.io -n "$velero_ns" -l "velero.io/restore-uid=$uid" -o json)"
  done_count="$(jq '[.items[] | select(.status.phase == "Completed")] | length' <<<"$summary")"
  bad="$(jq -r '[.items[] | select(.status.phase != "Completed") | .spec.pod.name + ": " + (.status.phase // "pending")] | join(", ")' <<<"$summary")"
  [ -z "$bad" ] || fail "restore $1: volumes not restored: $bad"
  [ "$done_count" -ge "$2" ] || fail "restore $1 restored $done_count volume(s), expected $2 (one per CouchDB node)"
}

# read_credentials NAMESPACE: the county's CouchDB admin into couch_user / couch_password (shell variables).
read_credentials() {
  local secret
  secret="$(kubectl get secret -n "$1" cht-couchdb-credentials -o json)" || fail "cannot read the CouchDB credentials in $1"
  couch_user="$(jq -r '.data.COUCHDB_USER' <<<"$secret" | base64 -d)"
  couch_password="$(jq -r '.data.COUCHDB_PASSWORD' <<<"$secret" | base64 -d)"
}

_curl_quote() {
  local value="${1//\\/\\\\}"
  printf '%s' "${value//\"/\\\"}"
}

# couch BASE PATH: GET from CouchDB as the admin; the credentials reach curl on stdin, never as arguments.
couch() {
  printf 'user = "%s:%s"\n' "$(_curl_quote "$couch_user")" "$(_curl_quote "$couch_password")" \
    | curl -sf --max-time 120 -K - "$1$2"
}

# wait_rollout NAMESPACE: the restored CouchDB Deployments run.
wait_rollout() {
  local deployment
  for deployment in $couch_deployments; do
    kubectl rollout status -n "$1" "deployment/$deployment" --timeout="$((deadline - SECONDS))s" >/dev/null \
      || fail "CouchDB ($deployment) did not start in $1"
  done
}

# wait_up NAMESPACE BASE: CouchDB answers.
wait_up() {
  until couch "$2" /_up >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || fail "CouchDB in $1 did not answer within ${timeout}s"
    sleep 10
  done
}

wait_couchdb() {
  wait_rollout "$1"
  wait_up "$1" "$2"
}

# doc_count BASE DB
doc_count() {
  couch "$1" "/$(jq -rn --arg db "$2" '$db | @uri')" | jq -r '.doc_count'
}
"""


def _constants(velero_namespace: str, **more: str) -> str:
    selectors = render.drill_restore_selectors()
    deployments = " ".join(sorted({n.deployment for n in render.any_county_couch_nodes()}))
    values = {
        "velero_ns": velero_namespace,
        "drill_selectors": json.dumps(selectors, separators=(",", ":")),
        "drill_modifiers": render.DRILL_MODIFIERS,
        "county_modifiers": render.COUNTY_MODIFIERS,
        "couch_deployments": deployments,
        **more,
    }
    return "".join(f"{k}={_quote(v)}\n" for k, v in values.items())


def _quote(value: str) -> str:
    """Always single-quoted (shlex leaves plain words bare, which shellcheck reads as arithmetic)."""
    return "'" + value.replace("'", "'\"'\"'") + "'"


def county_restore_script(*, velero_namespace: str) -> str:
    """Restore a county into its own namespace, for real: `restore-county.sh <county> [<backup>]`.

    Any county shape: one or three CouchDB nodes, on the county StorageClass or migrated (static volumes,
    brought back on the county StorageClass by the `restore-county-modifiers` resource modifier), any
    valid name length. It picks the newest Completed backup that holds every CouchDB node's volume (a
    backup taken while CouchDB was not running is Completed with none), refuses while CouchDB objects
    remain, and checks every volume came back before it reports the databases."""
    claims = sorted({n.claim for n in render.any_county_couch_nodes()})
    constants = _constants(
        velero_namespace,
        couch_claims=json.dumps(claims),
        county_label=render.COUNTY_LABEL,
        nodes_label=render.NODES_LABEL,
        max_name=str(names.max_county_name_length()),
    )
    return _HEAD + constants + _STEPS + r"""
county="${1:-}"
[ -n "$county" ] || fail "usage: restore-county.sh <county> [<backup>]"
if [ "${#county}" -gt "$max_name" ] || ! [[ "$county" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]]; then
  fail "'$county' is not a county name (lower-case letters, digits and '-', at most $max_name characters)"
fi

# couch_volumes BACKUP: how many CouchDB claims the backup holds data of (Completed pod volume backups with a
# snapshot: Velero restores no other, pkg/podvolume/util.go getVolumeBackupInfoForPod).
# Found by the backup's uid (a long backup name is hashed in velero.io/backup-name, pkg/label/label.go);
# Velero's backup sync sets that uid on the pod volume backups it reads back from the bucket
# (pkg/controller/backup_sync_controller.go), so this works on a rebuilt cluster too.
couch_volumes() {
  local uid
  uid="$(kubectl get backups.velero.io -n "$velero_ns" "$1" -o json | jq -r '.metadata.uid // empty')" || return 1
  [ -n "$uid" ] || return 1
  kubectl get podvolumebackups.velero.io -n "$velero_ns" -l "velero.io/backup-uid=$uid" -o json \
    | jq --argjson claims "$couch_claims" '[.items[] | select(.status.phase == "Completed" and (.status.snapshotID // "") != "")
        | .metadata.annotations["velero.io/pvc-name"] // empty | select(. as $c | $claims | index($c))] | unique | length'
}

# Every backup of the county (its Schedule's and its final one), newest first, with its node count.
backups="$(kubectl get backups.velero.io -n "$velero_ns" -l "$county_label=$county" -o json \
  | jq -r --arg nodes "$nodes_label" '[.items[] | select(.status.phase == "Completed")]
      | sort_by(.status.completionTimestamp) | reverse | .[] | .metadata.name + " " + (.metadata.labels[$nodes] // "")')" \
  || fail "cannot list the backups of county $county"
[ -n "$backups" ] || fail "no completed backup of county $county; list them with: velero backup get -n $velero_ns"

# Backups made before they carried the node count: the Schedule's label, or COUCHDB_NODES.
schedule_nodes="$(kubectl get schedules.velero.io -n "$velero_ns" "county-$county" -o json 2>/dev/null \
  | jq -r --arg nodes "$nodes_label" '.metadata.labels[$nodes] // empty' 2>/dev/null || true)"

wanted="${2:-}"
backup="" nodes=""
while read -r name count; do
  [ -z "$wanted" ] || [ "$name" = "$wanted" ] || continue
  count="${count:-${COUCHDB_NODES:-$schedule_nodes}}"
  [[ "$count" =~ ^[13]$ ]] || fail "backup $name does not say how many CouchDB nodes county $county has; set COUCHDB_NODES=1 or 3"
  have="$(couch_volumes "$name")" || fail "cannot read the volume backups of $name"
  if [ "$have" -ge "$count" ]; then
    backup="$name" nodes="$count"
    break
  fi
  echo "cht-hosting: backup $name holds $have of $count CouchDB volume(s) (CouchDB was not running when it was taken): skipped" >&2
  [ -z "$wanted" ] || fail "backup $wanted does not hold every CouchDB volume; pick another: velero backup get -n $velero_ns"
done <<<"$backups"
if [ -z "$backup" ] && [ -n "$wanted" ]; then
  fail "no completed backup $wanted of county $county; list them with: velero backup get -n $velero_ns"
fi
[ -n "$backup" ] || fail "no completed backup of county $county holds every CouchDB volume"

# Velero never overwrites: a claim or CouchDB that still exists would keep what it has.
left="$(kubectl get persistentvolumeclaims,deployments -n "$county" -l cht.service -o name 2>/dev/null | grep -E 'couchdb' || true)"
if [ -n "$left" ]; then
  fail "county $county still has CouchDB objects ($(echo "$left" | tr '\n' ' ')); set them aside first (docs/runbooks/restore-county.md)"
fi

# Claims left Pending explain a restore that does not finish (no StorageClass, no volume).
pending_claims() {
  kubectl get persistentvolumeclaims -n "$county" -o json 2>/dev/null \
    | jq -r '[.items[] | select(.status.phase != "Bound") | .metadata.name + " (storageClassName \"" + (.spec.storageClassName // "") + "\")"] | join(", ")' 2>/dev/null || true
}
restore_failed() {
  local pending
  [ "$1" -ne 0 ] || return 0
  pending="$(pending_claims)"
  [ -z "$pending" ] || echo "cht-hosting: claims not bound in $county: $pending" >&2
}

restore="restore-$county-$(date -u +%s)"
echo "cht-hosting: restoring county $county ($nodes CouchDB node(s)) from backup $backup as $restore"
trap 'restore_failed $?' EXIT
start_restore "$restore" "$backup" "$county" "$county" county
wait_restore "$restore"
check_volumes "$restore" "$nodes"
trap - EXIT
if [ "$nodes" -eq 1 ]; then
  couch_deployments="cht-couchdb"
else
  couch_deployments="$(for n in $(seq 1 "$nodes"); do printf 'cht-couchdb-%s ' "$n"; done)"
fi
read_credentials "$county"
wait_rollout "$county"
# From outside the cluster CouchDB is reached through kubectl port-forward (COUCH_BASE overrides it).
base="${COUCH_BASE:-}"
if [ -z "$base" ]; then
  kubectl port-forward -n "$county" "deployment/${couch_deployments%% *}" 15984:5984 >/dev/null 2>&1 &
  forward=$!
  trap 'kill "$forward" 2>/dev/null || true' EXIT
  base="http://127.0.0.1:15984"
fi
wait_up "$county" "$base"
echo "cht-hosting: county $county restored from $backup; its databases:"
couch "$base" /_all_dbs | jq -r '.[]' | while IFS= read -r db; do
  printf '  %s %s documents\n' "$db" "$(doc_count "$base" "$db")"
done
echo "cht-hosting: now run: pulumi refresh && pulumi up (it adopts the restored objects and restarts the rest)"
"""


BUCKET_CHECK = "check-bucket.sh"

# What the check reads (AWS CLI `s3api`; the same commands in AWS CLI v1 and v2): GetBucketVersioning's
# `Status` and GetObjectLockConfiguration's `ObjectLockConfiguration.{ObjectLockEnabled, Rule.DefaultRetention
# .{Mode, Days, Years}}` (AWS S3 API reference, GetObjectLockConfiguration; MinIO answers the same XML). A bucket
# without a lock configuration answers ObjectLockConfigurationNotFoundError.
_BUCKET_CHECK = r"""
command -v aws >/dev/null 2>&1 || fail "the AWS CLI (aws) is needed: install it (apt-get install awscli, or pip install awscli)"
if [ -z "${AWS_ACCESS_KEY_ID:-}${AWS_PROFILE:-}" ]; then
  fail "no key: put one that may read the bucket's settings in the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE), never on the command line (docs/backups.md#immutability-object-lock)"
fi
err="$(mktemp)"
ca_file=""
cleanup() { rm -f "$err" ${ca_file:+"$ca_file"}; }
trap cleanup EXIT
args=(--endpoint-url "$endpoint" --region "$region" --output text)
if [ -n "$ca_bundle" ]; then
  ca_file="$(mktemp)"
  printf '%s\n' "$ca_bundle" >"$ca_file"
  args+=(--ca-bundle "$ca_file")
fi
s3api() { aws "${args[@]}" s3api "$@" 2>"$err"; }
why() { tr '\n' ' ' <"$err" | sed 's/  */ /g; s/ $//'; }

s3api head-bucket --bucket "$bucket" >/dev/null || fail "bucket $bucket at $endpoint cannot be reached: $(why)"
if [ "$object_lock" = off ]; then
  echo "cht-hosting: bucket $bucket answers; object lock not checked (backup.s3.objectLock: off)"
  exit 0
fi

versioning="$(s3api get-bucket-versioning --bucket "$bucket" --query Status)" \
  || fail "cannot read the versioning of $bucket (the key needs s3:GetBucketVersioning): $(why)"
if lock="$(s3api get-object-lock-configuration --bucket "$bucket" \
    --query 'ObjectLockConfiguration.[ObjectLockEnabled, Rule.DefaultRetention.Mode, Rule.DefaultRetention.Days, Rule.DefaultRetention.Years]')"; then
  read -r enabled mode days years <<<"$lock"
elif grep -q ObjectLockConfigurationNotFoundError "$err"; then
  enabled=None mode=None days=None years=None
else
  fail "cannot read the object lock configuration of $bucket (the key needs s3:GetBucketObjectLockConfiguration): $(why)"
fi

problems=()
[ "$versioning" = Enabled ] || problems+=("versioning is ${versioning/None/off}, not Enabled: a delete removes the only copy")
if [ "$enabled" != Enabled ]; then
  problems+=("object lock is not enabled: create the bucket with it (MinIO: mc mb --with-lock; AWS: --object-lock-enabled-for-bucket, or put-object-lock-configuration on a versioned bucket)")
elif [ "$mode" = None ]; then
  problems+=("object lock has no default retention: k3s and Velero set none on what they write, so nothing is locked; set one (docs/backups.md#immutability-object-lock)")
fi
if [ "${#problems[@]}" -gt 0 ]; then
  for problem in "${problems[@]}"; do
    if [ "$object_lock" = required ]; then
      echo "cht-hosting: bucket $bucket: $problem" >&2
    else
      echo "cht-hosting: WARNING: bucket $bucket: $problem" >&2
    fi
  done
  [ "$object_lock" = required ] && fail "backup.s3.objectLock is required and bucket $bucket is not immutable (docs/backups.md#immutability-object-lock)"
  echo "cht-hosting: bucket $bucket answers; its copies are not immutable (backup.s3.objectLock: preferred)"
  exit 0
fi

if [ "$days" = None ] || [ "$days" = 0 ]; then
  days=$((years * 365))
fi
echo "cht-hosting: bucket $bucket: versioning Enabled, object lock $mode, default retention $days days"
if [ "$mode" = COMPLIANCE ]; then
  echo "cht-hosting: COMPLIANCE mode: nobody, the storage's administrators included, can delete a locked version or shorten its retention"
fi
if [ "$days" -gt "$kept_days" ]; then
  echo "cht-hosting: WARNING: the default retention ($days days) is longer than the shortest time a county backup is kept ($kept_days days): deleted backups stay stored until their lock ends; prefer less than $kept_days days" >&2
fi
"""


def bucket_check_script(backup: BackupConfig, counties: Iterable[ChtSettings]) -> str:
    """`check-bucket.sh`: asks the store whether the backup bucket keeps immutable copies (versioning, object
    lock, a default retention), as `backup.s3.objectLock` wants: required fails (exit 1) when it does not,
    preferred warns, off only checks the bucket answers. Run by an operator with the AWS CLI and a key that may
    read the bucket's settings, from the environment (docs/backups.md#immutability-object-lock)."""
    s3 = backup.s3
    kept = min((render.retention_days(backup, c) for c in counties), default=backup.counties.retention_days)
    values = {
        "endpoint": s3.endpoint,
        "bucket": s3.bucket,
        "region": s3.region,
        "object_lock": s3.object_lock,
        "kept_days": str(kept),
        "ca_bundle": (s3.ca_bundle or "").strip(),
    }
    constants = "".join(f"{k}={_quote(v)}\n" for k, v in values.items())
    return _HEAD + "# check-bucket.sh: is the backup bucket immutable? (docs/backups.md#immutability-object-lock)\n" + constants + _BUCKET_CHECK


def scripts(backup: BackupConfig, counties: Iterable[ChtSettings]) -> dict[str, str]:
    """The backup scripts the stack exports with the control plane's (`restoreScripts`, the plan's restore/)."""
    return {
        "restore-county.sh": county_restore_script(velero_namespace=backup.velero.namespace),
        BUCKET_CHECK: bucket_check_script(backup, counties),
    }
