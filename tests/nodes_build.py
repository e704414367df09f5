"""Build the node components from a validated stack config on fresh mocks (shared by the node tests)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi

from components.ssh.trust import SshTrust
from components.vsphere.access import VsphereAccess
from components.vsphere.node import NodeHandle
from components.vsphere.node_pool import NodePool
from config import Secrets
from config.model import StackConfig
from config.validate import validate
from offline.engine import Evaluation, record
from tests.conftest import raw_config

PASSWORD = "vcenter-password-for-tests"


@dataclass
class Built:
    evaluation: Evaluation
    nodes: dict[str, NodeHandle] = field(default_factory=dict)


def national_config(**overrides) -> StackConfig:
    return validate(*raw_config("national", **overrides))


def build(cfg: StackConfig, export_handles: bool = True) -> Built:
    nodes: dict[str, NodeHandle] = {}

    def program():
        secrets = Secrets(vsphere_password=pulumi.Output.secret(PASSWORD), vsphere_storage_password=None)
        access = VsphereAccess("vsphere", cfg.vsphere, secrets)
        trust = SshTrust("ssh", cfg.ssh)
        common = dict(access=access, network=cfg.network, trust=trust)
        nodes.update(NodePool("control-plane", cfg.control_plane, role="server", **common).nodes)
        nodes.update(NodePool("agents", cfg.agents, role="agent", **common).nodes)
        if export_handles:
            # Resolve what the handles carry, so tests can assert on the values K3sCluster will see.
            pulumi.export(
                "handles",
                {
                    name: {
                        "ip": h.ip,
                        "role": h.role,
                        "uuid": h.uuid,
                        "host": h.connection.host,
                        "user": h.connection.user,
                        "privateKey": h.connection.private_key,
                        "privateKeyIsSecret": h.connection.private_key.is_secret(),
                        "hostKey": h.connection.host_key,
                        "perDialTimeout": h.connection.per_dial_timeout,
                        "dialErrorLimit": h.connection.dial_error_limit,
                    }
                    for name, h in nodes.items()
                },
            )

    evaluation = record(program, secret_keys=())
    return Built(evaluation, nodes)
