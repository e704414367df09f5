"""How a county's budget becomes requests per service, and its ResourceQuota (pure arithmetic).

Decided here once, for the renderers (container resources), the checks (a budget too small) and the
capacity report (what the quotas allow, per-service requests in the plan).

The split follows what the services need:
- Fixed sizes for what the images fix themselves, whatever the budget:
  - haproxy: upstream's Compose file caps its memory at 1 GB (cht-core 4.22.0
    `scripts/build/cht-core.yml.template`, `deploy.resources.limits.memory: 1G`);
  - healthcheck, a small Python poller (upstream sets nothing);
  - the upgrade service (4.x, admin-app): `npm start` runs `npx ts-node src/main/index.ts`
    (medic/upgrade-service-kubernetes@770b1bf, the image 0.32: `package.json`, `Dockerfile`), so it
    type-checks and compiles its TypeScript at every start: about 275 MiB measured running that source
    (review cht-upstream B1), above the 256 MiB it once had;
  - nouveau (5.x): the image starts Java with a fixed heap, `-Xmx2g` (apache/couchdb-docker
    `3.5.1-nouveau/Dockerfile` CMD; cht-core 5.2.0 `couchdb-nouveau/Dockerfile` is `FROM couchdb:3.5.2-nouveau`
    with no override), so its limit is that heap plus the JVM's own memory (metaspace, code cache, threads,
    GC), and more budget would not help it.
- The rest goes to CouchDB, the API and Sentinel by weight. Each CouchDB node of a clustered county is
  weighed as one node (a 3-node county's node gets what a single node of the same budget per node gets).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from . import versions
from .model import ChtSettings

# Limits are this multiple of requests: room for bursts (view indexing) without starving the node.
LIMIT_FACTOR = 2


@dataclass(frozen=True)
class Resources:
    cpu_m: int
    memory_mi: int
    limit_cpu_m: int | None = None  # default: LIMIT_FACTOR times the request
    limit_memory_mi: int | None = None

    @property
    def limits(self) -> tuple[int, int]:
        return (self.limit_cpu_m or self.cpu_m * LIMIT_FACTOR, self.limit_memory_mi or self.memory_mi * LIMIT_FACTOR)

    def requirements(self) -> dict:
        cpu, memory = self.limits
        return {
            "requests": {"cpu": f"{self.cpu_m}m", "memory": f"{self.memory_mi}Mi"},
            "limits": {"cpu": f"{cpu}m", "memory": f"{memory}Mi"},
        }


# Fixed sizes. haproxy's memory limit is upstream's 1G cap; the others' limits are LIMIT_FACTOR times
# unless the image needs more (below).
HAPROXY_MEMORY_LIMIT_MI = 1024
# The upgrade service compiling its TypeScript at start (about 275 MiB measured): requested above that, a
# limit with room for the npm wrappers, and CPU to compile in seconds rather than a minute (5.7 CPU-s).
UPGRADE_SERVICE = Resources(50, 320, limit_cpu_m=500, limit_memory_mi=512)
# nouveau's JVM: the image's fixed heap (-Xmx2g) plus what the JVM takes beside it.
NOUVEAU_HEAP_MI = 2048
JVM_OVERHEAD_MI = 512
NOUVEAU = Resources(250, (NOUVEAU_HEAP_MI + JVM_OVERHEAD_MI) // 2, limit_cpu_m=1000, limit_memory_mi=NOUVEAU_HEAP_MI + JVM_OVERHEAD_MI)
FIXED: dict[str, Resources] = {
    "haproxy": Resources(200, 256, limit_cpu_m=1000, limit_memory_mi=HAPROXY_MEMORY_LIMIT_MI),
    "healthcheck": Resources(50, 64),
    "upgrade-service": UPGRADE_SERVICE,
    "nouveau": NOUVEAU,
}
# Weights (cpu, memory) of what is left after the fixed sizes; "couchdb" counts once per node.
WEIGHTS: dict[str, tuple[float, float]] = {
    "couchdb": (0.50, 0.50),
    "api": (0.30, 0.25),
    "sentinel": (0.10, 0.10),
}
# Below these a service cannot do its job; a budget that leaves less is refused (config check).
FLOOR: dict[str, Resources] = {
    "couchdb": Resources(250, 512),
    "api": Resources(100, 256),
    "sentinel": Resources(50, 128),
}


def has_nouveau(settings: ChtSettings) -> bool:
    """CHT 5.x runs nouveau (full-text search) beside CouchDB."""
    return versions.major(settings.version) >= 5


def has_upgrade_service(settings: ChtSettings) -> bool:
    """Medic's Kubernetes upgrade service: 4.x only (removed in 5.x), and only with upgrades: admin-app."""
    return settings.upgrades == "admin-app" and versions.major(settings.version) == 4


def _units(settings: ChtSettings) -> dict[str, int]:
    """How many of each weighted service the county runs."""
    return {"couchdb": settings.couchdb_nodes, "api": 1, "sentinel": 1}


def _fixed(settings: ChtSettings) -> dict[str, Resources]:
    """The fixed-size services the county runs: nouveau only in 5.x (one, beside node 1), the upgrade
    service only with admin-app on 4.x."""
    runs = {"upgrade-service": has_upgrade_service(settings), "nouveau": has_nouveau(settings)}
    return {k: v for k, v in FIXED.items() if runs.get(k, True)}


def fixed_services(settings: ChtSettings) -> list[str]:
    """Names of the fixed-size services (for messages)."""
    return list(_fixed(settings))


def split(settings: ChtSettings) -> dict[str, Resources]:
    """Service -> requests (for "couchdb": per node). The sum over all containers never exceeds the budget
    (each share is rounded down); a budget that cannot cover the floors is refused by the config check (`below_floor`)."""
    fixed = _fixed(settings)
    units = _units(settings)
    left_cpu = settings.budget.cpu * 1000 - sum(r.cpu_m for r in fixed.values())
    left_mem = settings.budget.memory_gb * 1024 - sum(r.memory_mi for r in fixed.values())
    total_cpu = sum(WEIGHTS[s][0] * n for s, n in units.items())
    total_mem = sum(WEIGHTS[s][1] * n for s, n in units.items())
    shares = {
        service: Resources(
            max(1, math.floor(left_cpu * WEIGHTS[service][0] / total_cpu)),
            max(1, math.floor(left_mem * WEIGHTS[service][1] / total_mem)),
        )
        for service in units
    }
    return {**shares, **fixed}


def minimum_budget(settings: ChtSettings) -> tuple[float, float]:
    """The smallest budget (CPU, GB) whose split gives every weighted service at least its floor."""
    fixed = _fixed(settings)
    units = _units(settings)
    total_cpu = sum(WEIGHTS[s][0] * n for s, n in units.items())
    total_mem = sum(WEIGHTS[s][1] * n for s, n in units.items())
    cpu_m = max(FLOOR[s].cpu_m * total_cpu / WEIGHTS[s][0] for s in units) + sum(r.cpu_m for r in fixed.values())
    mem_mi = max(FLOOR[s].memory_mi * total_mem / WEIGHTS[s][1] for s in units) + sum(
        r.memory_mi for r in fixed.values()
    )
    return math.ceil(cpu_m / 100) / 10, math.ceil(mem_mi / 1024)


def below_floor(settings: ChtSettings) -> bool:
    """True when the budget leaves a service below its floor."""
    shares = split(settings)
    return any(shares[s].cpu_m < FLOOR[s].cpu_m or shares[s].memory_mi < FLOOR[s].memory_mi for s in _units(settings))


def _limits(settings: ChtSettings, service: str, resources: Resources) -> tuple[int, int]:
    count = settings.couchdb_nodes if service == "couchdb" else 1
    cpu, memory = resources.limits
    return cpu * count, memory * count


def quota_requests(settings: ChtSettings) -> tuple[float, float]:
    """(CPU, GB) the county's ResourceQuota admits in requests: the budget plus its headroom."""
    factor = 1 + settings.quota_headroom_percent / 100
    return settings.budget.cpu * factor, settings.budget.memory_gb * factor


def quota(settings: ChtSettings) -> dict[str, str]:
    """ResourceQuota hard limits: budget plus headroom for requests, LIMIT_FACTOR times that for limits."""
    cpu, memory_gb = quota_requests(settings)
    cpu_m, mem_mi = math.floor(cpu * 1000), math.floor(memory_gb * 1024)
    # Limits: what the county's containers may burst to (LIMIT_FACTOR times the budget, or the sum of
    # their limits if haproxy's fixed cap makes that larger), plus the same headroom.
    factor = 1 + settings.quota_headroom_percent / 100
    limit_cpu, limit_mem = (sum(x) for x in zip(*(_limits(settings, s, r) for s, r in split(settings).items()), strict=True))
    limit_cpu_m = math.ceil(max(limit_cpu, settings.budget.cpu * 1000 * LIMIT_FACTOR) * factor)
    limit_mem_mi = math.ceil(max(limit_mem, settings.budget.memory_gb * 1024 * LIMIT_FACTOR) * factor)
    volumes = settings.couchdb_nodes
    return {
        "requests.cpu": f"{cpu_m}m",
        "requests.memory": f"{mem_mi}Mi",
        "limits.cpu": f"{limit_cpu_m}m",
        "limits.memory": f"{limit_mem_mi}Mi",
        "persistentvolumeclaims": str(volumes),
        "requests.storage": f"{settings.couchdb_storage_gb * volumes}Gi",
        "services.loadbalancers": "0",
        "services.nodeports": "0",
    }
