"""The nightly backup window: each county's start inside it, and whether the counties' backups fit.

Velero runs one backup at a time (velero v1.18.1 pkg/cmd/server/config/config.go: DefaultConcurrentBackups
= 1; the chart sets no other) and skips a Schedule's run while its previous backup is still New or
InProgress (pkg/controller/schedule_controller.go). So every county gets its own start minute, and the
counties' estimated read times, run one after another, must end inside the window. The estimate reads
every CouchDB volume whole: kopia re-reads each `.couch` file that changed, and CouchDB appends to every
database it writes (compression is off, pkg/uploader/kopia/snapshot.go).

A county's start depends on its own name and size only (a stable hash inside the room its read leaves), so
adding or growing one county never moves another's Schedule. Pure: no Pulumi here.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from .errors import key_path
from .model import BackupConfig, County

DAY_MINUTES = 24 * 60


@dataclass(frozen=True)
class Slot:
    county: str
    volume_gib: int
    read_minutes: int
    offset: int  # the Schedule's start, minutes after windowStart
    start: int  # when it runs: its offset, or later when the county before it is still being read
    end: int


def _minutes(time_of_day: str) -> int:
    hours, minutes = time_of_day.split(":")
    return int(hours) * 60 + int(minutes)


def read_minutes(volume_gib: int, backup: BackupConfig) -> int:
    return max(1, math.ceil(volume_gib * 1024 / backup.counties.read_mib_per_second / 60))


def volume_gib(county: County) -> int:
    return county.settings.couchdb_storage_gb * county.settings.couchdb_nodes


def offset(name: str, county: County, backup: BackupConfig) -> int:
    room = max(1, backup.counties.window_hours * 60 - read_minutes(volume_gib(county), backup))
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % room


def cron(name: str, county: County, backup: BackupConfig) -> str:
    """The county Schedule's cron (UTC)."""
    at = (_minutes(backup.counties.window_start) + offset(name, county, backup)) % DAY_MINUTES
    return f"{at % 60} {at // 60} * * *"


def slots(counties: dict[str, County], backup: BackupConfig) -> list[Slot]:
    """Every county's backup as Velero would run them: in start order, each after the one before ends."""
    found, free = [], 0
    for at, name in sorted((offset(n, c, backup), n) for n, c in counties.items()):
        county = counties[name]
        minutes = read_minutes(volume_gib(county), backup)
        start = max(at, free)
        free = start + minutes
        found.append(Slot(name, volume_gib(county), minutes, at, start, free))
    return found


def overrun(counties: dict[str, County], backup: BackupConfig) -> str | None:
    """The problem (or warning) when the backups do not end inside the window; None when they do."""
    planned = slots(counties, backup)
    window = backup.counties.window_hours * 60
    if not planned or planned[-1].end <= window:
        return None
    last = planned[-1]
    total = sum(s.read_minutes for s in planned)
    daily = " and would overlap the next night's" if last.end > DAY_MINUTES else ""
    return (
        f"{key_path('backup', 'counties', 'windowHours')}: the counties' backups need about {total / 60:.1f} h one "
        f"after another at readMibPerSecond {backup.counties.read_mib_per_second:g} (Velero backs up one county at "
        f"a time); the last ({last.county}) would end {last.end - window} min after the {window // 60} h window"
        f"{daily}. Widen windowHours, set readMibPerSecond from a measured backup, or set onOverrun: warn"
    )


def table(counties: dict[str, County], backup: BackupConfig) -> str:
    cfg = backup.counties
    begin = _minutes(cfg.window_start)

    def clock(minutes: int) -> str:
        at = (begin + minutes) % DAY_MINUTES
        return f"{at // 60:02d}:{at % 60:02d}"

    planned = slots(counties, backup)
    width = max([len(s.county) for s in planned] + [6])
    lines = [
        f"Window {cfg.window_start} UTC for {cfg.window_hours} h; one backup at a time; each volume read whole at "
        f"{cfg.read_mib_per_second:g} MiB/s (backup.counties.readMibPerSecond).",
        "",
        f"  {'county':<{width}}  {'GiB':>6}  {'cron':>5}  {'runs':>5}  {'ends':>5}  {'minutes':>7}",
        *(
            f"  {s.county:<{width}}  {s.volume_gib:>6}  {clock(s.offset):>5}  {clock(s.start):>5}  {clock(s.end):>5}"
            f"  {s.read_minutes:>7}"
            for s in planned
        ),
    ]
    return "\n".join(lines)
