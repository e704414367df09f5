"""The one rule for tests that need a real tool (tests/tools.py): fail in CI, skip elsewhere, find it anywhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests import tools

ROOT = Path(__file__).resolve().parent.parent


def test_a_missing_tool_fails_in_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"no-such-tool is not installed.*CI must provide it"):
        tools.need("no-such-tool")


@pytest.mark.parametrize("value", [None, "", "false", "0"])
def test_a_missing_tool_skips_elsewhere(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.skip.Exception, match="no-such-tool is not installed"):
        tools.need("no-such-tool")


def test_tools_come_from_the_venv_first_then_path(monkeypatch, tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "sbin").mkdir()
    fake = tmp_path / "sbin" / "fake-daemon"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert tools.find("fake-daemon") == str(fake)  # the sbin beside a PATH entry, where Debian puts nginx
    assert tools.find("python") == str(tools.VENV_BIN / "python")


def test_ci_installs_every_system_tool_the_tests_need():
    script = (ROOT / ".ci" / "run").read_text()
    for tool, how in tools.INSTALL.items():
        if how.startswith("apt-get install") and tool != "bash":
            packages = how.removeprefix("apt-get install").split()
            assert all(re.search(rf"missing\+=\([^)]*\b{re.escape(p)}\b", script) for p in packages), tool
