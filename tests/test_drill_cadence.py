"""How often the drill reaches each county (config/cadence.py), and validation's refusals of a cadence that
misses a county for over 30 days, a run longer than the gap to the next, an overdue alert the cadence trips."""

from __future__ import annotations

from datetime import datetime

import pytest

from config import cadence
from config.errors import ConfigError
from config.validate import validate
from tests.conftest import raw_config


def test_cron_days_as_kubernetes_reads_them():
    start = datetime(2027, 1, 1)  # a Friday
    weekly = cadence.run_times("0 5 * * 6", start, 15)
    assert [t.isoformat() for t in weekly] == ["2027-01-02T05:00:00", "2027-01-09T05:00:00"]
    # Both day fields restricted: either matches (robfig/cron v3 spec.go dayMatches).
    either = cadence.run_times("30 2 1 * MON", start, 15)
    assert [t.day for t in either] == [1, 4, 11]
    # A stepped star is not a star: "*/2" restricts the day of month, so the day of week ORs with it.
    assert [t.day for t in cadence.run_times("0 0 */10 * SUN", start, 15)] == [1, 3, 10, 11]
    assert cadence.run_times("@monthly", start, 40)[1] == datetime(2027, 2, 1)


@pytest.mark.parametrize(
    "cron, counties, per_run, expected_per_run, within",
    [
        ("0 5 * * *", 50, None, 2, 25),  # daily: 2 a run, each county back every 25 days
        ("0 5 * * 6", 50, None, 13, 28),  # weekly: 13 a run, every 4 weeks
        ("0 5 * * 1-5", 48, None, 3, 24),  # weekdays: 3 a run, 16 runs span 3 weeks and 3 days
        ("0 5 * * 6", 3, 1, 1, 21),
    ],
)
def test_derived_counties_per_run_reach_every_county_within_30_days(cron, counties, per_run, expected_per_run, within):
    plan = cadence.cadence(cron, counties, per_run)
    assert plan.per_run == expected_per_run and plan.interval_days == within and plan.within_bound
    if per_run is None and expected_per_run > 1:  # the fewest: one fewer misses the bound
        assert not cadence.cadence(cron, counties, expected_per_run - 1).within_bound


def test_a_monthly_drill_reaches_every_county_only_if_all_go_in_one_run():
    assert cadence.cadence("@monthly", 10, None).per_run == 10
    assert cadence.cadence("@monthly", 10, None).interval_days == 31 and not cadence.cadence("@monthly", 10, None).within_bound


def _stack(drill: dict, alerts: dict | None = None):
    raw, secrets = raw_config("backup")
    raw["backup"] = {**raw["backup"], "drill": drill}
    if alerts is not None:
        raw["monitoring"] = {**raw.get("monitoring", {}), "alerts": alerts}
    return raw, secrets


def _problems(raw, secrets) -> list[str]:
    with pytest.raises(ConfigError) as error:
        validate(raw, secrets)
    return error.value.problems


def test_too_few_counties_per_run_are_refused_with_the_fewest_that_work():
    (problem,) = _problems(*_weekly_one_of_five())
    assert problem == (
        "cht-hosting:backup.drill.countiesPerRun: drilling 1 of the 5 counties per run on '0 6 * * 0' comes back to "
        "each county only every 35 days, over the 30 a backup may go untested; set it to at least 2, or remove it "
        "to have it derived"
    )


def _weekly_one_of_five():
    raw, secrets = _stack({"schedule": "0 6 * * 0", "countiesPerRun": 1})
    raw["counties"] = {**raw["counties"], "garissa": {}, "isiolo": {}}
    return raw, secrets


def test_a_schedule_too_rare_for_any_run_size_is_refused():
    (problem,) = _problems(*_stack({"schedule": "0 5 1 */2 *"}))
    assert problem.startswith("cht-hosting:backup.drill.schedule: drilling 3 of the 3 counties per run on '0 5 1 */2 *'")
    assert problem.endswith("run the drill more often (e.g. '0 5 * * *', daily)")


def test_a_run_longer_than_the_gap_to_the_next_is_refused():
    (problem,) = _problems(*_stack({"schedule": "0 5 * * *", "countiesPerRun": 3, "timeoutMinutes": 600}))
    assert problem == (
        "cht-hosting:backup.drill.timeoutMinutes: a run of 3 counties and 1 retry may take up to 41 hours (600 minutes "
        "and a cleanup each), longer than the 24 hours between runs of '0 5 * * *' (a run that overlaps the next is "
        "skipped); lower timeoutMinutes or countiesPerRun, or run the drill less often"
    )


def test_an_overdue_alert_the_cadence_would_trip_is_refused():
    (problem,) = _problems(*_stack({"schedule": "0 6 * * 0", "countiesPerRun": 1}, {"restoreDrillMaxAgeDays": 14}))
    assert problem == (
        "cht-hosting:monitoring.alerts.restoreDrillMaxAgeDays: 14 days would alert for every county between two of "
        "its drills (each comes back every 21 days); set it above that, e.g. 26"
    )


def test_the_old_tolerance_is_refused_as_obsolete():
    problems = _problems(*_stack({"maxDocCountDifferencePercent": 10}))
    assert problems == [
        "cht-hosting:backup.drill: maxDocCountDifferencePercent is no longer used: the drill compares each restored "
        "copy with the record its backup holds, with no tolerance; remove the key"
    ]
