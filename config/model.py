"""The stack config contract: one pydantic model per `cht-hosting:<key>`.

Field names are snake_case in Python and camelCase in `Pulumi.<stack>.yaml` (the alias). Every model is
frozen and forbids unknown keys, so a typo is an error rather than a silently ignored setting. Rules
about one value live here (with messages that say how to fix it); rules that relate several values
live in `checks.py`, so that every problem is reported at once.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from . import grammar, versions
from .names import DNS_LABEL, MAX_CSI_CLUSTER_ID, MAX_DNS_LABEL, MIN_HARDWARE_VERSION

# --- reusable value types ---------------------------------------------------------------------------

_DNS_LABEL = DNS_LABEL


def _fail(kind: str, message: str) -> PydanticCustomError:
    # Without a context pydantic leaves the message as written, braces included.
    return PydanticCustomError(kind, message)


def _ipv4(value: object) -> str:
    try:
        return str(ipaddress.IPv4Address(str(value)))
    except ValueError:
        raise _fail("ipv4", f"'{value}' is not an IPv4 address; write four numbers 0-255, e.g. 10.20.0.11") from None


def _ipv4_network(value: object) -> str:
    try:
        return str(ipaddress.IPv4Network(str(value), strict=True))
    except ValueError:
        raise _fail(
            "ipv4_network",
            f"'{value}' is not an IPv4 network in CIDR form; write the network address and prefix, "
            "e.g. 10.20.0.0/24",
        ) from None


def _release(kind: str, form: str, what: str, example: str):
    """A validator for a release name: `'<value>' is not <what>; write it as <form>, e.g. <example>`."""

    def check(value: object) -> str:
        text = str(value)
        if not versions.is_valid(text, form):
            raise _fail(kind, f"'{value}' is not {what}; write it as {form}, e.g. {example}")
        return text

    return check


_k3s_version = _release("k3s_version", versions.K3S, "a k3s release", "v1.36.1+k3s1")
_kube_vip_version = _release("kube_vip_version", versions.V, "a kube-vip release", "v1.0.0")
_suc_version = _release("suc_version", versions.V, "a system-upgrade-controller release", "v0.20.1")
_cpi_version = _release("cpi_version", versions.PLAIN, "a vsphere-cpi chart version", "1.36.0")
_csi_version = _release("csi_version", versions.V, "a vSphere CSI release", "v3.8.0")
_snapshotter_version = _release("snapshotter_version", versions.V, "an external-snapshotter release", "v8.2.0")


def _interface_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,14}", value):
        raise _fail(
            "interface_name",
            f"'{value}' is not a network interface name; use the name `ip link` shows on the servers, e.g. ens192",
        )
    return value


def _registry_name(value: str) -> str:
    """A registries.yaml mirror key: a registry host[:port], or `*` for every registry (k3s)."""
    return value if value == "*" else _grammar("registry", grammar.host_port)(value)


def _cht_version(value: object) -> str:
    text = str(value)
    if not versions.is_valid(text, versions.PLAIN):
        raise _fail("cht_version", f"'{value}' is not a CHT Core release; write it as X.Y.Z, e.g. 4.22.0")
    if versions.major(text) not in (4, 5):
        raise _fail("cht_version", f"CHT Core {text} is not supported; use a 4.x or 5.x release, e.g. 4.22.0")
    return text


def _grammar(kind: str, check, *args, **kwargs):
    """A validator from a `grammar` function: its ValueError becomes the message pydantic reports."""

    def validate(value: str) -> str:
        try:
            return check(value, *args, **kwargs)
        except ValueError as error:
            raise _fail(kind, str(error)) from None

    return validate


def _dns_name(value: str) -> str:
    if grammar.is_ipv4(value):
        raise _fail("dns_name", f"'{value}' is an IPv4 address where a DNS host name is needed")
    return _grammar("dns_name", grammar.host_name)(value)


def _node_name(value: str) -> str:
    if not _DNS_LABEL.fullmatch(value) or len(value) > MAX_DNS_LABEL:
        raise _fail(
            "node_name",
            f"'{value}' is not a valid node name; use at most {MAX_DNS_LABEL} lower-case letters, digits and '-', "
            "starting and ending with a letter or digit (it becomes the VM's host name and the Kubernetes node name)",
        )
    return value


def _couchdb_nodes(value: object) -> int:
    if value not in (1, 3) or isinstance(value, bool):
        raise _fail(
            "couchdb_nodes",
            f"CouchDB runs as 1 node or as a 3-node cluster, not {value!r}; set 1 (recommended by Medic) or 3",
        )
    return int(value)  # type: ignore[arg-type]


def _host_template(value: str) -> str:
    rest = value.replace("{county}", "", 1)
    if "{county}" not in value or "{" in rest or "}" in rest:
        raise _fail(
            "host_template",
            f"'{value}' must contain {{county}} exactly once and no other braces, e.g. {{county}}.cht.example.org",
        )
    _dns_name(value.replace("{county}", "county"))
    return value


def _ipv4_or_network(value: object) -> str:
    text = str(value)
    try:
        return str(ipaddress.IPv4Address(text)) if "/" not in text else str(ipaddress.IPv4Network(text, strict=True))
    except ValueError:
        raise _fail(
            "ipv4_or_network", f"'{value}' is not an IPv4 address or network; write e.g. 10.20.0.5 or 10.20.1.0/28"
        ) from None


IPv4 = Annotated[str, BeforeValidator(_ipv4)]
HostName = Annotated[str, AfterValidator(_grammar("host", grammar.host))]
InventoryName = Annotated[str, AfterValidator(_grammar("inventory_name", grammar.inventory_name))]
InventoryPath = Annotated[str, AfterValidator(_grammar("inventory_name", grammar.inventory_name, path=True))]
Account = Annotated[str, AfterValidator(_grammar("account", grammar.account))]
SshPublicKey = Annotated[str, AfterValidator(_grammar("ssh_public_key", grammar.ssh_public_key))]
HttpUrl = Annotated[str, AfterValidator(_grammar("url", grammar.url))]
ImageRepository = Annotated[str, AfterValidator(_grammar("image_repository", grammar.image_repository))]
Image = Annotated[str, AfterValidator(_grammar("image", grammar.image))]
IPv4OrNetwork = Annotated[str, BeforeValidator(_ipv4_or_network)]
IPv4Network = Annotated[str, BeforeValidator(_ipv4_network)]
K3sVersion = Annotated[str, AfterValidator(_k3s_version)]
ChtVersion = Annotated[str, BeforeValidator(_cht_version)]
CpiVersion = Annotated[str, BeforeValidator(_cpi_version)]
CsiVersion = Annotated[str, AfterValidator(_csi_version)]
DnsName = Annotated[str, AfterValidator(_dns_name)]
NodeName = Annotated[str, AfterValidator(_node_name)]
PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]

# vSphere hardware versions that exist (pulumi-vsphere accepts 4, 7-11, 13-15, 17-22) and can run the CSI driver.
HARDWARE_VERSIONS = tuple(v for v in (*range(4, 12), *range(13, 16), *range(17, 23)) if v >= MIN_HARDWARE_VERSION)


def _hardware_version(value: int) -> int:
    if value not in HARDWARE_VERSIONS:
        raise _fail(
            "hardware_version",
            f"hardware version {value} cannot run the vSphere CSI driver; use one of "
            f"{', '.join(map(str, HARDWARE_VERSIONS))} ({MIN_HARDWARE_VERSION} or higher, and no higher than your ESXi hosts support)",
        )
    return value


class Model(BaseModel):
    """Base for every config model: immutable, camelCase keys, unknown keys refused."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        # Booleans are not numbers and numbers are not booleans or text: stack files carry typed values
        # (YAML, and `pulumi config set --path` stores numbers and booleans as such).
        strict=True,
        allow_inf_nan=False,
    )


# --- infrastructure -------------------------------------------------------------------------------------


def _url_template(value: str) -> str:
    try:
        return grammar.url(value, placeholder="{version}")
    except ValueError as error:
        # Not `_fail`: pydantic formats a message only when given context, so its brace escaping would show.
        raise PydanticCustomError("url_template", str(error)) from None


class VsphereConfig(Model):
    """`cht-hosting:vsphere`: where the node VMs go and how the program and the cluster reach vCenter."""

    server: DnsName | IPv4 = Field(description="vCenter host name or address (no https://).")
    user: Account = Field(description="vCenter account Pulumi uses to create VMs; its password is `vspherePassword`.")
    datacenter: InventoryName = Field(description="Datacenter name.")
    compute_cluster: InventoryName = Field(description="Compute cluster the VMs run on.")
    resource_pool: InventoryPath | None = Field(
        default=None, description="Resource pool path inside the cluster; default: the cluster's root pool."
    )
    datastore: InventoryName = Field(description="Datastore for the VM disks.")
    network: InventoryName = Field(description="Port group the VMs' NIC connects to.")
    template: InventoryName = Field(description="Name of the Ubuntu cloud-image template VM to clone.")
    folder: InventoryPath = Field(default="cht-hosting", description="VM folder (must exist).")
    hardware_version: Annotated[int, AfterValidator(_hardware_version)] = Field(
        default=19, description="VM hardware version; 15 or higher for the CSI driver."
    )
    storage_user: Account | None = Field(
        default=None,
        description="vCenter account the CPI and CSI use inside the cluster (password: `vsphereStoragePassword`); "
        "default: `user`.",
    )
    manage_cns_roles: bool = Field(
        default=True,
        description="Create the CNS roles and grant them to `storageUser`; false where the vCenter team does it.",
    )
    thumbprint: Annotated[str, AfterValidator(_grammar("thumbprint", grammar.thumbprint))] | None = Field(
        default=None, description="vCenter TLS certificate SHA-1 thumbprint to pin (AB:CD:...: 20 hex pairs)."
    )
    ca_certificate: Annotated[str, AfterValidator(_grammar("pem", grammar.pem_certificates))] | None = Field(
        default=None, description="PEM CA bundle that signed vCenter's certificate (certificates only)."
    )
    insecure: bool = Field(
        default=False, description="Skip vCenter certificate verification (not for production; the plan warns)."
    )

    @property
    def storage_account(self) -> str:
        """The account the CPI and CSI log in as (its password: `config.Secrets.storage_password`)."""
        return self.storage_user or self.user


class NetworkConfig(Model):
    """`cht-hosting:network`: the node network every VM gets a static address on."""

    cidr: IPv4Network = Field(description="Node network, e.g. 10.20.0.0/24.")
    gateway: IPv4 = Field(description="Default gateway inside `cidr`.")
    dns: list[IPv4] = Field(min_length=1, description="DNS resolvers.")
    search_domains: list[DnsName] = Field(default_factory=list, description="DNS search domains.")
    ntp: list[HostName] = Field(
        default_factory=list, description="NTP servers (host names or IPv4 addresses); empty: Ubuntu's defaults."
    )
    protected_networks: list[IPv4Network] = Field(
        default_factory=list,
        description="Networks county pods must never reach besides the node, pod and Service networks and the API "
        "endpoint (always left out), as CIDRs: vCenter's and the ESXi hosts' management networks (needed when "
        "`vsphere.server` is a name), other internal services; API and Sentinel may reach every other outside address.",
    )


class NodePoolConfig(Model):
    """`cht-hosting:controlPlane` / `cht-hosting:agents`: one VM per entry of `nodes`, all of one size."""

    nodes: dict[NodeName, IPv4] = Field(description="Node name -> static IPv4 address. Names are stable identities.")
    cpus: PositiveInt = Field(description="vCPUs per VM.")
    memory_gb: PositiveInt = Field(description="Memory per VM, GB.")
    disk_gb: PositiveInt = Field(description="System disk per VM, GB (at least the template's disk).")
    anti_affinity: bool = Field(
        default=True,
        description="Keep these VMs on distinct ESXi hosts (an advisory DRS anti-affinity rule; the compute "
        "cluster needs at least as many hosts as VMs for DRS to honour it); false: no rule.",
    )


class SshConfig(Model):
    """`cht-hosting:ssh`: how operators and the program log in to the nodes."""

    user: NodeName = Field(default="chtadmin", description="Admin user created on every node.")
    authorized_keys: list[SshPublicKey] = Field(
        default_factory=list,
        description="Operators' SSH public keys, one key line per entry (the program adds its own generated key).",
    )


class K3sConfig(Model):
    """`cht-hosting:k3s`: the Kubernetes distribution on the nodes."""

    version: K3sVersion = Field(description="k3s release, vX.Y.Z+k3sN.")
    api_endpoint: IPv4 | DnsName = Field(
        description="Fixed API address: the kube-vip VIP, or the external load balancer's address."
    )
    api_endpoint_mode: Literal["kube-vip", "load-balancer"] = Field(
        default="kube-vip",
        description="kube-vip: a VIP on the servers (must be a free address in the node network); "
        "load-balancer: an external L4 balancer (the stack exports its nginx config).",
    )
    install_script_url: HttpUrl = Field(default="https://get.k3s.io", description="k3s install script; a mirror URL.")
    cluster_cidr: IPv4Network = Field(default="10.42.0.0/16", description="Pod network.")
    service_cidr: IPv4Network = Field(default="10.43.0.0/16", description="Service network.")
    # Released tags (checked in the upstream repositories): kube-vip/kube-vip v1.0.0 (2025-07-31, whose
    # interface detection and `vip_subnet` the manifest relies on); rancher/system-upgrade-controller v0.20.1
    # (2026-07-22, after v0.20.0-rc.2; its scripts/package-controller publishes crd.yaml and
    # system-upgrade-controller.yaml).
    kube_vip_version: Annotated[str, AfterValidator(_kube_vip_version)] = Field(
        default="v1.0.0", description="kube-vip release (image tag) that holds the VIP, vX.Y.Z."
    )
    kube_vip_interface: Annotated[str, AfterValidator(_interface_name)] | None = Field(
        default=None,
        description="Network interface on the servers that carries the VIP; unset, kube-vip uses the interface "
        "of the default route (vmxnet3 NICs come up as ens160, ens192 or ens224 depending on the VM).",
    )
    system_upgrade_controller_version: Annotated[str, AfterValidator(_suc_version)] = Field(
        default="v0.20.1", description="system-upgrade-controller release that runs the rolling k3s upgrades."
    )
    system_upgrade_controller_url: Annotated[str, AfterValidator(_url_template)] = Field(
        default="https://github.com/rancher/system-upgrade-controller/releases/download/{version}",
        description="Where the controller's crd.yaml and system-upgrade-controller.yaml are fetched from; "
        "`{version}` is replaced by systemUpgradeControllerVersion (a mirror for air-gapped sites).",
    )
    registry_mirrors: dict[
        Annotated[str, AfterValidator(_registry_name)], Annotated[list[HttpUrl], Field(min_length=1)]
    ] = Field(
        default_factory=dict,
        description="Container registry mirrors for every node (registries.yaml): registry -> endpoint URLs, "
        "e.g. docker.io: [https://mirror.moh.example.org].",
    )
    drain_timeout_minutes: PositiveInt = Field(
        default=10, description="How long removing a node waits for its pods to be evicted before giving up."
    )
    secrets_encryption: bool = Field(
        default=True,
        description="Encrypt Secrets at rest in etcd and its snapshots (k3s `secrets-encryption`). A cluster first "
        "built without it keeps `false` until its runbook (docs/runbooks/secrets-encryption.md) has turned it on.",
    )


def _url(value: str) -> str:
    try:
        grammar.url(value, ("https", "http", "oci"))
    except ValueError as error:
        raise _fail("url", str(error)) from None
    return value.rstrip("/")


_CLUSTER_ID = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_CSI_CLUSTER_ID - 1}}}$")


def _cluster_id(value: str) -> str:
    if not _CLUSTER_ID.fullmatch(value):
        raise _fail(
            "cluster_id",
            f"'{value}' is not a valid CSI cluster id; use 1-{MAX_CSI_CLUSTER_ID} letters, digits, '.', '_' or '-'",
        )
    return value


UrlTemplate = Annotated[str, AfterValidator(_url_template)]
Url = Annotated[str, AfterValidator(_url)]
ClusterId = Annotated[str, AfterValidator(_cluster_id)]


class CpiConfig(Model):
    """`cht-hosting:cpi`: the vSphere Cloud Provider Interface."""

    version: CpiVersion = Field(description="vsphere-cpi chart version; its minor must equal the k3s minor.")
    chart_repository: Url = Field(
        default="https://kubernetes.github.io/cloud-provider-vsphere",
        description="Helm repository of the vsphere-cpi chart; a mirror URL for air-gapped sites.",
    )
    image: ImageRepository | None = Field(
        default=None,
        description="CPI image repository without tag (a mirror); default: the chart's "
        "registry.k8s.io/cloud-pv-vsphere/cloud-provider-vsphere.",
    )


class CsiSnapshotsConfig(Model):
    """`cht-hosting:csi.snapshots`: CSI volume snapshots (CRDs, snapshot-controller, a VolumeSnapshotClass)."""

    enabled: bool = Field(default=False, description="Install the snapshot CRDs, controller and VolumeSnapshotClass.")
    version: Annotated[str, AfterValidator(_snapshotter_version)] | None = Field(
        default=None,
        description="external-snapshotter release (vX.Y.Z); default: the one qualified for `csi.version` "
        "(config/compatibility.yaml).",
    )
    base_url: UrlTemplate = Field(
        default="https://raw.githubusercontent.com/kubernetes-csi/external-snapshotter/{version}",
        description="Where the external-snapshotter files are fetched from; `{version}` is replaced "
        "(a mirror URL for air-gapped sites).",
    )
    deletion_policy: Literal["Retain", "Delete"] = Field(
        default="Retain",
        description="VolumeSnapshotClass deletionPolicy: Retain keeps the vSphere snapshot when its "
        "VolumeSnapshot is deleted.",
    )


class CsiConfig(Model):
    """`cht-hosting:csi`: the vSphere Container Storage Interface driver."""

    version: CsiVersion = Field(description="vSphere CSI release, vX.Y.Z.")
    manifest_url: UrlTemplate = Field(
        default="https://raw.githubusercontent.com/kubernetes-sigs/vsphere-csi-driver/{version}/manifests/vanilla/"
        "vsphere-csi-driver.yaml",
        description="The upstream vanilla manifest; `{version}` is replaced by `version` (a mirror URL for "
        "air-gapped sites).",
    )
    cluster_id: ClusterId | None = Field(
        default=None,
        description=f"CNS cluster id (at most {MAX_CSI_CLUSTER_ID} characters, unique per vCenter); default: derived from the "
        "project and stack names. Never change it after the first `pulumi up`.",
    )
    snapshots: CsiSnapshotsConfig = Field(
        default_factory=CsiSnapshotsConfig, description="CSI volume snapshots (off by default)."
    )


class StorageClassConfig(Model):
    """`cht-hosting:storageClass`: the default StorageClass every CouchDB volume is provisioned from."""

    name: NodeName = Field(default="vmware-sc", description="StorageClass name.")
    storage_policy_name: Annotated[str, AfterValidator(_grammar("policy", grammar.one_line, "storage policy name"))] | None = Field(
        default=None, description="vSphere storage policy (SPBM) name."
    )
    datastore_url: Annotated[str, AfterValidator(_grammar("datastore_url", grammar.datastore_url))] | None = Field(
        default=None, description="Datastore URL, e.g. ds:///vmfs/volumes/<uuid>/ (instead of or with a policy)."
    )
    fs_type: Literal["ext4", "xfs"] = Field(default="ext4", description="Filesystem of new volumes.")


NodePort = Annotated[int, Field(ge=30000, le=32767)]


class IngressConfig(Model):
    """`cht-hosting:ingress`: how county traffic reaches k3s's traefik (servicelb is off, so through NodePorts)."""

    https_node_port: NodePort = Field(default=30443, description="NodePort of traefik's HTTPS entrypoint on every node.")
    http_node_port: NodePort = Field(default=30080, description="NodePort of traefik's HTTP entrypoint on every node.")
    edge_proxies: list[IPv4OrNetwork] = Field(
        default_factory=list,
        description="Addresses (or CIDRs) of the edge proxies in front of the cluster. They send the PROXY protocol "
        "and traefik trusts it from them only, so the API sees each client's address; empty: no PROXY protocol "
        "(the API sees node addresses, and the failed-login limit is shared by every client).",
    )
    timeout_seconds: PositiveInt = Field(
        default=3600,
        description="traefik's client read/write/idle timeouts, as CHT's own nginx (slow uploads, long syncs).",
    )


class CapacityConfig(Model):
    """`cht-hosting:capacity`: how the counties' budgets are checked against the agents."""

    spare_agents: Annotated[int, Field(ge=0)] = Field(
        default=1, description="Agents the counties must survive losing (N-1 by default)."
    )
    reserved_cpu_per_agent: Annotated[float, Field(ge=0)] = Field(
        default=1, description="CPU per agent kept for the OS, k3s and node daemons."
    )
    reserved_memory_gb_per_agent: Annotated[float, Field(ge=0)] = Field(
        default=4, description="Memory per agent kept for the OS, k3s and node daemons, GB."
    )
    on_shortfall: Literal["error", "warn"] = Field(
        default="error", description="When the counties do not fit: refuse to run (error) or only warn."
    )


# --- backups ----------------------------------------------------------------------------------------------

_CRON_FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {m: i for i, m in enumerate(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1)}),
    ("day of week", 0, 6, {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}),
)
# The descriptors robfig/cron (k3s, Velero and Kubernetes CronJobs all parse with it) accepts besides five fields.
CRON_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


def _cron_value(text: str, low: int, high: int, names: dict[str, int]) -> int | None:
    if text.upper() in names:
        return names[text.upper()]
    if text.isdigit() and low <= int(text) <= high:
        return int(text)
    return None


def _cron_field(text: str, low: int, high: int, names: dict[str, int], question: bool) -> bool:
    for item in text.split(","):
        span, slash, step = item.partition("/")
        if slash and not (step.isdigit() and int(step) > 0):
            return False
        if span == "*" or (question and span == "?"):
            continue
        first, dash, last = span.partition("-")
        start = _cron_value(first, low, high, names)
        end = _cron_value(last, low, high, names) if dash else start
        if start is None or end is None or end < start:
            return False
    return True


def _cron(value: str) -> str:
    text = str(value)
    fields = text.split(" ")
    if text in CRON_DESCRIPTORS:
        return text
    # Five fields separated by single spaces: nothing else (a newline or a tab) reaches a config file.
    bad = len(fields) != 5 or any(
        not _cron_field(field, low, high, names, question=index in (2, 4))
        for index, (field, (_, low, high, names)) in enumerate(zip(fields, _CRON_FIELDS, strict=False))
    )
    if bad:
        raise _fail(
            "cron",
            f"'{value}' is not a cron schedule; write five fields (minute 0-59, hour 0-23, day of month 1-31, "
            "month 1-12, day of week 0-6) with *, lists, ranges and /steps, e.g. '0 1 * * *' for 01:00 every day, "
            f"or one of {', '.join(CRON_DESCRIPTORS)}",
        )
    return text


_FOLDER_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\Z")  # \Z: `$` would accept a trailing newline


def _folder(value: str) -> str:
    parts = str(value).split("/")
    if len(value) > 200 or not all(_FOLDER_PART.match(p) and p not in (".", "..") for p in parts):
        raise _fail(
            "folder",
            f"'{value}' is not a folder name in the bucket; use letters, digits, '.', '_' and '-' (not starting "
            "with '.', '_' or '-'), parts separated by single '/', no leading or trailing '/', e.g. cht/etcd",
        )
    return value


_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")  # \Z: `$` would accept a trailing newline
_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def _bucket(value: str) -> str:
    text = str(value)
    is_ip = bool(re.fullmatch(r"\d+\.\d+\.\d+\.\d+", text))
    if (
        not _BUCKET.match(text) or ".." in text or ".-" in text or "-." in text or is_ip
        or text.startswith(_BUCKET_PREFIXES) or text.endswith(_BUCKET_SUFFIXES)
    ):
        raise _fail(
            "bucket",
            f"'{value}' is not an S3 bucket name; use 3-63 lower-case letters, digits, '-' and '.', starting and "
            "ending with a letter or digit, not shaped like an IP address, e.g. cht-backups",
        )
    return text


def _s3_endpoint(value: str) -> str:
    """The storage's base URL: scheme, host, optional port; no path, query or credentials (k3s wants host[:port])."""
    from urllib.parse import urlsplit

    try:
        grammar.url(value, ("https", "http"))
    except ValueError as error:
        raise _fail("s3_endpoint", str(error)) from None
    parts = urlsplit(value)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise _fail(
            "s3_endpoint",
            f"'{value}' is not an S3 endpoint URL; write the scheme, host and optional port, no path, "
            "e.g. https://s3.moh.example.org:9000",
        )
    return value.rstrip("/")


_REGION = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?\Z")  # \Z: `$` would accept a trailing newline


def _region(value: str) -> str:
    if not _REGION.match(str(value)):
        raise _fail("region", f"'{value}' is not an S3 region name; use lower-case letters, digits and '-', e.g. us-east-1")
    return str(value)


_velero_chart_version = _release("velero_chart_version", versions.PLAIN, "a velero chart version", "12.1.0")
Cron = Annotated[str, AfterValidator(_cron)]
Folder = Annotated[str, AfterValidator(_folder)]


class S3Storage(Model):
    """`cht-hosting:backup.s3`: the S3-compatible object storage on the ministry's premises (e.g. MinIO)."""

    endpoint: Annotated[str, AfterValidator(_s3_endpoint)] = Field(
        description="https://host[:port] of the storage (no path). http:// only with `insecure: true` (a lab)."
    )
    bucket: Annotated[str, AfterValidator(_bucket)] = Field(
        description="Bucket every backup goes to (create it first; keys: `backupAccessKeyId`/`backupSecretAccessKey`)."
    )
    region: Annotated[str, AfterValidator(_region)] = Field(
        default="us-east-1", description="Region name the storage expects (MinIO's default is us-east-1)."
    )
    ca_bundle: Annotated[str, AfterValidator(_grammar("pem", grammar.pem_certificates))] | None = Field(
        default=None, description="PEM CA bundle that signed the storage's certificate; default: the system CAs."
    )
    insecure: bool = Field(
        default=False, description="Allow an http:// endpoint (keys and data in clear text: a lab only; the plan warns)."
    )
    force_path_style: bool = Field(
        default=True, description="Address the bucket as <endpoint>/<bucket> (MinIO needs this) rather than as a host."
    )


class EtcdSnapshotsConfig(Model):
    """`cht-hosting:backup.etcd`: k3s etcd snapshots of the control plane, sent to `s3` (vsphere-k3s mode)."""

    schedule: Cron = Field(default="0 */6 * * *", description="When every server takes a snapshot (cron, UTC).")
    retention: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=28, description="Snapshots k3s keeps per server, locally and in the bucket (28 at 6-hourly: 7 days)."
    )
    folder: Folder = Field(default="cht-hosting/etcd", description="Folder in the bucket for the snapshots.")


class CountyBackupsConfig(Model):
    """`cht-hosting:backup.counties`: one Velero Schedule per county (objects, credentials, every CouchDB volume)."""

    schedule: Cron = Field(default="0 1 * * *", description="When each county is backed up (cron, UTC).")
    retention_days: Annotated[int, Field(ge=1, le=3650)] = Field(
        default=30, description="Days a county backup is kept; a county may override it with `backupRetentionDays`."
    )
    prefix: Folder = Field(default="cht-hosting/counties", description="Folder in the bucket for Velero's data.")
    growth_percent_per_day: Annotated[float, Field(ge=0, le=100)] = Field(
        default=0.5,
        description="Assumed daily change of a county's data, % of its volume; only used for the plan's storage estimate.",
    )


class RestoreDrillConfig(Model):
    """`cht-hosting:backup.drill`: the CronJob `restore-drill` that restores a county's latest backup and checks it."""

    enabled: bool = Field(default=True, description="Rehearse restores on a schedule (a backup counts once restored).")
    schedule: Cron = Field(default="0 5 * * 6", description="When the drill runs (cron, UTC); one county per run, in turn.")
    image: Image = Field(
        default="docker.io/alpine/k8s:1.35.0",
        description="Image the drill runs in; it needs bash, kubectl, curl and jq (a mirror for air-gapped sites).",
    )
    max_doc_count_difference_percent: Annotated[int, Field(ge=0, le=100)] = Field(
        default=10,
        description="How far below the live county a restored database's document count may be (the live one "
        "has grown since the backup) before the drill fails.",
    )
    timeout_minutes: Annotated[int, Field(ge=10, le=1440)] = Field(
        default=240, description="How long a drill may take (restore, CouchDB start, comparison) before it fails."
    )
    storage_class: NodeName | None = Field(
        default=None,
        description="StorageClass for the drill's scratch volumes; it must delete them (reclaimPolicy Delete). "
        "Default in vsphere-k3s mode: `<storageClass.name>-restore-drill`, which the program creates; required "
        "in existing mode.",
    )


class VeleroConfig(Model):
    """`cht-hosting:backup.velero`: the Velero release (chart pinned; see config/compatibility.yaml)."""

    namespace: NodeName = Field(default="velero", description="Namespace of Velero, its node agent and the drill.")
    chart_version: Annotated[str, AfterValidator(_velero_chart_version)] = Field(
        default="12.1.0", description="vmware-tanzu/helm-charts velero chart version (12.1.0 runs Velero v1.18.1)."
    )
    chart_repository: Url = Field(
        default="https://vmware-tanzu.github.io/helm-charts", description="Helm repository of the chart; a mirror URL."
    )
    image: Image | None = Field(default=None, description="Velero image (repository:tag); default: the chart's.")
    aws_plugin_image: Image = Field(
        default="docker.io/velero/velero-plugin-for-aws:v1.14.0",
        description="The AWS (S3) object store plugin; v1.14.x goes with Velero v1.18.x.",
    )


class BackupConfig(Model):
    """`cht-hosting:backup`: off-cluster backups to S3-compatible storage; keys: `backupAccessKeyId`,
    `backupSecretAccessKey` (secrets)."""

    s3: S3Storage = Field(description="Where backups go.")
    etcd: EtcdSnapshotsConfig | None = Field(
        default=None, description="Control-plane snapshots (vsphere-k3s mode; default there: the defaults below)."
    )
    counties: CountyBackupsConfig = Field(default_factory=CountyBackupsConfig, description="County backups.")
    drill: RestoreDrillConfig = Field(default_factory=RestoreDrillConfig, description="The scheduled restore drill.")
    velero: VeleroConfig = Field(default_factory=VeleroConfig, description="The Velero release.")


# --- counties ---------------------------------------------------------------------------------------------


class Budget(Model):
    """A county's share of the cluster: what its namespace may request in total."""

    cpu: PositiveFloat = Field(description="CPU cores the county's pods request in total.")
    memory_gb: PositiveFloat = Field(description="Memory the county's pods request in total, GB.")


def _couchdb_user(value: str) -> str:
    if not _COUCHDB_USER.fullmatch(value):
        raise _fail(
            "couchdb_user",
            f"'{value}' is not a usable CouchDB admin name; use 1-32 lower-case letters, digits, '_' or '-', "
            "starting with a letter (it goes into COUCH_URL unencoded), e.g. medic",
        )
    return value


def _data_path(value: str) -> str:
    parts = value.replace("%d", "1").split("/")
    if value and not re.fullmatch(r"[A-Za-z0-9._%-]+(?:/[A-Za-z0-9._%-]+)*", value):
        raise _fail(
            "data_path",
            f"'{value}' is not a relative path inside the volume; use letters, digits, '.', '_', '-' and '/', "
            "e.g. storage/medic-core/couchdb/data",
        )
    if value.startswith("/") or any(p in ("", ".", "..") for p in parts if value) or value.count("%d") > 1:
        raise _fail(
            "data_path",
            f"'{value}' is not a relative path inside the volume; write e.g. data, storage/medic-core/couchdb/data, "
            "couchdb%d (%d becomes the node number), or \"\" for the volume root",
        )
    return value


_COUCHDB_USER = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


class TlsSettings(Model):
    """How the county's Ingress gets its certificate."""

    secret_name: NodeName = Field(
        default="cht-tls",
        description="TLS Secret (in the county's namespace) the Ingress serves; create it, or let cert-manager "
        "fill it via `clusterIssuer`.",
    )
    cluster_issuer: NodeName | None = Field(
        default=None,
        description="cert-manager ClusterIssuer that issues `secretName`; default: none (bring the Secret). An HTTP-01 "
        "solver of it must set `serviceType: ClusterIP` (county quotas admit no NodePort) and `ingressClassName: traefik`.",
    )


_VOLUME_HANDLE = re.compile(r"(?:file:)?[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def _volume_handle(value: str) -> str:
    if not _VOLUME_HANDLE.fullmatch(value):
        raise _fail(
            "volume_handle",
            f"'{value}' is not a CNS volume ID; copy it from `govc disk.ls -l` or the PV's spec.csi.volumeHandle, "
            "e.g. 0c9a3b5e-1f2d-4c6b-9a8e-7d6c5b4a3f21",
        )
    return value


class VsphereVolume(Model):
    """An existing vSphere (CNS) volume that holds a Compose deployment's CouchDB data."""

    volume_handle: Annotated[str, AfterValidator(_volume_handle)] = Field(
        description="The CNS volume ID (First Class Disk ID) the CSI driver attaches, e.g. from `govc disk.ls`."
    )


class HostPathVolume(Model):
    """A directory on one node that holds a Compose deployment's CouchDB data (the pod is pinned to that node)."""

    host_path: Annotated[str, AfterValidator(_grammar("host_path", grammar.host_path))] = Field(
        description="Absolute directory on the node, outside the system's, k3s's and the kubelet's own "
        "(/etc, /var/lib/rancher, /var/lib/kubelet, ...). Refused while `backup` is set: Velero never backs up a "
        "hostPath volume."
    )
    node: NodeName = Field(description="The agent node the directory is on (Kubernetes node name).")


def _volume_kind(value: object) -> str:
    """A volume is a host path when it names one, else a vSphere volume (so errors speak of one kind only)."""
    keys = value if isinstance(value, dict) else vars(value) if hasattr(value, "__dict__") else {}
    return "HostPathVolume" if "hostPath" in keys or "host_path" in keys else "VsphereVolume"


# Tags of discriminated unions: pydantic puts them in an error's location; the config key path leaves them out.
UNION_TAGS = frozenset({"VsphereVolume", "HostPathVolume"})


class Migration(Model):
    """A county brought over from Docker Compose: its existing CouchDB data, one volume per CouchDB node."""

    volumes: list[
        Annotated[
            Annotated[VsphereVolume, Tag("VsphereVolume")] | Annotated[HostPathVolume, Tag("HostPathVolume")],
            Discriminator(_volume_kind),
        ]
    ] = Field(
        min_length=1,
        description="One entry per CouchDB node, in node order: `{volumeHandle: ...}` or `{hostPath: ..., node: ...}`.",
    )
    data_path: Annotated[str, AfterValidator(_data_path)] = Field(
        default="data",
        description="Where CouchDB's data is inside each volume (subPath; %d is the node number; \"\" is the root).",
    )


class ChtSettings(Model):
    """`cht-hosting:cht`: defaults for every county; each county's overrides under `counties` use the same keys."""

    version: ChtVersion = Field(description="CHT Core release, X.Y.Z (4.x or 5.x).")
    couchdb_nodes: Annotated[int, BeforeValidator(_couchdb_nodes)] = Field(
        default=1, description="CouchDB nodes: 1, or 3 for a clustered CouchDB."
    )
    couchdb_storage_gb: PositiveInt = Field(
        default=100, description="Volume per CouchDB node, GB; raise it to grow in place (never shrink)."
    )
    budget: Budget = Field(
        default_factory=lambda: Budget(cpu=4, memory_gb=16),
        description="The county's resource budget (requests), split across its services.",
    )
    host_template: Annotated[str, AfterValidator(_host_template)] = Field(
        default="{county}.cht.example.org",
        description="How a county's host name is formed; `{county}` is replaced by the county name.",
    )
    host: DnsName | None = Field(default=None, description="Explicit host name; wins over `hostTemplate`.")
    registry: ImageRepository = Field(default="public.ecr.aws/medic", description="Image registry (a mirror of Medic's).")
    upgrades: Literal["config", "admin-app"] = Field(
        default="config",
        description="config: the version here is the truth (no upgrade service); admin-app (4.x only): the "
        "admin app's Upgrade button works and Pulumi never reverts what it installed.",
    )
    upgrade_service_image: Image = Field(
        default="medicmobile/upgrade-service:0.32",
        description="Image of Medic's Kubernetes upgrade service (only with upgrades: admin-app).",
    )
    couchdb_user: Annotated[str, AfterValidator(_couchdb_user)] = Field(
        default="medic",
        description="CouchDB admin user name (a migrated county's comes from migratedCredentials). Never change it "
        "once a county is deployed: CouchDB keeps the first admin it saw, and the API would be locked out.",
    )
    quota_headroom_percent: Annotated[int, Field(ge=0, le=100)] = Field(
        default=25,
        description="How far the county's ResourceQuota reaches above its budget, percent: room for a debug pod, "
        "a backup or migration Job, or a pod replacing an evicted one. The capacity check counts it.",
    )
    log_level: Literal["debug", "info", "warn", "error"] = Field(
        default="info",
        description="Log level of CouchDB (COUCHDB_LOG_LEVEL) and, from CHT 5.2.0, API and Sentinel (LOG_LEVEL); "
        "earlier API and Sentinel releases always log at info.",
    )
    tls: TlsSettings = Field(default_factory=TlsSettings, description="Ingress certificate: Secret name, cert-manager issuer.")
    migration: Migration | None = Field(
        default=None,
        description="Bring a Docker Compose county's existing CouchDB volume(s) instead of new ones "
        "(set before the county's first `pulumi up`; needs migratedCredentials).",
    )
    backup_retention_days: Annotated[int, Field(ge=1, le=3650)] | None = Field(
        default=None,
        description="Days this county's backups are kept; default: backup.counties.retentionDays.",
    )


class County(Model):
    """A county after its overrides are applied to the `cht` defaults."""

    name: str
    host: str
    settings: ChtSettings


class ExistingClusterConfig(Model):
    """`cht-hosting:existingCluster`: the cluster the counties go on when `clusterMode` is `existing`."""

    context: Annotated[str, AfterValidator(_grammar("context", grammar.one_line, "kube context name"))] | None = Field(
        default=None,
        description="kube context to use; without the `kubeconfig` secret, from the operator's own kubeconfig.",
    )
    storage_class: NodeName = Field(description="Name of an existing StorageClass for the CouchDB volumes.")
    protected_networks: list[IPv4Network] = Field(
        default_factory=list,
        description="Networks county pods must never reach (the nodes, the cluster's pod and Service networks, the "
        "Kubernetes API, vCenter), as CIDRs; API and Sentinel may reach every other outside address.",
    )


_ORGANIZATION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
# The edits a runbook asks the operator to accept for one update (a rotated admin user).
ACCEPTABLE_CHANGE = re.compile(r"counties\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.couchdbUser|k3s\.secretsEncryption")


def _organization(value: str) -> str:
    if not _ORGANIZATION.fullmatch(value):
        raise _fail(
            "organization",
            f"'{value}' is not a Pulumi organization name; use letters, digits, '-', '_' or '.', "
            "e.g. moh-kenya (self-managed backends: organization)",
        )
    return value


def _acceptable_change(value: str) -> str:
    if not ACCEPTABLE_CHANGE.fullmatch(value):
        raise _fail(
            "acceptable_change",
            f"'{value}' cannot be accepted; only a rotated admin user can, as counties.<county>.couchdbUser "
            "(docs/runbooks/rotate-credentials.md), and secrets encryption turned on by its procedure, "
            "as k3s.secretsEncryption; every other refused edit has a procedure instead",
        )
    return value


class DeployedStateConfig(Model):
    """`cht-hosting:deployedState`: where the program reads what it last deployed, and one-off acceptances."""

    organization: Annotated[str, AfterValidator(_organization)] | None = Field(
        default=None,
        description="Organization of this stack, read as `<organization>/cht-hosting/<stack>` for the last "
        "deployed state; default: the current one (`organization` on a self-managed backend).",
    )
    accept: list[Annotated[str, AfterValidator(_acceptable_change)]] = Field(
        default_factory=list,
        description="Edits of deployed values to accept for one update, only `counties.<county>.couchdbUser` "
        "(docs/runbooks/rotate-credentials.md) and `k3s.secretsEncryption` "
        "(docs/runbooks/secrets-encryption.md); remove the entry after the update.",
    )


# --- monitoring -------------------------------------------------------------------------------------------

# An addr-spec without comments or quoted parts (RFC 5322 dot-atom), which is what Alertmanager's
# `to`/`from` need; a display name ("Ops <ops@...>") is refused so a value is one address only.
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_CHART_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def _email(value: str) -> str:
    local, at, domain = value.rpartition("@")
    ok = at and value.isascii() and value.isprintable() and " " not in value and len(value) <= 254 and len(local) <= 64 and _EMAIL_LOCAL.fullmatch(local)
    if ok:
        try:
            _dns_name(domain)
            ok = "." in domain and not domain.endswith(".")
        except PydanticCustomError:
            ok = False
    if not ok:
        raise _fail(
            "email",
            f"{value!r} is not an e-mail address; write one address without a display name, e.g. ops@moh.example.org",
        )
    return value


def _smarthost(value: str) -> str:
    host, colon, port = value.rpartition(":")
    ok = bool(colon) and value.isascii() and value.isprintable() and " " not in value and port.isascii() and port.isdigit() and 0 < int(port) < 65536
    if ok:
        try:
            _ipv4(host) if re.fullmatch(r"[0-9.]+", host) else _dns_name(host)
            ok = not host.endswith(".")
        except PydanticCustomError:
            ok = False
    if not ok:
        raise _fail(
            "smarthost",
            f"{value!r} is not an SMTP server; write host:port, e.g. smtp.moh.example.org:587",
        )
    return value


def _chart_version(value: object) -> str:
    text = str(value)
    if not _CHART_VERSION.fullmatch(text):
        raise _fail("chart_version", f"'{value}' is not a chart version; write it as X.Y.Z, e.g. 88.5.3")
    return text


def webhook_url_problem(value: str, allow_credentials: bool, secret: str = "monitoringWebhookUrl") -> str | None:
    """What is wrong with a webhook URL, or None. Never echoes the value (it may be a secret)."""
    from urllib.parse import urlsplit

    if any(c.isspace() or ord(c) < 32 for c in value):
        return "contains whitespace or control characters"
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return "is not a URL"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "is not an http(s) URL with a host, e.g. https://alerts.moh.example.org/hook"
    if port == 0:
        return "has port 0"
    if not allow_credentials and (parts.username or parts.password or parts.query or parts.fragment):
        return (
            "carries credentials (user:password@, a query string or a fragment); set the URL as the secret "
            f"{secret} instead (`pulumi config set --secret {secret} ...`)"
        )
    return None


def _plain_webhook_url(value: str) -> str:
    problem = webhook_url_problem(value, allow_credentials=False)
    if problem:
        raise _fail("webhook_url", f"{value!r} {problem}" if "credentials" not in problem else f"the URL {problem}")
    return value


def _plain_heartbeat_url(value: str) -> str:
    problem = webhook_url_problem(value, allow_credentials=False, secret="monitoringHeartbeatUrl")
    if problem:
        raise _fail("webhook_url", f"{value!r} {problem}" if "credentials" not in problem else f"the URL {problem}")
    return value


Email = Annotated[str, AfterValidator(_email)]
ChartVersion = Annotated[str, BeforeValidator(_chart_version)]


class EmailRoute(Model):
    """Where alert e-mails go and the SMTP server that sends them (its password: `monitoringSmtpPassword`)."""

    to: list[Email] = Field(min_length=1, description="Recipients, e.g. [platform-ops@moh.example.org].")
    sender: Email = Field(alias="from", description="Sender address of alert e-mails.")
    smarthost: Annotated[str, AfterValidator(_smarthost)] = Field(
        description="SMTP server as host:port, e.g. smtp.moh.example.org:587."
    )
    username: Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\s]+$")] | None = Field(
        default=None,
        description="SMTP login; its password is the secret `monitoringSmtpPassword`. None: no SMTP authentication.",
    )
    require_tls: bool = Field(default=True, description="Refuse to send unless the server offers STARTTLS.")
    send_resolved: bool = Field(default=True, description="Also e-mail when an alert resolves.")


class WebhookRoute(Model):
    """A webhook that receives every alert (Alertmanager's JSON)."""

    url: Annotated[str, AfterValidator(_plain_webhook_url)] | None = Field(
        default=None,
        description="Webhook URL without credentials; one that carries a token goes in the secret "
        "`monitoringWebhookUrl` instead (then leave this out).",
    )
    send_resolved: bool = Field(default=True, description="Also notify when an alert resolves.")


class HeartbeatRoute(Model):
    """A dead-man's switch outside the cluster: the always-firing `Watchdog` alert is sent to it on a schedule,
    and the service alerts when the pings stop (Prometheus, Alertmanager or their way out is down)."""

    url: Annotated[str, AfterValidator(_plain_heartbeat_url)] | None = Field(
        default=None,
        description="Where the heartbeat is sent (Alertmanager's webhook POST), e.g. a Healthchecks check's ping URL. "
        "A URL that carries a token (a Healthchecks ping URL's UUID is one) goes in the secret "
        "`monitoringHeartbeatUrl` instead (then leave this out).",
    )
    interval_minutes: Annotated[int, Field(ge=1, le=60)] = Field(
        default=5,
        description="Minutes between heartbeats; set the service's period to this and its grace to a few periods.",
    )


class AlertThresholds(Model):
    """When the platform alerts fire. The CHT alerts use Medic's CHT Watchdog thresholds."""

    volume_used_percent: Annotated[int, Field(ge=50, le=99)] = Field(
        default=80, description="A county's CouchDB volume is fuller than this, percent."
    )
    upgrade_headroom_factor: Annotated[float, Field(ge=1, le=20)] = Field(
        default=5,
        description="A 4.x county's volume is smaller than this many times its used bytes: the 4.x->5.x upgrade "
        "needs up to 5x the used disk (Medic).",
    )
    certificate_renewal_days: Annotated[int, Field(ge=1, le=364)] = Field(
        default=120,
        description="A k3s certificate expires within this many days (k3s renews only at start, 120 days before).",
    )
    etcd_snapshot_max_age_hours: Annotated[int, Field(ge=1, le=24 * 14)] = Field(
        default=25, description="No successful etcd snapshot for this long (k3s takes one every 12 h by default)."
    )
    backup_max_age_hours: Annotated[int, Field(ge=1, le=24 * 31)] = Field(
        default=26, description="A county's last successful backup is older than this."
    )
    restore_drill_max_age_days: Annotated[int, Field(ge=1, le=90)] = Field(
        default=8, description="The restore drill has not succeeded for this long."
    )


class PrometheusSizing(Model):
    """The in-cluster Prometheus: what it requests and keeps."""

    cpu: Annotated[float, Field(gt=0, le=64)] = Field(default=1, description="CPU request (limit: twice it).")
    memory_gb: Annotated[float, Field(gt=0, le=256)] = Field(default=4, description="Memory request, GB (limit: twice it).")
    storage_gb: Annotated[int, Field(ge=5, le=4096)] = Field(
        default=50, description="Its volume on the StorageClass, GB (set before the first deploy; grow by hand)."
    )
    retention_days: Annotated[int, Field(ge=1, le=730)] = Field(
        default=60, description="How long metrics are kept (CHT Watchdog keeps 60 days)."
    )


class MonitoringConfig(Model):
    """`cht-hosting:monitoring`: Prometheus, Alertmanager and the CHT scrape on the cluster, and where alerts go."""

    enabled: bool | None = Field(
        default=None,
        description="Run the monitoring stack on the cluster; default: on in `vsphere-k3s` mode, off in `existing` "
        "mode. The Watchdog target list is exported either way.",
    )
    chart_repository: Url = Field(
        default="https://prometheus-community.github.io/helm-charts",
        description="Helm repository of kube-prometheus-stack and prometheus-json-exporter; a mirror URL for "
        "air-gapped sites.",
    )
    stack_chart_version: ChartVersion = Field(
        default="88.5.3", description="kube-prometheus-stack chart version (Prometheus Operator, Prometheus, "
        "Alertmanager, kube-state-metrics, node-exporter)."
    )
    json_exporter_chart_version: ChartVersion = Field(
        default="0.19.2", description="prometheus-json-exporter chart version (reads each county's /api/v2/monitoring)."
    )
    scrape_interval_seconds: Annotated[int, Field(ge=15, le=300)] = Field(
        default=60, description="How often each county's monitoring endpoint is read (Watchdog: 300)."
    )
    prometheus: PrometheusSizing = Field(default_factory=PrometheusSizing, description="Prometheus sizing and retention.")
    alerts: AlertThresholds = Field(default_factory=AlertThresholds, description="Alert thresholds.")
    email: EmailRoute | None = Field(default=None, description="Send alerts by e-mail.")
    webhook: WebhookRoute | None = Field(
        default=None, description="Send alerts to a webhook (its URL here, or in the secret `monitoringWebhookUrl`)."
    )
    heartbeat: HeartbeatRoute | None = Field(
        default=None,
        description="Send the always-firing heartbeat to a dead-man's switch outside the cluster (docs/monitoring.md); "
        "without it nothing notices a dead Prometheus or Alertmanager.",
    )


# --- the whole stack ------------------------------------------------------------------------------------


ClusterMode = Literal["vsphere-k3s", "existing"]


class StackConfig(Model):
    """Everything the program reads, validated. The sections of the other cluster mode are None."""

    cluster_mode: ClusterMode = "vsphere-k3s"
    vsphere: VsphereConfig | None = None
    network: NetworkConfig | None = None
    control_plane: NodePoolConfig | None = None
    agents: NodePoolConfig | None = None
    ssh: SshConfig | None = None
    k3s: K3sConfig | None = None
    cpi: CpiConfig | None = None
    csi: CsiConfig | None = None
    storage_class: StorageClassConfig | None = None
    ingress: IngressConfig | None = None
    capacity: CapacityConfig | None = None
    existing_cluster: ExistingClusterConfig | None = None
    deployed_state: DeployedStateConfig = Field(default_factory=DeployedStateConfig)
    backup: BackupConfig | None = None
    monitoring: MonitoringConfig | None = None
    cht: ChtSettings
    counties: dict[str, County]


# Top-level keys, in the order the config reference (docs/config-reference.md) documents them, with their model.
SECTIONS: dict[str, type[Model]] = {
    "vsphere": VsphereConfig,
    "network": NetworkConfig,
    "controlPlane": NodePoolConfig,
    "agents": NodePoolConfig,
    "ssh": SshConfig,
    "k3s": K3sConfig,
    "cpi": CpiConfig,
    "csi": CsiConfig,
    "storageClass": StorageClassConfig,
    "ingress": IngressConfig,
    "capacity": CapacityConfig,
    "existingCluster": ExistingClusterConfig,
    "backup": BackupConfig,
    "monitoring": MonitoringConfig,
    "deployedState": DeployedStateConfig,
    "cht": ChtSettings,
}
OPTIONAL_SECTIONS = {"ssh", "storageClass", "ingress", "capacity", "deployedState", "monitoring"}
# Sections that may be left out in every mode (absent: the feature is off).
ABSENT_IS_OFF = {"backup"}
# Which sections each cluster mode reads; a section of the other mode is refused (it would be ignored).
MODE_SECTIONS: dict[str, set[str]] = {
    "vsphere-k3s": {
        "vsphere", "network", "controlPlane", "agents", "ssh", "k3s", "cpi", "csi", "storageClass", "ingress", "capacity",
        "deployedState", "backup", "monitoring",
    },
    "existing": {"existingCluster", "deployedState", "backup", "monitoring"},
}
MODE_PURPOSE = {
    "vsphere-k3s": "the program builds VMs, k3s, the CPI and the CSI",
    "existing": "the program creates no VMs, k3s, CPI or CSI",
}
