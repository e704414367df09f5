"""Builds the storage chain (CPI -> CSI -> StorageClass) on the mock engine, as __main__.py composes it."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.storage.cpi import VsphereCpi
from components.storage.csi import VsphereCsi
from components.storage.storage_class import StorageClass
from config.model import StackConfig
from config.validate import validate
from offline.engine import Evaluation, record
from tests.conftest import raw_config

PASSWORD = 'pw-with;#"\\-specials'  # gcfg comment characters, a quote and a backslash
KUBECONFIG = "apiVersion: v1\nkind: Config\n"


def stack_config(**sections: Any) -> StackConfig:
    """The national stack's config with whole sections replaced or merged (`vsphere={...}` merges keys)."""
    base, _ = raw_config("national")
    merged = {key: {**base.get(key, {}), **value} if isinstance(value, dict) else value for key, value in sections.items()}
    return validate(*raw_config("national", **merged))


def build(cfg: StackConfig, password: str = PASSWORD, control_plane_nodes: int | None = None) -> Evaluation:
    def program() -> None:
        provider = k8s.Provider("k8s", kubeconfig=pulumi.Output.secret(KUBECONFIG))
        secret = pulumi.Output.secret(password)
        cpi = VsphereCpi("vsphere-cpi", cfg.cpi, cfg.vsphere, secret, opts=pulumi.ResourceOptions(provider=provider))
        csi = VsphereCsi(
            "vsphere-csi",
            cfg.csi,
            cfg.vsphere,
            secret,
            control_plane_nodes if control_plane_nodes is not None else len(cfg.control_plane.nodes),
            opts=pulumi.ResourceOptions(provider=provider, depends_on=[cpi]),
        )
        storage = StorageClass(
            "storage-class", cfg.storage_class, opts=pulumi.ResourceOptions(provider=provider, depends_on=[csi])
        )
        pulumi.export("storageClass", storage.name)
        pulumi.export("csiClusterId", csi.cluster_id)
        pulumi.export("snapshotClass", csi.snapshot_class_name)

    return record(program, stack="prod")


def provider_urn(evaluation: Evaluation) -> str:
    return evaluation.named("k8s").urn
