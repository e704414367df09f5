"""Capacity planning: what the counties' quotas admit, and their placement, against the agents with one lost.

Fixed numbers come from the test stack tests/stacks/Pulumi.cht5.yaml: 4 agents of 16 vCPU / 64 GB with
1 CPU / 4 GB reserved each, so 3 serve 45 CPU / 180 GB; counties kwale (4 CPU / 16 GB, 25 % headroom),
mombasa (3 nodes, 8 / 32, 25 %) and lamu (4 / 16, no headroom): quotas of 19 CPU / 76 GB.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from config import capacity
from config.errors import ConfigError
from config.secrets import SECRETS
from config.validate import required_secrets, validate, warnings
from offline import stackfile
from offline.engine import ROOT
from tests.conftest import BACKUP_KEYS, USER_STACKS, raw_config

STACKS = Path(__file__).parent / "stacks"


def without_backup(raw: dict, secrets: frozenset) -> tuple[dict, frozenset]:
    """These tests are about the counties' arithmetic; backups' own share is tested on its own below, and
    monitoring's in test_monitoring_stack."""
    backup_keys = {s.key for s in SECRETS if s.needed_when == "backup"} | {"monitoringSmtpPassword"}
    raw = {k: v for k, v in copy.deepcopy(raw).items() if k != "backup" and k not in backup_keys}
    raw["monitoring"] = {"enabled": False}
    for county in raw["counties"].values():
        if isinstance(county, dict):
            county.pop("backupRetentionDays", None)
    return raw, secrets - backup_keys


def national_with(extra_counties: int = 0, **capacity_settings):
    raw, secrets = without_backup(*raw_config("national"))
    for i in range(extra_counties):
        raw["counties"][f"extra-{i:03d}"] = {}
    if capacity_settings:
        raw["capacity"] = capacity_settings
    return raw, secrets


def stack(extra_counties: int = 0, drop_agents: int = 0, **capacity_settings):
    values, secret_keys = stackfile.raw(stackfile.load("cht5", root=STACKS))
    values = copy.deepcopy(values)
    values["monitoring"] = {"enabled": False}  # the counties' arithmetic; monitoring's share: test_monitoring_stack
    for key in required_secrets(values):
        values.setdefault(key, "[secret]")
        secret_keys = secret_keys | {key}
    for i in range(extra_counties):
        values["counties"][f"extra-{i:03d}"] = {"version": "4.22.0"}
    for name in list(values["agents"]["nodes"])[len(values["agents"]["nodes"]) - drop_agents :]:
        del values["agents"]["nodes"][name]
    if capacity_settings:
        values["capacity"] = capacity_settings
    return values, secret_keys


def test_the_quotas_count_with_their_headroom():
    report = capacity.plan(validate(*stack()))
    assert (report.agents, report.serving_agents) == (4, 3)
    # 16 vCPU / 64 GB agents less the 1 CPU / 4 GB reserve and traefik on each (0.1 CPU, 0.125 GB).
    assert (report.allocatable_cpu, report.allocatable_memory_gb) == (44.7, 179.625)
    assert {c.name: (c.cpu, c.memory_gb) for c in report.counties} == {
        "kwale": (5, 20), "mombasa": (10, 40), "lamu": (4, 16)
    }
    assert report.requested_cpu == 19 and report.fits


def test_counties_beyond_the_agents_fail_with_how_many_to_add():
    assert capacity.plan(validate(*stack(extra_counties=5))).fits  # 19 + 5 x 5 = 44 of 44.7 CPU
    with pytest.raises(ConfigError) as error:
        validate(*stack(extra_counties=6))  # 49 CPU, 196 GB
    assert error.value.problems == [
        "cht-hosting:agents.nodes: the counties' quotas (budgets plus headroom) admit 49 CPU and 196 GB, but with "
        "1 of 4 agents lost the other 3 allocate 44.7 CPU and 179.625 GB; add 1 agent of 16 vCPU / 64 GB (or lower some "
        "county budgets or quotaHeadroomPercent)"
    ]


def test_a_three_node_county_needs_three_serving_agents():
    with pytest.raises(ConfigError) as error:
        validate(*stack(drop_agents=1))  # 3 agents, 2 serve: plenty of CPU, but mombasa's nodes need 3 agents
    assert error.value.problems == [
        "cht-hosting:agents.nodes: a county with 3 CouchDB nodes needs them on 3 distinct agents, but with 1 of 3 "
        "agents lost only 2 serve; add 1 agent of 16 vCPU / 64 GB"
    ]
    assert capacity.plan(validate(*stack(drop_agents=1, spareAgents=0))).fits


def test_shortfall_can_be_a_warning_instead():
    config = validate(*stack(extra_counties=40, onShortfall="warn"))
    report = capacity.plan(config)
    assert not report.fits
    assert any(m.startswith("cht-hosting:agents.nodes: the counties' quotas") for m in warnings(config))
    assert f"Does NOT fit: {report.agents_needed} agents needed, 4 configured." in capacity.table(report)


def test_reserve_larger_than_an_agent_is_refused():
    with pytest.raises(ConfigError) as error:
        validate(*stack(reservedCpuPerAgent=16))
    assert error.value.problems == [
        "cht-hosting:capacity.reservedCpuPerAgent: reserves 16 of each agent's 16 vCPU, leaving nothing for the "
        "counties; lower it or give the agents more"
    ]


def test_report_lists_every_county_quota_and_the_per_container_split():
    text = capacity.table(capacity.plan(validate(*stack())))
    assert "Agents: 4 x (14.9 CPU, 59.875 GB allocatable); planned for 1 lost, so 3 serve." in text
    assert "traefik (on each agent)" in text
    assert "  mombasa                         10          40" in text
    assert "  kwale, lamu:" in text and "  mombasa:" in text
    assert "    couchdb                3 x " in text  # a clustered county's nodes, each sized as a node
    haproxy = [line.split() for line in text.splitlines() if line.strip().startswith("haproxy")]
    assert haproxy and all(cols[-1] == "1024Mi" for cols in haproxy)  # upstream's 1G cap
    assert text.endswith("Fits.")


def test_any_user_stack_reports_every_county(stack_config):
    """Property of the operator's stacks: every county appears in the capacity report once."""
    for name in USER_STACKS:
        values, secret_keys = raw_config(name, root=ROOT)
        config = validate(values, secret_keys)
        if config.cluster_mode != "vsphere-k3s":
            continue
        text = capacity.table(capacity.plan(config))
        for county in config.counties:
            assert sum(1 for line in text.splitlines() if line.split()[:1] == [county]) == 1, county


def report_of(servers: int, agents: int, *, servers_apart: bool = True, agents_apart: bool = True, spare: int = 1):
    return capacity.CapacityReport(
        servers=servers, cpu_per_server=4, memory_gb_per_server=8, agents=agents, spare_agents=spare,
        cpu_per_agent=10, memory_gb_per_agent=40, counties=(), servers_apart=servers_apart, agents_apart=agents_apart,
    )


def test_the_plan_says_how_many_esxi_hosts_the_anti_affinity_rules_need():
    report = report_of(3, 7)
    assert report.esxi_hosts_needed == 7
    assert (
        "ESXi hosts: DRS rules keep each of the 3 servers and the 7 agents on a host of its own, so the compute "
        "cluster needs at least 7 hosts (8 to stay apart while one is in maintenance or down)."
    ) in capacity.table(report)


def test_hosts_needed_follow_the_pools_that_are_kept_apart():
    assert report_of(5, 4).esxi_hosts_needed == 5
    assert report_of(3, 12, agents_apart=False).esxi_hosts_needed == 3
    assert report_of(1, 1).esxi_hosts_needed == 0  # one VM per pool: no rule, no line
    assert "ESXi hosts" not in capacity.table(report_of(1, 1))


def test_the_plan_warns_when_agents_may_share_a_host():
    text = capacity.table(report_of(3, 6, agents_apart=False, spare=2))
    assert "agents.antiAffinity is off: DRS may put several agents on one ESXi host" in text
    assert "more than the 2 agents this plan survives" in text


def test_the_config_decides_which_pools_are_kept_apart():
    config = validate(*raw_config("national"))
    assert capacity.plan(config).agents_apart is True  # the default
    off = config.model_copy(update={"agents": config.agents.model_copy(update={"anti_affinity": False})})
    assert capacity.plan(off).agents_apart is False


def test_backups_take_the_node_agent_off_every_agent_and_velero_and_a_drill_copy_once():
    plain = capacity.plan(validate(*national_with()))
    raw, secrets = national_with()
    # The national stack's own window: the default 8 h at 100 MiB/s does not hold its 50 counties' reads.
    window = raw_config("national")[0]["backup"]["counties"]
    raw["backup"] = {"s3": {"endpoint": "https://s3.example.org", "bucket": "cht-backups"}, "counties": window}
    raw.update(dict.fromkeys(BACKUP_KEYS, "[secret]"))
    config = validate(raw, secrets | BACKUP_KEYS)
    report = capacity.plan(config)
    assert plain.cpu_per_agent - report.cpu_per_agent == capacity.NODE_AGENT_REQUESTS[0]
    assert plain.memory_gb_per_agent - report.memory_gb_per_agent == capacity.NODE_AGENT_REQUESTS[1]
    (extra,) = [c for c in report.counties if c.name.startswith("(backup")]
    # The drill restores one county at a time, 3-node ones included: the largest budget is counted once.
    largest = max(c.settings.budget.cpu for c in config.counties.values())
    assert extra.cpu == capacity.VELERO_SERVER_REQUESTS[0] + capacity.DRILL_JOB_REQUESTS[0] + largest
    assert "(backup: velero, drill)" in capacity.table(report)
