"""A deployment in one stack, or split into a platform stack and county stacks (one program, one project).

- single stack (no `stacks` key): the platform and every county, as always;
- platform stack (`stacks.counties: [<county stack>, ...]`): VMs, k3s, CPI/CSI, StorageClass, ingress, Velero
  and the monitoring stack, and the counties of its own `counties` (none, once a split is complete);
- county stack (`stacks.platform: <platform stack>`): only its own `counties`; the platform's outputs (a
  StackReference) give it the cluster and the StorageClass.

Every stack of a deployment validates the whole deployment: the platform's stack file with the counties of
every county stack's file (the reviewed files are the source of truth), so capacity, the backup window and
host names see every county, and a county belongs to exactly one stack. Each stack registers only its part.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import grammar, stackfile
from .errors import key_path

# What a county stack's own file may set; everything else is the platform stack's.
COUNTY_STACK_KEYS = ("stacks", "counties", "migratedCredentials", "deployedState")
# Per county, merged over the deployment's files.
PER_COUNTY_KEYS = ("counties", "migratedCredentials")


@dataclass(frozen=True)
class Layout:
    stack: str
    platform: str | None = None
    """The platform stack of a county stack; None in a platform or single stack."""
    county_stacks: tuple[str, ...] = ()
    """The deployment's county stacks (the platform's `stacks.counties`)."""
    holder: dict[str, str] = field(default_factory=dict)
    """Every county of the deployment -> the stack that holds it."""

    @property
    def role(self) -> str:
        """single, platform or counties."""
        if self.platform is not None:
            return "counties"
        return "platform" if self.county_stacks else "single"

    @property
    def builds_platform(self) -> bool:
        return self.platform is None

    def own(self, county: str) -> bool:
        """Whether this stack registers the county (in a single stack: every county)."""
        return self.holder.get(county, self.stack) == self.stack


def _stack_names(raw: Mapping[str, Any], key: str) -> list[str]:
    """The stack names under `stacks.<key>` that are names (validation reports the others; no file is read
    for them)."""
    stacks = raw.get("stacks")
    value = stacks.get(key) if isinstance(stacks, Mapping) else None
    values = [value] if key == "platform" else value if isinstance(value, list) else []
    return [v for v in values if isinstance(v, str) and _is_name(v)]


def platform_stack(raw: Mapping[str, Any]) -> str | None:
    """A county stack's platform stack as its raw config names it (`stacks.platform`); None for other stacks."""
    return next(iter(_stack_names(raw, "platform")), None)


def county_stacks(raw: Mapping[str, Any]) -> list[str]:
    """A platform stack's county stacks as its raw config lists them (`stacks.counties`); [] for other stacks."""
    return _stack_names(raw, "counties")


def _is_name(value: str) -> bool:
    try:
        grammar.stack_name(value)
    except ValueError:
        return False
    return True


def _file(name: str, root: Path, where: str, problems: list[str]) -> tuple[dict, frozenset[str]] | None:
    try:
        return stackfile.raw(stackfile.load(name, root=root))
    except stackfile.StackFileError as error:
        problems.append(f"{where}: {error}")
        return None


def assemble(
    raw: Mapping[str, Any],
    secret_keys: frozenset[str],
    stack: str,
    *,
    root: Path | None = None,
    mask: Callable[[Any], Any] = lambda value: value,
) -> tuple[Layout, dict[str, Any] | None, frozenset[str], list[str]]:
    """This stack's layout, the deployment's config (raw, as `config.read_raw` gives it; None when a county
    stack's platform file cannot be read, so nothing else can be checked) and the problems found reading the
    deployment's stack files. `mask`: how a secret value read from a sibling file is shown to
    validation (its shape only)."""
    root = root or stackfile.stack_dir()
    problems: list[str] = []
    platform_names, county_names = _stack_names(raw, "platform"), _stack_names(raw, "counties")
    stacks = raw.get("stacks")
    if isinstance(stacks, Mapping) and stacks.get("platform") is not None and not platform_names:
        # A county stack whose platform cannot be named: nothing else of it can be checked without that file.
        value = stacks["platform"]
        try:
            grammar.stack_name(value if isinstance(value, str) else "")
        except ValueError as error:
            problems.append(f"{key_path('stacks', 'platform')}: {error if isinstance(value, str) else f'{value!r} is not text; ' + str(error).split('; ', 1)[1]}")
        return Layout(stack), None, secret_keys, problems
    if not platform_names and not county_names:
        return Layout(stack), dict(raw), secret_keys, []
    if platform_names and county_names:
        problems.append(
            f"{key_path('stacks')}: sets both platform and counties; a county stack names its platform "
            "(stacks.platform), the platform stack lists its county stacks (stacks.counties): keep the one this "
            f"stack is"
        )
        return Layout(stack), dict(raw), secret_keys, problems

    if platform_names:  # a county stack: the platform's file holds the rest
        platform = platform_names[0]
        if platform == stack:
            problems.append(
                f"{key_path('stacks', 'platform')}: names this stack itself; name the platform stack (the one whose "
                "file holds vsphere, k3s and the other platform settings), or remove stacks from a single stack"
            )
            return Layout(stack), dict(raw), secret_keys, problems
        for key in sorted(set(raw) - set(COUNTY_STACK_KEYS)):
            problems.append(
                f"{key_path(key)}: a county stack takes it from its platform stack's file Pulumi.{platform}.yaml; "
                f"set it there and remove it here (a county stack sets only {', '.join(COUNTY_STACK_KEYS)})"
            )
        read = _file(platform, root, key_path("stacks", "platform"), problems)
        if read is None:
            return Layout(stack, platform=platform), None, secret_keys, problems
        base, base_secrets = read
        listed = _stack_names(base, "counties")
        if stack not in listed:
            problems.append(
                f"{key_path('stacks', 'platform')}: Pulumi.{platform}.yaml does not list this stack in its "
                f"stacks.counties; add `{stack}` there, so every stack of the deployment sees this stack's counties"
            )
            listed = [*listed, stack]
        base = {k: mask(v) if k in base_secrets else v for k, v in base.items()}
        # The platform's own secrets (the vCenter password, the backup keys, ...) are the platform stack's to
        # have; this stack neither reads nor checks them.
        from .secrets import SECRET_MASK
        from .validate import required_secrets

        for key in required_secrets(base):
            if key not in base and key not in PER_COUNTY_KEYS:
                base[key], base_secrets = SECRET_MASK, base_secrets | {key}
    else:  # the platform stack
        platform, base, base_secrets, listed = stack, dict(raw), secret_keys, county_names
        if stack in listed:
            problems.append(f"{key_path('stacks', 'counties')}: lists this stack itself; list only its county stacks")

    # The deployment: the platform's settings with the counties of every stack's file.
    nation = {k: v for k, v in base.items() if k not in (*PER_COUNTY_KEYS, *COUNTY_STACK_KEYS)}
    nation_secrets = {k for k in base_secrets if k not in (*PER_COUNTY_KEYS, *COUNTY_STACK_KEYS)}
    for key in ("stacks", "deployedState"):  # this stack's own
        if key in raw:
            nation[key] = raw[key]
    holder: dict[str, str] = {}
    merged: dict[str, dict] = {key: {} for key in PER_COUNTY_KEYS}

    def take(source: str, values: Mapping[str, Any], secrets: frozenset[str], from_file: bool) -> None:
        # `base` (the platform's file in a county stack) is masked already; a sibling county file is not.
        counties = values.get("counties")
        for name in counties if isinstance(counties, Mapping) else {}:
            if name in holder:
                problems.append(
                    f"{key_path('counties', name)}: is in Pulumi.{holder[name]}.yaml and Pulumi.{source}.yaml; a "
                    "county belongs to exactly one stack of the deployment: keep it in one"
                )
                continue
            holder[name] = source
        for key in PER_COUNTY_KEYS:
            value = values.get(key)
            if isinstance(value, Mapping):
                shown = mask(value) if from_file and key in secrets else value
                merged[key].update({k: v for k, v in shown.items() if k not in merged[key]})
            if key in secrets:
                nation_secrets.add(key)

    seen: set[str] = set()
    for name in [platform, *listed]:
        if name in seen:
            problems.append(f"{key_path('stacks', 'counties')}: lists {name} twice; list each county stack once")
            continue
        seen.add(name)
        if name == stack:
            take(name, raw, secret_keys, from_file=False)
            continue
        if name == platform:
            take(name, base, base_secrets, from_file=False)
            continue
        read = _file(name, root, key_path("stacks", "counties"), problems)
        if read is None:
            continue
        values, secrets = read
        if _stack_names(values, "platform") != [platform]:
            problems.append(
                f"{key_path('stacks', 'counties')}: Pulumi.{name}.yaml does not name {platform} as its "
                f"stacks.platform; set `stacks: {{platform: {platform}}}` there, or remove {name} from the list"
            )
            continue
        take(name, values, secrets, from_file=True)
    nation["counties"] = merged["counties"]
    if merged["migratedCredentials"]:
        nation["migratedCredentials"] = merged["migratedCredentials"]
    layout = Layout(
        stack,
        platform=platform if platform != stack else None,
        county_stacks=tuple(n for n in dict.fromkeys(listed) if n != platform),
        holder=holder,
    )
    return layout, nation, frozenset(nation_secrets), problems
