"""The monitoring namespace's own guardrails: Pod Security labels, NetworkPolicies, quota and defaults.

Pure: nothing here imports Pulumi. Pod labels are those kube-prometheus-stack-88.5.3 and
prometheus-json-exporter-0.19.2 give their pods.
"""

from __future__ import annotations

import math

from config import names
from config.capacity import LIMIT_FACTOR, monitoring_pods
from config.model import MonitoringConfig

from .values import ALERTMANAGER_STORAGE_GI, STACK_CHART

OPERATOR_POD_LABELS = {"app": f"{STACK_CHART}-operator"}
OPERATOR_WEBHOOK_PORT = 10250
# The chart's KubeQuotaAlmostFull fires above 90% used: the monitoring namespace's steady use stays below this.
QUOTA_STEADY_USE = 0.85


def namespace_labels() -> dict[str, str]:
    """Pod Security: baseline enforced (no host access, no privilege), restricted reported."""
    return {
        "app.kubernetes.io/managed-by": names.PROJECT,
        "pod-security.kubernetes.io/enforce": "baseline",
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/warn-version": "latest",
        "pod-security.kubernetes.io/audit": "restricted",
        "pod-security.kubernetes.io/audit-version": "latest",
    }


# Egress the monitoring namespace needs, beyond itself and DNS: pods elsewhere (the counties' API, Velero's
# metrics, CoreDNS's metrics) and the nodes' host network (the API server behind its Service and on each
# server, the kubelets, node-exporter), which only an address block can name.
SCRAPED_POD_PORTS = (names.CHT_API_PORT, names.VELERO_METRICS_PORT, 9153)  # the counties' API, Velero's metrics, CoreDNS's metrics
NODE_PORTS = (443, 6443, 10250, 9100)
ALERTMANAGER_POD_LABELS = {"app.kubernetes.io/name": "alertmanager"}


def namespace_network_policies() -> dict[str, dict]:
    """Ingress only from the namespace itself, plus the API server to the operator's admission webhook
    (the API server calls it from the servers' host network, so no pod selector can name it). Egress only
    to itself, DNS, what it scrapes and the API server; Alertmanager alone reaches out, to the receivers
    (SMTP server, webhooks) wherever the ministry runs them."""
    tcp = [{"protocol": "TCP", "port": port} for port in SCRAPED_POD_PORTS]
    return {
        "same-namespace-only": {
            "podSelector": {},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {}}]}],
        },
        "operator-webhook-from-api-server": {
            "podSelector": {"matchLabels": dict(OPERATOR_POD_LABELS)},
            "policyTypes": ["Ingress"],
            "ingress": [{"ports": [{"protocol": "TCP", "port": OPERATOR_WEBHOOK_PORT}]}],
        },
        "egress-scrapes-dns-and-api": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {"to": [{"podSelector": {}}]},
                {
                    "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": names.KUBE_SYSTEM}}}],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                },
                {"to": [{"namespaceSelector": {}}], "ports": tcp},
                {
                    "to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
                    "ports": [{"protocol": "TCP", "port": port} for port in NODE_PORTS],
                },
            ],
        },
        "alertmanager-to-receivers": {
            "podSelector": {"matchLabels": dict(ALERTMANAGER_POD_LABELS)},
            "policyTypes": ["Egress"],
            "egress": [{}],
        },
    }


def namespace_quota(monitoring: MonitoringConfig) -> dict[str, str]:
    """What the namespace may request: its pods (node-exporter runs in kube-system) plus one more of the
    largest Deployment pod, so a rolling update fits, and never so tight that steady use reads as almost full."""
    sizes = monitoring_pods(monitoring)
    pods = [p for p in sizes.values() if not p.per_node]
    deployments = [sizes[name] for name in ("prometheus-operator", "kube-state-metrics", "json-exporter")]
    surge_cpu = max(p.cpu_m for p in deployments)
    surge_mem = max(p.memory_mi for p in deployments)
    # Prometheus's and Alertmanager's init container (the config reloader) counts while they start.
    reloader = sizes["prometheus-config-reloader"]
    steady_cpu = sum(p.cpu_m * p.replicas for p in pods)
    steady_mem = sum(p.memory_mi * p.replicas for p in pods)
    cpu_m = max(steady_cpu + surge_cpu + 2 * reloader.cpu_m, math.ceil(steady_cpu / QUOTA_STEADY_USE))
    mem_mi = max(steady_mem + surge_mem + 2 * reloader.memory_mi, math.ceil(steady_mem / QUOTA_STEADY_USE))
    return {
        "requests.cpu": f"{cpu_m}m",
        "requests.memory": f"{mem_mi}Mi",
        "limits.cpu": f"{cpu_m * LIMIT_FACTOR}m",
        "limits.memory": f"{mem_mi * LIMIT_FACTOR}Mi",
        "persistentvolumeclaims": "2",
        "requests.storage": f"{monitoring.prometheus.storage_gb + ALERTMANAGER_STORAGE_GI}Gi",
        "services.loadbalancers": "0",
        "services.nodeports": "0",
    }


def limit_range() -> list[dict]:
    """Defaults for a container the charts leave unsized (e.g. a debug pod), so the quota admits it."""
    return [{"type": "Container", "defaultRequest": {"cpu": "10m", "memory": "32Mi"}, "default": {"cpu": "100m", "memory": "128Mi"}}]
