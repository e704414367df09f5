"""The stack config contract: one pydantic model per `cht-hosting:<key>`.

Field names are snake_case in Python and camelCase in `Pulumi.<stack>.yaml` (the alias). Every model is
frozen and forbids unknown keys, so a typo is an error rather than a silently ignored setting. Rules
about one value live here (with messages that say how to fix it); rules that relate several values
live in `checks.py`, so that every problem is reported at once.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from . import accept, grammar, versions
from .names import MAX_CSI_CLUSTER_ID

# --- the named value types: each is a grammar of config/grammar.py -------------------------------------------


def _grammar(kind: str, check, *args, **kwargs):
    """A validator from a `grammar` function: its ValueError becomes the message pydantic reports as written."""

    def validate(value):
        try:
            return check(value, *args, **kwargs)
        except ValueError as error:
            # A custom error without context: pydantic leaves the message as written, braces included.
            raise PydanticCustomError(kind, str(error)) from None

    return validate


def _text(kind: str, check, *args, **kwargs):
    """A text type whose grammar is `check` (the value is a string first: strict mode refuses numbers)."""
    return Annotated[str, AfterValidator(_grammar(kind, check, *args, **kwargs))]


def _coerced(kind: str, check, *args, **kwargs):
    """A text type that also takes a YAML scalar of another type (a date, a number) and refuses it by grammar."""
    return Annotated[str, BeforeValidator(_grammar(kind, check, *args, **kwargs))]


def _release(kind: str, form: str, what: str, example: str):
    return _text(kind, grammar.release, form, what, example)


IPv4 = _coerced("ipv4", grammar.ipv4)
IPv4Network = _coerced("ipv4_network", grammar.ipv4_network)
IPv4OrNetwork = _coerced("ipv4_or_network", grammar.ipv4_or_network)
ProtectedNetwork = _coerced("protected_network", grammar.protected_network)
HostName = _text("host", grammar.host)
DnsName = _text("dns_name", grammar.dns_name)
NodeName = _text("node_name", grammar.node_name)
StorageClassName = _text("name", grammar.label, "StorageClass name", "the StorageClass's name in the cluster")
NamespaceName = _text("name", grammar.label, "namespace name", "a Kubernetes namespace")
SecretName = _text("name", grammar.label, "Secret name", "the Secret's name in the county's namespace")
IssuerName = _text("name", grammar.label, "ClusterIssuer name", "the cert-manager ClusterIssuer the Ingress names")
LoginName = _text("login_name", grammar.login_name)
InterfaceName = _text("interface_name", grammar.interface_name)
RegistryName = _text("registry", grammar.registry_name)
HostTemplate = _text("host_template", grammar.host_template)
SmartHost = _text("smarthost", grammar.smarthost)
InventoryName = _text("inventory_name", grammar.inventory_name)
InventoryPath = _text("inventory_name", grammar.inventory_name, path=True)
Account = _text("account", grammar.account)
SshPublicKey = _text("ssh_public_key", grammar.ssh_public_key)
Thumbprint = _text("thumbprint", grammar.thumbprint)
Pem = _text("pem", grammar.pem_certificates)
HttpUrl = _text("url", grammar.url)
Url = _text("url", grammar.repository_url)
UrlTemplate = _text("url_template", grammar.url_template)
S3Endpoint = _text("s3_endpoint", grammar.s3_endpoint)
WebhookUrl = _text("webhook_url", grammar.webhook_url)
HeartbeatUrl = _text("webhook_url", grammar.webhook_url, secret="monitoringHeartbeatUrl")
DatastoreUrl = _text("datastore_url", grammar.datastore_url)
ImageRepository = _text("image_repository", grammar.image_repository)
Image = _text("image", grammar.image)
SmtpLogin = _text("smtp_login", grammar.smtp_login)
Email = _text("email", grammar.email)
Cron = _coerced("cron", grammar.cron)
TimeOfDay = _coerced("time_of_day", grammar.time_of_day)
Folder = _text("folder", grammar.folder)
ClusterId = _text("cluster_id", grammar.cluster_id)
Bucket = _text("bucket", grammar.bucket)
Region = _text("region", grammar.region)
Organization = _text("organization", grammar.organization)
StackName = _text("stack_name", grammar.stack_name)
CouchdbUser = _text("couchdb_user", grammar.couchdb_user)
VolumeHandle = _text("volume_handle", grammar.volume_handle)
DataPath = _text("data_path", grammar.data_path)
HostPath = _text("host_path", grammar.host_path)
KubeContext = _text("context", grammar.one_line, "kube context name")
StoragePolicyName = _text("policy", grammar.one_line, "storage policy name")
AcceptableChange = _text("acceptable_change", accept.acceptable_change)
ChtVersion = _coerced("cht_version", grammar.cht_version)
K3sVersion = _release("k3s_version", versions.K3S, "a k3s release", "v1.36.1+k3s1")
KubeVipVersion = _release("kube_vip_version", versions.V, "a kube-vip release", "v1.0.0")
SucVersion = _release("suc_version", versions.V, "a system-upgrade-controller release", "v0.20.1")
CpiVersion = _coerced("cpi_version", grammar.release, versions.PLAIN, "a vsphere-cpi chart version", "1.36.0")
CsiVersion = _release("csi_version", versions.V, "a vSphere CSI release", "v3.8.0")
SnapshotterVersion = _release("snapshotter_version", versions.V, "an external-snapshotter release", "v8.2.0")
VeleroChartVersion = _release("velero_chart_version", versions.PLAIN, "a velero chart version", "12.1.0")
ChartVersion = _coerced("chart_version", grammar.release, versions.PLAIN, "a chart version", "88.5.3")
CouchdbNodes = Annotated[int, BeforeValidator(_grammar("couchdb_nodes", grammar.couchdb_nodes))]
HardwareVersion = Annotated[int, AfterValidator(_grammar("hardware_version", grammar.hardware_version))]
PositiveInt = Annotated[int, Field(gt=0, le=grammar.MAX_COUNT)]
PositiveFloat = Annotated[float, Field(gt=0, le=grammar.MAX_COUNT)]
NodePort = Annotated[int, Field(ge=30000, le=32767)]  # the kube-apiserver's default --service-node-port-range
HARDWARE_VERSIONS = grammar.HARDWARE_VERSIONS


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


class VsphereConfig(Model):
    """`cht-hosting:vsphere`: where the node VMs go and how the program and the cluster reach vCenter."""

    server: HostName = Field(description="vCenter host name or address (no https://).")
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
    hardware_version: HardwareVersion = Field(
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
    thumbprint: Thumbprint | None = Field(
        default=None, description="vCenter TLS certificate SHA-1 thumbprint to pin (AB:CD:...: 20 hex pairs)."
    )
    ca_certificate: Pem | None = Field(
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
    dns: list[IPv4] = Field(min_length=1, description="DNS resolvers; pods use the first 3 (the kubelet's limit).")
    search_domains: list[DnsName] = Field(default_factory=list, description="DNS search domains.")
    ntp: list[HostName] = Field(
        default_factory=list, description="NTP servers (host names or IPv4 addresses); empty: Ubuntu's defaults."
    )
    protected_networks: list[ProtectedNetwork] = Field(
        default_factory=list,
        description="Networks county pods must never reach besides the node, pod and Service networks and the API "
        "endpoint (always left out), as CIDRs: vCenter's and the ESXi hosts' management networks (needed when "
        "`vsphere.server` is a name), other internal services; API and Sentinel may reach every other outside address. "
        "Not 0.0.0.0/0 (Kubernetes refuses it there); 0.0.0.0/1 and 128.0.0.0/1 cut them off from every outside address.",
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

    user: LoginName = Field(default="chtadmin", description="Admin user created on every node (not root).")
    authorized_keys: list[SshPublicKey] = Field(
        default_factory=list,
        description="Operators' SSH public keys, one key line per entry (the program adds its own generated key).",
    )


class K3sConfig(Model):
    """`cht-hosting:k3s`: the Kubernetes distribution on the nodes."""

    version: K3sVersion = Field(description="k3s release, vX.Y.Z+k3sN.")
    api_endpoint: HostName = Field(
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
    kube_vip_version: KubeVipVersion = Field(
        default="v1.0.0", description="kube-vip release (image tag) that holds the VIP, vX.Y.Z."
    )
    kube_vip_interface: InterfaceName | None = Field(
        default=None,
        description="Network interface on the servers that carries the VIP; unset, kube-vip uses the interface "
        "of the default route (vmxnet3 NICs come up as ens160, ens192 or ens224 depending on the VM).",
    )
    system_upgrade_controller_version: SucVersion = Field(
        default="v0.20.1", description="system-upgrade-controller release that runs the rolling k3s upgrades."
    )
    system_upgrade_controller_url: UrlTemplate = Field(
        default="https://github.com/rancher/system-upgrade-controller/releases/download/{version}",
        description="Where the controller's crd.yaml and system-upgrade-controller.yaml are fetched from; "
        "`{version}` is replaced by systemUpgradeControllerVersion (a mirror for air-gapped sites).",
    )
    registry_mirrors: dict[
        RegistryName, Annotated[list[HttpUrl], Field(min_length=1)]
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
    version: SnapshotterVersion | None = Field(
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

    name: StorageClassName = Field(default="vmware-sc", description="StorageClass name.")
    storage_policy_name: StoragePolicyName | None = Field(
        default=None, description="vSphere storage policy (SPBM) name."
    )
    datastore_url: DatastoreUrl | None = Field(
        default=None, description="Datastore URL, e.g. ds:///vmfs/volumes/<uuid>/ (instead of or with a policy)."
    )
    fs_type: Literal["ext4", "xfs"] = Field(default="ext4", description="Filesystem of new volumes.")


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

    spare_agents: Annotated[int, Field(ge=0, le=grammar.MAX_COUNT)] = Field(
        default=1, description="Agents the counties must survive losing (N-1 by default)."
    )
    reserved_cpu_per_agent: Annotated[float, Field(ge=0, le=grammar.MAX_COUNT)] = Field(
        default=1, description="CPU per agent kept for the OS, k3s and node daemons."
    )
    reserved_memory_gb_per_agent: Annotated[float, Field(ge=0, le=grammar.MAX_COUNT)] = Field(
        default=4, description="Memory per agent kept for the OS, k3s and node daemons, GB."
    )
    on_shortfall: Literal["error", "warn"] = Field(
        default="error", description="When the counties do not fit: refuse to run (error) or only warn."
    )


# --- backups ----------------------------------------------------------------------------------------------

# The descriptors robfig/cron (k3s, Velero and Kubernetes CronJobs all parse with it) accepts besides five fields.




class S3Storage(Model):
    """`cht-hosting:backup.s3`: the S3-compatible object storage on the ministry's premises (e.g. MinIO)."""

    endpoint: S3Endpoint = Field(
        description="https://host[:port] of the storage (no path). http:// only with `insecure: true` (a lab)."
    )
    bucket: Bucket = Field(
        description="Bucket every backup goes to (create it first, and a key pair per folder: docs/backups.md#the-keys)."
    )
    region: Region = Field(
        default="us-east-1", description="Region name the storage expects (MinIO's default is us-east-1)."
    )
    ca_bundle: Pem | None = Field(
        default=None, description="PEM CA bundle that signed the storage's certificate; default: the system CAs."
    )
    insecure: bool = Field(
        default=False, description="Allow an http:// endpoint (keys and data in clear text: a lab only; the plan warns)."
    )
    force_path_style: bool = Field(
        default=True, description="Address the bucket as <endpoint>/<bucket> (MinIO needs this) rather than as a host."
    )
    object_lock: Literal["required", "preferred", "off"] = Field(
        default="preferred",
        description="Object lock (immutable copies) on the bucket, as the plan's `restore/check-bucket.sh` checks it "
        "with the store: required fails the check when the bucket has no versioning, no object lock or no default "
        "retention; preferred only warns; off skips it (docs/backups.md#immutability-object-lock).",
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

    window_start: TimeOfDay = Field(
        default="01:00",
        description="When the nightly backup window opens (HH:MM, UTC); each county starts at its own minute inside it.",
    )
    window_hours: Annotated[int, Field(ge=1, le=23)] = Field(
        default=8,
        description="How long the window is. Velero backs up one county at a time, so every county's estimated "
        "read time must fit in it one after another (the plan shows the slots).",
    )
    read_mib_per_second: Annotated[float, Field(gt=0, le=10000)] = Field(
        default=100,
        description="Assumed speed at which the node agent reads a CouchDB volume (MiB/s), for the window check; "
        "measure a real backup (`velero backup describe --details`) and set it.",
    )
    on_overrun: Literal["error", "warn"] = Field(
        default="error",
        description="What happens when the counties' estimated backups do not fit in the window: error stops "
        "the update naming what to change; warn lets it go on (the last counties' backups start late).",
    )
    schedule: str | None = Field(
        default=None,
        description="Removed: replaced by windowStart and windowHours (one start per county inside the window). "
        "Refused when set.",
    )
    retention_days: Annotated[int, Field(ge=1, le=3650)] = Field(
        default=30, description="Days a county backup is kept; a county may override it with `backupRetentionDays`."
    )
    prefix: Folder = Field(default="cht-hosting/counties", description="Folder in the bucket for Velero's data.")
    growth_percent_per_day: Annotated[float, Field(ge=0, le=100)] = Field(
        default=0.5,
        description="Assumed daily change of a county's data, % of its volume; only used for the plan's storage estimate.",
    )


def _no_tolerance(value: object) -> object:
    if isinstance(value, dict) and "maxDocCountDifferencePercent" in value:
        raise PydanticCustomError(
            "obsolete",
            "maxDocCountDifferencePercent is no longer used: the drill compares each restored copy with the record "
            "its backup holds, with no tolerance; remove the key",
        )
    return value


class RestoreDrillConfig(Model):
    """`cht-hosting:backup.drill`: the CronJob `restore-drill` that restores counties' latest backups into a
    scratch namespace and checks each against the record taken at backup time."""

    enabled: bool = Field(default=True, description="Rehearse restores on a schedule (a backup counts once restored).")
    schedule: Cron = Field(
        default="0 5 * * *",
        description="When a drill run starts (cron, UTC); each run drills `countiesPerRun` counties, failed ones first.",
    )
    counties_per_run: Annotated[int, Field(ge=1, le=500)] | None = Field(
        default=None,
        description="Counties one run drills, one after the other; default: the fewest that drill every county "
        "within 30 days on `schedule` (the plan prints the cadence).",
    )
    image: Image = Field(
        default="docker.io/alpine/k8s:1.35.0",
        description="Image the drill runs in; it needs bash, kubectl, curl, jq, awk, md5sum and base64 (a mirror for air-gapped sites).",
    )
    timeout_minutes: Annotated[int, Field(ge=10, le=1440)] = Field(
        default=240, description="How long one county's drill may take (restore, CouchDB start, comparison) before it fails."
    )
    restore_time_goal_minutes: Annotated[int, Field(ge=1, le=10080)] = Field(
        default=240,
        description="Restore time objective (RTO): a drill's restore, from the Velero Restore to every CouchDB node "
        "answering, longer than this alerts.",
    )
    recovery_point_goal_hours: Annotated[int, Field(ge=1, le=2160)] = Field(
        default=30,
        description="Recovery point objective (RPO): the restored data older than this at restore time (the "
        "backup's record to the Restore) alerts.",
    )
    storage_class: StorageClassName | None = Field(
        default=None,
        description="StorageClass for the drill's scratch volumes; it must delete them (reclaimPolicy Delete). "
        "Default in vsphere-k3s mode: `<storageClass.name>-restore-drill`, which the program creates; required "
        "in existing mode.",
    )


class VeleroConfig(Model):
    """`cht-hosting:backup.velero`: the Velero release (chart pinned; see config/compatibility.yaml)."""

    namespace: NamespaceName = Field(default="velero", description="Namespace of Velero, its node agent and the drill.")
    chart_version: VeleroChartVersion = Field(
        default="12.1.0", description="vmware-tanzu/helm-charts velero chart version (12.1.0 runs Velero v1.18.1)."
    )
    chart_repository: Url = Field(
        default="https://vmware-tanzu.github.io/helm-charts", description="Helm repository of the chart; a mirror URL."
    )
    image: Image | None = Field(default=None, description="Velero image (repository:tag); default: the chart's.")
    aws_plugin_image: Image = Field(
        default="docker.io/velero/velero-plugin-for-aws:v1.14.2",
        description="The AWS (S3) object store plugin; v1.14.x goes with Velero v1.18.x.",
    )


class BackupConfig(Model):
    """`cht-hosting:backup`: off-cluster backups to S3-compatible storage; keys (secrets): Velero's
    `backupAccessKeyId`/`backupSecretAccessKey`, the servers' `etcdBackupAccessKeyId`/`etcdBackupSecretAccessKey`."""

    s3: S3Storage = Field(description="Where backups go.")
    etcd: EtcdSnapshotsConfig | None = Field(
        default=None, description="Control-plane snapshots (vsphere-k3s mode; default there: the defaults below)."
    )
    counties: CountyBackupsConfig = Field(default_factory=CountyBackupsConfig, description="County backups.")
    drill: Annotated[RestoreDrillConfig, BeforeValidator(_no_tolerance)] = Field(
        default_factory=RestoreDrillConfig, description="The scheduled restore drill."
    )
    velero: VeleroConfig = Field(default_factory=VeleroConfig, description="The Velero release.")


# --- counties ---------------------------------------------------------------------------------------------


class Budget(Model):
    """A county's share of the cluster: what its namespace may request in total."""

    cpu: PositiveFloat = Field(description="CPU cores the county's pods request in total.")
    memory_gb: PositiveFloat = Field(description="Memory the county's pods request in total, GB.")


class TlsSettings(Model):
    """How the county's Ingress gets its certificate."""

    secret_name: SecretName = Field(
        default="cht-tls",
        description="TLS Secret (in the county's namespace) the Ingress serves; create it, or let cert-manager "
        "fill it via `clusterIssuer`.",
    )
    cluster_issuer: IssuerName | None = Field(
        default=None,
        description="cert-manager ClusterIssuer that issues `secretName`; default: none (bring the Secret). An HTTP-01 "
        "solver of it must set `serviceType: ClusterIP` (county quotas admit no NodePort) and `ingressClassName: traefik`.",
    )


class VsphereVolume(Model):
    """An existing vSphere (CNS) volume that holds a Compose deployment's CouchDB data."""

    volume_handle: VolumeHandle = Field(
        description="The CNS volume ID (First Class Disk ID) the CSI driver attaches, e.g. from `govc disk.ls`."
    )


class HostPathVolume(Model):
    """A directory on one node that holds a Compose deployment's CouchDB data (the pod is pinned to that node)."""

    host_path: HostPath = Field(
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
    data_path: DataPath = Field(
        default="data",
        description="Where CouchDB's data is inside each volume (subPath; %d is the node number; \"\" is the root).",
    )


class ChtSettings(Model):
    """`cht-hosting:cht`: defaults for every county; each county's overrides under `counties` use the same keys."""

    version: ChtVersion = Field(description="CHT Core release, X.Y.Z (4.x or 5.x).")
    couchdb_nodes: CouchdbNodes = Field(
        default=1, description="CouchDB nodes: 1, or 3 for a clustered CouchDB."
    )
    couchdb_storage_gb: PositiveInt = Field(
        default=100, description="Volume per CouchDB node, GB; raise it to grow in place (never shrink)."
    )
    budget: Budget = Field(
        default_factory=lambda: Budget(cpu=4, memory_gb=16),
        description="The county's resource budget (requests), split across its services.",
    )
    host_template: HostTemplate = Field(
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
    couchdb_user: CouchdbUser = Field(
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

    @property
    def url(self) -> str:
        """Where the county's CHT answers (its Ingress host, TLS)."""
        return f"https://{self.host}"


class ExistingClusterConfig(Model):
    """`cht-hosting:existingCluster`: the cluster the counties go on when `clusterMode` is `existing`."""

    context: KubeContext | None = Field(
        default=None,
        description="kube context to use; without the `kubeconfig` secret, from the operator's own kubeconfig.",
    )
    storage_class: StorageClassName = Field(description="Name of an existing StorageClass for the CouchDB volumes.")
    protected_networks: list[ProtectedNetwork] = Field(
        default_factory=list,
        description="Networks county pods must never reach (the nodes, the cluster's pod and Service networks, the "
        "Kubernetes API, vCenter), as CIDRs; API and Sentinel may reach every other outside address. Not 0.0.0.0/0 "
        "(Kubernetes refuses it there); 0.0.0.0/1 and 128.0.0.0/1 cut them off from every outside address.",
    )


class DeployedStateConfig(Model):
    """`cht-hosting:deployedState`: where the program reads what it last deployed, and one-off acceptances."""

    organization: Organization | None = Field(
        default=None,
        description="Organization of this stack, read as `<organization>/cht-hosting/<stack>` for the last "
        "deployed state; default: the current one (`organization` on a self-managed backend).",
    )
    accept: list[AcceptableChange] = Field(
        default_factory=list,
        description=accept.described(),
    )


class StacksConfig(Model):
    """`cht-hosting:stacks`: a deployment split into a platform stack and county stacks (one program, one
    project). Absent: this stack holds the platform and every county."""

    counties: list[StackName] = Field(
        default_factory=list,
        description="In the platform stack: its county stacks, each `Pulumi.<name>.yaml` in this folder with "
        "`stacks.platform` naming this stack and its own `counties`. Every stack reads them all, so capacity, "
        "the backup window and host names are checked for every county of the deployment.",
    )
    platform: StackName | None = Field(
        default=None,
        description="In a county stack: the platform stack (its file `Pulumi.<name>.yaml` in this folder holds "
        "every other setting; its outputs give the cluster and the StorageClass). A county stack's file sets "
        "only `stacks`, `counties`, `migratedCredentials` and `deployedState`.",
    )


# --- monitoring -------------------------------------------------------------------------------------------


class EmailRoute(Model):
    """Where alert e-mails go and the SMTP server that sends them (its password: `monitoringSmtpPassword`)."""

    to: list[Email] = Field(min_length=1, description="Recipients, e.g. [platform-ops@moh.example.org].")
    sender: Email = Field(alias="from", description="Sender address of alert e-mails.")
    smarthost: SmartHost = Field(
        description="SMTP server as host:port, e.g. smtp.moh.example.org:587."
    )
    username: SmtpLogin | None = Field(
        default=None,
        description="SMTP login; its password is the secret `monitoringSmtpPassword`. None: no SMTP authentication.",
    )
    require_tls: bool = Field(default=True, description="Refuse to send unless the server offers STARTTLS.")
    send_resolved: bool = Field(default=True, description="Also e-mail when an alert resolves.")


class WebhookRoute(Model):
    """A webhook that receives every alert (Alertmanager's JSON)."""

    url: WebhookUrl | None = Field(
        default=None,
        description="Webhook URL without credentials; one that carries a token goes in the secret "
        "`monitoringWebhookUrl` instead (then leave this out).",
    )
    send_resolved: bool = Field(default=True, description="Also notify when an alert resolves.")


class HeartbeatRoute(Model):
    """A dead-man's switch outside the cluster: the always-firing `Watchdog` alert is sent to it on a schedule,
    and the service alerts when the pings stop (Prometheus, Alertmanager or their way out is down)."""

    url: HeartbeatUrl | None = Field(
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
        default=35,
        description="A county's restore drill has not passed for this long (it must exceed the drill's cadence, "
        "which the plan prints: every county within 30 days).",
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
    stacks: StacksConfig | None = None
    backup: BackupConfig | None = None
    monitoring: MonitoringConfig | None = None
    cht: ChtSettings
    counties: dict[str, County]
