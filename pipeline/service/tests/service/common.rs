//! Helpers shared by the pipeline's end-to-end tests.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use reconlight_service::config::Config;
use reconlight_service::ingest::{Pipeline, RunStats};
use reconlight_service::metrics::Metrics;
use reconlight_testkit::{TruthLine, generate, read_truth};

/// Work items as truth lines: (kind, contract_no, installment, bank_ref).
pub type Subject = (String, Option<String>, Option<u32>, Option<String>);

pub fn subject_of_truth(t: &TruthLine) -> Subject {
    (
        t.kind.clone(),
        t.contract_no.clone(),
        t.installment,
        t.bank_ref.clone(),
    )
}

pub async fn open(dir: &Path) -> Pipeline {
    let config = Config::load(&dir.join("reconlight.toml")).expect("dataset config loads");
    Pipeline::open(config, Arc::new(Metrics::new()))
        .await
        .expect("pipeline opens")
}

/// Generates a dataset, runs it and the nightly diff; returns the pipeline and run stats.
pub async fn generate_and_run(dir: &Path, contracts: usize, seed: u64) -> (Pipeline, RunStats) {
    generate(contracts, seed, dir).expect("generate");
    let mut p = open(dir).await;
    let stats = p.run_until_idle(|_, _| {}).await.expect("run");
    let date = p.default_business_date();
    p.nightly(date).await.expect("nightly");
    (p, stats)
}

pub fn open_subjects(p: &Pipeline) -> BTreeSet<Subject> {
    p.state
        .work_items
        .values()
        .filter(|w| w.state.is_active())
        .map(|w| {
            let f = &w.finding;
            (
                f.kind.as_str().to_string(),
                f.contract_no.clone(),
                f.installment,
                f.bank_ref.clone(),
            )
        })
        .collect()
}

pub fn truth_subjects(dir: &Path) -> BTreeSet<Subject> {
    read_truth(dir)
        .expect("truth.jsonl")
        .iter()
        .map(subject_of_truth)
        .collect()
}

/// Prints precision and recall per kind and returns (kind -> (tp, fp, fn)).
pub fn score(
    found: &BTreeSet<Subject>,
    truth: &BTreeSet<Subject>,
) -> BTreeMap<String, (usize, usize, usize)> {
    let mut per_kind: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    for s in found {
        let e = per_kind.entry(s.0.clone()).or_default();
        if truth.contains(s) {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    for s in truth.difference(found) {
        per_kind.entry(s.0.clone()).or_default().2 += 1;
    }
    println!(
        "{:<26} {:>6} {:>6} {:>6} {:>9} {:>7}",
        "kind", "tp", "fp", "fn", "precision", "recall"
    );
    for (kind, (tp, fp, fneg)) in &per_kind {
        let precision = if tp + fp == 0 {
            1.0
        } else {
            *tp as f64 / (tp + fp) as f64
        };
        let recall = if tp + fneg == 0 {
            1.0
        } else {
            *tp as f64 / (tp + fneg) as f64
        };
        println!("{kind:<26} {tp:>6} {fp:>6} {fneg:>6} {precision:>9.3} {recall:>7.3}");
    }
    let (tp, fp, fneg) = per_kind
        .values()
        .fold((0, 0, 0), |a, k| (a.0 + k.0, a.1 + k.1, a.2 + k.2));
    let precision = if tp + fp == 0 {
        1.0
    } else {
        tp as f64 / (tp + fp) as f64
    };
    let recall = if tp + fneg == 0 {
        1.0
    } else {
        tp as f64 / (tp + fneg) as f64
    };
    println!(
        "{:<26} {tp:>6} {fp:>6} {fneg:>6} {precision:>9.3} {recall:>7.3}",
        "overall"
    );
    per_kind
}

/// The alerts whose condition holds at the end: (rule, subject, level). Whether one is
/// still pending or already firing depends on where micro-batch boundaries fell (rules are
/// evaluated once per batch), so a run read in other batches compares on this set.
pub fn active_alerts(p: &Pipeline) -> BTreeSet<(String, String, String)> {
    use reconlight_rules::AlertState;
    p.state
        .alerts
        .values()
        .filter(|a| {
            matches!(a.state, AlertState::Pending | AlertState::Firing) && a.cleared_at.is_none()
        })
        .map(|a| {
            (
                a.rule_id.clone(),
                a.subject.clone(),
                a.level.as_str().to_string(),
            )
        })
        .collect()
}

/// Publishes a generated dataset to its topics (created beforehand, or here with
/// `partitions`) and returns the configuration reading them.
pub async fn publish_dataset(dir: &Path, brokers: &str, partitions: Option<i32>) -> Config {
    use reconlight_service::publish::{ProduceOptions, produce};
    for t in reconlight_testkit::dataset_topics(dir) {
        let options = ProduceOptions {
            brokers: brokers.to_string(),
            properties: Default::default(),
            topic: t.topic.clone(),
            partitions,
            whole_file: t.whole_file,
            key_pointers: t.key_pointers.clone(),
        };
        produce(&options, &t.files).await.expect("produce");
    }
    let text = reconlight_testkit::dataset_kafka_config(dir, brokers);
    Config::parse(&text, dir).expect("kafka config parses")
}

/// Asserts two sets are equal, printing only what differs.
pub fn assert_same<T: Ord + std::fmt::Debug>(got: &BTreeSet<T>, want: &BTreeSet<T>, what: &str) {
    let extra: Vec<_> = got.difference(want).collect();
    let missing: Vec<_> = want.difference(got).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "{what}: {} unexpected {extra:?}; {} missing {missing:?}",
        extra.len(),
        missing.len()
    );
}

/// A new API token for `name` in `role`, as `reconlight tokens create` makes one.
pub async fn token(
    store: &reconlight_service::store::Store,
    name: &str,
    role: reconlight_service::access::Role,
) -> String {
    let t = reconlight_service::access::new_token().expect("a token");
    store
        .add_api_token(&t.id, name, role, &t.hash, chrono::Utc::now())
        .await
        .expect("token stored");
    t.token
}

/// A fresh database on the server scripts/test.sh started.
pub fn postgres_database(name: &str) -> String {
    let server = std::env::var("RECONLIGHT_TEST_PG").unwrap_or_else(|_| {
        panic!("RECONLIGHT_TEST_PG is not set: run scripts/test.sh, which starts a PostgreSQL server for this test")
    });
    let (host, port) = server.split_once(':').unwrap();
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        let out = std::process::Command::new("psql")
            .args(["-h", host, "-p", port, "-U", "postgres", "-d", "postgres"])
            .args(["-v", "ON_ERROR_STOP=1", "-c", &sql])
            .output()
            .unwrap();
        assert!(out.status.success(), "{sql}: {out:?}");
    }
    format!("postgres://postgres@{server}/{name}")
}
