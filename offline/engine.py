"""This project's program on the mock engine: its fakes, its project name, the deployed stack's outputs.

No vCenter, cluster or Pulumi CLI is involved: `recorder.py` (which knows nothing of this project) runs the
program on the SDK's mock monitor and records every registration; `fakes.py` answers for the providers. The
record (types, names, parents, inputs, options, secrets) is what the offline plan prints and what the stack
tests assert on.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import MockCallArgs, MockResourceArgs

from config.names import PROJECT

from . import fakes, recorder
from .recorder import REDACTED, Evaluation, ProgramFailed, Registration

__all__ = ["REDACTED", "ROOT", "Evaluation", "FakeCloud", "ProgramFailed", "Registration", "evaluate", "record", "to_json"]

ROOT = Path(__file__).resolve().parent.parent


STACK_REFERENCE = "pulumi:pulumi:StackReference"


class FakeCloud(recorder.Mocks):
    """This project's providers on the mock engine (offline/fakes.py), and the deployed stack's outputs."""

    def __init__(self, stack_outputs: dict[str, Any] | None = None, references: dict[str, dict] | None = None):
        super().__init__()
        # What a StackReference to the stack itself reads: the deployed stack's outputs (`pulumi stack output
        # --json`); none stands for a stack's first update. `references`: other stacks' outputs by stack name
        # (a county stack's platform stack); a stack not given has none (never deployed).
        self.stack_outputs = stack_outputs or {}
        self.references = references or {}

    def answer(self, args: MockResourceArgs):
        if args.typ == STACK_REFERENCE:  # a read (ReadResource), never recorded as a registration
            name = args.resource_id or args.name
            stack = name.rsplit("/", 1)[-1]
            outputs = self.stack_outputs if stack == pulumi.get_stack() else self.references.get(stack, {})
            return name, {"name": name, "outputs": outputs, "secretOutputNames": []}
        state = dict(args.inputs)
        make = fakes.RESOURCE_OUTPUTS.get(args.typ)
        if make:
            state.update(make(args))
        resource_id = state.get("uuid") or f"{args.name}-id"
        return resource_id, state

    def call(self, args: MockCallArgs):
        make = fakes.INVOKE_RESULTS.get(args.token)
        if make is None and args.token == "kubernetes:yaml:decode":
            import yaml

            return {"result": [d for d in yaml.safe_load_all(args.args["text"]) if d]}
        return make(args) if make else {}


def evaluate(
    stack: str,
    config: dict[str, str],
    secret_keys: list[str] | tuple[str, ...] = (),
    program: Path = ROOT / "__main__.py",
    stack_outputs: dict[str, Any] | None = None,
    references: dict[str, dict] | None = None,
) -> Evaluation:
    """Run `program` for `stack` with `config` (`project:key` -> string, as the CLI passes it);
    `stack_outputs`: what the stack deployed last (its outputs), none for a first update; `references`: other
    stacks' outputs by stack name."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return record(functools.partial(_run_program, program), stack, config, secret_keys, stack_outputs, references)


def _run_program(program: Path) -> None:
    """Run the program file as the `__main__` module, from one Python frame: the SDK walks the whole stack at
    every registration (its source positions), and runpy's three frozen frames cost it an exception each."""
    exec(compile(program.read_text(), str(program), "exec"), {"__name__": "__main__", "__file__": str(program)})


def record(
    build: Callable[[], Any],
    stack: str = "test",
    config: dict[str, str] | None = None,
    secret_keys: list[str] | tuple[str, ...] = (),
    stack_outputs: dict[str, Any] | None = None,
    references: dict[str, dict] | None = None,
) -> Evaluation:
    """Run `build` (a program, or a test that constructs components) as this project, on fresh fakes."""
    config = config or {}
    return recorder.record(
        build,
        project=PROJECT,
        stack=stack,
        mocks=FakeCloud(stack_outputs, references),
        config=config,
        secret_keys=secret_keys,
        # Read when the run is over: the fakes add each generated secret as the program creates it.
        secret_values=itertools.chain(fakes.SECRET_VALUES, _config_secrets(config, secret_keys)),
    )


def _config_secrets(config: dict[str, str], secret_keys) -> set[str]:
    """Secret config values, and every string inside a secret object (set leaf by leaf with --path)."""
    found: set[str] = set()

    def leaves(value: Any) -> None:
        if isinstance(value, str) and value:
            found.add(value)
        elif isinstance(value, dict):
            for v in value.values():
                leaves(v)
        elif isinstance(value, list):
            for v in value:
                leaves(v)

    for key in secret_keys:
        text = config.get(key)
        if text:
            found.add(text)
            with contextlib.suppress(ValueError):
                leaves(json.loads(text))
    return found


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)
