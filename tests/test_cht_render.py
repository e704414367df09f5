"""Pure rendering of a county's CHT Core (no Pulumi)."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import pytest

from components.cht import render
from config.model import ChtSettings


def settings(**values) -> ChtSettings:
    return ChtSettings.model_validate({"version": "4.22.0", **values})


def env_of(env: list[dict]) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in env}


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
    assert render.servers_configmap(s, "kisumu") == {
        "COUCHDB_SERVERS": "couchdb-1.kisumu.svc.cluster.local,couchdb-2.kisumu.svc.cluster.local,"
        "couchdb-3.kisumu.svc.cluster.local",
        "COUCHDB_SYNC_ADMINS_NODE": "couchdb-1.kisumu.svc.cluster.local",
        "CLUSTER_PEER_IPS": "couchdb-2.kisumu.svc.cluster.local,couchdb-3.kisumu.svc.cluster.local",
    }


def test_single_node_env_has_no_cluster_keys():
    s = settings()
    (node,) = render.couch_nodes(s)
    assert (node.deployment, node.service, node.claim) == ("cht-couchdb", "couchdb", "couchdb-claim0")
    env = env_of(render.couchdb_env(s, "kwale", node))
    assert env["SVC_NAME"] == "couchdb.kwale.svc.cluster.local"
    assert not {"NODE_COUNT", "CLUSTER_PEER_IPS", "COUCHDB_SYNC_ADMINS_NODE"} & set(env)
    assert render.servers_configmap(s, "kwale") == {"COUCHDB_SERVERS": "couchdb.kwale.svc.cluster.local"}


def test_five_x_cluster_points_each_node_at_its_nouveau():
    s = settings(version="5.2.0", couchdbNodes=3)
    for node in render.couch_nodes(s):
        assert env_of(render.couchdb_env(s, "ns", node))["NOUVEAU_URL"] == f"http://nouveau-{node.number}:5987"


@pytest.mark.parametrize("version, expected", [("4.19.0", False), ("4.20.0", True), ("4.22.0", True), ("5.0.0", True)])
def test_default_ulimit_only_where_the_entrypoint_reads_it(version, expected):
    s = settings(version=version)
    env = env_of(render.couchdb_env(s, "ns", render.couch_nodes(s)[0]))
    assert ("DEFAULT_ULIMIT" in env) is expected


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


@pytest.mark.parametrize("nodes, version, upgrades", [(1, "4.22.0", "config"), (3, "4.22.0", "admin-app"), (3, "5.2.0", "config")])
def test_resource_split_stays_within_the_budget(nodes, version, upgrades):
    s = settings(couchdbNodes=nodes, version=version, upgrades=upgrades, budget={"cpu": 3.3, "memoryGb": 10.5})
    split = render.resource_split(s)
    assert sum(r.cpu_m for r in split.values()) <= 3300
    assert sum(r.memory_mi for r in split.values()) <= 10.5 * 1024
    assert sum(r.cpu_m for r in split.values()) >= 3300 - len(split)  # and uses it (rounding only)
    assert ("upgrade-service" in split) is (upgrades == "admin-app")
    assert any(k.endswith("/nouveau") for k in split) is version.startswith("5")
    hard = render.quota(s)
    assert hard["requests.cpu"] == "3300m" and hard["limits.memory"] == f"{int(10.5 * 1024) * 2}Mi"
    for r in split.values():
        req = r.requirements()
        assert req["limits"]["memory"] == f"{r.memory_mi * 2}Mi"


def test_upgrade_service_only_for_admin_app_on_4x():
    assert not render.upgrade_service_enabled(settings())
    assert render.upgrade_service_enabled(settings(upgrades="admin-app"))
    assert "UPGRADE_SERVICE_URL" not in env_of(render.api_env(settings(), "ns"))
    assert env_of(render.api_env(settings(upgrades="admin-app"), "ns"))["UPGRADE_SERVICE_URL"] == (
        "http://upgrade-service.ns.svc.cluster.local:5008"
    )


def test_network_policies_allow_own_namespace_and_traefik_to_api_only():
    policies = render.network_policies()
    same = policies["same-namespace-only"]
    assert same["podSelector"] == {} and same["ingress"] == [{"from": [{"podSelector": {}}]}]
    api = policies["api-from-ingress-controller"]
    assert api["podSelector"] == {"matchLabels": {"cht.service": "api"}}
    (rule,) = api["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 5988}]
    (peer,) = rule["from"]
    assert peer["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}
    assert peer["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "traefik"}}


def test_ingress_limits_match_cht_nginx():
    assert render.buffering_middleware_spec()["buffering"]["maxRequestBodyBytes"] == 32 * 1024 * 1024
    assert render.servers_transport_spec()["forwardingTimeouts"]["responseHeaderTimeout"] == "3600s"
    s = settings(tls={"clusterIssuer": "letsencrypt"})
    annotations = render.ingress_annotations(s, "kwale")
    assert annotations["cert-manager.io/cluster-issuer"] == "letsencrypt"
    assert annotations["traefik.ingress.kubernetes.io/router.middlewares"] == "kwale-cht-body-size@kubernetescrd"
    assert "cert-manager.io/cluster-issuer" not in render.ingress_annotations(settings(), "kwale")


def test_migrated_data_path_substitutes_the_node_number():
    s = settings(
        couchdbNodes=3,
        migration={"volumes": [{"volumeHandle": f"fcd-{n}"} for n in (1, 2, 3)], "dataPath": "srv%d/data"},
    )
    assert [render.data_sub_path(s, n) for n in render.couch_nodes(s)] == ["srv1/data", "srv2/data", "srv3/data"]
    assert render.data_sub_path(settings(), render.couch_nodes(settings())[0]) == "data"


def test_readiness_probe_never_restarts():
    probe = render.readiness_tcp(5988)
    assert probe["tcpSocket"] == {"port": 5988}
