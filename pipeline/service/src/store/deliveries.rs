//! The outbox's deliveries, per notifier, with retries; the webhook inbox.

use reconlight_core::outbox::OutboxMessage;

use super::subscriptions::{topic_of, topics_read_by};
use super::write::{Cell, upsert_cells};
use super::*;

/// How far back of the oldest untried message a notifier was last given it looks again:
/// room for a message written (and timed) before it but committed after it, by a long
/// transaction or a process whose clock is a little behind.
const WINDOW_MARGIN: chrono::Duration = chrono::Duration::seconds(60);
/// How often a notifier looks through the whole outbox for messages it has never tried
/// (written by a process whose clock is further behind than the margin).
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// When an outbox row was written, by the writer's wall clock (not the pipeline clock, which
/// may be a replay's event time): fixed width, so the text sorts as the time does.
pub(super) fn written_at(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Where each notifier looks for messages it has not tried yet: from a little before the
/// oldest one it was last given, so a round reads what is new, not the whole history.
#[derive(Default)]
pub(super) struct DeliveryWindows(std::sync::Mutex<std::collections::HashMap<String, Window>>);

struct Window {
    /// Every message written before this was tried (`None`: look at every message).
    from: Option<String>,
    swept_at: std::time::Instant,
}

impl DeliveryWindows {
    /// Where to look from: everywhere before a first look and when a sweep is due.
    fn from(&self, notifier: &str) -> Option<String> {
        let windows = self.0.lock().expect("not poisoned");
        let w = windows.get(notifier)?;
        w.from
            .clone()
            .filter(|_| w.swept_at.elapsed() < SWEEP_EVERY)
    }

    /// Notes a look that started at `from` at `started` (wall clock) and found untried
    /// messages written at `written` (empty for rows from before the column existed).
    fn looked(
        &self,
        notifier: &str,
        from: Option<&str>,
        started: chrono::DateTime<chrono::Utc>,
        written: &[String],
        page_full: bool,
    ) {
        let mut windows = self.0.lock().expect("not poisoned");
        let w = windows.entry(notifier.to_string()).or_insert(Window {
            from: None,
            swept_at: std::time::Instant::now(),
        });
        if from.is_none() {
            w.swept_at = std::time::Instant::now();
        }
        if page_full {
            // The page may have left out messages written before those it holds (its order
            // is the messages' own dates): look from the same place next time.
            return;
        }
        let oldest = match written.iter().min() {
            // Everything looked at was tried: the next look starts about now.
            None => started,
            // A row written before the column existed is found by looking everywhere.
            Some(at) => match chrono::DateTime::parse_from_rfc3339(at) {
                Ok(at) => at.to_utc(),
                Err(_) => {
                    w.from = None;
                    return;
                }
            },
        };
        let start = written_at(oldest - WINDOW_MARGIN);
        if w.from.as_ref().is_none_or(|f| *f < start) {
            w.from = Some(start);
        }
    }
}

/// Where to look for untried messages: the notifier's window, never before its start.
fn from_start(window: Option<String>, since: String) -> Option<String> {
    if since.is_empty() {
        return window;
    }
    Some(window.map_or(since.clone(), |w| w.max(since)))
}

fn message_of(r: &AnyRow, doing: &str) -> Result<(OutboxMessage, u32), StoreError> {
    let at: String = r.try_get(4).map_err(ctx(doing))?;
    let attempts: i64 = r.try_get(5).map_err(ctx(doing))?;
    Ok((
        OutboxMessage {
            id: r.try_get(0).map_err(ctx(doing))?,
            topic: topic_of(&r.try_get::<String, _>(1).map_err(ctx(doing))?).to_string(),
            key: r.try_get(2).map_err(ctx(doing))?,
            payload: r.try_get(3).map_err(ctx(doing))?,
            created_at: chrono::DateTime::parse_from_rfc3339(&at)
                .map(|t| t.to_utc())
                .unwrap_or_default(),
        },
        attempts as u32,
    ))
}

impl Store {
    /// Outbox messages of `topics` not yet delivered by `notifier`, whose retry time has come,
    /// oldest first, with the attempts made so far. Messages never tried are looked for in
    /// the notifier's window (`DeliveryWindows`), retries through their own index.
    pub async fn pending_deliveries(
        &self,
        notifier: &str,
        topics: &[String],
        now: chrono::DateTime<chrono::Utc>,
        limit: i64,
    ) -> Result<Vec<(OutboxMessage, u32)>, StoreError> {
        if topics.is_empty() {
            return Ok(Vec::new());
        }
        let doing = "reading pending deliveries";
        let since = self.notifier_start(notifier, topics).await?;
        let topics = &topics_read_by(notifier, topics);
        let from = self.delivery_windows.from(notifier);
        let look_from = from_start(from.clone(), since);
        let started = chrono::Utc::now();
        let topic_marks = |first: usize| -> String {
            (0..topics.len())
                .map(|i| format!("${}", i + first))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let untried_sql = format!(
            "SELECT o.message_id, o.topic, o.message_key, o.payload, o.created_at, CAST(0 AS BIGINT), COALESCE(o.written_at, '') \
             FROM outbox o WHERE o.topic IN ({}) AND {} \
             AND NOT EXISTS (SELECT 1 FROM outbox_deliveries d WHERE d.delivery_id = $1 || o.message_id) \
             ORDER BY o.created_at, o.message_id LIMIT $2",
            topic_marks(4),
            if look_from.is_some() {
                "o.written_at >= $3"
            } else {
                "$3 = ''"
            }
        );
        let mut q = sqlx::query(AssertSqlSafe(untried_sql))
            .bind(format!("{notifier}\u{1f}"))
            .bind(limit)
            .bind(look_from.unwrap_or_default());
        for t in topics {
            q = q.bind(t.clone());
        }
        let untried: Vec<AnyRow> = q.fetch_all(&self.pool).await.map_err(ctx(doing))?;
        let retry_sql = format!(
            "SELECT o.message_id, o.topic, o.message_key, o.payload, o.created_at, d.attempts \
             FROM outbox_deliveries d JOIN outbox o ON o.message_id = d.message_id \
             WHERE d.notifier = $1 AND d.state = 'retry' AND d.next_attempt_at <= $2 AND o.topic IN ({}) \
             ORDER BY o.created_at, o.message_id LIMIT $3",
            topic_marks(4)
        );
        let mut q = sqlx::query(AssertSqlSafe(retry_sql))
            .bind(notifier.to_string())
            .bind(now.to_rfc3339())
            .bind(limit);
        for t in topics {
            q = q.bind(t.clone());
        }
        let retries: Vec<AnyRow> = q.fetch_all(&self.pool).await.map_err(ctx(doing))?;
        let mut written = Vec::with_capacity(untried.len());
        for r in &untried {
            written.push(r.try_get::<String, _>(6).map_err(ctx(doing))?);
        }
        let page_full = untried.len() as i64 >= limit;
        self.delivery_windows
            .looked(notifier, from.as_deref(), started, &written, page_full);
        let mut pending = untried
            .iter()
            .map(|r| message_of(r, doing))
            .collect::<Result<Vec<_>, _>>()?;
        for r in &retries {
            pending.push(message_of(r, doing)?);
        }
        pending.sort_by(|(a, _), (b, _)| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        pending.truncate(limit.max(0) as usize);
        Ok(pending)
    }

    /// How many outbox messages of `topics` `notifier` has not delivered yet (those never
    /// tried counted in its window, as `pending_deliveries` looks for them).
    pub async fn backlog(&self, notifier: &str, topics: &[String]) -> Result<u64, StoreError> {
        if topics.is_empty() {
            return Ok(0);
        }
        let since = self.notifier_start(notifier, topics).await?;
        let topics = &topics_read_by(notifier, topics);
        let from = from_start(self.delivery_windows.from(notifier), since);
        let placeholders: Vec<String> = (0..topics.len()).map(|i| format!("${}", i + 4)).collect();
        let sql = format!(
            "SELECT (SELECT COUNT(*) FROM outbox o WHERE o.topic IN ({0}) AND {1} \
               AND NOT EXISTS (SELECT 1 FROM outbox_deliveries d WHERE d.delivery_id = $1 || o.message_id)) \
             + (SELECT COUNT(*) FROM outbox_deliveries d JOIN outbox o ON o.message_id = d.message_id \
               WHERE d.notifier = $3 AND d.state = 'retry' AND o.topic IN ({0}))",
            placeholders.join(", "),
            if from.is_some() {
                "o.written_at >= $2"
            } else {
                "$2 = ''"
            }
        );
        let mut q = sqlx::query(AssertSqlSafe(sql))
            .bind(format!("{notifier}\u{1f}"))
            .bind(from.unwrap_or_default())
            .bind(notifier.to_string());
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
