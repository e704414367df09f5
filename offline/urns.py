"""Resource identity as the Pulumi engine sees it: URNs and how aliases match what a stack's state holds.

The mock monitor builds a URN from the parent's last type only; the engine qualifies a type with its whole
parent chain (the root stack left out). `matches()` follows the engine's step generator
(pulumi/pulumi v3.259.0, pkg/resource/deploy/step_generator.go: `getOldResource`, `generateAliases`,
`collapseAliasToUrn`, `inheritedChildAlias`): a registration takes the old resource of its own URN, else of
the first alias that the state holds, and a child of an aliased parent also tries the parent's matched alias
with its own type and name. What no registration takes, `pulumi up` deletes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .recorder import Evaluation, Registration

ROOT_STACK = "pulumi:pulumi:Stack"


def make(stack: str, project: str, qualified_type: str, name: str) -> str:
    return f"urn:pulumi:{stack}::{project}::{qualified_type}::{name}"


def parts(urn: str) -> tuple[str, str, str, str]:
    """(stack, project, qualified type, name) of a URN (a name may itself hold `::`)."""
    _, _, rest = urn.partition("urn:pulumi:")
    stack, project, qualified, name = rest.split("::", 3)
    return stack, project, qualified, name


def with_stack(urn: str, stack: str) -> str:
    """The same resource's URN in another stack of the project (what `pulumi state move` writes)."""
    _, project, qualified, name = parts(urn)
    return make(stack, project, qualified, name)


@dataclass(frozen=True)
class Resource:
    """A registration under its engine URN."""

    urn: str
    parent: str  # the parent's engine URN, "" under the root stack
    registration: Registration


def engine_urns(evaluation: Evaluation, project: str = "cht-hosting") -> list[Resource]:
    """Every registration with the URN the engine gives it (its type qualified by the whole parent chain)."""
    by_mock = evaluation.by_urn
    qualified: dict[str, str] = {}

    def chain(r: Registration) -> str:
        if r.urn not in qualified:
            parent = by_mock.get(r.parent)
            qualified[r.urn] = f"{chain(parent)}${r.type}" if parent is not None else r.type
        return qualified[r.urn]

    out = []
    for r in evaluation.registrations:
        parent = by_mock.get(r.parent)
        out.append(
            Resource(
                urn=make(evaluation.stack, project, chain(r), r.name),
                parent=make(evaluation.stack, project, chain(parent), parent.name) if parent is not None else "",
                registration=r,
            )
        )
    return out


def _collapse(name: str, type_: str, parent: str, alias: dict, stack: str, project: str, matched: dict) -> str:
    """step_generator.go collapseAliasToUrn: an alias spec as the URN it names."""
    if "urn" in alias:
        return alias["urn"]
    spec = alias.get("spec", {})
    alias_parent = spec.get("parentUrn") or parent
    if spec.get("parentUrn"):
        # The mock monitor's URN of a root-level resource names the root stack's type; the engine's does not.
        _stack, _project, qualified_parent, parent_name = parts(alias_parent)
        if qualified_parent.startswith(f"{ROOT_STACK}$"):
            alias_parent = make(_stack, _project, qualified_parent.removeprefix(f"{ROOT_STACK}$"), parent_name)
        alias_parent = matched.get(alias_parent, alias_parent)
    if spec.get("noParent") or (alias_parent and parts(alias_parent)[2] == ROOT_STACK):
        alias_parent = ""
    qualified = f"{parts(alias_parent)[2]}${spec.get('type') or type_}" if alias_parent else spec.get("type") or type_
    return make(spec.get("stack") or stack, spec.get("project") or project, qualified, spec.get("name") or name)


def matches(resources: list[Resource], olds: Iterable[str], stack: str, project: str = "cht-hosting") -> dict[str, str]:
    """New URN -> the old URN (a resource of `olds`, the state) it takes over; absent: a create."""
    old_set, taken, matched = set(olds), {}, {}
    for res in resources:  # registration order: a parent before its children
        r = res.registration
        aliases = [_collapse(r.name, r.type, res.parent, a, stack, project, matched) for a in r.aliases]
        if res.parent and res.parent in matched:
            parent_alias = matched[res.parent]
            parent_name = parts(res.parent)[3]
            for child_name in [r.name, *(parts(a)[3] for a in aliases)]:
                alias_name = parts(parent_alias)[3] + child_name[len(parent_name):] if child_name.startswith(
                    parent_name) else child_name
                aliases.append(make(stack, project, f"{parts(parent_alias)[2]}${r.type}", alias_name))
        for candidate in [res.urn, *aliases]:
            if candidate in old_set and candidate not in taken.values():
                taken[res.urn] = candidate
                if candidate != res.urn:
                    matched[res.urn] = candidate
                break
    return taken


PROVIDER_PREFIX = "pulumi:providers:"


def state_move(resources: list[Resource], moved: Iterable[str], dest: str, project: str = "cht-hosting") -> dict[str, str]:
    """What `pulumi state move --source <stack> --dest <dest> <urn>...` writes into the destination: old URN ->
    new URN for the resources given, their children (not providers) and a copy of each provider they use.

    Follows pulumi/pulumi v3.259.0 pkg/cmd/pulumi/state/state_move.go: children move with their parent, a
    provider is copied (it stays in the source too), and a moved resource or copied provider whose parent
    stays is put under the destination's root stack, its URN rewritten with the new parent chain and stack.
    """
    by_urn = {r.urn: r for r in resources}
    children: dict[str, list[Resource]] = {}
    for r in resources:
        children.setdefault(r.parent, []).append(r)
    chosen: set[str] = set()
    todo = [u for u in moved if u in by_urn]
    while todo:
        urn = todo.pop()
        if urn in chosen or by_urn[urn].registration.type.startswith(PROVIDER_PREFIX):
            continue
        chosen.add(urn)
        todo += [c.urn for c in children.get(urn, [])]
    engine_of = {r.registration.urn: r.urn for r in resources}  # a provider reference holds the mock's URN
    providers = {
        engine_of.get(by_urn[u].registration.provider.rsplit("::", 1)[0], "") for u in chosen if by_urn[u].registration.provider
    }
    rewritten: dict[str, str] = {}

    def new_urn(urn: str) -> str:
        if urn not in rewritten:
            r = by_urn[urn]
            qualified = r.registration.type
            if r.parent in chosen:
                qualified = f"{parts(new_urn(r.parent))[2]}${qualified}"
            rewritten[urn] = make(dest, project, qualified, r.registration.name)
        return rewritten[urn]

    return {u: new_urn(u) for u in [*sorted(providers & set(by_urn)), *sorted(chosen)]}
