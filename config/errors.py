"""Turning validation failures into `<config key path>: <what is wrong, and the fix>` lines."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence

from pydantic import BaseModel, ValidationError

from .names import PROJECT


class ConfigError(Exception):
    """The stack config is invalid; `problems` lists every problem found, one line each."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(dict.fromkeys(problems))  # keep order, drop repeats
        super().__init__(self.render())

    def render(self) -> str:
        count = len(self.problems)
        header = f"The stack config has {count} problem{'s' if count != 1 else ''}:"
        return "\n".join([header, *(f"  - {p}" for p in self.problems)])


def key_path(key: str, *parts: object) -> str:
    """`cht-hosting:counties.nairobi.couchdbNodes` from ('counties', 'nairobi', 'couchdbNodes')."""
    return f"{PROJECT}:{key}" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def allowed_keys(model: type[BaseModel], loc: Sequence[object]) -> list[str]:
    """The keys the model accepts at `loc` (a path of aliases and dict keys)."""
    current: object = model
    for part in loc:
        current = _unwrap(current)
        if typing.get_origin(current) is list and isinstance(part, int):
            current = typing.get_args(current)[0]
            continue
        if typing.get_origin(current) in (typing.Union, types.UnionType) and part in _union_tags():
            current = next((m for m in typing.get_args(current) if getattr(_unwrap(m), "__name__", "") == part), None)
            continue
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = next((f for n, f in current.model_fields.items() if (f.alias or n) == part), None)
            if field is None:
                return []
            current = field.annotation
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or n for n, f in current.model_fields.items()]
    return []


def _unwrap(annotation: object) -> object:
    """Optional[X] / Annotated[X, ...] -> X."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _friendly(error: dict, model: type[BaseModel]) -> str:
    kind, value = error["type"], error.get("input")
    loc = error["loc"]
    if kind == "extra_forbidden":
        allowed = allowed_keys(model, loc[:-1])
        guess = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"did you mean '{guess[0]}'? " if guess else ""
        return f"unknown key; {hint}remove it or fix its spelling (allowed here: {', '.join(allowed)})"
    if kind == "missing":
        return "is required; add it (see docs/config-reference.md)"
    bound = error.get("ctx", {})
    if kind == "greater_than" and bound.get("gt") == 0:
        return f"must be a positive number, got {value!r}"
    if kind in ("greater_than", "greater_than_equal"):
        return f"must be at least {bound.get('ge', bound.get('gt'))}, got {value!r}"
    if kind in ("less_than", "less_than_equal"):
        return f"must be at most {bound.get('le', bound.get('lt'))}, got {value!r}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"must be a whole number, got {value!r}"
    if kind in ("float_parsing", "float_type"):
        return f"must be a number, got {value!r}"
    if kind in ("bool_parsing", "bool_type"):
        return f"must be true or false, got {value!r}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"must be a mapping of keys to values, got {value!r}"
    if kind == "list_type":
        return f"must be a list, got {value!r}"
    if kind == "string_type":
        return f"must be text, got {value!r}"
    if kind == "too_short":
        return "needs at least one entry"
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"must be {expected}, got {value!r}"
    return error["msg"]


def _union_tags() -> frozenset[str]:
    from .model import UNION_TAGS  # model imports this module

    return UNION_TAGS


def problems_from(
    errors: ValidationError | Sequence[dict], key: str, model: type[BaseModel], prefix: Sequence[object] = ()
) -> list[str]:
    """One line per pydantic error, with the full config key path."""
    if isinstance(errors, ValidationError):
        errors = errors.errors()
    # pydantic marks a failing dict key with a trailing "[key]"; the key itself names the place.
    return [
        key_path(key, *prefix, *(p for p in e["loc"] if p != "[key]" and p not in _union_tags())) + ": " + _friendly(e, model)
        for e in errors
    ]
