//! The store's schema across versions: an older store is upgraded in place and keeps its
//! rows, a newer one is refused, and the clerk change log gives the pipeline only what
//! changed after its cursor.

use reconlight_core::reconcile::matching::{ManualAllocation, ManualDecision};
use reconlight_service::store::{SCHEMA_VERSION, Store};
use rust_decimal::Decimal;
use sqlx::Row;

/// The schema as reconlight wrote it at version 2, written out here (not taken from the
/// code under test) so the upgrade is checked against what old stores really hold.
const VERSION_2_SCHEMA: &[&str] = &[
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE crm_customers (customer_id TEXT PRIMARY KEY, doc TEXT NOT NULL)",
    "CREATE TABLE crm_contracts (contract_no TEXT PRIMARY KEY, customer_id TEXT NOT NULL, status TEXT NOT NULL, amount TEXT NOT NULL, currency TEXT NOT NULL, doc TEXT NOT NULL)",
    "CREATE TABLE crm_handoff_tickets (ticket_id TEXT PRIMARY KEY, contract_no TEXT NOT NULL, doc TEXT NOT NULL)",
    "CREATE TABLE crm_rows (row_id TEXT PRIMARY KEY, table_name TEXT NOT NULL, row_key TEXT NOT NULL, doc TEXT NOT NULL)",
    "CREATE TABLE signature_events (event_id TEXT PRIMARY KEY, contract_no TEXT, doc TEXT NOT NULL)",
    "CREATE TABLE bank_transactions (bank_ref TEXT PRIMARY KEY, booking_date TEXT NOT NULL, direction TEXT NOT NULL, amount TEXT NOT NULL, currency TEXT NOT NULL, doc TEXT NOT NULL)",
    "CREATE TABLE installments (contract_no TEXT PRIMARY KEY, doc TEXT NOT NULL)",
    "CREATE TABLE matches (bank_ref TEXT PRIMARY KEY, doc TEXT NOT NULL)",
    "CREATE TABLE alerts (alert_id TEXT PRIMARY KEY, rule_id TEXT NOT NULL, state TEXT NOT NULL, level TEXT NOT NULL, doc TEXT NOT NULL)",
    "CREATE TABLE work_items (item_id TEXT PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL, contract_no TEXT, bank_ref TEXT, last_found TEXT NOT NULL, doc TEXT NOT NULL, version BIGINT NOT NULL DEFAULT 0)",
    "CREATE TABLE audit_entries (seq BIGINT PRIMARY KEY, contract_no TEXT, table_name TEXT NOT NULL, row_key TEXT NOT NULL, field TEXT NOT NULL, doc TEXT NOT NULL, hash TEXT NOT NULL)",
    "CREATE TABLE dead_letters (letter_id TEXT PRIMARY KEY, source TEXT NOT NULL, source_position TEXT NOT NULL, reason TEXT NOT NULL, raw TEXT NOT NULL, recorded_at TEXT NOT NULL)",
    "CREATE TABLE source_positions (position_key TEXT PRIMARY KEY, consumed BIGINT NOT NULL)",
    "CREATE TABLE outbox (message_id TEXT PRIMARY KEY, topic TEXT NOT NULL, message_key TEXT NOT NULL, payload TEXT NOT NULL, created_at TEXT NOT NULL, delivered_at TEXT)",
    "CREATE TABLE outbox_deliveries (delivery_id TEXT PRIMARY KEY, notifier TEXT NOT NULL, message_id TEXT NOT NULL, state TEXT NOT NULL, attempts BIGINT NOT NULL, last_error TEXT, next_attempt_at TEXT, updated_at TEXT NOT NULL)",
    "CREATE TABLE alert_acks (alert_id TEXT PRIMARY KEY, doc TEXT NOT NULL)",
    "CREATE TABLE inbox (inbox_id TEXT PRIMARY KEY, provider TEXT NOT NULL, body TEXT NOT NULL, received_at TEXT NOT NULL, consumed BIGINT NOT NULL)",
    "CREATE TABLE manual_decisions (bank_ref TEXT PRIMARY KEY, doc TEXT NOT NULL, version BIGINT NOT NULL DEFAULT 0)",
    "CREATE TABLE nightly_reports (business_date TEXT PRIMARY KEY, doc TEXT NOT NULL)",
    "CREATE TABLE match_history (change_id TEXT PRIMARY KEY, bank_ref TEXT NOT NULL, recorded_at TEXT NOT NULL, doc TEXT NOT NULL)",
    "CREATE TABLE api_tokens (token_id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, hash TEXT NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT)",
    "INSERT INTO meta (name, value) VALUES ('schema_version', '2')",
];

fn a_decision() -> ManualDecision {
    ManualDecision {
        bank_ref: "CR-20260303-0001".into(),
        allocations: vec![ManualAllocation {
            contract_no: "HT-2026-000100".into(),
            seq: 4,
            amount: Decimal::new(2_500_000, 2),
            by: "wang.fang".into(),
            at: "2026-03-05T09:00:00Z".parse().unwrap(),
            note: "paid for installment 4".into(),
        }],
        rejected: vec![],
        version: 1,
    }
}

async fn write_old_store(path: &std::path::Path, version: &str) {
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    for ddl in VERSION_2_SCHEMA {
        sqlx::query(*ddl).execute(&pool).await.unwrap();
    }
    sqlx::query("UPDATE meta SET value = $1 WHERE name = 'schema_version'")
        .bind(version.to_string())
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO manual_decisions (bank_ref, doc, version) VALUES ($1, $2, 1)")
        .bind("CR-20260303-0001")
        .bind(serde_json::to_string(&a_decision()).unwrap())
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO work_items (item_id, kind, state, contract_no, bank_ref, last_found, doc, version) VALUES ($1, 'missing_payment', 'open', 'HT-2026-000100', NULL, '2026-03-31', $2, 1)",
    )
    .bind(OLD_ITEM_ID)
    .bind(OLD_ITEM)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO outbox (message_id, topic, message_key, payload, created_at) VALUES ('MSG-old', 'alerts', 'AL-1', '{}', '2026-03-31T16:00:00+00:00')",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
}

const OLD_ITEM_ID: &str = "WI-0123456789abcdef";
/// A work item as version 2 stored it.
const OLD_ITEM: &str = r#"{"id":"WI-0123456789abcdef","state":"open","kind":"missing_payment","contract_no":"HT-2026-000100","installment":4,"bank_ref":null,"customer_id":"C00042","currency":"CNY","expected":"25000.00","received":"0","summary":"HT-2026-000100 installment 4: CNY 25000.00 was due 2026-03-20; nothing received","details":{},"first_found":"2026-03-31","last_found":"2026-03-31","sla_due":"2026-04-03","assignee":null,"resolution":null,"history":[],"updated_at":"2026-03-31T15:59:00Z","version":1}"#;

#[tokio::test]
async fn a_store_written_by_the_previous_schema_is_upgraded_and_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    write_old_store(&path, "2").await;

    let store = Store::open(&format!("sqlite://{}", path.display()))
        .await
        .expect("an older store opens");
    assert_eq!(SCHEMA_VERSION, 8);
    let decisions = store.manual_decisions().await.unwrap();
    assert_eq!(decisions["CR-20260303-0001"], a_decision());
    // Decisions made before the change log existed are read in full at start; the log
    // starts empty.
    assert_eq!(store.clerk_change_cursor().await.unwrap(), 0);
    // Work items written before the queue's index get their rows at the next start.
    let state = store.load().await.unwrap();
    assert_eq!(store.index_missing_queue_rows(&state).await.unwrap(), 1);
    assert_eq!(store.index_missing_queue_rows(&state).await.unwrap(), 0);
    let page = store
        .queue_page(
            &reconlight_service::store::QueueFilter {
                min_amount: Some(Decimal::new(25_000, 0)),
                ..Default::default()
            },
            reconlight_service::store::QueueSort::Money,
            0,
            10,
        )
        .await
        .unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.items[0].item.id, OLD_ITEM_ID);
    assert_eq!(
        page.at_stake,
        vec![("CNY".to_string(), Decimal::new(2_500_000, 2))]
    );
    // A message written before the outbox knew when rows were written is still delivered (to
    // a notifier first seen before the upgraded store's next start), and once delivered the notifier's window moves on to what is written after it.
    let alerts = ["alerts".to_string()];
    let now = chrono::Utc::now();
    let ids = |pending: Vec<(reconlight_core::outbox::OutboxMessage, u32)>| -> Vec<String> {
        pending.into_iter().map(|(m, _)| m.id).collect()
    };
    let pending = store.pending_deliveries("webhook:ops", &alerts, now, 10);
    assert_eq!(ids(pending.await.unwrap()), ["MSG-old"]);
    assert_eq!(store.backlog("webhook:ops", &alerts).await.unwrap(), 1);
    store
        .record_delivery("webhook:ops", "MSG-old", "delivered", 1, None, None, now)
        .await
        .unwrap();
    let pending = store.pending_deliveries("webhook:ops", &alerts, now, 10);
    assert!(pending.await.unwrap().is_empty());
    assert_eq!(store.backlog("webhook:ops", &alerts).await.unwrap(), 0);
    // Once the upgraded store has started, a notifier seen for the first time is not sent
    // the history.
    store.notifiers_configured(&[]).await.unwrap();
    let pending = store.pending_deliveries("pagerduty", &alerts, now, 10);
    assert!(pending.await.unwrap().is_empty());
    assert_eq!(store.backlog("pagerduty", &alerts).await.unwrap(), 0);
    drop(store);

    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let version: String = sqlx::query("SELECT value FROM meta WHERE name = 'schema_version'")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, "8");
    // Schema 8: a write to any table the live state is read from (work items aside)
    // removes the state snapshot's marker.
    let triggers: i64 = sqlx::query(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'state_snapshot_%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap()
    .get(0);
    assert_eq!(triggers, 13 * 3);
}

/// The unkeyed chain's hash as the audit trail documents it: SHA-256 over the previous
/// hash, then each part after a 0x1f byte (an absent before/after value is a NUL).
fn sha256_chained(prev: &str, parts: &[&str]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(prev.as_bytes());
    for part in parts {
        h.update([0x1f]);
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

#[tokio::test]
async fn audit_entries_stored_whole_before_schema_7_are_read_and_still_verify() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    write_old_store(&path, "2").await;
    // Two entries as schema 6 and earlier stored them: the whole entry in its document.
    let no = "HT-2026-000100";
    let at = "2026-03-01T09:00:00+00:00";
    let position = "crm/contracts.jsonl line 1";
    let h0 = sha256_chained(
        "",
        &[
            "0",
            "contracts",
            no,
            no,
            "amount",
            "\0",
            "25000.00",
            "S001",
            "10.0.0.1",
            at,
            position,
        ],
    );
    let h1 = sha256_chained(
        &h0,
        &[
            "1",
            "contracts",
            no,
            no,
            "currency",
            "\0",
            "CNY",
            "S001",
            "10.0.0.1",
            at,
            position,
        ],
    );
    let old_doc = |seq: u64, field: &str, after: &str, prev: &str, hash: &str| {
        format!(
            r#"{{"seq":{seq},"table":"contracts","key":"{no}","contract_no":"{no}","field":"{field}","before":null,"after":"{after}","operator":"S001","ip":"10.0.0.1","source_time":"2026-03-01T09:00:00Z","source_position":"{position}","prev_hash":"{prev}","hash":"{hash}","keyed":false}}"#
        )
    };
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    for (seq, field, doc, hash) in [
        (0, "amount", old_doc(0, "amount", "25000.00", "", &h0), &h0),
        (1, "currency", old_doc(1, "currency", "CNY", &h0, &h1), &h1),
    ] {
        sqlx::query("INSERT INTO audit_entries (seq, contract_no, table_name, row_key, field, doc, hash) VALUES ($1, $2, 'contracts', $2, $3, $4, $5)")
            .bind(seq as i64)
            .bind(no)
            .bind(field)
            .bind(doc)
            .bind(hash.as_str())
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;

    let store = Store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    // A third entry as this schema writes it: the columns are not repeated in the document,
    // and the previous hash is the entry before's column.
    let mut third = store.audit_entries(Some(no)).await.unwrap()[1].clone();
    third.seq = 2;
    third.field = "status".into();
    third.after = Some("signed".into());
    third.prev_hash = h1.clone();
    third.hash = third.compute_hash(None).unwrap();
    assert!(!third.stored_doc().contains(&h1), "{}", third.stored_doc());
    let pool = sqlx::AnyPool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("INSERT INTO audit_entries (seq, contract_no, table_name, row_key, field, doc, hash) VALUES (2, $1, 'contracts', $1, 'status', $2, $3)")
        .bind(no)
        .bind(third.stored_doc())
        .bind(third.hash.clone())
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let entries = store.audit_entries(Some(no)).await.unwrap();
    let read: Vec<(u64, &str, Option<&str>, &str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e.seq,
                e.field.as_str(),
                e.after.as_deref(),
                e.prev_hash.as_str(),
                e.hash.as_str(),
            )
        })
        .collect();
    assert_eq!(
        read,
        [
            (0, "amount", Some("25000.00"), "", h0.as_str()),
            (1, "currency", Some("CNY"), h0.as_str(), h1.as_str()),
            (
                2,
                "status",
                Some("signed"),
                h1.as_str(),
                third.hash.as_str()
            ),
        ]
    );
    assert_eq!(entries[0].source_position, position);
    assert_eq!(entries[2].contract_no.as_deref(), Some(no));
    let head = reconlight_core::audit::AuditHead {
        next_seq: 3,
        last_hash: third.hash.clone(),
        ..Default::default()
    };
    let checked = reconlight_core::audit::verify_chain(
        &store.audit_rows().await.unwrap(),
        None,
        reconlight_core::audit::HeadEvidence {
            stored: Some(&head),
            witness: None,
        },
    );
    assert_eq!(checked.ok(), Some(3));
    // The start reads the contract's amount changes in both forms.
    let state = store.load().await.unwrap();
    let changes: Vec<&str> = state
        .amount_changes
        .iter()
        .map(|e| e.after.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(changes, ["25000.00", "CNY"]);
}

#[tokio::test]
async fn a_store_written_by_a_newer_reconlight_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("newer.db");
    write_old_store(&path, "99").await;
    let err = Store::open(&format!("sqlite://{}", path.display()))
        .await
        .err()
        .expect("a newer store is refused")
        .to_string();
    assert!(
        err.contains("schema version 99, written by a newer reconlight; this one knows up to 8"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_reads_only_clerk_changes_after_its_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let (mut p, _) = crate::common::generate_and_run(dir.path(), 80, 11).await;
    let store = p.store.clone();
    let start = store.clerk_change_cursor().await.unwrap();
    let nothing = store.clerk_changes_since(start).await.unwrap();
    assert!(nothing.decisions.is_empty() && nothing.acknowledgements.is_empty());
    assert_eq!(nothing.cursor, start);

    let firing: Vec<String> = p
        .state
        .alerts
        .values()
        .filter(|a| a.state.as_str() == "firing")
        .map(|a| a.id.clone())
        .take(3)
        .collect();
    assert!(firing.len() >= 2, "the dataset fires alerts");
    let now = chrono::Utc::now();
    for (i, id) in firing.iter().take(2).enumerate() {
        store
            .acknowledge_alert(id, &format!("clerk.{i}"), "looking", now)
            .await
            .unwrap();
    }
    let two = store.clerk_changes_since(start).await.unwrap();
    assert_eq!(two.cursor, start + 2);
    assert_eq!(two.acknowledgements.keys().cloned().collect::<Vec<_>>(), {
        let mut v = firing[..2].to_vec();
        v.sort();
        v
    });
    assert_eq!(two.acknowledgements[&firing[1]].by, "clerk.1");
    // Read from the new cursor: nothing until a third change, then only it.
    assert!(
        store
            .clerk_changes_since(two.cursor)
            .await
            .unwrap()
            .acknowledgements
            .is_empty()
    );
    if let Some(third) = firing.get(2) {
        store
            .acknowledge_alert(third, "clerk.2", "mine", now)
            .await
            .unwrap();
        let one = store.clerk_changes_since(two.cursor).await.unwrap();
        assert_eq!(one.acknowledgements.keys().collect::<Vec<_>>(), vec![third]);
    }

    // The pipeline picks them up at its next tick.
    p.tick().await.unwrap();
    for (i, id) in firing.iter().enumerate() {
        assert_eq!(
            p.state.alerts[id]
                .acknowledged
                .as_ref()
                .map(|a| a.by.clone()),
            Some(format!("clerk.{i}"))
        );
    }
}
