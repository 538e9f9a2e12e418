//! How long the outbox keeps what it has sent: a message every notifier and sink is done
//! with (delivered, skipped or refused for good) is deleted, with its delivery records, once
//! it is older than `[notifiers] keep_delivered`; a message no configured notifier reads is
//! done with (a notifier added later starts where it appears, so none would ever read it).
//! Without this the outbox held a copy of every alert change forever: a quarter of the
//! store.

use super::subscriptions::topic_of;
use super::*;

/// Messages looked at per round trip.
const PAGE: i64 = 2_000;
/// Parameters per statement when naming rows one by one.
const IDS_PER_STATEMENT: usize = 500;

/// `$first, $first+1, ...` for `n` parameters.
fn marks(n: usize, first: usize) -> String {
    (0..n)
        .map(|i| format!("${}", i + first))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One notifier as the pruning sees it: what it reads, from when.
struct Reader<'a> {
    name: &'a str,
    topics: &'a [String],
    /// Its start (`written_at` text; `""`: every message).
    since: String,
}

impl Reader<'_> {
    /// Whether a message stored under `topic`, written at `written`, is this notifier's.
    fn reads(&self, topic: &str, written: &str) -> bool {
        let addressee = topic.split('\u{1f}').nth(1);
        addressee.is_none_or(|a| a == self.name)
            && self.topics.iter().any(|t| t == topic_of(topic))
            && written >= self.since.as_str()
    }
}

impl Store {
    /// Deletes the outbox messages written before `before` that every notifier of
    /// `notifiers` (name and topics, as `notify::subscribers` lists them) is done with, and
    /// their delivery records, oldest first; stops once `at_most` are deleted, so that a
    /// large backlog (the first prune of an upgraded store) goes in steps between batches.
    /// A message still to be sent or retried by any of them is kept however old it is.
    /// Messages from before the outbox recorded when rows were written are kept. Returns
    /// how many messages were deleted, and whether any may be left to delete.
    pub async fn prune_outbox(
        &self,
        notifiers: &[(String, Vec<String>)],
        before: chrono::DateTime<chrono::Utc>,
        at_most: u64,
    ) -> Result<(u64, bool), StoreError> {
        let doing = "pruning the outbox";
        let mut readers = Vec::with_capacity(notifiers.len());
        for (name, topics) in notifiers {
            readers.push(Reader {
                name,
                topics,
                since: self.notifier_start(name, topics).await?,
            });
        }
        let cutoff = super::deliveries::written_at(before);
        let (mut after_written, mut after_id) = (String::new(), String::new());
        let mut deleted = 0u64;
        loop {
            let rows: Vec<AnyRow> = sqlx::query(
                "SELECT message_id, topic, written_at FROM outbox \
                 WHERE written_at < $1 AND (written_at > $2 OR (written_at = $2 AND message_id > $3)) \
                 ORDER BY written_at, message_id LIMIT $4",
            )
            .bind(cutoff.clone())
            .bind(after_written.clone())
            .bind(after_id.clone())
            .bind(PAGE)
            .fetch_all(&self.pool)
            .await
            .map_err(ctx(doing))?;
            let mut waits: Vec<(String, Vec<String>)> = Vec::with_capacity(rows.len());
            for r in &rows {
                let id: String = r.try_get(0).map_err(ctx(doing))?;
                let topic: String = r.try_get(1).map_err(ctx(doing))?;
                let written: String = r.try_get(2).map_err(ctx(doing))?;
                let deliveries = readers
                    .iter()
                    .filter(|n| n.reads(&topic, &written))
                    .map(|n| format!("{}\u{1f}{id}", n.name))
                    .collect();
                (after_written, after_id) = (written, id.clone());
                waits.push((id, deliveries));
            }
            let asked: Vec<String> = waits.iter().flat_map(|(_, d)| d.clone()).collect();
            let finished = self.finished_deliveries(&asked).await?;
            let done: Vec<String> = waits
                .into_iter()
                .filter(|(_, d)| d.iter().all(|d| finished.contains(d)))
                .map(|(id, _)| id)
                .collect();
            deleted += self.delete_messages(&done).await?;
            if (rows.len() as i64) < PAGE {
                return Ok((deleted, false));
            }
            if deleted >= at_most {
                return Ok((deleted, true));
            }
        }
    }

    /// Those of `deliveries` (delivery ids) that ended: delivered, skipped or refused.
    async fn finished_deliveries(
        &self,
        deliveries: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let mut finished = std::collections::HashSet::new();
        for chunk in deliveries.chunks(IDS_PER_STATEMENT) {
            let sql = format!(
                "SELECT delivery_id FROM outbox_deliveries WHERE state IN ('delivered', 'skipped', 'failed') AND delivery_id IN ({})",
                marks(chunk.len(), 1)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for d in chunk {
                q = q.bind(d.clone());
            }
            for r in q
                .fetch_all(&self.pool)
                .await
                .map_err(ctx("pruning the outbox"))?
            {
                finished.insert(r.try_get(0).map_err(ctx("pruning the outbox"))?);
            }
        }
        Ok(finished)
    }

    /// Deletes messages and every delivery record of them, a statement's worth per
    /// transaction so that a batch's commit never waits long behind it.
    async fn delete_messages(&self, ids: &[String]) -> Result<u64, StoreError> {
        let doing = "pruning the outbox";
        let mut deleted = 0;
        for chunk in ids.chunks(IDS_PER_STATEMENT) {
            let mut tx = self.pool.begin().await.map_err(ctx(doing))?;
            for table in ["outbox_deliveries", "outbox"] {
                let sql = format!(
                    "DELETE FROM {table} WHERE message_id IN ({})",
                    marks(chunk.len(), 1)
                );
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for id in chunk {
                    q = q.bind(id.clone());
                }
                let done = q.execute(&mut *tx).await.map_err(ctx(doing))?;
                if table == "outbox" {
                    deleted += done.rows_affected();
                }
            }
            tx.commit().await.map_err(ctx(doing))?;
        }
        Ok(deleted)
    }
}
