"""Pure rendering of a county's CHT Core (no Pulumi): whole objects, checked against upstream at the tags.

Upstream references: CC = medic/cht-core at the tag named (4.22.0, 5.2.0, the latest 5.x release).
"""

from __future__ import annotations

import dataclasses
from urllib.parse import unquote, urlsplit

import pytest

from components.cht import render
from config import names, sizing
from config.egress import ClusterAccess
from config.model import ChtSettings

ACCESS = ClusterAccess(
    protected=("10.20.0.0/24", "10.43.0.1/32"), kube_api=(("10.20.0.11/32", 6443), ("10.43.0.1/32", 443))
)


def settings(**values) -> ChtSettings:
    return ChtSettings.model_validate({"version": "4.22.0", **values})


def env_of(env: list[dict]) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in env}


def deployments(s: ChtSettings, county: str = "kwale") -> dict[str, dict]:
    """Every Deployment a county gets, by name."""
    found = [render.couchdb_deployment(s, county, n) for n in render.couch_nodes(s)]
    found += [svc.deployment for svc in render.stateless_services(s, county)]
    if sizing.has_upgrade_service(s):
        found.append(render.upgrade_service_objects(s, county)["deployment"])
    return {d["metadata"]["name"]: d for d in found}


def pod(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]


# --- CouchDB topology and env --------------------------------------------------------------------------------


def test_three_node_cluster_env_per_node():
    s = settings(couchdbNodes=3)
    nodes = render.couch_nodes(s)
    assert [n.deployment for n in nodes] == ["cht-couchdb-1", "cht-couchdb-2", "cht-couchdb-3"]
    assert [n.container for n in nodes] == [n.deployment for n in nodes]  # upgrade service matches by name
    assert [n.claim for n in nodes] == ["couchdb-1-claim0", "couchdb-2-claim0", "couchdb-3-claim0"]
    envs = [env_of(render.couchdb_env(s, "kisumu", n)) for n in nodes]
    for number, env in enumerate(envs, start=1):
        assert env["SVC_NAME"] == f"couchdb-{number}.kisumu.svc.cluster.local"
        assert env["NODE_COUNT"] == "3"
        assert env["COUCHDB_LOG_LEVEL"] == "info"
        for key in ("COUCHDB_USER", "COUCHDB_PASSWORD", "COUCHDB_SECRET", "COUCHDB_UUID"):
            assert env[key] == {"secretKeyRef": {"name": "cht-couchdb-credentials", "key": key}}
        assert env["DEFAULT_ULIMIT"] == "true"
        assert "NOUVEAU_URL" not in env  # 4.x
    # Node 1 coordinates the cluster; nodes 2..n copy the admin hash, secret and uuid from node 1.
    assert "CLUSTER_PEER_IPS" in envs[0] and "COUCHDB_SYNC_ADMINS_NODE" not in envs[0]
    for env in envs[1:]:
        assert "COUCHDB_SYNC_ADMINS_NODE" in env and "CLUSTER_PEER_IPS" not in env
    servers = {
        "COUCHDB_SERVERS": "couchdb-1.kisumu.svc.cluster.local,couchdb-2.kisumu.svc.cluster.local,"
        "couchdb-3.kisumu.svc.cluster.local",
        "COUCHDB_SYNC_ADMINS_NODE": "couchdb-1.kisumu.svc.cluster.local",
        "CLUSTER_PEER_IPS": "couchdb-2.kisumu.svc.cluster.local,couchdb-3.kisumu.svc.cluster.local",
    }
    assert render.couchdb_servers(s, "kisumu") == servers
    # The same names and values as in Medic's ConfigMap, here plain env values (no ConfigMap to read).
    assert envs[0]["CLUSTER_PEER_IPS"] == servers["CLUSTER_PEER_IPS"]
    assert [env["COUCHDB_SYNC_ADMINS_NODE"] for env in envs[1:]] == [servers["COUCHDB_SYNC_ADMINS_NODE"]] * 2


def test_single_node_env_has_no_cluster_keys():
    s = settings()
    (node,) = render.couch_nodes(s)
    assert (node.deployment, node.service, node.claim) == ("cht-couchdb", "couchdb", "couchdb-claim0")
    env = env_of(render.couchdb_env(s, "kwale", node))
    assert env["SVC_NAME"] == "couchdb.kwale.svc.cluster.local"
    assert not {"NODE_COUNT", "CLUSTER_PEER_IPS", "COUCHDB_SYNC_ADMINS_NODE"} & set(env)
    assert render.couchdb_servers(s, "kwale") == {"COUCHDB_SERVERS": "couchdb.kwale.svc.cluster.local"}


@pytest.mark.parametrize("nodes", [1, 3])
def test_the_server_list_is_plain_env_as_medics_configmap_has_it(nodes):
    """Medic's chart puts COUCHDB_SERVERS, COUCHDB_SYNC_ADMINS_NODE and CLUSTER_PEER_IPS in the ConfigMap
    `couchdb-servers-configmap` (medic/helm-charts@d443dac charts/cht-chart-4x/templates/
    couchdb-servers-configmap.yaml) and haproxy, healthcheck and the CouchDB nodes read them by key
    (haproxy-deployment.yaml, healthcheck-deployment.yaml, couchdb-n-deployment.yaml). Here every reader gets
    the same name and value inline, so no county object is a ConfigMap and a new server list rolls its
    readers. Nothing else reads the ConfigMap: the upgrade service lists Deployments and Pods only
    (medic/upgrade-service-kubernetes@770b1bf src/lib/k8s-manager.ts)."""
    s = settings(couchdbNodes=nodes)
    servers = render.couchdb_servers(s, "kwale")
    for name, deployment in deployments(s).items():
        for container in pod(deployment)["containers"]:
            for e in container.get("env", []):
                assert "configMapKeyRef" not in e.get("valueFrom", {}), (name, e)
                if e["name"] in servers:
                    assert e["value"] == servers[e["name"]], (name, e)
    readers = {d: env_of(c["env"]) for d, dep in deployments(s).items() for c in pod(dep)["containers"] if "env" in c}
    assert readers["cht-haproxy"]["COUCHDB_SERVERS"] == servers["COUCHDB_SERVERS"]


@pytest.mark.parametrize("version, expected", [("4.19.0", False), ("4.20.0", True), ("4.22.0", True), ("5.0.0", True)])
def test_default_ulimit_only_where_the_entrypoint_reads_it(version, expected):
    s = settings(version=version)
    env = env_of(render.couchdb_env(s, "ns", render.couch_nodes(s)[0]))
    assert ("DEFAULT_ULIMIT" in env) is expected


# --- nouveau (5.x) -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["5.0.0", "5.1.3", "5.2.0"])
def test_released_5x_gets_one_nouveau_beside_node_1_behind_the_nouveau_service(version):
    """Every released cht-couchdb 5.x image sets `[nouveau] url = http://nouveau:5987` (CC 5.2.0
    couchdb/10-docker-default.ini lines 46-48) and its couchdb/docker-entrypoint.sh never reads NOUVEAU_URL;
    Medic's 5.2.0 chart runs one nouveau beside node 1 (CC 5.2.0 scripts/build/helm/templates/couchdb/
    deployment.yaml, `if eq $nodeNumber 1`) behind one Service `nouveau` selecting node 1 on 5987
    (templates/nouveau/service.yaml)."""
    assert not render.nouveau_per_node(version)
    s = settings(version=version, couchdbNodes=3)
    nodes = render.couch_nodes(s)
    assert [n.nouveau_service for n in nodes] == ["nouveau", None, None]
    service = render.nouveau_service("mombasa", nodes[0])
    assert service["metadata"]["name"] == "nouveau"
    assert service["spec"]["selector"] == {"cht.service": "couchdb-1"}
    assert service["spec"]["ports"] == [{"name": "nouveau-service", "port": 5987, "targetPort": 5987, "protocol": "TCP"}]
    containers = {n.service: [c["name"] for c in pod(render.couchdb_deployment(s, "mombasa", n))["containers"]] for n in nodes}
    assert containers == {
        "couchdb-1": ["cht-couchdb-1", "cht-couchdb-nouveau"],
        "couchdb-2": ["cht-couchdb-2"],
        "couchdb-3": ["cht-couchdb-3"],
    }
    for node in nodes:
        assert "NOUVEAU_URL" not in env_of(render.couchdb_env(s, "mombasa", node))
    (single,) = render.couch_nodes(settings(version=version))
    assert single.nouveau_service == "nouveau"
    assert render.nouveau_service("kwale", single)["spec"]["selector"] == {"cht.service": "couchdb"}


def test_nouveau_container_as_medics_chart_with_the_nodes_volume():
    s = settings(version="5.2.0")
    (node,) = render.couch_nodes(s)
    nouveau = pod(render.couchdb_deployment(s, "kwale", node))["containers"][1]
    assert nouveau["image"] == "public.ecr.aws/medic/cht-couchdb-nouveau:5.2.0"
    assert nouveau["ports"] == [{"containerPort": 5987}]
    # CC 5.2.0 chart: /data/nouveau on node 1's claim, subPath data (couchdb-nouveau/Dockerfile: VOLUME /data/nouveau).
    assert nouveau["volumeMounts"] == [{"name": "couchdb-data", "mountPath": "/data/nouveau", "subPath": "data"}]


def test_per_node_nouveau_only_from_the_release_whose_image_reads_nouveau_url(monkeypatch):
    """NOUVEAU_URL support (entrypoint `set_nouveau_url`) exists only on cht-core master after 5.2.0
    (commit de91ec4324); no release has it, so the gate is closed for every release until it is set."""
    assert render.NOUVEAU_URL_FIRST_RELEASE is None
    monkeypatch.setattr(render, "NOUVEAU_URL_FIRST_RELEASE", "5.3.0")
    assert not render.nouveau_per_node("5.2.0") and render.nouveau_per_node("5.3.0")
    s = settings(version="5.3.0", couchdbNodes=3)
    for node in render.couch_nodes(s):
        assert node.nouveau_service == f"nouveau-{node.number}"
        assert env_of(render.couchdb_env(s, "ns", node))["NOUVEAU_URL"] == f"http://nouveau-{node.number}:5987"
        assert render.nouveau_service("ns", node)["spec"]["selector"] == {"cht.service": node.service}
    assert [n.nouveau_service for n in render.couch_nodes(settings(version="5.2.0", couchdbNodes=3))] == ["nouveau", None, None]


# --- log levels -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("level, couchdb", [("debug", "debug"), ("info", "info"), ("warn", "warning"), ("error", "error")])
def test_log_level_reaches_couchdb_in_its_own_words(level, couchdb):
    """COUCHDB_LOG_LEVEL is written to local.d's `[log] level` (CC 4.22.0 and 5.2.0 couchdb/docker-entrypoint.sh);
    CouchDB names the level `warning`."""
    s = settings(logLevel=level, couchdbNodes=3)
    for node in render.couch_nodes(s):
        assert env_of(render.couchdb_env(s, "ns", node))["COUCHDB_LOG_LEVEL"] == couchdb


@pytest.mark.parametrize("version, read", [("4.22.0", False), ("5.1.3", False), ("5.2.0", True)])
def test_api_and_sentinel_get_log_level_where_they_read_it(version, read):
    """CC 5.2.0 shared-libs/logger/src/node-logger.js reads `process.env.LOG_LEVEL` (Medic's 5.2.0 chart sets it,
    templates/api/deployment.yaml); 4.22.0 and 5.1.3 derive the level from NODE_ENV only."""
    s = settings(version=version, logLevel="debug")
    for env in (render.api_env(s, "ns"), render.sentinel_env(s, "ns")):
        values = env_of(env)
        assert values["NODE_ENV"] == "production"
        assert (values.get("LOG_LEVEL") == "debug") is read
        assert ("LOG_LEVEL" in values) is read


# --- credentials and images ---------------------------------------------------------------------------------


def test_couch_url_encodes_the_password_and_round_trips():
    password = "p@ss:w/rd?#%&= é"
    url = render.couch_url("medic", password, "kwale")
    parts = urlsplit(url)
    assert parts.hostname == "haproxy.kwale.svc.cluster.local" and parts.port == 5984
    assert parts.path == "/medic"  # exactly one path segment: the database
    assert unquote(parts.password) == password and parts.username == "medic"
    assert "@" not in url.split("@", 1)[1]  # the only '@' separates credentials from the host


def test_couch_url_leaves_generated_passwords_as_they_are():
    assert render.couch_url("medic", "Abc123", "x") == "http://medic:Abc123@haproxy.x.svc.cluster.local:5984/medic"


def test_images_follow_registry_and_version():
    s = settings(registry="registry.moh.example.org/medic/", version="4.21.1")
    assert render.image(s, "api") == "registry.moh.example.org/medic/cht-api:4.21.1"


# --- the budget split and the quota ------------------------------------------------------------------------


def _requests(s: ChtSettings) -> tuple[int, int]:
    cpu = mem = 0
    for d in deployments(s).values():
        for c in pod(d)["containers"]:
            cpu += int(c["resources"]["requests"]["cpu"].rstrip("m"))
            mem += int(c["resources"]["requests"]["memory"].rstrip("Mi"))
    return cpu, mem


@pytest.mark.parametrize("nodes, version, upgrades", [(1, "4.22.0", "config"), (3, "4.22.0", "admin-app"), (3, "5.2.0", "config"), (1, "5.2.0", "config")])
def test_containers_request_the_budget_and_no_more(nodes, version, upgrades):
    s = settings(couchdbNodes=nodes, version=version, upgrades=upgrades, budget={"cpu": 3.3, "memoryGb": 10.5})
    cpu, mem = _requests(s)
    containers = sum(len(pod(d)["containers"]) for d in deployments(s).values())
    assert 3300 - containers <= cpu <= 3300  # rounding down only
    assert 10.5 * 1024 - containers <= mem <= 10.5 * 1024


def test_haproxy_and_healthcheck_are_small_and_fixed_whatever_the_budget():
    """Upstream's Compose caps haproxy's memory at 1G (CC 4.22.0 scripts/build/cht-core.yml.template lines 21-24)."""
    small, large = settings(budget={"cpu": 2, "memoryGb": 4}), settings(budget={"cpu": 16, "memoryGb": 64})
    for s in (small, large):
        d = deployments(s)
        haproxy = pod(d["cht-haproxy"])["containers"][0]["resources"]
        assert haproxy["limits"]["memory"] == "1024Mi" and haproxy["requests"] == {"cpu": "200m", "memory": "256Mi"}
        healthcheck = {c["name"]: c for c in pod(d["cht-haproxy"])["containers"]}["cht-haproxy-healthcheck"]
        assert healthcheck["resources"]["requests"] == {"cpu": "50m", "memory": "64Mi"}
    # The rest goes to CouchDB and the API first.
    split = sizing.split(large)
    assert split["couchdb"].cpu_m > split["api"].cpu_m > split["sentinel"].cpu_m > split["healthcheck"].cpu_m
    assert split["couchdb"].memory_mi > split["api"].memory_mi > split["sentinel"].memory_mi > split["haproxy"].memory_mi


def test_each_node_of_a_clustered_county_is_sized_as_a_node():
    single = sizing.split(settings(budget={"cpu": 4, "memoryGb": 16}))["couchdb"]
    # Three nodes with the API and Sentinel: a budget of twice the single county's gives each node about as much.
    node = sizing.split(settings(couchdbNodes=3, budget={"cpu": 8, "memoryGb": 32}))["couchdb"]
    assert node.cpu_m >= 0.95 * single.cpu_m and node.memory_mi >= 0.9 * single.memory_mi


def test_quota_has_headroom_above_the_budget():
    s = settings(budget={"cpu": 4, "memoryGb": 16}, quotaHeadroomPercent=25)
    hard = sizing.quota(s)
    assert hard["requests.cpu"] == "5000m" and hard["requests.memory"] == "20480Mi"
    limits = [render.container_resources(s, k)["limits"] for k in sizing.split(s)]
    assert int(hard["limits.cpu"].rstrip("m")) >= 1.25 * sum(int(x["cpu"].rstrip("m")) for x in limits)
    assert hard["persistentvolumeclaims"] == "1" and hard["requests.storage"] == "100Gi"
    assert sizing.quota(settings(quotaHeadroomPercent=0))["requests.cpu"] == "4000m"
    # A debug pod with the LimitRange's defaults fits in the headroom of the default budget.
    (defaults,) = render.limit_range("kwale")["spec"]["limits"]
    assert defaults["defaultRequest"] == {"cpu": "50m", "memory": "64Mi"}


# --- hardening --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("values", [{}, {"couchdbNodes": 3}, {"version": "5.2.0", "couchdbNodes": 3}, {"upgrades": "admin-app"}])
def test_every_container_is_hardened(values):
    s = settings(**values)
    for name, d in deployments(s).items():
        spec = pod(d)
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is (name == "upgrade-service"), name
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["privileged"] is False, c["name"]
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert "NET_RAW" not in sc["capabilities"].get("add", [])


def test_couchdb_keeps_only_what_its_entrypoint_needs():
    """CC 4.22.0/5.2.0 couchdb/docker-entrypoint.sh runs as root: `find ... -exec chown` (CHOWN), `chmod` of
    couchdb-owned files (FOWNER), appends to the couchdb-owned cluster-credentials.ini (DAC_OVERRIDE), then
    `su -c ... couchdb` (SETUID, SETGID; su forwards the stop signal to the couchdb-owned process: KILL)."""
    s = settings(version="5.2.0")
    containers = {c["name"]: c for c in pod(deployments(s)["cht-couchdb"])["containers"]}
    assert containers["cht-couchdb"]["securityContext"]["capabilities"]["add"] == [
        "CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETGID", "SETUID"
    ]
    assert containers["cht-couchdb-nouveau"]["securityContext"]["capabilities"]["add"] == ["DAC_OVERRIDE"]
    assert pod(deployments(s)["cht-couchdb"])["securityContext"]["runAsUser"] == 0  # as Medic's charts
    for name in ("cht-api", "cht-sentinel", "cht-haproxy"):
        for c in pod(deployments(s)[name])["containers"]:  # the healthcheck too, beside haproxy
            assert "add" not in c["securityContext"]["capabilities"], c["name"]


def test_namespace_enforces_baseline_and_warns_restricted():
    labels = render.namespace("kwale")["metadata"]["labels"]
    assert labels["cht-hosting/county"] == "kwale"
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert labels["pod-security.kubernetes.io/warn"] == labels["pod-security.kubernetes.io/audit"] == "restricted"


# --- placement ------------------------------------------------------------------------------------------------


def test_clustered_nodes_are_required_on_distinct_agents_and_drained_one_at_a_time():
    s = settings(couchdbNodes=3)
    selector = {"matchExpressions": [{"key": "cht.service", "operator": "In", "values": ["couchdb-1", "couchdb-2", "couchdb-3"]}]}
    for node in render.couch_nodes(s):
        affinity = pod(render.couchdb_deployment(s, "mombasa", node))["affinity"]
        (term,) = affinity["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert term == {"labelSelector": selector, "topologyKey": "kubernetes.io/hostname"}
        assert node.service in term["labelSelector"]["matchExpressions"][0]["values"]  # it selects its own kind
    budget = render.couchdb_disruption_budget(s, "mombasa")
    assert budget["spec"] == {"maxUnavailable": 1, "selector": selector}
    single = settings()
    assert render.couchdb_disruption_budget(single, "kwale") is None
    assert "affinity" not in pod(render.couchdb_deployment(single, "kwale", render.couch_nodes(single)[0]))


# --- network policies -------------------------------------------------------------------------------------------


def policies(s: ChtSettings, access: ClusterAccess = ACCESS) -> dict[str, dict]:
    return {p["metadata"]["name"]: p["spec"] for p in render.network_policies(s, "kwale", access)}


def test_ingress_policies_allow_own_namespace_and_traefik_to_api_only():
    p = policies(settings())
    isolation = p["isolation"]
    assert isolation["podSelector"] == {} and isolation["policyTypes"] == ["Ingress", "Egress"]
    assert isolation["ingress"] == [{"from": [{"podSelector": {}}]}]
    api = p["api-and-sentinel"]
    assert api["podSelector"] == {"matchExpressions": [{"key": "cht.service", "operator": "In", "values": ["api", "sentinel"]}]}
    assert api["policyTypes"] == ["Ingress", "Egress"]
    (rule,) = api["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 5988}]
    (peer,) = rule["from"]  # monitoring off: traefik only
    assert peer["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}
    assert peer["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "traefik"}}


def test_with_monitoring_the_api_port_alone_opens_to_the_scrapers():
    """Formerly monitoring's own `allow-monitoring-scrape` policy in each county: the same pods, port and peers."""
    (rule,) = policies(settings(), dataclasses.replace(ACCESS, scraped=True))["api-and-sentinel"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 5988}]
    traefik, *scrapers = rule["from"]
    assert traefik["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "traefik"}}
    assert [peer["podSelector"]["matchLabels"] for peer in scrapers] == list(names.SCRAPER_POD_LABELS)
    for peer in scrapers:
        assert peer["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    assert sorted(policies(settings(), dataclasses.replace(ACCESS, scraped=True))) == sorted(policies(settings()))


def test_egress_dns_and_own_pods_for_all_outside_world_for_api_and_sentinel_only():
    p = policies(settings())
    base = p["isolation"]
    dns, own = base["egress"]
    assert dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    assert dns["ports"] == [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    assert own == {"to": [{"podSelector": {}}]}
    world = p["api-and-sentinel"]
    assert world["podSelector"]["matchExpressions"][0]["values"] == ["api", "sentinel"]
    assert world["egress"] == [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.20.0.0/24", "10.43.0.1/32"]}}]}]
    # Only these policies select pods for egress, and none reaches the Kubernetes API without the upgrade service.
    assert sorted(p) == ["api-and-sentinel", "isolation"]


def test_sentinel_listens_on_no_port_so_the_merged_policy_admits_no_more():
    """`api-and-sentinel` admits traefik (and the scrapers) to port 5988 of the API and Sentinel pods. Sentinel
    opens no listening socket (cht-core 4.22.0 and 5.2.0 sentinel/: no `.listen(` or `createServer` but the
    CouchDB changes feed's `feed.listen()` in sentinel/src/transitions.js; sentinel/package.json has no
    HTTP framework; Medic's charts give it no Service and no containerPort), so the ingress flows are the
    API-only policy's: only the API's container declares a port, and it is the policy's one port."""
    s = settings()
    ports = {
        name: [p["containerPort"] for c in pod(d)["containers"] for p in c.get("ports", [])]
        for name, d in deployments(s).items()
    }
    assert ports["cht-sentinel"] == [] and ports["cht-api"] == [5988]
    (rule,) = policies(s)["api-and-sentinel"]["ingress"]
    assert [p["port"] for p in rule["ports"]] == [5988]
    # No other pod of the county listens on the API port.
    assert [name for name, p in ports.items() if 5988 in p] == ["cht-api"]


def test_only_the_upgrade_service_reaches_the_kubernetes_api():
    p = policies(settings(upgrades="admin-app"))
    api = p["egress-upgrade-service-kubernetes-api"]
    assert api["podSelector"] == {"matchLabels": {"cht.service": "upgrade-service"}}
    assert api["egress"] == [
        {"to": [{"ipBlock": {"cidr": "10.20.0.11/32"}}], "ports": [{"protocol": "TCP", "port": 6443}]},
        {"to": [{"ipBlock": {"cidr": "10.43.0.1/32"}}], "ports": [{"protocol": "TCP", "port": 443}]},
    ]


# --- the way in --------------------------------------------------------------------------------------------------


def test_no_buffering_middleware_responses_stream():
    """traefik's buffering middleware holds the whole response too (vulcand/oxy buffer/buffer.go), which would
    hold back `_changes` heartbeats (CC 5.2.0 api/src/routing.js flushes them); the API itself parses bodies up
    to 32 MB (CC 4.22.0 api/src/routing.js line 84, 5.2.0 line 87: MAX_REQUEST_SIZE = '32mb')."""
    s = settings(tls={"clusterIssuer": "letsencrypt"})
    annotations = render.ingress(s, "kwale", "kwale.example.org")["metadata"]["annotations"]
    assert "traefik.ingress.kubernetes.io/router.middlewares" not in annotations
    assert annotations["cert-manager.io/cluster-issuer"] == "letsencrypt"
    assert "cert-manager.io/cluster-issuer" not in render.ingress(settings(), "kwale", "k.example.org")["metadata"]["annotations"]


def test_migrated_data_path_substitutes_the_node_number():
    s = settings(migration={"volumes": [{"volumeHandle": "fcd-1"}], "dataPath": "srv%d/data"})
    assert [render.data_sub_path(s, n) for n in render.couch_nodes(s)] == ["srv1/data"]
    assert render.data_sub_path(settings(), render.couch_nodes(settings())[0]) == "data"


def test_readiness_probe_never_restarts():
    probe = render.readiness_tcp(5988)
    assert probe["tcpSocket"] == {"port": 5988}
    for d in deployments(settings(version="5.2.0", couchdbNodes=3)).values():
        assert all("livenessProbe" not in c for c in pod(d)["containers"])


# --- the healthcheck beside haproxy ----------------------------------------------------------------------------------


def haproxy_backend_servers(env: dict[str, str]) -> list[str]:
    """Stand-in for cht-core's haproxy/entrypoint.sh writing the backend servers from env: at 4.22.0 one
    `server X X:5984 check agent-check agent-inter 5s agent-addr $HEALTHCHECK_ADDR agent-port 5555` line per
    COUCHDB_SERVERS entry; at 5.2.0 the same line for each server of a cluster (`${HEALTHCHECK_ADDR:-localhost}`),
    and for a single server an HTTP check of /_up without the agent (`check inter 5s`). HEALTHCHECK_ADDR is read
    nowhere else (both tags: `git grep HEALTHCHECK_ADDR` finds only this line, docs and Medic's compose/chart)."""
    servers = [s for s in env["COUCHDB_SERVERS"].replace(" ", "").split(",") if s]
    agent = f"agent-addr {env.get('HEALTHCHECK_ADDR') or 'localhost'} agent-port 5555"
    return [f"server {s} {s}:5984 check agent-check agent-inter 5s {agent}" for s in servers]


@pytest.mark.parametrize("nodes", [1, 3])
def test_with_upgrades_config_the_healthcheck_is_a_container_of_the_haproxy_pod(nodes):
    """haproxy asks the healthcheck agent at HEALTHCHECK_ADDR:5555 (stand-in above); the healthcheck listens on
    0.0.0.0:5555 (CC 4.22.0 and 5.2.0 haproxy-healthcheck/check.py `asyncio.start_server(handle_healthcheck,
    "0.0.0.0", 5555)`), so in one pod 127.0.0.1 reaches it. The container keeps Medic's name and image."""
    s = settings(couchdbNodes=nodes)
    d = deployments(s)
    assert "cht-haproxy-healthcheck" not in d  # no Deployment of its own, and no Service
    assert [x.service for x in render.stateless_services(s, "kwale")] == ["haproxy", "api", "sentinel"]
    haproxy, healthcheck = pod(d["cht-haproxy"])["containers"]
    assert (haproxy["name"], healthcheck["name"]) == ("cht-haproxy", "cht-haproxy-healthcheck")
    assert healthcheck["image"] == "public.ecr.aws/medic/cht-haproxy-healthcheck:4.22.0"
    assert healthcheck["ports"] == [{"containerPort": 5555}]
    env = env_of(haproxy["env"])
    lines = haproxy_backend_servers({k: v for k, v in env.items() if isinstance(v, str)})
    assert len(lines) == nodes
    assert all(line.endswith("agent-addr 127.0.0.1 agent-port 5555") for line in lines)
    # The agent reads the same server list haproxy balances over.
    assert env_of(healthcheck["env"])["COUCHDB_SERVERS"] == env["COUCHDB_SERVERS"]


def upgrade_service_puts(deployments_in_namespace: list[dict], container_names: list[str]) -> list[str]:
    """Stand-in for medic/upgrade-service-kubernetes@770b1bf src/lib/k8s-manager.ts: for each container name of
    the upgrade, list the namespace's Deployments afresh (getContainersInNamespace) and set the image of every
    container matching ^<name>(-[0-9]+)?$ in that copy; then PUT each matched Deployment as read
    (replaceNamespacedDeployment, its resourceVersion included). The API server refuses a PUT whose
    resourceVersion is no longer current (409 Conflict; Kubernetes API concurrency control). Returns the PUTs
    accepted; raises on a conflict."""
    import re

    live = {d["metadata"]["name"]: 1 for d in deployments_in_namespace}  # name -> resourceVersion
    upgraded: dict[str, tuple[str, int]] = {}
    for name in container_names:
        read = dict(live)  # a fresh list per container name
        for d in deployments_in_namespace:
            for c in pod(d)["containers"]:
                if re.fullmatch(f"{name}(-[0-9]+)?", c["name"]):
                    upgraded[c["name"]] = (d["metadata"]["name"], read[d["metadata"]["name"]])
    accepted = []
    for deployment, version in upgraded.values():
        if live[deployment] != version:
            raise RuntimeError(f"409 Conflict: PUT of Deployment {deployment} at resourceVersion {version}")
        live[deployment] += 1
        accepted.append(deployment)
    return accepted


def test_with_the_upgrade_service_each_medic_container_keeps_its_own_deployment():
    """Two of Medic's upgradable containers in one Deployment would be two PUTs of the same resourceVersion:
    the second is refused and the upgrade fails. So with upgrades: admin-app the healthcheck keeps its
    Deployment (and Service, which haproxy's HEALTHCHECK_ADDR names), as in Medic's chart."""
    tags = ["cht-api", "cht-sentinel", "cht-couchdb", "cht-haproxy", "cht-haproxy-healthcheck", "cht-nginx"]
    admin = settings(upgrades="admin-app")
    d = deployments(admin)
    assert [c["name"] for c in pod(d["cht-haproxy-healthcheck"])["containers"]] == ["cht-haproxy-healthcheck"]
    assert env_of(pod(d["cht-haproxy"])["containers"][0]["env"])["HEALTHCHECK_ADDR"] == "healthcheck.kwale.svc.cluster.local"
    assert "healthcheck" in [x.service for x in render.stateless_services(admin, "kwale")]
    cht = [x for name, x in d.items() if name != "upgrade-service"]
    assert sorted(upgrade_service_puts(cht, tags)) == sorted(
        ["cht-api", "cht-sentinel", "cht-couchdb", "cht-haproxy", "cht-haproxy-healthcheck"]
    )
    # The stand-in is not vacuous: the config layout under the upgrade service would fail.
    with pytest.raises(RuntimeError, match="409 Conflict"):
        upgrade_service_puts(list(deployments(settings()).values()), tags)
