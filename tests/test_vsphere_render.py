"""The pure renderers behind the CPI, CSI and StorageClass: conf files parsed back, values, manifest fixes."""

from __future__ import annotations

import copy
import re

import kubernetes_validate
import pytest
import yaml

from components.storage import render
from config import names

ACCESS = render.VcenterAccess(
    server="vcenter.moh.example.org", datacenter="MOH-DC1", user="k8s-cns@vsphere.local", thumbprint="AB:CD:EF"
)
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
K8S = "1.35"


def parse_gcfg(text: str) -> dict[str, dict[str, str]]:
    """A strict reader of the gcfg subset we write: every value double-quoted, escapes \\\\ \\" \\n \\t."""
    sections: dict[str, dict[str, str]] = {}
    current = None
    escapes = {"\\": "\\", '"': '"', "n": "\n", "t": "\t"}
    for line in text.splitlines():
        if not line.strip():
            continue
        header = re.fullmatch(r'\[(\w+)(?: "((?:[^"\\]|\\.)*)")?\]', line)
        if header:
            name = header.group(1) + (f" {header.group(2)}" if header.group(2) is not None else "")
            current = sections.setdefault(name, {})
            continue
        entry = re.fullmatch(r'([\w-]+) = "((?:[^"\\]|\\.)*)"', line)
        assert entry and current is not None, f"not gcfg: {line!r}"
        current[entry.group(1)] = re.sub(r"\\(.)", lambda m: escapes[m.group(1)], entry.group(2))
    return sections


# --- cluster id --------------------------------------------------------------------------------------------


def test_cluster_id_is_project_and_stack():
    assert render.cluster_id("cht-hosting", "prod") == "cht-hosting-prod"


def test_cluster_id_is_at_most_64_characters_stable_and_distinct():
    long_a, long_b = "county-" + "a" * 80, "county-" + "a" * 79 + "b"
    a, b = render.cluster_id("cht-hosting", long_a), render.cluster_id("cht-hosting", long_b)
    assert len(a) <= 64 and len(b) <= 64
    assert a == render.cluster_id("cht-hosting", long_a)
    assert a != b
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", a)


def test_cluster_id_replaces_characters_cns_does_not_take():
    assert render.cluster_id("cht hosting", "org/prod") == "cht-hosting-org-prod"


# --- csi-vsphere.conf --------------------------------------------------------------------------------------


def test_csi_conf_parses_back_with_a_hostile_password():
    password = 'p;a#s"s\\w\nord'
    conf = parse_gcfg(render.csi_conf(ACCESS, password, "cht-hosting-prod"))
    assert conf["Global"] == {"cluster-id": "cht-hosting-prod"}
    assert conf['VirtualCenter vcenter.moh.example.org'] == {
        "user": "k8s-cns@vsphere.local",
        "password": password,
        "port": "443",
        "datacenters": "MOH-DC1",
        "insecure-flag": "false",
        "thumbprint": "AB:CD:EF",
    }


def test_csi_conf_points_at_the_mounted_ca():
    access = render.VcenterAccess(server="10.0.0.5", datacenter="DC", user="u", ca_certificate=PEM)
    vcenter = parse_gcfg(render.csi_conf(access, "pw", "c"))["VirtualCenter 10.0.0.5"]
    assert vcenter["ca-file"] == "/etc/cloud/vsphere-ca.pem" == render.CSI_CA_PATH
    assert vcenter["insecure-flag"] == "false"
    assert "thumbprint" not in vcenter


def test_csi_conf_insecure_only_when_asked():
    access = render.VcenterAccess(server="vc", datacenter="DC", user="u", insecure=True)
    vcenter = parse_gcfg(render.csi_conf(access, "pw", "c"))["VirtualCenter vc"]
    assert vcenter["insecure-flag"] == "true"
    assert "thumbprint" not in vcenter and "ca-file" not in vcenter


def test_csi_conf_refuses_a_long_cluster_id():
    with pytest.raises(ValueError, match="longer than 64"):
        render.csi_conf(ACCESS, "pw", "x" * 65)


# --- CPI vsphere.conf and values ---------------------------------------------------------------------------


def cpi_conf(access: render.VcenterAccess) -> dict:
    return yaml.safe_load(render.cpi_conf(access))


def test_cpi_conf_names_the_vcenter_the_datacenter_and_our_secret():
    conf = cpi_conf(ACCESS)
    assert conf["vcenter"] == {"vcenter.moh.example.org": {"server": "vcenter.moh.example.org", "datacenters": ["MOH-DC1"]}}
    assert conf["global"]["secretName"] == "vsphere-cloud-secret"
    assert conf["global"]["secretNamespace"] == "kube-system"
    assert conf["global"]["port"] == 443
    assert "labels" not in conf  # zone lookup off: no vSphere tag categories needed


def test_cpi_conf_with_only_a_ca_bundle_points_caFile_at_the_bundle_beside_it():
    access = render.VcenterAccess(server="vc.example.org", datacenter="DC", user="u", ca_certificate=PEM)
    conf = cpi_conf(access)
    assert conf["global"]["caFile"] == "/etc/cloud/vsphere-ca.pem"
    assert "thumbprint" not in conf["global"] and "insecureFlag" not in conf["global"]
    assert "ca-file" not in render.cpi_conf(access)
    data = render.cpi_config_data(access)
    # The ConfigMap is mounted whole at /etc/cloud, so its key vsphere-ca.pem is the file caFile names.
    assert set(data) == {"vsphere.conf", "vsphere-ca.pem"} and data["vsphere-ca.pem"] == PEM
    assert f"{render.CPI_CONFIG_DIR}/{render.CPI_CA_KEY}" == conf["global"]["caFile"]


def test_cpi_conf_with_a_thumbprint_pins_it_and_with_both_carries_both():
    assert cpi_conf(ACCESS)["global"]["thumbprint"] == "AB:CD:EF"
    both = render.VcenterAccess(server="vc", datacenter="DC", user="u", thumbprint="AB:CD", ca_certificate=PEM)
    assert {"thumbprint", "caFile"} <= set(cpi_conf(both)["global"])


def test_cpi_conf_insecure_is_explicit_and_mounts_no_ca():
    access = render.VcenterAccess(server="vc", datacenter="DC", user="u", ca_certificate=PEM, insecure=True)
    conf = cpi_conf(access)
    assert conf["global"]["insecureFlag"] is True and "caFile" not in conf["global"]
    assert set(render.cpi_config_data(access)) == {"vsphere.conf"}


@pytest.mark.parametrize("datacenter", ["yes", "DC: one", "#dc", "a\nb", "  spaced  ", "0x10"])
def test_cpi_conf_keeps_a_datacenter_name_a_plain_string(datacenter):
    access = render.VcenterAccess(server="vc.example.org", datacenter=datacenter, user="u", thumbprint="AB")
    assert cpi_conf(access)["vcenter"]["vc.example.org"]["datacenters"] == [datacenter]


def test_cpi_values_turn_the_charts_config_off_and_carry_no_vcenter_setting():
    values = render.cpi_values(render.cpi_config_data(ACCESS))
    assert values["config"] == {"enabled": False, "secret": {"create": False}}
    assert values["daemonset"]["cmdline"] == {"cloudConfig": {"dir": "/etc/cloud", "file": "vsphere.conf"}}
    assert "vcenter.moh.example.org" not in repr(values)


def test_cpi_pods_roll_when_the_config_changes():
    annotation = "cht-hosting/cloud-config-sha256"
    before = render.cpi_values(render.cpi_config_data(ACCESS))["daemonset"]["podAnnotations"][annotation]
    again = render.cpi_values(render.cpi_config_data(ACCESS))["daemonset"]["podAnnotations"][annotation]
    with_ca = render.VcenterAccess(**{**ACCESS.__dict__, "ca_certificate": PEM})
    after = render.cpi_values(render.cpi_config_data(with_ca))["daemonset"]["podAnnotations"][annotation]
    assert before == again and before != after


def test_cpi_tolerates_the_server_taint_and_uninitialised_nodes():
    values = render.cpi_values(render.cpi_config_data(ACCESS), image="registry.moh.example.org/cpi")
    tolerations = values["daemonset"]["tolerations"]
    assert names.SERVER_TAINT_TOLERATION in tolerations
    assert {"key": "node.cloudprovider.kubernetes.io/uninitialized", "value": "true", "effect": "NoSchedule"} in tolerations
    assert values["daemonset"]["image"] == "registry.moh.example.org/cpi"


def test_cpi_credentials_keys_are_per_vcenter():
    assert render.cpi_credentials("vc.example.org", "u", "p") == {"vc.example.org.username": "u", "vc.example.org.password": "p"}


# --- CSI manifest adjustment ------------------------------------------------------------------------------------


def controller_deployment() -> dict:
    """Shaped like vsphere-csi-driver.yaml's controller (v3.7.3 / v3.8.0-rc.1), trimmed to what matters."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "vsphere-csi-controller", "namespace": "vmware-system-csi"},
        "spec": {
            "replicas": 3,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
            "selector": {"matchLabels": {"app": "vsphere-csi-controller"}},
            "template": {
                "metadata": {"labels": {"app": "vsphere-csi-controller", "role": "vsphere-csi"}},
                "spec": {
                    "priorityClassName": "system-cluster-critical",
                    "affinity": {
                        "podAntiAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": [
                                {
                                    "labelSelector": {
                                        "matchExpressions": [
                                            {"key": "app", "operator": "In", "values": ["vsphere-csi-controller"]}
                                        ]
                                    },
                                    "topologyKey": "kubernetes.io/hostname",
                                }
                            ]
                        },
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [
                                    {"matchExpressions": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]},
                                    {"matchExpressions": [{"key": "node-role.kubernetes.io/controlplane", "operator": "Exists"}]},
                                ]
                            }
                        },
                    },
                    "serviceAccountName": "vsphere-csi-controller",
                    "tolerations": [
                        {"key": "node-role.kubernetes.io/master", "operator": "Exists", "effect": "NoSchedule"},
                        {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"},
                    ],
                    "dnsPolicy": "Default",
                    "containers": [{"name": "vsphere-csi-controller", "image": "registry.k8s.io/csi-vsphere/driver:v3.8.0"}],
                    "volumes": [{"name": "vsphere-config-volume", "secret": {"secretName": "vsphere-config-secret"}}],
                },
            },
        },
    }


@pytest.mark.parametrize(("control_plane", "replicas"), [(1, 1), (3, 3), (5, 3)])
def test_controller_replicas_never_exceed_control_plane_nodes(control_plane, replicas):
    adjusted = render.adjust_csi_object(controller_deployment(), control_plane)
    assert adjusted["spec"]["replicas"] == replicas


def test_controller_tolerates_the_server_taint_once_even_when_applied_twice():
    twice = render.adjust_csi_object(render.adjust_csi_object(controller_deployment(), 3), 3)
    tolerations = twice["spec"]["template"]["spec"]["tolerations"]
    assert tolerations.count(names.SERVER_TAINT_TOLERATION) == 1
    assert {"key": "node-role.kubernetes.io/master", "operator": "Exists", "effect": "NoSchedule"} in tolerations


def test_controller_runs_on_k3s_servers_and_keeps_its_anti_affinity():
    obj = controller_deployment()
    # The k3s pitfall: servers are labelled control-plane=true, so a selector for "" never matches.
    obj["spec"]["template"]["spec"]["nodeSelector"] = {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/os": "linux"}
    spec = render.adjust_csi_object(obj, 3)["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux"}
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]}]
    assert spec["affinity"]["podAntiAffinity"] == controller_deployment()["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]


def test_adjustment_does_not_mutate_its_input_and_validates():
    original = controller_deployment()
    adjusted = render.adjust_csi_object(original, 3)
    assert original == controller_deployment()
    kubernetes_validate.validate(adjusted, K8S, strict=True)


def test_other_manifest_objects_are_left_alone():
    node_daemonset = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "vsphere-csi-node"}}
    assert render.adjust_csi_object(node_daemonset, 3) is None
    other = copy.deepcopy(controller_deployment())
    other["metadata"]["name"] = "something-else"
    assert render.adjust_csi_object(other, 3) is None


def test_controller_needs_a_control_plane():
    with pytest.raises(ValueError):
        render.adjust_csi_object(controller_deployment(), 0)


def test_snapshot_controller_is_pinned_and_placed_on_servers():
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "snapshot-controller", "namespace": "kube-system"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "snapshot-controller"}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": "snapshot-controller"}},
                "spec": {
                    "serviceAccountName": "snapshot-controller",
                    "containers": [{"name": "snapshot-controller", "image": "registry.k8s.io/sig-storage/snapshot-controller:v8.0.1"}],
                },
            },
        },
    }
    adjusted = render.adjust_snapshot_object(obj, 1, "v8.4.0")
    spec = adjusted["spec"]["template"]["spec"]
    assert spec["containers"][0]["image"] == "registry.k8s.io/sig-storage/snapshot-controller:v8.4.0"
    assert adjusted["spec"]["replicas"] == 1
    assert names.SERVER_TAINT_TOLERATION in spec["tolerations"]
    kubernetes_validate.validate(adjusted, K8S, strict=True)
    assert render.adjust_snapshot_object(controller_deployment(), 3, "v8.4.0") is None


def test_urls_fill_in_the_version():
    assert render.manifest_url("https://m.example.org/{version}/x.yaml", "v3.8.0") == "https://m.example.org/v3.8.0/x.yaml"
    urls = render.snapshot_urls("https://raw.githubusercontent.com/kubernetes-csi/external-snapshotter/{version}/", "v8.4.0")
    assert urls["volumesnapshots"] == (
        "https://raw.githubusercontent.com/kubernetes-csi/external-snapshotter/v8.4.0/client/config/crd/"
        "snapshot.storage.k8s.io_volumesnapshots.yaml"
    )
    assert urls["controller"].endswith("/v8.4.0/deploy/kubernetes/snapshot-controller/setup-snapshot-controller.yaml")
    assert set(urls) == {"volumesnapshotclasses", "volumesnapshotcontents", "volumesnapshots", "rbac", "controller"}


def test_storage_class_parameters():
    assert render.storage_class_parameters("gold", None, "ext4") == {
        "csi.storage.k8s.io/fstype": "ext4",
        "storagepolicyname": "gold",
    }
    assert render.storage_class_parameters(None, "ds:///vmfs/volumes/vsan:1/", "xfs") == {
        "csi.storage.k8s.io/fstype": "xfs",
        "datastoreurl": "ds:///vmfs/volumes/vsan:1/",
    }


def test_volume_snapshot_class_shape():
    obj = render.volume_snapshot_class("vsphere-snapshots", "Retain")
    assert obj == {
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshotClass",
        "metadata": {"name": "vsphere-snapshots"},
        "driver": names.CSI_DRIVER,
        "deletionPolicy": "Retain",
    }
