"""The README's config reference, generated from the models so it cannot drift from them.

    python -m config.reference          # print the reference (markdown)
    python -m config.reference --write  # replace it in README.md

A test compares README.md with this output.
"""

from __future__ import annotations

import sys
import types
import typing
from pathlib import Path

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from .errors import PROJECT
from .model import MODE_SECTIONS, OPTIONAL_SECTIONS, SECTIONS
from .secrets import SECRETS

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"

def _type_name(annotation: object) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        return " or ".join(dict.fromkeys(names))
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"mapping of {_type_name(args[0])} to {_type_name(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping (keys below)"
    return {str: "text", int: "integer", float: "number", bool: "true/false"}.get(annotation, str(annotation))


def _default(field) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
        if isinstance(value, BaseModel):
            value = value.model_dump(by_alias=True)
    elif field.default is PydanticUndefined:
        return "**required**"
    else:
        value = field.default
    if value is None:
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def _models_in(annotation: object) -> list[type[BaseModel]]:
    """The models a field holds: itself, or inside Optional[...], list[...] or a union."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list):
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _rows(model: type[BaseModel], prefix: str) -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        annotation = field.annotation
        rows.append(f"| `{key}` | {_type_name(annotation)} | {_default(field)} | {field.description or ''} |")
        item = "[]" if typing.get_origin(annotation) is list else ""
        for nested in _models_in(annotation):
            rows += _rows(nested, f"{key}{item}.")
    return rows


def render() -> str:
    lines = [
        f"#### `{PROJECT}:clusterMode` (optional)",
        "",
        "`vsphere-k3s` (default): the program builds the VMs, k3s, the CPI, the CSI and the StorageClass, then "
        "the counties. `existing`: it deploys only the counties onto an existing cluster (`existingCluster`). "
        "Each section below says which mode reads it; a section of the other mode is refused.",
        "",
    ]
    for key, model in SECTIONS.items():
        modes = [m for m, keys in MODE_SECTIONS.items() if key in keys] or list(MODE_SECTIONS)
        need = "optional" if key in OPTIONAL_SECTIONS else "required"
        required = f"{' and '.join(f'`{m}`' for m in modes)} mode{'s' if len(modes) > 1 else ''}, {need}"
        lines += [f"#### `{PROJECT}:{key}` ({required})", "", (model.__doc__ or "").split("`: ", 1)[-1].strip()]
        lines += ["", "| key | type | default | meaning |", "|---|---|---|---|", *_rows(model, ""), ""]
    lines += [
        f"#### `{PROJECT}:counties` (required)",
        "",
        "A mapping of county name to overrides: `nairobi: {}` takes every default from `cht`; "
        "`mombasa: {couchdbNodes: 3}` overrides one. The name becomes the county's namespace: lower-case "
        "letters, digits and `-`.",
        "",
        "#### Secrets (each in a key of its own, set with `pulumi config set --secret`)",
        "",
        "| key | meaning |",
        "|---|---|",
        *(f"| `{PROJECT}:{spec.key}` | {spec.note} |" for spec in SECRETS),
    ]
    return "\n".join(lines).strip() + "\n"


def replace_in(text: str) -> str:
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{render()}{END}{tail}"


if __name__ == "__main__":
    if "--write" in sys.argv:
        README.write_text(replace_in(README.read_text()))
    else:
        print(render())
