"""The CPI's vsphere.conf and chart values against upstream at the pinned versions.

Upstream (kubernetes/cloud-provider-vsphere; chart `vsphere-cpi` 1.36.0 is `charts/vsphere-cpi` at tag
v1.36.0, commit 22dce2967b0154de264d8f4183f2403dd50e86c2, the CPI image tag the chart pins):
- `pkg/common/config/types_yaml.go` @ v1.36.0: the YAML keys the CPI reads (gopkg.in/yaml.v2 tags;
  untagged fields are lower-cased field names). Unknown keys are dropped without an error.
- `pkg/cloudprovider/vsphere/config/types_yaml.go` @ v1.36.0: `CPIConfigYAML` adds `nodes`.
- `charts/vsphere-cpi/templates/configmap.yaml` @ v1.36.0: the chart's generated `global:` keys, among
  them `ca-file:` (the key the CPI does not read, hence our own config).
- `charts/vsphere-cpi/templates/daemonset.yaml` and `values.yaml` @ v1.36.0: with `config.enabled`
  false the DaemonSet mounts the ConfigMap `cloud-config` at `daemonset.cmdline.cloudConfig.dir` and
  passes `--cloud-config=<dir>/<file>`; `templates/secret.yaml` renders only when `config.enabled`.
The key sets below are transcribed from those files (names only). The stacks pin chart 1.35.1 (tag v1.35.1,
for Kubernetes 1.35): `git diff v1.35.1 v1.36.0 -- charts/vsphere-cpi` changes only Chart.yaml's versions, the
README and values.yaml's `daemonset.tag` (v1.35.1 -> v1.36.0), and both `types_yaml.go` files are identical
at the two tags, so every fact above holds for 1.35.1 too.
"""

from __future__ import annotations

import yaml

from components.storage import render

# CommonConfigYAML + CPIConfigYAML (yaml.v2 default names of the untagged fields Global, Vcenter, Labels, Nodes).
CPI_TOP_KEYS = {"global", "vcenter", "labels", "nodes"}
# GlobalYAML field tags.
CPI_GLOBAL_KEYS = {
    "user", "password", "server", "port", "insecureFlag", "datacenters", "soapRoundtripCount", "caFile",
    "thumbprint", "secretName", "secretNamespace", "secretsDirectory", "apiDisable", "apiBinding", "ipFamily",
}
# VirtualCenterConfigYAML field tags.
CPI_VCENTER_KEYS = {
    "user", "password", "server", "port", "insecureFlag", "datacenters", "soapRoundtripCount", "caFile",
    "thumbprint", "secretName", "secretNamespace", "ipFamily",
}
# charts/vsphere-cpi/templates/configmap.yaml: keys under `global:` (all branches of its if/else).
CHART_GLOBAL_KEYS = {"port", "thumbprint", "ca-file", "insecureFlag", "secretName", "secretNamespace"}
# charts/vsphere-cpi/templates/daemonset.yaml: the ConfigMap mounted when `config.enabled` is false.
CHART_FALLBACK_CONFIGMAP = "cloud-config"
# charts/vsphere-cpi/values.yaml: the value paths we set.
CHART_VALUE_PATHS = {
    ("config", "enabled"),
    ("config", "secret", "create"),
    ("daemonset", "tolerations"),
    ("daemonset", "image"),
    ("daemonset", "podAnnotations"),
    ("daemonset", "cmdline", "cloudConfig", "dir"),
    ("daemonset", "cmdline", "cloudConfig", "file"),
}

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
VARIANTS = {
    "thumbprint": render.VcenterAccess(server="vc.example.org", datacenter="DC", user="u", thumbprint="AB:CD"),
    "ca": render.VcenterAccess(server="vc.example.org", datacenter="DC", user="u", ca_certificate=PEM),
    "both": render.VcenterAccess(server="vc.example.org", datacenter="DC", user="u", thumbprint="AB", ca_certificate=PEM),
    "insecure": render.VcenterAccess(server="vc.example.org", datacenter="DC", user="u", insecure=True),
}


def leaf_paths(value: dict, prefix: tuple = ()) -> set[tuple]:
    paths = set()
    for key, item in value.items():
        if isinstance(item, dict) and item and key != "podAnnotations":
            paths |= leaf_paths(item, (*prefix, key))
        else:
            paths.add((*prefix, key))
    return paths


def test_every_key_we_write_is_one_the_cpi_reads():
    for name, access in VARIANTS.items():
        conf = yaml.safe_load(render.cpi_conf(access))
        assert set(conf) <= CPI_TOP_KEYS, name
        assert set(conf["global"]) <= CPI_GLOBAL_KEYS, name
        for vcenter in conf["vcenter"].values():
            assert set(vcenter) <= CPI_VCENTER_KEYS, name


def test_the_charts_ca_key_is_not_read_by_the_cpi_so_we_write_caFile():
    assert "ca-file" in CHART_GLOBAL_KEYS and "ca-file" not in CPI_GLOBAL_KEYS
    assert "caFile" in CPI_GLOBAL_KEYS
    conf = yaml.safe_load(render.cpi_conf(VARIANTS["ca"]))
    assert conf["global"]["caFile"] == render.CPI_CA_PATH


def test_the_secret_is_named_as_the_cpi_needs_it_and_no_credential_is_in_the_config():
    # validateConfig (pkg/common/config/config_yaml.go) takes the credentials from the Secret when both
    # secretName and secretNamespace are set and secretsDirectory is not.
    for access in VARIANTS.values():
        conf = yaml.safe_load(render.cpi_conf(access))
        assert conf["global"]["secretName"] and conf["global"]["secretNamespace"]
        assert "secretsDirectory" not in conf["global"]
        assert not {"user", "password"} & set(conf["global"])
        assert all(not {"user", "password"} & set(vc) for vc in conf["vcenter"].values())


def test_the_chart_mounts_our_configmap_and_reads_our_file():
    assert render.CPI_CONFIGMAP == CHART_FALLBACK_CONFIGMAP
    values = render.cpi_values(render.cpi_config_data(VARIANTS["ca"]), image="registry.example.org/cpi")
    assert values["config"]["enabled"] is False  # no chart ConfigMap (configmap.yaml) and no chart Secret
    assert values["daemonset"]["cmdline"]["cloudConfig"] == {"dir": render.CPI_CONFIG_DIR, "file": render.CPI_CONFIG_FILE}
    assert render.CPI_CA_PATH.startswith(render.CPI_CONFIG_DIR + "/")
    assert leaf_paths(values) <= CHART_VALUE_PATHS
