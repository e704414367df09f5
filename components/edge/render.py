"""Pure renders for the way in: traefik's settings on k3s and the edge nginx in front of the cluster.

Client addresses, end to end: the edge nginx passes TLS through (stream module, no HTTP) and prepends the
PROXY protocol header (`proxy_protocol on;`); traefik's websecure entrypoint reads that header from the edge
proxies' addresses only (`proxyProtocol.trustedIPs`) and sets X-Forwarded-For from it; CHT's API trusts
X-Forwarded-For (`trust proxy`). For traefik to see the edge proxy's address at all, its Service keeps the
source address (`externalTrafficPolicy: Local`), which needs a traefik pod on every agent the edge targets:
hence a DaemonSet on the agents instead of a Deployment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import yaml

from config import names
from config.capacity import TRAEFIK

# CHT's own nginx gives the API 3600 s (cht-core nginx/nginx.conf proxy_read_timeout).
API_PROXY_TIMEOUT_SECONDS = 3600


def api_servers_transport() -> dict:
    """traefik -> CHT API timeouts as CHT nginx's proxy_read_timeout (3600 s): one ServersTransport in traefik's
    namespace that every county's API Service names in its annotation `service.serverstransport`
    (names.API_TRANSPORT_REFERENCE). traefik v3.7.8 takes that annotation of the Kubernetes Ingress provider
    verbatim as the service's transport name (pkg/provider/kubernetes/ingress/kubernetes.go, refused only when
    the provider's `crossProviderNamespaces` is set and leaves the Service's namespace out; k3s's chart leaves
    it unset), and the CRD provider registers every ServersTransport it watches as `<namespace>-<name>`
    (pkg/provider/kubernetes/crd/kubernetes.go makeID). Its `allowCrossNamespace` is checked only where an
    IngressRoute of the CRD provider names a transport (crd/kubernetes_http.go makeServersTransportKey), not
    on this path. The client-side read/write/idle timeouts belong to traefik's entrypoints (traefik_values)."""
    return {
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "ServersTransport",
        "metadata": {
            "name": names.API_TRANSPORT,
            "namespace": names.INGRESS_NAMESPACE,
            "labels": {"app.kubernetes.io/managed-by": names.PROJECT, "app.kubernetes.io/part-of": "cht"},
        },
        "spec": {
            "forwardingTimeouts": {
                "dialTimeout": "30s",
                "responseHeaderTimeout": f"{API_PROXY_TIMEOUT_SECONDS}s",
                "idleConnTimeout": f"{API_PROXY_TIMEOUT_SECONDS}s",
            }
        },
    }


def traefik_values(
    *,
    https_node_port: int,
    http_node_port: int,
    timeout_seconds: int,
    edge_proxies: Sequence[str] = (),
    chart_v40: bool = True,
) -> str:
    """valuesContent of k3s's HelmChartConfig for its bundled traefik chart (traefik-helm-chart values keys).

    servicelb is disabled (no LoadBalancer implementation), so traefik is published on fixed NodePorts the
    edge nginx can target. The entrypoint timeouts are cluster-wide: they match CHT's nginx (3600 s), so a
    slow upload or a long sync is not cut off at traefik's 60 s default. With edge proxies, websecure reads
    the PROXY protocol from them only (forwarded headers stay untrusted: a client cannot forge its address).

    `chart_v40`: the chart k3s bundles is traefik-helm-chart v40 or later (config/compatibility.yaml
    `traefikChart`). v40's Service template copies only `service.spec`, so the type goes there; v39 reads
    `service.type` and would render a second `type:` if `service.spec` also held one.
    """
    timeouts = {name: f"{timeout_seconds}s" for name in ("readTimeout", "writeTimeout", "idleTimeout")}
    websecure: dict = {"nodePort": https_node_port, "transport": {"respondingTimeouts": timeouts}}
    if edge_proxies:
        websecure["proxyProtocol"] = {"trustedIPs": list(edge_proxies)}
    values = {
        # One traefik on every agent (tolerations [] keeps it off the tainted servers, which k3s's defaults
        # tolerate): with externalTrafficPolicy Local a node without a traefik pod would drop the connection.
        "deployment": {"kind": "DaemonSet"},
        "tolerations": [],
        # What the capacity check takes off every agent for it (config/capacity.py TRAEFIK).
        "resources": TRAEFIK.resources(),
        "service": (
            {"spec": {"type": "NodePort", "externalTrafficPolicy": "Local"}}
            if chart_v40
            else {"type": "NodePort", "spec": {"externalTrafficPolicy": "Local"}}
        ),
        "ports": {
            "web": {"nodePort": http_node_port, "transport": {"respondingTimeouts": timeouts}},
            "websecure": websecure,
        },
    }
    return yaml.safe_dump(values, sort_keys=True)


def edge_nginx_config(
    hosts: Mapping[str, str],
    node_ips: Sequence[str],
    *,
    https_node_port: int,
    stack: str,
    timeout_seconds: int,
    proxy_protocol: bool = False,
) -> str:
    """nginx config for an edge proxy outside the cluster: each county's host name -> traefik on the nodes.

    TLS passes through by SNI (certificates live in the cluster, per county); hosts that are not a county
    are closed. Port 80 only redirects to https. `hosts` maps county -> host name. With `proxy_protocol`
    the client's address travels to traefik in a PROXY protocol header (traefik must trust this proxy:
    `ingress.edgeProxies`). No request-body limit is possible here: the stream module never sees HTTP.
    """
    tag = f"cht_hosting_{stack.replace('-', '_')}"
    width = max((len(h) for h in hosts.values()), default=0)
    routes = "\n".join(f"        {host:<{width}}  {tag}_traefik;  # {county}" for county, host in hosts.items())
    servers = "\n".join(f"        server {ip}:{https_node_port} max_fails=2 fail_timeout=10s;" for ip in node_ips)
    names = " ".join(hosts.values())
    proxy_line = (
        "        proxy_protocol on;  # the client's address, for traefik (ingress.edgeProxies lists this proxy)\n"
        if proxy_protocol
        else ""
    )
    return (
        f"# Edge nginx for cht-hosting stack '{stack}': county host names -> traefik on the cluster's nodes.\n"
        "# 1) At the top level of nginx.conf (outside `http`, needs the stream module): HTTPS passes through.\n"
        "stream {\n"
        f"    map $ssl_preread_server_name ${tag}_backend {{\n"
        f"{routes}\n"
        f"        {'default':<{width}}  {tag}_closed;\n"
        "    }\n"
        f"    upstream {tag}_traefik {{\n"
        f"{servers}\n"
        "    }\n"
        f"    upstream {tag}_closed {{\n"
        "        server 127.0.0.1:9;  # discard: a host name that is not a county gets no answer\n"
        "    }\n"
        "    server {\n"
        "        listen 443;\n"
        "        ssl_preread on;\n"
        f"        proxy_pass ${tag}_backend;\n"
        f"{proxy_line}"
        "        proxy_connect_timeout 5s;\n"
        f"        proxy_timeout {timeout_seconds}s;\n"
        "    }\n"
        "}\n"
        "# 2) Inside the `http` block: plain HTTP only redirects.\n"
        "# server {\n"
        "#     listen 80;\n"
        f"#     server_name {names};\n"
        "#     return 301 https://$host$request_uri;\n"
        "# }\n"
    )
