"""CountyBackupWithoutVolumeData through `promtool test rules` (Prometheus' own rule evaluation).

The series are shaped as Velero v1.18.1 exports them: the server's `velero_backup_success_total{schedule}`
(pkg/metrics/metrics.go) and the node agent's `podVolume_pod_volume_operation_latency_seconds_gauge` with
`backupName="<namespace>/<schedule>-<yyyyMMddHHmmss>"`, one series per completed pod volume backup
(pkg/controller/pod_volume_backup_controller.go). A backup taken while CouchDB was not running completes
(success counter up) without any pod volume backup (pkg/podvolume/backupper.go).
"""

from __future__ import annotations

import subprocess

import yaml

from components.monitoring import rules as monitoring_rules
from tests import tools

HOURS = 26
GAUGE = "podVolume_pod_volume_operation_latency_seconds_gauge"


def _pvb(schedule: str, stamp: str, values: str) -> dict:
    return {
        "series": f'{GAUGE}{{node="agent-1",operation="pvb-{stamp}-default-{schedule}-kopia-backup",'
        f'backupName="velero/{schedule}-{stamp}",pod_volume_backup="{schedule}-{stamp}-x"}}',
        "values": values,
    }


def _success(schedule: str, values: str) -> dict:
    return {"series": f'velero_backup_success_total{{schedule="{schedule}"}}', "values": values}


def test_a_backup_without_pod_volume_data_alerts_and_one_with_data_does_not(tmp_path):
    rule = monitoring_rules.county_backup_without_volume_data(HOURS)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(monitoring_rules.prometheus_rule_spec("backups", [rule])))
    # 10-minute steps over 2 days: each county backs up at step 144 (24 h) and step 288 (48 h).
    day = 144
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "10m",
                "input_series": [
                    # kwale: both backups carried its volume (a new gauge series each time).
                    _success("county-kwale", f"0x{day} 1x{day} 2x30"),
                    _pvb("county-kwale", "20260101010000", f"_x{day - 1} 60x{day + 30}"),
                    _pvb("county-kwale", "20260102010000", f"_x{2 * day - 1} 60x30"),
                    # lamu: the first backup had its volume, the second none (CouchDB was not running).
                    _success("county-lamu", f"0x{day} 1x{day} 2x30"),
                    _pvb("county-lamu", "20260101010000", f"_x{day - 1} 60x{day + 30}"),
                    # garissa: a new county, its first backup with its volume.
                    _success("county-garissa", f"_x{2 * day - 1} 1x30"),
                    _pvb("county-garissa", "20260102010000", f"_x{2 * day - 1} 60x30"),
                ],
                "alert_rule_test": [
                    {
                        "eval_time": f"{(2 * day + 10) * 10}m",  # 100 minutes after the second backups
                        "alertname": "CountyBackupWithoutVolumeData",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "critical", "schedule": "county-lamu"},
                                "exp_annotations": rule["annotations"] | {
                                    "description": rule["annotations"]["description"].replace("{{ $labels.schedule }}", "county-lamu")
                                },
                            }
                        ],
                    },
                    # Before the second backups nothing is wrong.
                    {"eval_time": f"{(2 * day - 5) * 10}m", "alertname": "CountyBackupWithoutVolumeData", "exp_alerts": []},
                ],
            }
        ],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = subprocess.run(
        [tools.need("promtool"), "test", "rules", "tests.yaml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rule_is_valid_for_promtool(tmp_path):
    rule = monitoring_rules.county_backup_without_volume_data(HOURS)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(monitoring_rules.prometheus_rule_spec("backups", [rule])))
    result = subprocess.run([tools.need("promtool"), "check", "rules", "rules.yaml"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
