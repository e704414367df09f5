"""The offline plan: what `pulumi up` would create for a stack, without vCenter, a cluster or the CLI.

    python -m offline.plan prod                 # print the plan
    python -m offline.plan prod --out build/prod  # also write what a reviewer diffs between branches
    python -m offline.plan prod --deployed prod-outputs.json  # check against production
                                                 # (the file: `pulumi stack output --json`)

Exit codes: 0 planned, 2 the stack config is invalid (every problem is printed), 1 anything else.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import yaml

from config.names import PROJECT, decode_guestinfo

from . import engine, stackfile
from .engine import Evaluation, ProgramFailed

K8S_PREFIX = "kubernetes:"
COMMAND_TYPES = ("command:remote:Command", "command:local:Command")
VM_TYPE = "vsphere:index/virtualMachine:VirtualMachine"


def run(
    stack: str, overrides: dict | None = None, stack_dir: Path = engine.ROOT, deployed: dict | None = None
) -> tuple[Evaluation, list[str]]:
    """Evaluate a stack file; returns the evaluation and notes about placeholders used.

    `deployed`: the stack's outputs as `pulumi stack output --json` prints them (what production runs), so
    the edits the guards refuse show; without it the plan is a first update.
    """
    if str(engine.ROOT) not in sys.path:
        sys.path.insert(0, str(engine.ROOT))
    from config.validate import required_secrets

    file = stackfile.load(stack, root=stack_dir, overrides=overrides)
    config, secret_keys, notes = dict(file.config), list(file.secret_keys), []
    for key in required_secrets(stackfile.raw(file)[0]):
        full = f"{PROJECT}:{key}"
        if full not in config:
            config[full] = stackfile.PLACEHOLDER
            secret_keys.append(full)
            notes.append(f"{full} is not set in {file.path.name}; a placeholder stands in (set it before `pulumi up`)")
    return engine.evaluate(stack, config, secret_keys, stack_outputs=deployed), notes


# --- the printed report --------------------------------------------------------------------------------


def report(evaluation: Evaluation, notes: list[str]) -> str:
    lines = [
        f"Offline plan of stack '{evaluation.stack}' (Pulumi.{evaluation.stack}.yaml), evaluated on Pulumi's mock "
        "engine: no vCenter, cluster or Pulumi CLI was used.",
        "",
    ]
    problems = notes + evaluation.warnings
    if problems:
        lines += ["Warnings:", *(f"  - {w}" for w in problems), ""]
    lines += [f"`pulumi up` would create {len(evaluation.registrations)} resources.", "", "Component tree:"]
    lines += _tree(evaluation)
    path = evaluation.critical_path()
    if path:
        lines += [
            "",
            f"Critical path ({len(path)} resources that wait on each other; everything else runs beside it):",
            "  " + " -> ".join(r.name for r in path),
        ]
    lines += ["", "Resources by type:"]
    lines += [f"  {count:5d}  {type_}" for type_, count in sorted(evaluation.type_counts().items())]
    counties = evaluation.outputs.get("counties") or {}
    lines += ["", f"Counties ({len(counties)}):"]
    width = max((len(name) for name in counties), default=0)
    for name, county in counties.items():
        lines.append(
            f"  {name:<{width}}  {county['url']}  CHT {county['version']}  "
            f"CouchDB x{county['couchdbNodes']} ({county['couchdbStorageGb']} GB each)  "
            f"budget {county['cpu']:g} CPU / {county['memoryGb']:g} GB"
        )
    lines += _control_plane_lines(evaluation.outputs.get("controlPlane"))
    lines += _backup_lines(evaluation.outputs.get("backup"))
    if evaluation.outputs.get("vcenterTls"):
        lines += ["", "vCenter TLS (the program's own connection):", "  " + evaluation.outputs["vcenterTls"]]
    if evaluation.outputs.get("capacityReport"):
        lines += ["", "Capacity (the counties' budgets against the agents):", evaluation.outputs["capacityReport"]]
    lines += _monitoring(evaluation.outputs)
    return evaluation.redact("\n".join(lines))


def _control_plane_lines(control_plane: dict | None) -> list[str]:
    if not control_plane:
        return []
    encryption = "on" if control_plane["secretsEncryption"] else "OFF (see the README to turn it on)"
    return [
        "",
        f"Control plane: secrets encryption {encryption}; agents join with their own token (agent-token), "
        f"not the server token; etcd snapshots: {control_plane['etcdSnapshots']}.",
    ]


def _backup_lines(backup: dict | None) -> list[str]:
    """Where backups go, when, for how long, the drill, and the storage they need."""
    if not backup:
        return ["", "Backups: none (cht-hosting:backup is not set): nothing leaves the cluster's own datastore."]
    storage = backup["storage"]
    lines = ["", f"Backups to {storage['endpoint']}, bucket {storage['bucket']} (keys: Pulumi secrets only):"]
    etcd = backup.get("etcdSnapshots")
    if etcd:
        lines.append(
            f"  etcd snapshots: every server, cron '{etcd['schedule']}', {etcd['retention']} kept, "
            f"folder {etcd['folder']}/"
        )
    counties = backup["counties"]
    velero = backup["velero"]
    lines.append(
        f"  counties: Velero (chart {velero['chart']}, namespace {velero['namespace']}), one Schedule each, "
        f"folder {velero['prefix']}/; objects, credentials and every CouchDB volume (kopia)"
    )
    width = max((len(n) for n in counties), default=0)
    for name, c in counties.items():
        lines.append(
            f"    {name:<{width}}  {c['schedule']}  cron '{c['cron']}'  kept {c['retentionDays']} days  "
            f"{c['couchdbVolumes']} volume{'s' if c['couchdbVolumes'] != 1 else ''}"
            f"{'  drilled' if c['drilled'] else ''}"
        )
    drill = backup["drill"]
    lines.append(
        f"  restore drill: CronJob {drill['cronJob']} in {drill['namespace']}, cron '{drill['schedule']}'"
        f"{'' if drill['enabled'] else ' (suspended)'}, one county per run into {drill['scratchNamespace']}; "
        f"results in ConfigMap {drill['results']}"
    )
    lines += ["", "Backup storage estimate:", backup["estimate"]]
    return lines


def _monitoring(outputs: dict) -> list[str]:
    """What is watched and where alerts go (the `monitoring` and `watchdogTargets` outputs)."""
    lines: list[str] = []
    targets = outputs.get("watchdogTargets")
    if targets is not None:
        count = sum(1 for line in targets.splitlines() if line.startswith("- "))
        lines += ["", f"Watchdog targets (`pulumi stack output watchdogTargets > cht-instances.yml`): {count} counties"]
    monitoring = outputs.get("monitoring")
    if not monitoring:
        lines.append("Monitoring on the cluster: off (monitoring.enabled)")
        return lines
    charts = ", ".join(f"{chart} {version}" for chart, version in monitoring["charts"].items())
    lines += [
        f"Monitoring on the cluster (namespace {monitoring['namespace']}; {charts}):",
        f"  scraped: all {len(monitoring['scrapes'])} counties' /api/v2/monitoring (and express metrics), "
        "the nodes' kubelets, node-exporter, kube-state-metrics, the k3s API servers (supervisor metrics)"
        + (f", Velero (namespace {monitoring['velero']})" if monitoring.get("velero") else ""),
        f"  alerts: {', '.join(monitoring['alerts'])}",
        f"  per county: {', '.join(monitoring['countyAlerts'])}",
        f"  alerts go to: {'; '.join(monitoring['routes'])}",
    ]
    return lines


def _tree(evaluation: Evaluation) -> list[str]:
    """Components indented under their parents, each with a count of the resources it holds directly."""
    children = defaultdict(list)
    for r in evaluation.registrations:
        children[r.parent].append(r)
    lines: list[str] = []

    def walk(parent_urn: str, depth: int) -> None:
        # Registration order varies from run to run; sort so two plans of the same config are identical.
        for r in sorted(children[parent_urn], key=lambda c: (c.type, c.name)):
            if r.custom:
                continue
            direct = sum(1 for c in children[r.urn] if c.custom)
            # A remote component (a manifest the provider fetches and expands at deploy time) shows its source.
            source = f" (expanded at deploy time from {r.inputs['file']})" if "file" in r.inputs else ""
            lines.append(f"  {'  ' * depth}{r.type} {r.name}{source or f' ({direct} resources)'}")
            walk(r.urn, depth + 1)

    roots = {r.parent for r in evaluation.registrations if r.parent not in evaluation.by_urn}
    for root in sorted(roots):
        top_level = sum(1 for c in children[root] if c.custom)
        if top_level:
            lines.append(f"  (stack) ({top_level} resources)")
        walk(root, 0)
    return lines


# --- the review folder ---------------------------------------------------------------------------------


def write_review_folder(evaluation: Evaluation, out: Path) -> list[Path]:
    """Manifests per namespace, each node's cloud-init, every remote script and the outputs; secrets redacted."""
    files: dict[Path, str] = {}
    manifests: dict[str, list[dict]] = defaultdict(list)
    for r in evaluation.registrations:
        if r.type.startswith(K8S_PREFIX) and r.custom and "kind" in r.inputs:
            metadata = r.inputs.get("metadata") or {}
            namespace = metadata.get("namespace") or (
                metadata.get("name") if r.inputs["kind"] == "Namespace" else "_cluster"
            )
            manifests[namespace].append(_public(r))
        elif r.type == "kubernetes:helm.sh/v3:Release":
            files[Path("helm") / f"{r.name}.yaml"] = _yaml(_public(r))
        elif r.type in COMMAND_TYPES:
            script = [f"# {r.type} {r.name}"]
            for phase in ("create", "update", "delete"):
                if r.inputs.get(phase):
                    script += [f"# --- {phase} ---", r.inputs[phase]]
            files[Path("scripts") / f"{r.name}.sh"] = "\n".join(script) + "\n"
        elif r.type == VM_TYPE:
            extra = r.inputs.get("extraConfig") or {}
            for part in ("userdata", "metadata", "vendordata"):
                if f"guestinfo.{part}" in extra:
                    encoding = extra.get(f"guestinfo.{part}.encoding", "")
                    files[Path("nodes") / r.name / f"{part}.yaml"] = decode_guestinfo(extra[f"guestinfo.{part}"], encoding)
            vm = {k: v for k, v in r.inputs.items() if k != "extraConfig"}
            files[Path("nodes") / r.name / "vm.yaml"] = _yaml(vm)
    for namespace, docs in manifests.items():
        docs.sort(key=lambda d: (d["kind"], (d.get("metadata") or {}).get("name", "")))
        files[Path("manifests") / f"{namespace}.yaml"] = yaml.safe_dump_all(docs, sort_keys=True)
    for script, text in (evaluation.outputs.get("restoreScripts") or {}).items():
        files[Path("restore") / script] = text
    files[Path("outputs.json")] = engine.to_json(evaluation.outputs) + "\n"
    files[Path("plan.txt")] = report(evaluation, [])

    written = []
    for relative, text in sorted(files.items()):
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(evaluation.redact(text))
        written.append(path)
    return written


def _public(r) -> dict:
    """A registration's inputs with every leaf of a secret input replaced (keys kept, so a reviewer still sees
    which entries a Secret has): a value derived from a secret (an ini file holding keys, YAML-escaped text)
    is not a substring that redaction by value would find."""

    def hide(value):
        if isinstance(value, dict):
            return {k: hide(v) for k, v in value.items()}
        if isinstance(value, list):
            return [hide(v) for v in value]
        return engine.REDACTED

    return {k: (hide(v) if k in r.secret_inputs else v) for k, v in r.inputs.items()}


def _yaml(value) -> str:
    return yaml.safe_dump(value, sort_keys=True, default_flow_style=False)


# --- command line ------------------------------------------------------------------------------------------


def _deployed_outputs(path: Path) -> dict:
    try:
        outputs = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise stackfile.StackFileError(f"--deployed {path}: not readable as JSON ({error})") from None
    if not isinstance(outputs, dict):
        raise stackfile.StackFileError(
            f"--deployed {path}: is not the JSON object `pulumi stack output --json` prints"
        )
    return outputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m offline.plan", description=__doc__.split("\n")[0])
    parser.add_argument("stack", help=f"stack name ({', '.join(stackfile.available_stacks()) or 'none found'})")
    parser.add_argument("--out", type=Path, help="folder to write manifests, cloud-init and scripts to")
    parser.add_argument(
        "--stack-dir", type=Path, default=engine.ROOT, help="folder holding Pulumi.<stack>.yaml (default: the project)"
    )
    parser.add_argument(
        "--deployed",
        type=Path,
        help="the stack's outputs as `pulumi stack output --json` prints them: check the config against what "
        "is deployed (default: a first update)",
    )
    args = parser.parse_args(argv)
    try:
        deployed = _deployed_outputs(args.deployed) if args.deployed else None
        evaluation, notes = run(args.stack, stack_dir=args.stack_dir, deployed=deployed)
    except stackfile.StackFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ProgramFailed as failure:
        print(failure.message, file=sys.stderr)
        if failure.registered:
            print(f"(after {failure.registered} resources were registered)", file=sys.stderr)
        return 2
    print(report(evaluation, notes))
    if args.out:
        written = write_review_folder(evaluation, args.out)
        print(f"\nWrote {len(written)} files to {args.out}/ (secrets redacted).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
