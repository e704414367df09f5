"""PlatformMonitoring: Prometheus, Alertmanager and the CHT json-exporter on the cluster, from their charts.

Creates:
- Namespace `monitoring` (Pod Security baseline enforced, restricted warned), its ResourceQuota and
  LimitRange, NetworkPolicies (ingress from the namespace itself, and the API server to the operator's
  admission webhook);
- Secret `cht-alertmanager-config`: alertmanager.yaml with the routes from config, the SMTP password and
  secret webhook and heartbeat URLs inside (a Pulumi secret, never a chart value);
- Helm release `cht-json-exporter` (prometheus-json-exporter, pinned): Watchdog's module that turns each
  county's /api/v2/monitoring into metrics;
- Helm release `monitoring` (kube-prometheus-stack, pinned): the Prometheus Operator and its CRDs,
  Prometheus (on a volume of the StorageClass), Alertmanager, kube-state-metrics, node-exporter (in
  kube-system, on every node) and the kubelet and API-server scrapes;
- PrometheusRules `cht-watchdog` (Watchdog's CHT alerts), `cht-platform` (nodes, CouchDB, volumes,
  k3s certificates and etcd snapshots, and with backups configured Velero's backups and the restore
  drill) and `cht-counties` (every county's own alerts, keyed by the counties' labels);
- Probe `cht-counties` and ServiceMonitor `cht-express-metrics`: every county's /api/v2/monitoring and
  express metrics, found by the labels of its Ingress and API Service; with backups, a ServiceMonitor and
  a PodMonitor for Velero's and its node agents' metrics.

A county adds nothing here: it is scraped and alerted on by its labels, so adding one changes no object of
this component (docs/monitoring.md).
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
from pulumi import Input, Output, ResourceOptions

from config import names
from config.model import BackupConfig, MonitoringConfig

from .. import helm
from . import namespace, rules, scrape, values


class PlatformMonitoring(pulumi.ComponentResource):
    """The cluster's monitoring stack; `release` is what per-county scrape objects wait for (their CRDs)."""

    release: k8s.helm.v3.Release
    namespace: Output[str]

    def __init__(
        self,
        name: str,
        monitoring: MonitoringConfig,
        storage_class: Input[str] | None,
        mode: str,
        smtp_password: Output[str] | None = None,
        webhook_url: Output[str] | None = None,
        heartbeat_url: Output[str] | None = None,
        backup: BackupConfig | None = None,
        opts: ResourceOptions | None = None,
    ):
        super().__init__("cht-hosting:monitoring:PlatformMonitoring", name, None, opts)
        after = list(opts.depends_on) if opts and isinstance(opts.depends_on, (list, tuple)) else []
        ns_name = values.NAMESPACE

        def meta(object_name: str) -> dict:
            return {"name": object_name, "namespace": ns_name, "labels": {"app.kubernetes.io/managed-by": names.PROJECT}}

        self.ns = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": ns_name, "labels": namespace.namespace_labels()},
            opts=ResourceOptions(parent=self, depends_on=after),
        )
        in_ns = ResourceOptions(parent=self, depends_on=[self.ns])
        quota = k8s.core.v1.ResourceQuota(
            f"{name}-quota", metadata=meta("monitoring-budget"), spec={"hard": namespace.namespace_quota(monitoring)}, opts=in_ns
        )
        limits = k8s.core.v1.LimitRange(
            f"{name}-limits", metadata=meta("monitoring-defaults"), spec={"limits": namespace.limit_range()}, opts=in_ns
        )
        policies = [
            k8s.networking.v1.NetworkPolicy(f"{name}-netpol-{policy}", metadata=meta(policy), spec=spec, opts=in_ns)
            for policy, spec in namespace.namespace_network_policies().items()
        ]
        guarded = ResourceOptions(parent=self, depends_on=[self.ns, quota, limits, *policies])

        secrets = [smtp_password, webhook_url, heartbeat_url]
        config = Output.secret(
            Output.all(*(s if s is not None else "" for s in secrets)).apply(
                lambda given: values.alertmanager_config(monitoring, given[0] or None, given[1] or None, given[2] or None)
            )
        )
        self.alertmanager_secret = k8s.core.v1.Secret(
            f"{name}-alertmanager-config",
            metadata=meta(values.ALERTMANAGER_SECRET),
            type="Opaque",
            string_data={"alertmanager.yaml": config},
            opts=in_ns,
        )

        self.json_exporter = helm.release(
            f"{name}-json-exporter",
            name=values.JSON_EXPORTER_RELEASE,
            chart=values.JSON_EXPORTER_CHART,
            version=monitoring.json_exporter_chart_version,
            repository=monitoring.chart_repository,
            namespace=ns_name,
            values=values.json_exporter_values(monitoring),
            opts=guarded,
        )
        self.release = helm.release(
            f"{name}-stack",
            name=values.STACK_RELEASE,
            chart=values.STACK_CHART,
            version=monitoring.stack_chart_version,
            repository=monitoring.chart_repository,
            namespace=ns_name,
            values=values.stack_values(monitoring, storage_class, mode, backup),  # type: ignore[arg-type]
            # Not on the quota and policies: what waits for this release (every county's scrape objects, for
            # the CRDs) should not wait for them too. A pod started before its quota is simply not counted.
            opts=ResourceOptions(parent=self, depends_on=[self.ns, self.alertmanager_secret]),
        )
        on_crds = ResourceOptions(parent=self, depends_on=[self.release])

        def custom(role: str, kind: str, object_name: str, spec: dict) -> None:
            k8s.apiextensions.CustomResource(
                f"{name}-{role}", api_version="monitoring.coreos.com/v1", kind=kind, metadata=meta(object_name),
                spec=spec, opts=on_crds,
            )

        for rule_name, group_rules in (
            ("cht-watchdog", rules.cht_rules()),
            ("cht-platform", rules.platform_rules(monitoring, mode, backup)),
            ("cht-counties", rules.county_rules(monitoring, backup)),
        ):
            custom(f"{rule_name}-rules", "PrometheusRule", rule_name, rules.prometheus_rule_spec(rule_name, group_rules))
        interval = monitoring.scrape_interval_seconds
        custom("county-probe", "Probe", scrape.PROBE, scrape.probe_spec(interval))
        custom("county-express-metrics", "ServiceMonitor", scrape.EXPRESS_MONITOR, scrape.express_service_monitor_spec(interval))
        if backup is not None:
            custom("velero-metrics", "ServiceMonitor", "velero", scrape.velero_service_monitor_spec(backup.velero.namespace))
            custom(
                "velero-node-agent-metrics", "PodMonitor", "velero-node-agent",
                scrape.node_agent_pod_monitor_spec(backup.velero.namespace),
            )
        self.namespace = self.ns.metadata.name
        # Marks the component complete and lists its outputs in the engine.
        self.register_outputs({"namespace": self.namespace})
