"""What an update changes: the deployed stack's outputs against the outputs this config would export.

Pure: two output mappings in (`pulumi stack output --json` of what runs, and the evaluation's), the summary
out. It reads `deployedState` (counties, nodes, versions: what the guards read too) and `counties` (URL,
budget) on both sides, and every other output as a whole, so an output that changes is never missed. What it
cannot see (it never sees secret values, nor what the cluster holds beyond the outputs) it does not claim.

The actions outside Pulumi that follow are keyed by output: an output that changes and is loaded by hand
somewhere (the edge proxies' nginx config, Watchdog's targets, known hosts) asks for that step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from config.deployed import OUTPUT as DEPLOYED_STATE
from config.names import final_backup_name

# Outputs loaded by hand outside the cluster: when one changes, the step that loads it again.
HAND_LOADED = {
    "edgeNginxConfig": "reload the edge proxies with the new edge config "
    "(`pulumi stack output edgeNginxConfig`, then `nginx -t && systemctl reload nginx` on each)",
    "apiLoadBalancerNginxConfig": "reload the API load balancer with the new config "
    "(`pulumi stack output apiLoadBalancerNginxConfig`)",
    "watchdogTargets": "refresh Watchdog's targets "
    "(`pulumi stack output watchdogTargets > cht-instances.yml` on the Watchdog machine)",
    "sshKnownHosts": "update the operators' known hosts (`pulumi stack output sshKnownHosts`)",
}
# Outputs the summary explains by itself (or that hold secrets), not listed again as "other outputs".
_EXPLAINED = {DEPLOYED_STATE, "counties", "kubeconfig", "etcdSeed", "csiClusterId", "escrow"}

# A county's fields as the summary names them: (output, key).
_COUNTY_FIELDS = (
    (DEPLOYED_STATE, "couchdbNodes"),
    (DEPLOYED_STATE, "couchdbStorageGb"),
    (DEPLOYED_STATE, "couchdbUser"),
    (DEPLOYED_STATE, "version"),
    (DEPLOYED_STATE, "upgrades"),
    ("counties", "url"),
    ("counties", "cpu"),
    ("counties", "memoryGb"),
)
# NodePool: each VM of a pool waits until the node before it is healthy again (components/vsphere/node_pool.py).
_ONE_VM_AT_A_TIME = (
    "one VM of its pool at a time, each healthy again (Node Ready; a server's API and etcd) before the next, not drained"
)
# Node edits that power a VM off, first match wins. The VMs have no CPU or memory hot add: the vSphere provider
# shuts the guest down to change them.
_VM_OFF_FOR = (
    (("hardwareVersion",), "vSphere upgrades the hardware version while it is off"),
    (("cpus", "memoryGb"), "vSphere changes its CPUs or memory while it is off"),
)
_NODE_FIELDS = ("role", "address", "hardwareVersion", "diskGb", "cpus", "memoryGb")


@dataclass
class Changes:
    """The summary of one update; every list is sorted, so two plans of the same edit print the same."""

    first_update: bool = False
    counties_added: list[str] = field(default_factory=list)
    counties_removed: list[str] = field(default_factory=list)
    counties_changed: dict[str, list[str]] = field(default_factory=dict)  # county -> "key old -> new"
    nodes_added: list[str] = field(default_factory=list)
    nodes_removed: list[str] = field(default_factory=list)
    nodes_changed: dict[str, list[str]] = field(default_factory=dict)
    platform: list[str] = field(default_factory=list)
    grows: list[str] = field(default_factory=list)
    restarts: list[str] = field(default_factory=list)
    before: list[str] = field(default_factory=list)  # steps outside Pulumi before `pulumi up`
    after: list[str] = field(default_factory=list)  # steps outside Pulumi after it, in the order to take them
    outputs_changed: list[str] = field(default_factory=list)
    final_backups: list[str] = field(default_factory=list)  # removed counties backed up a last time (FinalCountyBackup)

    @property
    def empty(self) -> bool:
        return not any(
            (self.counties_added, self.counties_removed, self.counties_changed, self.nodes_added,
             self.nodes_removed, self.nodes_changed, self.platform, self.restarts, self.outputs_changed)
        )


def _step(old: Any, new: Any) -> str:
    return f"{'(none)' if old is None else old} -> {'(none)' if new is None else new}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def summarize(deployed: dict[str, Any] | None, outputs: dict[str, Any], tls: dict[str, str | None] | None = None) -> Changes:
    """`deployed`: what runs (the stack's outputs); `outputs`: what this config exports.

    `tls`: county -> the cert-manager ClusterIssuer that issues its certificate, or None when the operator
    brings the Secret (so a new county asks for it)."""
    deployed = deployed or {}
    was_state, now_state = deployed.get(DEPLOYED_STATE), outputs.get(DEPLOYED_STATE) or {}
    changes = Changes()
    if not was_state:
        changes.first_update = True
        return changes

    was = {"counties": deployed.get("counties") or {}, DEPLOYED_STATE: was_state.get("counties") or {}}
    now = {"counties": outputs.get("counties") or {}, DEPLOYED_STATE: now_state.get("counties") or {}}
    was_names, now_names = set(was[DEPLOYED_STATE]), set(now[DEPLOYED_STATE])
    changes.counties_added = sorted(now_names - was_names)
    changes.counties_removed = sorted(was_names - now_names)
    # With backups on, the update that removes a backed-up county takes its final backup (__main__.py).
    backed_up = ((deployed.get("backup") or {}).get("counties") or {}) if outputs.get("backup") else {}
    changes.final_backups = [c for c in changes.counties_removed if c in backed_up]
    for county in sorted(was_names & now_names):
        diffs = {}
        for output, key in _COUNTY_FIELDS:
            old = (was[output].get(county) or {}).get(key)
            new = (now[output].get(county) or {}).get(key)
            if old is not None and old != new:  # None: not exported by the program that deployed it
                diffs[key] = (old, new)
        if not diffs:
            continue
        changes.counties_changed[county] = [f"{key} {_step(*pair)}" for key, pair in diffs.items()]
        if "couchdbStorageGb" in diffs:
            old, new = diffs["couchdbStorageGb"]
            volumes = now[DEPLOYED_STATE][county].get("couchdbNodes", 1)
            changes.grows.append(
                f"{county}: {_plural(volumes, 'CouchDB volume')} {old} -> {new} GB (the CSI driver grows the disk "
                "and its file system online; CouchDB keeps running)"
            )
        why = [
            reason
            for keys, reason in (
                (("version",), "new CHT images"),
                (("cpu", "memoryGb"), "new requests and limits (budget)"),
                (("couchdbUser",), "a new CouchDB admin user"),
                # components/cht/render.py healthcheck_beside_haproxy
                (("upgrades",), "the upgrade service comes or goes, the healthcheck leaves or joins the haproxy pod"),
            )
            if any(k in diffs for k in keys)
        ]
        if why:
            changes.restarts.append(f"{county}: its pods, one Deployment at a time ({'; '.join(why)})")
        if "url" in diffs:
            changes.after.append(
                f"{county}: give it a certificate for its new host (TLS Secret in its namespace) and point the "
                "new DNS name at the edge proxies"
            )

    was_nodes, now_nodes = was_state.get("nodes") or {}, now_state.get("nodes") or {}
    changes.nodes_added = sorted(set(now_nodes) - set(was_nodes))
    changes.nodes_removed = sorted(set(was_nodes) - set(now_nodes))
    for node in sorted(set(was_nodes) & set(now_nodes)):
        diffs = [
            f"{key} {_step(was_nodes[node].get(key), now_nodes[node].get(key))}"
            for key in _NODE_FIELDS
            if was_nodes[node].get(key) is not None and was_nodes[node].get(key) != now_nodes[node].get(key)
        ]
        if diffs:
            changes.nodes_changed[node] = diffs
            why = next((reason for fields, reason in _VM_OFF_FOR if any(d.startswith(fields) for d in diffs)), None)
            if why:
                changes.restarts.append(f"{node}: its VM ({why}; {_ONE_VM_AT_A_TIME})")

    restarting = _k3s_restarts(was_state, now_state)
    if restarting:
        changes.restarts.append(
            f"k3s on {', '.join(restarting)} (its configuration changed): one node at a time in this order, servers "
            "then agents, each healthy again (Node Ready; a server's API and etcd) within 600 s before the next"
        )

    for key, name in (("k3sVersion", "k3s"), ("secretsEncryption", "secrets encryption"), ("clusterMode", "cluster mode")):
        old, new = was_state.get(key), now_state.get(key)
        if old is not None and old != new:
            changes.platform.append(f"{name} {_step(old, new)}")
    if was_state.get("k3sVersion") and was_state.get("k3sVersion") != now_state.get("k3sVersion"):
        changes.restarts.append(
            "every node's k3s, one node at a time, servers first (system-upgrade-controller cordons and drains each)"
        )

    for key in sorted(set(deployed) | set(outputs)):
        if key in _EXPLAINED or deployed.get(key) == outputs.get(key):
            continue
        if key in HAND_LOADED and key in outputs:
            pass  # named with the step that loads it, below
        elif key not in deployed:
            changes.outputs_changed.append(f"{key} (new)")
        elif key not in outputs:
            changes.outputs_changed.append(f"{key} (gone)")
        else:
            changes.outputs_changed.append(key)
        if key in HAND_LOADED and key in outputs:
            step = HAND_LOADED[key][0].upper() + HAND_LOADED[key][1:] + _line_delta(deployed.get(key), outputs[key], "; ")
            leaving = [n for n in changes.nodes_removed if was_nodes[n].get("role") == "agent"]
            if key == "edgeNginxConfig" and leaving:
                # The old config still sends clients to the agents that leave: load the new one first.
                changes.before.append(
                    f"{step}; the agents leaving ({', '.join(leaving)}) must be out of it before they drain "
                    "(the plan's outputs/edgeNginxConfig is the new config)"
                )
            else:
                changes.after.append(step)

    for county in changes.counties_removed:
        # ChtProject protects every CouchDB volume (and retains it on delete): the engine refuses the delete.
        changes.before.append(
            f"{county}: lift the protection of its volumes (`pulumi state unprotect` each URN that "
            f"`pulumi stack --show-urns | grep '::{county}-'` lists: its PVCs and PVs); else `pulumi up` stops at the "
            "first of them once the county's workloads are deleted (docs/runbooks/remove-county.md)"
        )
    tls = tls or {}
    for county in changes.counties_added:
        issuer = tls.get(county)
        if issuer is None:
            changes.after.append(
                f"{county}: create its TLS Secret (`kubectl -n {county} create secret tls cht-tls --cert=... --key=...`, "
                "or the name cht.tls.secretName sets)"
            )
    escrowed = [f"{c}'s CouchDB credentials" for c in changes.counties_added]
    if "backup" in outputs and not deployed.get("backup"):
        escrowed.append("the backup repository's password")
    secrets = escrowed + ([f"the host keys of {', '.join(changes.nodes_added)}"] if changes.nodes_added else [])
    if secrets:
        changes.after.append(
            "Back up the Pulumi state (the escrow of generated secrets: it now also holds " + ", ".join(secrets) + ")"
        )
    if escrowed:
        changes.after.append(
            "Refresh the escrow: `pulumi stack output escrow --show-secrets` onto the offline medium "
            "(docs/runbooks/escrow.md); it now also holds " + ", ".join(escrowed)
        )
    return changes


def _k3s_restarts(was_state: dict[str, Any], now_state: dict[str, Any]) -> list[str]:
    """Nodes whose k3s configuration digest changed, in the order the update restarts them: servers in join order
    (the etcd seed first, then by name), then agents in config order (components/k3s/cluster.py). A node whose
    deployed digest was not recorded is not claimed."""
    was, now = was_state.get("nodes") or {}, now_state.get("nodes") or {}
    changed = [
        n for n in now
        if n in was and was[n].get("k3sConfig") and now[n].get("k3sConfig") and was[n]["k3sConfig"] != now[n]["k3sConfig"]
    ]
    seed = now_state.get("etcdSeed")
    servers = sorted((n for n in changed if now[n].get("role") == "server"), key=lambda n: (n != seed, n))
    return servers + [n for n in changed if now[n].get("role") != "server"]


def _line_delta(old: Any, new: Any, lead: str = " ") -> str:
    """For multi-line text: how many lines come and go, and the first few of them."""
    if not (isinstance(old, str) and isinstance(new, str) and "\n" in old + new):
        return ""
    # Compared with runs of blanks collapsed: a realigned column is not a change.
    before, after = ([" ".join(line.split()) for line in text.splitlines()] for text in (old, new))
    gone = [line for line in before if line and line not in set(after)]
    came = [line for line in after if line and line not in set(before)]
    shown = [f"+ {line}" for line in came[:3]] + [f"- {line}" for line in gone[:3]]
    more = len(came) + len(gone) - len(shown)
    text = ", ".join(f"`{s}`" for s in shown) + (f" and {more} more" if more > 0 else "")
    return f"{lead}({text})" if lead == " " else f"{lead}{text}"


def _collapsed(items: list[str]) -> list[str]:
    """Items `<name>: <what>` that say the same of several names, once with all their names (a fleet-wide edit
    reads as one line, not fifty), in the order each first appears."""
    names: dict[str, list[str]] = {}
    for item in items:
        name, sep, what = item.partition(": ")
        names.setdefault(what if sep else item, []).append(name if sep else "")
    return [f"{', '.join(n)}: {what}" if n != [""] else what for what, n in names.items()]


def lines(changes: Changes, source: str) -> list[str]:
    """The summary as the plan prints it first."""
    if changes.first_update:
        return [f"Changes: nothing deployed in {source} (no deployedState): this plan is a first update."]
    out = [f"Changes against what is deployed ({source}):"]
    if changes.empty:
        return [*out, "  none: `pulumi up` would change nothing the outputs show."]

    def group(title: str, items: list[str]) -> None:
        if items:
            out.append(f"  {title} ({len(items)}):")
            out.extend(f"    {item}" for item in _collapsed(items))

    def names(title: str, items: list[str]) -> None:
        if items:
            out.append(f"  {title} ({len(items)}): {', '.join(items)}")

    names("Counties added", changes.counties_added)
    group("Counties changed", [f"{c}: {'; '.join(d)}" for c, d in changes.counties_changed.items()])
    names("Counties removed", changes.counties_removed)
    if changes.counties_removed:
        out.append("    (their namespaces, volumes and credentials are kept)")
    for county in changes.final_backups:
        out.append(
            f"    {county}: backed up a last time first, velero/{final_backup_name(county)} (kept until an operator deletes "
            "it); its scheduled backups expire after their retention (docs/backups.md#a-removed-county)"
        )
    names("Nodes added", changes.nodes_added)
    group("Nodes changed", [f"{n}: {'; '.join(d)}" for n, d in changes.nodes_changed.items()])
    names("Nodes removed", changes.nodes_removed)
    if changes.nodes_removed:
        out.append("    (each drains itself first; a drain that times out stops the update and deletes nothing)")
    group("Platform", changes.platform)
    group("Volumes that grow in place", changes.grows)
    group("What restarts", changes.restarts)
    names("Other outputs that change (their lines: diff the review folders' outputs/)", changes.outputs_changed)
    out.append("  Refused: none (the guards accept every edit against what is deployed)")
    group("Before `pulumi up`", [f"{i}. {step}" for i, step in enumerate(_collapsed(changes.before), 1)])
    group("After `pulumi up`", [f"{i}. {step}" for i, step in enumerate(_collapsed(changes.after), 1)])
    return out
