"""County workloads on later days (issue 23): sized from what the images take, CouchDB started without a
volume-wide ownership walk, a migrated 5.x county's search indexes kept, 5.x refused from the 4.x admin app,
egress limited to the outside world, cert-manager's HTTP-01 solvers reachable, and a 3-node county that forms
its cluster whenever its peers come up.

Each test names the upstream file and tag it follows (the facts below; read from the repositories at those
tags, not copied). Fixed numbers come from the test stacks tests/stacks/Pulumi.adminapp.yaml (4.x, admin-app)
and tests/stacks/Pulumi.cht5.yaml (5.x).
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
from pathlib import Path

import celpy
import pytest

from components.cht import render
from config import egress, names, sizing
from config.errors import ConfigError
from config.model import ChtSettings
from config.validate import validate, warnings
from offline import plan
from tests.conftest import raw_config

STACKS = Path(__file__).parent / "stacks"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"

# --- upstream facts, at the tags the stacks pin ------------------------------------------------------------
# medic/upgrade-service-kubernetes@770b1bf (the image medicmobile/upgrade-service:0.32): Dockerfile
# `CMD ["npm", "start"]`, package.json `"start": "npx ts-node src/main/index.ts"`: it compiles TypeScript at
# every start. Measured running that source (review cht-upstream B1): about 275 MiB once listening.
UPGRADE_SERVICE_START = "npx ts-node src/main/index.ts"
UPGRADE_SERVICE_MEASURED_MI = 275
# src/lib/k8s-manager.ts: the containers it upgrades, by name, and it PUTs the whole Deployment back.
UPGRADE_SERVICE_CONTAINER_MATCH = r"^{name}(-[0-9]+)?$"
# apache/couchdb-docker@4c82ee0 3.5.1-nouveau/Dockerfile CMD (and 3.5.0-nouveau): java ... -Xmx2g ...;
# cht-core 5.2.0 couchdb-nouveau/Dockerfile: `FROM couchdb:3.5.2-nouveau`, no JVM options of its own.
NOUVEAU_HEAP_FLAG = "-Xmx2g"
# cht-core 4.22.0 and 5.2.0 couchdb/docker-entrypoint.sh: run as root, it owns the files itself on every start:
# `find /opt/couchdb \! \( -user couchdb -group couchdb \) -exec chown -f couchdb:couchdb '{}' +`.
ENTRYPOINT_CHOWNS = "/opt/couchdb"
# cht-core 5.2.0 scripts/build/cht-couchdb-single-node.yml.template (and -cluster for node 1):
# `${COUCHDB_DATA:-./srv}:/opt/couchdb/data` and `${COUCHDB_DATA:-./srv}/nouveau:/data/nouveau`.
COMPOSE_NOUVEAU_DIR_IN_DATA = "nouveau"
# apache/couchdb-docker@4c82ee0 3.5.1-nouveau/nouveau.yaml `rootDir: ./data/nouveau` (no WORKDIR: from /).
NOUVEAU_ROOT_DIR = "/data/nouveau"
# cht-core 4.22.0 and 5.2.0 couchdb/set-up-cluster.sh: `WAIT_THRESHOLD="${WAIT_THRESHOLD:-20}"`,
# `SLEEP_SECONDS="${SLEEP_SECONDS:-5}"`; check_if_couchdb_is_ready gives up (`exit 1`) once
# `wait_count -gt WAIT_THRESHOLD`, sleeping SLEEP_SECONDS between tries; `main &` runs once, on node 1
# (CLUSTER_PEER_IPS set), and nothing runs it again until the container restarts.
SETUP_DEFAULTS = {"WAIT_THRESHOLD": 20, "SLEEP_SECONDS": 5}
# cert-manager v1.21.1: solver pods carry `acme.cert-manager.io/http01-solver: "true"`
# (pkg/apis/acme/v1/types.go SolverIdentificationLabelKey, pkg/issuer/acme/http/pod.go podLabels) and listen
# on 8089 (pkg/issuer/acme/http/http.go acmeSolverListenPort).
ACME_SOLVER_LABEL = ("acme.cert-manager.io/http01-solver", "true")
ACME_SOLVER_PORT = 8089


@pytest.fixture(scope="module")
def adminapp():
    evaluation, _ = plan.run("adminapp", stack_dir=STACKS)
    return evaluation


def county_objects(evaluation, county: str, type_: str) -> dict[str, dict]:
    project = evaluation.named(county)
    return {r.inputs["metadata"]["name"]: r.inputs for r in evaluation.descendants(project) if r.type == type_}


def containers(deployment: dict) -> dict[str, dict]:
    return {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}


def mebibytes(quantity: str) -> float:
    units = {"Mi": 1, "Gi": 1024, "Ki": 1 / 1024}
    number, unit = re.fullmatch(r"([0-9.]+)([KMG]i)", quantity).groups()
    return float(number) * units[unit]


def settings(**values) -> ChtSettings:
    return ChtSettings.model_validate({"version": "4.22.0", **values})


# --- sizing ------------------------------------------------------------------------------------------------


def test_upgrade_service_gets_what_compiling_its_typescript_at_start_takes(adminapp):
    """medic/upgrade-service-kubernetes@770b1bf package.json start script (see UPGRADE_SERVICE_START)."""
    for county in ("kwale", "mombasa"):
        container = containers(county_objects(adminapp, county, DEPLOYMENT)["upgrade-service"])["upgrade-service"]
        resources = container["resources"]
        assert mebibytes(resources["requests"]["memory"]) > UPGRADE_SERVICE_MEASURED_MI
        # Room above the measured peak for the npm wrappers (npm start -> npm exec -> ts-node).
        assert mebibytes(resources["limits"]["memory"]) >= 512
        assert resources == {"requests": {"cpu": "50m", "memory": "320Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}}


@pytest.mark.parametrize("nodes", [1, 3])
@pytest.mark.parametrize("budget", [None, {"cpu": 4, "memoryGb": 16}, {"cpu": 16, "memoryGb": 64}])
def test_nouveau_holds_the_images_fixed_heap_whatever_the_budget(nodes, budget):
    """apache/couchdb-docker@4c82ee0 3.5.1-nouveau/Dockerfile fixes the heap (NOUVEAU_HEAP_FLAG): the limit is
    that heap plus the JVM's own memory, at the smallest budget the check admits as at a large one."""
    s = settings(version="5.2.0", couchdbNodes=nodes)
    if budget is None:  # the smallest budget the config check lets through
        cpu, memory_gb = sizing.minimum_budget(s)
        budget = {"cpu": cpu, "memoryGb": memory_gb}
    s = settings(version="5.2.0", couchdbNodes=nodes, budget=budget)
    assert not sizing.below_floor(s)
    heap_mi = int(re.fullmatch(r"-Xmx(\d+)g", NOUVEAU_HEAP_FLAG).group(1)) * 1024
    (node_1, *_) = render.couch_nodes(s)
    nouveau = containers(render.couchdb_deployment(s, "kwale", node_1))["cht-couchdb-nouveau"]["resources"]
    assert mebibytes(nouveau["limits"]["memory"]) >= heap_mi + 256  # metaspace, code cache, threads, GC
    assert mebibytes(nouveau["requests"]["memory"]) <= mebibytes(nouveau["limits"]["memory"])
    # The split still never requests more than the budget.
    shares = sizing.split(s)
    total_mi = sum(r.memory_mi * (nodes if k == "couchdb" else 1) for k, r in shares.items() if k != "upgrade-service")
    assert total_mi <= s.budget.memory_gb * 1024


@pytest.mark.parametrize(
    ("county", "memory_gb", "fixed"),
    [
        # 2 GB gave nouveau 300 MiB before; its heap alone is 2 GiB.
        ({"version": "5.2.0"}, 2, "haproxy, healthcheck and nouveau"),
        # 1.5 GB was enough while the upgrade service had 128 MiB.
        ({"version": "4.22.0", "upgrades": "admin-app"}, 1.5, "haproxy, healthcheck and upgrade-service"),
    ],
)
def test_a_budget_too_small_for_the_fixed_services_is_refused_naming_the_key(county, memory_gb, fixed):
    values, secret_keys = raw_config("cht5")
    values["counties"] = {"kwale": {**county, "budget": {"cpu": 1, "memoryGb": memory_gb}}}
    with pytest.raises(ConfigError) as error:
        validate(values, secret_keys)
    (problem,) = [p for p in error.value.problems if "counties.kwale.budget" in p]
    assert problem.startswith(f"cht-hosting:counties.kwale.budget: 1 CPU / {memory_gb:g} GB is too small for CHT")
    assert f"once {fixed} have their fixed share; give it at least" in problem
    # The budget the message asks for is accepted.
    cpu, memory_gb = re.search(r"at least ([0-9.]+) CPU and ([0-9.]+) GB", problem).groups()
    values["counties"]["kwale"]["budget"] = {"cpu": float(cpu), "memoryGb": float(memory_gb)}
    validate(values, secret_keys)


# --- CouchDB's volume ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("values", [{}, {"couchdbNodes": 3}, {"version": "5.2.0", "couchdbNodes": 3}])
def test_couchdb_pods_leave_file_ownership_to_the_entrypoint(values):
    """cht-core 4.22.0/5.2.0 couchdb/docker-entrypoint.sh chowns ENTRYPOINT_CHOWNS itself, as root: no fsGroup
    (or one that skips the walk) so the kubelet does not rewrite every file on the volume first."""
    s = settings(**values)
    for node in render.couch_nodes(s):
        pod = render.couchdb_deployment(s, "kwale", node)["spec"]["template"]["spec"]
        context = pod["securityContext"]
        assert context["runAsUser"] == 0  # the entrypoint needs root to chown, then drops to couchdb
        assert "fsGroup" not in context or context.get("fsGroupChangePolicy") == "OnRootMismatch"
        mounts = [m["mountPath"] for c in pod["containers"] for m in c["volumeMounts"]]
        assert all(m.startswith(ENTRYPOINT_CHOWNS) for m in mounts if m != NOUVEAU_ROOT_DIR)


def migrated(data_path: str | None = None, version: str = "5.2.0") -> ChtSettings:
    migration: dict = {"volumes": [{"volumeHandle": "0c9a3b5e-1f2d-4c6b-9a8e-7d6c5b4a3f21"}]}
    if data_path is not None:
        migration["dataPath"] = data_path
    return settings(version=version, migration=migration)


def mounts(s: ChtSettings) -> dict[str, str]:
    (node,) = render.couch_nodes(s)
    found = {}
    for container in containers(render.couchdb_deployment(s, "kwale", node)).values():
        for mount in container["volumeMounts"]:
            found[mount["mountPath"]] = mount.get("subPath", "")
    return found


@pytest.mark.parametrize(("data_path", "data", "indexes"), [
    (None, "data", "data/nouveau"),
    ("", "", "nouveau"),
    ("couchdb%d", "couchdb1", "couchdb1/nouveau"),
])
def test_a_migrated_5x_county_finds_its_search_indexes_where_compose_kept_them(data_path, data, indexes):
    """cht-core 5.2.0 scripts/build/cht-couchdb-single-node.yml.template: CouchDB's data at /opt/couchdb/data,
    nouveau's indexes at <that directory>/nouveau mounted on NOUVEAU_ROOT_DIR."""
    found = mounts(migrated(data_path))
    assert found["/opt/couchdb/data"] == data
    assert found[NOUVEAU_ROOT_DIR] == f"{data}/{COMPOSE_NOUVEAU_DIR_IN_DATA}".lstrip("/")


def test_a_new_5x_county_keeps_the_layout_of_medics_chart():
    """cht-core 5.2.0 scripts/build/helm/templates/couchdb/deployment.yaml: nouveau on `subPath: data`, the same
    directory as CouchDB's data (unchanged for counties already running it)."""
    found = mounts(settings(version="5.2.0"))
    assert found[NOUVEAU_ROOT_DIR] == found["/opt/couchdb/data"] == "data"


def test_nouveau_restarting_does_not_take_couchdb_node_1_out_of_its_service():
    """The pod's readiness gates the couchdb-1 Service; only CouchDB's own container decides it."""
    s = settings(version="5.2.0", couchdbNodes=3)
    node_1 = render.couch_nodes(s)[0]
    found = containers(render.couchdb_deployment(s, "kwale", node_1))
    assert "readinessProbe" not in found["cht-couchdb-nouveau"]
    assert found["cht-couchdb-1"]["readinessProbe"]["tcpSocket"] == {"port": render.COUCHDB_PORT}


# --- 3-node first start ----------------------------------------------------------------------------------------


def env_of(container: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container["env"]}


@pytest.mark.parametrize("version", ["4.22.0", "5.2.0"])
def test_node_1_waits_for_its_peers_as_long_as_they_take(version):
    """cht-core <version> couchdb/set-up-cluster.sh: node 1 gives up after WAIT_THRESHOLD tries SLEEP_SECONDS
    apart (defaults: about 100 s) and never retries; ours waits for years, i.e. until the peers answer."""
    s = settings(version=version, couchdbNodes=3)
    envs = [env_of(containers(render.couchdb_deployment(s, "kwale", n))[n.container]) for n in render.couch_nodes(s)]
    default_wait = SETUP_DEFAULTS["WAIT_THRESHOLD"] * SETUP_DEFAULTS["SLEEP_SECONDS"]
    assert default_wait == 100
    node_1 = envs[0]
    wait = int(node_1["WAIT_THRESHOLD"]) * int(node_1["SLEEP_SECONDS"])
    assert wait >= 365 * 24 * 3600
    # The script compares the count with bash's `[[ -gt ]]` (64-bit integers): a count far below is not past it.
    script = '[[ "$1" -gt $WAIT_THRESHOLD ]] && exit 3; exit 0'
    for count in ("21", str(10**7)):
        check = subprocess.run(
            ["bash", "-c", script, "bash", count], env={"WAIT_THRESHOLD": node_1["WAIT_THRESHOLD"]}, capture_output=True
        )
        assert check.returncode == 0 and not check.stderr
    assert re.fullmatch(r"[1-9][0-9]*", node_1["SLEEP_SECONDS"])  # what `sleep` takes
    assert int(node_1["SLEEP_SECONDS"]) <= 30  # a peer that comes up joins within seconds
    # Nodes 2..n wait for node 1 in the foreground and restart until it answers (upstream's behaviour).
    for env in envs[1:]:
        assert "WAIT_THRESHOLD" not in env and "SLEEP_SECONDS" not in env


def test_a_single_node_county_has_no_cluster_setup_settings():
    (node,) = render.couch_nodes(settings())
    assert not {"WAIT_THRESHOLD", "SLEEP_SECONDS"} & set(env_of(containers(render.couchdb_deployment(settings(), "kwale", node))["cht-couchdb"]))


# --- the admin app stays on 4.x -------------------------------------------------------------------------------


def upgrade_request(deployment: dict, tag: str, user: str) -> dict:
    """What the API server evaluates when the upgrade service PUTs a Deployment with `tag` images: every
    container named as one of the build's services (cht-api, cht-couchdb, ...), suffixed or not, gets it
    (medic/upgrade-service-kubernetes@770b1bf src/lib/k8s-manager.ts UPGRADE_SERVICE_CONTAINER_MATCH)."""
    services = ["cht-api", "cht-sentinel", "cht-couchdb", "cht-haproxy", "cht-haproxy-healthcheck", "cht-nginx"]
    new = {**deployment, "spec": {**deployment["spec"], "template": {**deployment["spec"]["template"]}}}
    pod = {**deployment["spec"]["template"]["spec"]}
    pod["containers"] = [
        {**c, "image": f"public.ecr.aws/medic/{s}:{tag}"} if (s := next(
            (s for s in services if re.match(UPGRADE_SERVICE_CONTAINER_MATCH.format(name=s), c["name"])), None
        )) else c
        for c in pod["containers"]
    ]
    new["spec"]["template"]["spec"] = pod
    return {"request": {"userInfo": {"username": user}, "namespace": deployment["metadata"]["namespace"]}, "object": new}


def admitted(policy: dict, activation: dict) -> bool:
    """The policy's CEL as the API server runs it: skipped unless every match condition holds, then every
    validation must hold (Kubernetes ValidatingAdmissionPolicy semantics)."""
    env = celpy.Environment()
    data = celpy.json_to_cel(activation)

    def holds(expression: str) -> bool:
        return bool(env.program(env.compile(expression)).evaluate(data))

    spec = policy["spec"]
    if not all(holds(c["expression"]) for c in spec["matchConditions"]):
        return True
    return all(holds(v["expression"]) for v in spec["validations"])


@pytest.mark.parametrize("county", ["kwale", "mombasa"])
def test_the_admin_app_cannot_put_5x_images_into_a_4x_county(adminapp, county):
    """cht-core 4.22.0 admin/src/js/controllers/upgrade.js lists 5.x builds; api/src/services/setup/utils.js
    sends their images to the upgrade service, which PUTs them into every CHT Deployment."""
    cluster = [r.inputs for r in adminapp.registrations if r.type.startswith("kubernetes:admissionregistration")]
    name = f"cht-admin-app-stays-on-4x-{county}"
    (policy,) = [o for o in cluster if o["kind"] == "ValidatingAdmissionPolicy" and o["metadata"]["name"] == name]
    assert policy["kind"] == "ValidatingAdmissionPolicy" and policy["spec"]["failurePolicy"] == "Fail"
    binding = [o for o in cluster if o["kind"] == "ValidatingAdmissionPolicyBinding" and o["spec"]["policyName"] == name]
    assert [b["spec"]["validationActions"] for b in binding] == [["Deny"]]
    assert binding[0]["spec"]["matchResources"]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": county}
    rules = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rules == [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["UPDATE"], "resources": ["deployments"]}]

    upgrader = f"system:serviceaccount:{county}:{render.UPGRADE_SERVICE_ACCOUNT}"
    for deployment in county_objects(adminapp, county, DEPLOYMENT).values():
        cht = deployment["metadata"]["name"] != "upgrade-service"
        for tag in ("5.2.0", "5.0.0-beta.1", "5.1.0-some-branch.12345", "10.0.0"):
            assert admitted(policy, upgrade_request(deployment, tag, upgrader)) is not cht, (deployment["metadata"]["name"], tag)
        # 4.x upgrades go through; so does anyone else (Pulumi applying a 5.x version from config).
        assert admitted(policy, upgrade_request(deployment, "4.22.1", upgrader))
        assert admitted(policy, upgrade_request(deployment, "4.9.0", upgrader))
        assert admitted(policy, upgrade_request(deployment, "5.2.0", "system:admin"))
        assert admitted(policy, upgrade_request(deployment, "5.2.0", f"system:serviceaccount:other:{render.UPGRADE_SERVICE_ACCOUNT}"))
    # A mirror registry with a port is not read as a version.
    mirror = {"request": {"userInfo": {"username": upgrader}}, "object": {"spec": {"template": {"spec": {"containers": [
        {"name": "cht-api", "image": "registry.moh.example.org:5000/medic/cht-api:4.22.0"}]}}}}}
    assert admitted(policy, mirror)


def test_only_4x_admin_app_counties_get_the_policy(adminapp):
    assert render.admin_app_policy("kwale")["policy"]["metadata"]["name"] == "cht-admin-app-stays-on-4x-kwale"
    five, _ = plan.run("cht5", stack_dir=STACKS)
    assert not [r for r in five.registrations if r.type.startswith("kubernetes:admissionregistration")]
    # The upgrade service starts only once the cluster enforces the policy.
    deployment = adminapp.named("kwale-upgrade-service-deployment")
    assert adminapp.named("kwale-admin-app-policy-binding").urn in deployment.depends_on


# --- NetworkPolicies, evaluated ---------------------------------------------------------------------------------


def _selects(selector: dict, labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for e in selector.get("matchExpressions", []):
        if e["operator"] == "In" and labels.get(e["key"]) not in e["values"]:
            return False
    return True


def _peer_matches(peer: dict, policy_ns: str, other: dict) -> bool:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        ip = ipaddress.IPv4Address(other["ip"])
        return ip in ipaddress.IPv4Network(block["cidr"]) and not any(ip in ipaddress.IPv4Network(e) for e in block.get("except", []))
    if "namespaceSelector" in peer:
        if not _selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": other["ns"]}):
            return False
    elif other["ns"] != policy_ns:
        return False
    return _selects(peer.get("podSelector", {}), other["labels"])


def allowed(policies: list[dict], direction: str, pod: dict, other: dict, port: int, protocol: str = "TCP") -> bool:
    """NetworkPolicy semantics for one connection of `pod` (in the policies' namespace) to/from `other`:
    isolated when a policy of that direction selects it, then allowed when any rule of one allows it.
    `other` is {"ns", "labels", "ip"} (a pod) or {"ip"} with ns None (an outside address)."""
    kind, key, field = ("Ingress", "ingress", "from") if direction == "in" else ("Egress", "egress", "to")
    ns = pod["ns"]
    mine = [p for p in policies if kind in p["spec"]["policyTypes"] and _selects(p["spec"]["podSelector"], pod["labels"])]
    if not mine:
        return True
    for policy in mine:
        for rule in policy["spec"].get(key, []):
            ports = rule.get("ports")
            if ports and not any(p.get("protocol", "TCP") == protocol and p["port"] == port for p in ports):
                continue
            peers = rule.get(field)
            if not peers or any(_peer_matches(peer, ns, other if other.get("ns") else {**other, "ns": None, "labels": {}}) for peer in peers):
                return True
    return False


def policies_of(evaluation, county: str) -> list[dict]:
    return list(county_objects(evaluation, county, NETWORK_POLICY).values())


TRAEFIK = {"ns": names.INGRESS_NAMESPACE, "labels": dict(render.INGRESS_POD_LABELS), "ip": "10.52.1.7"}


def pod_of(county: str, service: str, ip: str = "10.52.2.9") -> dict:
    return {"ns": county, "labels": render.labels(county, service), "ip": ip}


def solver(county: str) -> dict:
    return {"ns": county, "labels": dict([ACME_SOLVER_LABEL]), "ip": "10.52.2.10"}


def test_http01_solvers_are_reachable_from_traefik_with_a_cluster_issuer(adminapp):
    """cert-manager v1.21.1 solver pod label and port (ACME_SOLVER_LABEL, ACME_SOLVER_PORT)."""
    kwale = policies_of(adminapp, "kwale")  # tls.clusterIssuer set
    assert allowed(kwale, "in", solver("kwale"), TRAEFIK, ACME_SOLVER_PORT)
    assert not allowed(kwale, "in", solver("kwale"), TRAEFIK, 8080)
    assert not allowed(kwale, "in", pod_of("kwale", "couchdb"), TRAEFIK, ACME_SOLVER_PORT)
    assert not allowed(kwale, "in", solver("kwale"), {**pod_of("mombasa", "api"), "ns": "mombasa"}, ACME_SOLVER_PORT)
    assert allowed(kwale, "in", pod_of("kwale", "api"), TRAEFIK, render.API_PORT)
    # Without an issuer there is no solver and no opening for one.
    mombasa = policies_of(adminapp, "mombasa")
    assert not allowed(mombasa, "in", solver("mombasa"), TRAEFIK, ACME_SOLVER_PORT)
    assert allowed(mombasa, "in", pod_of("mombasa", "api"), TRAEFIK, render.API_PORT)


@pytest.mark.parametrize("service", ["api", "sentinel"])
def test_api_and_sentinel_reach_the_outside_world_only(adminapp, service):
    """tests/stacks/Pulumi.adminapp.yaml: nodes 10.40.0.0/24, pods 10.52.0.0/16, Services 10.53.0.0/16,
    protected 10.41.0.0/24 (vCenter, ESXi) and 172.16.8.0/22."""
    policies = policies_of(adminapp, "kwale")
    me = pod_of("kwale", service)
    outside = {"ip": "203.0.113.7", "ns": None}
    assert allowed(policies, "out", me, outside, 443)
    for ip in ("10.40.0.21", "10.40.0.10", "10.41.0.5", "172.16.9.1"):  # agent, API VIP, vCenter, protected
        assert not allowed(policies, "out", me, {"ip": ip, "ns": None}, 443), ip
    # Pods and Services of the platform (no ingress policies of their own), reached by address.
    for ns, ip, port in [("kube-system", "10.52.0.5", 9100), ("velero", "10.52.3.3", 8085), ("system-upgrade", "10.52.4.4", 8080)]:
        assert not allowed(policies, "out", me, {"ns": ns, "labels": {"app": "x"}, "ip": ip}, port), ns
    assert not allowed(policies, "out", me, {"ip": "10.53.0.10", "ns": None}, 9153)
    assert not allowed(policies, "out", me, {"ip": "10.53.0.1", "ns": None}, 443)  # the `kubernetes` Service
    # Their own namespace and DNS stay reachable.
    assert allowed(policies, "out", me, pod_of("kwale", "haproxy", "10.52.2.11"), render.COUCHDB_PORT)
    dns = {"ns": names.KUBE_SYSTEM, "labels": dict(render.DNS_POD_LABELS), "ip": "10.52.0.2"}
    assert allowed(policies, "out", me, dns, 53, "UDP")


def test_the_upgrade_service_still_reaches_the_kubernetes_api(adminapp):
    policies = policies_of(adminapp, "kwale")
    me = pod_of("kwale", "upgrade-service")
    assert allowed(policies, "out", me, {"ip": "10.53.0.1", "ns": None}, 443)
    assert allowed(policies, "out", me, {"ip": "10.40.0.11", "ns": None}, 6443)
    assert not allowed(policies, "out", me, {"ip": "203.0.113.7", "ns": None}, 443)


def test_protected_networks_are_the_clusters_and_configs():
    config = validate(*raw_config("adminapp"))
    access = egress.cluster_access(config)
    assert access.protected == ("10.40.0.0/24", "10.52.0.0/16", "10.53.0.0/16", "10.41.0.0/24", "172.16.8.0/22")
    # vCenter is named, and its network is listed: nothing to warn about.
    assert not [w for w in warnings(config) if w.startswith("cht-hosting:vsphere.server:")]


def test_a_wider_protected_network_takes_the_place_of_those_inside_it():
    values, secret_keys = raw_config("adminapp")
    values["network"] = {**values["network"], "protectedNetworks": ["10.0.0.0/8"]}
    assert egress.cluster_access(validate(values, secret_keys)).protected == ("10.0.0.0/8",)


def test_vcenter_by_name_without_protected_networks_warns():
    values, secret_keys = raw_config("adminapp")
    values["network"] = {k: v for k, v in values["network"].items() if k != "protectedNetworks"}
    config = validate(values, secret_keys)
    (warning,) = [w for w in warnings(config) if w.startswith("cht-hosting:vsphere.server:")]
    assert "vcenter.test.example.org is a name" in warning and "cht-hosting:network.protectedNetworks" in warning
    # Given as an address, vCenter is left out by address.
    values["vsphere"] = {**values["vsphere"], "server": "192.168.50.5"}
    config = validate(values, secret_keys)
    assert "192.168.50.5/32" in egress.cluster_access(config).protected
    assert not [w for w in warnings(config) if w.startswith("cht-hosting:vsphere.server:")]


# --- a migrated 5.x county, whole --------------------------------------------------------------------------------


def test_a_migrated_5x_county_registers_its_compose_index_directory():
    from tests.test_cht_project import build_counties, migrated_county

    migration = {"volumes": [{"volumeHandle": "0c9a3b5e-1f2d-4c6b-9a8e-7d6c5b4a3f21"}]}
    evaluation = build_counties(
        {"kilifi": migrated_county("kilifi", version="5.2.0", migration=migration)},
        credentials={"kilifi": {"user": "medic", "password": "p", "secret": "s", "uuid": "u"}},
    )
    (deployment,) = [r.inputs for r in evaluation.of_type(DEPLOYMENT) if r.inputs["metadata"]["name"] == "cht-couchdb"]
    found = containers(deployment)
    (index,) = found["cht-couchdb-nouveau"]["volumeMounts"]
    assert (index["mountPath"], index["subPath"]) == (NOUVEAU_ROOT_DIR, "data/nouveau")
    assert found["cht-couchdb"]["volumeMounts"][0] == {"name": render.DATA_VOLUME, "mountPath": "/opt/couchdb/data", "subPath": "data"}


def test_an_existing_cluster_without_protected_networks_warns():
    values, secret_keys = raw_config("k3d")
    values["existingCluster"] = {k: v for k, v in values["existingCluster"].items() if k != "protectedNetworks"}
    (warning,) = [w for w in warnings(validate(values, secret_keys)) if "protectedNetworks" in w]
    assert warning.startswith("cht-hosting:existingCluster.protectedNetworks: is empty")
    values["existingCluster"]["protectedNetworks"] = ["10.42.0.0/16", "10.43.0.0/16", "192.168.1.0/24"]
    assert not [w for w in warnings(validate(values, secret_keys)) if "protectedNetworks" in w]
