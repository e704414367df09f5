"""How often the restore drill reaches each county: from the drill's cron, the number of counties drilled and
the counties drilled per run (`backup.drill.countiesPerRun`, or the fewest that keep every county within
MAX_INTERVAL_DAYS). Pure; the plan prints it and validation refuses a cadence that misses the bound.

The drill takes p counties oldest-drilled first, and on top of them retries up to RETRIES_PER_RUN counties whose
last drill failed or was interrupted (which keep alerting until they pass): a county that keeps failing never
takes a scheduled slot, so with N counties and p per run every other county comes back every ceil(N / p) runs;
the interval is the longest time those runs span on the cron's calendar (two years are walked, leap days and
month ends included). At most one run a day is counted: a run lasts hours and the CronJob never overlaps runs
(concurrencyPolicy Forbid).

Cron as Kubernetes CronJobs read it (robfig/cron v3 `spec.go`, `parser.go`): day of month and day of week
both restricted (neither starting with `*` or `?` without a step) match when either matches; otherwise both
must.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

MAX_INTERVAL_DAYS = 30  # issue 20: every county drilled at least every 30 days, whatever the county count
RETRIES_PER_RUN = 1  # failed or interrupted counties a run retries besides its countiesPerRun
CLEANUP_MINUTES = 15  # deleting a drilled copy (its volumes included) before giving up, after each county
_WALK_FROM = datetime(2027, 1, 1)
_WALK_DAYS = 731

_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}
_MONTHS = {m: i for i, m in enumerate(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1)}
_DAYS = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}


def _field(text: str, low: int, high: int, names: dict[str, int]) -> tuple[set[int], bool]:
    """The values a field allows, and whether it is a star (robfig's starBit: `*` or `?` without a step > 1)."""
    values: set[int] = set()
    star = False
    for item in text.split(","):
        span, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if span in ("*", "?"):
            start, end = low, high
            star = star or step == 1
        else:
            first, dash, last = span.partition("-")
            start = names.get(first.upper()) if not first.isdigit() else int(first)
            end = (names.get(last.upper()) if not last.isdigit() else int(last)) if dash else (high if step_text else start)
        values.update(range(start, end + 1, step))
    return values, star


def run_times(cron: str, start: datetime = _WALK_FROM, days: int = _WALK_DAYS) -> list[datetime]:
    """The first firing of each day the cron fires on, over `days` days from `start`."""
    fields = _DESCRIPTORS.get(cron, cron).split(" ")
    minutes, _ = _field(fields[0], 0, 59, {})
    hours, _ = _field(fields[1], 0, 23, {})
    doms, dom_star = _field(fields[2], 1, 31, {})
    months, _ = _field(fields[3], 1, 12, _MONTHS)
    dows, dow_star = _field(fields[4], 0, 7, _DAYS)
    dows = {d % 7 for d in dows}
    if not minutes or not hours:
        return []
    at = timedelta(hours=min(hours), minutes=min(minutes))
    times = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        dom_ok, dow_ok = day.day in doms, (day.isoweekday() % 7) in dows
        matches = (dom_ok and dow_ok) if (dom_star or dow_star) else (dom_ok or dow_ok)
        if matches and day.month in months:
            times.append(day + at)
    return times


@dataclass(frozen=True)
class Cadence:
    counties: int  # drilled counties
    per_run: int  # counties drilled in one run
    runs_per_cycle: int  # runs until a county comes back
    interval_days: float  # the longest time between two drills of one county (inf: the cron never fires)
    shortest_gap_hours: float  # the shortest time between two runs (a run must fit in it)

    @property
    def within_bound(self) -> bool:
        return self.interval_days <= MAX_INTERVAL_DAYS


def _interval(times: list[datetime], runs: int) -> float:
    if runs >= len(times):
        return math.inf
    return max((times[i + runs] - times[i]).total_seconds() / 86400 for i in range(len(times) - runs))


def cadence(cron: str, counties: int, per_run: int | None) -> Cadence:
    """The cadence for `per_run` counties per run, or (None) for the fewest per run that keeps the bound."""
    times = run_times(cron)
    gaps = [(b - a).total_seconds() / 3600 for a, b in pairwise(times)]
    shortest = min(gaps) if gaps else math.inf
    if counties == 0:
        return Cadence(0, per_run or 0, 0, 0.0, shortest)
    if per_run is None:
        per_run = next(
            (p for p in range(1, counties + 1) if _interval(times, math.ceil(counties / p)) <= MAX_INTERVAL_DAYS),
            counties,
        )
    runs = math.ceil(counties / per_run)
    return Cadence(counties, per_run, runs, _interval(times, runs), shortest)


def problems(backup, counties: dict, monitoring) -> list[str]:
    """The drill's cadence against the 30-day bound, its runs against the time between them, and the overdue
    alert against the cadence (each message names the key and the fix)."""
    from .errors import key_path

    if backup is None or not backup.drill.enabled or not counties:
        return []
    d = backup.drill
    plan = cadence(d.schedule, len(counties), d.counties_per_run)
    found = []
    if not plan.within_bound:
        fewest = cadence(d.schedule, len(counties), None)
        fix = (
            f"set it to at least {fewest.per_run}, or remove it to have it derived"
            if d.counties_per_run is not None and fewest.within_bound
            else "run the drill more often (e.g. '0 5 * * *', daily)"
        )
        key = ("backup", "drill", "countiesPerRun") if d.counties_per_run is not None else ("backup", "drill", "schedule")
        found.append(
            f"{key_path(*key)}: drilling {plan.per_run} of the {plan.counties} counties per run on '{d.schedule}' "
            f"comes back to each county only every {plan.interval_days:g} days, over the {MAX_INTERVAL_DAYS} a "
            f"backup may go untested; {fix}"
        )
    run_hours = (plan.per_run + RETRIES_PER_RUN) * (d.timeout_minutes + CLEANUP_MINUTES) / 60
    if run_hours > plan.shortest_gap_hours:
        found.append(
            f"{key_path('backup', 'drill', 'timeoutMinutes')}: a run of {plan.per_run} counties and "
            f"{RETRIES_PER_RUN} retry may take up to "
            f"{run_hours:g} hours ({d.timeout_minutes} minutes and a cleanup each), longer than the "
            f"{plan.shortest_gap_hours:g} hours between runs of '{d.schedule}' (a run that overlaps the next is "
            "skipped); lower timeoutMinutes or countiesPerRun, or run the drill less often"
        )
    if monitoring is not None and plan.within_bound and monitoring.alerts.restore_drill_max_age_days <= plan.interval_days:
        found.append(
            f"{key_path('monitoring', 'alerts', 'restoreDrillMaxAgeDays')}: {monitoring.alerts.restore_drill_max_age_days} "
            f"days would alert for every county between two of its drills (each comes back every "
            f"{plan.interval_days:g} days); set it above that, e.g. {math.ceil(plan.interval_days) + 5}"
        )
    return found
