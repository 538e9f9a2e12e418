//! The outbox in the store: each notifier finds what was written since its last round and
//! its retries when due, and what every notifier is done with leaves after a while.

use reconlight_service::store::Store;
use sqlx::Row;

/// A notifier finds what was written since its last round, whatever the messages' own
/// dates say (a replay dates them in the past), and its retries when they fall due.
#[tokio::test]
async fn a_notifier_finds_new_messages_and_due_retries_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    notifier_windows(&format!("sqlite://{}", dir.path().join("s.db").display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notifier_finds_new_messages_and_due_retries_on_postgres() {
    notifier_windows(&crate::common::postgres_database("reconlight_outbox")).await;
}

async fn notifier_windows(url: &str) {
    let store = Store::open(url).await.unwrap();
    let state = reconlight_core::state::LiveState::default();
    let write = |ids: &[&str], created: &str| {
        let created: chrono::DateTime<chrono::Utc> = created.parse().unwrap();
        let mut dirty = reconlight_core::state::Dirty::default();
        for id in ids {
            let mut m = reconlight_core::outbox::OutboxMessage::new(
                "alerts",
                id,
                &serde_json::json!({"alert": id}),
                created,
            );
            m.id = format!("MSG-{id}");
            dirty.outbox.push(m);
        }
        dirty
    };
    let alerts = ["alerts".to_string()];
    let now = chrono::Utc::now();
    let ids = |pending: Vec<(reconlight_core::outbox::OutboxMessage, u32)>| -> Vec<String> {
        pending.into_iter().map(|(m, _)| m.id).collect()
    };

    // Both notifiers are configured from the start (a pipeline records them as it opens).
    for notifier in ["webhook:ops", "pagerduty"] {
        store.notifier_start(notifier, &alerts).await.unwrap();
    }
    let first = write(&["a", "b", "c"], "2026-03-01T10:00:00Z");
    store.commit_in(None, &state, &first).await.unwrap();
    let pending = store.pending_deliveries("webhook:ops", &alerts, now, 10);
    assert_eq!(ids(pending.await.unwrap()), ["MSG-a", "MSG-b", "MSG-c"]);
    for id in ["MSG-a", "MSG-b"] {
        store
            .record_delivery("webhook:ops", id, "delivered", 1, None, None, now)
            .await
            .unwrap();
    }
    let retry_at = now + chrono::Duration::minutes(1);
    store
        .record_delivery(
            "webhook:ops",
            "MSG-c",
            "retry",
            1,
            Some("503"),
            Some(retry_at),
            now,
        )
        .await
        .unwrap();

    // Written later, dated earlier: found all the same; the retry waits for its time.
    let replayed = write(&["d", "e"], "2026-02-01T10:00:00Z");
    store.commit_in(None, &state, &replayed).await.unwrap();
    let pending = store.pending_deliveries("webhook:ops", &alerts, now, 10);
    assert_eq!(ids(pending.await.unwrap()), ["MSG-d", "MSG-e"]);
    assert_eq!(store.backlog("webhook:ops", &alerts).await.unwrap(), 3);
    let later = now + chrono::Duration::minutes(2);
    let pending = store.pending_deliveries("webhook:ops", &alerts, later, 10);
    let pending = pending.await.unwrap();
    assert_eq!(ids(pending.clone()), ["MSG-d", "MSG-e", "MSG-c"]);
    assert_eq!(pending[2].1, 1, "the retry carries its attempts");
    // Another notifier has its own window: it has not been given anything yet.
    let pending = store.pending_deliveries("pagerduty", &alerts, now, 2);
    assert_eq!(ids(pending.await.unwrap()), ["MSG-d", "MSG-e"]);
}

/// The outbox keeps a message until every configured notifier is done with it, then lets
/// it go with its delivery records once it is old enough.
#[tokio::test]
async fn sent_messages_leave_the_outbox_and_unsent_ones_stay_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    outbox_pruning(&format!("sqlite://{}", dir.path().join("s.db").display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sent_messages_leave_the_outbox_and_unsent_ones_stay_on_postgres() {
    outbox_pruning(&crate::common::postgres_database("reconlight_prune")).await;
}

async fn outbox_pruning(url: &str) {
    let store = Store::open(url).await.unwrap();
    let state = reconlight_core::state::LiveState::default();
    let now = chrono::Utc::now();
    let message = |topic: &str, id: &str| {
        let mut m = reconlight_core::outbox::OutboxMessage::new(
            topic,
            id,
            &serde_json::json!({"about": id}),
            now,
        );
        m.id = format!("MSG-{id}");
        m
    };
    let ops = (
        "webhook:ops".to_string(),
        vec!["alerts".to_string(), "actions".to_string()],
    );
    let pager = ("pagerduty".to_string(), vec!["alerts".to_string()]);
    for (name, topics) in [&ops, &pager] {
        store.notifier_start(name, topics).await.unwrap();
    }
    let mut dirty = reconlight_core::state::Dirty::default();
    for id in ["a", "b", "c", "d"] {
        dirty.outbox.push(message("alerts", id));
    }
    dirty.outbox.push(message("actions", "x"));
    // Read by no configured notifier.
    dirty.outbox.push(message("work_items", "w"));
    store.commit_in(None, &state, &dirty).await.unwrap();
    for (notifier, id, outcome) in [
        ("webhook:ops", "a", "delivered"),
        ("pagerduty", "a", "delivered"),
        ("webhook:ops", "b", "delivered"),
        ("pagerduty", "b", "retry"),
        ("webhook:ops", "c", "skipped"),
        ("pagerduty", "c", "failed"),
        ("webhook:ops", "d", "delivered"),
        ("webhook:ops", "x", "delivered"),
    ] {
        let id = format!("MSG-{id}");
        let next = (outcome == "retry").then_some(now + chrono::Duration::minutes(5));
        store
            .record_delivery(notifier, &id, outcome, 1, None, next, now)
            .await
            .unwrap();
    }
    let configured = [ops.clone(), pager.clone()];
    let hour = chrono::Duration::hours(1);
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let left = || async {
        let ids: Vec<String> = sqlx::query("SELECT message_id FROM outbox ORDER BY message_id")
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let deliveries: Vec<String> =
            sqlx::query("SELECT DISTINCT message_id FROM outbox_deliveries ORDER BY message_id")
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
        (ids, deliveries)
    };

    // Younger than the cutoff: everything stays.
    assert_eq!(
        store
            .prune_outbox(&configured, now - hour, 10_000)
            .await
            .unwrap(),
        (0, false)
    );
    assert_eq!(left().await.0.len(), 6);

    // Old enough: what every reader is done with goes, with its delivery records; what one
    // still has to retry (b) or has never tried (d) stays.
    let later = now + hour;
    assert_eq!(
        store
            .prune_outbox(&configured, later, 10_000)
            .await
            .unwrap(),
        (4, false)
    );
    assert_eq!(
        left().await,
        (
            vec!["MSG-b".to_string(), "MSG-d".to_string()],
            vec!["MSG-b".to_string(), "MSG-d".to_string()]
        )
    );
    assert_eq!(store.backlog("pagerduty", &pager.1).await.unwrap(), 2);

    // PagerDuty taken out of the configuration, a new notifier added after the messages
    // were written: neither keeps them.
    let late = ("webhook:late".to_string(), vec!["alerts".to_string()]);
    assert_eq!(
        store
            .prune_outbox(&[ops.clone(), late.clone()], later, 10_000)
            .await
            .unwrap(),
        (2, false)
    );
    assert_eq!(left().await, (vec![], vec![]));

    // More than a page of messages nobody reads: every page is looked at, in steps when
    // asked to stop after some.
    let mut many = reconlight_core::state::Dirty::default();
    for i in 0..4_321 {
        many.outbox.push(message("work_items", &format!("w{i:05}")));
    }
    store.commit_in(None, &state, &many).await.unwrap();
    let everyone = [ops, late];
    assert_eq!(
        store.prune_outbox(&everyone, later, 1).await.unwrap(),
        (2_000, true),
        "a step stops after the page that reached its count"
    );
    assert_eq!(left().await.0.len(), 2_321);
    assert_eq!(
        store.prune_outbox(&everyone, later, 10_000).await.unwrap(),
        (2_321, false)
    );
    assert_eq!(left().await.0.len(), 0);
}
