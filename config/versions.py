"""Release versions: parsed once, on `semver` (the library Pulumi itself uses), never by splitting strings.

Three forms occur in the config: CHT Core and the CPI chart write `X.Y.Z`; kube-vip, the CSI driver,
system-upgrade-controller and external-snapshotter write `vX.Y.Z`; k3s writes `vX.Y.Z+k3sN`, where N
counts k3s's own rebuilds of one Kubernetes release (so `+k3s2` is newer than `+k3s1`, an ordering
SemVer itself leaves to build metadata). Pre-releases are refused: production runs releases.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import semver

PLAIN = "X.Y.Z"
V = "vX.Y.Z"
K3S = "vX.Y.Z+k3sN"

_K3S_BUILD = re.compile(r"k3s([1-9][0-9]*)")


@dataclass(frozen=True, order=True)
class Release:
    """A parsed release; ordered by (major, minor, patch, k3s build)."""

    major: int
    minor: int
    patch: int
    build: int = 0  # the N of +k3sN; 0 for the other forms

    @property
    def minor_line(self) -> str:
        """'1.36' for v1.36.3+k3s1: the Kubernetes (or product) minor release line."""
        return f"{self.major}.{self.minor}"


def parse(text: object, form: str = PLAIN) -> Release:
    """The release `text` names in `form`; ValueError if it is not exactly that form."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not text")
    if not text.isascii():  # semver's pattern matches any Unicode digit; Helm, k3s and Go read ASCII only
        raise ValueError(f"{text!r} is not ASCII")
    body = text
    if form in (V, K3S):
        if not body.startswith("v"):
            raise ValueError(f"{text!r} does not start with v")
        body = body[1:]
    try:
        version = semver.Version.parse(body)
    except (ValueError, TypeError):
        raise ValueError(f"{text!r} is not {form}") from None
    if version.prerelease is not None:
        raise ValueError(f"{text!r} is a pre-release")
    build = 0
    if form == K3S:
        match = _K3S_BUILD.fullmatch(version.build or "")
        if match is None:
            raise ValueError(f"{text!r} has no +k3sN build")
        build = int(match.group(1))
    elif version.build is not None:
        raise ValueError(f"{text!r} carries build metadata")
    return Release(version.major, version.minor, version.patch, build)


def form_of(text: str) -> str:
    """Which of the three forms `text` is written in (by its shape; `parse` checks the rest)."""
    if text.startswith("v"):
        return K3S if "+" in text else V
    return PLAIN


def release(text: str) -> Release:
    """Parse a version already validated by the config models, whatever its form."""
    return parse(text, form_of(text))


def major(text: str) -> int:
    return release(text).major


def minor_line(text: str) -> str:
    """'v1.36.3+k3s1' -> '1.36'; '1.36.0' -> '1.36'; 'v3.8.0' -> '3.8'."""
    return release(text).minor_line


def at_least(text: str, floor: str) -> bool:
    """Whether release `text` is `floor` or newer (both in the same form)."""
    return release(text) >= release(floor)


def is_valid(text: object, form: str) -> bool:
    try:
        parse(text, form)
    except ValueError:
        return False
    return True
