"""IngressEdge: how county traffic reaches the cluster.

Creates k3s's HelmChartConfig for its bundled traefik (a DaemonSet on the agents on fixed NodePorts, CHT's
timeouts, the PROXY protocol from the edge proxies) and renders the edge nginx config that routes each
county's host name to traefik on the agents, sending the client's address along.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_kubernetes as k8s

from config.model import IngressConfig
from config.names import INGRESS_NAMESPACE

from .render import api_servers_transport, edge_nginx_config, traefik_values


def api_transport(opts: pulumi.ResourceOptions) -> k8s.apiextensions.CustomResource:
    """The one ServersTransport (traefik -> CHT API timeouts) every county's API Service names: owned by the
    stack that owns traefik's settings (the platform), whichever cluster mode."""
    obj = api_servers_transport()
    return k8s.apiextensions.CustomResource(
        "api-transport", api_version=obj["apiVersion"], kind=obj["kind"], metadata=obj["metadata"], spec=obj["spec"], opts=opts
    )


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
        traefik_chart_v40: bool,
        opts: pulumi.ResourceOptions | None = None,
    ):
        # The component was typed `cht-hosting:k3s:IngressEdge` before the edge package existed; the alias keeps
        # its children (traefik's HelmChartConfig) from being deleted and recreated.
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(aliases=[pulumi.Alias(type_="cht-hosting:k3s:IngressEdge")]))
        super().__init__("cht-hosting:edge:IngressEdge", name, None, opts)
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
                    timeout_seconds=ingress.timeout_seconds,
                    edge_proxies=ingress.edge_proxies,
                    chart_v40=traefik_chart_v40,
                )
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        # After traefik's settings: the CRD that defines it comes with traefik.
        self.api_transport = api_transport(pulumi.ResourceOptions(parent=self, depends_on=[self.traefik]))
        self.edge_nginx_config = edge_nginx_config(
            hosts,
            agent_ips,
            https_node_port=ingress.https_node_port,
            stack=pulumi.get_stack(),
            timeout_seconds=ingress.timeout_seconds,
            # traefik and the edge agree: the PROXY protocol is sent exactly when traefik trusts the edge.
            proxy_protocol=bool(ingress.edge_proxies),
        )
        # Marks the component complete; the edge config is exported by the program.
        self.register_outputs({"edgeNginxConfig": self.edge_nginx_config})
