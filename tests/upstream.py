"""Upstream files at the tags we pin, for tests that compare what we render with the real thing.

Apache-2.0 chart files are vendored in tests/upstream/ (see its README). Medic's CHT Watchdog is AGPL-3.0,
so it is not copied into this repository: its files are read from a local clone (`CHT_WATCHDOG_GIT`, a
git directory) or fetched from GitHub at the pinned tag. Without either, the test is skipped, except in
CI (`CI=true`), where it fails.
"""

from __future__ import annotations

import os
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml

VENDORED = Path(__file__).resolve().parent / "upstream"
WATCHDOG_REPO, WATCHDOG_TAG = "medic/cht-watchdog", "1.23.1"


def vendored(relative: str) -> str:
    return (VENDORED / relative).read_text()


def vendored_yaml_all(relative: str) -> list:
    return [d for d in yaml.safe_load_all(vendored(relative)) if d]


def watchdog_file(path: str) -> str:
    """A file of medic/cht-watchdog at tag 1.23.1."""
    clone = os.environ.get("CHT_WATCHDOG_GIT")
    if clone:
        return subprocess.run(
            ["git", "-C", clone, "show", f"{WATCHDOG_TAG}:{path}"], check=True, capture_output=True, text=True
        ).stdout
    url = f"https://raw.githubusercontent.com/{WATCHDOG_REPO}/{WATCHDOG_TAG}/{path}"
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            return response.read().decode()
    except OSError as error:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"{WATCHDOG_REPO}@{WATCHDOG_TAG}:{path} unreachable ({error}); set CHT_WATCHDOG_GIT to a clone")
