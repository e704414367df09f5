"""VsphereCpi on the mock engine: the chart release, its credentials Secret, TLS modes and ordering."""

from __future__ import annotations

import kubernetes_validate

from config import names
from tests.storage_stack import PASSWORD, build, provider_urn, stack_config

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_release_is_the_official_chart_at_the_pinned_version(prod_storage):
    release = prod_storage.named("vsphere-cpi-release")
    assert release.type == "kubernetes:helm.sh/v3:Release"
    assert release.inputs["chart"] == "vsphere-cpi"
    assert release.inputs["version"] == "1.36.0"  # Pulumi.prod.yaml cpi.version, k3s v1.36
    assert release.inputs["repositoryOpts"] == {"repo": "https://kubernetes.github.io/cloud-provider-vsphere"}
    assert release.inputs["namespace"] == "kube-system"
    assert release.inputs["name"] == "vsphere-cpi"
    assert release.inputs["atomic"] is True


def test_credentials_only_in_a_secret_the_chart_is_pointed_at(prod_storage):
    release = prod_storage.named("vsphere-cpi-release")
    secret = prod_storage.named("vsphere-cpi-credentials")
    assert release.inputs["values"]["config"]["secret"] == {"create": False, "name": "vsphere-cloud-secret"}
    assert secret.inputs["metadata"] == {"name": "vsphere-cloud-secret", "namespace": "kube-system"}
    assert secret.inputs["stringData"] == {
        "vcenter.moh.example.org.username": "k8s-cns@vsphere.local",  # vsphere.storageUser
        "vcenter.moh.example.org.password": PASSWORD,
    }
    assert "stringData" in secret.secret_inputs
    assert PASSWORD not in repr(release.inputs)
    assert secret.urn in release.depends_on
    kubernetes_validate.validate({k: v for k, v in secret.inputs.items()}, "1.36", strict=True)


def test_certificate_verification_by_thumbprint(prod_storage):
    config = prod_storage.named("vsphere-cpi-release").inputs["values"]["config"]
    assert config["thumbprint"] == "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01"


def test_ca_certificate_is_mounted_from_a_configmap():
    evaluation = build(stack_config(vsphere={"thumbprint": None, "caCertificate": PEM}))
    ca = evaluation.named("vsphere-cpi-ca")
    assert ca.inputs["data"] == {"ca.pem": PEM}
    kubernetes_validate.validate(ca.inputs, "1.36", strict=True)
    release = evaluation.named("vsphere-cpi-release")
    assert release.inputs["values"]["config"]["caFile"] == "/etc/vsphere-ca/ca.pem"
    assert ca.urn in release.depends_on


def test_insecure_is_an_explicit_opt_in():
    evaluation = build(stack_config(vsphere={"thumbprint": None, "insecure": True}))
    config = evaluation.named("vsphere-cpi-release").inputs["values"]["config"]
    assert config["thumbprint"] == "" and config["caFile"] == ""


def test_cpi_tolerates_the_k3s_server_taint(prod_storage):
    tolerations = prod_storage.named("vsphere-cpi-release").inputs["values"]["daemonset"]["tolerations"]
    assert names.SERVER_TAINT_TOLERATION in tolerations


def test_everything_is_on_the_clusters_provider_under_the_component(prod_storage):
    component = prod_storage.named("vsphere-cpi")
    assert component.type == "cht-hosting:storage:VsphereCpi"
    children = prod_storage.children(component)
    assert {c.name for c in children} == {"vsphere-cpi-credentials", "vsphere-cpi-release"}
    assert all(c.provider.startswith(provider_urn(prod_storage) + "::") for c in children)


def test_storage_password_falls_back_to_the_pulumi_user_without_a_storage_user():
    evaluation = build(stack_config(vsphere={"storageUser": None, "manageCnsRoles": False}))
    data = evaluation.named("vsphere-cpi-credentials").inputs["stringData"]
    assert data["vcenter.moh.example.org.username"] == "pulumi@vsphere.local"
