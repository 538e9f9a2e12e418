//! A clean stop writes the live state as one file beside a SQLite store; a start reads it
//! instead of the tables only while the store is still exactly what the file pictures.

use reconlight_core::state::LiveState;
use reconlight_service::actions::{Action, perform};
use reconlight_service::store::{StateSource, Store};

use crate::common::*;

/// Every part of the state a start reads, compared one by one (so a failure names it).
fn assert_same_state(got: &LiveState, want: &LiveState) {
    assert_eq!(got.customers, want.customers, "customers");
    assert_eq!(got.contracts, want.contracts, "contracts");
    assert_eq!(got.tickets, want.tickets, "handoff tickets");
    assert_eq!(got.extra, want.extra, "extra CRM rows");
    assert_eq!(got.signatures, want.signatures, "signature events");
    assert_eq!(got.bank, want.bank, "bank transactions");
    assert_eq!(got.installments, want.installments, "installments");
    assert_eq!(got.terms_errors, want.terms_errors, "terms errors");
    assert_eq!(got.matches, want.matches, "allocations");
    assert_eq!(got.alerts, want.alerts, "open alerts");
    assert_eq!(got.work_items, want.work_items, "work items");
    // A running pipeline's head holds its key; a read one its MAC.
    let head = |h: &reconlight_core::audit::AuditHead| match h.key {
        Some(_) => h.sealed(),
        None => h.clone(),
    };
    assert_eq!(head(&got.audit_head), head(&want.audit_head), "audit head");
    // In the order of the trail (a running pipeline appends them as batches find them).
    let by_seq = |v: &[reconlight_core::audit::AuditEntry]| {
        let mut v = v.to_vec();
        v.sort_by_key(|e| e.seq);
        v
    };
    assert_eq!(
        by_seq(&got.amount_changes),
        by_seq(&want.amount_changes),
        "amount changes"
    );
    assert_eq!(got.positions, want.positions, "source positions");
    assert_eq!(got.watermark, want.watermark, "watermark");
    assert_eq!(
        got.dead_letter_count, want.dead_letter_count,
        "dead letters"
    );
}

/// A pipeline's start on the store at `url`: its store, state and where it came from.
async fn start(url: &str) -> (Store, LiveState, StateSource) {
    let store = Store::open(url).await.unwrap();
    let (state, source) = store.start_state().await.unwrap();
    (store, state, source)
}

fn why_not(source: &StateSource) -> String {
    match source {
        StateSource::Snapshot { .. } => panic!("the snapshot was used"),
        StateSource::Tables { why_not_snapshot } => {
            why_not_snapshot.clone().expect("a reason it was not used")
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_is_read_back_from_its_snapshot_while_the_store_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let (p, stats) = generate_and_run(dir.path(), 300, 5).await;
    assert!(stats.records > 1_000);
    let url = p.config.store_url();
    let file = dir.path().join("reconlight.db.state");
    p.save_snapshot().await;
    assert!(file.exists(), "a clean stop writes {}", file.display());
    let stored = p.store.load().await.unwrap();
    assert!(stored.bank.len() > 100 && !stored.alerts.is_empty() && !stored.work_items.is_empty());
    assert_same_state(&p.state, &stored);
    drop(p);

    // Read back: the same state as the tables hold, and the file is used up.
    let (store, state, source) = start(&url).await;
    assert!(matches!(source, StateSource::Snapshot { bytes } if bytes > 10_000));
    assert_same_state(&state, &stored);
    assert!(!file.exists(), "a snapshot is read once");

    // Clerks acting beside the pipeline do not make the snapshot stale: work items are
    // read from their table at every start, acknowledgements from the clerks' log.
    store.save_snapshot(&state).await.unwrap().expect("written");
    let item = state
        .work_items
        .values()
        .find(|w| w.state.is_active())
        .unwrap();
    let clerks = Store::open(&url).await.unwrap();
    let acted = perform(
        &clerks,
        &item.id,
        "clerk-ana",
        Action::Assign {
            assignee: "clerk-ana".into(),
        },
        chrono::Utc::now(),
        None,
    )
    .await
    .unwrap();
    let firing = state
        .alerts
        .values()
        .find(|a| a.state == reconlight_rules::AlertState::Firing)
        .expect("a firing alert");
    clerks
        .acknowledge_alert(
            &firing.id,
            "clerk-ana",
            "calling the customer",
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let (store, state, source) = start(&url).await;
    assert!(matches!(source, StateSource::Snapshot { .. }), "{source:?}");
    let acked = store.alerts().await.unwrap();
    let acked = acked.iter().find(|a| a.id == firing.id).unwrap();
    assert_eq!(acked.acknowledged.as_ref().unwrap().by, "clerk-ana");
    assert_eq!(
        state.work_items[&item.id].assignee.as_deref(),
        Some("clerk-ana")
    );
    assert_eq!(state.work_items[&item.id].version, acted.version);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_is_not_used_once_the_store_changed_or_the_file_is_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let (p, _) = generate_and_run(dir.path(), 200, 8).await;
    let url = p.config.store_url();
    let file = dir.path().join("reconlight.db.state");
    p.save_snapshot().await;
    drop(p);

    // Another writer (a second pipeline, a one-off command) changes a live table.
    let other = Store::open(&url).await.unwrap();
    let mut changed = other.load().await.unwrap();
    let customer = changed.customers.keys().next().unwrap().clone();
    changed.customers.get_mut(&customer).unwrap().name = "Renamed Elsewhere GmbH".into();
    let mut dirty = reconlight_core::state::Dirty::default();
    dirty.customers.insert(customer.clone());
    other.commit(&changed, &dirty).await.unwrap();
    let (store, state, source) = start(&url).await;
    assert!(
        why_not(&source).contains("the store was written after it"),
        "{source:?}"
    );
    assert_eq!(state.customers[&customer].name, "Renamed Elsewhere GmbH");
    assert!(!file.exists(), "a stale snapshot is removed");

    // This start's own batches keep the mark; its stop writes a snapshot again.
    let mut dirty = reconlight_core::state::Dirty::default();
    dirty.customers.insert(customer.clone());
    let mut state = state;
    state.customers.get_mut(&customer).unwrap().name = "Renamed Here GmbH".into();
    store.commit(&state, &dirty).await.unwrap();
    store.save_snapshot(&state).await.unwrap().expect("written");
    let stored = store.load().await.unwrap();

    // A damaged file: one byte of a section changed.
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() / 3;
    bytes[at] = if bytes[at] == b'7' { b'8' } else { b'7' };
    std::fs::write(&file, &bytes).unwrap();
    let (store, state, source) = start(&url).await;
    assert!(
        why_not(&source).contains("does not match its checksum"),
        "{source:?}"
    );
    assert_same_state(&state, &stored);

    // Written by a process that then died after more batches: its marker moved on.
    store.save_snapshot(&state).await.unwrap().expect("written");
    let kept = std::fs::read(&file).unwrap();
    let (died, mut state, source) = start(&url).await;
    assert!(matches!(source, StateSource::Snapshot { .. }));
    state.customers.get_mut(&customer).unwrap().name = "Renamed Before Dying GmbH".into();
    died.commit(&state, &dirty).await.unwrap();
    drop(died);
    std::fs::write(&file, &kept).unwrap();
    let (_, state, source) = start(&url).await;
    assert!(
        why_not(&source).contains("the store was written after it"),
        "{source:?}"
    );
    assert_eq!(state.customers[&customer].name, "Renamed Before Dying GmbH");

    // A file cut short.
    let (store, state, _) = start(&url).await;
    store.save_snapshot(&state).await.unwrap().expect("written");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let (_, _, source) = start(&url).await;
    assert!(why_not(&source).contains("ends early"), "{source:?}");
}
