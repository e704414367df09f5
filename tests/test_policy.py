"""The policy pack's rules, run without the Pulumi CLI.

Each rule gets a compliant resource (no violation) and deliberately broken ones (caught, with a message
that says what to fix). Props are what a policy receives: raw engine inputs with camelCase keys. The last
tests register real SDK resources on the mock engine and feed the recorded registrations to the pack, so
the keys and values the rules look for are the ones the SDKs actually send.
Never construct PolicyPack here: its constructor starts a gRPC server and never returns.
"""

from __future__ import annotations

import base64
import gzip
from pathlib import Path
from types import SimpleNamespace

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s
import pulumi_random as random
import pulumi_vsphere as vsphere
import pytest
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from config.names import COUNTY_LABEL
from offline import fakes
from offline.engine import Evaluation, record
from policy import rules

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
PEM = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"


def options(protect: bool = False, secret_outputs: tuple[str, ...] = ()) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), list(secret_outputs), None)


def resource(type_: str, props: dict, name: str = "r", **opts) -> ResourceValidationArgs:
    urn = f"urn:pulumi:test::cht-hosting::{type_}::{name}"
    return ResourceValidationArgs(type_, props, urn, name, options(**opts), None)


def stack(*resources: tuple[str, str, dict]) -> StackValidationArgs:
    return StackValidationArgs(
        [
            PolicyResource(t, props, f"urn:pulumi:test::cht-hosting::{t}::{n}", n, options(), None, None, [], {})
            for t, n, props in resources
        ]
    )


def violations(validate, args) -> list[str]:
    found: list[str] = []
    validate(args, lambda message, urn=None: found.append(message))
    return found


def meta(name: str, namespace: str | None = "nairobi", **extra) -> dict:
    return {"name": name, **({"namespace": namespace} if namespace else {}), **extra}


def container(**overrides) -> dict:
    good = {
        "name": "api",
        "image": "medicmobile/cht-api:4.22.0",
        "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
    }
    return {**good, **overrides}


def workload(*containers: dict, kind: str = DEPLOYMENT) -> dict:
    pod = {"spec": {"containers": list(containers)}}
    spec = {"jobTemplate": {"spec": {"template": pod}}} if kind.endswith("CronJob") else {"template": pod}
    return {"metadata": meta("api"), "spec": spec}


def good_vm(**overrides) -> dict:
    return {"enableDiskUuid": True, "hardwareVersion": 19, "scsiType": "pvscsi", "numCpus": 4, **overrides}


# --- PVCs and StorageClasses ------------------------------------------------------------------------


def test_protected_pvc_passes_and_unprotected_is_caught():
    pvc = {"metadata": meta("couchdb-data"), "spec": {"resources": {"requests": {"storage": "100Gi"}}}}
    assert violations(rules.validate_pvc_protected, resource(rules.PVC, pvc, protect=True)) == []
    [message] = violations(rules.validate_pvc_protected, resource(rules.PVC, pvc, protect=False))
    assert "nairobi/couchdb-data is not protected" in message and "protect=True" in message


@pytest.mark.parametrize("policy, shown", [("Retain", None), ("Delete", "'Delete'"), (None, "unset")])
def test_storage_class_must_retain(policy, shown):
    props = {"metadata": {"name": "cht-retain"}, "provisioner": "csi.vsphere.vmware.com"}
    if policy:
        props["reclaimPolicy"] = policy
    found = violations(rules.validate_storage_class_retains, resource(rules.STORAGE_CLASS, props))
    if shown is None:
        assert found == []
    else:
        assert len(found) == 1 and shown in found[0] and "Set reclaimPolicy: Retain" in found[0]


# --- containers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image, pinned",
    [
        ("medicmobile/cht-api:4.22.0", True),
        ("registry.moh.example.org:5000/medicmobile/cht-api:4.22.0", True),
        ("couchdb@sha256:" + "a" * 64, True),
        ("medicmobile/cht-api:latest", False),
        ("medicmobile/cht-api", False),
        ("registry.moh.example.org:5000/medicmobile/cht-api", False),
        ("couchdb@md5:abc", False),
        ("couchdb:", False),
    ],
)
def test_image_is_pinned(image, pinned):
    assert rules.image_is_pinned(image) is pinned


@pytest.mark.parametrize("kind", list(rules.POD_SPEC_PATHS))
def test_every_workload_kind_is_checked(kind):
    bounded = workload(container(), kind=kind) if kind != "kubernetes:core/v1:Pod" else {"spec": {"containers": [container()]}}
    assert violations(rules.validate_containers_bounded_and_pinned, resource(kind, bounded)) == []
    broken = container(image="medicmobile/cht-api:latest", resources={})
    unbounded = workload(broken, kind=kind) if kind != "kubernetes:core/v1:Pod" else {"spec": {"containers": [broken]}}
    found = violations(rules.validate_containers_bounded_and_pinned, resource(kind, unbounded))
    assert len(found) == 3, found  # no requests, no limits, latest


def test_missing_limit_and_init_container_are_reported_precisely():
    partial = container(resources={"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "1Gi"}})
    init = container(name="wait-for-couchdb", image="busybox")
    props = workload(partial)
    props["spec"]["template"]["spec"]["initContainers"] = [init]
    found = violations(rules.validate_containers_bounded_and_pinned, resource(DEPLOYMENT, props))
    assert found == [
        "Deployment nairobi/api initContainer 'wait-for-couchdb' image 'busybox' is not pinned: use an explicit "
        "version tag (never 'latest') or a sha256 digest, so a restart cannot silently upgrade CHT.",
        "Deployment nairobi/api container 'api' has no limits for cpu: set resources.limits.cpu and "
        "resources.limits.memory so one county cannot starve the others on a node.",
    ]


def test_non_workloads_are_ignored_by_the_container_rule():
    assert violations(rules.validate_containers_bounded_and_pinned, resource(rules.CONFIG_MAP, {"data": {}})) == []


# --- secrets in plain inputs ------------------------------------------------------------------------


def test_secret_env_must_come_from_a_secret_ref():
    from_secret = {"name": "COUCHDB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "couchdb", "key": "password"}}}
    plain = [{"name": "COUCHDB_USER", "value": "admin"}, from_secret]
    args = resource(DEPLOYMENT, workload(container(env=plain)))
    assert violations(rules.validate_no_plaintext_secrets, args) == []
    leaked = [*plain, {"name": "COUCHDB_SECRET", "value": "s3cr3t-value"}]
    [message] = violations(rules.validate_no_plaintext_secrets, resource(DEPLOYMENT, workload(container(env=leaked))))
    assert "env COUCHDB_SECRET as a literal value" in message and "secretKeyRef" in message


def test_config_map_with_a_secret_looking_key_is_caught():
    ok = resource(rules.CONFIG_MAP, {"metadata": meta("api"), "data": {"COUCHDB_USER": "admin"}})
    assert violations(rules.validate_no_plaintext_secrets, ok) == []
    bad = resource(rules.CONFIG_MAP, {"metadata": meta("api"), "data": {"couchdb-password": "x"}})
    [message] = violations(rules.validate_no_plaintext_secrets, bad)
    assert "key 'couchdb-password'" in message and "Put it in a Secret" in message


def test_kubernetes_secret_must_mark_its_data_secret():
    props = {"metadata": meta("couchdb"), "stringData": {"password": "x"}}
    marked = resource(rules.K8S_SECRET, props, secret_outputs=("data", "stringData"))
    assert violations(rules.validate_no_plaintext_secrets, marked) == []
    [message] = violations(rules.validate_no_plaintext_secrets, resource(rules.K8S_SECRET, props))
    assert "does not mark stringData as secret outputs" in message


def test_private_key_in_a_command_line_or_guestinfo_is_caught_but_not_in_the_connection():
    connection = {"host": "10.0.0.5", "user": "cht", "privateKey": PEM}
    ok = resource("command:remote:Command", {"connection": connection, "create": "k3s --version", "stdin": PEM})
    assert violations(rules.validate_no_plaintext_secrets, ok) == []
    on_argv = resource("command:remote:Command", {"connection": connection, "create": f"echo '{PEM}' > key"})
    [message] = violations(rules.validate_no_plaintext_secrets, on_argv)
    assert "private key in plain input 'create'" in message
    userdata = base64.b64encode(gzip.compress(f"write_files:\n- content: |\n    {PEM}".encode())).decode()
    extra = {"guestinfo.userdata": userdata, "guestinfo.userdata.encoding": "gzip+base64"}
    found = violations(rules.validate_no_plaintext_secrets, resource(rules.VM, good_vm(extraConfig=extra)))
    assert found and "'extraConfig.guestinfo.userdata (decoded)'" in found[0]


def test_a_node_host_key_may_travel_only_in_its_own_cloud_init_ssh_keys():
    host_key = "#cloud-config\nssh_keys:\n  ed25519_private: |\n    " + PEM.replace("\n", "\n    ") + "\n"
    extra = {"guestinfo.userdata": base64.b64encode(host_key.encode()).decode(), "guestinfo.userdata.encoding": "base64"}
    assert violations(rules.validate_no_plaintext_secrets, resource(rules.VM, good_vm(extraConfig=extra))) == []
    elsewhere = host_key + "runcmd:\n- echo '" + PEM.replace("\n", " ") + "'\n"
    extra = {"guestinfo.userdata": base64.b64encode(elsewhere.encode()).decode(), "guestinfo.userdata.encoding": "base64"}
    found = violations(rules.validate_no_plaintext_secrets, resource(rules.VM, good_vm(extraConfig=extra)))
    assert found and "'extraConfig.guestinfo.userdata (decoded)'" in found[0]


def test_generated_secret_may_only_travel_in_secret_carriers():
    password = "pw-Zq8rT2mN7vXc4LbY"
    generator = ("random:index/randomPassword:RandomPassword", "couchdb-password", {"length": 20, "result": password})
    in_secret = (rules.K8S_SECRET, "couchdb", {"metadata": meta("couchdb"), "stringData": {"password": password}})
    in_stdin = ("command:remote:Command", "join", {"create": "k3s-join.sh", "stdin": password, "logging": "none"})
    assert violations(rules.validate_generated_secrets_stay_secret, stack(generator, in_secret, in_stdin)) == []

    on_argv = ("command:remote:Command", "join2", {"create": f"K3S_TOKEN={password} k3s-join.sh"})
    in_annotation = (DEPLOYMENT, "api", {"metadata": meta("api", annotations={"checksum": f"x{password}"})})
    found = violations(rules.validate_generated_secrets_stay_secret, stack(generator, in_secret, on_argv, in_annotation))
    assert len(found) == 2
    assert "command:remote:Command join2 carries a generated secret in plain input 'create'" in found[0]
    assert "'metadata.annotations.checksum'" in found[1]


def test_generated_secret_scan_skips_unknown_values():
    """During preview a new password is unknown; the SDK proxies raise on access, the scan must not."""
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

    generator = unknown_checking_proxy({"length": 20, "result": UNKNOWN_STRING_VALUE})
    cm = unknown_checking_proxy({"data": {"url": UNKNOWN_STRING_VALUE, "x": "pw-Zq8rT2mN7vXc4LbY"}})
    args = stack(("random:index/randomPassword:RandomPassword", "p", generator), (rules.CONFIG_MAP, "cm", cm))
    assert violations(rules.validate_generated_secrets_stay_secret, args) == []


# --- commands ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "props, secret_outputs, caught",
    [
        ({"create": "k3s --version"}, (), False),  # carries nothing: default logging is fine
        ({"create": "join.sh", "stdin": "token", "logging": "none"}, (), False),  # carries one, logs nothing
        ({"create": "join.sh", "stdin": "token"}, (), True),
        ({"create": "join.sh", "environment": {"K3S_TOKEN": "t"}, "logging": "stdout"}, (), True),
        ({"create": "cat /etc/rancher/k3s/k3s.yaml"}, ("stdout",), True),
    ],
)
def test_commands_that_carry_a_secret_must_log_nothing(props, secret_outputs, caught):
    for type_ in rules.COMMANDS:
        found = violations(rules.validate_secret_commands_log_nothing, resource(type_, props, secret_outputs=secret_outputs))
        assert bool(found) is caught, found
        if caught:
            assert "Set logging=Logging.NONE" in found[0]


# --- namespaces and VMs -----------------------------------------------------------------------------


def _namespace(name: str, county: str | None) -> tuple[str, str, dict]:
    labels = {COUNTY_LABEL: county} if county else {}
    return (rules.NAMESPACE, name, {"metadata": {"name": name, "labels": labels}})


def _netpol(namespace: str, name: str, *types: str, selector: dict | None = None) -> tuple[str, str, dict]:
    spec = {"podSelector": {} if selector is None else selector, "policyTypes": list(types)}
    return (rules.NETWORK_POLICY, f"{namespace}-{name}", {"metadata": meta(name, namespace), "spec": spec})


def test_every_county_namespace_needs_policies_for_all_its_pods_in_and_out():
    both = [_netpol("nairobi", "in", "Ingress"), _netpol("nairobi", "out", "Egress")]
    args = stack(_namespace("nairobi", "nairobi"), _namespace("kube-system", None), *both)
    assert violations(rules.validate_county_namespaces_isolated, args) == []
    found = violations(
        rules.validate_county_namespaces_isolated,
        stack(
            _namespace("nairobi", "nairobi"), _namespace("mombasa", "mombasa"), _namespace("kwale", "kwale"),
            _namespace("tools", None), *both, _netpol("kwale", "in", "Ingress"),
            _netpol("kwale", "api-out", "Egress", selector={"matchLabels": {"cht.service": "api"}}),
        ),
    )
    assert found == [
        "Namespace mombasa (county mombasa) has no NetworkPolicy selecting all its pods for ingress and egress: any "
        "pod in the cluster could reach this county's CouchDB, or its pods reach the nodes and the Kubernetes API. "
        "Create its NetworkPolicies with the namespace.",
        "Namespace kwale (county kwale) has no NetworkPolicy selecting all its pods for egress: any pod in the "
        "cluster could reach this county's CouchDB, or its pods reach the nodes and the Kubernetes API. Create its "
        "NetworkPolicies with the namespace.",
    ]


def test_county_namespace_must_enforce_pod_security():
    def ns(labels):
        return resource(rules.NAMESPACE, {"metadata": {"name": "kwale", "labels": labels}})

    county = {COUNTY_LABEL: "kwale"}
    assert violations(rules.validate_county_namespaces_pod_security, ns({**county, rules.POD_SECURITY_ENFORCE: "baseline"})) == []
    assert violations(rules.validate_county_namespaces_pod_security, ns({})) == []  # not a county
    assert violations(rules.validate_county_namespaces_pod_security, ns({**county, rules.POD_SECURITY_ENFORCE: "privileged"})) == [
        "Namespace kwale holds a county but enforces Pod Security privileged: label it "
        "pod-security.kubernetes.io/enforce: baseline (or restricted)."
    ]


HARDENED = {
    "allowPrivilegeEscalation": False,
    "seccompProfile": {"type": "RuntimeDefault"},
    "capabilities": {"drop": ["ALL"], "add": ["CHOWN"]},
}


def test_county_workloads_must_be_hardened():
    good = workload(container(securityContext=HARDENED))
    good["spec"]["template"]["spec"]["automountServiceAccountToken"] = False
    bad = workload(container(securityContext={"allowPrivilegeEscalation": True, "capabilities": {"drop": ["NET_RAW"]}}))
    elsewhere = workload(container())
    args = stack(
        _namespace("nairobi", "nairobi"),
        (DEPLOYMENT, "nairobi-api", {**good, "metadata": meta("cht-api")}),
        (DEPLOYMENT, "nairobi-sentinel", {**bad, "metadata": meta("cht-sentinel")}),
        (DEPLOYMENT, "tools-x", {**elsewhere, "metadata": meta("x", "tools")}),
    )
    assert violations(rules.validate_county_workloads_hardened, args) == [
        "Deployment nairobi/cht-sentinel in county namespace nairobi is not hardened; set automountServiceAccountToken: "
        "false (only a pod that calls the Kubernetes API needs it); container 'api': "
        "securityContext.allowPrivilegeEscalation: false; container 'api': seccompProfile type RuntimeDefault; "
        "container 'api': capabilities.drop [ALL] (add back only what the image needs)."
    ]


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({}, None),
        ({"enableDiskUuid": False}, "enable_disk_uuid=True"),
        ({"hardwareVersion": 14}, "hardware_version>=15 (was 14"),
        ({"hardwareVersion": None}, "hardware_version>=15 (was None"),
        ({"scsiType": "lsilogic"}, "scsi_type='pvscsi' (was 'lsilogic')"),
    ],
)
def test_vm_must_be_ready_for_csi(overrides, expected):
    found = violations(rules.validate_vm_ready_for_csi, resource(rules.VM, good_vm(**overrides), name="cp-1"))
    if expected is None:
        assert found == []
    else:
        assert len(found) == 1 and found[0].startswith("VM cp-1 cannot host CSI volumes") and expected in found[0]


# --- the pack as a whole ----------------------------------------------------------------------------

BROKEN: dict[str, ResourceValidationArgs | StackValidationArgs] = {
    "pvc-protected": resource(rules.PVC, {"metadata": meta("data")}),
    "storage-class-retains": resource(rules.STORAGE_CLASS, {"reclaimPolicy": "Delete"}),
    "containers-bounded-and-pinned": resource(DEPLOYMENT, workload(container(image="cht-api:latest"))),
    "no-plaintext-secrets": resource(rules.CONFIG_MAP, {"data": {"api-token": "x"}}),
    "generated-secrets-stay-secret": stack(
        ("random:index/randomPassword:RandomPassword", "pw", {"result": "pw-Zq8rT2mN7vXc4LbY"}),
        (rules.CONFIG_MAP, "cm", {"data": {"url": "http://admin:pw-Zq8rT2mN7vXc4LbY@couchdb"}}),
    ),
    "secret-commands-log-nothing": resource("command:remote:Command", {"create": "x", "stdin": "t"}),
    "county-namespaces-isolated": stack(_namespace("nairobi", "nairobi")),
    "county-namespaces-pod-security": resource(rules.NAMESPACE, {"metadata": {"name": "x", "labels": {COUNTY_LABEL: "x"}}}),
    "county-workloads-hardened": stack(
        _namespace("nairobi", "nairobi"), (DEPLOYMENT, "nairobi-api", {**workload(container()), "metadata": meta("cht-api")})
    ),
    "vm-ready-for-csi": resource(rules.VM, good_vm(scsiType="lsilogic")),
}


def test_the_pack_has_one_broken_example_per_rule_and_all_are_mandatory():
    assert sorted(p.name for p in rules.POLICIES) == sorted(BROKEN)
    assert rules.ENFORCEMENT_LEVEL.value == "mandatory"


@pytest.mark.parametrize("policy", rules.POLICIES, ids=lambda p: p.name)
def test_each_policy_object_catches_its_broken_resource(policy):
    """Through the SDK's Policy.validate (what the analyzer calls), not just the bare function."""
    found: list[str] = []
    result = policy.validate(BROKEN[policy.name], lambda message, urn=None: found.append(message))
    assert result is None and len(found) >= 1


# --- against what the SDKs really register ----------------------------------------------------------


def run_pack(evaluation: Evaluation) -> list[tuple[str, str]]:
    """Run every policy over recorded registrations, as the engine would hand them over (secrets unwrapped)."""
    views = []
    for r in evaluation.registrations:
        props = dict(r.inputs)
        make = fakes.RESOURCE_OUTPUTS.get(r.type)
        if make:  # stack policies see outputs: add what the mocks answered
            props.update(make(SimpleNamespace(name=r.name, inputs=r.inputs, typ=r.type)))
        opts = PolicyResourceOptions(
            r.protect, list(r.ignore_changes), r.delete_before_replace, [], PolicyCustomTimeouts(0, 0, 0),
            list(r.additional_secret_outputs), r.parent or None,
        )
        views.append((r, props, opts))
    found: list[tuple[str, str]] = []
    stack_args = StackValidationArgs(
        [PolicyResource(r.type, p, r.urn, r.name, o, None, None, [], {}) for r, p, o in views]
    )
    for policy in rules.POLICIES:
        def report(message, urn=None, name=policy.name):
            found.append((name, message))
        if isinstance(policy, StackValidationPolicy):
            policy.validate(stack_args, report)
        elif isinstance(policy, ResourceValidationPolicy):
            for r, props, opts in views:
                policy.validate(ResourceValidationArgs(r.type, props, r.urn, r.name, opts, None), report)
    return found


def _cluster(compliant: bool) -> None:
    """A miniature of the program: what the components register, either by the rules or broken."""
    token = random.RandomPassword("k3s-token", length=32, special=False)
    labels = {COUNTY_LABEL: "nairobi", **({rules.POD_SECURITY_ENFORCE: "baseline"} if compliant else {})}
    namespace = k8s.core.v1.Namespace("nairobi", metadata={"name": "nairobi", "labels": labels})
    if compliant:
        k8s.networking.v1.NetworkPolicy(
            "nairobi-default-deny",
            metadata={"name": "default-deny", "namespace": "nairobi"},
            spec={"pod_selector": {}, "policy_types": ["Ingress", "Egress"]},
            opts=pulumi.ResourceOptions(depends_on=[namespace]),
        )
    k8s.storage.v1.StorageClass(
        "cht", metadata={"name": "cht"}, provisioner="csi.vsphere.vmware.com",
        reclaim_policy="Retain" if compliant else "Delete",
    )
    k8s.core.v1.PersistentVolumeClaim(
        "nairobi-couchdb-data",
        metadata={"name": "couchdb-data", "namespace": "nairobi"},
        spec={"access_modes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "100Gi"}}},
        opts=pulumi.ResourceOptions(protect=compliant, retain_on_delete=compliant),
    )
    k8s.core.v1.Secret("nairobi-couchdb", metadata={"name": "couchdb", "namespace": "nairobi"},
                       string_data={"password": token.result})
    k8s.apps.v1.StatefulSet(
        "nairobi-couchdb",
        metadata={"name": "couchdb", "namespace": "nairobi"},
        spec={
            "service_name": "couchdb",
            "selector": {"match_labels": {"app": "couchdb"}},
            "template": {
                "metadata": {"labels": {"app": "couchdb"}},
                "spec": {"automount_service_account_token": not compliant, "containers": [{
                    "name": "couchdb",
                    "security_context": {
                        "allow_privilege_escalation": not compliant,
                        "seccomp_profile": {"type": "RuntimeDefault"},
                        "capabilities": {"drop": ["ALL"] if compliant else ["NET_RAW"]},
                    },
                    "image": "couchdb:3.4.2" if compliant else "couchdb",
                    "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
                    "env": [{"name": "COUCHDB_PASSWORD", "value_from": {"secret_key_ref": {"name": "couchdb", "key": "password"}}}]
                    if compliant else [{"name": "COUCHDB_PASSWORD", "value": token.result}],
                }]},
            },
        },
    )
    vsphere.VirtualMachine(
        "cp-1", resource_pool_id="pool", num_cpus=4, memory=8192,
        enable_disk_uuid=compliant, hardware_version=19 if compliant else 13, scsi_type="pvscsi",
    )
    command.remote.Command(
        "cp-1-join",
        connection={"host": "10.0.0.5", "user": "cht", "private_key": PEM},
        create="k3s-join.sh" if compliant else token.result.apply(lambda t: f"K3S_TOKEN={t} k3s-join.sh"),
        stdin=token.result,
        logging=command.remote.Logging.NONE if compliant else None,
    )


def test_a_compliant_miniature_of_the_program_passes_the_pack():
    evaluation = record(lambda: _cluster(compliant=True))
    assert run_pack(evaluation) == []
    # The pack cannot see retain_on_delete (not in the analyzer protocol): the offline record can.
    assert all(r.retain_on_delete for r in evaluation.of_type(rules.PVC))


def test_a_broken_miniature_is_caught_by_every_rule_that_applies():
    caught = {name for name, _ in run_pack(record(lambda: _cluster(compliant=False)))}
    assert caught == {
        "pvc-protected", "storage-class-retains", "containers-bounded-and-pinned", "no-plaintext-secrets",
        "generated-secrets-stay-secret", "county-namespaces-isolated", "vm-ready-for-csi",
        "secret-commands-log-nothing", "county-namespaces-pod-security", "county-workloads-hardened",
    }


def test_the_national_stack_passes_the_pack(national):
    assert run_pack(national) == []
    assert all(r.retain_on_delete for r in national.of_type(rules.PVC)), "every PVC must be retain_on_delete"


def test_the_pack_entry_point_wires_every_rule(monkeypatch):
    """Runs policy/__main__.py with PolicyPack replaced by a recorder (the real one never returns)."""
    import runpy

    import pulumi_policy

    made: list[dict] = []
    monkeypatch.setattr(pulumi_policy, "PolicyPack", lambda **kwargs: made.append(kwargs))
    runpy.run_path(str(Path(rules.__file__).with_name("__main__.py")), run_name="__main__")
    [pack] = made
    assert pack["name"] == "cht-hosting-production"
    assert pack["enforcement_level"] is rules.ENFORCEMENT_LEVEL
    assert [p.name for p in pack["policies"]] == [p.name for p in rules.POLICIES]
