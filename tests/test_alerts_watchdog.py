"""Medic's CHT Watchdog alerts as the program renders them (monitoring_rules.cht_rules) under promtool.

Metrics: the json-exporter module the program renders from Watchdog 1.23.1's `exporters/json/config/cht.yml`
(names checked against it in tests/test_monitoring_render.py), fed by CHT's `/api/v2/monitoring`
(cht-core `api/src/controllers/monitoring.js`); `up{job="cht"}` is Prometheus's own for each county's Probe.
Every county's probe sets `instance` to the county's host, as Watchdog does.
"""

from __future__ import annotations

import re

from components.monitoring import rules as monitoring_rules
from tests import upstream
from tests.alerting import check, fires, only, quiet, series

RULES = monitoring_rules.cht_rules()
KWALE = {"job": "cht", "instance": "kwale.echis.example.org", "county": "kwale"}
LAMU = {"job": "cht", "instance": "lamu.echis.example.org", "county": "lamu"}


def test_rules_read_only_metrics_watchdogs_exporter_module_defines():
    defined = {m[0] for m in upstream.WATCHDOG_JSON_METRICS} | {"up"}
    for rule in RULES:
        used = set(re.findall(r"\b(cht_[a-z_]+|up)\b(?=\{|\[|\s|\))", rule["expr"]))
        assert used and used <= defined, (rule["alert"], used - defined)


def test_api_down_fires_after_30_minutes_and_only_for_that_county():
    rules = only(RULES, "ChtApiServerDown")
    check(
        rules,
        ([series("up", "1x10 0x40 1x10", **KWALE), series("up", "1x60", **LAMU)],
         [quiet("35m", "ChtApiServerDown"), fires("45m", "ChtApiServerDown", {"severity": "critical", **KWALE}),
          quiet("55m", "ChtApiServerDown")]),
    )


def test_fragmentation_time_and_delivery():
    rules = only(RULES, "ChtDbFragmentation", "ChtServerTimeInaccurate", "ChtMessageDeliveryRate")
    medic = {**KWALE, "db": "medic"}
    check(
        rules,
        ([series("cht_couchdb_fragmentation", "1.5x60 9x100", **medic), series("cht_couchdb_doc_total", "5000x160", **medic),
          series("cht_couchdb_fragmentation", "9x160", **{**LAMU, "db": "medic"}),
          series("cht_couchdb_doc_total", "10x160", **{**LAMU, "db": "medic"})],  # small db: never
         [quiet("110m", "ChtDbFragmentation"), fires("125m", "ChtDbFragmentation", {"severity": "warning", **medic})]),
        # Server clock 10 minutes behind for over an hour; then fixed.
        ([series("cht_date_current_millis", "0+60000x30 1200000+60000x90 7320000+60000x60", **KWALE)],
         [quiet("30m", "ChtServerTimeInaccurate"), fires("95m", "ChtServerTimeInaccurate", {"severity": "warning", **KWALE}),
          quiet("125m", "ChtServerTimeInaccurate")]),
        # Half the messages fail; a county with no messages at all (NaN) never alerts.
        ([series("cht_messaging_outgoing_total", "0+10x120", status="delivered", **KWALE),
          series("cht_messaging_outgoing_total", "0+10x120", status="failed", **KWALE),
          series("cht_messaging_outgoing_total", "0x120", status="delivered", **LAMU),
          series("cht_messaging_outgoing_total", "0x120", status="failed", **LAMU)],
         [fires("60m", "ChtMessageDeliveryRate", {"severity": "warning", "status": "delivered", **KWALE})]),
    )


def test_backlogs_growing_faster_than_changes():
    rules = only(RULES, "ChtSentinelBacklog")
    medic = {**KWALE, "db": "medic"}
    check(
        rules,
        ([series("cht_couchdb_update_sequence", "0+10x300", **medic), series("cht_sentinel_backlog_count", "0x60 0+20x240", **KWALE)],
         [quiet("60m", "ChtSentinelBacklog"), fires("200m", "ChtSentinelBacklog", {"severity": "warning", **KWALE})]),
        ([series("cht_couchdb_update_sequence", "0+10x300", **medic), series("cht_sentinel_backlog_count", "100x300", **KWALE)],
         [quiet("200m", "ChtSentinelBacklog")]),
    )


def test_outbound_push_conflicts_replication_limit_and_feedback():
    rules = only(RULES, "ChtOutboundPushBacklog", "ChtDbConflictsRate", "ChtUsersOverReplicationLimit", "ChtClientFeedbackRate")
    medic = {**KWALE, "db": "medic"}
    changes = series("cht_couchdb_update_sequence", "0+1x300", **medic)  # 60 changes an hour
    check(
        rules,
        # Outbound push backlog growing 600/h (> 60 * 0.05 + 5) for over an hour; a steady one never.
        ([changes, series("cht_outbound_push_backlog_count", "0x60 0+10x240", **KWALE)],
         [quiet("60m", "ChtOutboundPushBacklog"), fires("200m", "ChtOutboundPushBacklog", {"severity": "warning", **KWALE})]),
        ([changes, series("cht_outbound_push_backlog_count", "50x300", **KWALE)], [quiet("200m", "ChtOutboundPushBacklog")]),
        # Conflicts rising 120/h (> 60 * 0.25 + 10): at once (for 1m); a flat count never.
        ([changes, series("cht_conflict_count", "5x60 5+2x60", **KWALE)],
         [quiet("55m", "ChtDbConflictsRate"), fires("100m", "ChtDbConflictsRate", {"severity": "warning", **KWALE})]),
        ([changes, series("cht_conflict_count", "5x120", **KWALE)], [quiet("100m", "ChtDbConflictsRate")]),
        # 20 users: more than 2.06 a day newly over the replication limit, for an hour.
        ([series("cht_connected_users_count", "20x300", **KWALE), series("cht_replication_limit_count", "0+0.05x300", **KWALE)],
         [fires("200m", "ChtUsersOverReplicationLimit", {"severity": "warning", **KWALE})]),
        ([series("cht_connected_users_count", "20x300", **KWALE), series("cht_replication_limit_count", "3x300", **KWALE)],
         [quiet("200m", "ChtUsersOverReplicationLimit")]),
        # 20 users: more than 2 feedback docs a day.
        ([series("cht_connected_users_count", "20x300", **KWALE), series("cht_feedback_total", "0+0.1x300", **KWALE)],
         [fires("200m", "ChtClientFeedbackRate", {"severity": "warning", **KWALE})]),
        ([series("cht_connected_users_count", "20x300", **KWALE), series("cht_feedback_total", "7x300", **KWALE)],
         [quiet("200m", "ChtClientFeedbackRate")]),
    )
