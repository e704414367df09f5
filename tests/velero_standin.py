"""A stand-in for `kubectl` against a cluster that runs Velero v1.18.1, for running restore-county.sh for real.

The cluster is one JSON file (`World`). `python -m tests.velero_standin <state> <kubectl args...>` (what the
sandbox's `kubectl` runs) answers the calls the restore scripts make, and a created Restore is carried out
the way Velero and Kubernetes would carry it out, so a script that relies on behaviour upstream does not
have fails here as it would on the cluster. What it follows, at the pinned tags:

- vmware-tanzu/velero v1.18.1
  - pkg/podvolume/backupper.go: a pod that is not Running has all its volumes skipped and the backup still
    ends Completed (`kube.IsPodRunning` -> `skipAllPodVolumes`); a hostPath volume (also a PVC bound to a
    hostPath PV, `isHostPathVolume`) is skipped with a warning; pod volume backups carry
    `velero.io/backup-name: GetValidName(<backup>)`, `velero.io/backup-uid` and `velero.io/pvc-name`.
  - pkg/label/label.go `GetValidName`: a label value over 63 characters becomes its first 57 characters
    and the first 6 hex digits of its sha256.
  - pkg/restore/restore.go: a PV whose claim has a pod volume backup is not restored but provisioned anew
    (`pvsToProvision`); a PV without one and reclaim Retain is restored as it was (`handleSkippedPVHasRetain
    Policy`); a claim's binding info is reset and its `volumeName` removed when its PV is in `pvsToProvision`;
    then the resource modifiers are applied; an object that exists is not overwritten.
  - pkg/controller/restore_controller.go `validateAndComplete`: the backup must exist and be Completed; the
    resource-modifier ConfigMap must exist, parse and validate, else the restore is FailedValidation.
  - internal/resourcemodifiers: one data key (`GetResourceModifiersFromConfig`), strict YAML, version v1 and
    at least one rule, one kind of patch per rule (resource_modifiers_validator.go); conditions: namespaces,
    groupResource glob, resourceNameRegex, labelSelector, `matches` as JSON-patch tests (a missing path does
    not match); JSON patches with json_patch.go's value quoting (a failed `test` leaves the object as it was,
    any other failure is an error); JSON merge patches (json_merge_patch.go).
  - pkg/podvolume/restorer.go: a volume restore per pod volume backup with a snapshot ID (util.go
    `getVolumeBackupInfoForPod`), labelled `velero.io/restore-name: GetValidName(<restore>)` and
    `velero.io/restore-uid`; it runs once the restored pod starts, and the restore waits for all of them
    (restore.go), ending PartiallyFailed when one cannot run (Velero's --fs-backup-timeout).
- kubernetes v1.35: a claim with `storageClassName: ""` is never provisioned dynamically and binds only to an
  existing PV of class "" that is Available (pkg/controller/volume/persistentvolume/pv_controller.go
  `syncUnboundClaim`, index.go `findMatchingVolume`); a claim with `volumeName` binds only to that PV, with
  the same class, and a claimRef (if any) naming the claim and no other uid; a pod whose claim is not Bound
  is not started. Label selectors with a value that is not a valid label value (over 63 characters) are
  refused (apimachinery pkg/labels/selector.go, `validateLabelValue`).
"""

from __future__ import annotations

import copy
import fnmatch
import hashlib
import json
import re
import sys
from pathlib import Path

import yaml

VELERO_NS = "velero"
POD_VOLUME_BACKUP = "PodVolumeBackup"

RESOURCES = {
    "backups.velero.io": "Backup",
    "schedules.velero.io": "Schedule",
    "restores.velero.io": "Restore",
    "podvolumebackups.velero.io": POD_VOLUME_BACKUP,
    "podvolumerestores.velero.io": "PodVolumeRestore",
    "persistentvolumeclaims": "PersistentVolumeClaim",
    "persistentvolumes": "PersistentVolume",
    "deployments": "Deployment",
    "secret": "Secret",
    "secrets": "Secret",
    "configmap": "ConfigMap",
    "configmaps": "ConfigMap",
    "storageclasses": "StorageClass",
}
GROUP_RESOURCE = {  # what Velero's modifiers match on
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "PersistentVolume": "persistentvolumes",
    "Deployment": "deployments.apps",
    "Secret": "secrets",
    "ConfigMap": "configmaps",
    "Service": "services",
}
NAME_PREFIX = {"PersistentVolumeClaim": "persistentvolumeclaim", "Deployment": "deployment.apps"}
CLUSTER_SCOPED = {"PersistentVolume", "StorageClass"}
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?\Z")
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"


def get_valid_name(label: str) -> str:
    """velero v1.18.1 pkg/label/label.go GetValidName (DNS1035LabelMaxLength 63)."""
    if len(label) <= 63:
        return label
    return label[:57] + hashlib.sha256(label.encode()).hexdigest()[:6]


class World:
    """The cluster as one JSON file: objects, and what each backup holds (`contents`)."""

    def __init__(self, path: Path):
        self.path = path
        if path.exists():
            self.state = json.loads(path.read_text())
        else:
            self.state = {"objects": [], "contents": {}, "serial": 0}

    def save(self) -> None:
        self.path.write_text(json.dumps(self.state, indent=1))

    # --- objects ---------------------------------------------------------------------------------------------

    def uid(self) -> str:
        self.state["serial"] += 1
        return f"00000000-0000-4000-8000-{self.state['serial']:012d}"

    def find(self, kind: str, namespace: str | None, name: str) -> dict | None:
        for obj in self.state["objects"]:
            meta = obj["metadata"]
            if obj["kind"] == kind and meta["name"] == name and (kind in CLUSTER_SCOPED or meta.get("namespace") == namespace):
                return obj
        return None

    def list(self, kind: str, namespace: str | None = None) -> list[dict]:
        return [
            o for o in self.state["objects"]
            if o["kind"] == kind and (namespace is None or kind in CLUSTER_SCOPED or o["metadata"].get("namespace") == namespace)
        ]

    def add(self, obj: dict) -> dict:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if self.find(obj["kind"], meta.get("namespace"), meta["name"]) is not None:
            raise AlreadyExists(f'{obj["kind"]} "{meta["name"]}" already exists')
        for key, value in (meta.get("labels") or {}).items():
            if not valid_label_value(value):
                raise Invalid(f"metadata.labels: Invalid value: {value!r}: {key} must be a valid label value")
        meta.setdefault("uid", self.uid())
        self.state["objects"].append(obj)
        return obj

    def remove(self, kind: str, namespace: str | None, name: str) -> None:
        obj = self.find(kind, namespace, name)
        if obj is not None:
            self.state["objects"].remove(obj)

    # --- Kubernetes: binding and pods ------------------------------------------------------------------------

    def bind(self, claim: dict) -> None:
        """The PV controller for one claim (pv_controller.go syncUnboundClaim)."""
        spec, ns, name = claim["spec"], claim["metadata"]["namespace"], claim["metadata"]["name"]
        klass = spec.get("storageClassName")
        if klass is None:
            default = [c for c in self.list("StorageClass") if (c["metadata"].get("annotations") or {}).get(DEFAULT_CLASS) == "true"]
            klass = spec["storageClassName"] = default[0]["metadata"]["name"] if default else None
        volume = None
        if spec.get("volumeName"):
            pv = self.find("PersistentVolume", None, spec["volumeName"])
            if pv is not None and self._fits(pv, claim, klass or ""):
                volume = pv
        elif klass == "" or klass is None:
            # No dynamic provisioning for "": only an Available PV of class "" meant for this claim (or any claim).
            for pv in self.list("PersistentVolume"):
                if pv.get("status", {}).get("phase", "Available") == "Available" and self._fits(pv, claim, ""):
                    volume = pv
                    break
        elif self.find("StorageClass", None, klass) is not None:
            volume = self.add({
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": f"pvc-{claim['metadata']['uid']}"},
                "spec": {
                    "storageClassName": klass, "persistentVolumeReclaimPolicy": "Retain",
                    "capacity": spec["resources"]["requests"], "csi": {"driver": "csi.vsphere.vmware.com", "volumeHandle": self.uid()},
                    "claimRef": {"namespace": ns, "name": name},
                },
            })
        if volume is None:
            claim["status"] = {"phase": "Pending"}
            return
        volume["spec"]["claimRef"] = {"namespace": ns, "name": name, "uid": claim["metadata"]["uid"]}
        volume["status"] = {"phase": "Bound"}
        spec["volumeName"] = volume["metadata"]["name"]
        claim["status"] = {"phase": "Bound"}

    @staticmethod
    def _fits(pv: dict, claim: dict, klass: str) -> bool:
        ref = pv["spec"].get("claimRef")
        if pv.get("status", {}).get("phase") in ("Bound", "Released") and (ref or {}).get("uid") not in (None, claim["metadata"]["uid"]):
            return False
        if ref and (ref.get("namespace"), ref.get("name")) != (claim["metadata"]["namespace"], claim["metadata"]["name"]):
            return False
        return pv["spec"].get("storageClassName", "") == klass

    def release(self, claim: dict) -> None:
        """A deleted claim leaves its Retain PV Released (its claimRef keeps the old uid)."""
        pv = self.find("PersistentVolume", None, claim["spec"].get("volumeName", ""))
        if pv is not None:
            pv["status"] = {"phase": "Released"}
        self.remove("PersistentVolumeClaim", claim["metadata"]["namespace"], claim["metadata"]["name"])

    def claims_of(self, deployment: dict) -> list[str]:
        volumes = deployment["spec"]["template"]["spec"].get("volumes", [])
        return [v["persistentVolumeClaim"]["claimName"] for v in volumes if "persistentVolumeClaim" in v]

    def pod_can_start(self, deployment: dict) -> bool:
        ns = deployment["metadata"]["namespace"]
        for claim_name in self.claims_of(deployment):
            claim = self.find("PersistentVolumeClaim", ns, claim_name)
            if claim is None or claim.get("status", {}).get("phase") != "Bound":
                return False
        return True

    def pod_name(self, deployment: dict) -> str:
        return f"{deployment['metadata']['name']}-7d4b9c-{deployment['metadata']['uid'][-5:]}"

    # --- Velero: backups -------------------------------------------------------------------------------------

    def backup(self, namespace: str, name: str, *, labels: dict, completed: str, running: bool = True) -> dict:
        """A file-system backup of a namespace, as Velero takes it (backupper.go): objects, the PVs its claims
        use, and a pod volume backup per claim a Running pod mounts, unless the claim's PV is a hostPath."""
        backup = self.add({
            "apiVersion": "velero.io/v1", "kind": "Backup",
            "metadata": {"name": name, "namespace": VELERO_NS, "labels": labels},
            "spec": {"includedNamespaces": [namespace], "defaultVolumesToFsBackup": True},
            "status": {"phase": "Completed", "completionTimestamp": completed},
        })
        items = [copy.deepcopy(o) for o in self.state["objects"] if o["metadata"].get("namespace") == namespace and o["kind"] != POD_VOLUME_BACKUP]
        for claim in [o for o in items if o["kind"] == "PersistentVolumeClaim"]:
            pv = self.find("PersistentVolume", None, claim["spec"].get("volumeName", ""))
            if pv is not None:
                items.append(copy.deepcopy(pv))
        self.state["contents"][name] = items
        for deployment in [o for o in items if o["kind"] == "Deployment"]:
            if not running:
                continue  # kube.IsPodRunning fails: skipAllPodVolumes, and the backup is still Completed
            for claim_name in self.claims_of(deployment):
                claim = self.find("PersistentVolumeClaim", namespace, claim_name)
                pv = self.find("PersistentVolume", None, (claim or {}).get("spec", {}).get("volumeName", ""))
                if pv is None or "hostPath" in pv["spec"]:
                    continue  # isHostPathVolume: skipped with a warning
                self.add({
                    "apiVersion": "velero.io/v1", "kind": POD_VOLUME_BACKUP,
                    "metadata": {
                        "name": f"{name[:50]}-{self.uid()[-5:]}", "namespace": VELERO_NS,
                        "labels": {"velero.io/backup-name": get_valid_name(name), "velero.io/backup-uid": backup["metadata"]["uid"]},
                        "annotations": {"velero.io/pvc-name": claim_name},
                    },
                    "spec": {"pod": {"namespace": namespace, "name": self.pod_name(deployment)}, "volume": "couchdb-data"},
                    "status": {"phase": "Completed", "snapshotID": hashlib.sha256(name.encode() + claim_name.encode()).hexdigest()[:16]},
                })
        return backup

    # --- Velero: a restore -----------------------------------------------------------------------------------

    def restore(self, restore: dict) -> None:
        spec, ns = restore["spec"], restore["metadata"]["namespace"]
        restore["status"] = status = {"phase": "InProgress", "errors": [], "validationErrors": []}
        backup = self.find("Backup", ns, spec.get("backupName", ""))
        if backup is None or backup.get("status", {}).get("phase") != "Completed":
            status["validationErrors"].append(f"backup {spec.get('backupName')} not found or not Completed")
        modifiers = None
        if spec.get("resourceModifier") and spec["resourceModifier"].get("kind", "").lower() == "configmap":
            name = spec["resourceModifier"]["name"]
            config_map = self.find("ConfigMap", ns, name)
            if config_map is None:
                status["validationErrors"].append(f"failed to get resource modifiers configmap {ns}/{name}")
            else:
                try:
                    modifiers = parse_modifiers(config_map)
                except ValueError as error:
                    status["validationErrors"].append(f"resource modifiers in configmap {ns}/{name}: {error}")
        if status["validationErrors"]:
            status["phase"] = "FailedValidation"
            return
        included = spec.get("includedNamespaces") or ["*"]
        mapping = spec.get("namespaceMapping") or {}
        excluded = {r.split(".")[0] for r in spec.get("excludedResources") or []}
        items = [
            o for o in self.state["contents"][backup["metadata"]["name"]]
            if (o["kind"] in CLUSTER_SCOPED or any(fnmatch.fnmatchcase(o["metadata"]["namespace"], p) for p in included))
            and GROUP_RESOURCE.get(o["kind"], o["kind"].lower() + "s").split(".")[0] not in excluded
        ]
        pvbs = [
            p for p in self.list(POD_VOLUME_BACKUP, ns)
            if p["metadata"]["labels"].get("velero.io/backup-uid") == backup["metadata"]["uid"]
        ]
        to_provision = set()
        for pv in [o for o in items if o["kind"] == "PersistentVolume"]:
            ref = pv["spec"].get("claimRef") or {}
            if any(p["spec"]["pod"]["namespace"] == ref.get("namespace") and p["metadata"]["annotations"].get("velero.io/pvc-name") == ref.get("name") for p in pvbs):
                to_provision.add(pv["metadata"]["name"])  # provisioned anew, never restored
            elif pv["spec"].get("persistentVolumeReclaimPolicy") == "Delete":
                to_provision.add(pv["metadata"]["name"])
            elif self.find("PersistentVolume", None, pv["metadata"]["name"]) is None:
                pv = copy.deepcopy(pv)
                pv["spec"].get("claimRef", {}).pop("uid", None)
                pv["status"] = {"phase": "Available"}
                self.add(pv)
        restored_pods = {}
        for obj in [o for o in items if o["kind"] not in CLUSTER_SCOPED]:
            obj = copy.deepcopy(obj)
            origin = obj["metadata"]["namespace"]
            target = mapping.get(origin, origin)
            obj.pop("status", None)
            if obj["kind"] == "PersistentVolumeClaim":
                obj["metadata"].get("annotations", {}).pop("pv.kubernetes.io/bind-completed", None)
                if obj["spec"].get("volumeName") in to_provision:
                    del obj["spec"]["volumeName"]
            if modifiers is not None:
                status["errors"] += apply_modifiers(modifiers, obj, GROUP_RESOURCE.get(obj["kind"], obj["kind"].lower() + "s"))
            obj["metadata"]["namespace"] = target
            if self.find(obj["kind"], target, obj["metadata"]["name"]) is not None:
                continue  # exists: not overwritten (existingResourcePolicy none)
            obj["metadata"].pop("uid", None)
            added = self.add(obj)
            if obj["kind"] == "PersistentVolumeClaim":
                self.bind(added)
            if obj["kind"] == "Deployment":
                restored_pods[(origin, self.pod_name_of_backup(backup, origin, obj))] = added
        for pvb in pvbs:
            pod_ns, pod = pvb["spec"]["pod"]["namespace"], pvb["spec"]["pod"]["name"]
            deployment = restored_pods.get((pod_ns, pod))
            if deployment is None or not pvb["status"].get("snapshotID"):
                continue
            started = self.pod_can_start(deployment)
            self.add({
                "apiVersion": "velero.io/v1", "kind": "PodVolumeRestore",
                "metadata": {
                    "name": f"{restore['metadata']['name'][:50]}-{self.uid()[-5:]}", "namespace": ns,
                    "labels": {"velero.io/restore-name": get_valid_name(restore["metadata"]["name"]),
                               "velero.io/restore-uid": restore["metadata"]["uid"]},
                },
                "spec": {"pod": {"namespace": deployment["metadata"]["namespace"], "name": self.pod_name(deployment)},
                         "volume": pvb["spec"]["volume"], "snapshotID": pvb["status"]["snapshotID"]},
                "status": {"phase": "Completed" if started else "New"},
            })
            if not started:
                status["errors"].append(f"timed out waiting for the pod volume restore of {pod}: its pod never started")
        status["phase"] = "PartiallyFailed" if status["errors"] else "Completed"

    def pod_name_of_backup(self, backup: dict, namespace: str, deployment: dict) -> str:
        """The pod a backed-up Deployment ran (the one its pod volume backups name)."""
        name = deployment["metadata"]["name"]
        for original in self.state["contents"][backup["metadata"]["name"]]:
            if original["kind"] == "Deployment" and original["metadata"]["name"] == name and original["metadata"]["namespace"] == namespace:
                return self.pod_name(original)
        return ""


class AlreadyExists(Exception):
    pass


class Invalid(Exception):
    pass


def valid_label_value(value: str) -> bool:
    return len(value) <= 63 and bool(LABEL_VALUE.match(value))


# --- resource modifiers (velero v1.18.1 internal/resourcemodifiers) ---------------------------------------------

_TOP, _RULE = {"version", "resourceModifierRules"}, {"conditions", "patches", "mergePatches", "strategicPatches"}
_CONDITIONS = {"namespaces", "groupResource", "resourceNameRegex", "labelSelector", "matches"}


def parse_modifiers(config_map: dict) -> dict:
    data = config_map.get("data") or {}
    if len(data) != 1:
        raise ValueError(f"illegal resource modifiers {config_map['metadata']['name']} configmap")
    rules = yaml.safe_load(next(iter(data.values())))
    # yaml.UnmarshalStrict: an unknown field is an error.
    if not isinstance(rules, dict) or set(rules) - _TOP:
        raise ValueError(f"unknown fields {sorted(set(rules or {}) - _TOP)}")
    if str(rules.get("version", "")).lower() != "v1":
        raise ValueError(f"unsupported resource modifier version {rules.get('version')}")
    if not rules.get("resourceModifierRules"):
        raise ValueError("resource modifier rules cannot be empty")
    for rule in rules["resourceModifierRules"]:
        if set(rule) - _RULE or set(rule.get("conditions") or {}) - _CONDITIONS:
            raise ValueError(f"unknown fields in rule {rule}")
        if not (rule.get("conditions") or {}).get("groupResource"):
            raise ValueError("groupkResource cannot be empty")
        if sum(bool(rule.get(k)) for k in ("patches", "mergePatches", "strategicPatches")) >= 2:
            raise ValueError("only one of patches, mergePatches, strategicPatches can be specified")
        for patch in rule.get("patches") or []:
            if str(patch.get("operation", "")).lower() not in ("add", "remove", "replace", "test", "move", "copy"):
                raise ValueError(f"unsupported operation {patch.get('operation')}")
    return rules


def _glob(pattern: str, value: str) -> bool:
    """gobwas/glob with separator '.': `*` does not cross a dot."""
    regex = "".join("[^.]*" if c == "*" else "[^.]" if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value) is not None


def apply_modifiers(rules: dict, obj: dict, group_resource: str) -> list[str]:
    """ApplyResourceModifierRules: each matching rule's patch, conditions checked on the object as it came."""
    origin, errors = copy.deepcopy(obj), []
    for rule in rules["resourceModifierRules"]:
        conditions = rule["conditions"]
        ns = origin["metadata"].get("namespace", "")
        if ns and conditions.get("namespaces") and ns not in conditions["namespaces"]:
            continue
        if not _glob(conditions["groupResource"], group_resource):
            continue
        if conditions.get("resourceNameRegex") and not re.search(conditions["resourceNameRegex"], origin["metadata"]["name"]):
            continue
        wanted = (conditions.get("labelSelector") or {}).get("matchLabels") or {}
        if any((origin["metadata"].get("labels") or {}).get(k) != v for k, v in wanted.items()):
            continue
        if not all(_test(origin, m["path"], _json_value(str(m.get("value", "")))) for m in conditions.get("matches") or []):
            continue
        try:
            if rule.get("patches"):
                patched = _json_patch(obj, rule["patches"])
            elif rule.get("mergePatches"):
                patched = obj
                for patch in rule["mergePatches"]:
                    patched = _merge(patched, yaml.safe_load(patch["patchData"]))
            else:
                raise PatchError("strategic merge patches are not modelled by this stand-in")
        except PatchError as error:
            errors.append(f"error in applying patch {error}")
            continue
        obj.clear()
        obj.update(patched)
    return errors


class PatchError(Exception):
    pass


def _json_value(value: str):
    """json_patch.go addQuotes: "" and other text are strings; null, booleans, numbers, objects are JSON."""
    if value == "" or (value.startswith('"') and value.endswith('"') and len(value) >= 2):
        return value.strip('"') if value else ""
    if value == "null":
        return None
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    if value.startswith(("{", "[")):
        return json.loads(value)
    try:
        return json.loads(value) if re.fullmatch(r"-?[0-9.eE+-]+", value) else value
    except ValueError:
        return value


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise PatchError(f"invalid path {path}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _test(obj: dict, path: str, value) -> bool:
    node = obj
    for part in _pointer(path):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False  # jsonpatch.ErrMissing: not a match
    return node == value


def _json_patch(obj: dict, patches: list[dict]) -> dict:
    result = copy.deepcopy(obj)
    for patch in patches:
        op, parts = patch["operation"].lower(), _pointer(patch["path"])
        parent = result
        for part in parts[:-1]:
            if not isinstance(parent, dict) or part not in parent:
                raise PatchError(f"missing path {patch['path']}")
            parent = parent[part]
        last = parts[-1]
        if op == "test":
            if not _test(result, patch["path"], _json_value(patch.get("value", ""))):
                return copy.deepcopy(obj)  # ErrTestFailed: the object as it was
        elif op == "remove":
            if last not in parent:
                raise PatchError(f"Unable to remove nonexistent key: {last}: missing value")
            del parent[last]
        elif op == "replace":
            if last not in parent:
                raise PatchError(f"replace operation does not apply: doc is missing key: {patch['path']}")
            parent[last] = _json_value(patch.get("value", ""))
        elif op == "add":
            parent[last] = _json_value(patch.get("value", ""))
        else:
            raise PatchError(f"operation {op} is not modelled by this stand-in")
    return result


def _merge(target, patch):
    """RFC 7386 (jsonpatch.MergePatch)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


# --- kubectl ------------------------------------------------------------------------------------------------------


def parse_selector(selector: str) -> list[tuple[str, str, str | None]]:
    requirements = []
    for part in [p.strip() for p in selector.split(",") if p.strip()]:
        match = re.fullmatch(r"([^=!]+?)(==|=|!=)(.*)", part)
        key, op, value = (match.group(1), match.group(2), match.group(3)) if match else (part, "exists", None)
        if value is not None and not valid_label_value(value):
            raise Invalid(
                f"unable to parse requirement: values[0][{key}]: Invalid value: {value!r}: "
                + ("must be no more than 63 characters" if len(value) > 63 else "a valid label must be an empty string or consist of alphanumeric characters")
            )
        requirements.append((key, op, value))
    return requirements


def selected(obj: dict, requirements) -> bool:
    labels = obj["metadata"].get("labels") or {}
    for key, op, value in requirements:
        if op == "exists" and key not in labels:
            return False
        if op in ("=", "==") and labels.get(key) != value:
            return False
        if op == "!=" and labels.get(key) == value:
            return False
    return True


def jsonpath(obj: dict, expression: str) -> str:
    node = obj
    for part in expression.strip("{}").lstrip(".").split("."):
        node = node.get(part, "") if isinstance(node, dict) else ""
    return node if isinstance(node, str) else json.dumps(node)


def kubectl(world: World, args: list[str], stdin: str) -> tuple[int, str, str]:
    flags, positional, i = {}, [], 0
    while i < len(args):
        if args[i] in ("-n", "-l", "-o", "-f", "-p", "--type"):
            flags[args[i]] = args[i + 1]
            i += 2
        elif args[i].startswith("-o") and len(args[i]) > 2:
            flags["-o"] = args[i][2:]
            i += 1
        elif args[i].startswith("--"):
            key, _, value = args[i].partition("=")
            flags[key] = value
            i += 1
        else:
            positional.append(args[i])
            i += 1
    verb = positional[0] if positional else ""
    ns = flags.get("-n", "default")
    try:
        if verb == "get":
            kinds = [RESOURCES[r] for r in positional[1].split(",")]
            name = positional[2] if len(positional) > 2 else None
            requirements = parse_selector(flags["-l"]) if "-l" in flags else []
            output = flags.get("-o", "")
            if name is not None:
                obj = world.find(kinds[0], ns, name)
                if obj is None:
                    return 1, "", f'Error from server (NotFound): {positional[1]} "{name}" not found\n'
                if output.startswith("jsonpath="):
                    return 0, jsonpath(obj, output[len("jsonpath="):]), ""
                return 0, json.dumps(obj), ""
            items = [o for k in kinds for o in world.list(k, ns) if selected(o, requirements)]
            if output == "name":
                return 0, "".join(f"{NAME_PREFIX.get(o['kind'], o['kind'].lower())}/{o['metadata']['name']}\n" for o in items), ""
            return 0, json.dumps({"apiVersion": "v1", "kind": "List", "items": items}), ""
        if verb == "create" and flags.get("-f") == "-":
            obj = yaml.safe_load(stdin)
            if obj.get("kind") == "Restore":
                restore = world.add(obj)
                world.restore(restore)
                return 0, f"restore.velero.io/{restore['metadata']['name']} created\n", ""
            world.add(obj)
            return 0, "", ""
        if verb == "rollout" and positional[1:2] == ["status"]:
            name = positional[2].partition("/")[2]
            deployment = world.find("Deployment", ns, name)
            if deployment is None:
                return 1, "", f'Error from server (NotFound): deployments.apps "{name}" not found\n'
            if not world.pod_can_start(deployment):
                return 1, "", "error: timed out waiting for the condition\n"
            return 0, f'deployment "{name}" successfully rolled out\n', ""
        if verb == "port-forward":
            return 0, "", ""
        return 3, "", f"velero stand-in: kubectl {' '.join(args)} is not modelled\n"
    except (Invalid, AlreadyExists) as error:
        return 1, "", f"Error from server: {error}\n"


def main() -> int:
    state, args = Path(sys.argv[1]), sys.argv[2:]
    with state.with_suffix(".calls").open("a") as calls:
        calls.write(" ".join(args) + "\n")
    if args[:1] == ["port-forward"]:
        return 0  # runs in the background beside other calls: it touches nothing
    world = World(state)
    stdin = sys.stdin.read() if "-f" in args else ""
    code, out, err = kubectl(world, args, stdin)
    world.save()
    sys.stdout.write(out)
    sys.stderr.write(err)
    return code


if __name__ == "__main__":
    sys.exit(main())
