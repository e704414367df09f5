"""Pure rendering of a county's CHT Core: every Kubernetes object, whole, as plain data.

No Pulumi here: each function takes the validated `ChtSettings` (and the county, namespace, what the stack
knows about the cluster) and returns a complete object (apiVersion, kind, metadata, spec...), so it is
tested directly and `project.py` only registers what it gets, in lifecycle order. Facts follow Medic's
charts and images at the released tags (shared/facts/cht-core-on-kubernetes.md, upstream-conformance.md);
the tests name the upstream file behind each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from config import names, sizing, versions
from config.egress import ClusterAccess
from config.model import ChtSettings, HostPathVolume

CREDENTIALS_SECRET = names.CREDENTIALS_SECRET
DB_NAME = "medic"
API_PORT = names.CHT_API_PORT
COUCHDB_PORT = 5984
NOUVEAU_PORT = 5987
HEALTHCHECK_PORT = 5555
UPGRADE_SERVICE_PORT = 5008
BUILDS_URL = "https://staging.dev.medicmobile.org/_couch/builds_4"
UPGRADE_SERVICE_ACCOUNT = "cht-upgrade-service-user"
# The labels the pods of k3s's packaged traefik and CoreDNS carry (in names.INGRESS_NAMESPACE, KUBE_SYSTEM).
INGRESS_POD_LABELS = {"app.kubernetes.io/name": "traefik"}
# cert-manager's HTTP-01 solver pods, made in the county's namespace for a challenge: their label and port
# (cert-manager v1.21.1 pkg/apis/acme/v1/types.go SolverIdentificationLabelKey, pkg/issuer/acme/http/pod.go
# podLabels, pkg/issuer/acme/http/http.go acmeSolverListenPort).
ACME_SOLVER_POD_LABELS = {"acme.cert-manager.io/http01-solver": "true"}
ACME_SOLVER_PORT = 8089
DNS_POD_LABELS = {"k8s-app": "kube-dns"}
DATA_VOLUME = "couchdb-data"

# Every released cht-couchdb 5.x image (5.0.0-5.2.0) hard-codes `[nouveau] url = http://nouveau:5987`
# (cht-core couchdb/10-docker-default.ini) and its entrypoint does not read NOUVEAU_URL; only cht-core
# master after 5.2.0 does. Set this to the first release whose entrypoint reads NOUVEAU_URL to give each
# CouchDB node a nouveau of its own; until then one nouveau runs beside node 1 behind the `nouveau` Service.
NOUVEAU_URL_FIRST_RELEASE: str | None = None
# Node 1 forms the cluster in the background (cht-core couchdb/set-up-cluster.sh, 4.22.0 and 5.2.0, `main &`):
# it waits for itself and then each peer up to WAIT_THRESHOLD tries SLEEP_SECONDS apart (default 20 x 5 s),
# then exits for good, and nothing runs it again until node 1 restarts. A first deploy (volumes provisioned
# and attached, images pulled) can keep a peer down longer, so node 1 waits as long as it takes.
CLUSTER_SETUP_SLEEP_SECONDS = 10
CLUSTER_SETUP_WAIT_THRESHOLD = 100_000_000  # tries: about 30 years at 10 s, i.e. until the peer answers
# API and Sentinel read LOG_LEVEL from 5.2.0 (cht-core shared-libs/logger/src/node-logger.js); before, the
# level follows NODE_ENV (info in production).
LOG_LEVEL_FIRST_RELEASE = "5.2.0"
# CouchDB's level names for the config's (CouchDB says `warning`, Node's winston `warn`).
COUCHDB_LOG_LEVELS = {"debug": "debug", "info": "info", "warn": "warning", "error": "error"}

# Capabilities each image needs beyond none (every container drops ALL, then adds these back):
# - CouchDB: the entrypoint runs as root, chowns and chmods /opt/couchdb (CHOWN, FOWNER), appends to the
#   couchdb-owned local.d/cluster-credentials.ini (DAC_OVERRIDE), then `su`s to the couchdb user (SETUID,
#   SETGID); su, still root, forwards the stop signal to CouchDB running as couchdb (KILL)
#   (cht-core couchdb/docker-entrypoint.sh, 4.22.0 and 5.2.0).
# - nouveau runs as root (the pod's user, as in Medic's chart) inside CouchDB's data directory, which the
#   CouchDB entrypoint hands to the couchdb user on every start (DAC_OVERRIDE).
# - api (USER 1000), healthcheck (USER nobody), sentinel and haproxy (root, writing only root-owned files),
#   the upgrade service: none.
CAPABILITIES: dict[str, tuple[str, ...]] = {
    "couchdb": ("CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETGID", "SETUID"),
    "nouveau": ("DAC_OVERRIDE",),
}


def supports_default_ulimit(version: str) -> bool:
    """`DEFAULT_ULIMIT` is read by the CouchDB entrypoint from 4.20.0 on (cht-core#9923)."""
    return versions.at_least(version, "4.20.0")


def nouveau_per_node(version: str) -> bool:
    return NOUVEAU_URL_FIRST_RELEASE is not None and versions.at_least(version, NOUVEAU_URL_FIRST_RELEASE)


def reads_log_level(version: str) -> bool:
    return versions.at_least(version, LOG_LEVEL_FIRST_RELEASE)


def svc_host(service: str, namespace: str) -> str:
    return names.service_host(service, namespace)


EXPRESS_METRICS_SINCE = (4, 3, 0)  # /api/v1/express-metrics exists from CHT 4.3.0 (cht-core api/src/routing.js)


def express_metrics(settings: ChtSettings) -> bool:
    release = versions.release(settings.version)
    return (release.major, release.minor, release.patch) >= EXPRESS_METRICS_SINCE


def labels(county: str, service: str) -> dict[str, str]:
    """`cht.service` is the selector (as in Medic's charts, which CHT's troubleshooting docs rely on)."""
    return {
        "cht.service": service,
        "app.kubernetes.io/part-of": "cht",
        "app.kubernetes.io/managed-by": names.PROJECT,
        names.COUNTY_LABEL: county,
    }


def _meta(namespace: str, county: str, name: str, service: str | None = None, **extra: Any) -> dict:
    return {"name": name, "namespace": namespace, "labels": labels(county, service or name), **extra}


def image(settings: ChtSettings, service: str) -> str:
    return f"{settings.registry.rstrip('/')}/cht-{service}:{settings.version}"


# --- CouchDB topology ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CouchNode:
    """One CouchDB node: Deployment `cht-couchdb[-N]`, container of the same name, Service, PVC, and in 5.x
    maybe a nouveau beside it."""

    number: int  # 1-based; 0 means the single, unclustered node
    service: str  # couchdb | couchdb-N (also the `cht.service` label)
    deployment: str  # cht-couchdb | cht-couchdb-N
    container: str  # equals the deployment name: the upgrade service matches ^cht-couchdb(-[0-9]+)?$
    claim: str  # couchdb-claim0 | couchdb-N-claim0
    nouveau_service: str | None  # the Service in front of this node's nouveau, if it runs one


def couch_nodes(settings: ChtSettings) -> list[CouchNode]:
    count = settings.couchdb_nodes
    five, per_node = sizing.has_nouveau(settings), nouveau_per_node(settings.version)
    nodes = []
    for n in [0] if count == 1 else range(1, count + 1):
        suffix = f"-{n}" if n else ""
        if not five:
            nouveau = None
        elif per_node:
            nouveau = f"nouveau{suffix}"
        else:
            nouveau = "nouveau" if n <= 1 else None  # one nouveau, beside node 1 (Medic's 5.2.0 chart)
        nodes.append(
            CouchNode(n, f"couchdb{suffix}", f"cht-couchdb{suffix}", f"cht-couchdb{suffix}", f"couchdb{suffix}-claim0", nouveau)
        )
    return nodes


def couchdb_servers(settings: ChtSettings, namespace: str) -> dict[str, str]:
    """The CouchDB server list, with the names and values Medic's charts put in their ConfigMap
    `couchdb-servers-configmap` (helm-charts cht-chart-4x templates/couchdb-servers-configmap.yaml, cht-core
    4.22.0 scripts/build/helm/templates/couchdb/configmap.yaml). Here they are plain env values of the
    Deployments that read them: one object fewer per county, and a change of the list rolls those pods (an env
    from a ConfigMap key is read only when a container starts). Nothing else reads the ConfigMap by name: Medic's
    upgrade service lists Deployments and Pods only (upgrade-service-kubernetes@770b1bf src/lib/k8s-manager.ts);
    an admin-app county keeps it for its frozen containers (servers_configmap_object)."""
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


SERVERS_CONFIGMAP = "couchdb-servers-configmap"


def servers_configmap_object(settings: ChtSettings, county: str) -> dict | None:
    """Medic's ConfigMap, kept only where the upgrade service runs (`upgrades: admin-app`): Pulumi leaves the
    containers of such a county as they were created (ADMIN_APP_IGNORE), and those created by earlier
    releases read the server list from this ConfigMap by key; without it their next start would fail."""
    if not sizing.has_upgrade_service(settings):
        return None
    ns = names.namespace(county)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(ns, county, SERVERS_CONFIGMAP, "couchdb"),
        "data": couchdb_servers(settings, ns),
    }


def _servers_env(settings: ChtSettings, namespace: str, name: str) -> dict:
    return {"name": name, "value": couchdb_servers(settings, namespace)[name]}


def couchdb_env(settings: ChtSettings, namespace: str, node: CouchNode) -> list[dict]:
    """Per-node env: node 1 coordinates (CLUSTER_PEER_IPS), nodes 2..n sync admins from node 1."""
    env = [{"name": "COUCHDB_LOG_LEVEL", "value": COUCHDB_LOG_LEVELS[settings.log_level]}]
    env += [_secret_env(k) for k in ("COUCHDB_USER", "COUCHDB_PASSWORD", "COUCHDB_SECRET", "COUCHDB_UUID")]
    env.append({"name": "SVC_NAME", "value": svc_host(node.service, namespace)})
    if node.number:
        env.append({"name": "NODE_COUNT", "value": str(settings.couchdb_nodes)})
        env.append(_servers_env(settings, namespace, "CLUSTER_PEER_IPS" if node.number == 1 else "COUCHDB_SYNC_ADMINS_NODE"))
        if node.number == 1:
            env.append({"name": "WAIT_THRESHOLD", "value": str(CLUSTER_SETUP_WAIT_THRESHOLD)})
            env.append({"name": "SLEEP_SECONDS", "value": str(CLUSTER_SETUP_SLEEP_SECONDS)})
    if node.nouveau_service and nouveau_per_node(settings.version):
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


# Where nouveau keeps its indexes: the image's `rootDir: ./data/nouveau` from / (apache/couchdb-docker
# 3.5.1-nouveau/nouveau.yaml; cht-core 5.2.0 couchdb-nouveau/Dockerfile `VOLUME /data/nouveau`).
NOUVEAU_INDEX_DIR = "/data/nouveau"


def nouveau_sub_path(settings: ChtSettings, node: CouchNode) -> str:
    """nouveau's index directory inside the node's volume. A new county: CouchDB's data directory itself, as
    Medic's 5.2.0 chart mounts it (templates/couchdb/deployment.yaml, `subPath: data`). A county brought over
    from Compose: `<data>/nouveau`, where Medic's Compose files keep the indexes
    (cht-core 5.2.0 scripts/build/cht-couchdb-single-node.yml.template `${COUCHDB_DATA}/nouveau:/data/nouveau`),
    so a migrated 5.x county keeps its search indexes instead of rebuilding them."""
    data = data_sub_path(settings, node)
    if settings.migration is None:
        return data
    return f"{data}/nouveau" if data else "nouveau"


def couch_url(user: str, password: str, namespace: str) -> str:
    """COUCH_URL for API and Sentinel: via haproxy, the password percent-encoded (cht-core#9129)."""
    return (
        f"http://{quote(user, safe='')}:{quote(password, safe='')}@"
        f"{svc_host('haproxy', namespace)}:{COUCHDB_PORT}/{DB_NAME}"
    )


# --- resources and hardening -------------------------------------------------------------------------------


def container_resources(settings: ChtSettings, service: str) -> dict:
    return sizing.split(settings)[service].requirements()


def container_security(role: str | None = None) -> dict:
    """No privilege escalation, the runtime's seccomp profile, every capability dropped but what the image
    needs (CAPABILITIES)."""
    capabilities: dict[str, list[str]] = {"drop": ["ALL"]}
    if role in CAPABILITIES:
        capabilities["add"] = list(CAPABILITIES[role])
    return {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "seccompProfile": {"type": "RuntimeDefault"},
        "capabilities": capabilities,
    }


def readiness_tcp(port: int) -> dict:
    """Readiness only, on the listening port: it gates traffic, never restarts a container. No liveness
    probe anywhere: API migrations and view indexing can legitimately keep a process busy for hours."""
    return {"tcpSocket": {"port": port}, "periodSeconds": 10, "failureThreshold": 3, "timeoutSeconds": 5}


def _pod(containers: list[dict], token: bool = False, **spec: Any) -> dict:
    """A pod spec: no service-account token unless the pod calls the Kubernetes API."""
    return {
        "automountServiceAccountToken": token,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}, **spec.pop("securityContext", {})},
        "containers": containers,
        **spec,
    }


# --- the namespace and its guardrails ----------------------------------------------------------------------

# Pod Security admission: enforce baseline (CouchDB's entrypoint needs root and a few capabilities, which
# `restricted` forbids), and show every departure from `restricted` as a warning and in the audit log.
POD_SECURITY_LABELS = {
    "pod-security.kubernetes.io/enforce": "baseline",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/audit": "restricted",
}


def namespace(county: str, settings: ChtSettings | None = None) -> dict:
    """With `settings`, the CHT major version as a label: the monitoring stack's county alerts key on it."""
    ns = names.namespace(county)
    labels = {names.COUNTY_LABEL: county, **POD_SECURITY_LABELS}
    if settings is not None:
        labels[names.CHT_MAJOR_LABEL] = str(versions.major(settings.version))
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}}


def resource_quota(settings: ChtSettings, county: str) -> dict:
    ns = names.namespace(county)
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": _meta(ns, county, "cht-budget"),
        "spec": {"hard": sizing.quota(settings)},
    }


def limit_range(county: str) -> dict:
    """Defaults for containers that set nothing (e.g. a `kubectl run` debug pod), so the quota admits them."""
    ns = names.namespace(county)
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": _meta(ns, county, "cht-defaults"),
        "spec": {
            "limits": [
                {"type": "Container", "defaultRequest": {"cpu": "50m", "memory": "64Mi"}, "default": {"cpu": "500m", "memory": "512Mi"}}
            ]
        },
    }


# Merged in issue 24 from same-namespace-only + egress-dns-and-own-pods (the same pods), and from
# api-from-ingress-controller + monitoring's allow-monitoring-scrape + egress-api-sentinel-outside (API, and
# Sentinel, which listens on no port): same flows (network_policies says why).
ISOLATION_POLICY = "isolation"
API_SENTINEL_POLICY = "api-and-sentinel"


def _policy(county: str, name: str, spec: dict) -> dict:
    ns = names.namespace(county)
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": _meta(ns, county, name), "spec": spec}


def _selects(*services: str) -> dict:
    return {"matchExpressions": [{"key": "cht.service", "operator": "In", "values": list(services)}]}


def network_policies(settings: ChtSettings, county: str, access: ClusterAccess) -> list[dict]:
    """NetworkPolicies add up (a connection is allowed when any policy allows it), so others may allow more
    with policies of their own without editing these; policies that select the same pods are one policy.

    `isolation` (every pod): in from its own namespace; out to DNS and its own namespace. `api-and-sentinel`
    (API and Sentinel): in from traefik, and with monitoring on the monitoring namespace's scrapers, to the
    API port; out to the outside world except the protected networks (nodes, pods and Services of the
    cluster, Kubernetes API, vCenter, config's protected networks). Sentinel listens on no port (cht-core
    4.22.0 and 5.2.0 sentinel/: no HTTP server, no Service in Medic's charts), so admitting traffic to port
    5988 of its pod lets nothing more through than the API-only policy did. With a cert-manager issuer its
    HTTP-01 solver pods from traefik too; the upgrade service also out to the Kubernetes API."""
    from_ingress_controller = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": names.INGRESS_NAMESPACE}},
        "podSelector": {"matchLabels": dict(INGRESS_POD_LABELS)},
    }
    scrapers = [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": names.MONITORING_NAMESPACE}},
            "podSelector": {"matchLabels": dict(pod)},
        }
        for pod in (names.SCRAPER_POD_LABELS if access.scraped else ())
    ]
    dns = {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": names.KUBE_SYSTEM}},
                "podSelector": {"matchLabels": dict(DNS_POD_LABELS)},
            }
        ],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }
    own_pods = {"podSelector": {}}
    world: dict[str, Any] = {"cidr": "0.0.0.0/0"}
    if access.protected:
        world["except"] = list(access.protected)
    policies = [
        _policy(
            county,
            ISOLATION_POLICY,
            {
                "podSelector": {},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [own_pods]}],
                "egress": [dns, {"to": [own_pods]}],
            },
        ),
        _policy(
            county,
            API_SENTINEL_POLICY,
            {
                "podSelector": _selects("api", "sentinel"),
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [from_ingress_controller, *scrapers], "ports": [{"protocol": "TCP", "port": API_PORT}]}],
                "egress": [{"to": [{"ipBlock": world}]}],
            },
        ),
    ]
    if settings.tls.cluster_issuer:
        # traefik forwards the ACME server's (and cert-manager's self-check) request for the challenge to the
        # solver pod; without this, `isolation` drops it and the certificate is never issued.
        policies.append(
            _policy(
                county,
                "acme-solver-from-ingress-controller",
                {
                    "podSelector": {"matchLabels": dict(ACME_SOLVER_POD_LABELS)},
                    "policyTypes": ["Ingress"],
                    "ingress": [{"from": [from_ingress_controller], "ports": [{"protocol": "TCP", "port": ACME_SOLVER_PORT}]}],
                },
            )
        )
    if sizing.has_upgrade_service(settings):
        policies.append(
            _policy(
                county,
                "egress-upgrade-service-kubernetes-api",
                {
                    "podSelector": {"matchLabels": {"cht.service": "upgrade-service"}},
                    "policyTypes": ["Egress"],
                    "egress": [
                        {"to": [{"ipBlock": {"cidr": cidr}}], "ports": [{"protocol": "TCP", "port": port}]}
                        for cidr, port in access.kube_api
                    ],
                },
            )
        )
    return policies


# --- credentials and CouchDB ---------------------------------------------------------------------------------


def credentials_secret(county: str, string_data: Any) -> dict:
    """`string_data` is passed through as it is (the program hands a secret Output)."""
    ns = names.namespace(county)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(ns, county, CREDENTIALS_SECRET, "couchdb"),
        "type": "Opaque",
        "stringData": string_data,
    }


def credentials_data(user: str, password: str, secret: str, uuid: str, namespace: str) -> dict[str, str]:
    return {
        "COUCHDB_USER": user,
        "COUCHDB_PASSWORD": password,
        "COUCHDB_SECRET": secret,
        "COUCHDB_UUID": uuid,
        "COUCH_URL": couch_url(user, password, namespace),
    }


def _service(
    county: str, name: str, selector: str, ports: list[tuple[str, int]], annotations: dict | None = None,
    labels: dict | None = None,
) -> dict:
    ns = names.namespace(county)
    metadata = _meta(ns, county, name, **({"annotations": annotations} if annotations else {}))
    metadata["labels"].update(labels or {})
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "selector": {"cht.service": selector},
            "ports": [{"name": n, "port": p, "targetPort": p, "protocol": "TCP"} for n, p in ports],
        },
    }


def couchdb_service(county: str, node: CouchNode) -> dict:
    return _service(
        county, node.service, node.service,
        [(f"couchdb{node.number or ''}-service", COUCHDB_PORT), ("epmd", 4369), ("erlang", 9100)],
    )


def nouveau_service(county: str, node: CouchNode) -> dict:
    """The Service CouchDB finds its nouveau by (`nouveau` in every released 5.x image)."""
    assert node.nouveau_service
    return _service(county, node.nouveau_service, node.service, [("nouveau-service", NOUVEAU_PORT)])


def claim(settings: ChtSettings, county: str, node: CouchNode, storage_class: Any) -> dict:
    ns = names.namespace(county)
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": f"{settings.couchdb_storage_gb}Gi"}},
    }
    if settings.migration is None:
        spec["storageClassName"] = storage_class
    else:
        spec["storageClassName"] = ""
        spec["volumeName"] = names.static_pv_name(county, node.number or 1)
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(ns, county, node.claim, node.service, annotations=dict(SKIP_AWAIT)),
        "spec": spec,
    }


def static_volume(settings: ChtSettings, county: str, node: CouchNode) -> dict:
    """A migrated county's existing volume, bound to its claim only (Retain)."""
    assert settings.migration is not None
    source = settings.migration.volumes[(node.number or 1) - 1]
    spec: dict[str, Any] = {
        "capacity": {"storage": f"{settings.couchdb_storage_gb}Gi"},
        "accessModes": ["ReadWriteOnce"],
        "persistentVolumeReclaimPolicy": "Retain",
        "storageClassName": "",
        "volumeMode": "Filesystem",
        "claimRef": {"namespace": names.namespace(county), "name": node.claim},
    }
    if isinstance(source, HostPathVolume):
        spec["hostPath"] = {"path": source.host_path, "type": "Directory"}
        spec["nodeAffinity"] = {
            "required": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [source.node]}]}
                ]
            }
        }
    else:
        spec["csi"] = {"driver": names.CSI_DRIVER, "volumeHandle": source.volume_handle, "fsType": "ext4"}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": names.static_pv_name(county, node.number or 1), "labels": labels(county, node.service)},
        "spec": spec,
    }


# pulumi up does not wait for CHT workloads to become ready: API migrations and view indexing can take
# hours, clustered nodes restart until node 1 is up, and a WaitForFirstConsumer PVC binds only once its
# pod is scheduled. Readiness is watched with kubectl (docs/design.md), not by failing the deployment.
SKIP_AWAIT = {"pulumi.com/skipAwait": "true"}


def _deployment(county: str, name: str, service: str, pod: dict, annotations: dict | None = None) -> dict:
    ns = names.namespace(county)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(ns, county, name, service, annotations={**SKIP_AWAIT, **(annotations or {})}),
        "spec": {
            "replicas": 1,
            # One pod at a time: RWO volumes, and never two APIs migrating the same database.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": {"cht.service": service}},
            "template": {"metadata": {"labels": labels(county, service)}, "spec": pod},
        },
    }


def _spread(settings: ChtSettings) -> dict | None:
    """A clustered county's CouchDB nodes on distinct agents: with one copy per shard (`[cluster] n=1`),
    two nodes on one agent would take the county down together."""
    nodes = couch_nodes(settings)
    if len(nodes) == 1:
        return None
    return {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": _selects(*[n.service for n in nodes]), "topologyKey": "kubernetes.io/hostname"}
            ]
        }
    }


def couchdb_deployment(settings: ChtSettings, county: str, node: CouchNode) -> dict:
    ns = names.namespace(county)
    data_mount = {"name": DATA_VOLUME, "mountPath": "/opt/couchdb/data"}
    if sub := data_sub_path(settings, node):
        data_mount["subPath"] = sub
    containers = [
        {
            "name": node.container,
            "image": image(settings, "couchdb"),
            "ports": [{"containerPort": COUCHDB_PORT}],
            "env": couchdb_env(settings, ns, node),
            "resources": container_resources(settings, "couchdb"),
            "readinessProbe": readiness_tcp(COUCHDB_PORT),
            "securityContext": container_security("couchdb"),
            # local.d holds cluster-credentials.ini (admin hash, secret, uuid): it must persist.
            "volumeMounts": [data_mount, {"name": DATA_VOLUME, "mountPath": "/opt/couchdb/etc/local.d", "subPath": "local.d"}],
        }
    ]
    if node.nouveau_service:
        nouveau_mount = {"name": DATA_VOLUME, "mountPath": NOUVEAU_INDEX_DIR}
        if nouveau := nouveau_sub_path(settings, node):
            nouveau_mount["subPath"] = nouveau
        containers.append(
            {
                "name": "cht-couchdb-nouveau",
                "image": image(settings, "couchdb-nouveau"),
                "ports": [{"containerPort": NOUVEAU_PORT}],
                "resources": container_resources(settings, "nouveau"),
                # No readiness probe: the pod's readiness gates CouchDB node 1's Service, and a nouveau
                # restarting (a JVM re-opening its indexes) must not take CouchDB out of service with it.
                "securityContext": container_security("nouveau"),
                "volumeMounts": [nouveau_mount],
            }
        )
    extra: dict[str, Any] = {}
    if spread := _spread(settings):
        extra["affinity"] = spread
    pod = _pod(
        containers,
        # Root: the entrypoint chowns /opt/couchdb (the volume included) to couchdb itself on every start,
        # then drops to the couchdb user. No fsGroup (Medic's charts set 0): the kubelet would first rewrite
        # the group and mode of every file on the volume at each start, for the entrypoint to rewrite back.
        securityContext={"runAsUser": 0},
        volumes=[{"name": DATA_VOLUME, "persistentVolumeClaim": {"claimName": node.claim}}],
        **extra,
    )
    return _deployment(county, node.deployment, node.service, pod)


def couchdb_disruption_budget(settings: ChtSettings, county: str) -> dict | None:
    """A clustered county's nodes are evicted one at a time: a drain waits until the moved node is back."""
    nodes = couch_nodes(settings)
    if len(nodes) == 1:
        return None
    ns = names.namespace(county)
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(ns, county, "couchdb-nodes", "couchdb"),
        "spec": {"maxUnavailable": 1, "selector": _selects(*[n.service for n in nodes])},
    }


# --- the stateless services ------------------------------------------------------------------------------


def _node_env(settings: ChtSettings) -> list[dict]:
    env = [{"name": "NODE_ENV", "value": "production"}]
    if reads_log_level(settings.version):
        env.append({"name": "LOG_LEVEL", "value": settings.log_level})
    return env


def api_env(settings: ChtSettings, namespace: str) -> list[dict]:
    env = [
        *_node_env(settings),
        {"name": "BUILDS_URL", "value": BUILDS_URL},
        _secret_env("COUCH_URL"),
        {"name": "API_PORT", "value": str(API_PORT)},
    ]
    if sizing.has_upgrade_service(settings):
        env.append(
            {"name": "UPGRADE_SERVICE_URL", "value": f"http://{svc_host('upgrade-service', namespace)}:{UPGRADE_SERVICE_PORT}"}
        )
    return env


def sentinel_env(settings: ChtSettings, namespace: str) -> list[dict]:
    return [
        *_node_env(settings),
        {"name": "API_HOST", "value": svc_host("api", namespace)},
        {"name": "API_PORT", "value": str(API_PORT)},
        _secret_env("COUCH_URL"),
    ]


def healthcheck_beside_haproxy(settings: ChtSettings) -> bool:
    """Whether the healthcheck runs as a second container of the haproxy pod (no Deployment or Service of its own).

    haproxy reads HEALTHCHECK_ADDR only as each backend server's `agent-addr` (cht-core 4.22.0 and 5.2.0
    haproxy/entrypoint.sh: `agent-addr $HEALTHCHECK_ADDR agent-port 5555`), and the healthcheck listens on
    0.0.0.0:5555 (haproxy-healthcheck/check.py `asyncio.start_server(..., "0.0.0.0", 5555)`), so in one pod
    haproxy asks it at 127.0.0.1. Not with Medic's upgrade service (`upgrades: admin-app`): it reads the
    namespace's Deployments afresh for each container name of the upgrade and then PUTs each matched
    Deployment as read (medic/upgrade-service-kubernetes@770b1bf src/lib/k8s-manager.ts
    getContainersInNamespace, upgradeDeploymentContainers), so cht-haproxy and cht-haproxy-healthcheck in one
    Deployment would be two PUTs of the same resourceVersion: the second is refused (409 Conflict) and the
    upgrade fails. There each keeps its own Deployment, as in Medic's chart."""
    return not sizing.has_upgrade_service(settings)


def haproxy_env(settings: ChtSettings, namespace: str) -> list[dict]:
    # DOCKER_DNS_RESOLVER must stay unset on Kubernetes (Service IPs are stable).
    beside = healthcheck_beside_haproxy(settings)
    return [
        _secret_env("COUCHDB_USER"),
        _secret_env("COUCHDB_PASSWORD"),
        _servers_env(settings, namespace, "COUCHDB_SERVERS"),
        {"name": "HAPROXY_IP", "value": "0.0.0.0"},
        {"name": "HAPROXY_PORT", "value": str(COUCHDB_PORT)},
        {"name": "HEALTHCHECK_ADDR", "value": "127.0.0.1" if beside else svc_host("healthcheck", namespace)},
    ]


def healthcheck_env(settings: ChtSettings, namespace: str) -> list[dict]:
    return [_secret_env("COUCHDB_USER"), _secret_env("COUCHDB_PASSWORD"), _servers_env(settings, namespace, "COUCHDB_SERVERS")]


def _container(settings: ChtSettings, name: str, image_service: str, sizing_key: str, env: list[dict], port: int | None = None) -> dict:
    container: dict[str, Any] = {
        "name": name,
        "image": image(settings, image_service),
        "env": env,
        "resources": container_resources(settings, sizing_key),
        "securityContext": container_security(),
    }
    if port:
        container["ports"] = [{"containerPort": port}]
        container["readinessProbe"] = readiness_tcp(port)
    return container


@dataclass(frozen=True)
class Stateless:
    """One of Medic's stateless services: its Deployment and, if it listens, its Service."""

    service: str
    deployment: dict
    service_object: dict | None


def stateless_services(settings: ChtSettings, county: str, host: str | None = None) -> list[Stateless]:
    """healthcheck, haproxy, api, sentinel: in the order they can start (haproxy resolves the CouchDB
    Service names once at start and exits if one is missing); the healthcheck as a container of the haproxy
    pod unless the upgrade service runs (healthcheck_beside_haproxy). The API Service tells the monitoring
    stack's one ServiceMonitor whether it serves express metrics and, given `host`, the county's host."""
    ns = names.namespace(county)
    # traefik's timeouts to the API: the platform's one ServersTransport (components/edge/render.py).
    api_annotations = {"traefik.ingress.kubernetes.io/service.serverstransport": names.API_TRANSPORT_REFERENCE}
    if host:
        api_annotations[names.HOST_ANNOTATION] = host
    api_labels = {names.EXPRESS_METRICS_LABEL: "true"} if express_metrics(settings) else {}
    # Medic's container name: the upgrade service finds it by name (^cht-haproxy-healthcheck(-[0-9]+)?$).
    healthcheck = _container(
        settings, "cht-haproxy-healthcheck", "haproxy-healthcheck", "healthcheck", healthcheck_env(settings, ns), HEALTHCHECK_PORT
    )
    haproxy = [_container(settings, "cht-haproxy", "haproxy", "haproxy", haproxy_env(settings, ns), COUCHDB_PORT)]
    own: list[Stateless] = []
    if healthcheck_beside_haproxy(settings):
        haproxy.append(healthcheck)
    else:
        own.append(
            Stateless(
                "healthcheck",
                _deployment(county, "cht-haproxy-healthcheck", "healthcheck", _pod([healthcheck])),
                _service(county, "healthcheck", "healthcheck", [("healthcheck", HEALTHCHECK_PORT)]),
            )
        )
    return [
        *own,
        Stateless(
            "haproxy",
            _deployment(county, "cht-haproxy", "haproxy", _pod(haproxy, hostname="haproxy")),
            _service(county, "haproxy", "haproxy", [("haproxy", COUCHDB_PORT)]),
        ),
        Stateless(
            "api",
            _deployment(county, "cht-api", "api", _pod([_container(settings, "cht-api", "api", "api", api_env(settings, ns), API_PORT)])),
            # Traefik reads the backend transport (timeouts to the API) from the Service.
            _service(county, "api", "api", [("api", API_PORT)], annotations=api_annotations, labels=api_labels),
        ),
        Stateless(
            "sentinel",
            _deployment(county, "cht-sentinel", "sentinel", _pod([
                _container(settings, "cht-sentinel", "sentinel", "sentinel", sentinel_env(settings, ns))
            ])),
            None,
        ),
    ]


# --- upgrade service (4.x, upgrades: admin-app) ----------------------------------------------------------

# Under upgrades: admin-app the upgrade service PUTs new images into the cht-* Deployments. Ignoring the
# whole container list (not `containers[i].image`: pulumi-kubernetes' SSA ignoreChanges handling cannot
# address list items) makes Pulumi apply the live containers back unchanged, so an upgrade done in the
# app is never reverted.
ADMIN_APP_IGNORE = ["spec.template.spec.containers"]


def upgrade_service_objects(settings: ChtSettings, county: str) -> dict[str, dict]:
    """ServiceAccount, Role, RoleBinding, Service and Deployment of Medic's upgrade service (chart 4.x)."""
    ns = names.namespace(county)
    verbs = ["get", "list", "watch", "patch", "update"]
    container = {
        "name": "upgrade-service",
        "image": settings.upgrade_service_image,
        "ports": [{"containerPort": UPGRADE_SERVICE_PORT}],
        "env": [
            {"name": "CHT_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "CHT_DEPLOYMENT_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['cht.service']"}}},
            {"name": "UPGRADE_SERVICE_PORT", "value": str(UPGRADE_SERVICE_PORT)},
        ],
        "resources": container_resources(settings, "upgrade-service"),
        "readinessProbe": readiness_tcp(UPGRADE_SERVICE_PORT),
        "securityContext": container_security(),
    }
    # The one pod that calls the Kubernetes API keeps its token (scanners are told why).
    token_reason = {"checkov.io/skip1": "CKV_K8S_38=the upgrade service calls the Kubernetes API with this token"}
    return {
        "account": {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _meta(ns, county, UPGRADE_SERVICE_ACCOUNT, "upgrade-service"),
        },
        "role": {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta(ns, county, "deployment-manager", "upgrade-service"),
            # What Medic's upgrade service needs, in its own namespace only (a Role, never a ClusterRole).
            "rules": [
                {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": verbs},
                {"apiGroups": [""], "resources": ["pods"], "verbs": verbs},
            ],
        },
        "binding": {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _meta(ns, county, "deployment-manager-cht", "upgrade-service"),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployment-manager"},
            "subjects": [{"kind": "ServiceAccount", "name": UPGRADE_SERVICE_ACCOUNT, "namespace": ns}],
        },
        "service": _service(county, "upgrade-service", "upgrade-service", [("upgrade-service", UPGRADE_SERVICE_PORT)]),
        "deployment": _deployment(
            county, "upgrade-service", "upgrade-service",
            _pod([container], token=True, serviceAccountName=UPGRADE_SERVICE_ACCOUNT),
            annotations=token_reason,
        ),
    }


# The 4.x admin app offers every release above the current one, 5.x included (cht-core 4.22.0
# admin/src/js/controllers/upgrade.js loadBuilds); the API then sends the upgrade service one image per
# container (api/src/services/setup/utils.js getUpgradeServicePayload), and the upgrade service PUTs it into
# every matching Deployment (medic/upgrade-service-kubernetes@770b1bf src/lib/k8s-manager.ts). A 5.x CouchDB
# needs the `nouveau` Service and container, which only a config change renders (and Pulumi ignores the
# containers under admin-app), so the cluster refuses the upgrade service's 5.x images: the county stays on
# 4.x and the app reports the upgrade failed. Images tagged with a major release of 5 or more:
FIVE_OR_LATER_TAG = r":([5-9]|[1-9][0-9]+)[.][0-9]+[.][0-9]+[^:/]*$"
ADMIN_APP_POLICY = "cht-admin-app-stays-on-4x"


def upgrade_service_user(county: str) -> str:
    """The user name the API server gives the upgrade service's ServiceAccount."""
    return f"system:serviceaccount:{names.namespace(county)}:{UPGRADE_SERVICE_ACCOUNT}"


def admin_app_policy(county: str) -> dict[str, dict]:
    """A ValidatingAdmissionPolicy and its binding (cluster-scoped, one pair per county): Deployment updates
    in the county's namespace by its upgrade service may not set a 5.x (or later) image."""
    ns = names.namespace(county)
    name = f"{ADMIN_APP_POLICY}-{county}"
    meta = {"name": name, "labels": labels(county, "upgrade-service")}
    in_county = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}
    message = (
        f"county {county}: the admin app cannot upgrade to CHT 5.x, which needs nouveau; upgrade in config "
        f"(counties.{county}.version with upgrades: config; docs/runbooks/county-workloads.md)"
    )
    return {
        "policy": {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": meta,
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    **in_county,
                    "resourceRules": [
                        {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["UPDATE"], "resources": ["deployments"]}
                    ],
                },
                "matchConditions": [
                    {"name": "by-the-upgrade-service", "expression": f"request.userInfo.username == '{upgrade_service_user(county)}'"}
                ],
                "validations": [
                    {
                        "expression": f"object.spec.template.spec.containers.all(c, !c.image.matches('{FIVE_OR_LATER_TAG}'))",
                        "message": message,
                        "reason": "Forbidden",
                    }
                ],
            },
        },
        "binding": {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": meta,
            "spec": {"policyName": name, "validationActions": ["Deny"], "matchResources": in_county},
        },
    }


# --- the way in ---------------------------------------------------------------------------------------------


def ingress(settings: ChtSettings, county: str, host: str) -> dict:
    """The county's host to api:5988 with TLS. No body-size middleware: traefik's only one (buffering) also
    holds every response until it is complete, which would stall CHT's `_changes` heartbeats and long syncs;
    the API limits what it parses itself (32 MB, docs/design.md)."""
    ns = names.namespace(county)
    annotations = {
        "traefik.ingress.kubernetes.io/router.entrypoints": "websecure",
        "traefik.ingress.kubernetes.io/router.tls": "true",
    }
    if settings.tls.cluster_issuer:
        annotations["cert-manager.io/cluster-issuer"] = settings.tls.cluster_issuer
    backend = {"service": {"name": "api", "port": {"number": API_PORT}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": _meta(ns, county, "api-ingress", "api", annotations=annotations),
        "spec": {
            "ingressClassName": "traefik",
            "tls": [{"hosts": [host], "secretName": settings.tls.secret_name}],
            "rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}],
        },
    }
