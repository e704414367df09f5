"""A recorder of what any Pulumi Python program registers, on the SDK's in-process mock engine.

It knows nothing of this project: `record()` runs a program (or a function that constructs resources) on
fresh mocks with `preview=False`, and returns every registration (type, name, URN, parent, custom or not,
inputs with secrets unwrapped and marked, the resource options the engine sees), the stack outputs and the
warnings logged. `Mocks` answers every resource with its inputs and every invoke with nothing; subclass it
to answer like a provider. tests/test_recorder.py tells when an SDK upgrade breaks what this relies on:
MockMonitor's RegisterResource request fields and its deserialized inputs.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi.runtime
from google.protobuf import json_format
from pulumi.runtime import MockCallArgs, MockResourceArgs, rpc, set_mocks
from pulumi.runtime import config as runtime_config
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.mocks import MockMonitor

# Stands in for a secret in everything printed or written (a plain scalar in YAML and JSON alike).
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
    secret_outputs: frozenset[str] = frozenset()
    """The stack outputs the engine holds as secrets (`pulumi stack output` shows them as [secret])."""
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


class Mocks(pulumi.runtime.Mocks):
    """Answers every resource with its own inputs and every invoke with nothing; override `answer`/`call`."""

    def __init__(self):
        super().__init__()
        # The inputs MockMonitor deserialized for the registration in flight on this thread, so the recording
        # monitor need not deserialize them a second time (registrations run on a thread pool).
        self.in_flight = threading.local()

    def new_resource(self, args: MockResourceArgs):
        self.in_flight.inputs = args.inputs
        return self.answer(args)

    def answer(self, args: MockResourceArgs) -> tuple[str, dict]:
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: MockCallArgs):
        return {}


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
    def __init__(self, mocks: Mocks):
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


def record(
    build: Callable[[], Any],
    *,
    project: str,
    stack: str,
    mocks: Mocks | None = None,
    config: dict[str, str] | None = None,
    secret_keys: Iterable[str] = (),
    secret_values: Iterable[str] = (),
) -> Evaluation:
    """Run `build` for `project`/`stack` with `config` (`project:key` -> string, as the CLI passes it) on fresh
    mocks and record it all; `secret_values` (read once the run is over, so it may grow while the program runs)
    are redacted by `Evaluation.redact`."""
    config = config or {}
    logger = logging.getLogger(f"offline.recorder.{project}.{stack}")
    logger.propagate = False
    logger.handlers = [collector := _WarningCollector()]
    mocks = mocks or Mocks()
    monitor = RecordingMonitor(mocks)

    # A fresh root stack per run, so exports of an earlier run do not leak into this one.
    runtime_settings.ROOT.set(None)
    # `organization` is what a self-managed backend reports.
    set_mocks(
        mocks, project=project, stack=stack, organization="organization", preview=False, logger=logger, monitor=monitor
    )
    runtime_config.set_all_config(dict(config), list(secret_keys))
    root = runtime_settings.get_root_resource()

    async def secret(value: Any) -> bool:
        # Only Outputs carry the mark; other awaitables an export holds are the engine's to await, once.
        if isinstance(value, pulumi.Output):
            return await value.is_secret()
        if isinstance(value, dict):
            value = list(value.values())
        return isinstance(value, list | tuple) and any([await secret(v) for v in value])

    async def secret_names(outputs: dict) -> list[str]:
        return [name for name, value in outputs.items() if await secret(value)]

    def body():
        build()
        secret = pulumi.Output.from_input(asyncio.ensure_future(secret_names(dict(root.outputs))))
        return pulumi.Output.all(pulumi.Output.from_input(root.outputs), secret)

    try:
        outputs, secret = _run(body) or ({}, [])
    except pulumi.RunError as error:
        raise ProgramFailed(str(error), registered=len(monitor.registrations)) from None
    return Evaluation(
        stack=stack,
        registrations=monitor.registrations,
        outputs=outputs,
        warnings=collector.messages,
        secret_values=frozenset(secret_values),
        secret_outputs=frozenset(secret),
    )


def _run(body):
    """pulumi.runtime.test, returning the resolved value instead of discarding it."""
    result: dict[str, Any] = {}

    @pulumi.runtime.test
    def run():
        return body().apply(lambda value: result.setdefault("value", value))

    run()
    return result.get("value")
