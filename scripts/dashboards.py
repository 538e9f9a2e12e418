#!/usr/bin/env python3
"""Writes reconlight's three Grafana dashboards (dashboards/*.json) from the panel lists
below: one place to read every query. Run it after changing a panel; the dashboard test
(tests/tests/dashboards.rs) sends every query to a real Prometheus."""
import json
import pathlib

DS = {"type": "prometheus", "uid": "prometheus"}


def panel(i, kind, title, exprs, x, y, w=12, h=8, unit=None):
    p = {
        "id": i,
        "type": kind,
        "title": title,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "datasource": DS,
        "targets": [
            {"refId": chr(ord("A") + n), "expr": e, "legendFormat": legend}
            for n, (e, legend) in enumerate(exprs)
        ],
    }
    if unit:
        p["fieldConfig"] = {"defaults": {"unit": unit}, "overrides": []}
    return p


def dashboard(uid, title, tags, rows):
    panels = []
    y = 0
    for row in rows:
        x = 0
        for kind, t, exprs, w, unit in row:
            panels.append(panel(len(panels) + 1, kind, t, exprs, x, y, w, 8, unit))
            x += w
        y += 8
    return {
        "uid": uid,
        "title": title,
        "tags": ["reconlight"] + tags,
        "time": {"from": "now-7d", "to": "now"},
        "refresh": "1m",
        "schemaVersion": 39,
        "version": 1,
        "templating": {"list": []},
        "panels": panels,
    }


RECONCILIATION = dashboard(
    "reconlight-reconciliation",
    "reconlight: reconciliation",
    ["finance"],
    [
        [
            ("timeseries", "Firing lights over time by level",
             [('sum by (level) (reconlight_alerts{state="firing"})', "{{level}}")], 12, None),
            ("stat", "Red lights", [('sum(reconlight_alerts{state="firing",level="red"})', "red")], 6, None),
            ("stat", "Yellow lights", [('sum(reconlight_alerts{state="firing",level="yellow"})', "yellow")], 6, None),
        ],
        [
            ("timeseries", "Difference rate, CRM vs bank (latest nightly diff)",
             [("reconlight_nightly_difference_rate_percent", "difference rate")], 12, "percent"),
            ("timeseries", "Auto-match rate (credits matched, latest nightly diff)",
             [("reconlight_nightly_matched_rate_percent", "matched")], 12, "percent"),
        ],
        [
            ("timeseries", "Open work items by kind",
             [("sum by (kind) (reconlight_work_items_open)", "{{kind}}")], 12, None),
            ("timeseries", "Money at stake in open work items by kind",
             [("sum by (kind) (reconlight_work_items_at_stake)", "{{kind}}")], 12, None),
        ],
        [
            ("bargauge", "Money at stake by age (days past the due or booking date)",
             [("sum by (age) (reconlight_work_items_at_stake)", "{{age}}")], 12, None),
            ("table", "Firing alerts by rule and level",
             [('sum by (rule, level) (reconlight_alerts{state="firing"})', "{{rule}} {{level}}")], 12, None),
        ],
    ],
)

PIPELINE = dashboard(
    "reconlight-pipeline",
    "reconlight: pipeline health",
    ["operations"],
    [
        [
            ("timeseries", "Events applied per second by source",
             [("sum by (source) (rate(reconlight_events_total[5m]))", "{{source}}")], 12, None),
            ("timeseries", "Event-time lag (seconds behind now)",
             [("time() - reconlight_watermark_seconds", "lag")], 12, "s"),
        ],
        [
            ("timeseries", "Kafka consumer lag by topic (messages)",
             [("sum by (topic) (reconlight_kafka_consumer_lag)", "{{topic}}")], 12, None),
            ("timeseries", "Dead letters per minute by source and reason",
             [("sum by (source, reason) (rate(reconlight_dead_letters_total[5m])) * 60", "{{source}} {{reason}}")], 12, None),
        ],
        [
            ("timeseries", "Batch commit latency (p95)",
             [("histogram_quantile(0.95, sum by (le) (rate(reconlight_batch_commit_seconds_bucket[5m])))", "p95")], 12, "s"),
            ("timeseries", "Rule evaluation time (p95) by rule",
             [("histogram_quantile(0.95, sum by (le, rule) (rate(reconlight_rule_evaluation_seconds_bucket[5m])))", "{{rule}}")], 12, "s"),
        ],
        [
            ("timeseries", "Notifications per 5 minutes by notifier and outcome",
             [("sum by (notifier, outcome) (increase(reconlight_notifications_total[5m]))", "{{notifier}} {{outcome}}")], 12, None),
            ("timeseries", "Outbox backlog by notifier",
             [("sum by (notifier) (reconlight_outbox_backlog)", "{{notifier}}")], 12, None),
        ],
        [
            ("timeseries", "Rule errors per hour",
             [("sum by (rule) (increase(reconlight_rule_errors_total[1h]))", "{{rule}}")], 8, None),
            ("timeseries", "Statements that do not balance (last day)",
             [("sum by (source) (increase(reconlight_unbalanced_statements_total[1d]))", "{{source}}")], 8, None),
            ("stat", "Instances ingesting / standing by",
             [("sum(reconlight_ingest_active)", "ingesting"), ("count(reconlight_ingest_active == 0) or vector(0)", "standing by")], 8, None),
        ],
        [
            ("stat", "Kafka fetching paused (sinks behind)",
             [("max(reconlight_kafka_consumer_paused)", "paused")], 8, None),
        ],
    ],
)

HANDOFFS = dashboard(
    "reconlight-handoffs",
    "reconlight: handoffs",
    ["operations", "sales"],
    [
        [
            ("bargauge", "Work orders by department and SLA state",
             [("sum by (department, sla) (reconlight_handoff_tickets)", "{{department}} {{sla}}")], 12, None),
            ("timeseries", "Overdue and unacknowledged by department",
             [('sum by (department) (reconlight_handoff_tickets{sla="overdue"})', "{{department}}")], 12, None),
        ],
        [
            ("timeseries", "Acknowledged within 24 hours (share of acknowledged) by department",
             [('100 * sum by (department) (reconlight_handoff_tickets{sla="acknowledged_in_time"}) / sum by (department) (reconlight_handoff_tickets{sla=~"acknowledged_.*"})', "{{department}}")], 12, "percent"),
            ("timeseries", "Handoff SLA lights firing by level",
             [('sum by (level) (reconlight_alerts{rule="handoffs.acknowledgement_sla",state="firing"})', "{{level}}")], 12, None),
        ],
    ],
)

if __name__ == "__main__":
    out = pathlib.Path(__file__).resolve().parent.parent / "dashboards"
    for name, d in [("reconciliation", RECONCILIATION), ("pipeline", PIPELINE), ("handoffs", HANDOFFS)]:
        (out / f"reconlight-{name}.json").write_text(json.dumps(d, indent=2, ensure_ascii=False) + "\n")
    print("wrote", ", ".join(f"reconlight-{n}.json" for n in ["reconciliation", "pipeline", "handoffs"]))
