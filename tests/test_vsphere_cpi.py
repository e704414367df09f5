"""VsphereCpi on the mock engine: the chart release, its credentials Secret, TLS modes and ordering."""

from __future__ import annotations

import kubernetes_validate
import yaml

from config import names
from tests.storage_stack import PASSWORD, build, provider_urn, stack_config

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_release_is_the_official_chart_at_the_pinned_version(national_storage):
    release = national_storage.named("vsphere-cpi-release")
    assert release.type == "kubernetes:helm.sh/v3:Release"
    assert release.inputs["chart"] == "vsphere-cpi"
    assert release.inputs["version"] == "1.35.1"  # the national test stack: cpi.version for k3s v1.35
    assert release.inputs["repositoryOpts"] == {"repo": "https://kubernetes.github.io/cloud-provider-vsphere"}
    assert release.inputs["namespace"] == "kube-system"
    assert release.inputs["name"] == "vsphere-cpi"
    assert release.inputs["atomic"] is True


def test_credentials_only_in_a_secret_the_chart_is_pointed_at(national_storage):
    release = national_storage.named("vsphere-cpi-release")
    secret = national_storage.named("vsphere-cpi-credentials")
    assert release.inputs["values"]["config"] == {"enabled": False, "secret": {"create": False}}
    assert secret.inputs["metadata"] == {"name": "vsphere-cloud-secret", "namespace": "kube-system"}
    assert secret.inputs["stringData"] == {
        "vcenter.moh.example.org.username": "k8s-cns@vsphere.local",  # vsphere.storageUser
        "vcenter.moh.example.org.password": PASSWORD,
    }
    assert "stringData" in secret.secret_inputs
    assert PASSWORD not in repr(release.inputs)
    assert secret.urn in release.depends_on
    kubernetes_validate.validate({k: v for k, v in secret.inputs.items()}, "1.35", strict=True)


def cpi_conf(evaluation) -> dict:
    return yaml.safe_load(evaluation.named("vsphere-cpi-config").inputs["data"]["vsphere.conf"])


def test_certificate_verification_by_thumbprint(national_storage):
    assert cpi_conf(national_storage)["global"]["thumbprint"] == "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01"


def test_with_only_a_ca_bundle_the_cpi_reads_caFile_from_the_mounted_configmap():
    evaluation = build(stack_config(vsphere={"thumbprint": None, "caCertificate": PEM}))
    config_map = evaluation.named("vsphere-cpi-config")
    assert config_map.inputs["metadata"] == {"name": "cloud-config", "namespace": "kube-system"}
    assert config_map.inputs["data"]["vsphere-ca.pem"] == PEM
    conf = cpi_conf(evaluation)
    assert conf["global"]["caFile"] == "/etc/cloud/vsphere-ca.pem"
    assert "thumbprint" not in conf["global"] and "insecureFlag" not in conf["global"]
    kubernetes_validate.validate(config_map.inputs, "1.35", strict=True)
    release = evaluation.named("vsphere-cpi-release")
    assert release.inputs["values"]["config"]["enabled"] is False  # the chart mounts `cloud-config`
    assert config_map.urn in release.depends_on


def test_the_password_is_in_the_secret_never_in_the_configmap(national_storage):
    config_map = national_storage.named("vsphere-cpi-config")
    assert PASSWORD not in repr(config_map.inputs)
    assert cpi_conf(national_storage)["global"]["secretName"] == "vsphere-cloud-secret"


def test_insecure_is_an_explicit_opt_in():
    evaluation = build(stack_config(vsphere={"thumbprint": None, "insecure": True}))
    assert cpi_conf(evaluation)["global"]["insecureFlag"] is True


def test_cpi_tolerates_the_k3s_server_taint(national_storage):
    tolerations = national_storage.named("vsphere-cpi-release").inputs["values"]["daemonset"]["tolerations"]
    assert names.SERVER_TAINT_TOLERATION in tolerations


def test_everything_is_on_the_clusters_provider_under_the_component(national_storage):
    component = national_storage.named("vsphere-cpi")
    assert component.type == "cht-hosting:storage:VsphereCpi"
    children = national_storage.children(component)
    assert {c.name for c in children} == {"vsphere-cpi-credentials", "vsphere-cpi-config", "vsphere-cpi-release"}
    assert all(c.provider.startswith(provider_urn(national_storage) + "::") for c in children)


def test_storage_password_falls_back_to_the_pulumi_user_without_a_storage_user():
    evaluation = build(stack_config(vsphere={"storageUser": None, "manageCnsRoles": False}))
    data = evaluation.named("vsphere-cpi-credentials").inputs["stringData"]
    assert data["vcenter.moh.example.org.username"] == "pulumi@vsphere.local"
