//! Helpers shared by the pipeline's end-to-end tests.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use reconlight::config::Config;
use reconlight::generate::{TruthLine, generate, read_truth};
use reconlight::ingest::{Pipeline, RunStats};
use reconlight::metrics::Metrics;

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
