"""Every registration of the prod and national stacks (and prod scaled to `--counties`), in full, as JSON files.

For a change that must not change what is registered (a speed-up): write the files before and after it and
compare them byte for byte. Each file holds every field the mock engine recorded of every resource (type,
name, URN, parent, inputs and which are secret, options, provider, dependencies, aliases; sorted by URN,
dependencies as a sorted set), the stack outputs, warnings and the plan's notes.

    venv/bin/python bench/registrations.py build/registrations-before    # then change, then:
    venv/bin/python bench/registrations.py build/registrations-after && diff -r build/registrations-{before,after}
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def dump(evaluation, notes: list[str]) -> str:
    registrations = []
    for r in sorted(evaluation.registrations, key=lambda r: r.urn):
        entry = dataclasses.asdict(r)
        entry["secret_inputs"] = sorted(r.secret_inputs)
        entry["depends_on"] = sorted(r.depends_on)  # the engine gets a set; the order follows timing
        registrations.append(entry)
    return json.dumps(
        {
            "registrations": registrations,
            "outputs": evaluation.outputs,
            "secret_outputs": sorted(evaluation.secret_outputs),
            "warnings": sorted(evaluation.warnings),
            "notes": notes,
        },
        indent=1, sort_keys=True, default=str,
    ) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="folder to write <stack>.json files to")
    parser.add_argument("--counties", type=int, default=200, help="also prod scaled to this many counties (0: not)")
    args = parser.parse_args()

    from stack_scale import scaled_overrides

    from offline import plan

    runs = {"prod": {}, "national": {"stack_dir": ROOT / "tests" / "stacks"}}
    if args.counties:
        runs[f"prod-{args.counties}"] = {"overrides": scaled_overrides(args.counties)}
    args.out.mkdir(parents=True, exist_ok=True)
    for name, options in runs.items():
        evaluation, notes = plan.run(name.split("-")[0], **options)
        (args.out / f"{name}.json").write_text(dump(evaluation, notes))
        print(f"{name}: {len(evaluation.registrations)} registrations -> {args.out / f'{name}.json'}")


if __name__ == "__main__":
    main()
