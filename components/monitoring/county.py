"""CountyMonitoring: what one county adds to the monitoring stack, in the county's own namespace.

Creates, named after the county and owned by it (adding a county adds these and changes nothing shared):
- Probe `cht-monitoring`: the json-exporter reads the county's /api/v2/monitoring?connected_user_interval=30
  inside the cluster, as Medic's Watchdog does from outside (job `cht`, `instance` = the county's host);
- ServiceMonitor `cht-express-metrics` (CHT 4.3.0 and later): the API's /api/v1/express-metrics;
- PrometheusRule `cht-county`: the county's own alerts (not scraped, volume unmeasured, never backed up
  when backups are configured, and for a 4.x county a volume too small for the 4.x -> 5.x upgrade);
The scrapers reach the API through the county's own `api-inbound` NetworkPolicy (components/cht/render.py).
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
from pulumi import ResourceOptions

from config import names
from config.model import BackupConfig, County, MonitoringConfig

from . import render


class CountyMonitoring(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        county: County,
        monitoring: MonitoringConfig,
        backup: BackupConfig | None = None,
        opts: ResourceOptions | None = None,
    ):
        super().__init__("cht-hosting:monitoring:CountyMonitoring", name, None, opts)
        after = list(opts.depends_on) if opts and isinstance(opts.depends_on, (list, tuple)) else []
        child = ResourceOptions(parent=self, depends_on=after)
        namespace = names.namespace(county.name)
        settings = county.settings

        def meta(object_name: str) -> dict:
            return {
                "name": object_name,
                "namespace": namespace,
                "labels": {**render.COUNTY_LABELS, "cht-hosting/county": county.name},
            }

        def custom(role: str, kind: str, object_name: str, spec: dict) -> None:
            k8s.apiextensions.CustomResource(
                f"{name}-{role}",
                api_version="monitoring.coreos.com/v1",
                kind=kind,
                metadata=meta(object_name),
                spec=spec,
                opts=child,
            )

        custom("probe", "Probe", "cht-monitoring", render.county_probe_spec(county.name, namespace, county.host, monitoring))
        if render.express_metrics_enabled(settings):
            custom(
                "express-metrics",
                "ServiceMonitor",
                "cht-express-metrics",
                render.county_service_monitor_spec(county.name, county.host, monitoring),
            )
        custom(
            "rules",
            "PrometheusRule",
            "cht-county",
            render.prometheus_rule_spec(
                f"cht-county-{county.name}", render.county_rules(county.name, namespace, settings, monitoring, backup)
            ),
        )
        # Marks the component complete.
        self.register_outputs({})
