"""The benchmark's SDK floor (bench/stack_scale.py) registers exactly what the program registers.

The evaluation-time goal (issue 24: <= 1.3x the SDK floor) is only fair if the floor makes the same
registrations - types, names, inputs and which are secret, parents, providers, dependencies, options and
aliases - with nothing of the program around them. Here the floor replays a stack's evaluation (through the
JSON the benchmark stores) and both records must be equal, field by field.
"""

from __future__ import annotations

import dataclasses
import json
import sys

import pytest

from offline import engine, plan
from offline.engine import ROOT

STACKS = ROOT / "tests" / "stacks"
sys.path.insert(0, str(ROOT / "bench"))
import stack_scale  # noqa: E402


def _as_registered(evaluation: engine.Evaluation) -> dict[str, dict]:
    # The engine receives dependencies as a set: their order follows registration timing.
    return {r.urn: {**dataclasses.asdict(r), "depends_on": set(r.depends_on)} for r in evaluation.registrations}


@pytest.mark.parametrize("stack", ["backup", "adminapp", "cht5"])
def test_the_floor_registers_what_the_program_registers(stack):
    program, _ = plan.run(stack, stack_dir=STACKS)
    replay = stack_scale.in_dependency_order(json.loads(json.dumps(stack_scale.recorded(program), default=str)))
    floor = engine.record(lambda: stack_scale.replay_registrations(replay), stack=program.stack)

    assert len(floor.registrations) == len(program.registrations)
    assert _as_registered(floor) == _as_registered(program)
    # The stacks exercise what the floor must carry over (else the comparison above proves little).
    recorded = program.registrations
    assert any(r.aliases for r in recorded) and any(r.secret_inputs for r in recorded)
    assert any(r.depends_on for r in recorded) and any(r.protect for r in recorded)
