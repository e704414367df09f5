"""Pure renderers for the vSphere CPI and CSI: config files, chart values, manifest adjustments.

Nothing here imports Pulumi; `cpi.py`, `csi.py` and `storage_class.py` call these with
plain values (inside `.apply` where a secret is involved) and the tests call them directly.
"""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass
from typing import Any

import yaml

from config.names import (
    CONTROL_PLANE_LABEL,
    CPI_NAMESPACE,
    CSI_DRIVER,
    MAX_CSI_CLUSTER_ID,
    SERVER_TAINT_TOLERATION,
)

CSI_SECRET = "vsphere-config-secret"
CSI_CONF_KEY = "csi-vsphere.conf"
CSI_CA_KEY = "vsphere-ca.pem"
# The manifest mounts the whole vsphere-config-secret at /etc/cloud, so a second key is a file there.
CSI_CA_PATH = f"/etc/cloud/{CSI_CA_KEY}"
CSI_CONTROLLER = "vsphere-csi-controller"

CPI_SECRET = "vsphere-cloud-secret"
# With `config.enabled: false` the vsphere-cpi chart renders no config of its own and mounts the ConfigMap
# named `cloud-config` at `daemonset.cmdline.cloudConfig.dir` (chart 1.36.0 templates/daemonset.yaml,
# volume `vsphere-config-volume`). We own that ConfigMap, so the CPI reads our vsphere.conf.
CPI_CONFIGMAP = "cloud-config"
CPI_CONFIG_DIR = "/etc/cloud"
CPI_CONFIG_FILE = "vsphere.conf"
# A second key of the same ConfigMap: a file beside vsphere.conf in the mounted directory.
CPI_CA_KEY = "vsphere-ca.pem"
CPI_CA_PATH = f"{CPI_CONFIG_DIR}/{CPI_CA_KEY}"
CPI_CONFIG_CHECKSUM_ANNOTATION = "cht-hosting/cloud-config-sha256"

SNAPSHOT_CONTROLLER = "snapshot-controller"
SNAPSHOT_CRDS = ("volumesnapshotclasses", "volumesnapshotcontents", "volumesnapshots")

CONTROL_PLANE_TOLERATION = {"key": CONTROL_PLANE_LABEL, "operator": "Exists", "effect": "NoSchedule"}
MAX_CSI_CONTROLLERS = 3  # upstream's replica count; required anti-affinity needs one node per replica
MAX_SNAPSHOT_CONTROLLERS = 2  # upstream's replica count (leader election)


# --- cluster id -----------------------------------------------------------------------------------------


def cluster_id(project: str, stack: str) -> str:
    """A CNS cluster id that is stable for a stack: `<project>-<stack>`, shortened with a hash if needed.

    CNS tags every volume with it, so it must never change after the first deployment.
    """
    text = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{project}-{stack}").strip("-.") or "cluster"
    if len(text) <= MAX_CSI_CLUSTER_ID:
        return text
    suffix = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{text[: MAX_CSI_CLUSTER_ID - len(suffix) - 1].rstrip('-.')}-{suffix}"


# --- csi-vsphere.conf -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VcenterAccess:
    """How the in-cluster components reach vCenter (the password travels separately, as a secret)."""

    server: str
    datacenter: str
    user: str
    thumbprint: str | None = None
    ca_certificate: str | None = None
    insecure: bool = False
    port: int = 443


def gcfg_quote(value: str) -> str:
    """A gcfg (INI) value in double quotes: without them `;` and `#` would start a comment."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


def csi_conf(access: VcenterAccess, password: str, cluster: str) -> str:
    """`csi-vsphere.conf` for the vanilla CSI driver (one vCenter, one datacenter)."""
    if len(cluster) > MAX_CSI_CLUSTER_ID:
        raise ValueError(f"cluster-id '{cluster}' is longer than {MAX_CSI_CLUSTER_ID} characters")
    lines = [
        "[Global]",
        f"cluster-id = {gcfg_quote(cluster)}",
        "",
        f"[VirtualCenter {gcfg_quote(access.server)}]",
        f"user = {gcfg_quote(access.user)}",
        f"password = {gcfg_quote(password)}",
        f"port = {gcfg_quote(str(access.port))}",
        f"datacenters = {gcfg_quote(access.datacenter)}",
        f"insecure-flag = {gcfg_quote('true' if access.insecure else 'false')}",
    ]
    if not access.insecure:
        if access.thumbprint:
            lines.append(f"thumbprint = {gcfg_quote(access.thumbprint)}")
        if access.ca_certificate:
            lines.append(f"ca-file = {gcfg_quote(CSI_CA_PATH)}")
    return "\n".join(lines) + "\n"


# --- CPI vsphere.conf and chart values ---------------------------------------------------------------------


def cpi_conf(access: VcenterAccess) -> str:
    """The CPI's own vsphere.conf (YAML, as CPI v1.36.0 reads it: pkg/common/config/types_yaml.go).

    Not the chart's generated one: chart 1.36.0 writes a CA as `ca-file:`, a key the CPI does not read
    (its field tag is `caFile`), so a CA bundle given to the chart is silently dropped. No credential is
    here: the CPI reads them from the Secret named by `secretName`/`secretNamespace`.
    """
    verify: dict[str, Any] = {}
    if access.insecure:
        verify["insecureFlag"] = True
    else:
        if access.thumbprint:
            verify["thumbprint"] = access.thumbprint
        if access.ca_certificate:
            verify["caFile"] = CPI_CA_PATH
    document = {
        "global": {
            "port": access.port,
            **verify,
            "secretName": CPI_SECRET,
            "secretNamespace": CPI_NAMESPACE,
        },
        "vcenter": {access.server: {"server": access.server, "datacenters": [access.datacenter]}},
        # No `labels`: without zone/region tag categories the CPI's zone lookup is off (the chart's default
        # categories k8s-region/k8s-zone make node initialisation fail where vCenter has no such tags).
    }
    return yaml.safe_dump(document, sort_keys=False)


def cpi_config_data(access: VcenterAccess) -> dict[str, str]:
    """The `cloud-config` ConfigMap's data: vsphere.conf and, when configured, the CA bundle it points at."""
    data = {CPI_CONFIG_FILE: cpi_conf(access)}
    if access.ca_certificate and not access.insecure:
        data[CPI_CA_KEY] = access.ca_certificate
    return data


def config_checksum(data: dict[str, str]) -> str:
    """A digest of a ConfigMap's data: as a pod annotation it restarts the pods when the data changes."""
    return hashlib.sha256(yaml.safe_dump(data, sort_keys=True).encode()).hexdigest()


def cpi_tolerations() -> list[dict[str, str]]:
    """The chart's default tolerations, spelled out so a chart change cannot drop the server taint."""
    return [
        {"key": "node.cloudprovider.kubernetes.io/uninitialized", "value": "true", "effect": "NoSchedule"},
        dict(CONTROL_PLANE_TOLERATION),
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoSchedule"},
        dict(SERVER_TAINT_TOLERATION),
    ]


def cpi_values(config_data: dict[str, str], image: str | None = None) -> dict[str, Any]:
    """Values for the vsphere-cpi chart: its own config and Secret off (ours are used), our tolerations.

    No credential and no vCenter setting is among them. The CPI reads vsphere.conf only at start, so the
    pods carry a checksum of it and a changed config (a new CA bundle) rolls them.
    """
    daemonset: dict[str, Any] = {
        "tolerations": cpi_tolerations(),
        "cmdline": {"cloudConfig": {"dir": CPI_CONFIG_DIR, "file": CPI_CONFIG_FILE}},
        "podAnnotations": {CPI_CONFIG_CHECKSUM_ANNOTATION: config_checksum(config_data)},
    }
    if image:
        daemonset["image"] = image
    return {"config": {"enabled": False, "secret": {"create": False}}, "daemonset": daemonset}


def cpi_credentials(server: str, user: str, password: str) -> dict[str, str]:
    """The Secret data the CPI reads: `<vcenter>.username` and `<vcenter>.password`."""
    return {f"{server}.username": user, f"{server}.password": password}


# --- manifest adjustments ----------------------------------------------------------------------------------


def _with_tolerations(pod_spec: dict[str, Any], wanted: list[dict[str, str]]) -> None:
    tolerations = list(pod_spec.get("tolerations") or [])
    for toleration in wanted:
        if toleration not in tolerations:
            tolerations.append(dict(toleration))
    pod_spec["tolerations"] = tolerations


def _on_control_plane(pod_spec: dict[str, Any]) -> None:
    """Schedule on k3s servers: they carry `node-role.kubernetes.io/control-plane=true`, so a nodeSelector
    asking for the value "" (as some upstream scripts patch in) never matches; require the label to exist."""
    selector = {k: v for k, v in (pod_spec.get("nodeSelector") or {}).items() if not k.startswith("node-role.kubernetes.io/")}
    if selector:
        pod_spec["nodeSelector"] = selector
    else:
        pod_spec.pop("nodeSelector", None)
    affinity = pod_spec.setdefault("affinity", {})
    affinity["nodeAffinity"] = {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": CONTROL_PLANE_LABEL, "operator": "Exists"}]}]
        }
    }


def _is(obj: dict[str, Any], kind: str, name: str) -> bool:
    return obj.get("kind") == kind and (obj.get("metadata") or {}).get("name") == name


def adjust_csi_object(obj: dict[str, Any], control_plane_nodes: int) -> dict[str, Any] | None:
    """The upstream CSI manifest, fitted to this cluster; None when the object needs no change.

    The controller Deployment gets replicas = min(3, control-plane nodes) (its required anti-affinity
    puts each replica on its own node), runs on the servers and tolerates their taint. Idempotent:
    Pulumi may call transforms more than once for the same object.
    """
    if not _is(obj, "Deployment", CSI_CONTROLLER):
        return None
    if control_plane_nodes < 1:
        raise ValueError("the CSI controller needs at least one control-plane node")
    adjusted = copy.deepcopy(obj)
    adjusted["spec"]["replicas"] = min(MAX_CSI_CONTROLLERS, control_plane_nodes)
    pod_spec = adjusted["spec"]["template"]["spec"]
    _on_control_plane(pod_spec)
    _with_tolerations(pod_spec, [CONTROL_PLANE_TOLERATION, SERVER_TAINT_TOLERATION])
    return adjusted


def adjust_snapshot_object(obj: dict[str, Any], control_plane_nodes: int, version: str) -> dict[str, Any] | None:
    """The upstream snapshot-controller, placed on the servers as the vSphere script does (with the k3s
    label fix) and pinned to the qualified image; None when the object needs no change."""
    if not _is(obj, "Deployment", SNAPSHOT_CONTROLLER):
        return None
    adjusted = copy.deepcopy(obj)
    adjusted["spec"]["replicas"] = min(MAX_SNAPSHOT_CONTROLLERS, max(control_plane_nodes, 1))
    pod_spec = adjusted["spec"]["template"]["spec"]
    _on_control_plane(pod_spec)
    _with_tolerations(pod_spec, [CONTROL_PLANE_TOLERATION, SERVER_TAINT_TOLERATION])
    for container in pod_spec.get("containers") or []:
        if container.get("name") == SNAPSHOT_CONTROLLER:
            image = str(container.get("image", "registry.k8s.io/sig-storage/snapshot-controller"))
            container["image"] = f"{image.rsplit(':', 1)[0] if ':' in image.split('/')[-1] else image}:{version}"
    return adjusted


def manifest_url(template: str, version: str) -> str:
    return template.replace("{version}", version)


def snapshot_urls(base_template: str, version: str) -> dict[str, str]:
    """The external-snapshotter files vSphere's deploy-csi-snapshot-components.sh applies, by role."""
    base = manifest_url(base_template, version).rstrip("/")
    urls = {
        crd: f"{base}/client/config/crd/snapshot.storage.k8s.io_{crd}.yaml" for crd in SNAPSHOT_CRDS
    }
    urls["rbac"] = f"{base}/deploy/kubernetes/snapshot-controller/rbac-snapshot-controller.yaml"
    urls["controller"] = f"{base}/deploy/kubernetes/snapshot-controller/setup-snapshot-controller.yaml"
    return urls


# --- StorageClass -----------------------------------------------------------------------------------------


def storage_class_parameters(
    storage_policy_name: str | None, datastore_url: str | None, fs_type: str
) -> dict[str, str]:
    """StorageClass parameters for the vSphere CSI driver (immutable once the class exists)."""
    parameters = {"csi.storage.k8s.io/fstype": fs_type}
    if storage_policy_name:
        parameters["storagepolicyname"] = storage_policy_name
    if datastore_url:
        parameters["datastoreurl"] = datastore_url
    return parameters


def volume_snapshot_class(name: str, deletion_policy: str) -> dict[str, Any]:
    return {
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshotClass",
        "metadata": {"name": name},
        "driver": CSI_DRIVER,
        "deletionPolicy": deletion_policy,
    }
