//! SQLite copies its write-ahead log back into the database (a checkpoint) on a connection
//! of its own, while the next batch is read and evaluated: left to the commit that crosses
//! the log's threshold, it was a quarter of the store's time on the batch's path. Started
//! right after a commit, it usually copies the whole log before the next one, so that one
//! starts the log afresh and the file stays the size of a batch.

use std::sync::Arc;

use sqlx::{AnyConnection, Connection};
use tokio::sync::Notify;

use super::{Backend, Store, StoreError, ctx};

/// Checkpoints after each commit it is told of; stops when dropped.
pub struct Checkpointer {
    committed: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Checkpointer {
    /// A commit wrote to the log (commits that come during a checkpoint count once).
    pub fn committed(&self) {
        self.committed.notify_one();
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Store {
    /// Starts checkpointing a SQLite file in the background (nothing on PostgreSQL or an
    /// in-memory database, which has no log of its own to copy).
    pub async fn checkpoint_in_background(&self) -> Result<Option<Checkpointer>, StoreError> {
        if self.backend != Backend::Sqlite
            || self.url.contains(":memory:")
            || self.url.contains("mode=memory")
        {
            return Ok(None);
        }
        let mut conn = AnyConnection::connect(&self.url)
            .await
            .map_err(ctx("connecting for the log checkpoints"))?;
        let committed = Arc::new(Notify::new());
        let told = committed.clone();
        let task = tokio::spawn(async move {
            loop {
                told.notified().await;
                // PASSIVE: copies what no reader still needs and never waits for a writer.
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&mut conn)
                    .await
                {
                    tracing::warn!("checkpointing the store's log: {e}");
                }
            }
        });
        Ok(Some(Checkpointer { committed, task }))
    }
}
