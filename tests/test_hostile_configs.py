"""Every hostile stack file in tests/hostile.py is refused by the offline plan: exit 2, a message naming its key,
no traceback, nothing registered. In-process for all of them (fast), and in subprocesses for a sample (the real
CLI path; `python -m tests.hostile` runs them all that way)."""

from __future__ import annotations

import pytest

from offline import plan
from tests.hostile import BASE_TEXT, CASES, refused_cleanly, run_in_subprocess


def test_there_are_enough_hostile_cases_and_each_is_named_once():
    assert len(CASES) >= 140
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_refused_in_process(case, tmp_path, capsys):
    (tmp_path / f"Pulumi.{case.name}.yaml").write_text(case.render())
    code = plan.main([case.name, "--stack-dir", str(tmp_path)])
    captured = capsys.readouterr()
    output = captured.err + captured.out
    assert refused_cleanly(case, code, output), output


@pytest.mark.parametrize("name", ["install-url-subshell", "alias-bomb", "budget-infinite", "namespace-misspelled"])
def test_refused_in_a_subprocess(name, tmp_path):
    case = next(c for c in CASES if c.name == name)
    code, output = run_in_subprocess(case, tmp_path)
    assert refused_cleanly(case, code, output), output


def test_a_stack_file_that_is_not_utf8_is_refused_cleanly(tmp_path, capsys):
    # Latin-1 bytes where the county's name is: the file cannot be read as the UTF-8 the CLI reads.
    (tmp_path / "Pulumi.latin1.yaml").write_bytes(BASE_TEXT.replace("kisumu: {}", "kis\xfcmu: {}").encode("latin-1"))
    code = plan.main(["latin1", "--stack-dir", str(tmp_path)])
    output = capsys.readouterr().err
    assert code == 2 and "is not UTF-8" in output and "Traceback" not in output, output


def _county_stack_file(tmp_path, name: str, platform: str) -> None:
    (tmp_path / f"Pulumi.{name}.yaml").write_text(
        f"config:\n  cht-hosting:stacks:\n    platform: {platform}\n  cht-hosting:counties:\n    lamu: {{}}\n"
    )


def test_a_stack_that_names_itself_or_a_cycle_as_its_platform_is_refused_cleanly(tmp_path, capsys):
    # The plan of a county stack plans its platform first: a stack that is its own platform, or two county
    # stacks naming each other, must end in the refusal, not in endless planning (a RecursionError).
    _county_stack_file(tmp_path, "alone", "alone")
    _county_stack_file(tmp_path, "left", "right")
    _county_stack_file(tmp_path, "right", "left")
    code = plan.main(["alone", "--stack-dir", str(tmp_path)])
    output = capsys.readouterr().err
    assert code == 2 and "cht-hosting:stacks.platform: names this stack itself" in output, output
    assert "too deeply" not in output and "Traceback" not in output
    code = plan.main(["left", "--stack-dir", str(tmp_path)])
    output = capsys.readouterr().err
    assert code == 2 and "cht-hosting:stacks.platform" in output, output
    assert "too deeply" not in output and "Traceback" not in output


def test_a_deployed_outputs_file_nested_beyond_json_is_refused_cleanly(tmp_path, capsys):
    (tmp_path / "Pulumi.guarded.yaml").write_text(BASE_TEXT)
    (tmp_path / "outputs.json").write_text("[" * 200_000 + "]" * 200_000)
    code = plan.main(["guarded", "--stack-dir", str(tmp_path), "--deployed", str(tmp_path / "outputs.json")])
    output = capsys.readouterr().err
    assert code == 2 and "--deployed" in output and "Traceback" not in output, output
