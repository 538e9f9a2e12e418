//! The incremental core against a full recomputation: every batch of generated datasets
//! (several seeds and sizes, small batches so that contracts, credits, deliveries and
//! reversals land in different batches) leaves the matches a full recomputation gives, and
//! so do clerks' decisions picked up by the clock tick.

use crate::common::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use reconlight_core::reconcile::matching::MatchSettings;
use reconlight_core::reconcile::matching::incremental::differences_from_full;
use reconlight_service::access::Role;
use tower::ServiceExt;

async fn run_checked(contracts: usize, seed: u64, batch_size: usize) {
    let dir = tempfile::tempdir().unwrap();
    reconlight_testkit::generate(contracts, seed, dir.path()).expect("generate");
    let mut p = open(dir.path()).await;
    p.config.ingest.batch_size = batch_size;
    p.verify_incremental = true;
    p.rules.full_every = std::time::Duration::from_secs(400 * 86_400);
    let stats = p
        .run_until_idle(|_, _| {})
        .await
        .unwrap_or_else(|e| panic!("{contracts} contracts, seed {seed}: {e:#}"));
    assert!(
        stats.batches as usize >= stats.records as usize / batch_size,
        "{stats:?}"
    );
    assert!(
        !p.state.matches.is_empty(),
        "the dataset matched credits at all"
    );
    // The alert gauges, moved commit by commit, equal a count of the alerts.
    let recount = reconlight_service::metrics::Metrics::new();
    recount.observe_state(&p.state);
    let gauges = |m: &reconlight_service::metrics::Metrics| {
        let mut v: Vec<(String, i64)> = m
            .registry
            .gather()
            .into_iter()
            .filter(|f| f.name() == "reconlight_alerts")
            .flat_map(|f| f.get_metric().to_vec())
            .map(|m| {
                let labels: Vec<String> = m
                    .get_label()
                    .iter()
                    .map(|l| format!("{}={}", l.name(), l.value()))
                    .collect();
                (labels.join(","), m.get_gauge().get_value() as i64)
            })
            .filter(|(_, n)| *n != 0)
            .collect();
        v.sort();
        v
    };
    assert!(!gauges(&recount).is_empty());
    assert_eq!(gauges(&p.metrics), gauges(&recount));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_batch_equals_a_full_recomputation() {
    for (contracts, seed, batch) in [(300, 1, 97), (300, 2, 500), (1000, 3, 250)] {
        run_checked(contracts, seed, batch).await;
    }
}

/// Runs the dataset's sources in groups, one group after another (a CRM lagging behind
/// the bank, or the bank behind the CRM), each group by a pipeline opened afresh over the
/// same store: the matches stay those of a full recomputation at every batch.
async fn run_in_groups(contracts: usize, seed: u64, groups: &[fn(&str) -> bool]) {
    let dir = tempfile::tempdir().unwrap();
    reconlight_testkit::generate(contracts, seed, dir.path()).expect("generate");
    let config_path = dir.path().join("reconlight.toml");
    let mut read_so_far: Vec<String> = Vec::new();
    for group in groups {
        let mut config = reconlight_service::config::Config::load(&config_path).unwrap();
        config
            .sources
            .retain(|s| group(&s.name) || read_so_far.contains(&s.name));
        read_so_far.extend(config.sources.iter().map(|s| s.name.clone()));
        config.ingest.batch_size = 300;
        let mut p = reconlight_service::ingest::Pipeline::open(
            config,
            std::sync::Arc::new(reconlight_service::metrics::Metrics::new()),
        )
        .await
        .unwrap();
        p.verify_incremental = true;
        p.rules.full_every = std::time::Duration::from_secs(400 * 86_400);
        p.run_until_idle(|_, _| {})
            .await
            .unwrap_or_else(|e| panic!("{contracts} contracts, seed {seed}: {e:#}"));
    }
}

fn is_bank(name: &str) -> bool {
    name.starts_with("bank")
}

fn is_crm(name: &str) -> bool {
    name.starts_with("crm")
}

fn anything(_: &str) -> bool {
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credits_before_their_contracts_and_contracts_before_their_credits() {
    run_in_groups(400, 7, &[is_bank, is_crm, anything]).await;
    run_in_groups(400, 8, &[is_crm, anything]).await;
}

/// The alerts in force (pending or firing) after a run, by rule, subject and level.
async fn alerts_in_force(dir: &std::path::Path, full_every: u64) -> Vec<(String, String, String)> {
    let mut p = open(dir).await;
    p.rules.full_every = std::time::Duration::from_secs(full_every);
    p.config.ingest.batch_size = 400;
    p.run_until_idle(|_, _| {}).await.expect("run");
    let mut out: Vec<(String, String, String)> = p
        .state
        .alerts
        .values()
        .filter(|a| a.state != reconlight_rules::AlertState::Resolved)
        .filter(|a| {
            // Hysteresis and keep_firing_for remember evaluations in between, which a run
            // that evaluates in full only at its end does not make.
            p.rules
                .rules
                .iter()
                .find(|r| r.id == a.rule_id)
                .is_some_and(|r| r.resolve_sql.is_none() && r.keep_firing_for.is_zero())
        })
        .map(|a| {
            (
                a.rule_id.clone(),
                a.subject.clone(),
                a.level.as_str().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_ends_with_the_alerts_of_full_evaluations_after_every_batch() {
    let incremental = tempfile::tempdir().unwrap();
    let full = tempfile::tempdir().unwrap();
    reconlight_testkit::generate(600, 11, incremental.path()).unwrap();
    reconlight_testkit::generate(600, 11, full.path()).unwrap();
    let a = alerts_in_force(incremental.path(), 400 * 86_400).await;
    let b = alerts_in_force(full.path(), 0).await;
    assert!(a.len() > 20, "the dataset raises alerts: {}", a.len());
    assert_eq!(a, b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerks_match_is_applied_at_the_next_tick_as_a_full_recomputation_would() {
    let dir = tempfile::tempdir().unwrap();
    let (mut p, _) = generate_and_run(dir.path(), 300, 5).await;
    let app = reconlight_service::server::app(p.store.clone(), p.metrics.clone());
    let clerk = token(&p.store, "clerk", Role::Clerk).await;
    let unmatched = p
        .state
        .work_items
        .values()
        .find(|w| w.finding.kind.as_str() == "unmatched_receipt")
        .expect("the dataset has an unmatched receipt")
        .clone();
    let bank_ref = unmatched.finding.bank_ref.clone().unwrap();
    let target = p
        .state
        .installments
        .values()
        .next()
        .map(|i| (i.contract_no.clone(), i.seq))
        .unwrap();
    let request = Request::builder()
        .method("POST")
        .uri(format!("/api/v1/work-items/{}/match", unmatched.id))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {clerk}"))
        .body(Body::from(
            serde_json::json!({"contract_no": target.0, "installment": target.1}).to_string(),
        ))
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!p.state.matches.contains_key(&bank_ref));
    p.tick().await.expect("tick");
    let placed = &p.state.matches[&bank_ref];
    assert_eq!(
        (placed[0].contract_no.clone(), placed[0].seq),
        target,
        "{placed:?}"
    );
    assert!(placed[0].confirmed);
    let settings = MatchSettings {
        tolerance: p.config.business.amount_tolerance,
        auto_confirm: p.config.business.auto_confirm_confidence,
        finder: &reconlight_core::reconcile::reference::ContractRefFinder::new(
            p.config.business.contract_no_pattern.as_str(),
            &p.config.business.contract_no_template,
        )
        .unwrap(),
    };
    assert_eq!(
        differences_from_full(&p.state, &settings),
        Vec::<String>::new()
    );
}
