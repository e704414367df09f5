"""Every built-in Kubernetes object of the national stack is valid for the cluster's minor."""

from __future__ import annotations

import kubernetes_validate
import pytest

from config import compatibility
from tests.conftest import raw_config
from tests.test_cht_project import build_counties, county, migrated_county

# Custom resources (traefik, k3s's helm controller, system-upgrade-controller, snapshots, monitoring) are not in the
# OpenAPI schema of Kubernetes itself; their own tests check them.
CUSTOM = (
    "kubernetes:traefik.io/",
    "kubernetes:helm.cattle.io/",
    "kubernetes:upgrade.cattle.io/",
    "kubernetes:snapshot.storage.k8s.io/",
    "kubernetes:velero.io/",
    "kubernetes:monitoring.coreos.com/",  # test_monitoring_stack checks these against the chart's CRDs
)


def k8s_minor() -> str:
    values, _ = raw_config("national")
    return compatibility.kubernetes_minor(values["k3s"]["version"])


def objects(evaluation):
    for r in evaluation.registrations:
        if r.type.startswith("kubernetes:") and r.custom and "kind" in r.inputs and not r.type.startswith(CUSTOM):
            yield r


def validate_all(evaluation) -> int:
    version = f"{k8s_minor()}.0"
    count = 0
    for r in objects(evaluation):
        try:
            kubernetes_validate.validate(r.inputs, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{r.name} ({r.inputs['kind']}): {error.message} at {list(error.path)}")
        count += 1
    return count


def test_schema_version_is_the_clusters_minor():
    assert k8s_minor() == "1.35"
    assert kubernetes_validate.validate({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}, "1.35.0")


def test_prod_objects_are_schema_valid(national):
    assert validate_all(national) > 50 * 15


def test_variant_objects_are_schema_valid():
    evaluation = build_counties(
        {
            "kwale": county(upgrades="admin-app", tls={"clusterIssuer": "letsencrypt"}),
            "mombasa": county("mombasa", couchdbNodes=3, version="5.2.0"),
            "lamu": migrated_county("lamu", migration={"volumes": [{"hostPath": "/srv/couchdb1", "node": "agent-3"}]}),
            "kilifi": migrated_county("kilifi", migration={"volumes": [{"volumeHandle": "fcd-1"}]}),
        },
        credentials={c: {"user": "medic", "password": "p", "secret": "s", "uuid": "u"} for c in ("lamu", "kilifi")},
    )
    assert validate_all(evaluation) > 60
