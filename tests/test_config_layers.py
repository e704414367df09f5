"""The layers of docs/config-checks.md that tests/hostile.py cannot reach: edits against a deployed state, warnings
(legal but careless settings), and the tables that several places read."""

from __future__ import annotations

from config import accept, guards, sections
from config import secrets as secret_table
from config.validate import foreign_key_problems, warnings
from tests import conftest
from tests.test_config_grammar import problems as refused
from tests.test_guards import BASE, CSI_ID, config_of, deployed_as, section

BACKUP = {"s3": {"endpoint": "https://s3.moh.example.org:9000", "bucket": "cht-backups"}}
BACKUP_KEYS = dict.fromkeys(conftest.BACKUP_KEYS, "[secret]")


def check(config, deployed) -> list[str]:
    return guards.check(config, deployed, csi_cluster_id=CSI_ID)


# --- guards ------------------------------------------------------------------------------------------------------


def test_renaming_the_storage_class_is_refused_until_accepted_by_its_procedure():
    renamed = config_of(storageClass={"name": "fast-sc"})
    (problem,) = check(renamed, deployed_as(BASE))
    assert problem.startswith("cht-hosting:storageClass.name: the counties' volumes were provisioned from StorageClass 'vmware-sc'")
    assert "docs/config-checks.md, 'Renaming the StorageClass'" in problem and "'storageClass.name'" in problem
    accepted = config_of(storageClass={"name": "fast-sc"}, deployedState={"accept": ["storageClass.name"]})
    assert check(accepted, deployed_as(BASE)) == []
    assert guards.unused_acceptances(config_of(deployedState={"accept": ["storageClass.name"]}), deployed_as(BASE))


def test_removing_backups_is_refused_until_accepted():
    with_backup = config_of(backup=BACKUP, **BACKUP_KEYS)
    (problem,) = check(BASE, deployed_as(with_backup))
    assert problem.startswith("cht-hosting:backup: backups are deployed, this config has none")
    assert "docs/config-checks.md, 'Turning backups off'" in problem
    assert check(config_of(deployedState={"accept": ["backup"]}), deployed_as(with_backup)) == []


def test_renaming_a_node_while_keeping_its_address_is_refused():
    nodes = dict(section("agents")["nodes"])
    nodes["agent-9"] = nodes.pop("agent-4")
    (problem,) = check(config_of(agents={**section("agents"), "nodes": nodes}), deployed_as(BASE))
    assert problem.startswith(
        "cht-hosting:agents.nodes.agent-9: takes 10.20.0.24, the address of deployed node agent-4, which this config removes"
    )
    assert "docs/runbooks/replace-node.md" in problem


def test_the_accept_forms_and_their_procedures_are_one_table():
    for entry in ("counties.kisumu.couchdbUser", "k3s.secretsEncryption", "storageClass.name", "backup"):
        assert accept.matching(entry) is not None
    assert accept.matching("counties.kisumu.couchdbNodes") is None
    assert all(a.procedure in accept.PROCEDURES for a in accept.ACCEPTANCES)
    (problem,) = refused(deployedState={"accept": ["counties.kisumu.couchdbNodes"]})
    assert all(a.form in problem for a in accept.ACCEPTANCES)


# --- warnings ------------------------------------------------------------------------------------------------------


def test_monitoring_without_a_receiver_warns_naming_the_key():
    found = warnings(BASE)
    assert any(w.startswith("cht-hosting:monitoring: alerts have no receiver") for w in found), found


def test_no_heartbeat_no_monitoring_or_no_drill_warn_naming_the_key():
    # Issue 22: a dead Prometheus or Alertmanager is noticed by no one without a heartbeat; issue 20: every
    # county's backup restored within 30 days. Turning either off is legal but careless.
    assert any(w.startswith("cht-hosting:monitoring.heartbeat: not set") for w in warnings(BASE))
    beat = {"heartbeat": {"url": "https://hc-ping.example.org/ping/abc"}, "email": {
        "to": ["ops@moh.example.org"], "from": "alerts@moh.example.org", "smarthost": "smtp.moh.example.org:587"}}
    assert not [w for w in warnings(config_of(monitoring=beat)) if "heartbeat" in w]
    off = warnings(config_of(monitoring={"enabled": False}))
    assert any(w.startswith("cht-hosting:monitoring.enabled: false, so no alert reaches anyone") for w in off), off
    assert not [w for w in warnings(BASE) if w.startswith("cht-hosting:monitoring.enabled")]
    with_backup = {**BACKUP_KEYS, "backup": {**BACKUP, "drill": {"enabled": False}}}
    assert any(w.startswith("cht-hosting:backup.drill.enabled: false") for w in warnings(config_of(**with_backup)))
    assert not [w for w in warnings(config_of(backup=BACKUP, **BACKUP_KEYS)) if "drill.enabled" in w]


def test_edge_proxies_trusted_as_everyone_or_the_pod_network_warn():
    for proxy in ("0.0.0.0/0", "10.42.0.0/16", "10.42.3.7"):
        found = warnings(config_of(ingress={"edgeProxies": [proxy]}))
        assert any(w.startswith(f"cht-hosting:ingress.edgeProxies: {proxy} ") for w in found), found


def test_more_dns_resolvers_than_pods_use_warn_naming_the_key():
    # kubernetes pkg/kubelet/network/dns/dns.go formDNSNameserversFitsLimits keeps validation.MaxDNSNameservers (3)
    # of a pod's nameservers; CoreDNS reads the node's resolvers that way.
    network = section("network")
    four = warnings(config_of(network={**network, "dns": ["10.20.0.2", "10.20.0.3", "10.20.0.4", "10.20.0.5"]}))
    assert [w for w in four if w.startswith("cht-hosting:network.dns: lists 4 resolvers; pods")], four
    three = warnings(config_of(network={**network, "dns": ["10.20.0.2", "10.20.0.3", "10.20.0.4"]}))
    assert not [w for w in three if w.startswith("cht-hosting:network.dns")]


def test_settings_ignored_in_the_mode_chosen_warn():
    found = warnings(config_of(k3s={**section("k3s"), "apiEndpointMode": "load-balancer", "kubeVipInterface": "ens192"}))
    assert any(w.startswith("cht-hosting:k3s.kubeVipInterface: is ignored") for w in found), found
    found = warnings(config_of(cht={**section("cht"), "upgradeServiceImage": "medicmobile/upgrade-service:0.33"}))
    assert any(w.startswith("cht-hosting:counties.kisumu.upgradeServiceImage: is ignored") for w in found), found


def test_ssh_root_is_refused_naming_disable_root():
    (problem,) = refused(ssh={**section("ssh"), "user": "root"})
    assert problem.startswith("cht-hosting:ssh.user:") and "disable_root" in problem


# --- tables and the stack file ---------------------------------------------------------------------------------


def test_backup_is_optional_in_the_sections_table_and_the_reference():
    spec = sections.BY_KEY["backup"]
    assert spec.presence == "off" and not spec.required_in("vsphere-k3s") and not spec.required_in("existing")
    assert "optional" in spec.summary


def test_conditional_secrets_come_from_the_table():
    needed = {s.key: s.needed_when for s in secret_table.SECRETS if s.needed_when}
    assert needed["vsphereStoragePassword"] == "vsphere.storageUser"
    assert needed["backupAccessKeyId"] == needed["backupSecretAccessKey"] == "backup"
    assert needed["etcdBackupAccessKeyId"] == needed["etcdBackupSecretAccessKey"] == "backup"
    assert needed["monitoringSmtpPassword"] == "monitoring.email.username"


def test_a_misspelled_namespace_is_one_problem_not_every_section_missing():
    keys = [f"cht-hostng:{k}" for k in ("vsphere", "network", "k3s", "cht", "counties")]
    (problem,) = foreign_key_problems(keys)
    assert problem.startswith("cht-hostng:vsphere, cht-hostng:network") and "did you mean 'cht-hosting:'?" in problem
