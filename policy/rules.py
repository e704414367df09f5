"""cht-hosting's production rules as Pulumi policies (pulumi-policy, Python).

Every rule is a pure `validate(args, report_violation)` function over what the engine hands a policy:
the resource type token, the raw engine inputs (camelCase keys, e.g. `enableDiskUuid`) and a few
resource options. They are unit-tested without the CLI (tests/test_policy.py); `__main__.py` only
wraps them in a `PolicyPack`.

What a policy can NOT see (pulumi-policy 1.21.0 with pulumi 3.272.0), and so what this pack does not
claim to enforce:
- `retain_on_delete`: the analyzer protocol's resource options carry protect, ignoreChanges,
  deleteBeforeReplace, additionalSecretOutputs, aliases, customTimeouts and parent, nothing else. PVCs are
  checked for `protect`; `retain_on_delete` is asserted by the test suite on the offline evaluation.
- Which inputs are Pulumi secrets: the SDK unwraps secret values before a validation runs
  (`deserialize_properties(..., proxy_secrets=False)`; pulumi/pulumi-policy#241 is open). So the pack
  checks where secrets must never be (container env literals, ConfigMaps, command lines, VM guestinfo,
  annotations) by name, by shape (PEM private keys) and, for the stack, by the values that the secret
  generators (random passwords, TLS/SSH keys) produced; it cannot tell whether e.g. a provider's
  `password` input was passed as a secret (config/ guarantees that: those keys are read as secrets).
- Unknown values during preview: touching one raises inside the SDK, which reports the policy as
  "can't run during preview" (advisory) for that resource. The stack scan skips unknowns itself.
- Stack policies see resource outputs and run after the resources of an update are created (and at the
  end of a preview): a leak of a secret that does not exist yet is reported at the end of `pulumi up`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import yaml
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

# Shared with the program (ChtProject labels every county's namespace with COUNTY_LABEL).
from config.names import COUNTY_LABEL, GUESTINFO_ENCODINGS, MIN_HARDWARE_VERSION, decode_guestinfo

PVC = "kubernetes:core/v1:PersistentVolumeClaim"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
NAMESPACE = "kubernetes:core/v1:Namespace"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
K8S_SECRET = "kubernetes:core/v1:Secret"
VM = "vsphere:index/virtualMachine:VirtualMachine"
COMMANDS = ("command:remote:Command", "command:local:Command")

# Where each workload kind keeps its pod spec.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "kubernetes:core/v1:Pod": ("spec",),
}

RESOURCE_KEYS = ("cpu", "memory")

SECRET_NAME = re.compile(r"(?i)(passw(or)?d|secret|token|private[_-]?key|api[_-]?key|credential)")
PEM_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
MIN_SECRET_LENGTH = 8  # shorter generated values would match ordinary text by accident

# Outputs of these resources are secrets the program generated: they must not surface anywhere plain.
SECRET_GENERATORS: dict[str, tuple[str, ...]] = {
    "random:index/randomPassword:RandomPassword": ("result",),
    "tls:index/privateKey:PrivateKey": ("privateKeyPem", "privateKeyOpenssh", "privateKeyPemPkcs8"),
}
# Inputs that are meant to carry secrets (encrypted in state, never printed when logging is off).
SECRET_CARRIERS: dict[str, frozenset[str]] = {
    K8S_SECRET: frozenset({"data", "stringData"}),
    "command:remote:Command": frozenset({"connection", "stdin", "environment"}),
    "command:local:Command": frozenset({"stdin", "environment"}),
    "command:remote:CopyToRemote": frozenset({"connection"}),
}


# --- small helpers ----------------------------------------------------------------------------------


def _get(value: Any, *path: str | int) -> Any:
    """Nested lookup that returns None when any step is missing or of the wrong shape."""
    for key in path:
        if isinstance(key, int):
            if not isinstance(value, Sequence) or isinstance(value, str) or key >= len(value):
                return None
        elif not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def _display(props: Mapping[str, Any], name: str) -> str:
    """`namespace/name` of a Kubernetes object when known, else the Pulumi resource name."""
    metadata = props.get("metadata") if isinstance(props, Mapping) else None
    k8s_name = _get(metadata, "name")
    namespace = _get(metadata, "namespace")
    if isinstance(k8s_name, str):
        return f"{namespace}/{k8s_name}" if isinstance(namespace, str) else k8s_name
    return name


def image_is_pinned(image: str) -> bool:
    """True for `repo:tag` (tag not `latest`) or `repo@sha256:...`; a registry port is not a tag."""
    if "@" in image:
        return image.split("@", 1)[1].startswith("sha256:")
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return False
    tag = last.rsplit(":", 1)[1]
    return bool(tag) and tag != "latest"


def pod_containers(resource_type: str, props: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(`containers`|`initContainers`, container) pairs of a workload; [] for anything else."""
    path = POD_SPEC_PATHS.get(resource_type)
    if path is None:
        return []
    spec = _get(props, *path)
    found = []
    for field in ("initContainers", "containers"):
        for container in _get(spec, field) or []:
            if isinstance(container, Mapping):
                found.append((field, container))
    return found


# --- data safety --------------------------------------------------------------------------------------


def validate_pvc_protected(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != PVC:
        return
    if not args.opts.protect:
        report_violation(
            f"PersistentVolumeClaim {_display(args.props, args.name)} is not protected: a county's health "
            "records live on it. Register it with ResourceOptions(protect=True, retain_on_delete=True)."
        )


# A StorageClass for scratch copies only (the restore drill's), never for a county's volumes.
SCRATCH_LABEL = "cht-hosting/scratch-volumes"


def validate_storage_class_retains(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != STORAGE_CLASS:
        return
    policy = args.props.get("reclaimPolicy")
    labels = (args.props.get("metadata") or {}).get("labels") or {}
    if policy == "Delete" and labels.get(SCRATCH_LABEL) == "true":
        return  # the restore drill's throw-away copies: deleted with their claims on purpose
    if policy != "Retain":
        shown = "unset (Kubernetes defaults to Delete)" if policy is None else f"'{policy}'"
        report_violation(
            f"StorageClass {_display(args.props, args.name)} has reclaimPolicy {shown}: deleting a claim "
            "would delete its volume and the data on it. Set reclaimPolicy: Retain."
        )


# --- workloads ----------------------------------------------------------------------------------------


def validate_containers_bounded_and_pinned(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    where = _display(args.props, args.name)
    for field, container in pod_containers(args.resource_type, args.props):
        label = f"{args.resource_type.rsplit(':', 1)[-1]} {where} {field[:-1]} '{container.get('name')}'"
        resources = container.get("resources") or {}
        for kind in ("requests", "limits"):
            missing = [key for key in RESOURCE_KEYS if _get(resources, kind, key) in (None, "")]
            if missing:
                report_violation(
                    f"{label} has no {kind} for {' and '.join(missing)}: set resources.{kind}.cpu and "
                    f"resources.{kind}.memory so one county cannot starve the others on a node."
                )
        image = container.get("image")
        if not isinstance(image, str) or not image_is_pinned(image):
            report_violation(
                f"{label} image {image!r} is not pinned: use an explicit version tag (never 'latest') "
                "or a sha256 digest, so a restart cannot silently upgrade CHT."
            )


# --- secrets ------------------------------------------------------------------------------------------


def validate_no_plaintext_secrets(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Secrets by name or by shape in places that are always plain text, whatever Pulumi marks secret."""
    where = f"{args.resource_type} {_display(args.props, args.name)}"
    for field, container in pod_containers(args.resource_type, args.props):
        for env in container.get("env") or []:
            env_name = str(env.get("name", ""))
            if SECRET_NAME.search(env_name) and env.get("value") not in (None, ""):
                report_violation(
                    f"{where} {field[:-1]} '{container.get('name')}' sets env {env_name} as a literal value, "
                    "readable by anyone who can read the workload. Use valueFrom.secretKeyRef to a Secret."
                )
    if args.resource_type == CONFIG_MAP:
        for field in ("data", "binaryData"):
            for key in args.props.get(field) or {}:
                if SECRET_NAME.search(key):
                    report_violation(
                        f"ConfigMap {_display(args.props, args.name)} has key '{key}', which looks like a secret; "
                        "ConfigMaps are not confidential. Put it in a Secret."
                    )
    if args.resource_type == K8S_SECRET:
        unmarked = [
            field for field in ("data", "stringData")
            if args.props.get(field) and field not in (args.opts.additional_secret_outputs or [])
        ]
        if unmarked:
            report_violation(
                f"Secret {_display(args.props, args.name)} does not mark {', '.join(unmarked)} as secret outputs, "
                "so its values would be stored unencrypted in the Pulumi state. Create it with "
                "kubernetes.core.v1.Secret (which does) or add additional_secret_outputs."
            )
    if not args.resource_type.startswith("pulumi:providers:"):
        for path in _pem_private_keys(args.resource_type, args.props):
            report_violation(
                f"{where} has a private key in plain input '{path}'. Keep private keys in a Secret or feed them "
                "to a command through stdin (with logging off), never in commands, manifests or guestinfo."
            )


def _pem_private_keys(resource_type: str, props: Mapping[str, Any]) -> Iterator[str]:
    carriers = SECRET_CARRIERS.get(resource_type, frozenset())
    for path, text in _plain_strings(resource_type, props, carriers):
        if PEM_PRIVATE_KEY.search(text):
            yield path


def _plain_strings(resource_type: str, props: Mapping[str, Any], carriers: frozenset[str]) -> Iterator[tuple[str, str]]:
    """Every string leaf outside the secret-carrying inputs, guestinfo decoded; unknowns skipped."""
    for key in list(props):
        if key in carriers:
            continue
        try:
            value = props[key]
        except UnknownValueError:
            continue
        yield from _strings(value, key)
    if resource_type == VM:
        extra = _safe(lambda: props.get("extraConfig")) or {}
        for key in list(extra) if isinstance(extra, Mapping) else []:
            encoding = _safe(lambda k=key: extra.get(f"{k}.encoding"))
            raw = _safe(lambda k=key: extra[k])
            if isinstance(raw, str) and encoding in GUESTINFO_ENCODINGS:
                try:
                    decoded = decode_guestinfo(raw, encoding)
                except ValueError:
                    continue  # not what its encoding says: scanned as it is above
                yield f"extraConfig.{key} (decoded)", _without_host_keys(decoded)


def _without_host_keys(userdata: str) -> str:
    """cloud-init's `ssh_keys` block: the one place a private key may travel in guestinfo.

    A node's SSH host key is generated by the program so that every connection can pin it; the only way
    to install it before first boot is the node's own userdata (a secret input, redacted by the VMware
    datasource after reading). Anything else in userdata is still scanned.
    """
    try:
        document = yaml.safe_load(userdata)
    except yaml.YAMLError:
        return userdata
    if not isinstance(document, dict) or "ssh_keys" not in document:
        return userdata
    return yaml.safe_dump({k: v for k, v in document.items() if k != "ssh_keys"})


def _safe(read):
    try:
        return read()
    except UnknownValueError:
        return None


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key in list(value):
            child = _safe(lambda k=key: value[k])
            if child is not None:
                yield from _strings(child, f"{path}.{key}")
    elif isinstance(value, Sequence):
        for index in range(len(value)):
            child = _safe(lambda i=index: value[i])
            if child is not None:
                yield from _strings(child, f"{path}[{index}]")


def validate_generated_secrets_stay_secret(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """A value a secret generator produced must appear only in secret-carrying inputs of other resources."""
    secrets: set[str] = set()
    for resource in args.resources:
        for output in SECRET_GENERATORS.get(resource.resource_type, ()):
            value = _safe(lambda r=resource, o=output: r.props.get(o))
            if isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH:
                secrets.add(value.strip())
    if not secrets:
        return
    for resource in args.resources:
        if resource.resource_type in SECRET_GENERATORS or resource.resource_type.startswith("pulumi:providers:"):
            continue
        carriers = SECRET_CARRIERS.get(resource.resource_type, frozenset())
        for path, text in _plain_strings(resource.resource_type, resource.props, carriers):
            if any(secret in text for secret in secrets):
                report_violation(
                    f"{resource.resource_type} {resource.name} carries a generated secret in plain input '{path}' "
                    "(shown in previews, logs or to anyone who can read the object). Pass it through a "
                    "Kubernetes Secret, or a command's stdin/environment with logging off.",
                    resource.urn,
                )


def validate_secret_commands_log_nothing(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """A policy cannot see which inputs are secret, so any stdin/environment counts as carrying one."""
    if args.resource_type not in COMMANDS:
        return
    reasons = [field for field in ("stdin", "environment") if args.props.get(field)]
    hidden_outputs = {"stdout", "stderr"} & set(args.opts.additional_secret_outputs or [])
    if hidden_outputs:
        reasons.append(f"secret {'/'.join(sorted(hidden_outputs))}")
    logging = args.props.get("logging")
    if reasons and logging != "none":
        shown = "unset (defaults to stdoutAndStderr)" if logging is None else f"'{logging}'"
        report_violation(
            f"Command {args.name} carries a secret ({', '.join(reasons)}) but its logging is {shown}: its "
            "output would be streamed to the update log and the PR preview. Set logging=Logging.NONE."
        )


# --- cluster topology ---------------------------------------------------------------------------------


def _county_namespaces(args: StackValidationArgs) -> dict[str, tuple[str, str]]:
    """Namespace name -> (county, urn) for every namespace labelled `cht-hosting/county`."""
    found = {}
    for resource in args.resources:
        if resource.resource_type != NAMESPACE:
            continue
        county = _safe(lambda r=resource: _get(r.props, "metadata", "labels", COUNTY_LABEL))
        name = _safe(lambda r=resource: _get(r.props, "metadata", "name"))
        if county is not None and isinstance(name, str):
            found[name] = (county, resource.urn)
    return found


def _policy_types(policy: Mapping[str, Any]) -> list[str]:
    spec = policy.get("spec") or {}
    types = spec.get("policyTypes") or spec.get("policy_types")
    if types:
        return list(types)
    return ["Ingress", *(["Egress"] if spec.get("egress") else [])]  # Kubernetes' default


def validate_county_namespaces_isolated(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """Every namespace labelled `cht-hosting/county` selects all its pods for ingress and for egress."""
    covered: dict[str, set[str]] = {}
    for resource in args.resources:
        if resource.resource_type != NETWORK_POLICY:
            continue
        namespace = _safe(lambda r=resource: _get(r.props, "metadata", "namespace"))
        selector = _safe(lambda r=resource: _get(r.props, "spec", "podSelector"))
        if selector is None:
            selector = _safe(lambda r=resource: _get(r.props, "spec", "pod_selector"))
        if isinstance(namespace, str) and selector == {}:
            covered.setdefault(namespace, set()).update(_safe(lambda r=resource: _policy_types(r.props)) or [])
    for name, (county, urn) in _county_namespaces(args).items():
        missing = [t for t in ("Ingress", "Egress") if t not in covered.get(name, set())]
        if missing:
            report_violation(
                f"Namespace {name} (county {county}) has no NetworkPolicy selecting all its pods for "
                f"{' and '.join(missing).lower()}: any pod in the cluster could reach this county's CouchDB, or its "
                "pods reach the nodes and the Kubernetes API. Create its NetworkPolicies with the namespace.",
                urn,
            )


POD_SECURITY_ENFORCE = "pod-security.kubernetes.io/enforce"


def validate_county_namespaces_pod_security(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != NAMESPACE or _get(args.props, "metadata", "labels", COUNTY_LABEL) is None:
        return
    level = _get(args.props, "metadata", "labels", POD_SECURITY_ENFORCE)
    if level not in ("baseline", "restricted"):
        report_violation(
            f"Namespace {_display(args.props, args.name)} holds a county but enforces Pod Security "
            f"{level or 'nothing'}: label it {POD_SECURITY_ENFORCE}: baseline (or restricted)."
        )


def _pod_spec(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    path = POD_SPEC_PATHS.get(resource_type)
    spec = _get(props, *path) if path else None
    return spec if isinstance(spec, Mapping) else None


def validate_county_workloads_hardened(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """Workloads in county namespaces: no privilege escalation, RuntimeDefault seccomp, capabilities dropped
    (ALL, then what the image needs), no service-account token unless the pod names its account."""
    counties = _county_namespaces(args)
    for resource in args.resources:
        namespace = _safe(lambda r=resource: _get(r.props, "metadata", "namespace"))
        spec = _safe(lambda r=resource: _pod_spec(r.resource_type, r.props))
        if namespace not in counties or spec is None:
            continue
        where = f"{resource.resource_type.rsplit(':', 1)[-1]} {_display(resource.props, resource.name)}"
        problems = []
        pod_seccomp = _get(spec, "securityContext", "seccompProfile", "type")
        if spec.get("automountServiceAccountToken") is not False and not spec.get("serviceAccountName"):
            problems.append("automountServiceAccountToken: false (only a pod that calls the Kubernetes API needs it)")
        for _field, container in pod_containers(resource.resource_type, resource.props):
            name = container.get("name")
            context = container.get("securityContext") or {}
            if context.get("allowPrivilegeEscalation") is not False:
                problems.append(f"container '{name}': securityContext.allowPrivilegeEscalation: false")
            if context.get("privileged"):
                problems.append(f"container '{name}': not privileged")
            if "RuntimeDefault" not in (pod_seccomp, _get(context, "seccompProfile", "type")):
                problems.append(f"container '{name}': seccompProfile type RuntimeDefault")
            if "ALL" not in (_get(context, "capabilities", "drop") or []):
                problems.append(f"container '{name}': capabilities.drop [ALL] (add back only what the image needs)")
        if problems:
            report_violation(f"{where} in county namespace {namespace} is not hardened; set " + "; ".join(problems) + ".", resource.urn)


def validate_vm_ready_for_csi(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != VM:
        return
    problems = []
    if args.props.get("enableDiskUuid") is not True:
        problems.append("enable_disk_uuid=True (the CSI driver finds disks by UUID)")
    version = args.props.get("hardwareVersion")
    # Numbers reach policies as protobuf doubles (19.0), so any real number counts.
    if not isinstance(version, (int, float)) or isinstance(version, bool) or version < MIN_HARDWARE_VERSION:
        problems.append(f"hardware_version>={MIN_HARDWARE_VERSION} (was {version!r}; CSI needs {MIN_HARDWARE_VERSION}+)")
    if args.props.get("scsiType") != "pvscsi":
        problems.append(f"scsi_type='pvscsi' (was {args.props.get('scsiType')!r})")
    if problems:
        report_violation(f"VM {args.name} cannot host CSI volumes; set " + "; ".join(problems) + ".")


# --- the pack ---------------------------------------------------------------------------------------

POLICIES: list[Policy] = [
    ResourceValidationPolicy(
        name="pvc-protected",
        description="PersistentVolumeClaims are protected (and retained on delete: not visible to policies).",
        validate=validate_pvc_protected,
    ),
    ResourceValidationPolicy(
        name="storage-class-retains",
        description="StorageClasses reclaim with Retain, so deleting a claim never deletes its data.",
        validate=validate_storage_class_retains,
    ),
    ResourceValidationPolicy(
        name="containers-bounded-and-pinned",
        description="Every container has cpu/memory requests and limits and a pinned image (never latest).",
        validate=validate_containers_bounded_and_pinned,
    ),
    ResourceValidationPolicy(
        name="no-plaintext-secrets",
        description="No secret in a plain input: env literals, ConfigMaps, unmarked Secrets, private keys.",
        validate=validate_no_plaintext_secrets,
    ),
    StackValidationPolicy(
        name="generated-secrets-stay-secret",
        description="Generated passwords and keys appear only in secret-carrying inputs.",
        validate=validate_generated_secrets_stay_secret,
    ),
    ResourceValidationPolicy(
        name="secret-commands-log-nothing",
        description="Commands that carry a secret (stdin, environment, secret output) have logging none.",
        validate=validate_secret_commands_log_nothing,
    ),
    StackValidationPolicy(
        name="county-namespaces-isolated",
        description=f"Every namespace labelled {COUNTY_LABEL} has NetworkPolicies selecting all its pods for "
        "ingress and egress.",
        validate=validate_county_namespaces_isolated,
    ),
    ResourceValidationPolicy(
        name="county-namespaces-pod-security",
        description=f"Every namespace labelled {COUNTY_LABEL} enforces Pod Security baseline or restricted.",
        validate=validate_county_namespaces_pod_security,
    ),
    StackValidationPolicy(
        name="county-workloads-hardened",
        description="County workloads: no privilege escalation, RuntimeDefault seccomp, capabilities dropped, "
        "no service-account token unless the pod names its account.",
        validate=validate_county_workloads_hardened,
    ),
    ResourceValidationPolicy(
        name="vm-ready-for-csi",
        description="Node VMs have disk UUIDs, hardware version >= 15 and a PVSCSI controller.",
        validate=validate_vm_ready_for_csi,
    ),
]

ENFORCEMENT_LEVEL = EnforcementLevel.MANDATORY
