"""Capacity planning: do the counties' budgets fit on the agents with one agent lost (N-1)?

Pure arithmetic over the validated config, so it runs before anything is registered and the plan can
print it. CHT runs only on agents (the servers are tainted), so only the agent pool counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import key_path
from .model import StackConfig


@dataclass(frozen=True)
class CountyLoad:
    name: str
    cpu: float
    memory_gb: float


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
    def requested_cpu(self) -> float:
        return sum(c.cpu for c in self.counties)

    @property
    def requested_memory_gb(self) -> float:
        return sum(c.memory_gb for c in self.counties)

    @property
    def agents_needed(self) -> int:
        """Agents of the configured size that hold every budget with `spare_agents` lost."""
        by_cpu = math.ceil(self.requested_cpu / self.cpu_per_agent) if self.cpu_per_agent > 0 else math.inf
        by_memory = (
            math.ceil(self.requested_memory_gb / self.memory_gb_per_agent) if self.memory_gb_per_agent > 0 else math.inf
        )
        return max(by_cpu, by_memory) + self.spare_agents

    @property
    def fits(self) -> bool:
        return self.agents >= self.agents_needed


def plan(config: StackConfig) -> CapacityReport:
    agents, capacity = config.agents, config.capacity
    return CapacityReport(
        servers=len(config.control_plane.nodes),
        cpu_per_server=config.control_plane.cpus,
        memory_gb_per_server=config.control_plane.memory_gb,
        agents=len(agents.nodes),
        spare_agents=capacity.spare_agents,
        cpu_per_agent=agents.cpus - capacity.reserved_cpu_per_agent,
        memory_gb_per_agent=agents.memory_gb - capacity.reserved_memory_gb_per_agent,
        counties=tuple(
            CountyLoad(name, c.settings.budget.cpu, c.settings.budget.memory_gb) for name, c in config.counties.items()
        ),
    )


def shortfall(report: CapacityReport, config: StackConfig) -> str | None:
    """The message for counties that do not fit, or None."""
    if report.fits:
        return None
    add = report.agents_needed - report.agents
    return (
        f"{key_path('agents', 'nodes')}: the counties request {report.requested_cpu:g} CPU and "
        f"{report.requested_memory_gb:g} GB, but with {report.spare_agents} of {report.agents} agents lost the "
        f"other {report.serving_agents} allocate {report.allocatable_cpu:g} CPU and "
        f"{report.allocatable_memory_gb:g} GB; add {add} agent{'s' if add != 1 else ''} of "
        f"{config.agents.cpus} vCPU / {config.agents.memory_gb} GB (or lower some county budgets)"
    )


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
        f"  {'requested by counties':<24}{report.requested_cpu:>10g}{report.requested_memory_gb:>12g}",
        f"  {'used':<24}{pct(report.requested_cpu, report.allocatable_cpu):>10}"
        f"{pct(report.requested_memory_gb, report.allocatable_memory_gb):>12}",
        f"  {f'control plane ({report.servers})':<24}{report.servers * report.cpu_per_server:>10g}"
        f"{report.servers * report.memory_gb_per_server:>12g}  tainted: etcd, k3s, CPI, CSI only",
        "",
        f"  {'county':<24}{'CPU':>10}{'memory GB':>12}",
        *(f"  {c.name:<24}{c.cpu:>10g}{c.memory_gb:>12g}" for c in report.counties),
        "",
        "Fits." if report.fits else f"Does NOT fit: {report.agents_needed} agents needed, {report.agents} configured.",
    ]
    return "\n".join(lines)
