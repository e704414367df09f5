"""Capacity planning: counties' budgets against the agents with one agent lost."""

from __future__ import annotations

import copy

import pytest

from config import capacity
from config.errors import ConfigError
from config.secrets import SECRETS
from config.validate import validate, warnings
from tests.conftest import raw_config


def without_backup(raw: dict, secrets: frozenset) -> tuple[dict, frozenset]:
    """These tests are about the counties' arithmetic; backups' own share is tested on its own below."""
    backup_keys = {s.key for s in SECRETS if s.section == "backup"}
    raw = {k: v for k, v in copy.deepcopy(raw).items() if k != "backup" and k not in backup_keys}
    for county in raw["counties"].values():
        if isinstance(county, dict):
            county.pop("backupRetentionDays", None)
    return raw, secrets - backup_keys


def prod_with(extra_counties: int = 0, **capacity_settings):
    raw, secrets = without_backup(*raw_config("prod"))
    for i in range(extra_counties):
        raw["counties"][f"extra-{i:03d}"] = {}
    if capacity_settings:
        raw["capacity"] = capacity_settings
    return raw, secrets


def test_prod_fits_on_eight_of_nine_agents():
    config = validate(*without_backup(*raw_config("prod")))
    report = capacity.plan(config)
    assert (report.agents, report.serving_agents) == (9, 8)
    assert (report.cpu_per_agent, report.memory_gb_per_agent) == (47, 188)
    assert report.requested_cpu == 46 * 4 + 12 + 8 + 6 + 6
    assert report.fits and report.agents_needed <= 9


def test_counties_beyond_eight_agents_fail_with_how_many_to_add():
    # 8 serving agents allocate 8 x 47 = 376 CPU; prod requests 216, so 41 more 4-CPU counties need 380.
    with pytest.raises(ConfigError) as error:
        validate(*prod_with(extra_counties=41))
    assert error.value.problems == [
        "cht-hosting:agents.nodes: the counties request 380 CPU and 1520 GB, but with 1 of 9 agents lost the "
        "other 8 allocate 376 CPU and 1504 GB; add 1 agent of 48 vCPU / 192 GB (or lower some county budgets)"
    ]


def test_exactly_full_still_fits():
    config = validate(*prod_with(extra_counties=40))  # 376 CPU requested, 376 allocatable
    assert capacity.plan(config).fits


def test_shortfall_can_be_a_warning_instead():
    config = validate(*prod_with(extra_counties=200, onShortfall="warn"))
    report = capacity.plan(config)
    assert not report.fits
    (message,) = warnings(config)
    assert message.endswith("add 14 agents of 48 vCPU / 192 GB (or lower some county budgets)")
    assert "Does NOT fit: 23 agents needed, 9 configured." in capacity.table(report)


def test_reserve_larger_than_an_agent_is_refused():
    with pytest.raises(ConfigError) as error:
        validate(*prod_with(reservedCpuPerAgent=48))
    assert error.value.problems == [
        "cht-hosting:capacity.reservedCpuPerAgent: reserves 48 of each agent's 48 vCPU, leaving nothing for the "
        "counties; lower it or give the agents more"
    ]


def test_report_table_lists_pool_and_every_county():
    report = capacity.plan(validate(*without_backup(*raw_config("prod"))))
    text = capacity.table(report)
    assert "Agents: 9 x (47 CPU, 188 GB allocatable); planned for 1 lost, so 8 serve." in text
    assert "  allocatable (N-1)              376        1504" in text
    assert "  nairobi                         12          48" in text
    assert "  control plane (3)               12          24  tainted: etcd, k3s, CPI, CSI only" in text
    assert text.endswith("Fits.")
    names = {c.name for c in report.counties}
    assert sum(1 for line in text.splitlines() if line.split()[:1] and line.split()[0] in names) == 50


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
    config = validate(*raw_config("prod"))
    assert capacity.plan(config).agents_apart is True  # the default
    off = config.model_copy(update={"agents": config.agents.model_copy(update={"anti_affinity": False})})
    assert capacity.plan(off).agents_apart is False


def test_backups_take_the_node_agent_off_every_agent_and_velero_and_a_drill_copy_once():
    plain = capacity.plan(validate(*prod_with()))
    raw, secrets = prod_with()
    raw["backup"] = {"s3": {"endpoint": "https://s3.example.org", "bucket": "cht-backups"}}
    raw["backupAccessKeyId"] = raw["backupSecretAccessKey"] = "[secret]"
    config = validate(raw, secrets | {"backupAccessKeyId", "backupSecretAccessKey"})
    report = capacity.plan(config)
    assert plain.cpu_per_agent - report.cpu_per_agent == capacity.NODE_AGENT_REQUESTS[0]
    assert plain.memory_gb_per_agent - report.memory_gb_per_agent == capacity.NODE_AGENT_REQUESTS[1]
    (extra,) = [c for c in report.counties if c.name.startswith("(backup")]
    # The drill restores one single-node county at a time: the largest such budget is counted once.
    largest = max(c.settings.budget.cpu for c in config.counties.values() if c.settings.couchdb_nodes == 1)
    assert extra.cpu == capacity.VELERO_SERVER_REQUESTS[0] + capacity.DRILL_JOB_REQUESTS[0] + largest
    assert "(backup: velero, drill)" in capacity.table(report)
