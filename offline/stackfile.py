"""Read `Pulumi.<stack>.yaml` into the config map the Pulumi CLI would hand the program."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from config.names import PROJECT

from .engine import ROOT

# Stands in for a `secure:` value the offline plan cannot decrypt (and must never print).
PLACEHOLDER = "offline-plan-placeholder-secret"


class StackFileError(Exception):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML keeps the last of two equal keys silently; a county listed twice must be an error instead."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise StackFileError(
                    f"line {key_node.start_mark.line + 1}: key '{key}' appears twice "
                    f"(first on line {seen[key] + 1}); keep one"
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


@dataclass(frozen=True)
class StackFile:
    stack: str
    path: Path
    config: dict[str, str]
    secret_keys: tuple[str, ...]


def stack_path(stack: str, root: Path = ROOT) -> Path:
    return root / f"Pulumi.{stack}.yaml"


def available_stacks(root: Path = ROOT) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def load(stack: str, root: Path = ROOT, overrides: dict | None = None) -> StackFile:
    """Config as `project:key` -> string (objects as JSON), with `secure:` values replaced by a placeholder.

    `overrides` (`project:key` -> plain value) replace or add keys, for tests that vary one setting.
    """
    path = stack_path(stack, root)
    if not path.exists():
        known = ", ".join(available_stacks(root)) or "none"
        raise StackFileError(f"{path.name} not found; stacks here: {known}")
    try:
        document = yaml.load(path.read_text(), Loader=_UniqueKeyLoader) or {}
    except yaml.YAMLError as error:
        raise StackFileError(f"{path.name} is not valid YAML: {error}") from None
    except StackFileError as error:
        raise StackFileError(f"{path.name}: {error}") from None
    entries = dict(document.get("config") or {})
    entries.update(overrides or {})
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in entries.items():
        if value is None:
            continue  # an override that removes a key
        value, secret = _without_secure_leaves(value)
        if secret:
            secret_keys.append(key)  # as the CLI marks a key holding any `secure:` leaf
        config[key] = value if isinstance(value, str) else json.dumps(value)
    return StackFile(stack=stack, path=path, config=config, secret_keys=tuple(secret_keys))


def _is_secure(value: object) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def _without_secure_leaves(value: object) -> tuple[object, bool]:
    """Replace every `{secure: ...}` (the whole value, or leaves set with `--path`) by the placeholder."""
    if _is_secure(value):
        return PLACEHOLDER, True
    if isinstance(value, dict):
        pairs = {k: _without_secure_leaves(v) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, any(s for _, s in pairs.values())
    if isinstance(value, list):
        items = [_without_secure_leaves(v) for v in value]
        return [v for v, _ in items], any(s for _, s in items)
    return value, False


def raw(file: StackFile) -> tuple[dict, frozenset[str]]:
    """The stack's `cht-hosting:` keys as plain values, as `config.read_raw()` sees them under the CLI."""
    prefix = f"{PROJECT}:"
    values = {}
    for key, value in file.config.items():
        if key.startswith(prefix):
            try:
                values[key[len(prefix) :]] = json.loads(value)
            except ValueError:
                values[key[len(prefix) :]] = value
    return values, frozenset(k[len(prefix) :] for k in file.secret_keys if k.startswith(prefix))
