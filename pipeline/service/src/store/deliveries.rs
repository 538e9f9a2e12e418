//! The outbox's deliveries, per notifier, with retries; the webhook inbox.

use super::write::{Cell, upsert_cells};
use super::*;

impl Store {
    /// Outbox messages of `topics` not yet delivered by `notifier`, whose retry time has come,
    /// oldest first, with the attempts made so far.
    pub async fn pending_deliveries(
        &self,
        notifier: &str,
        topics: &[String],
        now: chrono::DateTime<chrono::Utc>,
        limit: i64,
    ) -> Result<Vec<(reconlight_core::outbox::OutboxMessage, u32)>, StoreError> {
        if topics.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (0..topics.len()).map(|i| format!("${}", i + 4)).collect();
        let sql = format!(
            "SELECT o.message_id, o.topic, o.message_key, o.payload, o.created_at, COALESCE(d.attempts, 0) \
             FROM outbox o LEFT JOIN outbox_deliveries d ON d.delivery_id = $1 || o.message_id \
             WHERE (d.state IS NULL OR (d.state = 'retry' AND d.next_attempt_at <= $2)) AND o.topic IN ({}) \
             ORDER BY o.created_at, o.message_id LIMIT $3",
            placeholders.join(", ")
        );
        let mut q = sqlx::query(AssertSqlSafe(sql))
            .bind(format!("{notifier}\u{1f}"))
            .bind(now.to_rfc3339())
            .bind(limit);
        for t in topics {
            q = q.bind(t.clone());
        }
        let rows: Vec<AnyRow> = q
            .fetch_all(&self.pool)
            .await
            .map_err(ctx("reading pending deliveries"))?;
        rows.iter()
            .map(|r| {
                let at: String = r.try_get(4).map_err(ctx("reading pending deliveries"))?;
                let attempts: i64 = r.try_get(5).map_err(ctx("reading pending deliveries"))?;
                Ok((
                    reconlight_core::outbox::OutboxMessage {
                        id: r.try_get(0).map_err(ctx("reading pending deliveries"))?,
                        topic: r.try_get(1).map_err(ctx("reading pending deliveries"))?,
                        key: r.try_get(2).map_err(ctx("reading pending deliveries"))?,
                        payload: r.try_get(3).map_err(ctx("reading pending deliveries"))?,
                        created_at: chrono::DateTime::parse_from_rfc3339(&at)
                            .map(|t| t.to_utc())
                            .unwrap_or_default(),
                    },
                    attempts as u32,
                ))
            })
            .collect()
    }

    /// How many outbox messages of `topics` `notifier` has not delivered yet.
    pub async fn backlog(&self, notifier: &str, topics: &[String]) -> Result<u64, StoreError> {
        if topics.is_empty() {
            return Ok(0);
        }
        let placeholders: Vec<String> = (0..topics.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT COUNT(*) FROM outbox o LEFT JOIN outbox_deliveries d ON d.delivery_id = $1 || o.message_id \
             WHERE (d.state IS NULL OR d.state = 'retry') AND o.topic IN ({})",
            placeholders.join(", ")
        );
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(format!("{notifier}\u{1f}"));
        for t in topics {
            q = q.bind(t.clone());
        }
        let row: AnyRow = q
            .fetch_one(&self.pool)
            .await
            .map_err(ctx("counting the outbox backlog"))?;
        let n: i64 = row.try_get(0).map_err(ctx("counting the outbox backlog"))?;
        Ok(n.max(0) as u64)
    }

    /// Records what became of a message at a notifier.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_delivery(
        &self,
        notifier: &str,
        message_id: &str,
        state: &str,
        attempts: u32,
        last_error: Option<&str>,
        next_attempt_at: Option<chrono::DateTime<chrono::Utc>>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(ctx("starting a transaction"))?;
        upsert_cells(
            &mut tx,
            "outbox_deliveries",
            &[
                "delivery_id",
                "notifier",
                "message_id",
                "state",
                "attempts",
                "last_error",
                "next_attempt_at",
                "updated_at",
            ],
            vec![
                Cell::Text(Some(format!("{notifier}\u{1f}{message_id}"))),
                Cell::Text(Some(notifier.to_string())),
                Cell::Text(Some(message_id.to_string())),
                Cell::Text(Some(state.to_string())),
                Cell::Int(i64::from(attempts)),
                Cell::Text(last_error.map(str::to_string)),
                Cell::Text(next_attempt_at.map(|t| t.to_rfc3339())),
                Cell::Text(Some(now.to_rfc3339())),
            ],
        )
        .await?;
        tx.commit().await.map_err(ctx("recording a delivery"))?;
        Ok(())
    }

    /// Delivery states per notifier: (notifier, state) -> count.
    pub async fn delivery_counts(
        &self,
    ) -> Result<std::collections::BTreeMap<(String, String), i64>, StoreError> {
        let rows: Vec<AnyRow> = sqlx::query(
            "SELECT notifier, state, COUNT(*) FROM outbox_deliveries GROUP BY notifier, state",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(ctx("counting deliveries"))?;
        rows.iter()
            .map(|r| {
                Ok((
                    (
                        r.try_get(0).map_err(ctx("counting deliveries"))?,
                        r.try_get(1).map_err(ctx("counting deliveries"))?,
                    ),
                    r.try_get(2).map_err(ctx("counting deliveries"))?,
                ))
            })
            .collect()
    }

    /// Keeps a verified webhook body; false when the same body was kept before (a replay).
    pub async fn inbox_insert(
        &self,
        id: &str,
        provider: &str,
        body: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO inbox (inbox_id, provider, body, received_at, consumed) VALUES ($1, $2, $3, $4, 0) ON CONFLICT (inbox_id) DO NOTHING",
        )
        .bind(id)
        .bind(provider)
        .bind(body)
        .bind(now.to_rfc3339())
        .execute(&self.pool)
        .await
        .map_err(ctx("keeping a webhook body"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Webhook bodies the pipeline has not applied yet, oldest first: (id, provider, body).
    pub async fn inbox_pending(
        &self,
        limit: i64,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        let rows: Vec<AnyRow> = sqlx::query("SELECT inbox_id, provider, body FROM inbox WHERE consumed = 0 ORDER BY received_at, inbox_id LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(ctx("reading the inbox"))?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get(0).map_err(ctx("reading the inbox"))?,
                    r.try_get(1).map_err(ctx("reading the inbox"))?,
                    r.try_get(2).map_err(ctx("reading the inbox"))?,
                ))
            })
            .collect()
    }

    /// Messages not yet delivered, oldest first.
    pub async fn outbox_pending(
        &self,
        limit: i64,
    ) -> Result<Vec<reconlight_core::outbox::OutboxMessage>, StoreError> {
        let rows: Vec<AnyRow> = sqlx::query("SELECT message_id, topic, message_key, payload, created_at FROM outbox WHERE delivered_at IS NULL ORDER BY created_at, message_id LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(ctx("reading the outbox"))?;
        rows.iter()
            .map(|r| {
                let at: String = r.try_get(4).map_err(ctx("reading the outbox"))?;
                Ok(reconlight_core::outbox::OutboxMessage {
                    id: r.try_get(0).map_err(ctx("reading the outbox"))?,
                    topic: r.try_get(1).map_err(ctx("reading the outbox"))?,
                    key: r.try_get(2).map_err(ctx("reading the outbox"))?,
                    payload: r.try_get(3).map_err(ctx("reading the outbox"))?,
                    created_at: chrono::DateTime::parse_from_rfc3339(&at)
                        .map(|t| t.to_utc())
                        .unwrap_or_default(),
                })
            })
            .collect()
    }
}
