"""The names and limits several areas share (config/names.py), pinned once against what they name.

The other tests use these names instead of restating them, so this is where a wrong value shows.
"""

from __future__ import annotations

import base64
import gzip
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from config import names

ROOT = Path(__file__).resolve().parent.parent


def test_project_is_the_pulumi_project_of_this_program():
    assert yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["name"] == names.PROJECT


def test_cluster_identifier_is_the_project_and_the_stack():
    assert names.cluster_identifier("prod") == "cht-hosting-prod"
    assert names.cluster_identifier("dev") != names.cluster_identifier("prod")


def test_county_label_is_in_the_projects_own_prefix():
    assert names.COUNTY_LABEL == "cht-hosting/county"


def test_server_taint_is_k3s_node_taint_syntax_and_the_toleration_matches_it():
    # k3s `--node-taint key=value:Effect` (docs/cli/server.md); Kubernetes' taint effects.
    assert names.SERVER_TAINT == "CriticalAddonsOnly=true:NoExecute"
    key, rest = names.SERVER_TAINT.split("=", 1)
    effect = rest.split(":", 1)[1]
    assert {"key": key, "operator": "Exists", "effect": effect} == names.SERVER_TAINT_TOLERATION


def test_vsphere_csi_facts():
    # vsphere-csi-driver v3.x manifests/vanilla/vsphere-csi-driver.yaml: CSIDriver `csi.vsphere.vmware.com`,
    # namespace `vmware-system-csi`; pkg/common/config/config.go refuses a cluster-id over 64 characters.
    assert names.CSI_DRIVER == "csi.vsphere.vmware.com"
    assert names.CSI_NAMESPACE == "vmware-system-csi"
    assert names.MAX_CSI_CLUSTER_ID == 64
    assert names.MIN_HARDWARE_VERSION == 15


def test_the_cluster_own_namespaces_are_reserved():
    used = {names.KUBE_SYSTEM, names.CSI_NAMESPACE, names.UPGRADE_NAMESPACE, names.CPI_NAMESPACE, names.INGRESS_NAMESPACE}
    assert used <= names.RESERVED_NAMESPACES
    assert {"default", "kube-public", "kube-node-lease"} <= names.RESERVED_NAMESPACES


def test_every_derived_county_name_fits_a_dns_label():
    longest = "a" * names.max_county_name_length()
    for derived in (names.namespace(longest), names.static_pv_name(longest, names.MAX_COUCHDB_NODES)):
        assert len(derived) <= names.MAX_DNS_LABEL and names.DNS_LABEL.match(derived)
    too_long = longest + "a"
    assert len(names.static_pv_name(too_long, names.MAX_COUCHDB_NODES)) > names.MAX_DNS_LABEL


def test_guestinfo_round_trip_as_cloud_init_reads_it():
    # cloud-init cloudinit/sources/DataSourceVMware.py `decode`: base64/b64, gzip+base64/gz+b64, else raw.
    text = "#cloud-config\nhostname: cp-1\n"
    data, encoding = names.encode_guestinfo(text)
    assert encoding == "base64" and base64.b64decode(data).decode() == text
    assert names.decode_guestinfo(data, encoding) == text
    gz = base64.b64encode(gzip.compress(text.encode())).decode()
    assert names.decode_guestinfo(gz, "gzip+base64") == names.decode_guestinfo(gz, "gz+b64") == text
    assert names.decode_guestinfo(text, "") == text


@pytest.mark.parametrize(
    ("data", "encoding"),
    [("not base64 at all!", "base64"), ("not base64 at all!", "gzip+base64"), (base64.b64encode(b"plain").decode(), "gz+b64")],
)
def test_guestinfo_that_does_not_decode_is_an_error(data, encoding):
    with pytest.raises(ValueError, match=re.escape(encoding)):
        names.decode_guestinfo(data, encoding)


def test_the_policy_pack_loads_the_shared_names_without_the_program_dependencies(tmp_path):
    """The pack's own venv has pulumi-policy and pulumi only: its entry point must not need pydantic."""
    script = (
        "import sys, runpy, pulumi_policy\n"
        "sys.modules['pydantic'] = None  # importing it now fails, as in the pack's venv\n"
        "made = []\n"
        "pulumi_policy.PolicyPack = lambda **kwargs: made.append(kwargs)  # the real one serves gRPC forever\n"
        f"runpy.run_path({str(ROOT / 'policy' / '__main__.py')!r}, run_name='__main__')\n"
        "assert made and made[0]['policies'], made\n"
        "assert 'config.model' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
