"""The CPI/CSI <-> Kubernetes compatibility tables and the traefik chart k3s bundles (data in compatibility.yaml)."""

from __future__ import annotations

import functools
from pathlib import Path

import yaml

from . import versions

_TABLE = Path(__file__).with_name("compatibility.yaml")


@functools.cache
def table() -> dict:
    return yaml.safe_load(_TABLE.read_text())


def minor_of(version: str) -> str:
    """The table's row key: '1.36.0' -> '1.36'; 'v3.8.0' -> 'v3.8' (rows keep the release's own prefix)."""
    prefix = "v" if versions.form_of(version) != versions.PLAIN else ""
    return prefix + versions.minor_line(version)


def kubernetes_minor(k3s_version: str) -> str:
    """'v1.36.3+k3s1' -> '1.36'."""
    return versions.minor_line(k3s_version)


def supported_kubernetes(component: str, version: str) -> list[str] | None:
    """Kubernetes minors a CPI ('cpi') or CSI ('csi') release supports; None if unknown."""
    return table()[component].get(minor_of(version))


def known_releases(component: str) -> list[str]:
    return list(table()[component])


def qualified_snapshotter(csi_version: str) -> str | None:
    """The external-snapshotter release qualified for a CSI release; None if the table has no row."""
    return table().get("snapshotter", {}).get(minor_of(csi_version))


def traefik_chart_v40(k3s_version: str) -> bool | None:
    """Whether the traefik chart this k3s release bundles is v40 or later; None when the table cannot tell."""
    rows = table()["traefikChart"]
    release = versions.release(k3s_version)
    line = release.minor_line
    if line in rows["v40From"]:
        return release >= versions.release(rows["v40From"][line])
    if line in rows["before40Through"]:
        return False if release <= versions.release(rows["before40Through"][line]) else None
    key = (release.major, release.minor)
    if key <= tuple(int(p) for p in rows["allBefore40Through"].split(".")):
        return False
    newest = max(tuple(int(p) for p in row.split(".")) for row in rows["v40From"])
    return True if key > newest else None
