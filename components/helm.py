"""How this program installs a chart, stated once for every Helm release it makes (the vSphere CPI, Velero,
kube-prometheus-stack and the CHT json-exporter)."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s


def release(
    resource_name: str,
    *,
    name: str,
    chart: str,
    version: str,
    repository: pulumi.Input[str],
    namespace: pulumi.Input[str],
    values: pulumi.Input[Any],
    opts: pulumi.ResourceOptions,
) -> k8s.helm.v3.Release:
    """A pinned chart from its repository. Atomic: the release waits until what it installs is ready, and a failed
    upgrade rolls back instead of staying half done (a failed install removes what it created); Helm keeps ten
    revisions, enough to roll back, bounded."""
    return k8s.helm.v3.Release(
        resource_name,
        name=name,
        chart=chart,
        version=version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=repository),
        namespace=namespace,
        values=values,
        atomic=True,
        cleanup_on_fail=True,
        max_history=10,
        opts=opts,
    )
