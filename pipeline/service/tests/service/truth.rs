//! The foundation's acceptance test: for generated datasets, the work items after `run` +
//! `nightly` equal `truth.jsonl` exactly, and running again changes nothing.

use crate::common::*;

async fn check_dataset(contracts: usize, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let (p, stats) = generate_and_run(dir.path(), contracts, seed).await;
    assert_eq!(stats.dead_letters, 0, "a generated dataset is clean");
    let found = open_subjects(&p);
    let truth = truth_subjects(dir.path());
    println!(
        "dataset: {contracts} contracts, seed {seed}: {} work items, {} injected problems",
        found.len(),
        truth.len()
    );
    let per_kind = score(&found, &truth);
    for kind in [
        "missing_payment",
        "partial_payment",
        "overpayment",
        "duplicate_payment",
        "unmatched_receipt",
        "amount_mismatch",
        "signature_not_certified",
    ] {
        assert!(
            per_kind.get(kind).is_some_and(|k| k.0 > 0),
            "the dataset injects at least one {kind}"
        );
    }
    let missed: Vec<_> = truth.difference(&found).collect();
    let extra: Vec<_> = found.difference(&truth).collect();
    if !(missed.is_empty() && extra.is_empty()) {
        panic!(
            "{} missed, {} unexpected:\n{}",
            missed.len(),
            extra.len(),
            explain(&p, &missed, &extra)
        );
    }
}

/// What a clerk would look at for each difference: the item's summary, and every credit
/// allocated to the contract in question.
fn explain(
    p: &reconlight_service::ingest::Pipeline,
    missed: &[&Subject],
    extra: &[&Subject],
) -> String {
    let mut out = String::new();
    let allocations = |contract: &Option<String>| -> String {
        p.state
            .matches
            .values()
            .flatten()
            .filter(|a| Some(&a.contract_no) == contract.as_ref())
            .map(|a| {
                let tx = &p.state.bank[&a.bank_ref].tx;
                format!(
                    "\n      {} {} {} \"{}\" -> #{} {} ({}%): {}",
                    a.bank_ref,
                    tx.booking_date,
                    tx.amount.amount,
                    tx.remittance,
                    a.seq,
                    a.amount,
                    a.confidence,
                    a.explanation
                )
            })
            .collect()
    };
    let installments = |contract: &Option<String>| -> String {
        p.state
            .installments
            .values()
            .filter(|i| Some(&i.contract_no) == contract.as_ref())
            .map(|i| format!(" #{} {} due {:?};", i.seq, i.amount.amount, i.due_date))
            .collect()
    };
    for (what, list) in [("missed", missed), ("unexpected", extra)] {
        for s in list.iter().take(15) {
            let summary = p
                .state
                .work_items
                .values()
                .find(|w| {
                    let f = &w.finding;
                    f.kind.as_str() == s.0
                        && f.contract_no == s.1
                        && f.installment == s.2
                        && f.bank_ref == s.3
                })
                .map(|w| w.finding.summary.clone())
                .unwrap_or_default();
            out.push_str(&format!(
                "  {what} {s:?} {summary}\n    installments:{}{}\n",
                installments(&s.1),
                allocations(&s.1)
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_items_equal_truth_for_2000_contracts() {
    check_dataset(2000, 20261127).await;
}

/// The reconciliation acceptance run: 10,000 contracts with split, combined and returned
/// payments, similar payer names, free-text and unreadable terms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_items_equal_truth_for_10000_contracts() {
    check_dataset(10_000, 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_items_equal_truth_for_another_seed() {
    check_dataset(600, 7).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_the_same_input_again_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (p, _) = generate_and_run(dir.path(), 300, 3).await;
    let items_before = p.state.work_items.clone();
    let alerts_before = p.state.alerts.clone();
    let stored_alerts_before = p.store.alerts().await.unwrap();
    let audit_before = p.store.audit_entries(None).await.unwrap().len();
    drop(p);

    let mut again = open(dir.path()).await;
    let stats = again.run_until_idle(|_, _| {}).await.unwrap();
    assert_eq!(stats.records, 0, "every position was stored with its batch");
    let date = again.default_business_date();
    let outcome = again.nightly(date).await.unwrap();
    assert_eq!(
        (
            outcome.opened,
            outcome.reopened,
            outcome.updated,
            outcome.auto_resolved
        ),
        (0, 0, 0, 0)
    );
    assert_eq!(again.state.work_items, items_before);
    assert_eq!(again.state.alerts, alerts_before);
    assert_eq!(again.store.alerts().await.unwrap(), stored_alerts_before);
    assert_eq!(
        again.store.audit_entries(None).await.unwrap().len(),
        audit_before
    );
}
