"""Capacity planning: do the counties' quotas fit on the agents with one agent lost (N-1)?

Pure arithmetic over the validated config, so it runs before anything is registered and the plan can
print it. CHT runs only on agents (the servers are tainted), so only the agent pool counts. What counts is
what each county's ResourceQuota admits (its budget plus `quotaHeadroomPercent`), and placement: a
clustered county's CouchDB nodes must run on distinct agents, so it needs that many serving agents.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from . import sizing
from .errors import key_path
from .model import ChtSettings, MonitoringConfig, StackConfig
from .sizing import LIMIT_FACTOR

# What backups run on the agents (components/backup renders these as the pods' requests): Velero's server
# once, its node agent (kopia) on every agent, the drill's Job, and while a drill runs, a copy of one
# county's CouchDB, counted at that county's whole budget (an upper bound).
VELERO_SERVER_REQUESTS = (0.5, 0.5)  # CPU, GB
NODE_AGENT_REQUESTS = (0.5, 1.0)  # CPU, GB, per agent
DRILL_JOB_REQUESTS = (0.1, 0.125)  # CPU, GB


@dataclass(frozen=True)
class CountyLoad:
    name: str
    cpu: float  # what the county's quota admits in requests (budget + headroom)
    memory_gb: float
    couchdb_nodes: int = 1
    services: tuple[tuple[str, int, sizing.Resources], ...] = ()
    """(service, containers, requests and limits per container): the budget's split."""


@dataclass(frozen=True)
class PodSize:
    """One platform workload's requests per pod (limits are LIMIT_FACTOR times them)."""

    name: str
    cpu_m: int
    memory_mi: int
    replicas: int = 1
    per_node: bool = False  # a DaemonSet: one pod on every node, `replicas` ignored

    def resources(self) -> dict:
        return {
            "requests": {"cpu": f"{self.cpu_m}m", "memory": f"{self.memory_mi}Mi"},
            "limits": {"cpu": f"{self.cpu_m * LIMIT_FACTOR}m", "memory": f"{self.memory_mi * LIMIT_FACTOR}Mi"},
        }


# k3s's traefik, a DaemonSet on every agent (components/edge). traefik-helm-chart leaves `resources: {}` and
# suggests requests of 100m CPU and 50Mi in the comment beside it (traefik/values.yaml); we request 128Mi, as
# traefik holds a router, a service and a TLS store entry per county host in memory.


def monitoring_pods(monitoring: MonitoringConfig) -> dict[str, PodSize]:
    """What the monitoring stack requests, container by container: the one place its sizes are decided.

    The chart values are rendered from this table, and the capacity check adds it to the counties.
    Prometheus is sized from config; the others hold little state and scale with object counts
    (kube-state-metrics) or stay flat.
    """
    prometheus = monitoring.prometheus
    sizes = [
        PodSize("prometheus", round(prometheus.cpu * 1000), round(prometheus.memory_gb * 1024)),
        PodSize("prometheus-config-reloader", 10, 50),
        PodSize("alertmanager", 50, 128),
        PodSize("alertmanager-config-reloader", 10, 50),
        PodSize("prometheus-operator", 100, 256),
        PodSize("kube-state-metrics", 100, 256),
        PodSize("json-exporter", 50, 64),
        PodSize("node-exporter", 50, 64, per_node=True),
    ]
    return {s.name: s for s in sizes}


# k3s's traefik, a DaemonSet on every agent (components/edge renders these requests). traefik-helm-chart leaves
# `resources: {}` and suggests requests of 100m CPU and 50Mi in the comment beside it (traefik/values.yaml); we
# request 128Mi, as traefik holds a router, a service and a TLS store entry per county host in memory.
TRAEFIK = PodSize("traefik", 100, 128, per_node=True)


@dataclass(frozen=True)
class CapacityReport:
    servers: int
    cpu_per_server: float
    memory_gb_per_server: float
    agents: int
    spare_agents: int
    cpu_per_agent: float
    memory_gb_per_agent: float
    counties: tuple[CountyLoad, ...]
    servers_apart: bool = True
    """A DRS anti-affinity rule keeps the servers on distinct ESXi hosts (`controlPlane.antiAffinity`)."""
    agents_apart: bool = True
    """A DRS anti-affinity rule keeps the agents on distinct ESXi hosts (`agents.antiAffinity`)."""
    platform: tuple[CountyLoad, ...] = ()
    """Platform workloads on the agents (the monitoring stack's Deployments and StatefulSets)."""
    per_agent: tuple[CountyLoad, ...] = ()
    """Platform DaemonSets (traefik, node-exporter, Velero's node agent): one pod on every agent, taken off each
    agent's allocatable."""
    largest_pod: CountyLoad | None = None
    """The pod with the largest requests (a county's CouchDB, Prometheus, the drill's copy): it must fit on one
    agent, whatever the total."""
    largest_pod_key: str = ""
    """The config key that sizes it."""

    @property
    def pod_fits(self) -> bool:
        pod = self.largest_pod
        return pod is None or (pod.cpu <= self.cpu_per_agent and pod.memory_gb <= self.memory_gb_per_agent)

    @property
    def esxi_hosts_needed(self) -> int:
        """ESXi hosts the anti-affinity rules need to be honoured: one per VM of the largest kept-apart pool
        (the two pools' rules are independent, so a server and an agent may share a host)."""
        pools = [n for n, apart in ((self.servers, self.servers_apart), (self.agents, self.agents_apart)) if apart and n >= 2]
        return max(pools, default=0)

    @property
    def serving_agents(self) -> int:
        return max(self.agents - self.spare_agents, 0)

    @property
    def allocatable_cpu(self) -> float:
        return self.serving_agents * self.cpu_per_agent

    @property
    def allocatable_memory_gb(self) -> float:
        return self.serving_agents * self.memory_gb_per_agent

    @property
    def county_cpu(self) -> float:
        return sum(c.cpu for c in self.counties)

    @property
    def county_memory_gb(self) -> float:
        return sum(c.memory_gb for c in self.counties)

    @property
    def platform_cpu(self) -> float:
        return sum(p.cpu for p in self.platform)

    @property
    def platform_memory_gb(self) -> float:
        return sum(p.memory_gb for p in self.platform)

    @property
    def requested_cpu(self) -> float:
        return self.county_cpu + self.platform_cpu

    @property
    def requested_memory_gb(self) -> float:
        return self.county_memory_gb + self.platform_memory_gb

    @property
    def agents_for_placement(self) -> int:
        """Serving agents the most spread county needs: one per CouchDB node (required anti-affinity)."""
        return max((c.couchdb_nodes for c in self.counties), default=1)

    @property
    def agents_needed(self) -> int:
        """Agents of the configured size that hold every quota, and place every clustered county's nodes on
        distinct agents, with `spare_agents` lost."""
        by_cpu = math.ceil(self.requested_cpu / self.cpu_per_agent) if self.cpu_per_agent > 0 else math.inf
        by_memory = (
            math.ceil(self.requested_memory_gb / self.memory_gb_per_agent) if self.memory_gb_per_agent > 0 else math.inf
        )
        return max(by_cpu, by_memory, self.agents_for_placement) + self.spare_agents

    @property
    def fits(self) -> bool:
        return self.agents >= self.agents_needed and self.pod_fits


def plan(config: StackConfig) -> CapacityReport:
    """The one capacity computation: validation refuses on it, the plan prints it, the stack exports it."""
    agents, capacity = config.agents, config.capacity
    daemons = (_per_node(TRAEFIK), *platform_loads(config, per_node=True))
    loads = [_load(name, c.settings) for name, c in config.counties.items()]
    if config.backup is not None:
        daemons += (CountyLoad("velero node agent (on each agent)", *NODE_AGENT_REQUESTS),)
        drilled = [c.settings.budget for c in config.counties.values()]  # every county, one at a time
        copy = max(drilled, key=lambda b: (b.cpu, b.memory_gb)) if drilled and config.backup.drill.enabled else None
        loads.append(
            CountyLoad(
                "(backup: velero, drill)",
                VELERO_SERVER_REQUESTS[0] + DRILL_JOB_REQUESTS[0] + (copy.cpu if copy else 0),
                VELERO_SERVER_REQUESTS[1] + DRILL_JOB_REQUESTS[1] + (copy.memory_gb if copy else 0),
            )
        )
    cpu_per_agent = round(agents.cpus - capacity.reserved_cpu_per_agent - sum(d.cpu for d in daemons), 3)
    memory_gb_per_agent = round(
        agents.memory_gb - capacity.reserved_memory_gb_per_agent - sum(d.memory_gb for d in daemons), 3
    )
    largest, key = _largest_pod(config, cpu_per_agent, memory_gb_per_agent)
    return CapacityReport(
        servers=len(config.control_plane.nodes),
        cpu_per_server=config.control_plane.cpus,
        memory_gb_per_server=config.control_plane.memory_gb,
        agents=len(agents.nodes),
        spare_agents=capacity.spare_agents,
        # What runs on every agent comes off each agent like the OS reserve.
        cpu_per_agent=cpu_per_agent,
        memory_gb_per_agent=memory_gb_per_agent,
        counties=tuple(loads),
        servers_apart=config.control_plane.anti_affinity,
        agents_apart=agents.anti_affinity,
        platform=platform_loads(config),
        per_agent=daemons,
        largest_pod=largest,
        largest_pod_key=key,
    )


def _per_node(pod: PodSize) -> CountyLoad:
    return CountyLoad(f"{pod.name} (on each agent)", round(pod.cpu_m / 1000, 3), round(pod.memory_mi / 1024, 3))


def _largest_pod(config: StackConfig, cpu: float, memory_gb: float) -> tuple[CountyLoad | None, str]:
    """The single pod with the largest requests against one agent's `cpu` and `memory_gb`, and the key that
    sizes it. A county's services are counted per container (each of its pods holds one)."""
    pods: list[tuple[CountyLoad, str]] = []
    for name, county in config.counties.items():
        for service, resources in sizing.split(county.settings).items():
            pods.append(
                (
                    CountyLoad(f"{name}: {service}", resources.cpu_m / 1000, resources.memory_mi / 1024),
                    key_path("counties", name, "budget"),
                )
            )
    monitoring = config.monitoring
    if monitoring is not None and monitoring.enabled:
        prometheus = monitoring.prometheus
        pods.append((CountyLoad("prometheus", prometheus.cpu, prometheus.memory_gb), key_path("monitoring", "prometheus")))
    if not pods:
        return None, ""
    share = lambda pod: max(pod.cpu / cpu if cpu > 0 else math.inf, pod.memory_gb / memory_gb if memory_gb > 0 else math.inf)  # noqa: E731
    return max(pods, key=lambda p: share(p[0]))


def platform_loads(config: StackConfig, per_node: bool = False) -> tuple[CountyLoad, ...]:
    """The monitoring stack's requests on the agents: its pods (or, with `per_node`, what its DaemonSet
    puts on each agent)."""
    monitoring = config.monitoring
    if monitoring is None or not monitoring.enabled:
        return ()
    return tuple(
        CountyLoad(
            f"{pod.name} (on each agent)" if per_node else f"{pod.name} x{pod.replicas}",
            round(pod.cpu_m * (1 if per_node else pod.replicas) / 1000, 3),
            round(pod.memory_mi * (1 if per_node else pod.replicas) / 1024, 3),
        )
        for pod in monitoring_pods(monitoring).values()
        if pod.per_node == per_node
    )


def _load(name: str, settings: ChtSettings) -> CountyLoad:
    cpu, memory_gb = sizing.quota_requests(settings)
    count = {"couchdb": settings.couchdb_nodes}
    services = tuple((s, count.get(s, 1), r) for s, r in sizing.split(settings).items())
    return CountyLoad(name, cpu, memory_gb, settings.couchdb_nodes, services)


def _split_lines(report: CapacityReport) -> list[str]:
    """Per-service requests, once for each distinct split, with the counties that share it."""
    shapes: dict[tuple, list[str]] = {}
    for c in report.counties:
        if c.services:  # not the backup line
            shapes.setdefault(c.services, []).append(c.name)
    lines = ["Per container (the budget's split):", f"  {'':<31}{'requests CPU, memory':>20}{'limits CPU, memory':>20}"]
    for services, counties in shapes.items():
        shown = ", ".join(counties[:6]) + (f" and {len(counties) - 6} more" if len(counties) > 6 else "")
        lines.append(f"  {shown}:")
        for name, n, r in services:
            cpu, memory = r.limits
            count = f"{n} x " if n > 1 else ""
            lines.append(f"    {name:<22}{count:>5}{r.cpu_m:>10}m{r.memory_mi:>8}Mi{cpu:>10}m{memory:>8}Mi")
    return lines


def shortfall(report: CapacityReport, config: StackConfig) -> str | None:
    """The message for counties that do not fit, or None."""
    if report.fits:
        return None
    if not report.pod_fits:
        pod = report.largest_pod
        return (
            f"{report.largest_pod_key}: one pod ({pod.name}) requests {pod.cpu:g} CPU and {pod.memory_gb:g} GB, more "
            f"than an agent allocates ({report.cpu_per_agent:g} CPU, {report.memory_gb_per_agent:g} GB once the "
            "reserve and what runs on every agent are taken off), so it could never be scheduled; lower it, or give "
            "the agents more (agents.cpus, agents.memoryGb)"
        )
    add = report.agents_needed - report.agents
    fix = f"add {add} agent{'s' if add != 1 else ''} of {config.agents.cpus} vCPU / {config.agents.memory_gb} GB"
    by_resources = max(
        math.ceil(report.requested_cpu / report.cpu_per_agent) if report.cpu_per_agent > 0 else math.inf,
        math.ceil(report.requested_memory_gb / report.memory_gb_per_agent) if report.memory_gb_per_agent > 0 else math.inf,
    )
    if report.serving_agents >= by_resources:  # enough room: only placement is short
        return (
            f"{key_path('agents', 'nodes')}: a county with {report.agents_for_placement} CouchDB nodes needs them "
            f"on {report.agents_for_placement} distinct agents, but with {report.spare_agents} of {report.agents} "
            f"agents lost only {report.serving_agents} serve; {fix}"
        )
    return (
        f"{key_path('agents', 'nodes')}: the counties' quotas (budgets plus headroom) admit {report.county_cpu:g} "
        f"CPU and {report.county_memory_gb:g} GB"
        + (
            f" and the monitoring stack requests {report.platform_cpu:g} CPU and {report.platform_memory_gb:g} GB"
            if report.platform
            else ""
        )
        + f", but with {report.spare_agents} of {report.agents} agents lost "
        f"the other {report.serving_agents} allocate {report.allocatable_cpu:g} CPU and "
        f"{report.allocatable_memory_gb:g} GB; {fix} (or lower some county budgets or quotaHeadroomPercent)"
    )


def placement(report: CapacityReport) -> list[str]:
    """What the N-k plan assumes of vSphere: one ESXi host failure takes at most one agent."""
    lines = []
    if report.esxi_hosts_needed:
        kept = " and ".join(
            f"the {n} {what}"
            for n, what, apart in ((report.servers, "servers", report.servers_apart), (report.agents, "agents", report.agents_apart))
            if apart and n >= 2
        )
        lines.append(
            f"ESXi hosts: DRS rules keep each of {kept} on a host of its own, so the compute cluster needs at least "
            f"{report.esxi_hosts_needed} hosts ({report.esxi_hosts_needed + 1} to stay apart while one is in "
            "maintenance or down). With fewer, DRS (advisory rules) shares hosts, and losing one host can take more "
            f"than {report.spare_agents} agent{'s' if report.spare_agents != 1 else ''}."
        )
    if report.agents >= 2 and not report.agents_apart:
        lines.append(
            "agents.antiAffinity is off: DRS may put several agents on one ESXi host, and losing that host can take "
            f"more than the {report.spare_agents} agent{'s' if report.spare_agents != 1 else ''} this plan survives."
        )
    return lines


def table(report: CapacityReport) -> str:
    """The capacity report the plan prints and the stack exports."""

    def pct(part: float, whole: float) -> str:
        return f"{100 * part / whole:.0f}%" if whole else "-"

    lines = [
        f"Agents: {report.agents} x ({report.cpu_per_agent:g} CPU, {report.memory_gb_per_agent:g} GB allocatable); "
        f"planned for {report.spare_agents} lost, so {report.serving_agents} serve.",
        "",
        f"  {'':<24}{'CPU':>10}{'memory GB':>12}",
        f"  {'allocatable (N-' + str(report.spare_agents) + ')':<24}{report.allocatable_cpu:>10g}"
        f"{report.allocatable_memory_gb:>12g}",
        f"  {'quotas of the counties':<24}{report.county_cpu:>10g}{report.county_memory_gb:>12g}",
        f"  {'requested by monitoring':<24}{report.platform_cpu:>10g}{report.platform_memory_gb:>12g}",
        f"  {'in total':<24}{report.requested_cpu:>10g}{report.requested_memory_gb:>12g}",
        f"  {'used':<24}{pct(report.requested_cpu, report.allocatable_cpu):>10}"
        f"{pct(report.requested_memory_gb, report.allocatable_memory_gb):>12}",
        f"  {f'control plane ({report.servers})':<24}{report.servers * report.cpu_per_server:>10g}"
        f"{report.servers * report.memory_gb_per_server:>12g}  tainted: etcd, k3s, CPI, CSI only",
        "",
        *placement(report),
        "",
        f"  {'county (quota)':<24}{'CPU':>10}{'memory GB':>12}",
        *(f"  {c.name:<24}{c.cpu:>10g}{c.memory_gb:>12g}" for c in report.counties),
        "",
        f"  {'platform (on agents)':<44}{'CPU':>10}{'memory GB':>12}",
        *(f"  {p.name:<44}{p.cpu:>10g}{p.memory_gb:>12g}" for p in (*report.platform, *report.per_agent)),
        *(
            [f"  {'largest single pod: ' + report.largest_pod.name:<44}{report.largest_pod.cpu:>10g}"
             f"{report.largest_pod.memory_gb:>12g}"]
            if report.largest_pod
            else []
        ),
        "",
        *_split_lines(report),
        "",
        _verdict(report),
    ]
    return "\n".join(lines)


SHORT = "Does NOT fit"
"""How the report's verdict starts when the counties or a pod do not fit (the offline plan then fails)."""


def _verdict(report: CapacityReport) -> str:
    if not report.pod_fits:
        return f"{SHORT}: one pod ({report.largest_pod.name}) is larger than an agent."
    if not report.fits:
        return f"{SHORT}: {report.agents_needed} agents needed, {report.agents} configured."
    return "Fits."
