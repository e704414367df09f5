"""The restore drill's alerts, run through `promtool test rules` (Prometheus 2.x): the rules as the stack
renders them (components/monitoring/rules.py with a backup config of its own) over series shaped as
kube-state-metrics exports the Schedules' annotations (components/backup/drill.py kube_state_metrics_values:
`cht_hosting_restore_drill_<name>{namespace, schedule, county}`)."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from components.backup import drill
from components.monitoring import rules as monitoring_rules
from config.model import BackupConfig, MonitoringConfig
from tests import tools
from tests.alerting import check

BACKUP = BackupConfig.model_validate(
    {"s3": {"endpoint": "https://s3.example.org", "bucket": "cht-backups"},
     "drill": {"timeoutMinutes": 60, "restoreTimeGoalMinutes": 30, "recoveryPointGoalHours": 6},
     "velero": {"namespace": "backups"}}
)
MONITORING = MonitoringConfig.model_validate({"alerts": {"restoreDrillMaxAgeDays": 10}})
DAY = 86400


def _series(name: str, county: str, values: str) -> dict:
    return {"series": f'cht_hosting_restore_drill_{name}{{namespace="backups",schedule="county-{county}",county="{county}"}}',
            "values": values}


def _drill_rules() -> list[dict]:
    return [r for r in monitoring_rules.platform_rules(MONITORING, "vsphere-k3s", BACKUP) if r["alert"].startswith("RestoreDrill")]


def _alert(name: str, county: str, at: str, fires: bool, severity: str = "critical") -> dict:
    labels = {"severity": severity, "namespace": "backups", "schedule": f"county-{county}", "county": county}
    return {"eval_time": at, "alertname": name, "exp_alerts": [{"exp_labels": labels}] if fires else []}


def _promtool(tests: list[dict], series: list[dict], interval: str = "5m") -> None:
    """Samples every `interval` (within Prometheus's 5-minute lookback, as a scrape keeps them fresh)."""
    check(_drill_rules(), (series, tests), interval=interval)


def test_a_failed_drill_alerts_until_a_later_one_passes():
    # kwale: failed at hour 0, drilled again (failed) at hour 24, passed at hour 48. The Job is long gone.
    series = [_series("ok", "kwale", f"0x{48 * 12 - 1} 1x{24 * 12}"), _series("enabled", "kwale", f"1x{72 * 12}")]
    tests = [_alert("RestoreDrillFailed", "kwale", "1h", True), _alert("RestoreDrillFailed", "kwale", "40h", True),
             _alert("RestoreDrillFailed", "kwale", "50h", False)]
    _promtool(tests, series)


def test_a_drill_that_never_finished_alerts():
    # lamu: started at t=0 (1970), never finished; a county's drill ends within timeout + cleanup (+10 min).
    limit_hours = (60 * 60 + drill.CLEANUP_SECONDS + 600) / 3600
    series = [_series("started_timestamp_seconds", "lamu", "0x120"), _series("finished_timestamp_seconds", "lamu", "-3600x120")]
    tests = [_alert("RestoreDrillInterrupted", "lamu", "1h", False),
             _alert("RestoreDrillInterrupted", "lamu", f"{int(limit_hours) + 2}h", True)]
    _promtool(tests, series)


def test_a_county_with_no_recent_pass_is_overdue_and_one_never_drilled_too():
    # kwale last passed at t=0: overdue after 10 days. lamu's Schedule exists since t=0, never passed.
    # mombasa passed at day 5: not overdue at day 11. A county not drilled (enabled 0) never alerts.
    series = [
        _series("succeeded_timestamp_seconds", "kwale", f"0x{12 * 24 * 12}"), _series("enabled", "kwale", f"1x{12 * 24 * 12}"),
        _series("created_timestamp_seconds", "lamu", f"0x{12 * 24 * 12}"), _series("enabled", "lamu", f"1x{12 * 24 * 12}"),
        _series("succeeded_timestamp_seconds", "mombasa", f"{5 * DAY}x{12 * 24 * 12}"),
        _series("enabled", "mombasa", f"1x{12 * 24 * 12}"),
        _series("created_timestamp_seconds", "garissa", f"0x{12 * 24 * 12}"), _series("enabled", "garissa", f"0x{12 * 24 * 12}"),
    ]
    tests = [
        _alert("RestoreDrillOverdue", "kwale", "9d", False),
        {"eval_time": "11d", "alertname": "RestoreDrillOverdue", "exp_alerts": [
            {"exp_labels": {"severity": "critical", "namespace": "backups", "schedule": "county-kwale", "county": "kwale"}},
            {"exp_labels": {"severity": "critical", "namespace": "backups", "schedule": "county-lamu", "county": "lamu"}},
        ]},
    ]
    _promtool(tests, series)


def test_restore_time_and_recovery_point_over_their_goals_warn():
    # Goals: 30 minutes, 6 hours. kwale restored in 20 min with data 7 h old; lamu in 45 min with data 2 h old.
    series = [
        _series("restore_seconds", "kwale", "1200x36"), _series("backup_age_seconds", "kwale", "25200x36"),
        _series("restore_seconds", "lamu", "2700x36"), _series("backup_age_seconds", "lamu", "7200x36"),
    ]
    tests = [
        _alert("RestoreDrillRestoreTimeOverGoal", "lamu", "2h", True, "warning"),
        _alert("RestoreDrillRecoveryPointOverGoal", "kwale", "2h", True, "warning"),
    ]
    _promtool(tests, series)


def test_the_rules_and_their_templates_pass_promtool_check(tmp_path):
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": [{"name": "drill", "rules": _drill_rules()}]}))
    done = subprocess.run([tools.need("promtool"), "check", "rules", "rules.yaml"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 5 rules found" in done.stdout


@pytest.mark.parametrize("name", ["RestoreDrillFailed", "RestoreDrillOverdue", "RestoreDrillInterrupted"])
def test_drill_alerts_name_the_county(name):
    (rule,) = [r for r in _drill_rules() if r["alert"] == name]
    assert "{{ $labels.county }}" in rule["annotations"]["description"]
