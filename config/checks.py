"""Rules that relate several config values. Each returns problems as (key path, message) lines."""

from __future__ import annotations

import ipaddress
from collections import defaultdict

from . import backup_window, cadence, compatibility, grammar, names, sizing, versions
from .errors import key_path
from .model import (
    BackupConfig,
    CapacityConfig,
    ChtSettings,
    County,
    CpiConfig,
    CsiConfig,
    EtcdSnapshotsConfig,
    HostPathVolume,
    IngressConfig,
    K3sConfig,
    MonitoringConfig,
    NetworkConfig,
    NodePoolConfig,
    VsphereConfig,
)
from .secrets import CREDENTIAL_KEYS

POOLS = ("controlPlane", "agents")


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _is_text(value: object) -> bool:
    """A non-empty text secret (validation sees it masked, the offline plan as its placeholder)."""
    return isinstance(value, str) and bool(value)


def county_name(name: str) -> list[str]:
    limit = names.max_county_name_length()
    path = key_path("counties", name)
    if not names.DNS_LABEL.fullmatch(name):
        return [
            f"{path}: '{name}' is not a valid county name; use lower-case letters, digits and '-', starting and "
            "ending with a letter or digit (it becomes the Kubernetes namespace), e.g. 'homa-bay'"
        ]
    if len(name) > limit:
        return [
            f"{path}: '{name}' is {len(name)} characters, too long for the names derived from it "
            f"(e.g. '{names.static_pv_name(name, names.MAX_COUCHDB_NODES)}'); use at most {limit}"
        ]
    if name in names.RESERVED_NAMESPACES:
        return [f"{path}: '{name}' is a namespace the cluster itself uses; choose another county name"]
    return []


# k3s's resource profiling (docs.k3s.io/reference/resource-profiling): a server with embedded etcd and a workload
# needs at least 1606 MB of memory; servers here also run the CPI, the CSI controller and kube-vip.
MIN_SERVER_MEMORY_GB = 2


def pools(control_plane: NodePoolConfig | None, agents: NodePoolConfig | None) -> list[str]:
    problems = []
    memory = getattr(control_plane, "memory_gb", None)  # a pool that failed validation has only its nodes
    if isinstance(memory, int) and memory < MIN_SERVER_MEMORY_GB:
        problems.append(
            f"{key_path('controlPlane', 'memoryGb')}: {memory} GB is below what a k3s server with "
            f"embedded etcd needs (about 1.6 GB, docs.k3s.io/reference/resource-profiling); give each server at least "
            f"{MIN_SERVER_MEMORY_GB} GB (4 or more for a national cluster)"
        )
    if control_plane is not None:
        count = len(control_plane.nodes)
        if count == 0 or count % 2 == 0:
            problems.append(
                f"{key_path('controlPlane', 'nodes')}: {count} control-plane nodes; etcd needs an odd number "
                "(1, 3 or 5) to keep quorum, add or remove one"
            )
    if agents is not None and not agents.nodes:
        problems.append(f"{key_path('agents', 'nodes')}: no agents; CHT runs only on agents, add at least one")
    return problems


def addresses(
    network: NetworkConfig | None,
    control_plane: NodePoolConfig | None,
    agents: NodePoolConfig | None,
    k3s: K3sConfig | None,
) -> list[str]:
    problems: list[str] = []
    subnet = ipaddress.IPv4Network(network.cidr) if network else None
    if network and ipaddress.IPv4Address(network.gateway) not in subnet:
        problems.append(
            f"{key_path('network', 'gateway')}: {network.gateway} is outside the node network {network.cidr}; "
            "use the router address inside it"
        )

    nodes = [(pool, name, ip) for pool, cfg in zip(POOLS, (control_plane, agents), strict=True) if cfg for name, ip in cfg.nodes.items()]

    pools_by_name: dict[str, list[str]] = defaultdict(list)
    for pool, name, _ in nodes:
        pools_by_name[name].append(pool)
    for name, where in pools_by_name.items():
        if len(where) > 1:
            problems.append(
                f"{key_path('agents', 'nodes', name)}: node name '{name}' is also a control-plane node; "
                "node names must be unique across both pools, rename one"
            )

    owners: dict[str, list[str]] = defaultdict(list)
    for pool, name, ip in nodes:
        owners[ip].append(key_path(pool, "nodes", name))
    for ip, paths in owners.items():
        if len(paths) > 1:
            problems.append(f"{paths[1]}: {ip} is already the address of {paths[0]}; give every node its own address")

    endpoint = k3s.api_endpoint if k3s else None
    for pool, name, ip in nodes:
        path = key_path(pool, "nodes", name)
        address = ipaddress.IPv4Address(ip)
        if subnet is not None:
            if address not in subnet:
                problems.append(f"{path}: {ip} is outside the node network {network.cidr}; use an address inside it")
            elif address in (subnet.network_address, subnet.broadcast_address):
                problems.append(f"{path}: {ip} is the network or broadcast address of {network.cidr}; use a host address")
            if ip == network.gateway:
                problems.append(f"{path}: {ip} is the gateway; use another address")
            if ip in network.dns:
                problems.append(f"{path}: {ip} is a DNS server ({key_path('network', 'dns')}); use another address")
        if ip == endpoint:
            problems.append(
                f"{path}: {ip} is the k3s API endpoint ({key_path('k3s', 'apiEndpoint')}); "
                "the endpoint must be an address of its own"
            )

    if k3s is not None:
        path = key_path("k3s", "apiEndpoint")
        if k3s.api_endpoint_mode == "kube-vip":
            if not grammar.is_ipv4(k3s.api_endpoint):
                problems.append(
                    f"{path}: kube-vip needs an IPv4 address for the VIP, got '{k3s.api_endpoint}'; "
                    "use a free address in the node network, or set k3s.apiEndpointMode: load-balancer"
                )
            elif subnet is not None and ipaddress.IPv4Address(k3s.api_endpoint) not in subnet:
                problems.append(
                    f"{path}: the kube-vip VIP {k3s.api_endpoint} is outside the node network {network.cidr}; "
                    "use a free address inside it"
                )
            elif subnet is not None and ipaddress.IPv4Address(k3s.api_endpoint) in (
                subnet.network_address, subnet.broadcast_address
            ):
                problems.append(
                    f"{path}: {k3s.api_endpoint} is the network or broadcast address of {network.cidr}; "
                    "use a free host address"
                )
        if network and k3s.api_endpoint == network.gateway:
            problems.append(f"{path}: {k3s.api_endpoint} is the gateway; use an address of its own")
        if network and k3s.api_endpoint in network.dns:
            problems.append(f"{path}: {k3s.api_endpoint} is a DNS server ({key_path('network', 'dns')}); use an address of its own")

        if grammar.is_ipv4(k3s.api_endpoint) and (why := _not_a_host_address(k3s.api_endpoint, k3s, network)):
            problems.append(f"{path}: {k3s.api_endpoint} {why}; use the API's own address, reachable from the nodes")
        ranges = {"clusterCidr": k3s.cluster_cidr, "serviceCidr": k3s.service_cidr}
        if subnet is not None:
            for key, cidr in ranges.items():
                if ipaddress.IPv4Network(cidr).overlaps(subnet):
                    problems.append(
                        f"{key_path('k3s', key)}: {cidr} overlaps the node network {network.cidr}; "
                        "choose a range that does not"
                    )
        if ipaddress.IPv4Network(k3s.cluster_cidr).overlaps(ipaddress.IPv4Network(k3s.service_cidr)):
            problems.append(
                f"{key_path('k3s', 'serviceCidr')}: {k3s.service_cidr} overlaps the pod network "
                f"{k3s.cluster_cidr}; choose a range that does not"
            )
    return problems


def _not_a_host_address(ip: str, k3s: K3sConfig | None, network: NetworkConfig | None) -> str | None:
    """Why `ip` cannot be a server the nodes reach (a resolver, the API endpoint); None when it can be."""
    address = ipaddress.IPv4Address(ip)
    if address.is_unspecified or address.is_loopback or address.is_multicast or address.is_reserved:
        # A loopback resolver is each node's own (the resolved stub loops to itself; pods get no DNS at all).
        return "is not a unicast address of another machine (unspecified, loopback, multicast or reserved)"
    subnet = ipaddress.IPv4Network(network.cidr) if network else None
    for key, cidr in (("clusterCidr", k3s.cluster_cidr), ("serviceCidr", k3s.service_cidr)) if k3s else ():
        if subnet is not None and subnet.overlaps(ipaddress.IPv4Network(cidr)):
            continue  # the range itself is refused (it overlaps the node network)
        if address in ipaddress.IPv4Network(cidr):
            return f"is inside the cluster's {'pod' if key == 'clusterCidr' else 'service'} network k3s.{key} {cidr}"
    return None


def dns_servers(network: NetworkConfig | None, k3s: K3sConfig | None) -> list[str]:
    """The nodes' resolvers (and CoreDNS's upstreams, which k3s takes from them) are machines outside the cluster."""
    if network is None:
        return []
    return [
        f"{key_path('network', 'dns')}: {ip} {why}; list the resolvers of the node network"
        for ip in network.dns
        if (why := _not_a_host_address(ip, k3s, network))
    ]


def compatibility_with_k3s(k3s: K3sConfig | None, cpi: CpiConfig | None, csi: CsiConfig | None) -> list[str]:
    if k3s is None:
        return []
    problems = []
    minor = compatibility.kubernetes_minor(k3s.version)
    for key, label, cfg in (("cpi", "vSphere CPI", cpi), ("csi", "vSphere CSI", csi)):
        if cfg is None:
            continue
        supported = compatibility.supported_kubernetes(key, cfg.version)
        path = key_path(key, "version")
        if supported is None:
            known = ", ".join(f"{r}.x" for r in compatibility.known_releases(key))
            problems.append(
                f"{path}: {label} {cfg.version} is not in the compatibility table (config/compatibility.yaml); "
                f"use one of {known}, or add its row there with a source"
            )
        elif minor not in supported:
            fits = [r for r, minors in compatibility.table()[key].items() if minor in minors]
            fix = f"use {' or '.join(f'{r}.x' for r in fits)}" if fits else "choose a k3s minor it supports"
            problems.append(
                f"{path}: {label} {cfg.version} supports Kubernetes {', '.join(supported)}, but k3s.version "
                f"{k3s.version} is Kubernetes {minor}; {fix}"
            )
    if compatibility.traefik_chart_v40(k3s.version) is None:
        problems.append(
            f"{key_path('k3s', 'version')}: which traefik chart k3s {k3s.version} bundles is not recorded "
            "(config/compatibility.yaml traefikChart; chart v40 moved the Service type to service.spec.type); "
            "pin a release the table covers, or add the line's first release bundling chart v40 there with its source"
        )
    return problems


def hosts(counties: dict[str, County]) -> list[str]:
    first: dict[str, str] = {}
    problems = []
    for name, county in counties.items():
        if county.settings.host is None:  # made from the template: a DNS name too (an Ingress host never is an IP)
            try:
                grammar.dns_name(county.host)
            except ValueError as error:
                problems.append(
                    f"{key_path('counties', name, 'host')}: {error} (made from hostTemplate); set counties.{name}.host, "
                    "or change the template"
                )
                continue
        if county.host in first:
            problems.append(
                f"{key_path('counties', name)}: host name {county.host} is already used by county "
                f"'{first[county.host]}'; give it its own host (set 'host', or fix cht.hostTemplate)"
            )
        else:
            first[county.host] = name
    return problems


def reserves(agents: NodePoolConfig | None, capacity: CapacityConfig | None) -> list[str]:
    if agents is None or capacity is None:
        return []
    problems = []
    for key, reserved, size, unit in (
        ("reservedCpuPerAgent", capacity.reserved_cpu_per_agent, agents.cpus, "vCPU"),
        ("reservedMemoryGbPerAgent", capacity.reserved_memory_gb_per_agent, agents.memory_gb, "GB"),
    ):
        if reserved >= size:
            problems.append(
                f"{key_path('capacity', key)}: reserves {reserved:g} of each agent's {size} {unit}, leaving nothing "
                "for the counties; lower it or give the agents more"
            )
    if len(agents.nodes) and capacity.spare_agents >= len(agents.nodes):
        problems.append(
            f"{key_path('capacity', 'spareAgents')}: {capacity.spare_agents} spare of {len(agents.nodes)} agents "
            "leaves none to serve; lower it or add agents"
        )
    return problems


def cns_grants(vsphere: VsphereConfig | None) -> list[str]:
    """The CNS roles must go to an account of their own: an explicit role on an entity overrides inherited ones."""
    if vsphere is None or not vsphere.manage_cns_roles:
        return []
    if vsphere.storage_account.lower() != vsphere.user.lower():
        return []
    return [
        f"{key_path('vsphere', 'storageUser')}: the CNS roles would be granted to {vsphere.user}, the account "
        "Pulumi itself uses, and a role set on the node VMs, the datastore and the datacenter replaces the rights "
        "it inherits there; set storageUser to a dedicated account (e.g. k8s-cns@vsphere.local), "
        "or set vsphere.manageCnsRoles: false if the vCenter team grants the roles"
    ]


def cht_settings(
    cht: ChtSettings | None,
    counties: dict[str, County],
    secret_keys_present: set[str],
    migrated_shape: object = None,
    listed: set[str] = frozenset(),
) -> list[str]:
    """Rules about the CHT settings of every county (after overrides) and the `cht` defaults.

    `listed`: every county name the stack file lists, those refused for a problem of their own included.

    `migrated_shape`: the migratedCredentials object with its values masked (county and key names only)."""
    problems = []
    if cht is not None and cht.migration is not None:
        problems.append(
            f"{key_path('cht', 'migration')}: a migration brings one county's existing data; move it under "
            "counties.<name>.migration"
        )
    for name in migrated_shape if isinstance(migrated_shape, dict) else ():
        county = counties.get(name)
        if county is None and name in listed:
            continue  # the county is refused for its own problem
        if county is None or county.settings.migration is None:
            problems.append(
                f"{key_path('migratedCredentials', name)}: is set, but "
                + (f"county {name} has no migration" if county else f"there is no county {name}")
                + ", so nothing uses it; set its migration, or remove it with "
                f"`pulumi config rm --path 'migratedCredentials.{name}'`"
            )
    for name, county in counties.items():
        settings = county.settings
        if settings.upgrades == "admin-app" and versions.major(settings.version) >= 5:
            problems.append(
                f"{key_path('counties', name, 'upgrades')}: CHT {settings.version} has no upgrade service "
                "(Medic removed it in 5.x); set upgrades: config. Coming from admin-app on 4.x: first set version "
                "to the release the admin app shows and upgrades: config, apply, then set the 5.x version"
            )
        if sizing.below_floor(settings):
            cpu, memory_gb = sizing.minimum_budget(settings)
            problems.append(
                f"{key_path('counties', name, 'budget')}: {settings.budget.cpu:g} CPU / {settings.budget.memory_gb:g} GB "
                f"is too small for CHT {settings.version} with {settings.couchdb_nodes} CouchDB node(s) once "
                f"{_and(sizing.fixed_services(settings))} have their fixed share; give it at least {cpu:g} CPU and "
                f"{memory_gb:g} GB"
            )
        migration = settings.migration
        if migration is None:
            continue
        if settings.couchdb_nodes > 1:
            # The shard maps of a Compose cluster name its nodes couchdb@couchdb-N.local (cht-core
            # scripts/build/cht-couchdb-cluster.yml.template SVC_NAME); here the nodes are named after their
            # Services, so the data would be on disk but unservable. The program does not rewrite shard maps.
            problems.append(
                f"{key_path('counties', name, 'migration')}: a clustered Compose county cannot be brought over by "
                "its volumes: its shard maps name the Compose nodes (couchdb@couchdb-N.local), which do not exist "
                "here. Deploy it as a new county and replicate its data, or migrate it by hand "
                "(docs/runbooks/migrate-from-compose.md); remove migration or set couchdbNodes: 1 for a single-node one"
            )
        if len(migration.volumes) != settings.couchdb_nodes:
            problems.append(
                f"{key_path('counties', name, 'migration', 'volumes')}: {len(migration.volumes)} volume(s) for "
                f"{settings.couchdb_nodes} CouchDB node(s); give exactly one per node, in node order"
            )
        if "migratedCredentials" not in secret_keys_present:
            problems.append(
                f"{key_path('counties', name, 'migration')}: a migrated county must keep its CouchDB user, password, "
                "secret and uuid; set them with `pulumi config set --secret --path "
                f"'migratedCredentials.{name}.password' ...` (and user, secret, uuid; see couchdb-migration get-env)"
            )
        elif isinstance(migrated_shape, dict):
            entry = migrated_shape.get(name)
            missing = [k for k in CREDENTIAL_KEYS if not isinstance(entry, dict) or not _is_text(entry.get(k))]
            if missing:
                problems.append(
                    f"{key_path('migratedCredentials', name)}: missing {', '.join(missing)} of the migrated county; "
                    f"set each with `pulumi config set --secret --path 'migratedCredentials.{name}.<key>' ...` "
                    "(the values couchdb-migration get-env prints)"
                )
    return problems


def migrated_volumes(counties: dict[str, County], agents: NodePoolConfig | None) -> list[str]:
    """A volume belongs to one CouchDB node of one county: two mounting it would corrupt it."""
    problems = []
    handles: dict[str, str] = {}
    paths: list[tuple[str, str, str]] = []  # (node, path, key)
    for name, county in counties.items():
        migration = county.settings.migration
        if migration is None:
            continue
        for index, volume in enumerate(migration.volumes):
            path = key_path("counties", name, "migration", "volumes", index)
            if isinstance(volume, HostPathVolume):
                if agents is not None and volume.node not in agents.nodes:
                    problems.append(
                        f"{path}.node: {volume.node} is not an agent ({key_path('agents', 'nodes')}); CouchDB runs only "
                        "on agents, name the agent whose disk holds the directory"
                    )
                for node, other, other_path in paths:
                    if node == volume.node and (
                        other == volume.host_path
                        or volume.host_path.startswith(other + "/")
                        or other.startswith(volume.host_path + "/")
                    ):
                        problems.append(
                            f"{path}.hostPath: {volume.host_path} on {node} overlaps {other} of {other_path}; "
                            "each CouchDB node needs a directory of its own"
                        )
                paths.append((volume.node, volume.host_path, path))
            else:
                if volume.volume_handle in handles:
                    problems.append(
                        f"{path}.volumeHandle: {volume.volume_handle} is already the volume of {handles[volume.volume_handle]}; "
                        "a volume belongs to one CouchDB node of one county"
                    )
                else:
                    handles[volume.volume_handle] = path
    return problems


def warnings(vsphere: VsphereConfig | None) -> list[str]:
    if vsphere is not None and vsphere.insecure:
        return [
            f"{key_path('vsphere', 'insecure')}: vCenter certificate verification is off; the CPI and CSI will "
            "trust any certificate. Set vsphere.thumbprint or vsphere.caCertificate instead"
        ]
    return []


def cht_warnings(counties: dict[str, County], ingress: IngressConfig | None) -> list[str]:
    found = []
    if ingress is not None and not ingress.edge_proxies:
        found.append(
            f"{key_path('ingress', 'edgeProxies')}: is empty, so the edge sends no PROXY protocol and the API sees "
            "node addresses instead of its clients': the failed-login limit is shared by every client behind a "
            "node, and audit logs lose the address. List the edge proxies' addresses"
        )
    for name, county in counties.items():
        settings = county.settings
        if settings.log_level != "info" and not versions.at_least(settings.version, "5.2.0"):
            found.append(
                f"{key_path('counties', name, 'logLevel')}: {settings.log_level} reaches CouchDB only; API and "
                f"Sentinel read a log level from CHT 5.2.0 on, {settings.version} logs at info"
            )
    return found


def vcenter_tls(vsphere: VsphereConfig | None) -> list[str]:
    """The CPI and CSI verify vCenter's certificate unless the operator explicitly opts out."""
    if vsphere is None:
        return []
    pinned = vsphere.thumbprint or vsphere.ca_certificate
    if vsphere.insecure and pinned:
        return [
            f"{key_path('vsphere', 'insecure')}: is true while vsphere.thumbprint or vsphere.caCertificate is set; "
            "remove insecure to verify the certificate (recommended), or remove the thumbprint/CA"
        ]
    if not vsphere.insecure and not pinned:
        return [
            f"{key_path('vsphere', 'thumbprint')}: the CPI and CSI must verify vCenter's certificate; set "
            "vsphere.thumbprint (SHA-1, e.g. AB:CD:...) or vsphere.caCertificate (PEM), or, for a lab only, "
            "vsphere.insecure: true"
        ]
    return []


def snapshots(csi: CsiConfig | None) -> list[str]:
    if csi is None or not csi.snapshots.enabled or csi.snapshots.version:
        return []
    if compatibility.qualified_snapshotter(csi.version) is None:
        return [
            f"{key_path('csi', 'snapshots', 'version')}: no external-snapshotter release is known to be qualified "
            f"for vSphere CSI {csi.version}; set it (see the CSI release notes), or add a row to "
            "config/compatibility.yaml"
        ]
    return []


def backup(present: bool, config: BackupConfig | None, counties: dict[str, County], mode: str) -> list[str]:
    """The backup section against the cluster mode, the storage's scheme, and the counties' overrides."""
    problems = []
    if config is not None:
        s3 = config.s3
        if s3.endpoint.startswith("http://") and not s3.insecure:
            problems.append(
                f"{key_path('backup', 's3', 'endpoint')}: '{s3.endpoint}' is plain http, which sends the access keys "
                "and every county's data unencrypted; use https:// (with caBundle for a private CA), or set "
                "backup.s3.insecure: true in a lab"
            )
        if s3.insecure and s3.ca_bundle:
            problems.append(
                f"{key_path('backup', 's3', 'caBundle')}: has no meaning with insecure: true (no TLS is used); "
                "remove one of them"
            )
        if mode == "existing" and config.drill.enabled and config.drill.storage_class is None:
            problems.append(
                f"{key_path('backup', 'drill', 'storageClass')}: is required in existing mode while the drill is "
                "enabled: name a StorageClass with reclaimPolicy Delete for the drill's scratch volumes (a Retain "
                "class would leave a volume behind every run), or set backup.drill.enabled: false"
            )
        if mode == "existing" and config.etcd is not None:
            problems.append(
                f"{key_path('backup', 'etcd')}: has no meaning when clusterMode is existing (the program does not run "
                "that cluster's control plane); remove it and back up its etcd with the cluster's own tools"
            )
        problems += _host_paths_with_backups(counties)
        if config.counties.schedule is not None:
            problems.append(
                f"{key_path('backup', 'counties', 'schedule')}: was replaced by windowStart and windowHours (each "
                "county now starts at its own minute inside the window, since Velero backs up one county at a "
                f"time); remove schedule and set windowStart (e.g. '{_cron_time(config.counties.schedule)}')"
            )
        if config.counties.on_overrun == "error" and (message := backup_window.overrun(counties, config)):
            problems.append(message)
    elif not present:
        for name, county in counties.items():
            if county.settings.backup_retention_days is not None:
                problems.append(
                    f"{key_path('counties', name, 'backupRetentionDays')}: has no effect without cht-hosting:backup; "
                    "configure backups (docs/backups.md) or remove it"
                )
    return problems


def _host_paths_with_backups(counties: dict[str, County]) -> list[str]:
    """Velero's file-system backup skips hostPath volumes (velero v1.18.1 pkg/podvolume/backupper.go
    isHostPathVolume, with a warning only), so such a county's backups would be Completed without its data
    and nothing could restore it."""
    problems = []
    for name, county in counties.items():
        migration = county.settings.migration
        for index, volume in enumerate(migration.volumes if migration else []):
            if isinstance(volume, HostPathVolume):
                problems.append(
                    f"{key_path('counties', name, 'migration', 'volumes', index)}.hostPath: Velero never backs up a "
                    f"hostPath volume, so every backup of {name} would hold none of its CouchDB data; move the data "
                    "onto a vSphere volume and give its volumeHandle instead, or remove cht-hosting:backup (a lab)"
                )
    return problems


def _cron_time(cron: str) -> str:
    """HH:MM of a daily cron like '30 2 * * *' (01:00 when it is not one)."""
    parts = str(cron).split()
    if len(parts) == 5 and parts[0].isdigit() and parts[1].isdigit() and int(parts[1]) < 24 and int(parts[0]) < 60:
        return f"{int(parts[1]):02d}:{int(parts[0]):02d}"
    return "01:00"


def backup_warnings(config: BackupConfig | None, counties: dict[str, County] | None = None) -> list[str]:
    found = []
    if config is not None and config.s3.insecure:
        found.append(
            f"{key_path('backup', 's3', 'insecure')}: backups travel without TLS verification or encryption; "
            "a lab setting, never for health records"
        )
    warn = config is not None and counties and config.counties.on_overrun == "warn"
    if warn and (message := backup_window.overrun(counties, config)):
        found.append(message.replace(", or set onOverrun: warn", "") + " (onOverrun: warn)")
    return found


def monitoring(config: MonitoringConfig | None, secrets_set: set[str]) -> list[str]:
    """Routes on a disabled stack would be ignored; the webhook URL is set once (the SMTP password's rule is the
    secrets table's)."""
    problems: list[str] = []
    hook = "monitoringWebhookUrl"
    email = config.email if config else None
    webhook = config.webhook if config else None
    if config is not None and not config.enabled:
        for key, present in (("email", email), ("webhook", webhook)):
            if present is not None:
                problems.append(
                    f"{key_path('monitoring', key)}: alerts are routed only when the monitoring stack runs; set "
                    "monitoring.enabled: true, or remove it"
                )
        if hook in secrets_set:
            problems.append(
                f"{key_path(hook)}: is set, but monitoring.enabled is false; set monitoring.enabled: true, or remove "
                f"it with `pulumi config rm {hook}`"
            )
    if webhook is not None and webhook.url and hook in secrets_set:
        problems.append(
            f"{key_path('monitoring', 'webhook', 'url')}: the webhook URL is also set as the secret {hook}; keep one "
            "(the secret when the URL carries a token)"
        )
    if webhook is not None and not webhook.url and hook not in secrets_set:
        problems.append(
            f"{key_path('monitoring', 'webhook', 'url')}: is required for a webhook; set it here, or as the secret "
            f"{hook} when it carries a token"
        )
    problems += _heartbeat(config, secrets_set)
    return problems


def _heartbeat(config: MonitoringConfig | None, secrets_set: set[str]) -> list[str]:
    """The heartbeat's URL is in config or in its secret, exactly one, and only on a running stack."""
    beat, secret = (config.heartbeat if config else None), "monitoringHeartbeatUrl"
    problems: list[str] = []
    if config is not None and not config.enabled and beat is not None:
        problems.append(
            f"{key_path('monitoring', 'heartbeat')}: the heartbeat comes from the monitoring stack; set "
            "monitoring.enabled: true, or remove it"
        )
    if beat is not None and beat.url and secret in secrets_set:
        problems.append(
            f"{key_path('monitoring', 'heartbeat', 'url')}: the heartbeat URL is also set as the secret {secret}; keep "
            "one (the secret when the URL carries a token)"
        )
    if beat is not None and not beat.url and secret not in secrets_set:
        problems.append(
            f"{key_path('monitoring', 'heartbeat', 'url')}: is required for a heartbeat; set it here, or as the "
            f"secret {secret} when it carries a token (a Healthchecks ping URL does)"
        )
    if beat is None and secret in secrets_set:
        problems.append(
            f"{key_path(secret)}: is set, but monitoring.heartbeat is not; add `monitoring.heartbeat: "
            f"{{intervalMinutes: 5}}`, or remove it with `pulumi config rm {secret}`"
        )
    return problems


def reserved_names(sections: dict, counties: dict[str, County], mode: str) -> list[str]:
    """Names the platform owns (namespaces, StorageClasses, host names, Secrets) taken by a county or another
    setting: two owners of one namespace or class would be one object that either may delete or change."""
    problems = []
    backup: BackupConfig | None = sections.get("backup")
    if backup is not None:
        namespace = backup.velero.namespace
        path = key_path("backup", "velero", "namespace")
        if namespace in counties:
            problems.append(
                f"{path}: '{namespace}' is county {namespace}'s namespace; Velero, its drill and the county would "
                "share it (a drill deletes what it restored there). Choose a namespace of its own, e.g. velero"
            )
        elif namespace != names.BACKUP_NAMESPACE and namespace in names.RESERVED_NAMESPACES:
            problems.append(
                f"{path}: '{namespace}' is a namespace the cluster or the platform already uses; choose one of "
                "its own, e.g. velero"
            )
        drill_class = backup.drill.storage_class
        # In vsphere-k3s mode the program creates the counties' class (Retain) and the drill's (Delete).
        county_class = sections["storageClass"].name if mode == "vsphere-k3s" and sections.get("storageClass") else None
        if drill_class is not None and drill_class == county_class:
            problems.append(
                f"{key_path('backup', 'drill', 'storageClass')}: '{drill_class}' is the counties' StorageClass "
                "(storageClass.name), which keeps its volumes; the drill's scratch volumes would pile up after every "
                "run. Leave it out (the program creates a class that deletes them) or name another class"
            )
    platform_hosts = _platform_hosts(sections)
    for name, county in counties.items():
        if county.host.lower() in platform_hosts:
            problems.append(
                f"{key_path('counties', name, 'host')}: {county.host} is {platform_hosts[county.host.lower()]}; "
                "give the county a host name of its own"
            )
        if county.settings.tls.secret_name == names.CREDENTIALS_SECRET:
            problems.append(
                f"{key_path('counties', name, 'tls', 'secretName')}: '{names.CREDENTIALS_SECRET}' is the Secret that "
                "holds the county's CouchDB credentials; a certificate written there would replace them. Use "
                "another name, e.g. cht-tls"
            )
    return problems


def _platform_hosts(sections: dict) -> dict[str, str]:
    """Host names the platform itself answers on -> what they are."""
    from urllib.parse import urlsplit

    hosts: dict[str, str] = {}
    if sections.get("vsphere") is not None:
        hosts[sections["vsphere"].server.lower()] = "vCenter (vsphere.server)"
    if sections.get("k3s") is not None:
        hosts[sections["k3s"].api_endpoint.lower()] = "the Kubernetes API (k3s.apiEndpoint)"
    if sections.get("backup") is not None:
        hosts[(urlsplit(sections["backup"].s3.endpoint).hostname or "").lower()] = "the backup storage (backup.s3.endpoint)"
    return hosts


# k3s gives each node a /24 of the pod network (kube-controller-manager --node-cidr-mask-size, k3s's default 24)
# and takes the service network's 10th address for CoreDNS (k3s pkg/cli/server: ClusterDNS defaults to .10).
NODE_CIDR_PREFIX = 24
MIN_SERVICE_ADDRESSES = 256  # the API, DNS, and every county's services (about six each), with room
MAX_SERVICE_PREFIX_BITS = 20  # kube-apiserver refuses a service network larger than /12 (2^20 addresses)


def networks(k3s: K3sConfig | None, nodes: int, ingress: IngressConfig | None) -> list[str]:
    """The pod and service networks hold what the cluster puts in them; the two NodePorts differ."""
    problems = []
    if k3s is not None:
        service = ipaddress.IPv4Network(k3s.service_cidr)
        if service.num_addresses < MIN_SERVICE_ADDRESSES or service.num_addresses > 2**MAX_SERVICE_PREFIX_BITS:
            problems.append(
                f"{key_path('k3s', 'serviceCidr')}: {k3s.service_cidr} holds {service.num_addresses} addresses; the "
                f"service network needs at least {MIN_SERVICE_ADDRESSES} (the API, CoreDNS at its 10th address, every "
                "county's services) and at most 2^20 (kube-apiserver's limit): use a /12 to /24, e.g. 10.43.0.0/16"
            )
        pods = ipaddress.IPv4Network(k3s.cluster_cidr)
        if pods.prefixlen > NODE_CIDR_PREFIX or 2 ** (NODE_CIDR_PREFIX - pods.prefixlen) < nodes:
            problems.append(
                f"{key_path('k3s', 'clusterCidr')}: {k3s.cluster_cidr} holds {max(2 ** (NODE_CIDR_PREFIX - pods.prefixlen), 0)} "
                f"/{NODE_CIDR_PREFIX} node ranges, and each of the {nodes} nodes takes one; use a larger network, "
                "e.g. 10.42.0.0/16"
            )
    if ingress is not None and ingress.https_node_port == ingress.http_node_port:
        problems.append(
            f"{key_path('ingress', 'httpNodePort')}: {ingress.http_node_port} is also ingress.httpsNodePort; a "
            "NodePort serves one Service port, choose another"
        )
    return problems


def backup_prefixes(config: BackupConfig | None, mode: str) -> list[str]:
    """etcd snapshots and Velero's data each own a folder: one inside the other would let Velero's or k3s's
    retention delete the other's objects, and Velero refuses a prefix that holds foreign objects."""
    if config is None or (config.etcd is None and mode != "vsphere-k3s"):
        return []
    etcd = (config.etcd or EtcdSnapshotsConfig()).folder  # vsphere-k3s takes snapshots by default
    counties = config.counties.prefix
    if etcd == counties or etcd.startswith(counties + "/") or counties.startswith(etcd + "/"):
        return [
            f"{key_path('backup', 'counties', 'prefix')}: '{counties}' and backup.etcd.folder '{etcd}' overlap; "
            "give each a folder of its own, e.g. cht-hosting/counties and cht-hosting/etcd"
        ]
    return []


MAX_POD_RESOLVERS = 3


def careless(config) -> list[str]:
    """Warnings for legal settings that are probably a mistake, each naming its key."""
    found = []
    monitoring = config.monitoring
    if monitoring is not None and monitoring.enabled and monitoring.email is None and monitoring.webhook is None:
        found.append(
            f"{key_path('monitoring')}: alerts have no receiver (no email, no webhook), so Alertmanager sends them "
            "nowhere; set monitoring.email or monitoring.webhook"
        )
    if monitoring is not None and monitoring.enabled and monitoring.heartbeat is None:
        found.append(
            f"{key_path('monitoring', 'heartbeat')}: not set, so nothing outside the cluster notices when Prometheus "
            "or Alertmanager (or the cluster) stops and every alert goes quiet; connect the Watchdog heartbeat to a "
            "dead-man's switch (docs/monitoring.md, 'Connecting the heartbeat to a dead-man's switch')"
        )
    if config.cluster_mode == "vsphere-k3s" and monitoring is not None and not monitoring.enabled:
        found.append(
            f"{key_path('monitoring', 'enabled')}: false, so no alert reaches anyone about failed backups, restore "
            "drills, full volumes, down counties or nodes; turn it on unless another monitoring watches this cluster"
        )
    if monitoring is not None and not monitoring.enabled and monitoring.model_fields_set - {"enabled"}:
        found.append(
            f"{key_path('monitoring')}: {', '.join(sorted(monitoring.model_fields_set - {'enabled'}))} are ignored "
            "while the monitoring stack is off (monitoring.enabled); remove them or turn it on"
        )
    ingress, k3s = config.ingress, config.k3s
    if ingress is not None:
        inner = [ipaddress.IPv4Network(c) for c in ((k3s.cluster_cidr, k3s.service_cidr) if k3s else ())]
        for proxy in ingress.edge_proxies:
            network = ipaddress.IPv4Network(proxy)
            if network.prefixlen == 0 or any(network.overlaps(n) for n in inner):
                found.append(
                    f"{key_path('ingress', 'edgeProxies')}: {proxy} "
                    + ("is every address" if network.prefixlen == 0 else "overlaps the cluster's pod or service network")
                    + ", so any client (or any pod) could claim any address in a PROXY header and defeat the API's "
                    "failed-login limit; list the edge proxies' own addresses"
                )
    if k3s is not None and k3s.api_endpoint_mode == "load-balancer":
        ignored = sorted(k3s.model_fields_set & {"kube_vip_interface", "kube_vip_version"})
        if ignored:
            found.append(
                f"{key_path('k3s', 'kubeVipInterface' if 'kube_vip_interface' in ignored else 'kubeVipVersion')}: "
                "is ignored with apiEndpointMode: load-balancer (no kube-vip runs); remove it"
            )
    csi = config.csi
    if csi is not None and not csi.snapshots.enabled and csi.snapshots.model_fields_set - {"enabled"}:
        found.append(f"{key_path('csi', 'snapshots')}: settings are ignored while snapshots.enabled is false; remove them")
    network = config.network
    if network is not None and len(network.dns) > MAX_POD_RESOLVERS:
        # The kubelet cuts a pod's nameserver list to 3 (kubernetes pkg/kubelet/network/dns/dns.go
        # formDNSNameserversFitsLimits, validation.MaxDNSNameservers; glibc's MAXNS is 3 too): CoreDNS, which reads
        # the node's resolvers through its pod's resolv.conf, forwards to the first 3 only.
        found.append(
            f"{key_path('network', 'dns')}: lists {len(network.dns)} resolvers; pods (CoreDNS, and so every county's "
            f"outside lookups) use the first {MAX_POD_RESOLVERS} only, the kubelet drops the rest; put the "
            f"{MAX_POD_RESOLVERS} to rely on first, or remove the others"
        )
    backup = config.backup
    if backup is not None and not backup.drill.enabled and config.counties:
        found.append(
            f"{key_path('backup', 'drill', 'enabled')}: false, so no county's backup is proven restorable (the drill "
            f"restores each within {cadence.MAX_INTERVAL_DAYS} days otherwise); remove it unless drills run another way"
        )
    if backup is not None and not backup.drill.enabled and backup.drill.model_fields_set - {"enabled"}:
        found.append(f"{key_path('backup', 'drill')}: settings are ignored while drill.enabled is false; remove them")
    for name, county in config.counties.items():
        settings = county.settings
        if settings.upgrades == "config" and "upgrade_service_image" in settings.model_fields_set:
            found.append(
                f"{key_path('counties', name, 'upgradeServiceImage')}: is ignored with upgrades: config (no upgrade "
                "service runs); remove it"
            )
    return found
