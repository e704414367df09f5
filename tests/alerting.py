"""The promtool harness of the alert tests (tests/test_alerts_*.py): series, expected alerts, one run.

Every alert test runs the rule as the program renders it through `promtool test rules` (offline/alerts.py), on
series named as the exporters name them at the pinned versions; each test module says which upstream file
defines each metric. promtool comes from the Debian `prometheus` package (`.ci/run` installs it); without it
the tests skip locally and fail in CI (tests/tools.py).
"""

from __future__ import annotations

from offline import alerts
from tests import tools


def series(name: str, values: str, **labels: str) -> dict:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


def fires(at: str, alertname: str, *label_sets: dict) -> dict:
    """An alert test: at `at`, `alertname` fires exactly once per label set (labels only; none: quiet)."""
    return {"eval_time": at, "alertname": alertname, "exp_alerts": [{"exp_labels": labels} for labels in label_sets]}


def quiet(at: str, alertname: str) -> dict:
    return {"eval_time": at, "alertname": alertname, "exp_alerts": []}


def check(rules: list[dict], *cases: tuple[list[dict], list[dict]], interval: str = "1m", annotations: bool = False) -> None:
    """Runs `rules` (as one group) against each (input series, alert tests) case in one promtool run.

    promtool compares annotations too; unless `annotations`, the rules run without theirs, so the cases
    state labels only (a test of the text sets it and gives each alert's `exp_annotations`)."""
    promtool = tools.need("promtool")
    if not annotations:
        rules = [{k: v for k, v in rule.items() if k != "annotations"} for rule in rules]
    tests = [{"interval": interval, "input_series": inputs, "alert_rule_test": expected} for inputs, expected in cases]
    passed, report = alerts.run_tests(promtool, [{"name": "under-test", "rules": rules}], tests, evaluation_interval=interval)
    assert passed, report


def only(rules: list[dict], *names: str) -> list[dict]:
    """The named rules of a rendered list (all must exist)."""
    picked = [rule for rule in rules if rule["alert"] in names]
    assert {r["alert"] for r in picked} == set(names), f"missing rules: {set(names) - {r['alert'] for r in picked}}"
    return picked
