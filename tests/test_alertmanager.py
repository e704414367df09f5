"""The rendered Alertmanager configuration: `amtool check-config` accepts it, and `amtool config routes test`
routes each kind of alert where it must go (Debian's prometheus-alertmanager 0.25; `.ci/run` installs it).

Upstream: kube-prometheus-stack 88.5.3 values.yaml `alertmanager.config` (inhibit rules, tests/upstream.py) and
templates/prometheus/rules-1.14/general.rules.yaml (`Watchdog`: `vector(1)`, severity none; `InfoInhibitor`).
"""

from __future__ import annotations

import subprocess

import pytest
import yaml

from components.monitoring import values
from config.model import MonitoringConfig
from config.validate import validate
from tests import tools, upstream
from tests.test_monitoring_config import EMAIL, config_with, problems

HOOK = "https://hooks.moh.example.org/cht"
PING = "https://hc-ping.com/0d1c7a4e-5b0e-4c3e-9c1a-2f6b8e1d3a77"
FULL = MonitoringConfig.model_validate(
    {"email": {**EMAIL, "username": "alerts"}, "webhook": {"url": HOOK}, "heartbeat": {"intervalMinutes": 3}}
)


def _render(tmp_path, monitoring: MonitoringConfig, heartbeat_url: str | None = None, webhook_url: str | None = None):
    path = tmp_path / "alertmanager.yaml"
    path.write_text(values.alertmanager_config(monitoring, "s3cret", webhook_url, heartbeat_url))
    return path


def _amtool(*args: str) -> str:
    amtool = tools.need("amtool")
    done = subprocess.run([amtool, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize(
    "monitoring, heartbeat",
    [(MonitoringConfig(), None), (FULL, PING),
     (MonitoringConfig.model_validate({"heartbeat": {"url": "https://deadman.moh.example.org/ping/cht"}}), None)],
    ids=["no-routes", "email-webhook-secret-heartbeat", "plain-heartbeat"],
)
def test_amtool_accepts_the_rendered_config(tmp_path, monitoring, heartbeat):
    out = _amtool("check-config", str(_render(tmp_path, monitoring, heartbeat)))
    assert "SUCCESS" in out


def _receiver(path, **labels: str) -> str:
    return _amtool("config", "routes", "test", f"--config.file={path}", *(f"{k}={v}" for k, v in labels.items())).strip()


def test_heartbeat_goes_out_on_its_schedule_info_nowhere_the_rest_to_the_operators(tmp_path):
    path = _render(tmp_path, FULL, PING)
    assert _receiver(path, alertname="Watchdog", severity="none") == values.HEARTBEAT_RECEIVER
    assert _receiver(path, alertname="InfoInhibitor", severity="none", namespace="kwale") == "null"
    assert _receiver(path, alertname="KubeQuotaAlmostFull", severity="info", namespace="kwale") == "null"
    assert _receiver(path, alertname="CouchDbDown", severity="critical", namespace="kwale") == "operators"
    assert _receiver(path, alertname="KubePodCrashLooping", severity="warning", namespace="kwale") == "operators"
    config = yaml.safe_load(path.read_text())
    (beat,) = [r for r in config["route"]["routes"] if r["receiver"] == values.HEARTBEAT_RECEIVER]
    assert beat["repeat_interval"] == "3m" and beat["group_wait"] == "0s"
    (receiver,) = [r for r in config["receivers"] if r["name"] == values.HEARTBEAT_RECEIVER]
    assert receiver["webhook_configs"] == [{"url": PING, "send_resolved": False}]
    # Without a heartbeat it goes nowhere (and the plan says so).
    bare = _render(tmp_path, MonitoringConfig())
    assert _receiver(bare, alertname="Watchdog", severity="none") == "null"
    assert "nowhere" in values.heartbeat_route(MonitoringConfig(), False)
    assert values.heartbeat_route(FULL, True) == "Watchdog every 3 min to the URL in the secret monitoringHeartbeatUrl"


def test_the_charts_inhibit_rules_are_kept():
    config = yaml.safe_load(values.alertmanager_config(MonitoringConfig(), None, None))
    assert config["inhibit_rules"] == upstream.KPS_INHIBIT_RULES


def test_crds_follow_the_chart_version_through_its_upgrade_job():
    chart = values.stack_values(MonitoringConfig(), None, "vsphere-k3s")
    assert chart["crds"] == {"enabled": True, "upgradeJob": {"enabled": True}}
    assert set(chart["crds"]["upgradeJob"]) <= set(upstream.KPS_CRD_UPGRADE_KEYS)


# --- config: the heartbeat's URL, plain or secret, validated ----------------------------------------------------


def test_heartbeat_config_to_its_grammar():
    assert validate(*config_with(heartbeat={"url": "https://deadman.moh.example.org/ping"})).monitoring.heartbeat.interval_minutes == 5
    assert validate(*config_with(secrets=("monitoringHeartbeatUrl",), heartbeat={"intervalMinutes": 2})).monitoring.heartbeat.url is None
    (problem,) = problems(heartbeat={"url": "https://hc-ping.com/x?token=abc"})
    assert problem.startswith("cht-hosting:monitoring.heartbeat.url: the URL carries credentials")
    assert "monitoringHeartbeatUrl" in problem and "token=abc" not in problem
    (problem,) = problems(heartbeat={"url": "ftp://deadman.moh.example.org"})
    assert problem.startswith("cht-hosting:monitoring.heartbeat.url: ")
    assert problems(heartbeat={"url": "https://deadman.moh.example.org/ping", "intervalMinutes": 0}) == [
        "cht-hosting:monitoring.heartbeat.intervalMinutes: must be at least 1, got 0"
    ]


def test_heartbeat_url_in_exactly_one_place_and_only_with_a_heartbeat():
    assert problems(heartbeat={}) == [
        "cht-hosting:monitoring.heartbeat.url: is required for a heartbeat; set it here, or as the secret "
        "monitoringHeartbeatUrl when it carries a token (a Healthchecks ping URL does)"
    ]
    (both,) = problems(secrets=("monitoringHeartbeatUrl",), heartbeat={"url": "https://deadman.moh.example.org/ping"})
    assert "also set as the secret monitoringHeartbeatUrl" in both
    (orphan,) = problems(secrets=("monitoringHeartbeatUrl",))
    assert orphan.startswith("cht-hosting:monitoringHeartbeatUrl: is set, but monitoring.heartbeat is not")
    (off,) = problems(enabled=False, heartbeat={"url": "https://deadman.moh.example.org/ping"})
    assert off.startswith("cht-hosting:monitoring.heartbeat: the heartbeat comes from the monitoring stack")
