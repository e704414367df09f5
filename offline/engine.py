"""Evaluate the real program on Pulumi's in-process mock engine and record every registration.

No vCenter, cluster or Pulumi CLI is involved: the SDK's mock monitor stands in for the engine, and
`fakes.py` answers for the providers. The record (types, names, parents, inputs, options, secrets)
is what the offline plan prints and what the stack tests assert on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import runpy
import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import MockCallArgs, MockResourceArgs, Mocks, rpc, set_mocks
from pulumi.runtime import config as runtime_config
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.mocks import MockMonitor

from config.names import PROJECT

from . import fakes

ROOT = Path(__file__).resolve().parent.parent
# Stands in for a secret in everything the plan prints or writes (a plain scalar in YAML and JSON alike).
REDACTED = "<secret>"


@dataclass
class Registration:
    """One resource as the program registered it."""

    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    secret_inputs: frozenset[str]
    protect: bool
    retain_on_delete: bool
    ignore_changes: tuple[str, ...]
    depends_on: tuple[str, ...]
    provider: str
    delete_before_replace: bool
    additional_secret_outputs: tuple[str, ...]
    replace_on_changes: tuple[str, ...]
    aliases: tuple[dict, ...] = ()
    """The registration's aliases as the SDK sent them (`{"spec": {"parentUrn": ...}}` or `{"urn": ...}`)."""


@dataclass
class Evaluation:
    """Everything one evaluation of the program registered, logged and exported."""

    stack: str
    registrations: list[Registration]
    outputs: dict[str, Any]
    warnings: list[str]
    secret_values: frozenset[str]
    by_urn: dict[str, Registration] = field(init=False)

    def __post_init__(self):
        self.by_urn = {r.urn: r for r in self.registrations}

    def of_type(self, type_: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == type_]

    def named(self, name: str) -> Registration:
        matches = [r for r in self.registrations if r.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name!r}")
        return matches[0]

    def children(self, parent: Registration) -> list[Registration]:
        return [r for r in self.registrations if r.parent == parent.urn]

    def descendants(self, parent: Registration) -> list[Registration]:
        found = []
        for child in self.children(parent):
            found += [child, *self.descendants(child)]
        return found

    def type_counts(self) -> Counter:
        return Counter(r.type for r in self.registrations)

    def critical_path(self) -> list[Registration]:
        """The longest chain of resources that wait on each other (inputs, depends_on, providers).

        Its length is what bounds a deployment's wall time when the engine runs everything else in parallel.
        """
        customs = {r.urn: r for r in self.registrations if r.custom}
        memo: dict[str, list[Registration]] = {}

        def waits_for(r: Registration) -> set[str]:
            deps = set(r.depends_on)
            if r.provider:
                deps.add(r.provider.rsplit("::", 1)[0])  # a provider reference is "<urn>::<id>"
            return {d for d in deps if d in customs and d != r.urn}

        def rank(chain: list[Registration]) -> tuple:
            # Among equally long chains, the same one every run (registration order varies).
            return len(chain), [r.name for r in chain]

        def longest(urn: str) -> list[Registration]:
            if urn not in memo:
                chains = [longest(d) for d in waits_for(customs[urn])]
                memo[urn] = [*max(chains, key=rank, default=[]), customs[urn]]
            return memo[urn]

        return max((longest(urn) for urn in customs), key=rank, default=[])

    def redact(self, text: str) -> str:
        for value in sorted(self.secret_values, key=len, reverse=True):
            text = text.replace(value, REDACTED)
        return text


class ProgramFailed(Exception):
    """The program refused to run (bad config) or crashed; `message` is what the user should read."""

    def __init__(self, message: str, registered: int = 0):
        self.message = message
        self.registered = registered
        """How many resources the program had registered when it stopped (0: refused before any)."""
        super().__init__(message)


STACK_REFERENCE = "pulumi:pulumi:StackReference"


class FakeCloud(Mocks):
    def __init__(self, stack_outputs: dict[str, Any] | None = None):
        super().__init__()
        # What a StackReference reads: the deployed stack's outputs (`pulumi stack output --json`); none
        # stands for a stack's first update.
        self.stack_outputs = stack_outputs or {}
        # The inputs MockMonitor deserialized for the registration in flight on this thread, so the recording
        # monitor need not deserialize them a second time (registrations run on a thread pool).
        self.in_flight = threading.local()

    def new_resource(self, args: MockResourceArgs):
        self.in_flight.inputs = args.inputs
        if args.typ == STACK_REFERENCE:  # a read (ReadResource), never recorded as a registration
            name = args.resource_id or args.name
            return name, {"name": name, "outputs": self.stack_outputs, "secretOutputNames": []}
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


def _internal(key: str) -> bool:
    """Keys the engine treats as internal, as `deserialize_properties(..., keep_internal=False)` drops them."""
    return key.startswith("__") and key != "__provider"


def _unwrap_secrets(value: Any) -> tuple[Any, bool]:
    """Deserialized inputs carry secrets as wrapped dicts; return the plain value and whether any was secret."""
    if rpc.is_rpc_secret(value):
        plain, _ = _unwrap_secrets(rpc.unwrap_rpc_secret(value))
        return plain, True
    if isinstance(value, dict):
        out, secret = {}, False
        for k, v in value.items():
            if _internal(k):
                continue
            out[k], s = _unwrap_secrets(v)
            secret |= s
        return out, secret
    if isinstance(value, list):
        items = [_unwrap_secrets(v) for v in value]
        return [v for v, _ in items], any(s for _, s in items)
    if isinstance(value, float) and value.is_integer():
        return int(value), False  # the wire carries every number as a double; 5984, not 5984.0
    return value, False


class RecordingMonitor(MockMonitor):
    def __init__(self, mocks: FakeCloud):
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def RegisterResource(self, request):
        self.mocks.in_flight.inputs = None
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        # MockMonitor deserialized the inputs (keep_internal=False) to hand them to FakeCloud; reuse them.
        deserialized = self.mocks.in_flight.inputs
        if deserialized is None:
            deserialized = rpc.deserialize_properties(request.object, keep_internal=False)
        inputs, secret_keys = {}, set()
        for key, value in deserialized.items():
            if _internal(key):
                continue
            inputs[key], secret = _unwrap_secrets(value)
            if secret:
                secret_keys.add(key)
        self.registrations.append(
            Registration(
                type=request.type,
                name=request.name,
                urn=response.urn,
                parent=request.parent,
                custom=request.custom,
                inputs=inputs,
                secret_inputs=frozenset(secret_keys),
                protect=request.protect,
                retain_on_delete=request.retainOnDelete,
                ignore_changes=tuple(request.ignoreChanges),
                depends_on=tuple(request.dependencies),
                provider=request.provider,
                delete_before_replace=request.deleteBeforeReplace,
                additional_secret_outputs=tuple(request.additionalSecretOutputs),
                replace_on_changes=tuple(request.replaceOnChanges),
                aliases=tuple(json_format.MessageToDict(alias) for alias in request.aliases),
            )
        )
        return response


class _WarningCollector(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def evaluate(
    stack: str,
    config: dict[str, str],
    secret_keys: list[str] | tuple[str, ...] = (),
    program: Path = ROOT / "__main__.py",
    stack_outputs: dict[str, Any] | None = None,
) -> Evaluation:
    """Run `program` for `stack` with `config` (`project:key` -> string, as the CLI passes it);
    `stack_outputs`: what the stack deployed last (its outputs), none for a first update."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return record(
        lambda: runpy.run_path(str(program), run_name="__main__"), stack, config, secret_keys, stack_outputs
    )


def record(
    build: Callable[[], Any],
    stack: str = "test",
    config: dict[str, str] | None = None,
    secret_keys: list[str] | tuple[str, ...] = (),
    stack_outputs: dict[str, Any] | None = None,
) -> Evaluation:
    """Run `build` (a program, or a test that constructs components) on fresh mocks and record it all."""
    config = config or {}
    logger = logging.getLogger(f"cht-hosting.offline.{stack}")
    logger.propagate = False
    logger.handlers = [collector := _WarningCollector()]
    mocks = FakeCloud(stack_outputs)
    monitor = RecordingMonitor(mocks)

    # A fresh root stack per run, so exports of an earlier run do not leak into this one.
    runtime_settings.ROOT.set(None)
    # `organization` is what a self-managed backend reports.
    set_mocks(
        mocks, project=PROJECT, stack=stack, organization="organization", preview=False, logger=logger, monitor=monitor
    )
    runtime_config.set_all_config(dict(config), list(secret_keys))
    root = runtime_settings.get_root_resource()

    def body():
        build()
        return pulumi.Output.from_input(root.outputs)

    try:
        outputs = _run(body) or {}
    except pulumi.RunError as error:
        raise ProgramFailed(str(error), registered=len(monitor.registrations)) from None
    return Evaluation(
        stack=stack,
        registrations=monitor.registrations,
        outputs=outputs,
        warnings=collector.messages,
        secret_values=frozenset(fakes.SECRET_VALUES | _config_secrets(config, secret_keys)),
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


def _run(body):
    """pulumi.runtime.test, returning the resolved value instead of discarding it."""
    result: dict[str, Any] = {}

    @pulumi.runtime.test
    def run():
        return body().apply(lambda value: result.setdefault("value", value))

    run()
    return result.get("value")


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)
