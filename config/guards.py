"""Edits refused because of what is deployed: each would reset, shrink, downgrade or re-seed something.

`check(config, deployed)` compares the validated config with the `deployedState` the last update
exported (`deployed.py`) and returns every problem at once, each naming the key, what is deployed and the
safe procedure (a runbook under docs/, `PROCEDURES`). With nothing deployed (a first update) it returns nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from . import accept, versions
from .deployed import DeployedState, storage_class_of
from .errors import key_path
from .layout import Layout
from .model import StackConfig

# CHT Core 5.x upgrades only from 4.5 or later (older 4.x data is not migrated by 5.x).
CHT_5_FROM = "4.5.0"


# The runbook of each procedure a refusal names (the table is config/accept.py's, beside the acceptances).
PROCEDURES = accept.PROCEDURES
SECRETS_ENCRYPTION = accept.SECRETS_ENCRYPTION.form
REMOVE_SERVER = "controlPlane.nodes."  # + the server's name (accept.REMOVE_SERVER)


procedure = accept.where  # where a refusal sends the operator


def check(
    config: StackConfig,
    deployed: DeployedState | None,
    *,
    csi_cluster_id: str | None = None,
    etcd_seed_can_move: bool = True,
    platform: bool = True,
) -> list[str]:
    """`csi_cluster_id`: the id this config deploys (explicit or derived); `etcd_seed_can_move`: whether the
    k3s cluster joins every server through the API once it exists (then the seed may be removed, and a server
    that sorts before it may be added); `platform`: whether this stack builds the platform (a county stack
    checks only its counties)."""
    if deployed is None:
        return []
    accepted = set(config.deployed_state.accept)
    problems = _cluster_mode(config, deployed)
    problems += _counties(config, deployed, accepted)
    problems += _storage_class(config, deployed, accepted)
    problems += _backup(config, deployed, accepted)
    if platform and config.cluster_mode == "vsphere-k3s" and deployed.cluster_mode == "vsphere-k3s":
        problems += _k3s(config, deployed)
        problems += _fixed_at_creation(config, deployed)
        problems += _secrets_encryption(config, deployed, accepted)
        problems += _csi(deployed, csi_cluster_id)
        problems += _nodes(config, deployed)
        problems += _renamed_nodes(config, deployed)
        problems += _servers(config, deployed, etcd_seed_can_move)
        problems += _protected_servers(config, deployed, accepted)
    return problems


def unused_acceptances(config: StackConfig, deployed: DeployedState | None) -> list[str]:
    """Warnings for `deployedState.accept` entries that accept nothing in this update (remove them)."""
    found = []
    for entry in config.deployed_state.accept:
        if entry.startswith(REMOVE_SERVER):
            server = entry[len(REMOVE_SERVER):]
            if server not in _removed_servers(config, deployed):
                found.append(
                    f"{key_path('deployedState', 'accept')}: '{entry}' accepts nothing in this update (no deployed "
                    f"server {server} leaves); remove it"
                )
            continue
        if entry in (accept.STORAGE_CLASS.form, accept.BACKUP_REMOVED.form):
            if not (_storage_class_renamed(config, deployed) if entry == accept.STORAGE_CLASS.form else _backup_removed(config, deployed)):
                found.append(
                    f"{key_path('deployedState', 'accept')}: '{entry}' accepts nothing in this update; remove it"
                )
            continue
        if entry == SECRETS_ENCRYPTION:
            if not _turns_encryption_on(config, deployed):
                found.append(
                    f"{key_path('deployedState', 'accept')}: '{entry}' accepts nothing in this update; remove it"
                )
            continue
        county = entry.split(".")[1]
        was = deployed.counties.get(county) if deployed else None
        now = config.counties.get(county)
        if was is None or now is None or was.couchdb_user in (None, now.settings.couchdb_user):
            found.append(
                f"{key_path('deployedState', 'accept')}: '{entry}' accepts nothing in this update; remove it "
                "so a later change of that user is refused again"
            )
    return found


def _encryption_was_on(deployed: DeployedState) -> bool:
    return bool(deployed.secrets_encryption)  # None: recorded before the program set it, so it is off


def _turns_encryption_on(config: StackConfig, deployed: DeployedState | None) -> bool:
    return bool(
        deployed is not None and deployed.k3s_version is not None and config.k3s is not None
        and config.k3s.secrets_encryption and not _encryption_was_on(deployed)
    )


def _secrets_encryption(config: StackConfig, deployed: DeployedState, accepted: set[str]) -> list[str]:
    """k3s `secrets-encryption` must match how the running cluster stores its Secrets: changing the flag alone
    either leaves every stored Secret unreadable (off) or is unsupported on a running cluster (on)."""
    if deployed.k3s_version is None or config.k3s is None:
        return []
    path = key_path("k3s", "secretsEncryption")
    if _encryption_was_on(deployed) and not config.k3s.secrets_encryption:
        return [
            f"{path}: the cluster encrypts its Secrets in etcd, this config turns that off; k3s would then not "
            "load the keys and could not read any stored Secret (county credentials, vCenter's password). Keep "
            "secretsEncryption: true"
        ]
    if _turns_encryption_on(config, deployed) and SECRETS_ENCRYPTION not in accepted:
        return [
            f"{path}: the cluster was built without secrets encryption, this config turns it on; setting the flag "
            f"on a running cluster is not supported. Keep secretsEncryption: false, or turn it on by the procedure "
            f"({procedure('encrypt')}) and then add '{SECRETS_ENCRYPTION}' to deployedState.accept for one update"
        ]
    return []


def _cluster_mode(config: StackConfig, deployed: DeployedState) -> list[str]:
    if config.cluster_mode == deployed.cluster_mode:
        return []
    return [
        f"{key_path('clusterMode')}: {deployed.cluster_mode} is deployed, this config has {config.cluster_mode}; "
        "the update would delete everything the other mode built (VMs, volumes, counties). Keep "
        f"clusterMode: {deployed.cluster_mode}, and build the other mode in a stack of its own"
    ]


def _counties(config: StackConfig, deployed: DeployedState, accepted: set[str]) -> list[str]:
    problems = []
    missing = [name for name in deployed.counties if name not in config.counties]
    new = [name for name in config.counties if name not in deployed.counties]
    for name in missing:
        host = deployed.counties[name].host
        # A rename is a new county at a removed one's host: its users would find an empty CHT at their URL.
        # Removing a county (its volumes are retained) and adding an unrelated one in one update are two
        # independent edits. A state recorded before hosts were cannot tell them apart: any pair is refused.
        heirs = [n for n in new if host is None or config.counties[n].host == host]
        if heirs:
            listed = ", ".join(f"'{n}'" for n in heirs)
            one = len(heirs) == 1
            took = f"{'is' if one else 'are'} new in the same update" if host is None else f"{'takes' if one else 'take'} its host {host}"
            problems.append(
                f"{key_path('counties', name)}: deployed county '{name}' is missing and {listed} {took}; a county "
                "cannot be renamed (its name is its namespace and its volumes': the new one would start empty). "
                f"Keep the name and change only its host, or remove and add in two separate updates "
                f"({procedure('rename')})"
            )
    for name, was in deployed.counties.items():
        county = config.counties.get(name)
        if county is None:
            continue  # removing a county is allowed (docs/runbooks/remove-county.md)
        now = county.settings
        if now.couchdb_nodes != was.couchdb_nodes:
            problems.append(
                f"{key_path('counties', name, 'couchdbNodes')}: {was.couchdb_nodes} CouchDB node(s) deployed, this "
                f"config has {now.couchdb_nodes}; changing it in place starts new, empty CouchDB volumes and "
                f"shards. Keep {was.couchdb_nodes} and follow {procedure('resize')}"
            )
        if now.couchdb_storage_gb < was.couchdb_storage_gb:
            problems.append(
                f"{key_path('counties', name, 'couchdbStorageGb')}: {was.couchdb_storage_gb} GB deployed, this config "
                f"has {now.couchdb_storage_gb}; a volume never shrinks. Keep {was.couchdb_storage_gb} or more "
                f"({procedure('grow')})"
            )
        user_key = f"counties.{name}.couchdbUser"
        # A migrated county's admin comes from migratedCredentials, so its couchdbUser changes nothing.
        migrated = now.migration is not None
        if was.couchdb_user is not None and now.couchdb_user != was.couchdb_user and user_key not in accepted and not migrated:
            problems.append(
                f"{key_path('counties', name, 'couchdbUser')}: admin user '{was.couchdb_user}' deployed, this config "
                f"has '{now.couchdb_user}'; CouchDB keeps the admin it was set up with, so CHT would be locked out. "
                f"Keep '{was.couchdb_user}', or rotate it as {procedure('rotate')} "
                f"says (it adds '{user_key}' to deployedState.accept for one update)"
            )
        problems += _cht_version(name, was.version, now.version)
    return problems


def _cht_version(name: str, was: str, now: str) -> list[str]:
    path = key_path("counties", name, "version")
    if versions.release(now) < versions.release(was):
        return [
            f"{path}: CHT {was} deployed, this config has {now}; CHT does not support downgrades (its databases "
            f"and views are migrated forward, cht-core#9954). Keep {was} or a later release; to go back, restore a "
            f"backup taken on the older release ({procedure('restore')})"
        ]
    if versions.major(now) >= 5 and versions.major(was) == 4 and not versions.at_least(was, CHT_5_FROM):
        return [
            f"{path}: CHT {was} deployed, this config has {now}; CHT 5.x upgrades only from {CHT_5_FROM} or later. "
            f"First set a 4.x release of at least {CHT_5_FROM} and apply, then set {now} "
            f"({procedure('upgrade-cht')})"
        ]
    return []


def _k3s(config: StackConfig, deployed: DeployedState) -> list[str]:
    if deployed.k3s_version is None or config.k3s is None:
        return []
    was, now = versions.release(deployed.k3s_version), versions.release(config.k3s.version)
    path = key_path("k3s", "version")
    if now < was:
        return [
            f"{path}: k3s {deployed.k3s_version} deployed, this config has {config.k3s.version}; Kubernetes does "
            f"not support downgrades (etcd and the API objects are already on the newer release). Keep "
            f"{deployed.k3s_version} or later"
        ]
    if now.major == was.major and now.minor > was.minor + 1:
        return [
            f"{path}: k3s {deployed.k3s_version} deployed, this config has {config.k3s.version}; Kubernetes "
            f"upgrades one minor release at a time. Set a v{was.major}.{was.minor + 1}.x release, apply, then go on "
            f"({procedure('upgrade-k3s')})"
        ]
    if now.major != was.major:
        return [
            f"{path}: k3s {deployed.k3s_version} deployed, this config has {config.k3s.version}; a major release "
            "change is not an upgrade this program can run. Keep the deployed major release"
        ]
    return []


def _fixed_at_creation(config: StackConfig, deployed: DeployedState) -> list[str]:
    """Settings the cluster and its VMs took once, when they were built: an edit would reach nothing but the
    program's own side (NetworkPolicies, SSH logins), which would then disagree with what runs."""
    problems = []
    for key, was, now in (
        ("clusterCidr", deployed.cluster_cidr, config.k3s.cluster_cidr),
        ("serviceCidr", deployed.service_cidr, config.k3s.service_cidr),
    ):
        if was is not None and now != was:
            problems.append(
                f"{key_path('k3s', key)}: {was} deployed, this config has {now}; k3s fixes the pod and service "
                "networks when the cluster is created (each node's pod range, every Service's address, CoreDNS's), "
                f"and the county NetworkPolicies would leave the wrong network out. Keep {was}; other networks need a "
                f"new cluster, the counties moved to it by backup and restore ({procedure('restore')})"
            )
    user = config.ssh.user if config.ssh else None
    if deployed.ssh_user is not None and user != deployed.ssh_user:
        problems.append(
            f"{key_path('ssh', 'user')}: '{deployed.ssh_user}' deployed, this config has '{user}'; cloud-init created "
            "the nodes' admin user once, when each VM was built, so the program could no longer log in to configure, "
            f"restart or remove k3s. Keep '{deployed.ssh_user}'"
        )
    return problems


def _csi(deployed: DeployedState, csi_cluster_id: str | None) -> list[str]:
    if deployed.csi_cluster_id is None or csi_cluster_id is None or csi_cluster_id == deployed.csi_cluster_id:
        return []
    return [
        f"{key_path('csi', 'clusterId')}: cluster id '{deployed.csi_cluster_id}' deployed, this config gives "
        f"'{csi_cluster_id}'; CNS tags every volume with it, and a new id orphans every existing volume. Set "
        f"csi.clusterId: {deployed.csi_cluster_id}"
    ]


def _nodes(config: StackConfig, deployed: DeployedState) -> list[str]:
    problems = []
    pools = {"server": ("controlPlane", config.control_plane), "agent": ("agents", config.agents)}
    for name, was in deployed.nodes.items():
        found = [(key, role, pool) for role, (key, pool) in pools.items() if name in pool.nodes]
        if not found:
            continue  # removed (servers: see _servers)
        key, role, pool = found[0]
        if role != was.role:
            problems.append(
                f"{key_path(key, 'nodes', name)}: node {name} is deployed as {'a server' if was.role == 'server' else 'an agent'}; "
                "a VM cannot change role in place. Remove it in one update and add it under a new name in the next "
                f"({procedure('replace-node')})"
            )
            continue
        address = pool.nodes[name]
        if address != was.address:
            problems.append(
                f"{key_path(key, 'nodes', name)}: node {name} is deployed at {was.address}, this config has "
                f"{address}; the VM keeps the address it was built with (cloud-init runs once), so the cluster "
                f"would lose it. Keep {was.address}, or replace the node ({procedure('replace-node')})"
            )
        if was.disk_gb is not None and pool.disk_gb < was.disk_gb:
            problems.append(
                f"{key_path(key, 'diskGb')}: node {name} has a {was.disk_gb} GB disk deployed, this config has "
                f"{pool.disk_gb}; vSphere never shrinks a disk. Keep {was.disk_gb} or more"
            )
        hardware = config.vsphere.hardware_version
        if was.hardware_version is not None and hardware < was.hardware_version:
            problems.append(
                f"{key_path('vsphere', 'hardwareVersion')}: node {name} runs hardware version {was.hardware_version}, "
                f"this config has {hardware}; a VM's hardware version cannot be lowered. Keep {was.hardware_version} "
                "or higher"
            )
    return problems


def _servers(config: StackConfig, deployed: DeployedState, etcd_seed_can_move: bool) -> list[str]:
    was = deployed.servers
    if not was:
        return []
    now = sorted(config.control_plane.nodes)
    removed = [n for n in was if n not in now]
    path = key_path("controlPlane", "nodes")
    problems = []
    if len(removed) > 1:
        problems.append(
            f"{path}: servers {', '.join(was)} deployed, this config removes {', '.join(removed)}; etcd loses "
            "quorum when more than one member leaves at once. Remove one server per update, adding its "
            f"replacement in the same update so the count stays odd ({procedure('replace-node')})"
        )
    if etcd_seed_can_move:
        return problems
    seed = deployed.etcd_seed or was[0]
    if seed in removed:
        problems.append(
            f"{key_path('controlPlane', 'nodes', seed)}: {seed} seeded etcd and the other servers join through it; "
            "removing it would re-seed etcd on another server. Keep it"
        )
    added_before = [n for n in now if n not in was and n < seed]
    if added_before:
        problems.append(
            f"{key_path('controlPlane', 'nodes', added_before[0])}: sorts before {seed}, the server that seeded "
            "etcd, and would seed a second cluster; choose a name that sorts after it"
        )
    return problems


def _storage_class_renamed(config: StackConfig, deployed: DeployedState | None) -> str | None:
    """The deployed class's name when this config names another; else None."""
    now = storage_class_of(config)
    if deployed is None or deployed.storage_class is None or now is None or now == deployed.storage_class:
        return None
    if config.cluster_mode != deployed.cluster_mode:
        return None  # refused as a mode change
    return deployed.storage_class


def _storage_class(config: StackConfig, deployed: DeployedState, accepted: set[str]) -> list[str]:
    was = _storage_class_renamed(config, deployed)
    if was is None or accept.STORAGE_CLASS.form in accepted:
        return []
    key = key_path("storageClass", "name") if config.cluster_mode == "vsphere-k3s" else key_path("existingCluster", "storageClass")
    return [
        f"{key}: the counties' volumes were provisioned from StorageClass '{was}', this config names "
        f"'{storage_class_of(config)}'; a claim's class never changes, so the program would delete the class "
        f"every volume names (growing one then fails) and new volumes would differ. Keep '{was}', or follow "
        f"{procedure('storage-class')} and add '{accept.STORAGE_CLASS.form}' to deployedState.accept "
        "for one update"
    ]


def _backup_removed(config: StackConfig, deployed: DeployedState | None) -> bool:
    return bool(deployed is not None and deployed.backup and config.backup is None)


def _backup(config: StackConfig, deployed: DeployedState, accepted: set[str]) -> list[str]:
    if not _backup_removed(config, deployed) or accept.BACKUP_REMOVED.form in accepted:
        return []
    return [
        f"{key_path('backup')}: backups are deployed, this config has none; the update would delete Velero, every "
        "county's schedule and the restore drill, and leave no backup taken from then on (those in the bucket "
        f"stay). Keep the section, or follow {procedure('backup-off')} and add "
        f"'{accept.BACKUP_REMOVED.form}' to deployedState.accept for one update"
    ]


def _renamed_nodes(config: StackConfig, deployed: DeployedState) -> list[str]:
    """A node renamed in place: its address moves to a new VM while the old one is still being deleted."""
    problems = []
    pools = (("controlPlane", config.control_plane), ("agents", config.agents))
    gone = {was.address: name for name, was in deployed.nodes.items() if not any(name in p.nodes for _, p in pools)}
    for key, pool in pools:
        for name, address in pool.nodes.items():
            if name not in deployed.nodes and address in gone:
                old = gone[address]
                problems.append(
                    f"{key_path(key, 'nodes', name)}: takes {address}, the address of deployed node {old}, which this "
                    f"config removes; a node cannot be renamed in place (the new VM would claim the address while "
                    f"{old} still holds it, and {old} stays in the cluster as a NotReady node). Keep {old}, or "
                    f"remove it in one update and add {name} in the next ({procedure('replace-node')})"
                )
    return problems


def _removed_servers(config: StackConfig, deployed: DeployedState | None) -> list[str]:
    if deployed is None or config.cluster_mode != "vsphere-k3s" or deployed.cluster_mode != "vsphere-k3s":
        return []
    return [n for n in deployed.servers if n not in config.control_plane.nodes]


def _protected_servers(config: StackConfig, deployed: DeployedState, accepted: set[str]) -> list[str]:
    """A deployed server's VM is protected (`NodePool`): the engine refuses its delete only in the VM's own step,
    after the server was drained, its etcd member removed and k3s uninstalled, so the update would stop half-way
    with a server gone from the cluster but its VM still there. Its removal is refused until the operator has
    lifted the protection of that one VM and says so in `deployedState.accept` for one update."""
    problems = []
    for name in _removed_servers(config, deployed):
        if f"{REMOVE_SERVER}{name}" in accepted:
            continue
        problems.append(
            f"{key_path('controlPlane', 'nodes', name)}: server {name} is deployed and its VM is protected; removing "
            "its line alone would drain it, remove its etcd member and uninstall k3s, then fail on the VM. To remove "
            f"it: pulumi state unprotect \"$(pulumi stack --show-urns | grep -o 'urn:pulumi:[^ ]*VirtualMachine::"
            f"control-plane-{name}')\", then add '{REMOVE_SERVER}{name}' to deployedState.accept for this one update "
            f"({procedure('remove-server')})"
        )
    return problems


def moves(
    deployed: DeployedState | None, own: Iterable[str], holder: Mapping[str, str], held_by: Callable[[str], set[str]]
) -> list[str]:
    """Counties this stack deployed that another stack of the deployment now holds (`holder`: county -> stack).

    Their resources must be in that stack's state before this stack updates, or `pulumi up` here deletes the
    county's workloads and volumes; `held_by(stack)`: the counties that stack's last update deployed."""
    if deployed is None:
        return []
    problems = []
    own = set(own)
    for name in sorted(deployed.counties):
        target = holder.get(name)
        if name in own or target is None:
            continue
        if name not in held_by(target):
            problems.append(
                f"{key_path('counties', name)}: moves from this stack to {target} (Pulumi.{target}.yaml), whose "
                "deployed state does not hold it yet; `pulumi up` here would delete its workloads and volumes. Move "
                f"its resources first (pulumi state move, then pulumi up on {target}: {procedure('move-stacks')})"
            )
    return problems


def check_stack(
    config: StackConfig,
    layout: Layout,
    deployed: DeployedState | None,
    *,
    csi_cluster_id: str | None = None,
    etcd_seed_can_move: bool = True,
    held_by: Callable[[str], set[str]] = lambda stack: set(),
) -> list[str]:
    """`check` for one stack of a deployment (config/layout.py): its own counties, and those it deployed that
    another stack now holds (they may neither shrink nor be renamed on the way), and `moves`; a county stack
    leaves the platform's checks to the platform stack."""
    if layout.role == "single":
        return check(config, deployed, csi_cluster_id=csi_cluster_id, etcd_seed_can_move=etcd_seed_can_move)
    deployed_counties = deployed.counties if deployed is not None else {}
    kept = {n: c for n, c in config.counties.items() if layout.own(n) or n in deployed_counties}
    view = config.model_copy(update={"counties": kept})
    problems = check(
        view, deployed, csi_cluster_id=csi_cluster_id, etcd_seed_can_move=etcd_seed_can_move,
        platform=layout.builds_platform,
    )
    own = [n for n in config.counties if layout.own(n)]
    return problems + moves(deployed, own, {n: s for n, s in layout.holder.items() if s != layout.stack}, held_by)
