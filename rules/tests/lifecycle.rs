//! The alert lifecycle over real DataFusion evaluations: pending, firing after `for`,
//! escalation, `keep_firing_for`, hysteresis, and state that survives a restart.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use reconlight_rules::lifecycle::{alert_id, apply};
use reconlight_rules::{Alert, AlertState, Engine, Level, Rule, Transition};

fn t0() -> DateTime<Utc> {
    "2026-10-01T00:00:00Z".parse().unwrap()
}

/// A `queue` table: one row per subject with a backlog number.
fn queue(rows: &[(&str, i64)]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("backlog", DataType::Int64, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap()
}

fn rule(extra: &str) -> Rule {
    let text = format!(
        "id = \"test.backlog\"\ntitle = \"Backlog\"\nsubject = [\"name\"]\n{extra}\nsql = \"SELECT name, CASE WHEN backlog >= 100 THEN 'red' ELSE 'yellow' END AS level, backlog FROM queue WHERE backlog >= 50\"\n[annotations]\nsummary = \"{{name}} has {{backlog}} waiting\"\n"
    );
    Rule::parse("test.toml", &text).unwrap()
}

struct Harness {
    engine: Engine,
    rule: Rule,
    alerts: BTreeMap<String, Alert>,
}

impl Harness {
    fn new(rule: Rule) -> Self {
        Harness {
            engine: Engine::new(chrono_tz::Asia::Shanghai),
            rule,
            alerts: BTreeMap::new(),
        }
    }

    async fn step(
        &mut self,
        rows: &[(&str, i64)],
        at: DateTime<Utc>,
    ) -> Vec<(String, Option<Transition>)> {
        self.engine.set_table("queue", queue(rows)).unwrap();
        let eval = self.engine.evaluate(&self.rule, at).await.unwrap();
        let mut out = Vec::new();
        for (alert, t) in apply(&self.rule, &eval, &self.alerts, at) {
            out.push((alert.subject.clone(), t));
            self.alerts.insert(alert.id.clone(), alert);
        }
        out
    }

    fn alert(&self, subject: &str) -> &Alert {
        &self.alerts[&alert_id(&self.rule.id, subject)]
    }
}

#[tokio::test]
async fn pending_fires_after_for_and_escalates() {
    let mut h = Harness::new(rule("for = \"10m\""));
    assert_eq!(
        h.step(&[("delivery", 60)], t0()).await,
        [("delivery".into(), Some(Transition::Pending))]
    );
    assert_eq!(h.alert("delivery").state, AlertState::Pending);
    assert_eq!(
        h.step(&[("delivery", 60)], t0() + Duration::minutes(9))
            .await,
        []
    );
    assert_eq!(
        h.step(&[("delivery", 60)], t0() + Duration::minutes(10))
            .await,
        [("delivery".into(), Some(Transition::Fired))]
    );
    let a = h.alert("delivery");
    assert_eq!((a.state, a.level), (AlertState::Firing, Level::Yellow));
    assert_eq!(a.annotations["summary"], "delivery has 60 waiting");
    let out = h
        .step(&[("delivery", 120)], t0() + Duration::minutes(11))
        .await;
    assert_eq!(out, [("delivery".into(), Some(Transition::Escalated))]);
    assert_eq!(h.alert("delivery").level, Level::Red);
    assert_eq!(
        h.alert("delivery").annotations["summary"],
        "delivery has 120 waiting"
    );
}

#[tokio::test]
async fn a_breach_shorter_than_for_never_fires() {
    let mut h = Harness::new(rule("for = \"10m\""));
    h.step(&[("finance", 70)], t0()).await;
    let out = h.step(&[], t0() + Duration::minutes(5)).await;
    assert_eq!(out, [("finance".into(), Some(Transition::Cancelled))]);
    assert_eq!(h.alert("finance").fired_at, None);
}

#[tokio::test]
async fn keep_firing_for_holds_a_resolved_breach() {
    let mut h = Harness::new(rule("keep_firing_for = \"30m\""));
    assert_eq!(
        h.step(&[("after_sales", 80)], t0()).await,
        [("after_sales".into(), Some(Transition::Fired))]
    );
    h.step(&[], t0() + Duration::minutes(1)).await;
    assert_eq!(
        h.alert("after_sales").state,
        AlertState::Firing,
        "still within keep_firing_for"
    );
    // Flapping back resets the clock.
    h.step(&[("after_sales", 80)], t0() + Duration::minutes(20))
        .await;
    h.step(&[], t0() + Duration::minutes(21)).await;
    assert_eq!(h.step(&[], t0() + Duration::minutes(50)).await, []);
    assert_eq!(
        h.step(&[], t0() + Duration::minutes(51)).await,
        [("after_sales".into(), Some(Transition::Resolved))]
    );
    assert_eq!(
        h.alert("after_sales").resolved_at,
        Some(t0() + Duration::minutes(51))
    );
}

#[tokio::test]
async fn hysteresis_keeps_firing_until_the_lower_threshold() {
    let mut r = rule("");
    r.resolve_sql = Some("SELECT name FROM queue WHERE backlog >= 20".into());
    let mut h = Harness::new(r);
    h.step(&[("delivery", 55)], t0()).await;
    h.step(&[("delivery", 30)], t0() + Duration::minutes(1))
        .await;
    assert_eq!(
        h.alert("delivery").state,
        AlertState::Firing,
        "30 is under the firing threshold but above the clearing one"
    );
    let out = h
        .step(&[("delivery", 10)], t0() + Duration::minutes(2))
        .await;
    assert_eq!(out, [("delivery".into(), Some(Transition::Resolved))]);
}

#[tokio::test]
async fn pending_timers_survive_a_restart() {
    let mut h = Harness::new(rule("for = \"1h\""));
    h.step(&[("delivery", 60)], t0()).await;
    // The pipeline stores alerts as JSON with each batch; a new process reads them back.
    let stored = serde_json::to_string(&h.alerts).unwrap();
    let mut restarted = Harness::new(rule("for = \"1h\""));
    restarted.alerts = serde_json::from_str(&stored).unwrap();
    assert_eq!(
        restarted
            .step(&[("delivery", 60)], t0() + Duration::minutes(59))
            .await,
        []
    );
    let out = restarted
        .step(&[("delivery", 60)], t0() + Duration::minutes(60))
        .await;
    assert_eq!(out, [("delivery".into(), Some(Transition::Fired))]);
    assert_eq!(
        restarted.alert("delivery").active_since,
        t0(),
        "the breach began before the restart"
    );
}

#[tokio::test]
async fn now_and_today_come_from_the_pipeline_clock() {
    let engine = Engine::new(chrono_tz::Asia::Shanghai);
    // 2026-10-01T17:00Z is already 2 October in Shanghai.
    let rows = engine
        .query(
            "SELECT CAST(now() AS VARCHAR) AS n, CAST(today() AS VARCHAR) AS d",
            "2026-10-01T17:00:00Z".parse().unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(rows[0]["d"], "2026-10-02");
    assert!(
        rows[0]["n"].starts_with("2026-10-01T17:00:00"),
        "{}",
        rows[0]["n"]
    );
}

#[tokio::test]
async fn a_broken_rule_names_its_file_and_line() {
    let engine = Engine::new(chrono_tz::Asia::Shanghai);
    engine.set_table("queue", queue(&[])).unwrap();
    let text = "id = \"t.bad\"\ntitle = \"Bad\"\nsubject = [\"name\"]\nsql = \"SELECT name, 'red' AS level FROM nowhere\"\n";
    let r = Rule::parse("packs/t/bad.toml", text).unwrap();
    let e = engine.check(&r).await.unwrap_err();
    assert_eq!((e.file.as_str(), e.line), ("packs/t/bad.toml", 4));
    assert!(e.message.contains("nowhere"), "{}", e.message);
    let r = Rule::parse(
        "packs/t/nolevel.toml",
        &text.replace(", 'red' AS level FROM nowhere", " FROM queue"),
    )
    .unwrap();
    let e = engine.check(&r).await.unwrap_err();
    assert!(e.message.contains("no `level` column"), "{}", e.message);
}
