"""Pure rendering for a county's CHT Core: names, env, configmap data, resources, probes, policies.

No Pulumi here: everything is plain data derived from the validated `ChtSettings` and the county name,
so it is tested directly and `project.py` only wires it into typed resources. Facts (env per node,
ports, container names) follow Medic's charts; see shared/facts/cht-core-on-kubernetes.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import quote

from config import versions
from config.model import ChtSettings, HostPathVolume
from config.names import COUNTY_LABEL, INGRESS_NAMESPACE, PROJECT

CREDENTIALS_SECRET = "cht-couchdb-credentials"
SERVERS_CONFIGMAP = "couchdb-servers-configmap"
DB_NAME = "medic"
API_PORT = 5988
COUCHDB_PORT = 5984
NOUVEAU_PORT = 5987
HEALTHCHECK_PORT = 5555
UPGRADE_SERVICE_PORT = 5008
BUILDS_URL = "https://staging.dev.medicmobile.org/_couch/builds_4"
UPGRADE_SERVICE_ACCOUNT = "cht-upgrade-service-user"
# Request body and timeouts of CHT's own nginx (cht-core nginx/nginx.conf).
MAX_BODY_BYTES = 32 * 1024 * 1024
PROXY_TIMEOUT_SECONDS = 3600
# The label the pods of k3s's packaged traefik carry (in INGRESS_NAMESPACE).
INGRESS_POD_LABELS = {"app.kubernetes.io/name": "traefik"}
# Limits are this multiple of requests: room for bursts (view indexing) without starving the node.
LIMIT_FACTOR = 2


def major(version: str) -> int:
    return versions.major(version)


def supports_default_ulimit(version: str) -> bool:
    """`DEFAULT_ULIMIT` is read by the CouchDB entrypoint from 4.20.0 on (cht-core#9923)."""
    return versions.at_least(version, "4.20.0")


def svc_host(service: str, namespace: str) -> str:
    return f"{service}.{namespace}.svc.cluster.local"


# --- CouchDB topology ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CouchNode:
    """One CouchDB node: Deployment `cht-couchdb[-N]`, container of the same name, Service, PVC."""

    number: int  # 1-based; 0 means the single, unclustered node
    service: str  # couchdb | couchdb-N (also the `cht.service` label)
    deployment: str  # cht-couchdb | cht-couchdb-N
    container: str  # equals the deployment name: the upgrade service matches ^cht-couchdb(-[0-9]+)?$
    claim: str  # couchdb-claim0 | couchdb-N-claim0
    nouveau_service: str  # nouveau | nouveau-N (5.x)


def couch_nodes(settings: ChtSettings) -> list[CouchNode]:
    if settings.couchdb_nodes == 1:
        return [CouchNode(0, "couchdb", "cht-couchdb", "cht-couchdb", "couchdb-claim0", "nouveau")]
    return [
        CouchNode(n, f"couchdb-{n}", f"cht-couchdb-{n}", f"cht-couchdb-{n}", f"couchdb-{n}-claim0", f"nouveau-{n}")
        for n in range(1, settings.couchdb_nodes + 1)
    ]


def servers_configmap(settings: ChtSettings, namespace: str) -> dict[str, str]:
    """`couchdb-servers-configmap` data, exactly as Medic's charts render it."""
    nodes = couch_nodes(settings)
    hosts = [svc_host(n.service, namespace) for n in nodes]
    if len(nodes) == 1:
        return {"COUCHDB_SERVERS": hosts[0]}
    return {
        "COUCHDB_SERVERS": ",".join(hosts),
        "COUCHDB_SYNC_ADMINS_NODE": hosts[0],
        "CLUSTER_PEER_IPS": ",".join(hosts[1:]),
    }


def _secret_env(name: str) -> dict:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": CREDENTIALS_SECRET, "key": name}}}


def _configmap_env(name: str) -> dict:
    return {"name": name, "valueFrom": {"configMapKeyRef": {"name": SERVERS_CONFIGMAP, "key": name}}}


def couchdb_env(settings: ChtSettings, namespace: str, node: CouchNode) -> list[dict]:
    """Per-node env: node 1 coordinates (CLUSTER_PEER_IPS), nodes 2..n sync admins from node 1."""
    env = [{"name": "COUCHDB_LOG_LEVEL", "value": "info"}]
    env += [_secret_env(k) for k in ("COUCHDB_USER", "COUCHDB_PASSWORD", "COUCHDB_SECRET", "COUCHDB_UUID")]
    env.append({"name": "SVC_NAME", "value": svc_host(node.service, namespace)})
    if node.number:
        env.append({"name": "NODE_COUNT", "value": str(settings.couchdb_nodes)})
        env.append(_configmap_env("CLUSTER_PEER_IPS" if node.number == 1 else "COUCHDB_SYNC_ADMINS_NODE"))
        if major(settings.version) >= 5:
            env.append({"name": "NOUVEAU_URL", "value": f"http://{node.nouveau_service}:{NOUVEAU_PORT}"})
    if supports_default_ulimit(settings.version):
        # Keep the container's (k3s: high) nofile limit instead of `ulimit -n 100000`, which fails where
        # raising limits is not permitted.
        env.append({"name": "DEFAULT_ULIMIT", "value": "true"})
    return env


def data_sub_path(settings: ChtSettings, node: CouchNode) -> str:
    """The data directory inside a node's volume: `data`, or a migrated layout (`%d` = node number)."""
    path = settings.migration.data_path if settings.migration else "data"
    return path.replace("%d", str(node.number or 1))


# --- credentials -----------------------------------------------------------------------------------------


def couch_url(user: str, password: str, namespace: str) -> str:
    """COUCH_URL for API and Sentinel: via haproxy, the password percent-encoded (cht-core#9129)."""
    return (
        f"http://{quote(user, safe='')}:{quote(password, safe='')}@"
        f"{svc_host('haproxy', namespace)}:{COUCHDB_PORT}/{DB_NAME}"
    )


# URL-safe (RFC 3986 unreserved) characters RandomPassword may use besides letters and digits.
PASSWORD_SPECIALS = "-_.~"


# --- images and labels -------------------------------------------------------------------------------------


def image(settings: ChtSettings, service: str) -> str:
    return f"{settings.registry.rstrip('/')}/cht-{service}:{settings.version}"


def labels(county: str, service: str) -> dict[str, str]:
    """`cht.service` is the selector (as in Medic's charts, which CHT's troubleshooting docs rely on)."""
    return {
        "cht.service": service,
        "app.kubernetes.io/part-of": "cht",
        "app.kubernetes.io/managed-by": PROJECT,
        COUNTY_LABEL: county,
    }


# --- resources: the county budget split across its containers -------------------------------------------

# Relative weights (cpu, memory). CouchDB gets the largest share; nouveau (5.x, a JVM) takes part of
# each CouchDB node's share; the upgrade service exists only with upgrades: admin-app.
_WEIGHTS: dict[str, tuple[float, float]] = {
    "couchdb": (0.50, 0.50),
    "api": (0.25, 0.22),
    "sentinel": (0.10, 0.10),
    "haproxy": (0.10, 0.12),
    "healthcheck": (0.03, 0.03),
    "upgrade-service": (0.02, 0.03),
}
_NOUVEAU_SHARE = (0.25, 0.35)  # of each CouchDB node's share, in 5.x


@dataclass(frozen=True)
class Resources:
    cpu_m: int
    memory_mi: int

    def requirements(self) -> dict:
        return {
            "requests": {"cpu": f"{self.cpu_m}m", "memory": f"{self.memory_mi}Mi"},
            "limits": {"cpu": f"{self.cpu_m * LIMIT_FACTOR}m", "memory": f"{self.memory_mi * LIMIT_FACTOR}Mi"},
        }


def resource_split(settings: ChtSettings) -> dict[str, Resources]:
    """Container -> requests; the sum never exceeds the budget (each share is rounded down)."""
    roles = [r for r in _WEIGHTS if r != "upgrade-service" or upgrade_service_enabled(settings)]
    total_cpu = sum(_WEIGHTS[r][0] for r in roles)
    total_mem = sum(_WEIGHTS[r][1] for r in roles)
    cpu_m = settings.budget.cpu * 1000
    mem_mi = settings.budget.memory_gb * 1024

    def share(role: str, factor: tuple[float, float] = (1.0, 1.0)) -> Resources:
        w_cpu, w_mem = _WEIGHTS[role]
        return Resources(
            max(1, math.floor(cpu_m * w_cpu / total_cpu * factor[0])),
            max(1, math.floor(mem_mi * w_mem / total_mem * factor[1])),
        )

    nodes = couch_nodes(settings)
    per_node = (1 / len(nodes), 1 / len(nodes))
    split: dict[str, Resources] = {}
    for node in nodes:
        if major(settings.version) >= 5:
            split[node.container] = share("couchdb", tuple(p * (1 - n) for p, n in zip(per_node, _NOUVEAU_SHARE, strict=True)))
            split[f"{node.container}/nouveau"] = share("couchdb", tuple(p * n for p, n in zip(per_node, _NOUVEAU_SHARE, strict=True)))
        else:
            split[node.container] = share("couchdb", per_node)
    split["cht-api"] = share("api")
    split["cht-sentinel"] = share("sentinel")
    split["cht-haproxy"] = share("haproxy")
    split["cht-haproxy-healthcheck"] = share("healthcheck")
    if upgrade_service_enabled(settings):
        split["upgrade-service"] = share("upgrade-service")
    return split


def quota(settings: ChtSettings) -> dict[str, str]:
    """ResourceQuota hard limits: the budget for requests, LIMIT_FACTOR times it for limits."""
    cpu_m = math.floor(settings.budget.cpu * 1000)
    mem_mi = math.floor(settings.budget.memory_gb * 1024)
    volumes = settings.couchdb_nodes
    return {
        "requests.cpu": f"{cpu_m}m",
        "requests.memory": f"{mem_mi}Mi",
        "limits.cpu": f"{cpu_m * LIMIT_FACTOR}m",
        "limits.memory": f"{mem_mi * LIMIT_FACTOR}Mi",
        "persistentvolumeclaims": str(volumes),
        "requests.storage": f"{settings.couchdb_storage_gb * volumes}Gi",
        "services.loadbalancers": "0",
        "services.nodeports": "0",
    }


def limit_range() -> list[dict]:
    """Defaults for containers that set nothing (e.g. a `kubectl run` debug pod), so the quota admits them."""
    return [
        {
            "type": "Container",
            "defaultRequest": {"cpu": "50m", "memory": "64Mi"},
            "default": {"cpu": "500m", "memory": "512Mi"},
        }
    ]


# --- probes ---------------------------------------------------------------------------------------------


def readiness_tcp(port: int) -> dict:
    """Readiness only, on the listening port: it gates traffic, never restarts a container. No liveness
    probe anywhere: API migrations and view indexing can legitimately keep a process busy for hours."""
    return {"tcpSocket": {"port": port}, "periodSeconds": 10, "failureThreshold": 3, "timeoutSeconds": 5}


# --- upgrades ---------------------------------------------------------------------------------------------


def upgrade_service_enabled(settings: ChtSettings) -> bool:
    return settings.upgrades == "admin-app" and major(settings.version) == 4


# Under upgrades: admin-app the upgrade service PUTs new images into the cht-* Deployments. Ignoring the
# whole container list (not `containers[i].image`: pulumi-kubernetes' SSA ignoreChanges handling cannot
# address list items) makes Pulumi apply the live containers back unchanged, so an upgrade done in the
# app is never reverted.
ADMIN_APP_IGNORE = ["spec.template.spec.containers"]


def api_env(settings: ChtSettings, namespace: str) -> list[dict]:
    env = [
        {"name": "NODE_ENV", "value": "production"},
        {"name": "BUILDS_URL", "value": BUILDS_URL},
        _secret_env("COUCH_URL"),
        {"name": "API_PORT", "value": str(API_PORT)},
    ]
    if upgrade_service_enabled(settings):
        env.append(
            {"name": "UPGRADE_SERVICE_URL", "value": f"http://{svc_host('upgrade-service', namespace)}:{UPGRADE_SERVICE_PORT}"}
        )
    return env


def sentinel_env(namespace: str) -> list[dict]:
    return [
        {"name": "NODE_ENV", "value": "production"},
        {"name": "API_HOST", "value": svc_host("api", namespace)},
        {"name": "API_PORT", "value": str(API_PORT)},
        _secret_env("COUCH_URL"),
    ]


def haproxy_env(namespace: str) -> list[dict]:
    # DOCKER_DNS_RESOLVER must stay unset on Kubernetes (Service IPs are stable).
    return [
        _secret_env("COUCHDB_USER"),
        _secret_env("COUCHDB_PASSWORD"),
        _configmap_env("COUCHDB_SERVERS"),
        {"name": "HAPROXY_IP", "value": "0.0.0.0"},
        {"name": "HAPROXY_PORT", "value": str(COUCHDB_PORT)},
        {"name": "HEALTHCHECK_ADDR", "value": svc_host("healthcheck", namespace)},
    ]


def healthcheck_env() -> list[dict]:
    return [_secret_env("COUCHDB_USER"), _secret_env("COUCHDB_PASSWORD"), _configmap_env("COUCHDB_SERVERS")]


def upgrade_service_role_rules() -> list[dict]:
    """What Medic's upgrade service needs, in its own namespace only (a Role, never a ClusterRole)."""
    verbs = ["get", "list", "watch", "patch", "update"]
    return [
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": verbs},
        {"apiGroups": [""], "resources": ["pods"], "verbs": verbs},
    ]


# --- ingress --------------------------------------------------------------------------------------------

BUFFERING_MIDDLEWARE = "cht-body-size"
SERVERS_TRANSPORT = "cht-api-transport"


def ingress_annotations(settings: ChtSettings, namespace: str) -> dict[str, str]:
    annotations = {
        "traefik.ingress.kubernetes.io/router.entrypoints": "websecure",
        "traefik.ingress.kubernetes.io/router.tls": "true",
        "traefik.ingress.kubernetes.io/router.middlewares": f"{namespace}-{BUFFERING_MIDDLEWARE}@kubernetescrd",
    }
    if settings.tls.cluster_issuer:
        annotations["cert-manager.io/cluster-issuer"] = settings.tls.cluster_issuer
    return annotations


def api_service_annotations(namespace: str) -> dict[str, str]:
    """Traefik reads the backend transport (timeouts to API) from the Service."""
    return {"traefik.ingress.kubernetes.io/service.serverstransport": f"{namespace}-{SERVERS_TRANSPORT}@kubernetescrd"}


def buffering_middleware_spec() -> dict:
    """Bodies up to CHT nginx's 32M (traefik's buffering middleware is the only per-router body limit)."""
    return {"buffering": {"maxRequestBodyBytes": MAX_BODY_BYTES, "memRequestBodyBytes": 2 * 1024 * 1024}}


def servers_transport_spec() -> dict:
    """Traefik -> API timeouts as CHT nginx's proxy_read_timeout (3600 s). The client-side read/write/idle
    timeouts belong to traefik's entrypoints and are cluster-wide (see the README)."""
    return {
        "forwardingTimeouts": {
            "dialTimeout": "30s",
            "responseHeaderTimeout": f"{PROXY_TIMEOUT_SECONDS}s",
            "idleConnTimeout": f"{PROXY_TIMEOUT_SECONDS}s",
        }
    }


# --- network policies ----------------------------------------------------------------------------------


def network_policies() -> dict[str, dict]:
    """Name -> NetworkPolicy spec. Policies add up: same-namespace traffic to every pod, plus the
    ingress controller to the API port. Nothing else reaches a county's pods."""
    return {
        "same-namespace-only": {
            "podSelector": {},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {}}]}],
        },
        "api-from-ingress-controller": {
            "podSelector": {"matchLabels": {"cht.service": "api"}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": INGRESS_NAMESPACE}},
                            "podSelector": {"matchLabels": dict(INGRESS_POD_LABELS)},
                        }
                    ],
                    "ports": [{"protocol": "TCP", "port": API_PORT}],
                }
            ],
        },
    }


def migrated_volume_is_host_path(settings: ChtSettings, node: CouchNode) -> bool:
    assert settings.migration is not None
    return isinstance(settings.migration.volumes[(node.number or 1) - 1], HostPathVolume)
