"""Where county pods may and may not connect outside their namespace, decided once from the stack config.

API and Sentinel reach the outside world (outbound push, SMS gateways), but never the node network, the
cluster's pod and Service networks (so no pod of another namespace, whether or not it has ingress policies
of its own: kube-system, velero, the CSI driver, the upgrade controller), the Kubernetes API, vCenter or
the operator's other protected networks; only Medic's upgrade service (4.x, admin-app) reaches the
Kubernetes API. Their own namespace's pods stay reachable through a policy of their own. The
NetworkPolicies are rendered from this (components/cht/render.py).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass

from .model import StackConfig

K3S_API_PORT = 6443
KUBERNETES_SERVICE_PORT = 443


@dataclass(frozen=True)
class ClusterAccess:
    protected: tuple[str, ...]
    """CIDRs API and Sentinel's outside-world egress leaves out: the node, pod and Service networks, the API
    endpoint, vCenter (when it is an address) and `network.protectedNetworks`."""
    kube_api: tuple[tuple[str, int], ...]
    """(CIDR, port) where the Kubernetes API answers, for the upgrade service."""
    scraped: bool = False
    """Monitoring is on: the monitoring namespace's scrapers (names.SCRAPER_POD_LABELS) reach the API port."""


def vcenter_by_name(config: StackConfig) -> bool:
    """vCenter given as a DNS name: its address is not known offline, so no policy can leave it out."""
    return config.cluster_mode != "existing" and _host(config.vsphere.server) is None


def _host(address: str) -> str | None:
    try:
        return f"{ipaddress.IPv4Address(address)}/32"
    except ValueError:
        return None  # a DNS name: its address is not known offline


def _within(cidr: str, networks: list[str]) -> bool:
    net = ipaddress.IPv4Network(cidr)
    return any(net.subnet_of(ipaddress.IPv4Network(n)) for n in networks)


def cluster_access(config: StackConfig) -> ClusterAccess:
    scraped = config.monitoring is not None and config.monitoring.enabled
    return dataclasses.replace(_access(config), scraped=scraped)


def _access(config: StackConfig) -> ClusterAccess:
    if config.cluster_mode == "existing":
        # The existing cluster's API address is not known here: the upgrade service may try the usual ports.
        return ClusterAccess(tuple(config.existing_cluster.protected_networks), (("0.0.0.0/0", KUBERNETES_SERVICE_PORT), ("0.0.0.0/0", K3S_API_PORT)))
    protected: list[str] = []
    # The `kubernetes` Service (first address of the service range): how pods reach the API before DNAT.
    kubernetes_service = f"{ipaddress.IPv4Network(config.k3s.service_cidr)[1]}/32"
    candidates = [
        config.network.cidr,
        config.k3s.cluster_cidr,
        config.k3s.service_cidr,
        _host(config.k3s.api_endpoint),
        _host(config.vsphere.server),
        *config.network.protected_networks,
    ]
    for cidr in candidates:
        if cidr and not _within(cidr, protected):
            # A wider network given later takes the place of those inside it.
            protected = [c for c in protected if not _within(c, [cidr])] + [str(ipaddress.IPv4Network(cidr))]
    api = [f"{ip}/32" for ip in config.control_plane.nodes.values()]
    if (endpoint := _host(config.k3s.api_endpoint)) and endpoint not in api:
        api.append(endpoint)
    kube_api = [(c, K3S_API_PORT) for c in api] + [(kubernetes_service, KUBERNETES_SERVICE_PORT)]
    return ClusterAccess(tuple(protected), tuple(kube_api))
