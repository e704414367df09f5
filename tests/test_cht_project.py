"""ChtProject on the mock engine: the national stack's 50 counties (once per session) and focused variants."""

from __future__ import annotations

import json

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components.cht.project import ChtProject
from config import names
from config.egress import ClusterAccess
from config.model import County
from config.validate import validate
from offline.engine import Evaluation, ProgramFailed, record
from tests.conftest import BACKUP_KEYS, raw_config

PVC = "kubernetes:core/v1:PersistentVolumeClaim"
PV = "kubernetes:core/v1:PersistentVolume"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"


ACCESS = ClusterAccess(protected=("10.20.0.0/24",), kube_api=(("10.20.0.11/32", 6443),))


def build_counties(
    counties: dict[str, County], credentials: dict[str, dict] | None = None, app_may_have_upgraded: bool = True
) -> Evaluation:
    def build():
        provider = k8s.Provider("k8s", kubeconfig="apiVersion: v1\nkind: Config\n")
        for name, county in counties.items():
            creds = None
            if credentials and name in credentials:
                creds = pulumi.Output.secret(credentials[name])
            project = ChtProject(
                name, county, storage_class="vmware-sc", access=ACCESS, credentials=creds,
                app_may_have_upgraded=app_may_have_upgraded, opts=pulumi.ResourceOptions(provider=provider),
            )
            pulumi.export(name, {"url": project.url, "namespace": project.namespace})

    return record(build)


def county(name: str = "kwale", **overrides) -> County:
    values, secret_keys = raw_config("national")
    values["counties"] = {name: overrides}
    return validate(values, secret_keys).counties[name]


def migrated_county(name: str, **overrides) -> County:
    values, secret_keys = raw_config("national", migratedCredentials="[secret]")
    values["counties"] = {name: overrides}
    if any("hostPath" in v for v in overrides.get("migration", {}).get("volumes", [])):
        # Refused with backups (Velero never backs up a hostPath volume): a stack without them.
        for key in ("backup", *BACKUP_KEYS):
            values.pop(key, None)
        secret_keys = secret_keys - BACKUP_KEYS
    return validate(values, secret_keys | {"migratedCredentials"}).counties[name]


def in_project(evaluation: Evaluation, name: str):
    return evaluation.descendants(evaluation.named(name))


def by_k8s_name(evaluation: Evaluation, project: str, type_: str) -> dict:
    return {r.inputs["metadata"]["name"]: r for r in in_project(evaluation, project) if r.type == type_}


# --- the national stack ---------------------------------------------------------------------------------------


def test_national_has_fifty_projects_namespaced_by_county(national, national_counties):
    projects = national.of_type("cht-hosting:cht:ChtProject")
    assert len(projects) == 50 == len(national_counties)
    for name in national_counties:
        for r in in_project(national, name):
            assert r.name.startswith(f"{name}-")
            metadata = r.inputs.get("metadata") or {}
            if r.type == "kubernetes:velero.io/v1:Schedule":
                # The county's backup Schedule is its own but lives where Velero reads Schedules.
                assert metadata["namespace"] == "velero" and metadata["name"] == f"county-{name}", r.name
            elif r.type.startswith("kubernetes:") and r.type not in (PV, "kubernetes:core/v1:Namespace"):
                assert metadata["namespace"] == name, r.name
    assert national.outputs["counties"]["nairobi"]["url"] == "https://nairobi.echis.moh.example.org"


def test_every_pvc_is_protected_retained_and_on_the_storage_class(national, national_counties):
    pvcs = national.of_type(PVC)
    assert len(pvcs) == sum(c.settings.couchdb_nodes for c in national_counties.values())  # one per CouchDB node
    for pvc in pvcs:
        assert pvc.protect and pvc.retain_on_delete, pvc.name
        assert pvc.inputs["spec"]["storageClassName"] == "vmware-sc"
        assert pvc.inputs["spec"]["accessModes"] == ["ReadWriteOnce"]
        assert "spec.storageClassName" in pvc.ignore_changes
        # restore-county.sh binds a migrated county's restored claim to a new volume (docs/runbooks/restore-county.md)
        assert "spec.volumeName" in pvc.ignore_changes
        assert not pvc.replace_on_changes and not pvc.delete_before_replace
    mombasa = by_k8s_name(national, "mombasa", PVC)
    assert sorted(mombasa) == ["couchdb-1-claim0", "couchdb-2-claim0", "couchdb-3-claim0"]
    assert {p.inputs["spec"]["resources"]["requests"]["storage"] for p in mombasa.values()} == {"300Gi"}


def county_registrations(evaluation):
    return [r for p in evaluation.of_type("cht-hosting:cht:ChtProject") for r in evaluation.descendants(p)]


def test_namespace_and_credentials_outlive_the_county(national):
    kept = [r for r in county_registrations(national) if r.type in ("kubernetes:core/v1:Namespace", "kubernetes:core/v1:Secret")]
    assert len(kept) == 100
    for r in kept:
        assert r.retain_on_delete, r.name
    deployments = national.of_type(DEPLOYMENT)
    assert deployments and not any(d.retain_on_delete or d.protect for d in deployments)


def test_credentials_secret_is_secret_and_complete(national):
    secret = national.named("kwale-credentials")
    assert secret.inputs["metadata"]["name"] == "cht-couchdb-credentials"
    assert "stringData" in secret.secret_inputs
    data = secret.inputs["stringData"]
    assert set(data) == {"COUCHDB_USER", "COUCHDB_PASSWORD", "COUCHDB_SECRET", "COUCHDB_UUID", "COUCH_URL"}
    assert data["COUCH_URL"] == f"http://medic:{data['COUCHDB_PASSWORD']}@haproxy.kwale.svc.cluster.local:5984/medic"
    password = national.named("kwale-couchdb-password")
    assert password.inputs["special"] is False and password.inputs["length"] == 32
    # Generated once: nothing that changes (version, sizes) feeds the generators.
    for r in in_project(national, "kwale"):
        if r.type.startswith("random:"):
            assert "keepers" not in r.inputs


def test_three_node_topology(national):
    deployments = by_k8s_name(national, "mombasa", DEPLOYMENT)
    assert sorted(deployments) == [
        "cht-api", "cht-couchdb-1", "cht-couchdb-2", "cht-couchdb-3", "cht-haproxy", "cht-sentinel"
    ]
    for name, d in deployments.items():
        spec = d.inputs["spec"]
        assert spec["strategy"] == {"type": "Recreate"}
        # 4.x: one container a Deployment, but haproxy's pod also runs the healthcheck (upgrades: config).
        first, *more = spec["template"]["spec"]["containers"]
        assert [c["name"] for c in more] == (["cht-haproxy-healthcheck"] if name == "cht-haproxy" else [])
        for container in (first, *more):
            image = container["name"].rstrip("-123") if "couchdb" in name else container["name"]
            assert container["image"] == f"public.ecr.aws/medic/{image}:4.22.0"
            assert "livenessProbe" not in container
            assert container["resources"]["requests"] and container["resources"]["limits"]
        assert first["name"] == name
    node2 = deployments["cht-couchdb-2"].inputs["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m for m in node2["containers"][0]["volumeMounts"]}
    assert mounts["/opt/couchdb/data"]["subPath"] == "data" and mounts["/opt/couchdb/etc/local.d"]["subPath"] == "local.d"
    assert node2["volumes"] == [{"name": "couchdb-data", "persistentVolumeClaim": {"claimName": "couchdb-2-claim0"}}]
    services = by_k8s_name(national, "mombasa", SERVICE)
    assert sorted(services) == ["api", "couchdb-1", "couchdb-2", "couchdb-3", "haproxy"]
    assert [p["port"] for p in services["couchdb-3"].inputs["spec"]["ports"]] == [5984, 4369, 9100]


def test_budget_becomes_quota_with_headroom_and_requests(national, national_counties):
    for name in ("kwale", "mombasa"):
        settings = national_counties[name].settings
        quota = by_k8s_name(national, name, "kubernetes:core/v1:ResourceQuota")["cht-budget"]
        headroom = 1 + settings.quota_headroom_percent / 100
        assert quota.inputs["spec"]["hard"]["requests.cpu"] == f"{round(settings.budget.cpu * 1000 * headroom)}m"
        assert quota.inputs["spec"]["hard"]["persistentvolumeclaims"] == str(settings.couchdb_nodes)
        total = 0
        for d in by_k8s_name(national, name, DEPLOYMENT).values():
            for c in d.inputs["spec"]["template"]["spec"]["containers"]:
                total += int(c["resources"]["requests"]["cpu"].rstrip("m"))
        assert settings.budget.cpu * 1000 - 10 <= total <= settings.budget.cpu * 1000


def test_network_policies_per_namespace(national):
    for name in ("kwale", "mombasa"):
        policies = by_k8s_name(national, name, "kubernetes:networking.k8s.io/v1:NetworkPolicy")
        assert sorted(policies) == ["api-and-sentinel", "isolation"]


def test_ingress_to_api_with_tls_and_timeouts_and_no_buffering(national):
    (ingress,) = by_k8s_name(national, "kwale", "kubernetes:networking.k8s.io/v1:Ingress").values()
    spec = ingress.inputs["spec"]
    assert spec["ingressClassName"] == "traefik"
    assert spec["tls"] == [{"hosts": ["kwale.echis.moh.example.org"], "secretName": "cht-tls"}]
    (rule,) = spec["rules"]
    assert rule["host"] == "kwale.echis.moh.example.org"
    assert rule["http"]["paths"][0]["backend"] == {"service": {"name": "api", "port": {"number": 5988}}}
    assert "traefik.ingress.kubernetes.io/router.middlewares" not in ingress.inputs["metadata"]["annotations"]
    assert not national.of_type("kubernetes:traefik.io/v1alpha1:Middleware")
    api = by_k8s_name(national, "kwale", SERVICE)["api"]
    assert api.inputs["metadata"]["annotations"]["traefik.ingress.kubernetes.io/service.serverstransport"] == (
        "kube-system-cht-api-transport@kubernetescrd"
    )
    # One transport for the nation, the platform's (traefik's namespace); the county's way in waits for it.
    (transport,) = national.of_type("kubernetes:traefik.io/v1alpha1:ServersTransport")
    assert transport.inputs["metadata"]["namespace"] == "kube-system"
    assert transport.urn in api.depends_on and transport.urn in ingress.depends_on


def test_config_policy_has_no_upgrade_service_and_ignores_nothing(national):
    kinds = {r.type for r in in_project(national, "kwale")}
    assert not {"kubernetes:rbac.authorization.k8s.io/v1:Role", "kubernetes:core/v1:ServiceAccount"} & kinds
    assert all(not d.ignore_changes for d in national.of_type(DEPLOYMENT))


def test_no_secret_in_plain_inputs(national):
    county_secrets = [r for r in county_registrations(national) if r.type == "kubernetes:core/v1:Secret"]
    secret_values = {v for s in county_secrets for k, v in s.inputs["stringData"].items() if k != "COUCHDB_USER"}
    assert len(secret_values) == 50 * 4
    for r in national.registrations:
        if r.type == "kubernetes:core/v1:Secret" or r.type.startswith("random:"):
            continue
        text = json.dumps(r.inputs)
        assert not any(v in text for v in secret_values), r.name


# --- variants ---------------------------------------------------------------------------------------------


def test_version_bump_changes_images_only_never_a_volume():
    old = build_counties({"kwale": county(version="4.21.1"), "mombasa": county("mombasa", couchdbNodes=3)})
    new = build_counties({"kwale": county(version="4.22.0"), "mombasa": county("mombasa", couchdbNodes=3, version="4.22.0")})
    before = {r.urn: r for r in old.registrations}
    changed = []
    for r in new.registrations:
        if r.inputs != before[r.urn].inputs:
            changed.append(r)
    assert {r.type for r in changed} == {DEPLOYMENT}
    assert {r.inputs["metadata"]["name"] for r in changed} == {
        "cht-api", "cht-sentinel", "cht-haproxy", "cht-couchdb"
    }
    assert len(new.registrations) == len(old.registrations)


def test_larger_storage_expands_the_same_claim():
    small = build_counties({"kwale": county(couchdbStorageGb=100)})
    large = build_counties({"kwale": county(couchdbStorageGb=250)})
    (a,), (b,) = small.of_type(PVC), large.of_type(PVC)
    assert a.urn == b.urn and a.inputs["metadata"] == b.inputs["metadata"]
    assert b.inputs["spec"]["resources"]["requests"]["storage"] == "250Gi"
    assert {k: v for k, v in a.inputs["spec"].items() if k != "resources"} == {
        k: v for k, v in b.inputs["spec"].items() if k != "resources"
    }


def test_five_x_adds_one_nouveau_beside_node_1_and_drops_nothing_stateful():
    four = build_counties({"mombasa": county("mombasa", couchdbNodes=3, version="4.22.0")})
    five = build_counties({"mombasa": county("mombasa", couchdbNodes=3, version="5.2.0")})
    # Registration order is not deterministic; compare by URN.
    assert {r.urn: r.inputs for r in four.of_type(PVC)} == {r.urn: r.inputs for r in five.of_type(PVC)}
    deployments = by_k8s_name(five, "mombasa", DEPLOYMENT)
    containers = {n: [c["name"] for c in deployments[n].inputs["spec"]["template"]["spec"]["containers"]] for n in deployments}
    assert containers["cht-couchdb-1"] == ["cht-couchdb-1", "cht-couchdb-nouveau"]
    assert containers["cht-couchdb-2"] == ["cht-couchdb-2"] and containers["cht-couchdb-3"] == ["cht-couchdb-3"]
    services = by_k8s_name(five, "mombasa", SERVICE)
    assert "nouveau" in services and not {"nouveau-1", "nouveau-2", "nouveau-3"} & set(services)
    assert services["nouveau"].inputs["spec"]["selector"] == {"cht.service": "couchdb-1"}
    assert "nouveau" not in by_k8s_name(four, "mombasa", SERVICE)
    env = {e["name"] for e in deployments["cht-api"].inputs["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "UPGRADE_SERVICE_URL" not in env


def test_five_x_single_node_has_nouveau_service():
    five = build_counties({"kwale": county(version="5.2.0")})
    assert by_k8s_name(five, "kwale", SERVICE)["nouveau"].inputs["spec"]["selector"] == {"cht.service": "couchdb"}


def test_clustered_county_has_a_disruption_budget_and_a_single_one_none(national, national_counties):
    for name, c in national_counties.items():
        budgets = by_k8s_name(national, name, "kubernetes:policy/v1:PodDisruptionBudget")
        if c.settings.couchdb_nodes == 1:
            assert not budgets, name
        else:
            assert budgets["couchdb-nodes"].inputs["spec"]["maxUnavailable"] == 1


def test_admin_app_policy_brings_upgrade_service_and_never_reverts_images():
    evaluation = build_counties({"kwale": county(upgrades="admin-app")})
    role = by_k8s_name(evaluation, "kwale", "kubernetes:rbac.authorization.k8s.io/v1:Role")["deployment-manager"]
    assert role.inputs["metadata"]["namespace"] == "kwale"
    assert {tuple(rule["resources"]) for rule in role.inputs["rules"]} == {("deployments",), ("pods",)}
    assert not evaluation.of_type("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole")
    binding = by_k8s_name(evaluation, "kwale", "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")["deployment-manager-cht"]
    assert binding.inputs["subjects"] == [{"kind": "ServiceAccount", "name": "cht-upgrade-service-user", "namespace": "kwale"}]
    deployments = by_k8s_name(evaluation, "kwale", DEPLOYMENT)
    upgrade = deployments.pop("upgrade-service")
    assert upgrade.inputs["spec"]["template"]["spec"]["serviceAccountName"] == "cht-upgrade-service-user"
    assert not upgrade.ignore_changes
    for name, d in deployments.items():
        assert d.ignore_changes == ("spec.template.spec.containers",), name
    api_env = {e["name"]: e.get("value") for e in deployments["cht-api"].inputs["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert api_env["UPGRADE_SERVICE_URL"] == "http://upgrade-service.kwale.svc.cluster.local:5008"
    # The healthcheck keeps its own Deployment and Service there (render.healthcheck_beside_haproxy).
    assert "cht-haproxy-healthcheck" in deployments and "healthcheck" in by_k8s_name(evaluation, "kwale", SERVICE)
    # And Medic's ConfigMap: containers created by earlier releases, left as they are, read it by key.
    configmap = by_k8s_name(evaluation, "kwale", "kubernetes:core/v1:ConfigMap")["couchdb-servers-configmap"]
    assert configmap.inputs["data"] == {"COUCHDB_SERVERS": "couchdb.kwale.svc.cluster.local"}
    assert configmap.urn in deployments["cht-couchdb"].depends_on
    assert not build_counties({"kwale": county()}).of_type("kubernetes:core/v1:ConfigMap")


def test_a_county_switching_to_admin_app_gets_its_containers_as_rendered_once():
    """The last update ran it with upgrades: config (config.deployed.app_may_have_upgraded is False): no upgrade
    service has run, so this update applies the containers (the healthcheck leaves the haproxy pod for its own
    Deployment) and only the next ones leave them to the admin app."""
    evaluation = build_counties({"kwale": county(upgrades="admin-app")}, app_may_have_upgraded=False)
    deployments = by_k8s_name(evaluation, "kwale", DEPLOYMENT)
    assert all(not d.ignore_changes for d in deployments.values())
    haproxy = deployments["cht-haproxy"].inputs["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in haproxy] == ["cht-haproxy"]


def test_the_deployed_record_says_whether_the_app_may_have_upgraded():
    from config.deployed import DeployedState, app_may_have_upgraded

    def state(**county) -> DeployedState:
        record = {"couchdbNodes": 1, "couchdbStorageGb": 10, "version": "4.22.0", **county}
        return DeployedState.model_validate({"schema": 1, "counties": {"kwale": record}})

    assert app_may_have_upgraded(state(upgrades="config"), "kwale") is False
    assert app_may_have_upgraded(state(upgrades="admin-app"), "kwale") is True
    assert app_may_have_upgraded(state(), "kwale") is True  # recorded before it was: as before, frozen
    assert app_may_have_upgraded(state(upgrades="config"), "lamu") is True  # not deployed here
    assert app_may_have_upgraded(None, "kwale") is True


def test_migrated_vsphere_volume_binds_a_static_retained_pv_with_old_credentials():
    old = {"user": "admin", "password": "old p@ss/word", "secret": "s3cret", "uuid": "0f0e"}
    evaluation = build_counties(
        {"lamu": migrated_county("lamu", migration={"volumes": [{"volumeHandle": "fcd-1234"}], "dataPath": ""})},
        credentials={"lamu": old},
    )
    (pv,) = evaluation.of_type(PV)
    assert pv.inputs["metadata"]["name"] == "couchdb-pv-lamu-1"
    assert pv.protect and pv.retain_on_delete
    spec = pv.inputs["spec"]
    assert spec["persistentVolumeReclaimPolicy"] == "Retain"
    assert spec["csi"] == {"driver": names.CSI_DRIVER, "volumeHandle": "fcd-1234", "fsType": "ext4"}
    assert spec["claimRef"] == {"namespace": "lamu", "name": "couchdb-claim0"}
    (pvc,) = evaluation.of_type(PVC)
    assert pvc.inputs["spec"]["volumeName"] == "couchdb-pv-lamu-1" and pvc.inputs["spec"]["storageClassName"] == ""
    assert pvc.protect and pvc.retain_on_delete
    (couch,) = [d for d in evaluation.of_type(DEPLOYMENT) if d.inputs["metadata"]["name"] == "cht-couchdb"]
    mounts = couch.inputs["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert "subPath" not in mounts[0]  # dataPath "" = the volume root
    data = evaluation.named("lamu-credentials").inputs["stringData"]
    assert data["COUCHDB_USER"] == "admin" and data["COUCHDB_SECRET"] == "s3cret" and data["COUCHDB_UUID"] == "0f0e"
    assert data["COUCH_URL"] == "http://admin:old%20p%40ss%2Fword@haproxy.lamu.svc.cluster.local:5984/medic"
    assert not evaluation.of_type("random:index/randomPassword:RandomPassword")


def test_migrated_host_path_is_pinned_to_its_node():
    evaluation = build_counties(
        {"lamu": migrated_county("lamu", migration={"volumes": [{"hostPath": "/srv/couchdb1", "node": "agent-3"}]})},
        credentials={"lamu": {"user": "medic", "password": "p", "secret": "s", "uuid": "u"}},
    )
    (pv,) = evaluation.of_type(PV)
    assert pv.inputs["spec"]["hostPath"] == {"path": "/srv/couchdb1", "type": "Directory"}
    term = pv.inputs["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
    assert term == {"key": "kubernetes.io/hostname", "operator": "In", "values": ["agent-3"]}


def test_migrated_county_without_credentials_is_refused():
    with pytest.raises(ProgramFailed, match=r"migratedCredentials\.lamu"):
        build_counties({"lamu": migrated_county("lamu", migration={"volumes": [{"volumeHandle": "fcd-1"}]})})


def test_a_volume_grows_only_after_its_quota_has(national):
    for pvc in national.of_type(PVC):
        county = pvc.inputs["metadata"]["namespace"]
        assert national.named(f"{county}-quota").urn in pvc.depends_on, pvc.name
