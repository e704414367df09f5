"""Read `Pulumi.<stack>.yaml` into the config map the Pulumi CLI would hand the program.

The offline plan reads the stack it plans; the program reads the sibling stacks of a deployment split into a
platform stack and county stacks (config/layout.py), whose files are the reviewed source of truth.
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import yaml

from .names import PROJECT
from .secrets import OFFLINE_PLACEHOLDER

# The project folder: where the Pulumi CLI keeps the stack files (Pulumi.yaml sets no stackConfigDir).
ROOT = Path(__file__).resolve().parent.parent

# Stands in for a `secure:` value the offline plan cannot decrypt (and must never print).
PLACEHOLDER = OFFLINE_PLACEHOLDER


_stack_dir: Path | None = None


def stack_dir() -> Path:
    """Where the program reads a deployment's sibling stack files: the project folder, or the folder the offline
    plan evaluates a stack from (`reading_stacks_from`)."""
    return _stack_dir or ROOT


@contextlib.contextmanager
def reading_stacks_from(path: Path):
    global _stack_dir
    previous, _stack_dir = _stack_dir, path
    try:
        yield
    finally:
        _stack_dir = previous


class StackFileError(Exception):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML keeps the last of two equal keys silently; a county listed twice must be an error instead.

    Aliases are refused: a stack file has no use for them, and nested ones expand exponentially (a bomb).
    """

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise StackFileError(
                f"line {event.start_mark.line + 1}: YAML alias *{event.anchor} is not accepted in a stack file; "
                "write the value out"
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise StackFileError(f"line {line}: YAML merge key << is not accepted in a stack file; write the keys out")
            if not isinstance(key_node, yaml.ScalarNode):
                # A list or mapping as a key: no config key is one (and Python cannot compare them).
                raise StackFileError(f"line {line}: a key is a YAML {key_node.id}, which is not text; write a name")
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
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise StackFileError(f"{path.name}: byte {error.start} is not UTF-8; save the file as UTF-8 text") from None
    except OSError as error:
        raise StackFileError(f"{path.name}: cannot be read ({error.strerror})") from None
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as error:
        raise StackFileError(f"{path.name} is not valid YAML: {error}") from None
    except StackFileError as error:
        raise StackFileError(f"{path.name}: {error}") from None
    except RecursionError:
        raise StackFileError(f"{path.name}: nests values too deeply to be a stack config; flatten it") from None
    except ValueError as error:  # pyyaml's int(): a number of more digits than Python converts
        raise StackFileError(f"{path.name}: a value is not one a setting takes ({error}); fix it") from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise StackFileError(
            f"{path.name}: is not a mapping; a stack file starts with `config:` and the keys under it"
        )
    section = document.get("config") or {}
    if not isinstance(section, dict):
        raise StackFileError(
            f"{path.name}: `config` is not a mapping; write one `cht-hosting:<key>: <value>` per line under it"
        )
    problems = [p for key, value in section.items() for p in _plain_data(value, [str(key)])]
    problems += [f"key {key!r}: is not text; write it as cht-hosting:<key>" for key in section if not isinstance(key, str)]
    if problems:
        raise StackFileError(f"{path.name}: " + "; ".join(problems))
    # A key without a namespace is the project's, as the Pulumi CLI reads it.
    entries: dict = {}
    for key, value in section.items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        if full in entries:
            raise StackFileError(
                f"{path.name}: `{key}` is {full}, which is also set; keep one of the two (a key without a namespace "
                f"is the project's)"
            )
        entries[full] = value
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


def _plain_data(value: object, path: list[str]) -> list[str]:
    """Problems with values JSON cannot carry as the CLI passes them: non-text keys, dates, .inf/.nan, bytes."""
    where = ".".join(path)
    if isinstance(value, dict):
        found = [f"{where}: key {k!r} is not text; quote it" for k in value if not isinstance(k, str)]
        return found + [p for k, v in value.items() for p in _plain_data(v, [*path, str(k)])]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _plain_data(v, [*path, f"[{i}]"])]
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{where}: {value} is not a number a setting takes; write a finite number"]
    if value is None or isinstance(value, (str, int, float, bool)):
        return []
    return [f"{where}: {value!r} is a YAML {type(value).__name__}, not text or a number; quote it"]


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
