"""Validate the raw stack config (plain JSON-like values) into a `StackConfig`, or list every problem."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from . import cadence, capacity, checks, egress, secrets
from .errors import PROJECT, ConfigError, key_path, problems_from
from .model import ChtSettings, County, EtcdSnapshotsConfig, Model, NodePoolConfig, StackConfig
from .sections import MODE_PURPOSE, MODES, OTHER_KEYS, SECTIONS

# The secret keys by name (the table itself is config/secrets.py).
SECRET_KEYS = secrets.BY_KEY


def required_secrets(raw: Mapping[str, Any]) -> list[str]:
    """The secret keys this config needs set (from the secrets table)."""
    mode = raw.get("clusterMode", MODES[0])
    return [s.key for s in secrets.SECRETS if secrets.needed(s, raw, mode)]


KNOWN_KEYS = [OTHER_KEYS[0], *(s.key for s in SECTIONS), *OTHER_KEYS[1:], *SECRET_KEYS]


# Namespaces besides the program's that a stack file may hold: the engine's own settings. The providers are
# explicit (configured from cht-hosting keys), so a `vsphere:` or `kubernetes:` key would be ignored.
ENGINE_NAMESPACES = ("pulumi",)


def _near_project(namespace: str) -> bool:
    return bool(difflib.get_close_matches(namespace, [PROJECT], n=1, cutoff=0.6))


def _misspelled_sections(keys: Iterable[str]) -> set[str]:
    """Keys set under a misspelling of the project's namespace: reported there, not again as missing."""
    return {key for full in keys for namespace, colon, key in [full.partition(":")] if colon and _near_project(namespace)}


def foreign_key_problems(keys: Iterable[str]) -> list[str]:
    """Keys of other namespaces; a misspelled project namespace is one problem, however many keys it holds."""
    keys = list(keys)
    problems = []
    reported: set[str] = set()
    for full_key in keys:
        namespace, colon, key = full_key.partition(":")
        if colon and _near_project(namespace):
            if namespace in reported:
                continue
            reported.add(namespace)
            there = [k for k in keys if k.partition(":")[0] == namespace]
            if len(there) == 1:
                problems.append(
                    f"{full_key}: unknown namespace '{namespace}'; did you mean '{PROJECT}:{key}'? Fix the spelling "
                    "(a key of another namespace is never read)"
                )
            else:
                problems.append(
                    f"{', '.join(there)}: unknown namespace '{namespace}'; did you mean '{PROJECT}:'? Fix the "
                    f"spelling of these {len(there)} keys (a key of another namespace is never read)"
                )
        else:
            problems.append(
                f"{full_key}: is not read by this program (only {PROJECT}: keys are; its providers are configured "
                f"from them); remove it with `pulumi config rm '{full_key}'`, or move its value under {PROJECT}:"
            )
    return problems


def _conditional_secrets(raw: Mapping[str, Any], mode: str, misspelled: set[str]) -> list[str]:
    """Secrets needed exactly when another value is set (the secrets table's `needed_when`)."""
    problems = []
    for spec in secrets.SECRETS:
        if spec.needed_when is None or mode not in spec.modes or spec.needed_when.split(".")[0] in misspelled:
            continue
        if secrets.needed(spec, raw, mode) and spec.key not in raw:
            why = f" ({spec.why})" if spec.why else ""
            problems.append(
                f"{key_path(spec.key)}: is required because {spec.needed_when} is set{why}; set it with "
                f"`pulumi config set --secret {spec.key} ...`"
            )
        elif spec.key in raw and not secrets.needed(spec, raw, mode):
            problems.append(
                f"{key_path(spec.key)}: is set, but {spec.needed_when} is not, so {spec.unused}; set "
                f"{spec.needed_when}, or remove it with `pulumi config rm {spec.key}`"
            )
    return problems


def _secret_texts(texts: Mapping[str, str] | None) -> list[str]:
    """Secrets with a grammar, checked like any value; the message never shows them."""
    problems = []
    texts = texts or {}
    for key, value in texts.items():
        spec = secrets.BY_KEY[key]
        if spec.grammar is not None and isinstance(value, str) and (problem := spec.grammar(value)):
            problems.append(f"{key_path(key)}: the URL (not shown: it is a secret) {problem}")
        other = spec.distinct_from
        if other is not None and isinstance(value, str) and value not in ("", secrets.OFFLINE_PLACEHOLDER) and (
            value == texts.get(other)
        ):
            problems.append(
                f"{key_path(key)}: is the same key as {other} (not shown: secrets); each needs a key pair of its own "
                f"so that one leaked key cannot reach the other's backups: create one (docs/backups.md#the-keys) and "
                f"set it with `pulumi config set --secret {key} ...`"
            )
    return problems


# A stack file's keys are the camelCase aliases only; the models' Python names (snake_case) are unknown keys there,
# not a second spelling (the models accept them for the program's own use).
AS_WRITTEN = {"by_alias": True, "by_name": False}


def validate(
    raw: Mapping[str, Any],
    secret_keys: frozenset[str] = frozenset(),
    foreign_keys: Iterable[str] = (),
    secret_texts: Mapping[str, str] | None = None,
) -> StackConfig:
    """Every problem is collected before raising, so one run shows them all.

    `foreign_keys`: full config keys of namespaces other than the program's (each is a problem).
    `secret_texts`: the values of the secrets with a grammar or a `distinct_from`, checked without showing them."""
    foreign_keys = list(foreign_keys)
    problems: list[str] = foreign_key_problems(foreign_keys)
    mode = raw.get("clusterMode", MODES[0])
    if mode not in MODES:
        problems.append(
            f"{key_path('clusterMode')}: must be {' or '.join(MODES)}, got {mode!r}; "
            f"{MODES[0]} builds the whole platform, existing deploys counties onto a cluster you have"
        )
        mode = MODES[0]
    problems += _unknown_and_secret_keys(raw, secret_keys, mode)

    sections: dict[str, Model | None] = {}
    partial: set[str] = set()  # sections that failed; at most their `nodes` are known
    misspelled = _misspelled_sections(foreign_keys)
    for spec in SECTIONS:
        key, model = spec.key, spec.model
        in_mode = mode in spec.modes
        if key in raw and not in_mode:
            problems.append(
                f"{key_path(key)}: has no meaning when clusterMode is {mode} ({MODE_PURPOSE[mode]}); remove it"
            )
        if key not in raw or not in_mode:
            if spec.required_in(mode) and key not in misspelled:
                problems.append(f"{key_path(key)}: is required; add it (see docs/config-reference.md)")
            sections[key] = model() if in_mode and spec.presence == "defaults" else None
            continue
        try:
            sections[key] = model.model_validate(_none_is_empty(raw[key]), **AS_WRITTEN)
        except ValidationError as error:
            problems += problems_from(error, key, model)
            sections[key] = _partial_pool(raw[key]) if model is NodePoolConfig else None
            partial.add(key)

    counties, county_problems = _counties(raw.get("counties"), raw.get("cht"))
    problems += [] if "counties" not in raw and "counties" in misspelled else county_problems
    problems += checks.hosts(counties)
    sizing_problems: list[str] = []
    problems += checks.migrated_volumes(counties, sections.get("agents") if mode == "vsphere-k3s" else None)
    if mode == "vsphere-k3s":
        sizing_problems = checks.pools(sections["controlPlane"], sections["agents"])
        sizing_problems += checks.reserves(None if "agents" in partial else sections["agents"], sections["capacity"])
        problems += sizing_problems
        problems += checks.addresses(sections["network"], sections["controlPlane"], sections["agents"], sections["k3s"])
        problems += checks.dns_servers(sections["network"], sections["k3s"])
        problems += checks.compatibility_with_k3s(sections["k3s"], sections["cpi"], sections["csi"])
        problems += checks.cns_grants(sections["vsphere"])
        problems += checks.vcenter_tls(sections["vsphere"])
        problems += checks.snapshots(sections["csi"])
        pools = [sections[k] for k in ("controlPlane", "agents") if sections[k] is not None]
        problems += checks.networks(sections["k3s"], sum(len(p.nodes) for p in pools), sections["ingress"])
    problems += checks.backup("backup" in raw, sections["backup"], counties, mode)
    problems += checks.reserved_names(sections, counties, mode)
    problems += checks.backup_prefixes(sections["backup"], mode)
    problems += _conditional_secrets(raw, mode, misspelled)
    problems += _secret_texts(secret_texts)
    problems += checks.cht_settings(
        sections["cht"], counties, {k for k in SECRET_KEYS if k in raw}, raw.get("migratedCredentials"),
        listed=set(raw["counties"]) if isinstance(raw.get("counties"), Mapping) else set(),
    )
    if "monitoring" not in partial:
        sections["monitoring"] = _monitoring_enabled(sections["monitoring"], mode)
        problems += checks.monitoring(sections["monitoring"], {k for k in SECRET_KEYS if k in raw})
    if "backup" not in partial:
        problems += cadence.problems(sections["backup"], counties, sections["monitoring"] if "monitoring" not in partial else None)

    # Capacity is checked with the other problems whenever the pools and the capacity settings are valid
    # (counties with problems are left out: the shortfall only grows with them).
    sized = ("controlPlane", "agents", "capacity")
    if mode == "vsphere-k3s" and not sizing_problems and all(sections[k] is not None and k not in partial for k in sized):
        sizing = StackConfig.model_construct(
            cluster_mode=mode,
            control_plane=sections["controlPlane"],
            agents=sections["agents"],
            capacity=sections["capacity"],
            counties=counties,
            # The monitoring stack and backups run on the agents too (a section with problems is None: left out).
            monitoring=None if "monitoring" in partial else sections["monitoring"],
            backup=sections["backup"],
        )
        report = capacity.plan(sizing)
        # A pod larger than any agent never schedules: refused even when a shortfall only warns.
        if not report.pod_fits or (sizing.capacity.on_shortfall == "error" and not report.fits):
            problems.append(capacity.shortfall(report, sizing))

    if problems:
        raise ConfigError(problems)
    backup = sections["backup"]
    if mode == "vsphere-k3s" and backup is not None and backup.etcd is None:
        # The program runs this control plane, so its snapshots go off the servers by default.
        sections["backup"] = backup.model_copy(update={"etcd": EtcdSnapshotsConfig()})
    return StackConfig.model_validate({**sections, "clusterMode": mode, "counties": counties}, by_alias=True)


def warnings(config: StackConfig) -> list[str]:
    found = checks.warnings(config.vsphere) + checks.backup_warnings(config.backup, config.counties)
    found += checks.cht_warnings(config.counties, config.ingress)
    if config.cluster_mode == "existing" and config.existing_cluster and not config.existing_cluster.protected_networks:
        found.append(
            f"{key_path('existingCluster', 'protectedNetworks')}: is empty, so API and Sentinel's outside-world egress "
            "also reaches the cluster's nodes, its pod and Service networks (every namespace's pods) and its API; "
            "list those networks (and vCenter's, if any)"
        )
    if egress.vcenter_by_name(config) and not config.network.protected_networks:
        found.append(
            f"{key_path('vsphere', 'server')}: {config.vsphere.server} is a name, so the county NetworkPolicies cannot "
            "leave vCenter out of API and Sentinel's outside-world egress by address; list vCenter's (and the ESXi "
            f"hosts') management network in {key_path('network', 'protectedNetworks')}"
        )
    found += checks.careless(config)
    for name, county in config.counties.items():
        if county.settings.upgrades == "admin-app":
            found.append(
                f"{key_path('counties', name, 'upgrades')}: admin-app: after creation Pulumi ignores the county's "
                "CHT containers (images, resources, env), so an upgrade done in the admin app is never reverted; "
                f"what runs may differ from version {county.settings.version} in config"
            )
    if config.capacity and config.capacity.on_shortfall == "warn" and (message := _capacity_shortfall(config)):
        found.append(message)
    return found


def _monitoring_enabled(monitoring: Model | None, mode: str) -> Model | None:
    """`enabled` left out means: on where the program builds the cluster, off on an existing one."""
    if monitoring is None or monitoring.enabled is not None:
        return monitoring
    return monitoring.model_copy(update={"enabled": mode == "vsphere-k3s"})


def _capacity_shortfall(config: StackConfig) -> str | None:
    return capacity.shortfall(capacity.plan(config), config)


_NODES = TypeAdapter(NodePoolConfig.model_fields["nodes"].annotation)


def _partial_pool(value: Any) -> NodePoolConfig | None:
    """A pool whose size is wrong still has nodes to check (counts, addresses), so all problems show at once.

    Only `nodes` is filled in; the cross-field rules read nothing else, and a config with problems is
    never returned to the program.
    """
    try:
        return NodePoolConfig.model_construct(nodes=_NODES.validate_python(value.get("nodes")))
    except (ValidationError, AttributeError):
        return None


def _none_is_empty(value: Any) -> Any:
    # `nairobi:` with nothing after it is YAML null; it means the same as `nairobi: {}`.
    return {} if value is None else value


def _unknown_and_secret_keys(raw: Mapping[str, Any], secret_keys: frozenset[str], mode: str) -> list[str]:
    problems = []
    for key in raw:
        if key not in KNOWN_KEYS:
            guess = difflib.get_close_matches(key, KNOWN_KEYS, n=1)
            hint = f"did you mean '{guess[0]}'? " if guess else ""
            problems.append(f"{key_path(key)}: unknown key; {hint}remove it or fix its spelling")
        elif key in secret_keys and key not in SECRET_KEYS:
            problems.append(
                f"{key_path(key)}: is set as a secret, but secrets belong in keys of their own "
                f"({', '.join(SECRET_KEYS)}); set it again without --secret"
            )
    for spec in secrets.SECRETS:
        key = spec.key
        if key in raw and mode not in spec.modes:
            problems.append(
                f"{key_path(key)}: has no meaning when clusterMode is {mode} ({MODE_PURPOSE[mode]}); "
                f"remove it with `pulumi config rm {key}`"
            )
        elif spec.required and mode in spec.modes and key not in raw:
            problems.append(f"{key_path(key)}: is required; set it with `pulumi config set --secret {key} ...`")
        elif key in raw and key not in secret_keys:
            problems.append(
                f"{key_path(key)}: is stored in plain text; set it with `pulumi config set --secret {key} ...`"
            )
    return problems


def _merge(defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """County overrides on top of the `cht` defaults; nested mappings (the budget) merge key by key."""
    merged = dict(defaults)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _overrides(override: Mapping[str, Any], loc: tuple, defaults: Mapping[str, Any] | None = None) -> bool:
    """Whether the county's own overrides hold the value at `loc`: they contain it, or they set the mapping it
    is missing from and the `cht` defaults do not give it there either (`migration: {}` lacks its volumes)."""
    node: Any = override
    default: Any = defaults if isinstance(defaults, Mapping) else {}
    for depth, part in enumerate(loc):
        if not isinstance(node, Mapping):
            return True  # the override replaced a mapping with something else
        if part not in node:
            return depth > 0 and not (isinstance(default, Mapping) and part in default)
        node = node[part]
        default = default.get(part) if isinstance(default, Mapping) else None
    return True


def _valid_settings(values: Mapping[str, Any]) -> bool:
    try:
        ChtSettings.model_validate(values, **AS_WRITTEN)
    except ValidationError:
        return False
    return True


def _counties(raw_counties: Any, raw_cht: Any) -> tuple[dict[str, County], list[str]]:
    if raw_counties is None:
        return {}, [f"{key_path('counties')}: is required; add one line per county, e.g. `nairobi: {{}}`"]
    if not isinstance(raw_counties, Mapping):
        return {}, [f"{key_path('counties')}: must map county names to overrides, e.g. `nairobi: {{}}`"]
    defaults = _none_is_empty(raw_cht)
    problems: list[str] = []
    counties: dict[str, County] = {}
    for name, raw_override in raw_counties.items():
        name = str(name)
        name_problems = checks.county_name(name)
        problems += name_problems
        override = _none_is_empty(raw_override)
        if not isinstance(override, Mapping):
            problems.append(
                f"{key_path('counties', name)}: must be a mapping of overrides (the same keys as `cht`), "
                f"or {{}} for all defaults; got {override!r}"
            )
            continue
        if not isinstance(defaults, Mapping):
            continue  # reported under `cht`
        try:
            settings = ChtSettings.model_validate(_merge(defaults, override), **AS_WRITTEN)
        except ValidationError as error:
            # A problem in a key the county overrides is the county's; any other is in the defaults and
            # was reported once under `cht` by the section check.
            own = [e for e in error.errors() if _overrides(override, e["loc"], defaults)]
            if not own and _valid_settings(defaults):
                # Never dropped silently (against a deployed state that reads as the county's removal): the
                # defaults are valid, so what fails is the county's.
                own = error.errors()
            problems += problems_from(own, "counties", ChtSettings, (name,))
            continue
        if name_problems:
            continue
        host = settings.host or settings.host_template.replace("{county}", name)
        counties[name] = County(name=name, host=host, settings=settings)
    return counties, problems
