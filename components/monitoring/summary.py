"""What is watched and where alerts go, for the offline plan (a stack output; no secret in it)."""

from __future__ import annotations

from config import names
from config.model import BackupConfig, MonitoringConfig

from . import rules, scrape, values


def summary(
    monitoring: MonitoringConfig,
    mode: str,
    hosts: dict[str, str],
    webhook_secret: bool,
    backup: BackupConfig | None,
    heartbeat_secret: bool = False,
) -> dict:
    """What is watched and where alerts go: the stack output the offline plan prints (no secret in it)."""
    return {
        "namespace": values.NAMESPACE,
        "charts": {
            values.STACK_CHART: monitoring.stack_chart_version,
            values.JSON_EXPORTER_CHART: monitoring.json_exporter_chart_version,
        },
        "velero": backup.velero.namespace if backup is not None else None,
        "scrapes": {county: f"{scrape.api_url(names.namespace(county))}{scrape.MONITORING_PATH}" for county in sorted(hosts)},
        "alerts": sorted(r["alert"] for r in [*rules.cht_rules(), *rules.platform_rules(monitoring, mode, backup)]),
        "countyAlerts": sorted(r["alert"] for r in rules.county_rules(monitoring, backup)),
        "routes": values.routes(monitoring, webhook_secret) or ["none: alerts are only visible in Alertmanager"],
        "heartbeat": values.heartbeat_route(monitoring, heartbeat_secret),
    }

