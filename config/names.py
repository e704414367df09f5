"""Names derived from config keys, in one place so validation and the components agree."""

from __future__ import annotations

import re

# RFC 1123 label: what Kubernetes accepts as a namespace and what DNS accepts between two dots.
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

# Kubernetes namespaces the cluster itself uses; a county must not take one of them.
RESERVED_NAMESPACES = frozenset(
    {"default", "kube-system", "kube-public", "kube-node-lease", "vmware-system-csi", "system-upgrade"}
)
MAX_COUCHDB_NODES = 3


def namespace(county: str) -> str:
    return county


def static_pv_name(county: str, node: int) -> str:
    """A migrated county's pre-existing volume (cluster-scoped, so it carries the county)."""
    return f"couchdb-pv-{county}-{node}"


def max_county_name_length() -> int:
    """The longest county name whose every derived name is still a DNS-1123 label (63 characters)."""
    longest_suffix = max(
        len(namespace("")),
        len(static_pv_name("", MAX_COUCHDB_NODES)),
    )
    return 63 - longest_suffix
