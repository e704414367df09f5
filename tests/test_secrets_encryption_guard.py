"""k3s secrets encryption against what is deployed: a config edit never turns it off, and turns it on only
after its runbook (docs/runbooks/secrets-encryption.md) (accepted once in deployedState.accept)."""

from __future__ import annotations

from config import guards
from tests.test_guards import config_of, deployed_as, section

ON, OFF = {**section("k3s"), "secretsEncryption": True}, {**section("k3s"), "secretsEncryption": False}


def test_the_deployed_state_remembers_it():
    assert deployed_as(config_of(k3s=ON)).secrets_encryption is True
    assert deployed_as(config_of(k3s=OFF)).secrets_encryption is False


def test_turning_it_off_is_refused():
    assert guards.check(config_of(k3s=OFF), deployed_as(config_of(k3s=ON)), csi_cluster_id="cht-hosting-guarded") == [
        "cht-hosting:k3s.secretsEncryption: the cluster encrypts its Secrets in etcd, this config turns that off; "
        "k3s would then not load the keys and could not read any stored Secret (county credentials, vCenter's "
        "password). Keep secretsEncryption: true"
    ]


def test_turning_it_on_needs_the_procedure_then_one_acceptance():
    built_without = deployed_as(config_of(k3s=OFF))
    message = (
        "cht-hosting:k3s.secretsEncryption: the cluster was built without secrets encryption, this config turns it "
        "on; setting the flag on a running cluster is not supported. Keep secretsEncryption: false, or turn it on "
        "by the procedure (docs/runbooks/secrets-encryption.md) and "
        "then add 'k3s.secretsEncryption' to deployedState.accept for one update"
    )
    assert guards.check(config_of(k3s=ON), built_without, csi_cluster_id="cht-hosting-guarded") == [message]
    accepted = config_of(k3s=ON, deployedState={"accept": ["k3s.secretsEncryption"]})
    assert guards.check(accepted, built_without, csi_cluster_id="cht-hosting-guarded") == []
    assert guards.unused_acceptances(accepted, built_without) == []
    # Once on, the acceptance accepts nothing more: the plan says to remove it.
    (warning,) = guards.unused_acceptances(accepted, deployed_as(config_of(k3s=ON)))
    assert "'k3s.secretsEncryption' accepts nothing in this update" in warning


def test_a_cluster_recorded_before_the_flag_existed_runs_without_it():
    recorded = deployed_as(config_of(k3s=OFF)).model_copy(update={"secrets_encryption": None})
    (problem,) = guards.check(config_of(k3s=ON), recorded, csi_cluster_id="cht-hosting-guarded")
    assert "was built without secrets encryption" in problem
    assert guards.check(config_of(k3s=OFF), recorded, csi_cluster_id="cht-hosting-guarded") == []
