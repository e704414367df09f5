"""Benchmark: the scale budgets of issue 24, printed as figures and ratios in one run.

For the national example (tests/stacks/Pulumi.national.yaml: 50 counties in one stack, backups and monitoring
on) and the operator's prod deployment (Pulumi.prod.yaml; a platform stack's figures count its county stacks
too), on the mock engine:

- resources per county (components included: Pulumi diffs and stores them too), by type, goal <= 20;
- total resources of the stack, goal <= 1,500;
- resources in the stack a county edit previews, goal <= 500: for the national example, the largest county
  stack of its split (tests/stacks/split/: a platform stack and county stacks, docs/runbooks/move-stacks.md);
  for a split deployment (prod), its largest county stack; for a stack without a split, the whole stack;
- state bytes per county: what a checkpoint keeps per resource (URN, type, parent, provider, dependencies,
  inputs, and the outputs the mock engine answers, which for Kubernetes objects are the inputs plus what
  the provider adds), serialized as JSON; goal: no more than the baseline;
- evaluation time against the SDK floor for the same registrations (bench/stack_scale.py's program and floor,
  the prod stack scaled to `--sizes` counties, fastest of `--repeats`), goal <= 1.3x, and linear in counties
  to 500: the marginal milliseconds and resources per county between consecutive sizes stay flat. Wall time
  and CPU time both; the goal is judged on CPU time, which other work on a shared machine does not inflate.

`--baseline <file>` prints a saved run's figures beside this run's, with the ratios; `--save <file>` writes
this run's figures (bench/baseline.json holds the figures of the commit named in it: the run before the
resource merges of issue 24).

    venv/bin/python bench/budgets.py
    venv/bin/python bench/budgets.py --baseline bench/baseline.json
    venv/bin/python bench/budgets.py --types          # also the per-county inventory by type
    venv/bin/python bench/budgets.py --sizes 50 500 --repeats 3   # evaluation time (default 50 200 500, 3 repeats)
    venv/bin/python bench/budgets.py --sizes              # no evaluation timing

This is a benchmark, not a test: it prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GOALS = {"per_county": 20, "total": 1500, "county_edit": 500, "eval_ratio": 1.3}
STACKS = {"national": ROOT / "tests" / "stacks", "prod": ROOT}


def _county_of(name: str, counties: list[str]) -> str | None:
    """The county a resource belongs to: its name is the county's or starts with `<county>-` (the longest)."""
    found = [c for c in counties if name == c or name.startswith(f"{c}-")]
    return max(found, key=len) if found else None


def measure(stack: str) -> dict:
    """One deployment's figures (and the per-county inventory by type): a single stack's, or for a platform stack
    with county stacks (config/layout.py) the platform's and its county stacks' together."""
    from config import layout
    from offline import engine, plan, stackfile

    states: dict[str, int] = {}
    answer = engine.FakeCloud.answer

    def recording_answer(self, args):
        resource_id, state = answer(self, args)
        states[f"{args.typ}::{args.name}"] = len(json.dumps({"id": resource_id, "outputs": state}, default=str))
        return resource_id, state

    folder = STACKS[stack]
    engine.FakeCloud.answer = recording_answer
    evaluation, _ = plan.run(stack, stack_dir=folder)
    county_stacks = layout.county_stacks(stackfile.raw(stackfile.load(stack, root=folder))[0])
    evaluations = [evaluation] + [
        plan.run(name, stack_dir=folder, references={stack: evaluation.outputs})[0] for name in county_stacks
    ]
    engine.FakeCloud.answer = answer
    counties = sorted({c for name in [stack, *county_stacks]
                       for c in stackfile.raw(stackfile.load(name, root=folder))[0].get("counties") or {}})
    registrations = [r for e in evaluations for r in e.registrations]

    per_county: dict[str, int] = collections.Counter()
    state_bytes: dict[str, int] = collections.Counter()
    types: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in registrations:
        county = _county_of(r.name, counties)
        if county is None:
            continue
        entry = {"urn": r.urn, "type": r.type, "parent": r.parent, "provider": r.provider,
                 "dependencies": list(r.depends_on), "inputs": r.inputs, "custom": r.custom}
        size = len(json.dumps(entry, default=str)) + states.get(f"{r.type}::{r.name}", 0)
        per_county[county] += 1
        state_bytes[county] += size
        types[county][r.type] += 1
    counts = sorted(per_county.values())
    typical = collections.Counter(counts).most_common(1)[0][0]
    example = next(c for c in counties if per_county[c] == typical)
    if county_stacks:
        sizes = {e.stack: len(e.registrations) for e in evaluations[1:]}
        edit = {"layout": f"split: largest of {len(sizes)} county stacks", "resources": max(sizes.values()),
                "platform": len(evaluation.registrations), "stacks": sizes}
    else:
        edit = county_stack_size(evaluation, stack)
    return {
        "stack": stack,
        "counties": len(counties),
        "total": len(registrations),
        "per_county_typical": typical,
        "per_county_max": counts[-1],
        "per_county_mean": sum(counts) / len(counts),
        "state_bytes_per_county": sum(state_bytes.values()) / len(counties),
        "state_bytes_typical": state_bytes[example],
        "county_edit": edit,
        "types": dict(sorted(types[example].items())),
        "example": example,
    }


# The national example as one stack (tests/stacks/Pulumi.national.yaml) has its split beside it
# (tests/stacks/split/, docs/runbooks/move-stacks.md): what a county edit previews there is the county stack
# that holds the county.
SPLIT = {"national": (ROOT / "tests" / "stacks" / "split", "nation")}


def county_stack_size(evaluation, stack: str) -> dict:
    """What `pulumi preview` of a one-county edit diffs: the stack that holds the county (the largest county
    stack of the split example; the whole stack where there is no split)."""
    if stack not in SPLIT:
        return {"layout": "single stack", "resources": len(evaluation.registrations)}
    from offline import plan, stackfile

    folder, platform = SPLIT[stack]
    platform_plan, _ = plan.run(platform, stack_dir=folder)
    county_stacks = stackfile.raw(stackfile.load(platform, root=folder))[0]["stacks"]["counties"]
    sizes = {
        name: len(plan.run(name, stack_dir=folder, references={platform: platform_plan.outputs})[0].registrations)
        for name in county_stacks
    }
    return {
        "layout": f"split: largest of {len(sizes)} county stacks",
        "resources": max(sizes.values()),
        "platform": len(platform_plan.registrations),
        "stacks": sizes,
    }


def evaluation_times(sizes: list[int], repeats: int) -> dict:
    """Program and SDK floor per size (bench/stack_scale.py, each in its own process), the fastest run."""
    sys.path.insert(0, str(ROOT / "bench"))
    import stack_scale

    figures = {}
    for counties in sizes:
        runs = [{kind: stack_scale._child(kind, counties) for kind in ("program", "floor")} for _ in range(repeats)]
        best = {kind: min((run[kind] for run in runs), key=lambda f: f["seconds"]) for kind in ("program", "floor")}
        cpu = {kind: min(run[kind]["cpu"] for run in runs) for kind in ("program", "floor")}
        figures[str(counties)] = {
            "resources": best["program"]["resources"],
            "program_s": best["program"]["seconds"],
            "floor_s": best["floor"]["seconds"],
            "ratio": best["program"]["seconds"] / best["floor"]["seconds"],
            "program_cpu_s": cpu["program"],
            "floor_cpu_s": cpu["floor"],
            "cpu_ratio": cpu["program"] / cpu["floor"],
        }
    return figures


def report_times(times: dict, baseline: dict | None) -> None:
    was_all = (baseline or {}).get("evaluation") or {}
    load = os.getloadavg()[0]
    print("== evaluation of the prod stack scaled to N counties: program vs the SDK floor (the same registrations, bare)")
    print(f"   (load average {load:.1f} on {os.cpu_count()} cores: the wall-time ratio counts waits for a core; "
          "the goal is judged on CPU time)")
    head = (f"{'counties':>8} {'resources':>9} {'program s':>10} {'floor s':>8} {'ratio':>6} {'cpu s':>7} "
            f"{'floor cpu':>9} {'cpu ratio':>9} {'goal':>5} {'cpu ms/county*':>14} {'res/county*':>11}")
    if was_all:
        head += f" {'base ratio':>10} {'base res':>8}"
    print(head)
    previous = None
    for size, now in times.items():
        counties = int(size)
        marginal = (
            (1000 * (now["program_cpu_s"] - previous[1]["program_cpu_s"]) / (counties - previous[0]),
             (now["resources"] - previous[1]["resources"]) / (counties - previous[0]))
            if previous else (None, None)
        )
        row = (f"{counties:>8} {now['resources']:>9,} {now['program_s']:>10.2f} {now['floor_s']:>8.2f} {now['ratio']:>5.2f}x "
               f"{now['program_cpu_s']:>7.2f} {now['floor_cpu_s']:>9.2f} {now['cpu_ratio']:>8.2f}x "
               f"{'ok' if now['cpu_ratio'] <= GOALS['eval_ratio'] else 'OVER':>5} "
               f"{'' if marginal[0] is None else f'{marginal[0]:.1f}':>14} {'' if marginal[1] is None else f'{marginal[1]:.1f}':>11}")
        was = was_all.get(size)
        if was_all:
            row += f" {was['ratio']:>9.2f}x {was['resources']:>8,}" if was else f" {'-':>10} {'-':>8}"
        print(row)
        previous = (counties, now)
    print("  * marginal, from the size above: flat from size to size means linear in counties.")
    print()


def _row(label: str, now: float, goal: float | None = None, base: float | None = None, fmt: str = "{:,.0f}") -> str:
    cells = [f"{label:<44}", f"{fmt.format(now):>10}"]
    cells.append(f"{('<= ' + fmt.format(goal)) if goal is not None else '':>10}")
    cells.append(f"{('ok' if now <= goal else 'OVER') if goal is not None else '':>5}")
    if base is not None:
        cells.append(f"{fmt.format(base):>10}")
        cells.append(f"{now / base:>7.2f}x" if base else f"{'':>8}")
    return " ".join(cells)


def report(figures: dict, baseline: dict | None, types: bool) -> None:
    base = baseline or {}
    head = f"{'':<44} {'now':>10} {'goal':>10} {'':>5}"
    if baseline:
        head += f" {'baseline':>10} {'ratio':>8}"
    for stack, now in figures.items():
        was = base.get(stack)
        print(f"== {stack}: {now['counties']} counties" + (f" (baseline: {baseline.get('commit', '?')})" if was else ""))
        print(head)
        print(_row("resources per county (typical)", now["per_county_typical"], GOALS["per_county"],
                   was and was["per_county_typical"]))
        print(_row("resources per county (largest)", now["per_county_max"], None, was and was["per_county_max"]))
        print(_row("total resources", now["total"], GOALS["total"], was and was["total"]))
        edit = now["county_edit"]
        print(_row("resources a county edit previews", edit["resources"], GOALS["county_edit"],
                   was and was["county_edit"]["resources"]))
        print(f"   ({edit['layout']}" + (f"; platform stack {edit['platform']:,}; county stacks "
              + ", ".join(f"{n} {c}" for n, c in sorted(edit["stacks"].items())) if "stacks" in edit else "") + ")")
        print(_row("state bytes per county (mean)", now["state_bytes_per_county"],
                   was and was["state_bytes_per_county"], was and was["state_bytes_per_county"]))
        print(_row("state bytes per county (typical)", now["state_bytes_typical"],
                   was and was["state_bytes_typical"], was and was["state_bytes_typical"]))
        if types:
            print(f"   a typical county ({now['example']}), by type:")
            for type_, count in now["types"].items():
                before = (was or {}).get("types", {}).get(type_, 0) if was else None
                print(f"     {count:>3}" + (f" (was {before})" if was else "") + f"  {type_}")
            if was:
                for type_, before in was["types"].items():
                    if type_ not in now["types"]:
                        print(f"       0 (was {before})  {type_}")
        print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("stacks", nargs="*", default=["national", "prod"], help="national and/or prod")
    parser.add_argument("--baseline", type=Path, help="a saved run (--save) to print beside this one")
    parser.add_argument("--save", type=Path, help="write this run's figures here")
    parser.add_argument("--types", action="store_true", help="print a typical county's resources by type")
    parser.add_argument("--sizes", nargs="*", type=int, default=[50, 200, 500],
                        help="counties to time the evaluation at (none: skip the timing)")
    parser.add_argument("--repeats", type=int, default=3, help="take the fastest of this many timing runs")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child)))
        return
    figures = {}
    for stack in args.stacks:
        # Each stack in its own process: a program evaluation leaves SDK state behind.
        result = subprocess.run([sys.executable, __file__, "--child", stack], capture_output=True, text=True, cwd=ROOT)
        if result.returncode != 0:
            sys.exit(f"{stack} failed:\n{result.stderr}")
        figures[stack] = json.loads(result.stdout.strip().splitlines()[-1])
    baseline = json.loads(args.baseline.read_text()) if args.baseline else None
    report(figures, baseline, args.types)
    times = evaluation_times(args.sizes, args.repeats) if args.sizes else {}
    if times:
        report_times(times, baseline)
    if args.save:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
        saved = {"commit": commit.stdout.strip(), **figures, **({"evaluation": times} if times else {})}
        args.save.write_text(json.dumps(saved, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
