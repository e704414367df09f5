"""Benchmark: evaluation of the prod stack for 10, 50, 200 and 500 counties on the mock engine.

Each size is measured against the SDK floor in the same run: **the same registrations, made bare**. The floor
replays what the program registered (bench/registrations.py prints it all) - every resource's type, name,
inputs (secret ones as secrets), parent, provider, dependencies, options and aliases - through
`pulumi.CustomResource`, `ComponentResource` and `ProviderResource`: no SDK classes (pulumi_kubernetes.apps.v1.
Deployment, ...), no config, no render functions, no Outputs between resources, Python's default interpreter
settings. The ratio says what our program costs on top of what Pulumi itself costs for the same registrations;
the goal is <= 1.3x and linear in counties. Each measurement runs in its own process so peak memory (max RSS)
is its own. Seconds are wall time and CPU time (`cpu`: the process's, all threads): on a machine shared with
other work the wall time also counts the waits for a core, so read the CPU ratio there.

Other floors, same run, for where the time goes:
- `flat`: the same resources' types, names and inputs only, at the stack's root (no parents, providers,
  dependencies, options, aliases or secrets): the floor before 2026-12 (bench/README.md says why it changed);
- `tuned`: the floor with the program's interpreter settings (tuning.py: a GC threshold);
- `sdk`: the floor with the Kubernetes and random resources (everything in a county) made through their SDK
  classes with the same inputs, tuned: the gap between it and `tuned` is what those classes cost (type-driven
  serialization of inputs and outputs); the gap between it and the program is our own code, the Outputs
  between resources and the platform's other SDK classes.

    venv/bin/python bench/stack_scale.py              # 10, 50, 200, 500 counties, 3 repeats each
    venv/bin/python bench/stack_scale.py 10 50 --repeats 1

This is a benchmark, not a test: it prints figures and asserts nothing (tests/test_bench_floor.py checks that
the floor registers what the program registers).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def scaled_overrides(counties: int) -> dict:
    """Prod with `counties` default counties, enough agents that the capacity check passes (a default county's
    quota is about 5 CPU; an agent of prod allocates about 46, and one may be lost), the counties' backups
    allowed past the night's window (one Velero cannot read 500 counties in 16 h: `onOverrun: warn`) and the
    restore drill suspended (its cadence is refused for hundreds of counties), as one stack; the objects are the
    same."""
    import math

    import yaml

    prod = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())["config"]
    agents = dict(prod["cht-hosting:agents"])
    needed = max(9, math.ceil(counties * 5.1 / 46) + 2)
    agents["nodes"] = {f"agent-{i}": f"10.20.{1 + i // 250}.{i % 250 + 1}" for i in range(1, needed + 1)}
    network = dict(prod["cht-hosting:network"], cidr="10.20.0.0/16")
    backup = dict(prod["cht-hosting:backup"])
    backup["counties"] = dict(backup.get("counties") or {}, onOverrun="warn")
    backup["drill"] = dict(backup.get("drill") or {}, enabled=False)
    return {
        "cht-hosting:network": network,
        "cht-hosting:agents": agents,
        "cht-hosting:backup": backup,
        "cht-hosting:counties": {f"county-{i:03d}": {} for i in range(counties)},
        # One stack holding every county: prod's own county stacks (its split) are not read.
        "cht-hosting:stacks": None,
    }


def _warm_imports() -> None:
    """Import the SDKs before timing, in every measurement: import time is not evaluation time.

    pulumi_kubernetes and pulumi_command load their API modules lazily, on first use (a package on its first
    attribute, with all of its API versions); the ones the program uses are loaded here the way it reaches
    them, or the program would pay ~1 s of SDK imports the floor never does. Our own modules (config,
    components, pydantic models) are still imported inside the timed run.
    """
    import functools
    import importlib

    import pulumi_command  # noqa: F401
    import pulumi_kubernetes  # noqa: F401
    import pulumi_random  # noqa: F401
    import pulumi_tls  # noqa: F401
    import pulumi_vsphere  # noqa: F401

    for module in SDK_MODULES:
        importlib.import_module(module)
        package, *path = module.split(".")
        # As the program reaches it (`k8s.apps.v1.Deployment`): a lazy module loads on its first attribute.
        hasattr(functools.reduce(getattr, path, sys.modules[package]), "__all__")


SDK_MODULES = [
    "pulumi_command.local", "pulumi_command.remote",
    *(f"pulumi_kubernetes.{m}" for m in ("admissionregistration.v1", "apiextensions", "apps.v1", "batch.v1",
                                         "core.v1", "helm.v3", "helm.v4", "meta.v1", "networking.v1", "policy.v1",
                                         "rbac.v1", "storage.v1", "yaml.v2")),
]


def measure_program(counties: int) -> dict:
    from offline import plan

    _warm_imports()
    overrides = scaled_overrides(counties)  # the bench's own work (reading prod's file): not the program's
    start, cpu = time.perf_counter(), time.process_time()
    evaluation, _ = plan.run("prod", overrides=overrides)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    replay = recorded(evaluation)
    (ROOT / "build").mkdir(exist_ok=True)
    (ROOT / "build" / f"bench-replay-{counties}.json").write_text(json.dumps(replay, default=str))
    return {"seconds": seconds, "cpu": cpu, "resources": len(evaluation.registrations)}


def recorded(evaluation) -> list[dict]:
    """What the floors replay of each registration (as JSON)."""
    return [
        {
            "type": r.type, "name": r.name, "custom": r.custom, "inputs": r.inputs,
            "secret_inputs": sorted(r.secret_inputs), "aliases": list(r.aliases),
            # The tree, providers, dependencies and options as registered (the flat floor leaves them out).
            "urn": r.urn, "parent": r.parent, "provider": r.provider.rsplit("::", 1)[0], "depends_on": r.depends_on,
            "options": {
                "protect": r.protect, "retain_on_delete": r.retain_on_delete,
                "delete_before_replace": r.delete_before_replace, "ignore_changes": list(r.ignore_changes) or None,
                "additional_secret_outputs": list(r.additional_secret_outputs) or None,
                "replace_on_changes": list(r.replace_on_changes) or None,
            },
        }
        for r in evaluation.registrations
    ]


def measure_flat(counties: int) -> dict:
    """The floor before 2026-12: the same resources' types, names and inputs only, bare and flat."""
    import pulumi

    from offline import engine

    replay = _replay(counties)
    _warm_imports()

    def bare():
        for r in replay:
            if r["custom"]:
                pulumi.CustomResource(r["type"], r["name"], dict(r["inputs"]))
            else:
                pulumi.ComponentResource(r["type"], r["name"])

    return _timed(lambda: engine.record(bare, stack="floor"), len(replay))


def measure_floor(counties: int, tuned: bool = False, sdk_classes: bool = False) -> dict:
    """The headline floor: the program's registrations replayed bare (see the module's docstring).

    `tuned`: with the program's interpreter settings (tuning.py). `sdk_classes`: the Kubernetes and random
    resources (all of a county's) through their SDK classes instead, with the same inputs (tuned).
    """
    from offline import engine

    replay = in_dependency_order(_replay(counties))
    _warm_imports()
    if tuned or sdk_classes:
        import tuning

        tuning.apply()
    # The program's stack name, so that replayed URNs (parents, providers, dependencies, aliases) match.
    return _timed(lambda: engine.record(lambda: replay_registrations(replay, sdk_classes), stack="prod"), len(replay))


def replay_registrations(replay: list[dict], sdk_classes: bool = False) -> None:
    """Register every recorded resource again (`replay`: in_dependency_order)."""
    import pulumi

    made: dict[str, pulumi.Resource] = {}
    for r in replay:
        sdk_class = _sdk_class(r["type"]) if sdk_classes else None
        opts = pulumi.ResourceOptions(
            parent=made.get(r["parent"]),
            provider=made.get(r["provider"]) if r["provider"] else None,
            depends_on=[made[urn] for urn in r["depends_on"]] or None,
            # An SDK class adds its own aliases (its kind's earlier API versions) by itself.
            aliases=[_alias(a) for a in r["aliases"] if not (sdk_class and _sdk_class_alias(a))] or None,
            **r["options"],
        )
        inputs = {k: pulumi.Output.secret(v) if k in r["secret_inputs"] else v for k, v in r["inputs"].items()}
        if sdk_class:
            made[r["urn"]] = sdk_class(r["name"], opts=opts, **_sdk_kwargs(r["type"], inputs))
        elif r["type"].startswith("pulumi:providers:"):
            made[r["urn"]] = pulumi.ProviderResource(r["type"].split(":")[-1], r["name"], inputs, opts)
        elif r["custom"]:
            made[r["urn"]] = pulumi.CustomResource(r["type"], r["name"], inputs, opts)
        else:  # a component with inputs is a remote one (pulumi_kubernetes.yaml.v2.ConfigFile, ...)
            made[r["urn"]] = pulumi.ComponentResource(r["type"], r["name"], inputs or None, opts, remote=bool(inputs))


def in_dependency_order(replay: list[dict]) -> list[dict]:
    """The recorded registrations (in the order the engine received them), each moved after its parent, provider
    and dependencies: a replay can only name a resource it has made."""
    by_urn = {r["urn"]: r for r in replay}
    ordered: list[dict] = []
    placed: set[str] = set()

    def place(r: dict) -> None:
        if r["urn"] in placed:
            return
        placed.add(r["urn"])
        for urn in [r["parent"], r["provider"], *r["depends_on"]]:
            if urn in by_urn:
                place(by_urn[urn])
        ordered.append(r)

    for r in replay:
        place(r)
    return ordered


def _alias(recorded: dict):
    """An alias as the engine received it (a URN or a spec) as the SDK's alias again."""
    import pulumi

    if "urn" in recorded:
        return recorded["urn"]
    spec = recorded["spec"]
    return pulumi.Alias(
        name=spec.get("name") or ..., type_=spec.get("type") or ..., stack=spec.get("stack") or ...,
        project=spec.get("project") or ..., parent=None if spec.get("noParent") else (spec.get("parentUrn") or ...),
    )


def _sdk_class_alias(recorded: dict) -> bool:
    """An alias of the form the SDK classes add by themselves: another type, same name and parent."""
    return set(recorded.get("spec", {})) == {"type", "parentUrn"} and recorded["spec"]["parentUrn"] == ""


def _replay(counties: int) -> list[dict]:
    return json.loads((ROOT / "build" / f"bench-replay-{counties}.json").read_text())


def _timed(run, resources: int) -> dict:
    start, cpu = time.perf_counter(), time.process_time()
    run()
    return {"seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu, "resources": resources}


_K8S_MODULES = {
    "core/v1": "core.v1", "apps/v1": "apps.v1", "networking.k8s.io/v1": "networking.v1",
    "rbac.authorization.k8s.io/v1": "rbac.v1", "storage.k8s.io/v1": "storage.v1",
}
_K8S_CUSTOM_GROUPS = ("traefik.io", "upgrade.cattle.io", "helm.cattle.io")


def _sdk_class(type_: str):
    """The SDK class the program uses for a type token (Kubernetes and random only), or None."""
    import importlib

    package, module, kind = type_.split(":")
    if package == "kubernetes" and module in _K8S_MODULES:
        return getattr(importlib.import_module(f"pulumi_kubernetes.{_K8S_MODULES[module]}"), kind)
    if package == "kubernetes" and module.split("/")[0] in _K8S_CUSTOM_GROUPS:
        import pulumi_kubernetes

        return pulumi_kubernetes.apiextensions.CustomResource
    if package == "random":
        import pulumi_random

        return getattr(pulumi_random, kind)
    return None


def _sdk_kwargs(type_: str, inputs: dict) -> dict:
    """Recorded (engine, camelCase) top-level inputs as the SDK class's keyword arguments."""
    import re

    typed_k8s = type_.split(":")[1] in _K8S_MODULES  # these classes set apiVersion and kind themselves
    return {
        re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower(): value
        for key, value in inputs.items()
        if not (typed_k8s and key in ("apiVersion", "kind"))
    }


MEASURES = {
    "program": measure_program,
    "floor": measure_floor,
    "flat": measure_flat,
    "tuned": lambda counties: measure_floor(counties, tuned=True),
    "sdk": lambda counties: measure_floor(counties, sdk_classes=True),
}


def _child(kind: str, counties: int) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(counties)], capture_output=True, text=True, cwd=ROOT
    )
    if result.returncode != 0:
        sys.exit(f"{kind} {counties} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[10, 50, 200, 500])
    parser.add_argument("--repeats", type=int, default=3, help="take the fastest of this many runs")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        kind, counties = args.child[0], int(args.child[1])
        figures = MEASURES[kind](counties)
        figures["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(figures))
        return

    print(f"{'counties':>8} {'resources':>9} {'program s':>10} {'floor s':>8} {'ratio':>6} {'program cpu':>11} "
          f"{'floor cpu':>9} {'cpu ratio':>9} {'ms/county':>9} {'program MB':>10} {'floor MB':>9} "
          f"{'cpu: vs flat':>12} {'vs tuned':>8} {'vs sdk':>6}")
    for counties in args.sizes:
        runs = []
        for _ in range(args.repeats):
            # Side by side in the same run; the program first, as it writes the replay the floors use.
            runs.append({kind: _child(kind, counties) for kind in MEASURES})
        wall = {kind: min((run[kind] for run in runs), key=lambda f: f["seconds"]) for kind in MEASURES}
        cpu = {kind: min(run[kind]["cpu"] for run in runs) for kind in MEASURES}
        program, floor = wall["program"], wall["floor"]
        print(
            f"{counties:>8} {program['resources']:>9} {program['seconds']:>10.2f} {floor['seconds']:>8.2f} "
            f"{program['seconds'] / floor['seconds']:>5.2f}x {cpu['program']:>11.2f} {cpu['floor']:>9.2f} "
            f"{cpu['program'] / cpu['floor']:>8.2f}x {1000 * program['seconds'] / counties:>9.1f} "
            f"{program['peak_mb']:>10.0f} {floor['peak_mb']:>9.0f} {cpu['program'] / cpu['flat']:>11.2f}x "
            f"{cpu['program'] / cpu['tuned']:>7.2f}x {cpu['program'] / cpu['sdk']:>5.2f}x"
        )


if __name__ == "__main__":
    main()
