//! The log of what clerks change between batches (match decisions, alert
//! acknowledgements): each change gets the next sequence number in the transaction that
//! makes it, so the pipeline reads only what is new since its last look.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{Backend, Store, StoreError, ctx};
use reconlight_core::reconcile::matching::ManualDecision;
use reconlight_rules::Acknowledgement;

/// The advisory lock that orders clerk changes on PostgreSQL ("RECC" in ASCII): held to
/// the end of each writing transaction, so sequence numbers become visible in order and a
/// reader's cursor never passes a number still to be committed.
const CHANGE_LOCK_KEY: i64 = 0x5245_4343;

/// What a change log entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ChangeKind {
    Decision,
    Acknowledgement,
}

impl ChangeKind {
    fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Decision => "decision",
            ChangeKind::Acknowledgement => "ack",
        }
    }
}

/// What clerks changed after a cursor, with the cursor to read from next time.
#[derive(Debug, Default)]
pub struct ClerkChanges {
    pub cursor: i64,
    /// Each changed credit's decisions as they stand now.
    pub decisions: BTreeMap<String, ManualDecision>,
    /// Each acknowledged alert's acknowledgement as it stands now.
    pub acknowledgements: BTreeMap<String, Acknowledgement>,
}

/// Notes a change inside the transaction that makes it.
pub(super) async fn log_change(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    kind: ChangeKind,
    key: &str,
) -> Result<(), StoreError> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(CHANGE_LOCK_KEY)
            .execute(&mut **tx)
            .await
            .map_err(ctx("waiting for the clerk change lock"))?;
    }
    sqlx::query(
        "INSERT INTO clerk_changes (seq, kind, item_key) SELECT COALESCE(MAX(seq), 0) + 1, $1, $2 FROM clerk_changes",
    )
    .bind(kind.as_str())
    .bind(key.to_string())
    .execute(&mut **tx)
    .await
    .map_err(ctx("logging a clerk's change"))?;
    Ok(())
}

impl Store {
    /// The sequence number of the latest clerk change (0 when there is none).
    pub async fn clerk_change_cursor(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM clerk_changes")
            .fetch_one(&self.pool)
            .await
            .map_err(ctx("reading the clerk change log"))?;
        row.try_get::<i64, _>(0)
            .map_err(ctx("reading the clerk change log"))
    }

    /// The decisions and acknowledgements changed after `cursor`, as they stand now.
    pub async fn clerk_changes_since(&self, cursor: i64) -> Result<ClerkChanges, StoreError> {
        let rows: Vec<AnyRow> = sqlx::query(
            "SELECT seq, kind, item_key FROM clerk_changes WHERE seq > $1 ORDER BY seq",
        )
        .bind(cursor)
        .fetch_all(&self.pool)
        .await
        .map_err(ctx("reading the clerk change log"))?;
        let mut changes = ClerkChanges {
            cursor,
            ..Default::default()
        };
        for r in rows {
            let seq: i64 = r.try_get(0).map_err(ctx("reading the clerk change log"))?;
            let kind: String = r.try_get(1).map_err(ctx("reading the clerk change log"))?;
            let key: String = r.try_get(2).map_err(ctx("reading the clerk change log"))?;
            changes.cursor = changes.cursor.max(seq);
            if kind == ChangeKind::Decision.as_str() {
                if let std::collections::btree_map::Entry::Vacant(slot) =
                    changes.decisions.entry(key)
                {
                    let d = self.manual_decision_of(slot.key()).await?;
                    slot.insert(d);
                }
            } else if kind == ChangeKind::Acknowledgement.as_str()
                && !changes.acknowledgements.contains_key(&key)
                && let Some(a) = self.doc("alert_acks", "alert_id", &key).await?
            {
                changes.acknowledgements.insert(key, a);
            }
        }
        Ok(changes)
    }
}
