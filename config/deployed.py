"""What the stack last deployed: exported as one versioned `deployedState` output, read back next time.

The program reads its own stack's previous outputs through a `StackReference` to itself
(`<organization>/<project>/<stack>`; `organization` on a self-managed backend), before any resource is
registered, so `guards.py` can refuse edits that would reset, shrink, downgrade or re-seed what runs.
On a stack's first update the reference has no outputs: nothing is deployed, every edit is accepted.

`deployedState` holds no secret: names, sizes, versions, addresses, the CouchDB admin user names.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from . import grammar, versions
from .errors import PROJECT, ConfigError
from .model import StackConfig

OUTPUT = "deployedState"
SCHEMA = 1


def _release(text: str) -> str:
    versions.release(text)  # the guards compare releases: what this program wrote always parses
    return text


Release = Annotated[str, AfterValidator(_release)]
Network = Annotated[str, AfterValidator(grammar.ipv4_network)]


class _Record(BaseModel):
    # Read leniently (a newer program may add keys); `schema` says whether this program understands it.
    model_config = ConfigDict(frozen=True, extra="ignore", alias_generator=to_camel, validate_by_name=True)


class DeployedCounty(_Record):
    couchdb_nodes: int
    couchdb_storage_gb: int
    couchdb_user: str | None = None  # None: recorded by a program that did not export it
    version: Release
    # Its host name: a new county taking a removed county's host is a rename. None: recorded before it was.
    host: str | None = None
    # config | admin-app; None: recorded before it was (the county is taken to have run the upgrade service).
    upgrades: str | None = None


def app_may_have_upgraded(deployed: DeployedState | None, county: str) -> bool:
    """Whether the admin app's upgrade service may have changed the county's CHT containers: False only when the
    last update recorded the county with `upgrades: config` (no upgrade service ran since)."""
    record = deployed.counties.get(county) if deployed else None
    return record is None or record.upgrades != "config"


class DeployedNode(_Record):
    role: str  # "server" | "agent"
    address: str
    hardware_version: int | None = None
    disk_gb: int | None = None
    # The VM's vCPUs and memory (GB); None: recorded before they were.
    cpus: int | None = None
    memory_gb: int | None = None
    # False: its k3s install predates installs that are replaced with their VM.
    k3s_follows_vm: bool = Field(default=False, alias="k3sFollowsVm")
    # Digest of the k3s configuration the node was given (no secrets): a change restarts k3s on it.
    k3s_config: str | None = Field(default=None, alias="k3sConfig")


class DeployedState(_Record):
    schema_: int = Field(alias="schema")
    cluster_mode: str = "vsphere-k3s"
    counties: dict[str, DeployedCounty] = Field(default_factory=dict)
    nodes: dict[str, DeployedNode] = Field(default_factory=dict)
    etcd_seed: str | None = None
    k3s_version: Release | None = Field(default=None, alias="k3sVersion")
    csi_cluster_id: str | None = None
    # None: recorded by a release that did not set k3s secrets-encryption, so the cluster runs without it.
    secrets_encryption: bool | None = None
    # The StorageClass the counties' volumes were provisioned from; None: recorded before it was.
    storage_class: str | None = None
    # Whether backups were configured; None: recorded before it was.
    backup: bool | None = None
    # Fixed when the cluster and its VMs were built; None: recorded before they were.
    cluster_cidr: Network | None = None
    service_cidr: Network | None = None
    ssh_user: str | None = None

    @property
    def servers(self) -> list[str]:
        return sorted(name for name, node in self.nodes.items() if node.role == "server")


def stack_name(organization: str, project: str, stack: str) -> str:
    return f"{organization}/{project}/{stack}"


def parse(outputs: dict[str, Any] | None, source: str) -> DeployedState | None:
    """The deployed state in a stack's outputs (`pulumi stack output --json`); None when nothing is deployed.

    A stack deployed before `deployedState` existed still exported `counties` and `csiClusterId`: those
    are remembered (without the admin user names, the servers and the nodes).
    """
    outputs = outputs or {}
    state = outputs.get(OUTPUT)
    if state is None:
        return _legacy(outputs, source)
    try:
        parsed = DeployedState.model_validate(state)
    except ValidationError as error:
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()[:5])
        raise ConfigError(
            [f"{OUTPUT} (the output of {source}): is not one this program wrote ({detail}); check the stack "
             "name (cht-hosting:deployedState.organization) and the program version"]
        ) from None
    if parsed.schema_ > SCHEMA:
        raise ConfigError(
            [f"{OUTPUT} (the output of {source}): was written by a newer cht-hosting (schema {parsed.schema_}, "
             f"this program knows {SCHEMA}); deploy with that version or newer"]
        )
    return parsed


def _legacy(outputs: dict[str, Any], source: str) -> DeployedState | None:
    counties = outputs.get("counties")
    if not isinstance(counties, dict) or not counties:
        return None
    try:
        return DeployedState.model_validate(
            {"schema": 0, "counties": counties, "csiClusterId": outputs.get("csiClusterId")}
        )
    except ValidationError:
        raise ConfigError(
            [f"counties (the output of {source}): is not one this program wrote; check the stack name "
             "(cht-hosting:deployedState.organization)"]
        ) from None


def etcd_seed(deployed: DeployedState | None, config: StackConfig) -> str | None:
    """The server that seeded the deployed k3s cluster; None while no cluster exists (a first deploy).

    A cluster recorded without its seed (deployed before the seed was remembered) exists all the same: its
    seed was the first control-plane node in config order. Any name tells K3sCluster not to seed again.
    """
    if deployed is None or deployed.cluster_mode != "vsphere-k3s" or config.cluster_mode != "vsphere-k3s":
        return None
    if deployed.etcd_seed:
        return deployed.etcd_seed
    return deployed.servers[0] if deployed.servers else next(iter(config.control_plane.nodes))


def k3s_installs_before_vm_tracking(deployed: DeployedState | None, config: StackConfig) -> frozenset[str]:
    """Nodes of this config whose k3s install was created before installs followed their VM's identity.

    Their install and drain carry no VM trigger in the stack's state: adding one now would be a replacement,
    which uninstalls k3s (and a server's etcd data) from every such node at once. They keep the install they
    have; a node removed and added again (docs/runbooks/replace-node.md) follows its VM from then on.
    """
    if etcd_seed(deployed, config) is None:
        return frozenset()  # no cluster yet: every install follows its VM
    assert deployed is not None
    nodes = {**config.control_plane.nodes, **config.agents.nodes}
    if not deployed.nodes:  # recorded before the nodes were: all of them may be old
        return frozenset(nodes)
    return frozenset(n for n in nodes if n in deployed.nodes and not deployed.nodes[n].k3s_follows_vm)


def storage_class_of(config: StackConfig) -> str | None:
    """The StorageClass the counties' CouchDB volumes come from."""
    if config.storage_class is not None:
        return config.storage_class.name
    return config.existing_cluster.storage_class if config.existing_cluster is not None else None


def snapshot(
    config: StackConfig,
    *,
    etcd_seed: str | None,
    csi_cluster_id: str | None,
    k3s_before_vm_tracking: frozenset[str] = frozenset(),
    k3s_config: dict[str, str] | None = None,
    counties: Iterable[str] | None = None,
    platform: bool = True,
) -> dict[str, Any]:
    """The `deployedState` output for what this update deploys (camelCase, as every output). `k3s_config`: each
    node's configuration digest (K3sCluster.config_digests). `counties`: the ones this stack registers (default:
    all); `platform`: whether this stack builds the platform (a county stack records no nodes)."""
    nodes: dict[str, DeployedNode] = {}
    if platform and config.cluster_mode == "vsphere-k3s":
        hardware = config.vsphere.hardware_version
        for role, pool in (("server", config.control_plane), ("agent", config.agents)):
            for name, address in pool.nodes.items():
                nodes[name] = DeployedNode(
                    role=role,
                    address=address,
                    hardware_version=hardware,
                    disk_gb=pool.disk_gb,
                    cpus=pool.cpus,
                    memory_gb=pool.memory_gb,
                    k3s_follows_vm=name not in k3s_before_vm_tracking,
                    k3s_config=(k3s_config or {}).get(name),
                )
    state = DeployedState(
        schema_=SCHEMA,
        cluster_mode=config.cluster_mode,
        counties={
            name: DeployedCounty(
                couchdb_nodes=county.settings.couchdb_nodes,
                couchdb_storage_gb=county.settings.couchdb_storage_gb,
                couchdb_user=county.settings.couchdb_user,
                version=county.settings.version,
                host=county.host,
                upgrades=county.settings.upgrades,
            )
            for name, county in config.counties.items()
            if counties is None or name in counties
        },
        nodes=nodes,
        etcd_seed=etcd_seed,
        k3s_version=config.k3s.version if config.k3s else None,
        csi_cluster_id=csi_cluster_id,
        secrets_encryption=config.k3s.secrets_encryption if config.k3s else None,
        storage_class=storage_class_of(config),
        backup=config.backup is not None,
        cluster_cidr=config.k3s.cluster_cidr if config.k3s else None,
        service_cidr=config.k3s.service_cidr if config.k3s else None,
        ssh_user=config.ssh.user if config.cluster_mode == "vsphere-k3s" and config.ssh else None,
    )
    return state.model_dump(by_alias=True)


def read(organization: str | None, stack: str | None = None) -> tuple[DeployedState | None, str]:
    """Read the stack's own previous outputs (a StackReference to itself; `stack`: another stack of the same
    deployment) and wait for them.

    Nothing else is registered before this returns: the guards decide whether the update may go on.
    """
    outputs, source = read_outputs(organization, stack)
    return parse(outputs, source), source


def read_outputs(organization: str | None, stack: str | None = None) -> tuple[dict[str, Any], str]:
    """A stack's outputs (this stack's by default) as the last update left them; {} for a stack never deployed."""
    import pulumi
    from pulumi.runtime.sync_await import _sync_await  # the SDK's own way to wait inside a program (invokes)

    own = stack is None or stack == pulumi.get_stack()
    source = stack_name(organization or pulumi.get_organization(), pulumi.get_project(), stack or pulumi.get_stack())
    try:
        name = f"{PROJECT}-deployed-state" if own else f"{PROJECT}-deployed-state-{stack}"
        reference = pulumi.StackReference(name, stack_name=source)
        outputs = _sync_await(reference.outputs.future())
    except Exception as error:  # the backend's message (unknown stack, no access) is what the operator needs
        whose = "the stack's own outputs" if own else f"the outputs of stack {stack}"
        raise ConfigError(
            [f"{PROJECT}:deployedState.organization: reading {whose} from {source} failed "
             f"({error}); set the organization that holds the deployment's stacks"
             + ("" if own else f", and create the stack (pulumi stack init {stack})")]
        ) from None
    return outputs or {}, source
