"""Every platform artifact the stacks pin is a published release at its tag, and the pins fit each other.

`CHECKED` says, per component, which releases were read upstream and where (a release that does not exist
fails the first `pulumi up`, or leaves nodes without volumes). An operator bumping a version adds it here with
where it was checked; the test then also holds the new pin to upstream's compatibility matrices.

Read (stored copies of the upstream repositories and release pages):
- k3s: github.com/k3s-io/k3s/releases/tag/v1.35.8+k3s1 (a release, not marked pre-release; Kubernetes
  v1.35.8, Traefik v3.7.8, "This release upgrades Traefik chart to v40.x"); v1.35.2+k3s1 in k3s-io/docs
  docs/release-notes/v1.35.X.md (Mar 04 2026). Not pinned: v1.36.2+k3s1 and v1.36.3+k3s1 (pre-release when
  read), and the 1.36 line as a whole, which no final vSphere CSI release supports.
- vSphere CPI chart: kubernetes/cloud-provider-vsphere tags v1.35.0 and v1.35.1, charts/vsphere-cpi/Chart.yaml
  (version = appVersion = 1.35.1, image tag v1.35.1 in values.yaml) and the gh-pages index.yaml
  (vsphere-cpi-1.35.0.tgz, vsphere-cpi-1.35.1.tgz). CPI X.Y pairs with Kubernetes X.Y (README.md).
- vSphere CSI: kubernetes-sigs/vsphere-csi-driver tag v3.7.3 (2026-07-31), manifests/vanilla/vsphere-csi-driver.yaml
  with registry.k8s.io/csi-vsphere/driver:v3.7.3 and syncer:v3.7.3, go.mod k8s.io/kubernetes v1.35.0; the
  releases page lists v3.7.3 as the newest release. v3.8.0 exists only as v3.8.0-rc.1 (staging images).
- external-snapshotter: kubernetes-csi/external-snapshotter tag v8.2.0 (qualified by CSI v3.7.3's
  deploy-csi-snapshot-components.sh and its csi-snapshotter:v8.2.0 sidecar).
- kube-vip: kube-vip/kube-vip tag v1.0.0 (2025-07-31).
- system-upgrade-controller: rancher/system-upgrade-controller tag v0.20.1 (release assets crd.yaml and
  system-upgrade-controller.yaml, scripts/package-controller).
- Velero chart: vmware-tanzu/helm-charts tag velero-12.1.0, charts/velero/Chart.yaml (appVersion 1.18.1);
  vmware-tanzu/velero tag v1.18.1, README.md compatibility matrix (1.18: tested on Kubernetes 1.33.7, 1.34.1,
  1.35.0).
- Velero AWS plugin: velero-io/velero-plugin-for-aws tags v1.14.0, v1.14.1, v1.14.2 (the vmware-tanzu snapshot
  ends at v1.14.0-rc.1); README.md "Compatibility": plugin v1.14.x with Velero v1.18.x.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from config import compatibility, versions
from config.model import K3sConfig, VeleroConfig

ROOT = Path(__file__).resolve().parent.parent
STACKS = Path(__file__).resolve().parent / "stacks"

CHECKED = {
    "k3s": {"v1.35.8+k3s1", "v1.35.2+k3s1"},
    "cpi": {"1.35.1", "1.35.0"},
    "csi": {"v3.7.3"},
    "snapshotter": {"v8.2.0"},
    "kubeVip": {"v1.0.0"},
    "systemUpgradeController": {"v0.20.1"},
    "veleroChart": {"12.1.0"},
    "veleroAwsPlugin": {"v1.14.2", "v1.14.1", "v1.14.0"},
}

# Upstream's matrices the pins must satisfy, beyond config/compatibility.yaml (CPI/CSI <-> Kubernetes):
# the Velero release a chart runs (Chart.yaml appVersion) and the plugin line for it (plugin README.md).
VELERO_OF_CHART = {"12.1.0": "1.18"}
PLUGIN_FOR_VELERO = {"1.18": "1.14"}
# Velero README.md @ v1.18.1: the Kubernetes minors 1.18 was tested on.
VELERO_TESTED_ON = {"1.18": {"1.33", "1.34", "1.35"}}


def stack_files() -> list[Path]:
    return sorted([*ROOT.glob("Pulumi.*.yaml"), *STACKS.glob("Pulumi.*.yaml")])


def default(model, field: str) -> str:
    return model.model_fields[field].default


def pins(path: Path) -> dict[str, str]:
    config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
    found = {}
    velero = (config.get("cht-hosting:backup") or {}).get("velero") or {}
    found["veleroChart"] = str(velero.get("chartVersion") or default(VeleroConfig, "chart_version"))
    found["veleroAwsPlugin"] = (velero.get("awsPluginImage") or default(VeleroConfig, "aws_plugin_image")).rsplit(":", 1)[1]
    if k3s := config.get("cht-hosting:k3s"):
        found["k3s"] = str(k3s["version"])
        found["kubeVip"] = str(k3s.get("kubeVipVersion") or default(K3sConfig, "kube_vip_version"))
        found["systemUpgradeController"] = str(
            k3s.get("systemUpgradeControllerVersion") or default(K3sConfig, "system_upgrade_controller_version")
        )
    if cpi := config.get("cht-hosting:cpi"):
        found["cpi"] = str(cpi["version"])
    if csi := config.get("cht-hosting:csi"):
        found["csi"] = str(csi["version"])
        snapshots = csi.get("snapshots") or {}
        found["snapshotter"] = str(snapshots.get("version") or compatibility.qualified_snapshotter(found["csi"]))
    return found


@pytest.mark.parametrize("path", stack_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_each_stack_pins_releases_read_upstream(path):
    for component, version in pins(path).items():
        assert version in CHECKED[component], f"{path.name}: {component} {version} was not checked upstream"


@pytest.mark.parametrize("path", stack_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_each_stacks_pins_fit_upstreams_matrices(path):
    found = pins(path)
    velero = VELERO_OF_CHART[found["veleroChart"]]
    assert versions.minor_line(found["veleroAwsPlugin"]) == PLUGIN_FOR_VELERO[velero]
    if "k3s" not in found:
        return  # an existing cluster: its Kubernetes is not ours to pin
    kubernetes = compatibility.kubernetes_minor(found["k3s"])
    assert kubernetes in compatibility.supported_kubernetes("cpi", found["cpi"])
    assert kubernetes in compatibility.supported_kubernetes("csi", found["csi"])
    assert kubernetes in VELERO_TESTED_ON[velero]
    assert compatibility.traefik_chart_v40(found["k3s"]) is not None  # its traefik chart is known


def test_the_program_defaults_are_releases_read_upstream():
    assert default(K3sConfig, "kube_vip_version") in CHECKED["kubeVip"]
    assert default(K3sConfig, "system_upgrade_controller_version") in CHECKED["systemUpgradeController"]
    assert default(VeleroConfig, "chart_version") in CHECKED["veleroChart"]
    assert default(VeleroConfig, "aws_plugin_image").rsplit(":", 1)[1] in CHECKED["veleroAwsPlugin"]


def test_no_pre_release_is_listed_as_checked():
    forms = {"k3s": versions.K3S, "cpi": versions.PLAIN, "veleroChart": versions.PLAIN}
    for component, releases in CHECKED.items():
        for release in releases:
            assert versions.is_valid(release, forms.get(component, versions.V)), f"{component} {release}"


def test_every_qualified_snapshotter_of_a_pinned_csi_was_checked():
    for csi in CHECKED["csi"]:
        assert compatibility.qualified_snapshotter(csi) in CHECKED["snapshotter"]
