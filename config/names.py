"""Names and limits that several areas share, stated once so config, the components, the offline plan and
the policy pack agree.

Standard library only: the policy pack (policy/__main__.py) loads this module on its own, in a venv without
the program's dependencies.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import re

# --- this project -------------------------------------------------------------------------------------------

PROJECT = "cht-hosting"
"""The Pulumi project (Pulumi.yaml `name`): config keys are `cht-hosting:<key>`."""


def cluster_identifier(stack: str) -> str:
    """The Kubernetes provider's fixed `clusterIdentifier` and the kubeconfig's cluster/user/context name.

    Fixed per stack so that a renewed kubeconfig or context updates the provider instead of replacing it.
    """
    return f"{PROJECT}-{stack}"


COUNTY_LABEL = f"{PROJECT}/county"
"""Every county's namespace and pods carry `cht-hosting/county: <county>`; the policy pack finds counties by it."""

# --- Kubernetes names -----------------------------------------------------------------------------------------

# RFC 1123 label: what Kubernetes accepts as a namespace and what DNS accepts between two dots.
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")  # \Z: `$` would accept a trailing newline
MAX_DNS_LABEL = 63
MAX_DNS_NAME = 253

KUBE_SYSTEM = "kube-system"
CSI_NAMESPACE = "vmware-system-csi"  # the vSphere CSI driver's manifests hard-code it
UPGRADE_NAMESPACE = "system-upgrade"  # system-upgrade-controller's manifest creates it
CPI_NAMESPACE = KUBE_SYSTEM
INGRESS_NAMESPACE = KUBE_SYSTEM  # where k3s runs its packaged traefik
# The one traefik ServersTransport (timeouts to CHT's API) every county's API Service names, in traefik's
# namespace, and how an Ingress-provider Service annotation names it: `<namespace>-<name>@kubernetescrd`
# (traefik v3.7.8 pkg/provider/kubernetes/crd/kubernetes.go makeID; components/edge/render.py).
API_TRANSPORT = "cht-api-transport"
API_TRANSPORT_REFERENCE = f"{INGRESS_NAMESPACE}-{API_TRANSPORT}@kubernetescrd"

# The platform monitoring stack's namespace (Prometheus, Alertmanager, the CHT json-exporter).
MONITORING_NAMESPACE = "monitoring"
# The pods that read the counties' API from the monitoring namespace (kube-prometheus-stack's Prometheus, for
# the express metrics; prometheus-json-exporter, for /api/v2/monitoring), as their charts label them: each
# county's API NetworkPolicy admits them (components/cht/render.py), the monitoring stack runs them.
SCRAPER_POD_LABELS = ({"app.kubernetes.io/name": "prometheus"}, {"app.kubernetes.io/name": "prometheus-json-exporter"})
BACKUP_NAMESPACE = "velero"  # backup.velero.namespace's default (Velero, its node agent and the drill)
VELERO_RELEASE = "velero"  # the Velero chart's release name: its objects' app.kubernetes.io/instance
# Velero's and its node agents' metrics (velero chart 12.1.0 values metrics.service / templates/service.yaml,
# templates/node-agent-daemonset.yaml): the port's name the scrapes use and its number the egress opens.
VELERO_METRICS_PORT_NAME = "http-monitoring"
VELERO_METRICS_PORT = 8085
DRILL_NAMESPACE = "restore-drill-scratch"  # where the restore drill brings a county back, and deletes it after

# Kubernetes namespaces the cluster itself uses, or that the add-ons an operator commonly installs beside it
# create (cert-manager for `tls.clusterIssuer`; Calico's operator on existing clusters; k3s's flannel); a county
# (whose name is its namespace) or another namespace setting must not take one of them. The configured backup
# namespace joins them (checks.reserved_names).
RESERVED_NAMESPACES = frozenset(
    {
        "default",
        KUBE_SYSTEM,
        "kube-public",
        "kube-node-lease",
        "kube-flannel",
        CSI_NAMESPACE,
        UPGRADE_NAMESPACE,
        MONITORING_NAMESPACE,
        BACKUP_NAMESPACE,
        DRILL_NAMESPACE,
        "cert-manager",
        "tigera-operator",
        "calico-system",
        "calico-apiserver",
    }
)

CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"  # k3s sets it to "true" on servers

# Keeps everything but critical add-ons (and what tolerates it) off the k3s servers, so CHT workloads only
# ever land on agents; the add-ons this program installs on the servers tolerate it.
SERVER_TAINT_KEY = "CriticalAddonsOnly"
SERVER_TAINT_EFFECT = "NoExecute"
SERVER_TAINT = f"{SERVER_TAINT_KEY}=true:{SERVER_TAINT_EFFECT}"  # k3s `node-taint` syntax
SERVER_TAINT_TOLERATION = {"key": SERVER_TAINT_KEY, "operator": "Exists", "effect": SERVER_TAINT_EFFECT}

# --- vSphere ----------------------------------------------------------------------------------------------------

CSI_DRIVER = "csi.vsphere.vmware.com"
"""The vSphere CSI driver's name: the StorageClass provisioner and a static PV's `csi.driver`."""

MAX_CSI_CLUSTER_ID = 64  # vsphere-csi-driver pkg/common/config: a longer cluster-id is refused
MIN_HARDWARE_VERSION = 15  # the vSphere CSI driver needs VM hardware version 15 or later

# cloud-init's VMware datasource (DataSourceVMware.decode): `guestinfo.<key>.encoding` values it understands.
GUESTINFO_BASE64 = ("base64", "b64")
GUESTINFO_GZIP_BASE64 = ("gzip+base64", "gz+b64")
GUESTINFO_ENCODINGS = GUESTINFO_BASE64 + GUESTINFO_GZIP_BASE64


def encode_guestinfo(text: str) -> tuple[str, str]:
    """`(data, encoding)` for a guestinfo key: base64, so YAML survives the VMX format."""
    return base64.b64encode(text.encode()).decode(), GUESTINFO_BASE64[0]


def decode_guestinfo(data: str, encoding: str) -> str:
    """What cloud-init reads from a guestinfo value and its `.encoding` (any other encoding: the value as is).

    Raises ValueError when the value does not decode as its encoding says.
    """
    try:
        if encoding in GUESTINFO_GZIP_BASE64:
            raw = gzip.decompress(base64.b64decode(data, validate=True))
        elif encoding in GUESTINFO_BASE64:
            raw = base64.b64decode(data, validate=True)
        else:
            return data
    except (binascii.Error, OSError, EOFError) as error:
        raise ValueError(f"not {encoding} data: {error}") from None
    return raw.decode("utf-8", errors="replace")


# --- a county's names -------------------------------------------------------------------------------------------

CREDENTIALS_SECRET = "cht-couchdb-credentials"
"""The county's CouchDB credentials (in its namespace); no other setting may name a Secret so."""

MAX_COUCHDB_NODES = 3


def namespace(county: str) -> str:
    return county


def service_host(service: str, namespace: str) -> str:
    """A Service's name inside the cluster (cluster DNS)."""
    return f"{service}.{namespace}.svc.cluster.local"


CHT_API_PORT = 5988
"""CHT's API (cht-core api/src/config: PORT 5988): traefik and the monitoring scrapes reach it."""

# What a county's objects tell the monitoring stack, so that one Probe, one ServiceMonitor and one rule group
# (components/monitoring) cover every county by labels, and adding a county changes nothing shared:
CHT_MAJOR_LABEL = f"{PROJECT}/cht-major"
"""On the county's namespace: the CHT major version in config ("4", "5"): the 4.x -> 5.x headroom alert."""
EXPRESS_METRICS_LABEL = f"{PROJECT}/express-metrics"
"""On the county's API Service, "true" when its CHT serves /api/v1/express-metrics (4.3.0 and later)."""
HOST_ANNOTATION = f"{PROJECT}/host"
"""On the county's API Service: the county's host, the `instance` its express metrics carry (as in Watchdog)."""


def schedule_name(county: str) -> str:
    """The county's Velero Schedule (in Velero's namespace): backup creates it, the county alerts find its backups
    by it in Velero's metrics (their `schedule` label); its backups are named `<schedule>-<timestamp>`."""
    return f"county-{county}"


def final_backup_name(county: str) -> str:
    """The Velero Backup taken when a county leaves config (backup takes it; the plan's change summary names it)."""
    return f"{schedule_name(county)}-final"


def static_pv_name(county: str, node: int) -> str:
    """A migrated county's pre-existing volume (cluster-scoped, so it carries the county)."""
    return f"couchdb-pv-{county}-{node}"


def max_county_name_length() -> int:
    """The longest county name whose every derived name is still a DNS-1123 label."""
    longest_suffix = max(
        len(namespace("")),
        len(static_pv_name("", MAX_COUCHDB_NODES)),
    )
    return MAX_DNS_LABEL - longest_suffix
