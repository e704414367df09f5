"""Benchmark: evaluation of the prod stack for 10, 50, 200 and 500 counties on the mock engine.

Each size is measured against the SDK floor in the same run: the same number of bare resources with the
same inputs, registered flat (no components, no config, no render functions). The ratio says what our
program costs on top of what Pulumi itself costs for that many resources; the goal is <= 1.3x and linear
in counties. Each measurement runs in its own process so peak memory (max RSS) is its own.

A "tuned" floor is the flat floor with the program's own interpreter settings (tuning.py: a GC threshold),
so `vs tuned` shows our cost apart from that setting; the structured and sdk floors below run tuned too.

A second, "structured" floor replays the same bare resources with the program's parents, providers,
depends_on and options (`struct s`, `vs struct`): the gap between the two floors is what the component
tree itself costs. A third, "sdk" floor (`sdk s`, `vs sdk`) makes the Kubernetes and random resources
(everything in a county) through their SDK classes (pulumi_kubernetes.apps.v1.Deployment, ...) with the
same inputs: the gap between it and the structured floor is what those classes cost (their built-in
aliases, type-driven serialization); the gap between it and the program is our own code, the Outputs
between resources and the platform's other SDK classes.

    venv/bin/python bench/stack_scale.py              # 10, 50, 200, 500 counties, 3 repeats each
    venv/bin/python bench/stack_scale.py 10 50 --repeats 1

This is a benchmark, not a test: it prints figures and asserts nothing.
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
    restore drill suspended (its cadence is refused for hundreds of counties); the objects are the same."""
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
    }


def _warm_imports() -> None:
    """Import the SDKs before timing, in every measurement: import time is not evaluation time.

    pulumi_kubernetes and pulumi_command load their API modules lazily, on first use; the ones the program
    uses are imported here too, or the program would pay ~0.7 s of SDK imports the floor never does.
    Our own modules (config, components, pydantic models) are still imported inside the timed run.
    """
    import importlib

    import pulumi_command  # noqa: F401
    import pulumi_kubernetes  # noqa: F401
    import pulumi_random  # noqa: F401
    import pulumi_tls  # noqa: F401
    import pulumi_vsphere  # noqa: F401

    for module in SDK_MODULES:
        importlib.import_module(module)


SDK_MODULES = [
    "pulumi_command.remote",
    *(f"pulumi_kubernetes.{m}" for m in ("apiextensions", "apps.v1", "core.v1", "helm.v3", "helm.v4", "meta.v1",
                                         "networking.v1", "rbac.v1", "storage.v1", "yaml.v2")),
]


def measure_program(counties: int) -> dict:
    from offline import plan

    _warm_imports()
    start = time.perf_counter()
    evaluation, _ = plan.run("prod", overrides=scaled_overrides(counties))
    seconds = time.perf_counter() - start
    replay = [
        {
            "type": r.type, "name": r.name, "custom": r.custom, "inputs": r.inputs,
            # For the structured floor only: the tree, providers, dependencies and options as registered.
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
    (ROOT / "build").mkdir(exist_ok=True)
    (ROOT / "build" / f"bench-replay-{counties}.json").write_text(json.dumps(replay, default=str))
    return {"seconds": seconds, "resources": len(evaluation.registrations)}


def measure_floor(counties: int, tuned: bool = False) -> dict:
    """The headline floor: the same resources with the same inputs, bare and flat.

    `tuned`: with the program's own interpreter settings (tuning.py), so the ratio shows our code's cost
    apart from the GC setting the program brings.
    """
    import pulumi

    from offline import engine

    replay = json.loads((ROOT / "build" / f"bench-replay-{counties}.json").read_text())
    _warm_imports()
    if tuned:
        import tuning

        tuning.apply()

    def bare():
        for r in replay:
            if r["custom"]:
                pulumi.CustomResource(r["type"], r["name"], dict(r["inputs"]))
            else:
                pulumi.ComponentResource(r["type"], r["name"])

    start = time.perf_counter()
    engine.record(bare, stack="floor")
    return {"seconds": time.perf_counter() - start, "resources": len(replay)}


def measure_structured(counties: int, sdk_classes: bool = False) -> dict:
    """A second floor: the same bare resources, also with the program's parents, providers, depends_on and options.

    What it adds over the flat floor is what the component tree and its wiring cost the SDK by themselves.
    It still uses no typed SDK classes (pulumi_kubernetes.apps.v1.Deployment, ...), no Outputs between
    resources and no render functions. With `sdk_classes`, the Kubernetes and random resources (all of a
    county's) are made through their SDK classes instead, with the same inputs: the third floor.
    """
    import pulumi

    from offline import engine

    replay = json.loads((ROOT / "build" / f"bench-replay-{counties}.json").read_text())
    _warm_imports()
    import tuning

    tuning.apply()  # as the program, so `vs struct` and `vs sdk` compare like with like

    def structured():
        made: dict[str, pulumi.Resource] = {}
        for r in replay:
            opts = pulumi.ResourceOptions(
                parent=made.get(r["parent"]),
                provider=made.get(r["provider"]) if r["provider"] else None,
                # A dependency registered later than its dependent (a remote component's) cannot be replayed.
                depends_on=[made[urn] for urn in r["depends_on"] if urn in made] or None,
                **r["options"],
            )
            sdk_class = _sdk_class(r["type"]) if sdk_classes else None
            if sdk_class:
                made[r["urn"]] = sdk_class(r["name"], opts=opts, **_sdk_kwargs(r))
            elif r["type"].startswith("pulumi:providers:"):
                made[r["urn"]] = pulumi.ProviderResource(r["type"].split(":")[-1], r["name"], dict(r["inputs"]), opts)
            elif r["custom"]:
                made[r["urn"]] = pulumi.CustomResource(r["type"], r["name"], dict(r["inputs"]), opts)
            else:
                made[r["urn"]] = pulumi.ComponentResource(r["type"], r["name"], None, opts)

    # The program's stack name, so that replayed URNs (parents, providers, dependencies) match the recorded ones.
    start = time.perf_counter()
    engine.record(structured, stack="prod")
    return {"seconds": time.perf_counter() - start, "resources": len(replay)}


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


def _sdk_kwargs(r: dict) -> dict:
    """Recorded (engine, camelCase) top-level inputs as the SDK class's keyword arguments."""
    import re

    typed_k8s = r["type"].split(":")[1] in _K8S_MODULES  # these classes set apiVersion and kind themselves
    return {
        re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower(): value
        for key, value in r["inputs"].items()
        if not (typed_k8s and key in ("apiVersion", "kind"))
    }


def measure_sdk_classes(counties: int) -> dict:
    return measure_structured(counties, sdk_classes=True)


def measure_tuned_floor(counties: int) -> dict:
    return measure_floor(counties, tuned=True)


MEASURES = {
    "program": measure_program,
    "floor": measure_floor,
    "tuned": measure_tuned_floor,
    "structured": measure_structured,
    "sdk": measure_sdk_classes,
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

    print(f"{'counties':>8} {'resources':>9} {'program s':>10} {'floor s':>8} {'ratio':>6} "
          f"{'ms/county':>9} {'program MB':>10} {'floor MB':>9} {'tuned s':>8} {'vs tuned':>8} "
          f"{'struct s':>9} {'vs struct':>9} {'sdk s':>6} {'vs sdk':>6}")
    for counties in args.sizes:
        runs = []
        for _ in range(args.repeats):
            # Side by side in the same run; the program first, as it writes the replay the floors use.
            runs.append({kind: _child(kind, counties) for kind in MEASURES})
        best = {kind: min((run[kind] for run in runs), key=lambda f: f["seconds"]) for kind in MEASURES}
        program, floor, structured, sdk = best["program"], best["floor"], best["structured"], best["sdk"]
        tuned = best["tuned"]
        print(
            f"{counties:>8} {program['resources']:>9} {program['seconds']:>10.2f} {floor['seconds']:>8.2f} "
            f"{program['seconds'] / floor['seconds']:>5.2f}x {1000 * program['seconds'] / counties:>9.1f} "
            f"{program['peak_mb']:>10.0f} {floor['peak_mb']:>9.0f} {tuned['seconds']:>8.2f} "
            f"{program['seconds'] / tuned['seconds']:>7.2f}x {structured['seconds']:>9.2f} "
            f"{program['seconds'] / structured['seconds']:>8.2f}x {sdk['seconds']:>6.2f} "
            f"{program['seconds'] / sdk['seconds']:>5.2f}x"
        )


if __name__ == "__main__":
    main()
