"""What a node VM hands to the components that configure it (K3sCluster, the CPI)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pulumi
from pulumi_command import remote


@dataclass(frozen=True)
class NodeHandle:
    """One node: its stable identity, its VM, and how to reach it over pinned SSH."""

    name: str
    """Node name from config: the VM name, host name and Kubernetes node name."""
    ip: str
    """Static IPv4 address from config."""
    role: Literal["server", "agent"]
    uuid: pulumi.Output[str]
    """The VM's BIOS UUID in lower case, as the kubelet's `provider-id=vsphere://<uuid>` needs it."""
    connection: remote.ConnectionArgs
    """SSH to the node as the admin user with the program's key, the node's host key pinned."""
    vm: pulumi.Resource
    """The VM resource, for `depends_on`."""
