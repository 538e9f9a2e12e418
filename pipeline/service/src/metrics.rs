//! Prometheus metrics for the pipeline, the rules and the queue, served on `/metrics`.

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Every metric reconlight exports.
pub struct Metrics {
    pub registry: Registry,
    pub events: IntCounterVec,
    pub ignored: IntCounterVec,
    pub dead_letters: IntCounterVec,
    pub batch_commit_seconds: Histogram,
    pub rule_evaluation_seconds: HistogramVec,
    pub rule_errors: IntCounterVec,
    pub alerts: IntGaugeVec,
    /// Each alert's labels as last counted in `alerts`, so a commit moves only its own.
    alert_labels: std::sync::Mutex<std::collections::HashMap<String, (String, String, String)>>,
    pub alert_transitions: IntCounterVec,
    pub work_items_open: IntGaugeVec,
    pub watermark_seconds: IntGauge,
    pub unbalanced_statements: IntCounterVec,
    pub nightly_difference_rate: Gauge,
    pub nightly_matched_rate: Gauge,
    pub nightly_findings: IntGaugeVec,
    pub nightly_amount: GaugeVec,
    pub notifications: IntCounterVec,
    pub webhooks: IntCounterVec,
    pub kafka_lag: IntGaugeVec,
    pub kafka_paused: IntGauge,
    /// Partitions assigned to this instance's consumer (for `/readyz`).
    pub kafka_assigned: IntGauge,
    /// 1 while this instance holds the ingest lease, 0 while it stands by.
    pub ingest_active: IntGauge,
    /// The consumer's lag summed over its partitions (for `/readyz`).
    pub kafka_lag_total: IntGauge,
    pub nightly_business_date_seconds: IntGauge,
    pub outbox_backlog: IntGaugeVec,
    /// Open work items' money at stake by kind and age bucket.
    pub work_items_at_stake: GaugeVec,
    /// Handoff work orders by department and SLA state.
    pub handoff_tickets: IntGaugeVec,
    /// When the handoff gauges were last computed (they scan every work order), and
    /// whether something they count changed since.
    handoffs_observed: std::sync::Mutex<(Option<std::time::Instant>, bool)>,
}

/// Why a record went to the dead letters: the `reason` label of `reconlight_dead_letters_total`.
pub const DEAD_LETTER_CLASSES: [&str; 4] = ["decode", "invariant", "future", "statement"];

/// The handoff gauges are recomputed at most this often.
const HANDOFFS_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            g
        };
        let events = counter(
            "reconlight_events_total",
            "Records applied to the live tables, by source",
            &["source"],
        );
        let ignored = counter(
            "reconlight_events_ignored_total",
            "Valid records that carried nothing to apply, by source and reason",
            &["source", "reason"],
        );
        let dead_letters = counter(
            "reconlight_dead_letters_total",
            "Records sent to the dead-letter table, by source and reason",
            &["source", "reason"],
        );
        let batch_commit_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "reconlight_batch_commit_seconds",
                "Time to commit one micro-batch",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        )
        .expect("valid metric");
        registry
            .register(Box::new(batch_commit_seconds.clone()))
            .expect("unique metric");
        let rule_evaluation_seconds = HistogramVec::new(
            HistogramOpts::new(
                "reconlight_rule_evaluation_seconds",
                "Time to evaluate one rule",
            )
            .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0]),
            &["rule"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(rule_evaluation_seconds.clone()))
            .expect("unique metric");
        let rule_errors = counter(
            "reconlight_rule_errors_total",
            "Rule evaluations that failed",
            &["rule"],
        );
        let alerts = gauge(
            "reconlight_alerts",
            "Pending and firing alerts by rule, level and state",
            &["rule", "level", "state"],
        );
        let alert_transitions = counter(
            "reconlight_alert_transitions_total",
            "Alert lifecycle transitions",
            &["rule", "transition"],
        );
        let work_items_open = gauge(
            "reconlight_work_items_open",
            "Open or assigned work items by kind",
            &["kind"],
        );
        let watermark_seconds = IntGauge::new(
            "reconlight_watermark_seconds",
            "The event-time watermark (Unix seconds)",
        )
        .expect("valid metric");
        registry
            .register(Box::new(watermark_seconds.clone()))
            .expect("unique metric");
        let unbalanced_statements = counter(
            "reconlight_unbalanced_statements_total",
            "Bank statements whose opening balance plus entries does not equal the closing balance",
            &["source"],
        );
        let nightly_difference_rate = Gauge::new(
            "reconlight_nightly_difference_rate_percent",
            "CRM-vs-bank difference rate of the latest nightly diff, in percent of the amount due",
        )
        .expect("valid metric");
        registry
            .register(Box::new(nightly_difference_rate.clone()))
            .expect("unique metric");
        let nightly_matched_rate = Gauge::new(
            "reconlight_nightly_matched_rate_percent",
            "Share of credits matched at the latest nightly diff, in percent",
        )
        .expect("valid metric");
        registry
            .register(Box::new(nightly_matched_rate.clone()))
            .expect("unique metric");
        let nightly_findings = gauge(
            "reconlight_nightly_findings",
            "Findings of the latest nightly diff by kind",
            &["kind"],
        );
        let nightly_amount = GaugeVec::new(
            Opts::new(
                "reconlight_nightly_amount",
                "Money at stake in the latest nightly diff's findings by kind",
            ),
            &["kind"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(nightly_amount.clone()))
            .expect("unique metric");
        let notifications = counter(
            "reconlight_notifications_total",
            "Notifier sends by notifier and outcome (delivered, skipped, retry, failed)",
            &["notifier", "outcome"],
        );
        let webhooks = counter(
            "reconlight_webhooks_total",
            "Webhook calls by provider and outcome (accepted, duplicate, rejected)",
            &["provider", "outcome"],
        );
        let kafka_lag = gauge(
            "reconlight_kafka_consumer_lag",
            "Messages between the committed position and the end of each assigned partition",
            &["topic", "partition"],
        );
        let kafka_paused = IntGauge::new(
            "reconlight_kafka_consumer_paused",
            "1 while the consumer has stopped fetching because the Kafka sinks are behind",
        )
        .expect("valid metric");
        registry
            .register(Box::new(kafka_paused.clone()))
            .expect("unique metric");
        let nightly_business_date_seconds = IntGauge::new(
            "reconlight_nightly_business_date_seconds",
            "The business date of the latest nightly diff (midnight UTC, Unix seconds); 0 before the first",
        )
        .expect("valid metric");
        registry
            .register(Box::new(nightly_business_date_seconds.clone()))
            .expect("unique metric");
        let outbox_backlog = gauge(
            "reconlight_outbox_backlog",
            "Outbox messages a notifier or Kafka sink has still to deliver",
            &["notifier"],
        );
        let kafka_assigned = IntGauge::new(
            "reconlight_kafka_assigned_partitions",
            "Partitions assigned to this instance's consumer",
        )
        .expect("valid metric");
        registry
            .register(Box::new(kafka_assigned.clone()))
            .expect("unique metric");
        let ingest_active = IntGauge::new(
            "reconlight_ingest_active",
            "1 while this instance ingests (holds the ingest lease), 0 while it stands by",
        )
        .expect("valid metric");
        registry
            .register(Box::new(ingest_active.clone()))
            .expect("unique metric");
        let work_items_at_stake = GaugeVec::new(
            Opts::new(
                "reconlight_work_items_at_stake",
                "Money at stake in open work items, by kind and age in days (from the due or booking date)",
            ),
            &["kind", "age"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(work_items_at_stake.clone()))
            .expect("unique metric");
        let handoff_tickets = gauge(
            "reconlight_handoff_tickets",
            "Handoff work orders by department and SLA state (acknowledged_in_time, acknowledged_late, waiting, overdue)",
            &["department", "sla"],
        );
        let kafka_lag_total = IntGauge::new(
            "reconlight_kafka_consumer_lag_total",
            "Messages between the committed positions and the ends of all assigned partitions",
        )
        .expect("valid metric");
        registry
            .register(Box::new(kafka_lag_total.clone()))
            .expect("unique metric");
        Metrics {
            kafka_assigned,
            ingest_active,
            work_items_at_stake,
            handoff_tickets,
            handoffs_observed: Default::default(),
            kafka_lag_total,
            nightly_business_date_seconds,
            outbox_backlog,
            kafka_lag,
            kafka_paused,
            webhooks,
            notifications,
            nightly_difference_rate,
            nightly_matched_rate,
            nightly_findings,
            nightly_amount,
            registry,
            events,
            ignored,
            dead_letters,
            batch_commit_seconds,
            rule_evaluation_seconds,
            rule_errors,
            alerts,
            alert_transitions,
            work_items_open,
            alert_labels: Default::default(),
            watermark_seconds,
            unbalanced_statements,
        }
    }

    /// Sets every gauge from what the store holds: the live tables and the latest nightly
    /// run, so a restarted process does not report zeros until the next nightly diff.
    pub async fn observe_store(
        &self,
        state: &reconlight_core::state::LiveState,
        store: &crate::store::Store,
    ) -> Result<(), crate::store::StoreError> {
        self.observe_state(state);
        if let Some(outcome) = store.latest_nightly().await? {
            self.observe_nightly(&outcome);
        }
        Ok(())
    }

    /// Sets the gauges that mirror the live tables.
    pub fn observe_state(&self, state: &reconlight_core::state::LiveState) {
        self.alerts.reset();
        let mut labels = self.alert_labels.lock().expect("not poisoned");
        labels.clear();
        for a in state
            .alerts
            .values()
            .filter(|a| a.state != reconlight_rules::AlertState::Resolved)
        {
            let l = alert_labels(a);
            self.alerts.with_label_values(&[&l.0, &l.1, &l.2]).inc();
            labels.insert(a.id.clone(), l);
        }
        drop(labels);
        self.observe_work_items(state);
        self.observe_handoffs(state, true);
        if let Some(w) = state.watermark {
            self.watermark_seconds.set(w.timestamp());
        }
    }

    /// Zero-valued series for every label a dashboard or alert asks about before anything
    /// happened (no dead letter yet, no rule error yet), so `rate()` and `increase()` answer.
    pub fn declare(&self, sources: &[(String, bool)], rules: &[String]) {
        for (source, is_bank) in sources {
            for class in DEAD_LETTER_CLASSES {
                self.dead_letters.with_label_values(&[source, class]);
            }
            if *is_bank {
                self.unbalanced_statements.with_label_values(&[source]);
            }
        }
        for rule in rules {
            self.rule_errors.with_label_values(&[rule]);
        }
    }

    /// Recomputes the handoff gauges: every work order's SLA state at the clock's time
    /// (the event-time watermark). `changed`: something they count changed; they are
    /// recomputed at most every ten seconds, at a later commit if not at this one.
    fn observe_handoffs(&self, state: &reconlight_core::state::LiveState, changed: bool) {
        let mut observed = self.handoffs_observed.lock().expect("not poisoned");
        let (last, stale) = &mut *observed;
        *stale |= changed;
        if !*stale || last.is_some_and(|t| t.elapsed() < HANDOFFS_EVERY) {
            return;
        }
        let Some(clock) = state.watermark else {
            return;
        };
        *last = Some(std::time::Instant::now());
        *stale = false;
        let mut counts: std::collections::BTreeMap<(&str, &str), i64> = Default::default();
        for t in state.tickets.values() {
            let deadline = state
                .contracts
                .get(&t.contract_no)
                .and_then(|c| c.signed_at)
                .unwrap_or(t.created_at)
                + chrono::Duration::hours(reconlight_core::monthly::HANDOFF_SLA_HOURS);
            let sla = match t.acknowledged_at {
                Some(ack) if ack <= deadline => "acknowledged_in_time",
                Some(_) => "acknowledged_late",
                None if clock <= deadline => "waiting",
                None => "overdue",
            };
            *counts.entry((t.department.as_str(), sla)).or_default() += 1;
        }
        let departments: std::collections::BTreeSet<&str> =
            counts.keys().map(|(d, _)| *d).collect();
        for d in departments {
            for sla in [
                "acknowledged_in_time",
                "acknowledged_late",
                "waiting",
                "overdue",
            ] {
                self.handoff_tickets
                    .with_label_values(&[d, sla])
                    .set(counts.get(&(d, sla)).copied().unwrap_or(0));
            }
        }
    }

    /// Moves the gauges by what a commit changed: the alerts it touched and, when the queue
    /// changed, the open work items.
    pub fn observe_changes(
        &self,
        state: &reconlight_core::state::LiveState,
        dirty: &reconlight_core::state::Dirty,
    ) {
        let mut labels = self.alert_labels.lock().expect("not poisoned");
        for id in &dirty.alerts {
            if let Some(old) = labels.remove(id) {
                self.alerts
                    .with_label_values(&[&old.0, &old.1, &old.2])
                    .dec();
            }
            if let Some(a) = state
                .alerts
                .get(id)
                .filter(|a| a.state != reconlight_rules::AlertState::Resolved)
            {
                let l = alert_labels(a);
                self.alerts.with_label_values(&[&l.0, &l.1, &l.2]).inc();
                labels.insert(id.clone(), l);
            }
        }
        drop(labels);
        if !dirty.work_items.is_empty() {
            self.observe_work_items(state);
        }
        self.observe_handoffs(
            state,
            !dirty.tickets.is_empty() || !dirty.contracts.is_empty() || dirty.watermark,
        );
        if let Some(w) = state.watermark {
            self.watermark_seconds.set(w.timestamp());
        }
    }

    fn observe_work_items(&self, state: &reconlight_core::state::LiveState) {
        use reconlight_core::monthly::{AGE_BUCKETS, age_basis};
        use rust_decimal::prelude::ToPrimitive;
        let today = state
            .watermark
            .map(|w| w.date_naive())
            .unwrap_or_else(|| chrono::Utc::now().date_naive());
        let mut open: std::collections::BTreeMap<&str, i64> = Default::default();
        let mut at_stake: std::collections::BTreeMap<(&str, &str), rust_decimal::Decimal> =
            Default::default();
        for w in state.work_items.values().filter(|w| w.state.is_active()) {
            let kind = w.finding.kind.as_str();
            *open.entry(kind).or_default() += 1;
            let age = (today - age_basis(state, w)).num_days().max(0);
            let bucket = AGE_BUCKETS
                .iter()
                .find(|(_, from, to)| age >= *from && age <= *to)
                .map(|(label, _, _)| *label)
                .unwrap_or("90+");
            *at_stake.entry((kind, bucket)).or_default() += w.finding.amount_at_stake();
        }
        for kind in reconlight_core::workitems::WorkItemKind::ALL {
            self.work_items_open
                .with_label_values(&[kind.as_str()])
                .set(open.get(kind.as_str()).copied().unwrap_or(0));
            for (bucket, _, _) in AGE_BUCKETS {
                let amount = at_stake
                    .get(&(kind.as_str(), bucket))
                    .and_then(|d| d.to_f64())
                    .unwrap_or(0.0);
                self.work_items_at_stake
                    .with_label_values(&[kind.as_str(), bucket])
                    .set(amount);
            }
        }
    }

    /// Sets the gauges of the latest nightly diff.
    pub fn observe_nightly(&self, outcome: &reconlight_core::reconcile::diff::NightlyOutcome) {
        use rust_decimal::prelude::ToPrimitive;
        let s = &outcome.summary;
        self.nightly_business_date_seconds.set(
            s.date
                .and_hms_opt(0, 0, 0)
                .expect("midnight")
                .and_utc()
                .timestamp(),
        );
        self.nightly_difference_rate
            .set(s.difference_rate_percent.to_f64().unwrap_or(0.0));
        let matched = if s.credits == 0 {
            100.0
        } else {
            s.credits_matched as f64 * 100.0 / s.credits as f64
        };
        self.nightly_matched_rate.set(matched);
        self.nightly_findings.reset();
        self.nightly_amount.reset();
        for (kind, n) in &s.findings_by_kind {
            self.nightly_findings
                .with_label_values(&[kind])
                .set(*n as i64);
            let amount = s
                .amount_by_kind
                .get(kind)
                .and_then(|a| a.to_f64())
                .unwrap_or(0.0);
            self.nightly_amount.with_label_values(&[kind]).set(amount);
        }
    }

    /// Counts one notifier attempt.
    /// One delivery attempt: `delivered`, `skipped`, `retry` or `failed`.
    pub fn count_notification(&self, notifier: &str, outcome: &str) {
        self.notifications
            .with_label_values(&[notifier, outcome])
            .inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("metrics encode");
        String::from_utf8(buf).expect("metrics are UTF-8")
    }
}

fn alert_labels(a: &reconlight_rules::Alert) -> (String, String, String) {
    (
        a.rule_id.clone(),
        a.level.as_str().to_string(),
        a.state.as_str().to_string(),
    )
}
