"""The way in: traefik on fixed NodePorts with CHT's timeouts, and the edge nginx config."""

from __future__ import annotations

import re

import pulumi
import pytest
import yaml

from components.edge.ingress import IngressEdge
from components.edge.render import edge_nginx_config, traefik_values
from config.model import IngressConfig
from offline.engine import record
from tests.test_config_validation import problems_with

HOSTS = {"nairobi": "nairobi.echis.example.org", "kwale": "kwale.echis.example.org"}


def test_traefik_is_published_on_fixed_node_ports_with_chts_timeouts():
    values = yaml.safe_load(traefik_values(https_node_port=30443, http_node_port=30080, timeout_seconds=3600))
    assert values["ports"]["websecure"]["nodePort"] == 30443
    assert values["ports"]["web"]["nodePort"] == 30080
    for port in ("web", "websecure"):
        assert values["ports"][port]["transport"]["respondingTimeouts"] == {
            "readTimeout": "3600s", "writeTimeout": "3600s", "idleTimeout": "3600s"
        }
    assert "proxyProtocol" not in values["ports"]["websecure"]  # no edge proxies: nothing to trust


def test_traefik_trusts_the_proxy_protocol_from_the_edge_proxies_only_and_keeps_their_address():
    """traefik/traefik-helm-chart traefik/values.yaml (v39.0.0 and v41.3.0 alike): `ports.<entrypoint>.proxyProtocol.
    trustedIPs`, `deployment.kind` (Deployment or DaemonSet), `service.spec` (merged into the Service spec, e.g.
    externalTrafficPolicy), `tolerations`. k3s's own traefik values tolerate CriticalAddonsOnly (k3s
    manifests/traefik.yaml), the servers' taint: hence `tolerations: []` for the DaemonSet."""
    values = yaml.safe_load(
        traefik_values(https_node_port=30443, http_node_port=30080, timeout_seconds=3600, edge_proxies=["192.0.2.10", "192.0.2.0/28"])
    )
    websecure = values["ports"]["websecure"]
    assert websecure["proxyProtocol"] == {"trustedIPs": ["192.0.2.10", "192.0.2.0/28"]}
    assert "insecure" not in websecure["proxyProtocol"] and "forwardedHeaders" not in websecure  # clients cannot forge it
    assert "proxyProtocol" not in values["ports"]["web"]  # the edge's port 80 only redirects, without PROXY protocol
    # The edge proxy's address must reach traefik: no SNAT (Local), so a traefik on every agent the edge targets.
    assert values["service"]["spec"]["externalTrafficPolicy"] == "Local"  # the type: tests/test_traefik_chart.py
    assert values["deployment"] == {"kind": "DaemonSet"}
    assert values["tolerations"] == []  # not on the tainted servers, which the edge does not target


def test_edge_nginx_routes_every_county_host_to_traefik_on_every_agent():
    text = edge_nginx_config(HOSTS, ["10.0.0.21", "10.0.0.22"], https_node_port=30443, stack="prod", timeout_seconds=3600)
    routes = dict(re.findall(r"^\s+(\S+)\s+(cht_hosting_prod_\w+);", text, flags=re.M))
    assert routes == {
        "nairobi.echis.example.org": "cht_hosting_prod_traefik",
        "kwale.echis.example.org": "cht_hosting_prod_traefik",
        "default": "cht_hosting_prod_closed",
    }
    assert re.findall(r"server (\S+) max_fails", text) == ["10.0.0.21:30443", "10.0.0.22:30443"]
    assert "ssl_preread on;" in text and "proxy_timeout 3600s;" in text
    assert "#     server_name nairobi.echis.example.org kwale.echis.example.org;" in text
    assert text.count("{") == text.count("}")


def test_component_registers_k3s_traefik_helm_chart_config():
    def build():
        edge = IngressEdge(
            "ingress", IngressConfig(edgeProxies=["192.0.2.10"]), hosts=HOSTS, agent_ips=["10.0.0.21"], traefik_chart_v40=True
        )
        pulumi.export("edge", edge.edge_nginx_config)

    evaluation = record(build)
    config = evaluation.named("ingress-traefik")
    assert config.type == "kubernetes:helm.cattle.io/v1:HelmChartConfig"
    assert config.inputs["metadata"] == {"name": "traefik", "namespace": "kube-system"}
    values = yaml.safe_load(config.inputs["spec"]["valuesContent"])
    assert values["ports"]["websecure"]["nodePort"] == 30443
    assert config.parent == evaluation.named("ingress").urn
    # The edge and traefik agree: the PROXY protocol is sent exactly when traefik trusts the edge.
    assert values["ports"]["websecure"]["proxyProtocol"]["trustedIPs"] == ["192.0.2.10"]
    assert "proxy_protocol on;" in evaluation.outputs["edge"]
    assert evaluation.named("ingress").type == "cht-hosting:edge:IngressEdge"


def test_node_port_outside_the_kubernetes_range_is_refused():
    assert problems_with(("ingress", {"httpsNodePort": 443, "httpNodePort": 40000})) == [
        "cht-hosting:ingress.httpsNodePort: must be at least 30000, got 443",
        "cht-hosting:ingress.httpNodePort: must be at most 32767, got 40000",
    ]


def test_edge_proxies_must_be_addresses_or_networks():
    assert problems_with(("ingress", {"edgeProxies": ["edge-1.example.org", "10.0.0.0/33"]})) == [
        "cht-hosting:ingress.edgeProxies[0]: 'edge-1.example.org' is not an IPv4 address or network; write e.g. "
        "10.20.0.5 or 10.20.1.0/28",
        "cht-hosting:ingress.edgeProxies[1]: '10.0.0.0/33' is not an IPv4 address or network; write e.g. "
        "10.20.0.5 or 10.20.1.0/28",
    ]


# --- the one ServersTransport every county names -------------------------------------------------------------------


def traefik_transport_of(service: dict, transports: list[dict], cross_provider_namespaces: list[str] | None = None) -> dict:
    """Stand-in for traefik v3.7.8 (the pinned k3s v1.35.8+k3s1 ships Traefik v3.7.8) resolving the transport of a
    Service behind a Kubernetes Ingress, as upstream does:
    - pkg/provider/kubernetes/ingress/kubernetes.go (loadService): the annotation
      `traefik.ingress.kubernetes.io/service.serverstransport` is taken verbatim; refused only when the provider's
      `crossProviderNamespaces` is set and leaves out the Service's namespace. No other namespace check.
    - pkg/provider/kubernetes/crd/kubernetes.go: every watched ServersTransport is registered as
      `Normalize(makeID(namespace, name))` (makeID: `<namespace>-<name>`; pkg/provider/configuration.go
      Normalize joins the runs of letters and digits with `-`) under the provider `kubernetescrd`.
      `allowCrossNamespace` is read only in crd/kubernetes_http.go makeServersTransportKey (an IngressRoute's
      reference), not on this path.
    - pkg/server/service/service.go: a name with `@` is already qualified; a missing transport fails the service."""
    namespace = service["metadata"]["namespace"]
    reference = service["metadata"]["annotations"]["traefik.ingress.kubernetes.io/service.serverstransport"]
    if cross_provider_namespaces is not None and namespace not in cross_provider_namespaces:
        raise LookupError(f'cross-provider serversTransport reference is not allowed from namespace "{namespace}"')

    def normalize(name: str) -> str:
        return "-".join(part for part in re.split(r"[^0-9A-Za-z]+", name) if part)

    registered = {
        normalize(f"{t['metadata']['namespace']}-{t['metadata']['name']}") + "@kubernetescrd": t for t in transports
    }
    if reference not in registered:
        raise LookupError(f"servers transport not found {reference}")
    return registered[reference]


def test_every_county_api_service_resolves_to_the_platforms_one_transport():
    """Issue 24: one ServersTransport in traefik's namespace instead of one per county. traefik resolves a county's
    cross-namespace reference through the Ingress provider with no namespace rule (see the stand-in), and the
    chart k3s bundles renders no `crossProviderNamespaces` (traefik-helm-chart v40.0.0 traefik/templates: no such
    option; its values only have kubernetesCRD.allowCrossNamespace, which this path does not read), nor do our
    values add it."""
    from components.cht import render as cht
    from components.edge.render import api_servers_transport
    from config.model import ChtSettings

    transport = api_servers_transport()
    assert transport["metadata"]["namespace"] == "kube-system"
    assert transport["spec"]["forwardingTimeouts"]["responseHeaderTimeout"] == "3600s"  # CHT nginx's proxy_read_timeout
    settings = ChtSettings.model_validate({"version": "4.22.0"})
    for county in ("kwale", "nairobi", "taita-taveta"):
        (api,) = [s.service_object for s in cht.stateless_services(settings, county) if s.service == "api"]
        assert traefik_transport_of(api, [transport]) is transport
        # Were traefik told to restrict cross-provider references, the county's namespace would be refused
        # (as the per-county transports were): the stand-in enforces what traefik checks.
        with pytest.raises(LookupError):
            traefik_transport_of(api, [transport], cross_provider_namespaces=["kube-system"])
    values = traefik_values(https_node_port=30443, http_node_port=30080, timeout_seconds=3600, edge_proxies=["192.0.2.10"])
    assert "crossProviderNamespaces" not in values and "additionalArguments" not in values


def test_the_platform_makes_the_transport_after_traefiks_settings():
    def build():
        IngressEdge("ingress", IngressConfig(), hosts=HOSTS, agent_ips=["10.0.0.21"], traefik_chart_v40=True)

    evaluation = record(build)
    (transport,) = evaluation.of_type("kubernetes:traefik.io/v1alpha1:ServersTransport")
    assert transport.inputs["metadata"]["name"] == "cht-api-transport"
    assert transport.parent == evaluation.named("ingress").urn
    assert evaluation.named("ingress-traefik").urn in transport.depends_on
