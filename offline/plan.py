"""The offline plan: what `pulumi up` would create for a stack, without vCenter, a cluster or the CLI.

    python -m offline.plan prod                 # print the plan
    python -m offline.plan prod --out build/prod  # also write what a reviewer diffs between branches
    python -m offline.plan prod --deployed prod-outputs.json  # against production: what changes, first
                                                 # (the file: `pulumi stack output --json`)
    python -m offline.plan prod --verbose        # also the full component tree and per-county listings
    python -m offline.plan prod-counties-a --reference prod=prod-outputs.json  # a county stack on what its
                                                 # platform stack deployed (default: the platform's offline plan)
    python -m offline.plan prod --healthy-alerts  # also: how many alerts a healthy cluster would fire
    python -m offline.plan prod --county-stacks --out build/plan-prod  # a platform stack and then each of its
                                                 # county stacks on it (build/plan-prod/prod-counties-a/, ...)

The printed report is a sequence of named sections (`SECTIONS`); the change summary comes from `changes.py`.

Exit codes: 0 planned, 2 the stack config is invalid or an edit is refused (every problem is printed),
1 anything else.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from config import layout
from config.names import PROJECT, decode_guestinfo

from . import changes, engine, stackfile
from .engine import Evaluation, ProgramFailed

K8S_PREFIX = "kubernetes:"
COMMAND_TYPES = ("command:remote:Command", "command:local:Command")
VM_TYPE = "vsphere:index/virtualMachine:VirtualMachine"


def run(
    stack: str,
    overrides: dict | None = None,
    stack_dir: Path = engine.ROOT,
    deployed: dict | None = None,
    references: dict[str, dict] | None = None,
) -> tuple[Evaluation, list[str]]:
    """Evaluate a stack file; returns the evaluation and notes about placeholders used.

    `deployed`: the stack's outputs as `pulumi stack output --json` prints them (what production runs), so
    the edits the guards refuse show; without it the plan is a first update. `references`: other stacks of the
    deployment by name, their outputs; a county stack's platform stack, when not given, is planned first and
    its outputs stand in for what it deployed.
    """
    if str(engine.ROOT) not in sys.path:
        sys.path.insert(0, str(engine.ROOT))
    from config.validate import required_secrets

    file = stackfile.load(stack, root=stack_dir, overrides=overrides)
    values = stackfile.raw(file)[0]
    config, secret_keys, notes = dict(file.config), list(file.secret_keys), []
    references = dict(references or {})
    platform = (values.get("stacks") or {}).get("platform") if isinstance(values.get("stacks"), dict) else None
    if (
        isinstance(platform, str) and platform != stack and platform not in references
        and stackfile.stack_path(platform, stack_dir).exists()
    ):
        # This stack stands in the references while its platform is planned: a cycle ends in validation's refusal.
        platform_plan, _ = run(platform, stack_dir=stack_dir, references={**references, stack: {}})
        references[platform] = platform_plan.outputs
        notes.append(f"the platform stack {platform}'s outputs are those of its offline plan (Pulumi.{platform}.yaml)")
    # A county stack's secrets other than its own counties' are the platform's (read from its file).
    for key in required_secrets(values) if not isinstance(platform, str) else ():
        full = f"{PROJECT}:{key}"
        if full not in config:
            config[full] = stackfile.PLACEHOLDER
            secret_keys.append(full)
            notes.append(f"{full} is not set in {file.path.name}; a placeholder stands in (set it before `pulumi up`)")
    with stackfile.reading_stacks_from(stack_dir):
        return engine.evaluate(stack, config, secret_keys, stack_outputs=deployed, references=references), notes


# --- the printed report: named sections, in the order an operator reads them ----------------------------


@dataclass(frozen=True)
class Context:
    """What a section reads: the evaluation, the notes of `run`, the change summary (with a deployed state)
    and whether the full listings were asked for (`--verbose`)."""

    evaluation: Evaluation
    notes: list[str]
    changes: list[str] | None = None
    verbose: bool = False

    @property
    def outputs(self) -> dict:
        return self.evaluation.outputs

    @property
    def counties(self) -> list[str]:
        return list(self.outputs.get("counties") or {})


def _changes(ctx: Context) -> list[str]:
    return ctx.changes or []


def _warnings(ctx: Context) -> list[str]:
    problems = ctx.notes + ctx.evaluation.warnings
    return ["Warnings:", *(f"  - {w}" for w in problems)] if problems else []


def _size(ctx: Context) -> list[str]:
    count = len(ctx.evaluation.registrations)
    if ctx.changes is None:
        return [f"`pulumi up` would create {count} resources."]
    return [f"The program registers {count} resources; what changes is summarized above."]


def _counties(ctx: Context) -> list[str]:
    """The one table of counties: where, what, how big, and how it is backed up."""
    counties = ctx.outputs.get("counties") or {}
    backups = (ctx.outputs.get("backup") or {}).get("counties") or {}
    width = max((len(name) for name in counties), default=0)
    lines = [f"Counties ({len(counties)}):"]
    deployment = _watched(ctx)
    if not counties and deployment:  # a platform stack whose counties are all in its county stacks
        lines = [f"Counties (0 in this stack; the deployment's {deployment} are in its county stacks, each planned on "
                 "its own: `make plan` plans them after this stack)."]
    for name, county in counties.items():
        backup = backups.get(name)
        kept = f"  backup kept {backup['retentionDays']} days{', drilled' if backup['drilled'] else ''}" if backup else ""
        lines.append(
            f"  {name:<{width}}  {county['url']}  CHT {county['version']}  "
            f"CouchDB x{county['couchdbNodes']} ({county['couchdbStorageGb']} GB each)  "
            f"budget {county['cpu']:g} CPU / {county['memoryGb']:g} GB{kept}"
        )
    return lines


def _control_plane(ctx: Context) -> list[str]:
    control_plane = ctx.outputs.get("controlPlane")
    if not control_plane:
        return []
    encryption = "on" if control_plane["secretsEncryption"] else "OFF (docs/runbooks/secrets-encryption.md turns it on)"
    return [
        f"Control plane: secrets encryption {encryption}; agents join with their own token (agent-token), "
        f"not the server token; etcd snapshots: {control_plane['etcdSnapshots']}."
    ]


def _capacity(ctx: Context) -> list[str]:
    """The capacity check; the per-county quota rows (the county list again) only with --verbose."""
    text = ctx.outputs.get("capacityReport")
    if not text:
        return []
    lines = text.splitlines()
    if not ctx.verbose:
        counties = set(ctx.counties)
        lines = [line for line in lines if not (line.startswith("  ") and line.split()[0] in counties)]
        lines.append("(each county's quota: outputs/capacityReport in the review folder, or --verbose)")
    return ["Capacity (the counties' budgets against the agents):", *lines]


def _backups(ctx: Context) -> list[str]:
    """Where backups go, when, for how long, the drill, and the storage they need."""
    backup = ctx.outputs.get("backup")
    if not backup:
        if ctx.outputs.get("platformStack"):
            return [f"Backups: Velero, the drill and the window are the platform stack's ({ctx.outputs['platformStack']}); "
                    "each county's Schedule is here, with the county."]
        if "backup" in ctx.outputs or ctx.outputs.get("counties"):
            return ["Backups: none (cht-hosting:backup is not set): nothing leaves the cluster's own datastore."]
        return []
    storage = backup["storage"]
    lines = [f"Backups to {storage['endpoint']}, bucket {storage['bucket']} (keys: Pulumi secrets only):"]
    if storage.get("objectLock"):
        lines.append(
            f"  object lock: {storage['objectLock']} (restore/check-bucket.sh asks the store; "
            "docs/backups.md#immutability-object-lock)"
        )
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
    if ctx.verbose:
        width = max((len(n) for n in counties), default=0)
        for name, c in counties.items():
            lines.append(
                f"    {name:<{width}}  {c['schedule']}  cron '{c['cron']}'  kept {c['retentionDays']} days  "
                f"{c['couchdbVolumes']} volume{'s' if c['couchdbVolumes'] != 1 else ''}"
                f"{'  drilled' if c['drilled'] else ''}"
            )
    else:
        crons = sorted({c["cron"] for c in counties.values()})
        lines.append(f"    cron {', '.join(repr(c) for c in crons)}; retention and drilled: the Counties table")
    window = backup.get("window")
    if window:
        lines.append(
            f"  backup window: {window['start']} UTC for {window['hours']} h, about {window['estimatedHours']} h of "
            f"reads one county at a time at {window['readMibPerSecond']:g} MiB/s: "
            + ("fits" if window["fits"] else "DOES NOT FIT (see the warning)")
        )
        if ctx.verbose:
            lines += ["", "Backup window:", window["plan"], ""]
    lines += _drill(backup["drill"])
    if ctx.verbose:
        lines += ["", "Backup storage estimate:", backup["estimate"]]
    else:
        lines.append(
            f"  storage estimate: {backup['estimateTotalGb']} GB in total "
            "(per county: outputs/backup.estimate in the review folder, or --verbose)"
        )
    return lines


def _drill(drill: dict) -> list[str]:
    """The restore drill: its cadence (every county within the bound), what a drill proves, the figures it
    measures per county and their goals."""
    source = (
        "backup.drill.countiesPerRun" if drill["countiesPerRunFromConfig"]
        else f"derived: the fewest that reach every county within {drill['boundDays']} days"
    )
    within = drill["everyCountyWithinDays"]
    return [
        f"  restore drill: CronJob {drill['cronJob']} in {drill['namespace']}, cron '{drill['schedule']}'"
        f"{'' if drill['enabled'] else ' (suspended)'}, into the namespace {drill['scratchNamespace']}",
        f"    {drill['countiesPerRun']} of {drill['countiesDrilled']} counties a run ({source}): every county drilled "
        f"within {f'{within:g}' if within is not None else 'never: the schedule does not fire'} days; a run takes at most "
        f"{drill['runMaxHours']:g} h; failed and interrupted counties go first",
        "    each drill restores a county's newest backup and compares it with the record the backup holds (every "
        "database, its counts and update_seq, design documents, documents by id and rev, attachments): no tolerance",
        f"    restore time (RTO): from the Velero Restore to every CouchDB node answering; goal "
        f"{drill['restoreTimeGoalMinutes']} min (backup.drill.restoreTimeGoalMinutes)",
        f"    recovery point (RPO): how old the restored data is at the restore (its backup's record); goal "
        f"{drill['recoveryPointGoalHours']} h (backup.drill.recoveryPointGoalHours)",
        f"    last figures per county: {drill['results']}; metrics cht_hosting_restore_drill_restore_seconds and "
        "_backup_age_seconds (alerts over the goals, on a failed drill until one passes, and when one is overdue)",
    ]


def _watched(ctx: Context) -> int:
    """How many counties the Watchdog targets list (a platform stack: every county of the deployment)."""
    return sum(1 for line in (ctx.outputs.get("watchdogTargets") or "").splitlines() if line.startswith("- "))


def _monitoring(ctx: Context) -> list[str]:
    """What is watched and where alerts go (the `monitoring` and `watchdogTargets` outputs)."""
    outputs = ctx.outputs
    lines: list[str] = []
    if outputs.get("watchdogTargets") is not None:
        lines += [f"Watchdog targets (`pulumi stack output watchdogTargets > cht-instances.yml`): {_watched(ctx)} counties"]
    monitoring = outputs.get("monitoring")
    if not monitoring and outputs.get("platformStack"):
        lines.append(f"Monitoring on the cluster: the platform stack's ({outputs['platformStack']}); it finds this "
                     "stack's counties by their labels")
        return lines
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
        f"  heartbeat: {monitoring.get('heartbeat', 'nowhere')}",
    ]
    return lines


def _vcenter_tls(ctx: Context) -> list[str]:
    text = ctx.outputs.get("vcenterTls")
    return ["vCenter TLS (the program's own connection):", "  " + text] if text and ctx.verbose else []


def _critical_path(ctx: Context) -> list[str]:
    path = ctx.evaluation.critical_path()
    if not path:
        return []
    return [
        f"Critical path ({len(path)} resources that wait on each other; everything else runs beside it):",
        "  " + " -> ".join(r.name for r in path),
    ]


def _components(ctx: Context) -> list[str]:
    if ctx.verbose:
        return ["Component tree:", *_tree(ctx.evaluation)]
    return ["Components (alike siblings collapsed; the full tree with --verbose):", *_tree(ctx.evaluation, collapse=True)]


def _types(ctx: Context) -> list[str]:
    if not ctx.verbose:
        return []
    counts = ctx.evaluation.type_counts()
    return ["Resources by type:", *(f"  {count:5d}  {type_}" for type_, count in sorted(counts.items()))]


Section = Callable[[Context], list[str]]
# The report, in reading order. An area adds its section here (a function of the Context returning its lines,
# or [] when it has nothing to say); the report puts one blank line between sections.
SECTIONS: tuple[tuple[str, Section], ...] = (
    ("changes", _changes),
    ("warnings", _warnings),
    ("size", _size),
    ("counties", _counties),
    ("control plane", _control_plane),
    ("capacity", _capacity),
    ("backups", _backups),
    ("monitoring", _monitoring),
    ("vcenter tls", _vcenter_tls),
    ("critical path", _critical_path),
    ("components", _components),
    ("resources by type", _types),
)


def report(
    evaluation: Evaluation,
    notes: list[str],
    *,
    deployed: dict | None = None,
    source: str = "--deployed",
    verbose: bool = False,
) -> str:
    """The plan as printed: the change summary first when `deployed` (the stack's outputs) is given."""
    summary = None
    if deployed is not None:
        summary = changes.lines(changes.summarize(deployed, evaluation.outputs, tls_issuers(evaluation)), source)
    ctx = Context(evaluation, notes, summary, verbose)
    lines = [
        f"Offline plan of stack '{evaluation.stack}' (Pulumi.{evaluation.stack}.yaml), evaluated on Pulumi's mock "
        "engine: no vCenter, cluster or Pulumi CLI was used.",
    ]
    for _, section in SECTIONS:
        part = section(ctx)
        if part:
            lines += ["", *part]
    return evaluation.redact("\n".join(lines))


def tls_issuers(evaluation: Evaluation) -> dict[str, str | None]:
    """County namespace -> the cert-manager ClusterIssuer of its Ingress, or None (the operator brings it)."""
    issuers: dict[str, str | None] = {}
    for r in evaluation.registrations:
        if r.custom and r.inputs.get("kind") == "Ingress":
            metadata = r.inputs.get("metadata") or {}
            annotations = metadata.get("annotations") or {}
            issuers[metadata.get("namespace", "")] = annotations.get("cert-manager.io/cluster-issuer")
    return issuers


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _tree(evaluation: Evaluation, collapse: bool = False) -> list[str]:
    """Components indented under their parents, each with a count of the resources it holds directly;
    `collapse`: siblings of one type shown once, with how many there are (their children not listed)."""
    children = defaultdict(list)
    for r in evaluation.registrations:
        children[r.parent].append(r)
    lines: list[str] = []

    def held(r) -> int:
        return sum(1 for c in children[r.urn] if c.custom)

    def total(r) -> int:
        return sum(1 + total(c) if not c.custom else 1 for c in children[r.urn])

    def walk(parent_urn: str, depth: int) -> None:
        # Registration order varies from run to run; sort so two plans of the same config are identical.
        components = sorted((c for c in children[parent_urn] if not c.custom), key=lambda c: (c.type, c.name))
        by_type: dict[str, list] = defaultdict(list)
        for r in components:
            by_type[r.type].append(r)
        for r in components:
            alike = by_type[r.type]
            if collapse and len(alike) > 1 and not any("file" in c.inputs for c in alike):
                if r is alike[0]:
                    sizes = sorted({total(c) for c in alike})
                    each = f"{sizes[0]}" if len(sizes) == 1 else f"{sizes[0]} to {sizes[-1]}"
                    lines.append(f"  {'  ' * depth}{r.type} x{len(alike)} ({each} resources each, children included)")
                continue
            # A remote component (a manifest the provider fetches and expands at deploy time) shows its source.
            source = f" (expanded at deploy time from {r.inputs['file']})" if "file" in r.inputs else ""
            size = source or f" ({_plural(held(r), 'resource')})"
            lines.append(f"  {'  ' * depth}{r.type} {r.name}{size}")
            walk(r.urn, depth + 1)

    roots = {r.parent for r in evaluation.registrations if r.parent not in evaluation.by_urn}
    for root in sorted(roots):
        top_level = sum(1 for c in children[root] if c.custom)
        if top_level:
            lines.append(f"  (stack) ({top_level} resources)")
        walk(root, 0)
    return lines


# --- the review folder ---------------------------------------------------------------------------------


def write_review_folder(
    evaluation: Evaluation, out: Path, deployed: dict | None = None, source: str = "--deployed"
) -> list[Path]:
    """Manifests per namespace, each node's cloud-init, every remote script and the outputs (multi-line ones as
    files of their own under outputs/, so a diff reads line by line); the plan (with the change summary
    against `deployed`) and the full component tree; secrets redacted."""
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
    # A secret output (the kubeconfig, the escrow) is shown as `pulumi stack output` shows it: not at all.
    shown = {k: (engine.REDACTED if k in evaluation.secret_outputs else v) for k, v in evaluation.outputs.items()}
    files[Path("outputs.json")] = engine.to_json(shown) + "\n"
    for name, text in output_files(shown).items():
        files[Path("outputs") / name] = text
    files[Path("plan.txt")] = report(evaluation, [], deployed=deployed, source=source)
    files[Path("components.txt")] = "\n".join([*_tree(evaluation), "", *_types(Context(evaluation, [], verbose=True))]) + "\n"

    written = []
    for relative, text in sorted(files.items()):
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(evaluation.redact(text))
        written.append(path)
    return written


# Outputs already written as files of their own elsewhere in the folder, or secret.
_NOT_OUTPUT_FILES = {"restoreScripts", "kubeconfig"}


def output_files(outputs: dict) -> dict[str, str]:
    """Every multi-line text output (at the top level, or one level down as `<output>.<key>`) as a file."""
    files = {}
    for name, value in outputs.items():
        if name in _NOT_OUTPUT_FILES:
            continue
        inner = value.items() if isinstance(value, dict) else [(None, value)]
        for key, text in inner:
            if isinstance(text, str) and "\n" in text.strip():
                files[name if key is None else f"{name}.{key}"] = text if text.endswith("\n") else text + "\n"
    return files


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


def _deployed_outputs(path: Path, flag: str = "--deployed") -> dict:
    """`pulumi stack output --json` saved in a file, or a review folder (its outputs.json)."""
    if path.is_dir():
        path = path / "outputs.json"
    try:
        outputs = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise stackfile.StackFileError(f"{flag} {path}: not readable as JSON ({error})") from None
    except RecursionError:
        raise stackfile.StackFileError(
            f"{flag} {path}: nests values too deeply to be what `pulumi stack output --json` prints"
        ) from None
    if not isinstance(outputs, dict):
        raise stackfile.StackFileError(
            f"{flag} {path}: is not the JSON object `pulumi stack output --json` prints"
        )
    return outputs


def _healthy_alerts(evaluation: Evaluation) -> str:
    from . import alerts

    promtool = alerts.promtool()
    if promtool is None:
        return "healthy-stack alerts: not counted (promtool is not installed: apt-get install prometheus)"
    return alerts.summary_line(*alerts.healthy_count(evaluation, promtool))


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
        help="the stack's outputs as `pulumi stack output --json` prints them (or a review folder of an earlier "
        "plan): check the config against what is deployed and begin with what changes (default: a first update)",
    )
    parser.add_argument(
        "--reference",
        action="append",
        default=[],
        metavar="STACK=FILE",
        help="another stack of a split deployment and its outputs (`pulumi stack output --json --show-secrets` or a "
        "review folder): a county stack's platform (default: the platform's own offline plan), or a county stack a "
        "county moves to (default: none deployed)",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="also the full component tree, resources by type and per-county listings"
    )
    parser.add_argument(
        "--healthy-alerts",
        action="store_true",
        help="also count the alerts a healthy cluster of this stack would fire: every rendered rule through "
        "promtool at once over series synthesized from the rendered objects (offline/alerts.py; needs promtool)",
    )
    parser.add_argument(
        "--county-stacks",
        action="store_true",
        help="for a platform stack (stacks.counties) planned as a first update: also plan each of its county stacks "
        "on this plan, writing each to <county stack>/ inside --out (what `make plan` does)",
    )
    args = parser.parse_args(argv)
    try:
        deployed = _deployed_outputs(args.deployed) if args.deployed else None
        references = {}
        for entry in args.reference:
            name, sep, file = entry.partition("=")
            if not sep or not name or not file:
                raise stackfile.StackFileError(f"--reference {entry}: write it as STACK=FILE")
            references[name] = _deployed_outputs(Path(file), f"--reference {name}")
    except stackfile.StackFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    status, evaluation = _plan_one(args, args.stack, args.out, deployed, references)
    if status or not args.county_stacks:
        return status
    county_stacks = layout.county_stacks(stackfile.raw(stackfile.load(args.stack, root=args.stack_dir))[0])
    if county_stacks and deployed is not None:
        print(f"\nCounty stacks ({', '.join(county_stacks)}): plan each against what it deployed: python -m "
              f"offline.plan <county stack> --deployed <its outputs> --reference {args.stack}={args.deployed}")
        return status
    for name in county_stacks:
        print(f"\n{'=' * 100}\nCounty stack {name} (on the plan of {args.stack} above)\n")
        out = args.out / name if args.out else None  # inside the platform's: one folder to diff
        status = max(status, _plan_one(args, name, out, None, {**references, args.stack: evaluation.outputs})[0])
    return status


def _plan_one(args, stack: str, out: Path | None, deployed: dict | None, references: dict) -> tuple[int, Evaluation | None]:
    """Plan one stack, print its report and write its review folder: (exit status, the evaluation)."""
    try:
        evaluation, notes = run(stack, stack_dir=args.stack_dir, deployed=deployed, references=references)
    except stackfile.StackFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2, None
    except ProgramFailed as failure:
        if deployed is not None:
            print(f"Changes against what is deployed ({args.deployed}): refused; nothing would be applied.", file=sys.stderr)
        print(failure.message, file=sys.stderr)
        if failure.registered:
            print(f"(after {failure.registered} resources were registered)", file=sys.stderr)
        return 2, None
    print(report(evaluation, notes, deployed=deployed, source=str(args.deployed), verbose=args.verbose))
    if args.healthy_alerts:
        print("\n" + _healthy_alerts(evaluation))
    if out:
        written = write_review_folder(evaluation, out, deployed, str(args.deployed))
        print(f"\nWrote {len(written)} files to {out}/ (secrets redacted).")
    from config.capacity import SHORT

    if SHORT in (evaluation.outputs.get("capacityReport") or ""):
        # capacity.onShortfall: warn lets `pulumi up` go on; a plan that says it does not fit never passes.
        shortfall = [w for w in evaluation.warnings if "cht-hosting:agents.nodes" in w or "budget" in w]
        print(
            "error: the capacity report says it does NOT fit"
            + (f": {shortfall[0]}" if shortfall else "")
            + "; capacity.onShortfall: warn lets `pulumi up` go on, the plan does not pass",
            file=sys.stderr,
        )
        return 2, evaluation
    return 0, evaluation


if __name__ == "__main__":
    sys.exit(main())
