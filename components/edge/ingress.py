"""IngressEdge: how county traffic reaches the cluster.

Creates k3s's HelmChartConfig for its bundled traefik (fixed NodePorts, replicas, CHT's timeouts) and
renders the edge nginx config that routes each county's host name to traefik on the agents.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_kubernetes as k8s

from config.model import IngressConfig
from config.names import INGRESS_NAMESPACE

from .render import edge_nginx_config, traefik_values


class IngressEdge(pulumi.ComponentResource):
    edge_nginx_config: str
    """nginx config for the edge proxy outside the cluster (stream block plus an http redirect)."""

    def __init__(
        self,
        name: str,
        ingress: IngressConfig,
        *,
        hosts: Mapping[str, str],
        agent_ips: Sequence[str],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("cht-hosting:k3s:IngressEdge", name, None, opts)
        # k3s's helm controller merges this into the traefik chart it deploys (and redeploys on change).
        self.traefik = k8s.apiextensions.CustomResource(
            f"{name}-traefik",
            api_version="helm.cattle.io/v1",
            kind="HelmChartConfig",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="traefik", namespace=INGRESS_NAMESPACE),
            spec={
                "valuesContent": traefik_values(
                    https_node_port=ingress.https_node_port,
                    http_node_port=ingress.http_node_port,
                    replicas=ingress.replicas,
                    timeout_seconds=ingress.timeout_seconds,
                )
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.edge_nginx_config = edge_nginx_config(
            hosts,
            agent_ips,
            https_node_port=ingress.https_node_port,
            stack=pulumi.get_stack(),
            timeout_seconds=ingress.timeout_seconds,
        )
        # Marks the component complete; the edge config is exported by the program.
        self.register_outputs({"edgeNginxConfig": self.edge_nginx_config})
