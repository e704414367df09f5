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

from config.names import (
    CONTROL_PLANE_LABEL,
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
CPI_CA_CONFIGMAP = "vsphere-cpi-ca"
CPI_CA_DIR = "/etc/vsphere-ca"
CPI_CA_FILE = "ca.pem"

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


# --- CPI chart values -------------------------------------------------------------------------------------


def cpi_tolerations() -> list[dict[str, str]]:
    """The chart's default tolerations, spelled out so a chart change cannot drop the server taint."""
    return [
        {"key": "node.cloudprovider.kubernetes.io/uninitialized", "value": "true", "effect": "NoSchedule"},
        dict(CONTROL_PLANE_TOLERATION),
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoSchedule"},
        dict(SERVER_TAINT_TOLERATION),
    ]


def cpi_values(access: VcenterAccess, image: str | None = None) -> dict[str, Any]:
    """Values for the vsphere-cpi chart. No credential is among them: they are in our own Secret."""
    verify = not access.insecure
    config: dict[str, Any] = {
        "enabled": True,
        "name": "vsphere-cloud-config",
        "vcenter": access.server,
        "datacenter": access.datacenter,
        # Not the chart's "user"/"pass" placeholders: with secret.create false the chart does not read them.
        "username": "",
        "password": "",
        # Empty labels turn the CPI's zone lookup off; the chart's default tag categories (k8s-region,
        # k8s-zone) would make node initialisation fail where vCenter has no such tags.
        "region": "",
        "zone": "",
        # The chart writes insecureFlag: true when neither of these is set.
        "thumbprint": access.thumbprint if verify and access.thumbprint else "",
        "caFile": f"{CPI_CA_DIR}/{CPI_CA_FILE}" if verify and access.ca_certificate and not access.thumbprint else "",
        "secret": {"create": False, "name": CPI_SECRET},
    }
    daemonset: dict[str, Any] = {"tolerations": cpi_tolerations()}
    if image:
        daemonset["image"] = image
    if config["caFile"]:
        daemonset["extraVolumes"] = [{"name": "vsphere-ca", "configMap": {"name": CPI_CA_CONFIGMAP}}]
        # The chart's template reads `extraVolumeMounts` (its values.yaml misspells it `extraVolumesMounts`).
        daemonset["extraVolumeMounts"] = [{"name": "vsphere-ca", "mountPath": CPI_CA_DIR, "readOnly": True}]
    return {"config": config, "daemonset": daemonset}


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
