"""The plan says which nodes' k3s restarts, and in which order, when their configuration changes.

Each node's configuration digest (scripts.configuration_digest of what `configure` writes, without secrets and
without the VM's UUID) is remembered in deployedState.nodes.<node>.k3sConfig; the plan against a deployed state
compares them (offline/changes.py) and lists the nodes in the order K3sCluster restarts them.
"""

from __future__ import annotations

import copy
import json

from components.k3s import files, scripts
from offline import changes, plan
from tests.conftest import STACKS

STACK = "guarded"  # 3 servers, 2 agents


def outputs(**overrides) -> dict:
    evaluation, _ = plan.run(STACK, stack_dir=STACKS, overrides=overrides or None)
    return json.loads(json.dumps(evaluation.outputs, default=str))


def test_every_node_remembers_its_configuration_digest_and_no_secret():
    nodes = outputs()["deployedState"]["nodes"]
    assert all(len(n["k3sConfig"]) == 16 for n in nodes.values())
    assert len({n["k3sConfig"] for n in nodes.values()}) == len(nodes)  # each node's own config (its name, address)


def test_a_mirror_change_restarts_every_node_in_order_and_an_unchanged_config_none():
    before = outputs()
    k3s = {"version": "v1.35.2+k3s1", "apiEndpoint": "10.20.0.10", "registryMirrors": {"docker.io": ["https://m.example.org"]}}
    after = outputs(**{"cht-hosting:k3s": k3s})
    seed = after["deployedState"]["etcdSeed"]
    servers = [seed, *sorted(n for n, v in after["deployedState"]["nodes"].items() if v["role"] == "server" and n != seed)]
    agents = [n for n, v in after["deployedState"]["nodes"].items() if v["role"] == "agent"]
    summary = changes.summarize(before, after)
    assert summary.restarts == [
        f"k3s on {', '.join(servers + agents)} (its configuration changed): one node at a time in this order, servers "
        "then agents, each healthy again (Node Ready; a server's API and etcd) within 600 s before the next"
    ]
    assert changes.summarize(before, copy.deepcopy(before)).restarts == []


def test_a_deployed_state_without_digests_claims_nothing():
    before, after = outputs(), outputs()
    for node in before["deployedState"]["nodes"].values():
        node.pop("k3sConfig")
    after["deployedState"]["nodes"]["agent-1"]["k3sConfig"] = "0" * 16
    assert changes.summarize(before, after).restarts == []


def test_the_digest_is_of_the_configuration_with_a_stand_in_vm():
    shape = files.ClusterShape("10.20.0.10", "10.42.0.0/16", "10.43.0.0/16")

    def digest(mirrors=None, uuid=scripts.DIGEST_VM_UUID) -> str:
        config = files.node_config(shape, role="agent", seeds_etcd=False, name="agent-1", ip="10.20.0.21", vm_uuid=uuid)
        return scripts.configuration_digest(
            scripts.configure_script(name="agent-1", role="agent", config_yaml=config,
                               registries_yaml=files.registries_config(mirrors or {}), kube_vip_yaml=None)
        )

    assert digest() == digest()
    assert digest({"docker.io": ["https://m.example.org"]}) != digest()
    assert digest(uuid="4211abcd-0001") != digest()  # the real UUID is never part of it
