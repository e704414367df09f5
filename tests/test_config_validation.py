"""One test per validation rule, each asserting the exact message a user reads."""

from __future__ import annotations

import copy

import pytest

from config.errors import ConfigError
from config.secrets import SECRETS
from config.validate import SECRET_KEYS, validate
from tests.conftest import raw_config

DELETE = object()


def problems_with(*changes: tuple[str, object], secret_keys: set[str] | None = None) -> list[str]:
    """Validate the national stack with `("dotted.path", value)` changes applied; return the problems."""
    raw, secrets = raw_config("national")
    raw = copy.deepcopy(raw)
    for path, value in changes:
        *parents, last = path.split(".")
        node = raw
        for part in parents:
            node = node.setdefault(part, {})
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    if secret_keys is not None:
        # The secrets these tests do not name (the backup keys) stay secret.
        secret_keys = set(secret_keys) | (set(secrets) & {s.key for s in SECRETS if s.needed_when == "backup"})
    with pytest.raises(ConfigError) as caught:
        validate(raw, secret_keys if secret_keys is not None else secrets)
    return caught.value.problems


def test_prod_stack_is_valid():
    config = validate(*raw_config("national"))
    assert len(config.counties) == 50
    assert config.counties["nairobi"].settings.couchdb_nodes == 3
    assert config.counties["kwale"].settings.couchdb_nodes == 1
    assert config.counties["kwale"].host == "kwale.echis.moh.example.org"
    assert config.counties["nairobi"].settings.budget.cpu == 12


# --- unknown keys --------------------------------------------------------------------------------------


def test_unknown_top_level_key_suggests_the_right_one():
    assert problems_with(("countys", {"x": {}})) == [
        "cht-hosting:countys: unknown key; did you mean 'counties'? remove it or fix its spelling"
    ]


def test_unknown_key_inside_a_section():
    assert problems_with(("vsphere.datacentre", "DC")) == [
        "cht-hosting:vsphere.datacentre: unknown key; did you mean 'datacenter'? remove it or fix its spelling "
        "(allowed here: server, user, datacenter, computeCluster, resourcePool, datastore, network, template, "
        "folder, hardwareVersion, storageUser, manageCnsRoles, thumbprint, caCertificate, insecure)"
    ]


def test_unknown_key_inside_a_county_override():
    assert problems_with(("counties.kwale", {"couchdbNode": 3})) == [
        "cht-hosting:counties.kwale.couchdbNode: unknown key; did you mean 'couchdbNodes'? remove it or fix its "
        "spelling (allowed here: version, couchdbNodes, couchdbStorageGb, budget, hostTemplate, host, registry, "
        "upgrades, upgradeServiceImage, couchdbUser, quotaHeadroomPercent, logLevel, tls, migration, "
        "backupRetentionDays)"
    ]


def test_unknown_key_nested_in_a_county_budget():
    assert problems_with(("counties.kwale", {"budget": {"cpus": 2}})) == [
        "cht-hosting:counties.kwale.budget.cpus: unknown key; did you mean 'cpu'? remove it or fix its spelling "
        "(allowed here: cpu, memoryGb)"
    ]


def test_missing_section():
    assert problems_with(("k3s", DELETE)) == [
        "cht-hosting:k3s: is required; add it (see docs/config-reference.md)"
    ]


def test_missing_key_in_a_section():
    assert problems_with(("vsphere.template", DELETE)) == [
        "cht-hosting:vsphere.template: is required; add it (see docs/config-reference.md)"
    ]


# --- county names ----------------------------------------------------------------------------------------


def test_county_name_must_be_a_dns_label():
    assert problems_with(("counties.Homa_Bay", {})) == [
        "cht-hosting:counties.Homa_Bay: 'Homa_Bay' is not a valid county name; use lower-case letters, digits "
        "and '-', starting and ending with a letter or digit (it becomes the Kubernetes namespace), e.g. 'homa-bay'"
    ]


def test_county_name_too_long_for_derived_names():
    name = "a" * 51
    assert problems_with((f"counties.{name}", {})) == [
        f"cht-hosting:counties.{name}: '{name}' is 51 characters, too long for the names derived from it "
        f"(e.g. 'couchdb-pv-{name}-3'); use at most 50"
    ]


def test_county_name_of_a_system_namespace():
    assert problems_with(("counties.kube-system", {})) == [
        "cht-hosting:counties.kube-system: 'kube-system' is a namespace the cluster itself uses; "
        "choose another county name"
    ]


def test_county_override_must_be_a_mapping():
    assert problems_with(("counties.kwale", 3)) == [
        "cht-hosting:counties.kwale: must be a mapping of overrides (the same keys as `cht`), or {} for all "
        "defaults; got 3"
    ]


def test_empty_county_line_means_all_defaults():
    raw, secrets = raw_config("national")
    raw = copy.deepcopy(raw)
    raw["counties"]["new-county"] = None
    assert validate(raw, secrets).counties["new-county"].settings.version == "4.22.0"


# --- nodes and addresses -----------------------------------------------------------------------------------


def test_malformed_ip():
    assert problems_with(("agents.nodes.agent-1", "10.20.0.300")) == [
        "cht-hosting:agents.nodes.agent-1: '10.20.0.300' is not an IPv4 address; write four numbers 0-255, "
        "e.g. 10.20.0.11"
    ]


def test_node_name_must_be_a_dns_label():
    problems = problems_with(("agents.nodes.Agent_10", "10.20.0.40"))
    assert problems == [
        "cht-hosting:agents.nodes.Agent_10: 'Agent_10' is not a valid node name; use at most 63 lower-case "
        "letters, digits and '-', starting and ending with a letter or digit (it becomes the VM's host name "
        "and the Kubernetes node name)"
    ]


def test_duplicate_node_name_across_pools():
    assert problems_with(("agents.nodes.cp-1", "10.20.0.40")) == [
        "cht-hosting:agents.nodes.cp-1: node name 'cp-1' is also a control-plane node; node names must be unique "
        "across both pools, rename one"
    ]


def test_duplicate_ip():
    assert problems_with(("agents.nodes.agent-2", "10.20.0.21")) == [
        "cht-hosting:agents.nodes.agent-2: 10.20.0.21 is already the address of cht-hosting:agents.nodes.agent-1; "
        "give every node its own address"
    ]


def test_ip_outside_the_node_network():
    assert problems_with(("agents.nodes.agent-1", "10.30.0.21")) == [
        "cht-hosting:agents.nodes.agent-1: 10.30.0.21 is outside the node network 10.20.0.0/24; "
        "use an address inside it"
    ]


def test_ip_is_the_network_or_broadcast_address():
    assert problems_with(("agents.nodes.agent-1", "10.20.0.255")) == [
        "cht-hosting:agents.nodes.agent-1: 10.20.0.255 is the network or broadcast address of 10.20.0.0/24; "
        "use a host address"
    ]


def test_ip_equal_to_the_gateway():
    assert problems_with(("agents.nodes.agent-1", "10.20.0.1")) == [
        "cht-hosting:agents.nodes.agent-1: 10.20.0.1 is the gateway; use another address"
    ]


def test_ip_equal_to_the_api_endpoint():
    assert problems_with(("controlPlane.nodes.cp-1", "10.20.0.10")) == [
        "cht-hosting:controlPlane.nodes.cp-1: 10.20.0.10 is the k3s API endpoint (cht-hosting:k3s.apiEndpoint); "
        "the endpoint must be an address of its own"
    ]


def test_even_number_of_control_plane_nodes():
    assert problems_with(("controlPlane.nodes.cp-4", "10.20.0.14")) == [
        "cht-hosting:controlPlane.nodes: 4 control-plane nodes; etcd needs an odd number (1, 3 or 5) to keep "
        "quorum, add or remove one"
    ]


def test_no_agents():
    assert problems_with(("agents.nodes", {})) == [
        "cht-hosting:agents.nodes: no agents; CHT runs only on agents, add at least one"
    ]


def test_malformed_cidr():
    problems = problems_with(("network.cidr", "10.20.0.1/24"))
    assert problems[0] == (
        "cht-hosting:network.cidr: '10.20.0.1/24' is not an IPv4 network in CIDR form; write the network "
        "address and prefix, e.g. 10.20.0.0/24"
    )


def test_gateway_outside_the_node_network():
    assert problems_with(("network.gateway", "10.21.0.1")) == [
        "cht-hosting:network.gateway: 10.21.0.1 is outside the node network 10.20.0.0/24; use the router "
        "address inside it"
    ]


def test_kube_vip_needs_an_address_in_the_node_network():
    assert problems_with(("k3s.apiEndpoint", "10.99.0.10")) == [
        "cht-hosting:k3s.apiEndpoint: the kube-vip VIP 10.99.0.10 is outside the node network 10.20.0.0/24; "
        "use a free address inside it"
    ]


def test_kube_vip_needs_an_ip_not_a_name():
    assert problems_with(("k3s.apiEndpoint", "api.moh.example.org")) == [
        "cht-hosting:k3s.apiEndpoint: kube-vip needs an IPv4 address for the VIP, got 'api.moh.example.org'; "
        "use a free address in the node network, or set k3s.apiEndpointMode: load-balancer"
    ]


def test_load_balancer_endpoint_may_be_a_name():
    raw, secrets = raw_config("national")
    raw = copy.deepcopy(raw)
    raw["k3s"].update(apiEndpoint="api.moh.example.org", apiEndpointMode="load-balancer")
    assert validate(raw, secrets).k3s.api_endpoint == "api.moh.example.org"


def test_pod_network_overlapping_the_node_network():
    assert problems_with(("k3s.clusterCidr", "10.20.0.0/16")) == [
        "cht-hosting:k3s.clusterCidr: 10.20.0.0/16 overlaps the node network 10.20.0.0/24; choose a range "
        "that does not"
    ]


# --- versions ---------------------------------------------------------------------------------------------


def test_malformed_k3s_version():
    assert problems_with(("k3s.version", "1.36.3")) == [
        "cht-hosting:k3s.version: '1.36.3' is not a k3s release; write it as vX.Y.Z+k3sN, e.g. v1.36.1+k3s1"
    ]


def test_malformed_cht_version():
    assert problems_with(("cht.version", "4.22")) == [
        "cht-hosting:cht.version: '4.22' is not a CHT Core release; write it as X.Y.Z, e.g. 4.22.0"
    ]


def test_unsupported_cht_major():
    assert problems_with(("counties.kwale", {"version": "3.17.0"})) == [
        "cht-hosting:counties.kwale.version: CHT Core 3.17.0 is not supported; use a 4.x or 5.x release, "
        "e.g. 4.22.0"
    ]


def test_k3s_minor_not_supported_by_cpi_and_csi():
    assert problems_with(("k3s.version", "v1.37.1+k3s1")) == [
        "cht-hosting:cpi.version: vSphere CPI 1.35.1 supports Kubernetes 1.35, but k3s.version v1.37.1+k3s1 is "
        "Kubernetes 1.37; choose a k3s minor it supports",
        "cht-hosting:csi.version: vSphere CSI v3.7.3 supports Kubernetes 1.33, 1.34, 1.35, but k3s.version "
        "v1.37.1+k3s1 is Kubernetes 1.37; choose a k3s minor it supports",
    ]


def test_cpi_release_for_another_minor():
    assert problems_with(("cpi.version", "1.36.0")) == [
        "cht-hosting:cpi.version: vSphere CPI 1.36.0 supports Kubernetes 1.36, but k3s.version v1.35.8+k3s1 is "
        "Kubernetes 1.35; use 1.35.x"
    ]


def test_csi_release_not_in_the_table():
    assert problems_with(("csi.version", "v2.7.0")) == [
        "cht-hosting:csi.version: vSphere CSI v2.7.0 is not in the compatibility table "
        "(config/compatibility.yaml); use one of v3.4.x, v3.5.x, v3.6.x, v3.7.x, v3.8.x, or add its row there "
        "with a source"
    ]


def test_malformed_csi_version():
    assert problems_with(("csi.version", "3.8.0")) == [
        "cht-hosting:csi.version: '3.8.0' is not a vSphere CSI release; write it as vX.Y.Z, e.g. v3.8.0"
    ]


# --- CHT settings -----------------------------------------------------------------------------------------


def test_couchdb_nodes_must_be_1_or_3():
    assert problems_with(("counties.kwale", {"couchdbNodes": 2})) == [
        "cht-hosting:counties.kwale.couchdbNodes: CouchDB runs as 1 node or as a 3-node cluster, not 2; "
        "set 1 (recommended by Medic) or 3"
    ]


def test_couchdb_nodes_default_reported_once_not_per_county():
    assert problems_with(("cht.couchdbNodes", 5)) == [
        "cht-hosting:cht.couchdbNodes: CouchDB runs as 1 node or as a 3-node cluster, not 5; "
        "set 1 (recommended by Medic) or 3"
    ]


def test_storage_size_must_be_positive():
    assert problems_with(("counties.kwale", {"couchdbStorageGb": 0}), ("agents.diskGb", -5)) == [
        "cht-hosting:agents.diskGb: must be a positive number, got -5",
        "cht-hosting:counties.kwale.couchdbStorageGb: must be a positive number, got 0",
    ]


def test_storage_size_must_be_a_number():
    assert problems_with(("cht.couchdbStorageGb", "lots")) == [
        "cht-hosting:cht.couchdbStorageGb: must be a whole number, got 'lots'"
    ]


def test_duplicate_host_names():
    assert problems_with(("counties.kwale", {"host": "kilifi.echis.moh.example.org"})) == [
        "cht-hosting:counties.kilifi: host name kilifi.echis.moh.example.org is already used by county 'kwale'; "
        "give it its own host (set 'host', or fix cht.hostTemplate)"
    ]


def test_host_template_needs_the_county():
    assert problems_with(("cht.hostTemplate", "cht.example.org")) == [
        "cht-hosting:cht.hostTemplate: 'cht.example.org' must contain {county} exactly once and no other "
        "braces, e.g. {county}.cht.example.org"
    ]


def test_hardware_version_below_15():
    assert problems_with(("vsphere.hardwareVersion", 14)) == [
        "cht-hosting:vsphere.hardwareVersion: hardware version 14 cannot run the vSphere CSI driver; use one of "
        "15, 17, 18, 19, 20, 21, 22 (15 or higher, and no higher than your ESXi hosts support)"
    ]


# --- secrets ------------------------------------------------------------------------------------------------


def test_vcenter_password_is_required():
    assert problems_with(("vspherePassword", DELETE), secret_keys={"vsphereStoragePassword"}) == [
        "cht-hosting:vspherePassword: is required; set it with `pulumi config set --secret vspherePassword ...`"
    ]


def test_storage_password_is_required_with_a_storage_user():
    raw, secrets = raw_config("national")
    raw = {k: v for k, v in raw.items() if k != "vsphereStoragePassword"}
    with pytest.raises(ConfigError) as error:
        validate(raw, secrets)
    assert error.value.problems == [
        "cht-hosting:vsphereStoragePassword: is required because vsphere.storageUser is set; set it with "
        "`pulumi config set --secret vsphereStoragePassword ...`"
    ]


def test_storage_password_without_a_storage_user_is_refused():
    assert problems_with(("vsphere.storageUser", DELETE), ("vsphere.manageCnsRoles", False)) == [
        "cht-hosting:vsphereStoragePassword: is set, but vsphere.storageUser is not, so the CPI and CSI would log "
        "in as vsphere.user with this password; set vsphere.storageUser, or remove it with "
        "`pulumi config rm vsphereStoragePassword`"
    ]


def test_secret_stored_in_plain_text():
    assert problems_with(secret_keys={"vsphereStoragePassword"}) == [
        "cht-hosting:vspherePassword: is stored in plain text; set it with "
        "`pulumi config set --secret vspherePassword ...`"
    ]


def test_secret_inside_object_config_is_refused():
    assert problems_with(secret_keys={"vspherePassword", "vsphereStoragePassword", "vsphere"}) == [
        "cht-hosting:vsphere: is set as a secret, but secrets belong in keys of their own "
        f"({', '.join(SECRET_KEYS)}); set it again without --secret"
    ]


# --- all at once --------------------------------------------------------------------------------------------


def test_every_problem_is_listed_at_once():
    problems = problems_with(
        ("countys", {}),
        ("k3s.version", "latest"),
        ("controlPlane.nodes.cp-4", "10.20.0.14"),
        ("counties.kwale", {"couchdbNodes": 2}),
        ("agents.nodes.agent-9", "10.20.0.300"),
    )
    assert len(problems) == 5
    assert [p.split(":")[1].split(" ")[0] for p in problems] == [
        "countys",
        "agents.nodes.agent-9",
        "k3s.version",
        "counties.kwale.couchdbNodes",
        "controlPlane.nodes",
    ]
    assert str(ConfigError(problems)).startswith("The stack config has 5 problems:\n  - cht-hosting:countys")


# --- cluster modes ------------------------------------------------------------------------------------------


def test_dev_stack_is_an_existing_cluster_stack():
    config = validate(*raw_config("k3d"))
    assert config.cluster_mode == "existing"
    assert config.existing_cluster.storage_class == "local-path"
    assert (config.vsphere, config.k3s, config.agents, config.capacity) == (None, None, None, None)
    assert config.counties["kwale"].host == "kwale.localhost"


def test_unknown_cluster_mode():
    assert problems_with(("clusterMode", "eks")) == [
        "cht-hosting:clusterMode: must be vsphere-k3s or existing, got 'eks'; vsphere-k3s builds the whole "
        "platform, existing deploys counties onto a cluster you have"
    ]


def test_vsphere_options_are_refused_in_existing_mode():
    raw, _ = raw_config("k3d")
    raw = copy.deepcopy(raw)
    raw["agents"] = {"cpus": 48, "memoryGb": 192, "diskGb": 50, "nodes": {"agent-1": "10.20.0.21"}}
    raw["vspherePassword"] = "[secret]"
    with pytest.raises(ConfigError) as error:
        validate(raw, frozenset({"vspherePassword"}))
    assert error.value.problems == [
        "cht-hosting:vspherePassword: has no meaning when clusterMode is existing (the program creates no VMs, "
        "k3s, CPI or CSI); remove it with `pulumi config rm vspherePassword`",
        "cht-hosting:agents: has no meaning when clusterMode is existing (the program creates no VMs, k3s, CPI or "
        "CSI); remove it",
    ]


def test_existing_mode_needs_the_existing_cluster():
    raw, _ = raw_config("k3d")
    raw = {k: v for k, v in raw.items() if k != "existingCluster"}
    with pytest.raises(ConfigError) as error:
        validate(raw, frozenset())
    assert error.value.problems == [
        "cht-hosting:existingCluster: is required; add it (see docs/config-reference.md)"
    ]


def test_kubeconfig_secret_is_refused_in_vsphere_mode():
    raw, secrets = raw_config("national")
    raw = {**raw, "kubeconfig": "[secret]"}
    with pytest.raises(ConfigError) as error:
        validate(raw, secrets | {"kubeconfig"})
    assert error.value.problems == [
        "cht-hosting:kubeconfig: has no meaning when clusterMode is vsphere-k3s (the program builds VMs, k3s, the "
        "CPI and the CSI); remove it with `pulumi config rm kubeconfig`"
    ]


def test_node_problems_still_show_when_the_pool_size_is_wrong():
    assert problems_with(("controlPlane.diskGb", 0), ("controlPlane.nodes.cp-4", "10.20.0.21")) == [
        "cht-hosting:controlPlane.diskGb: must be a positive number, got 0",
        "cht-hosting:controlPlane.nodes: 4 control-plane nodes; etcd needs an odd number (1, 3 or 5) to keep "
        "quorum, add or remove one",
        "cht-hosting:agents.nodes.agent-1: 10.20.0.21 is already the address of cht-hosting:controlPlane.nodes.cp-4; "
        "give every node its own address",
    ]
