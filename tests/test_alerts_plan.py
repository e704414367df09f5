"""The plan's healthy-stack figure (`make plan ALERTS=1`): every rendered rule at once through promtool."""

from __future__ import annotations

import re

from offline import alerts, plan
from tests import tools


def test_the_plan_counts_no_alert_on_a_healthy_national_stack_but_the_heartbeat(national):
    tools.need("promtool")
    line = plan._healthy_alerts(national)
    rules = sum(len(g["rules"]) for g in alerts.rule_groups(alerts.Objects.of(national))) + 1
    assert line == f"healthy-stack alerts: 0 of {rules} rules fire besides the heartbeat (Watchdog)"


def test_the_count_names_what_fires(national):
    """A stack whose county lost its CouchDB: the figure names the alert (the count is not a constant)."""
    promtool = tools.need("promtool")
    objects = alerts.Objects.of(national)
    down = re.compile(r'kube_deployment_status_replicas_available\{deployment="cht-couchdb",.*namespace="kwale"\}')
    series = [{**s, "values": alerts.constant(0)} if down.fullmatch(s["series"]) else s for s in alerts.healthy_series(objects)]
    assert sum(1 for s in series if down.fullmatch(s["series"])) == 1
    fired = alerts.firing(promtool, [*alerts.rule_groups(objects), alerts.HEARTBEAT_GROUP], series)
    assert {name: len(labels) for name, labels in fired.items()} == {"Watchdog": 1, "CouchDbDown": 1}


def test_every_alert_the_program_writes_has_a_promtool_test():
    """Each rendered alert name is exercised in a tests/test_alerts_*.py module (through tests/alerting.check)."""
    from pathlib import Path

    from components.monitoring import rules
    from config.model import BackupConfig, MonitoringConfig

    backup = BackupConfig.model_validate({"s3": {"endpoint": "https://s3.moh.example.org", "bucket": "cht"}})
    monitoring = MonitoringConfig()
    names = {r["alert"] for r in [*rules.cht_rules(), *rules.platform_rules(monitoring, "vsphere-k3s", backup),
                                  *rules.county_rules(monitoring, backup)]}
    sources = "".join(p.read_text() for p in Path(__file__).parent.glob("test_alerts_*.py") if p.name != Path(__file__).name)
    untested = sorted(n for n in names if f'"{n}"' not in sources)
    assert not untested, f"alerts without a promtool test: {untested}"


def test_the_count_works_on_an_existing_cluster_without_vms():
    """`clusterMode: existing` (tests/stacks/Pulumi.k3d.yaml): no VMs to read nodes from; still counted."""
    from tests.conftest import STACKS

    tools.need("promtool")
    evaluation, _ = plan.run("k3d", stack_dir=STACKS)
    assert plan._healthy_alerts(evaluation).startswith("healthy-stack alerts: 0 of ")
