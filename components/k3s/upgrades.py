"""K3sUpgrades: rolling k3s upgrades inside the cluster, driven by `k3s.version`.

Creates, on the cluster's Kubernetes provider:
- system-upgrade-controller (its CRDs, then the controller, from the pinned release's manifests);
- the server Plan (one server at a time, cordoned) and the agent Plan, which waits for every server.

Bumping `k3s.version` changes the two Plans and nothing else: the controller then replaces the k3s binary
node by node, without any install command re-running or any VM being touched.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from config.names import UPGRADE_NAMESPACE

from . import plans


class K3sUpgrades(pulumi.ComponentResource):
    server_plan: k8s.apiextensions.CustomResource
    """The Plan that upgrades the servers, one at a time."""
    agent_plan: k8s.apiextensions.CustomResource
    """The Plan that upgrades the agents once all servers run the new version."""

    def __init__(
        self,
        name: str,
        *,
        version: str,
        controller_version: str,
        controller_url: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`opts` must carry the cluster's Kubernetes provider (`providers=[provider]`)."""
        super().__init__("cht-hosting:k3s:K3sUpgrades", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        releases = controller_url.replace("{version}", controller_version).rstrip("/")

        crds = k8s.yaml.v2.ConfigFile(
            f"{name}-crds", file=f"{releases}/crd.yaml", opts=child
        )
        # The controller manifest also creates the system-upgrade namespace and service account.
        controller = k8s.yaml.v2.ConfigFile(
            f"{name}-controller",
            file=f"{releases}/system-upgrade-controller.yaml",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[crds]),
        )
        server_spec, agent_spec = plans.upgrade_plans(version)
        after_controller = pulumi.ResourceOptions(parent=self, depends_on=[controller])
        self.server_plan = k8s.apiextensions.CustomResource(
            f"{name}-server-plan",
            api_version="upgrade.cattle.io/v1",
            kind="Plan",
            metadata={"name": plans.SERVER_PLAN, "namespace": UPGRADE_NAMESPACE},
            spec=server_spec,
            opts=after_controller,
        )
        self.agent_plan = k8s.apiextensions.CustomResource(
            f"{name}-agent-plan",
            api_version="upgrade.cattle.io/v1",
            kind="Plan",
            metadata={"name": plans.AGENT_PLAN, "namespace": UPGRADE_NAMESPACE},
            spec=agent_spec,
            opts=after_controller,
        )
        # Marks the component complete (the engine records it as created once its children are).
        self.register_outputs({})
