"""Benchmark: evaluation of the prod stack for 10, 50, 200 and 500 counties on the mock engine.

Each size is measured against the SDK floor in the same run: the same number of bare resources with the
same inputs, registered flat (no components, no config, no render functions). The ratio says what our
program costs on top of what Pulumi itself costs for that many resources; the goal is <= 1.3x and linear
in counties. Each measurement runs in its own process so peak memory (max RSS) is its own.

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
    """Prod with `counties` default counties and enough agents that the capacity check passes."""
    import yaml

    prod = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())["config"]
    agents = dict(prod["cht-hosting:agents"])
    needed = max(9, counties * 4 // 47 + 2)
    agents["nodes"] = {f"agent-{i}": f"10.20.{1 + i // 250}.{i % 250 + 1}" for i in range(1, needed + 1)}
    network = dict(prod["cht-hosting:network"], cidr="10.20.0.0/16")
    return {
        "cht-hosting:network": network,
        "cht-hosting:agents": agents,
        "cht-hosting:counties": {f"county-{i:03d}": {} for i in range(counties)},
    }


def _warm_imports() -> None:
    """Import the SDKs before timing, in both measurements: import time is not evaluation time."""
    import pulumi_command  # noqa: F401
    import pulumi_kubernetes  # noqa: F401
    import pulumi_random  # noqa: F401
    import pulumi_tls  # noqa: F401
    import pulumi_vsphere  # noqa: F401


def measure_program(counties: int) -> dict:
    from offline import plan

    _warm_imports()
    start = time.perf_counter()
    evaluation, _ = plan.run("prod", overrides=scaled_overrides(counties))
    seconds = time.perf_counter() - start
    replay = [{"type": r.type, "name": r.name, "custom": r.custom, "inputs": r.inputs} for r in evaluation.registrations]
    (ROOT / "build").mkdir(exist_ok=True)
    (ROOT / "build" / f"bench-replay-{counties}.json").write_text(json.dumps(replay, default=str))
    return {"seconds": seconds, "resources": len(evaluation.registrations)}


def measure_floor(counties: int) -> dict:
    import pulumi

    from offline import engine

    replay = json.loads((ROOT / "build" / f"bench-replay-{counties}.json").read_text())
    _warm_imports()

    def bare():
        for r in replay:
            if r["custom"]:
                pulumi.CustomResource(r["type"], r["name"], dict(r["inputs"]))
            else:
                pulumi.ComponentResource(r["type"], r["name"])

    start = time.perf_counter()
    engine.record(bare, stack="floor")
    return {"seconds": time.perf_counter() - start, "resources": len(replay)}


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
        figures = measure_program(counties) if kind == "program" else measure_floor(counties)
        figures["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(figures))
        return

    print(f"{'counties':>8} {'resources':>9} {'program s':>10} {'floor s':>8} {'ratio':>6} "
          f"{'ms/county':>9} {'program MB':>10} {'floor MB':>9}")
    for counties in args.sizes:
        runs = []
        for _ in range(args.repeats):
            program = _child("program", counties)
            floor = _child("floor", counties)  # same run, side by side
            runs.append((program, floor))
        program = min((p for p, _ in runs), key=lambda p: p["seconds"])
        floor = min((f for _, f in runs), key=lambda f: f["seconds"])
        print(
            f"{counties:>8} {program['resources']:>9} {program['seconds']:>10.2f} {floor['seconds']:>8.2f} "
            f"{program['seconds'] / floor['seconds']:>5.2f}x {1000 * program['seconds'] / counties:>9.1f} "
            f"{program['peak_mb']:>10.0f} {floor['peak_mb']:>9.0f}"
        )


if __name__ == "__main__":
    main()
