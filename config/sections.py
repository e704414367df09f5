"""The one table of config sections (`cht-hosting:<key>`): which model reads it, in which cluster modes, and what
its absence means. Validation, the guards, the offline plan and the generated config reference read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .model import (
    BackupConfig,
    CapacityConfig,
    ChtSettings,
    CpiConfig,
    CsiConfig,
    DeployedStateConfig,
    ExistingClusterConfig,
    IngressConfig,
    K3sConfig,
    Model,
    MonitoringConfig,
    NetworkConfig,
    NodePoolConfig,
    SshConfig,
    StacksConfig,
    StorageClassConfig,
    VsphereConfig,
)

MODES = ("vsphere-k3s", "existing")
BOTH = MODES
VSPHERE: tuple[str, ...] = ("vsphere-k3s",)
EXISTING: tuple[str, ...] = ("existing",)
MODE_PURPOSE = {
    "vsphere-k3s": "the program builds VMs, k3s, the CPI and the CSI",
    "existing": "the program creates no VMs, k3s, CPI or CSI",
}

Presence = Literal["required", "defaults", "off"]
"""required: must be set in its modes; defaults: absent means every default; off: absent turns the feature off."""


@dataclass(frozen=True)
class SectionSpec:
    key: str
    model: type[Model]
    modes: tuple[str, ...]
    """The cluster modes that read it; set in another mode, it is refused (it would be ignored)."""
    presence: Presence

    def required_in(self, mode: str) -> bool:
        return self.presence == "required" and mode in self.modes

    @property
    def summary(self) -> str:
        """`vsphere-k3s` mode, required (the reference's heading)."""
        modes = " and ".join(f"`{m}`" for m in self.modes)
        need = {"required": "required", "defaults": "optional", "off": "optional; absent: off"}[self.presence]
        return f"{modes} mode{'s' if len(self.modes) > 1 else ''}, {need}"


# In the order the reference documents them.
SECTIONS: tuple[SectionSpec, ...] = (
    SectionSpec("vsphere", VsphereConfig, VSPHERE, "required"),
    SectionSpec("network", NetworkConfig, VSPHERE, "required"),
    SectionSpec("controlPlane", NodePoolConfig, VSPHERE, "required"),
    SectionSpec("agents", NodePoolConfig, VSPHERE, "required"),
    SectionSpec("ssh", SshConfig, VSPHERE, "defaults"),
    SectionSpec("k3s", K3sConfig, VSPHERE, "required"),
    SectionSpec("cpi", CpiConfig, VSPHERE, "required"),
    SectionSpec("csi", CsiConfig, VSPHERE, "required"),
    SectionSpec("storageClass", StorageClassConfig, VSPHERE, "defaults"),
    SectionSpec("ingress", IngressConfig, VSPHERE, "defaults"),
    SectionSpec("capacity", CapacityConfig, VSPHERE, "defaults"),
    SectionSpec("existingCluster", ExistingClusterConfig, EXISTING, "required"),
    SectionSpec("backup", BackupConfig, BOTH, "off"),
    SectionSpec("monitoring", MonitoringConfig, BOTH, "defaults"),
    SectionSpec("deployedState", DeployedStateConfig, BOTH, "defaults"),
    SectionSpec("stacks", StacksConfig, BOTH, "off"),
    SectionSpec("cht", ChtSettings, BOTH, "required"),
)
BY_KEY: dict[str, SectionSpec] = {s.key: s for s in SECTIONS}
# Keys that are neither a section nor a secret.
OTHER_KEYS = ("clusterMode", "counties")
