//! The ingest lease: of several instances over one PostgreSQL store, exactly one ingests.
//! It holds a session advisory lock on a connection of its own (released by the server the
//! moment that connection dies: a killed process, a lost network) and a fencing epoch in
//! `meta`, bumped by every new holder. Every batch commit checks the epoch inside its
//! transaction, so an instance that lost the lease without noticing cannot write another
//! batch after the new holder took over. SQLite allows one process anyway: no lease.

use std::sync::atomic::Ordering;
use std::time::Duration;

use sqlx::AnyConnection;
use sqlx::{Any, Connection, Row, Transaction};

use super::{Backend, Store, StoreError, ctx};

/// The advisory lock key of the ingest lease ("RECI" in ASCII).
const INGEST_LOCK_KEY: i64 = 0x5245_4349;

/// Another instance holds the lease now: this one must stop ingesting.
#[derive(Debug, thiserror::Error)]
#[error("another instance took over ingesting (lease epoch {now}, this instance held {held})")]
pub struct LeaseLost {
    pub held: i64,
    pub now: i64,
}

/// The right to ingest, while held.
pub struct IngestLease {
    /// The connection holding the advisory lock (none on SQLite).
    conn: Option<AnyConnection>,
    pub epoch: i64,
}

impl IngestLease {
    /// Checks the lease is still this instance's: its connection answers and the epoch is
    /// still the one it took.
    pub async fn renew(&mut self) -> Result<(), StoreError> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        let read =
            sqlx::query("SELECT value FROM meta WHERE name = 'ingest_epoch'").fetch_one(&mut *conn);
        let row = tokio::time::timeout(Duration::from_secs(5), read)
            .await
            .map_err(|_| StoreError {
                doing: "renewing the ingest lease".into(),
                source: "the database did not answer in 5 s".into(),
            })?
            .map_err(ctx("renewing the ingest lease"))?;
        let value: String = row.try_get(0).map_err(ctx("renewing the ingest lease"))?;
        let now: i64 = value.parse().unwrap_or(-1);
        if now != self.epoch {
            return Err(StoreError {
                doing: "renewing the ingest lease".into(),
                source: Box::new(LeaseLost {
                    held: self.epoch,
                    now,
                }),
            });
        }
        Ok(())
    }
}

impl StoreError {
    /// True when a commit or a renewal found that another instance took over ingesting.
    pub fn is_lease_lost(&self) -> bool {
        self.source.downcast_ref::<LeaseLost>().is_some()
    }
}

impl Store {
    /// Takes the ingest lease if no other instance holds it; `None` when one does. The
    /// stores that write batches must then be fenced with it (`fence_by`).
    pub async fn try_ingest_lease(&self) -> Result<Option<IngestLease>, StoreError> {
        if self.backend == Backend::Sqlite {
            return Ok(Some(IngestLease {
                conn: None,
                epoch: 0,
            }));
        }
        let mut conn = AnyConnection::connect(&self.url)
            .await
            .map_err(ctx("connecting for the ingest lease"))?;
        // A client that vanished (network lost) is noticed within about 20 s, which releases
        // its lock; sockets that are not TCP ignore these.
        for setting in [
            "SET tcp_keepalives_idle = 5",
            "SET tcp_keepalives_interval = 5",
            "SET tcp_keepalives_count = 3",
        ] {
            sqlx::query(setting)
                .execute(&mut conn)
                .await
                .map_err(ctx(setting))?;
        }
        let locked: bool = sqlx::query("SELECT pg_try_advisory_lock($1)")
            .bind(INGEST_LOCK_KEY)
            .fetch_one(&mut conn)
            .await
            .and_then(|r| r.try_get(0))
            .map_err(ctx("taking the ingest lease"))?;
        if !locked {
            let _ = conn.close().await;
            return Ok(None);
        }
        let row = sqlx::query(
            "INSERT INTO meta (name, value) VALUES ('ingest_epoch', '1') \
             ON CONFLICT (name) DO UPDATE SET value = CAST(CAST(meta.value AS BIGINT) + 1 AS TEXT) \
             RETURNING value",
        )
        .fetch_one(&mut conn)
        .await
        .map_err(ctx("starting an ingest lease epoch"))?;
        let value: String = row
            .try_get(0)
            .map_err(ctx("starting an ingest lease epoch"))?;
        let epoch: i64 = value
            .parse()
            .map_err(ctx("reading the ingest lease epoch"))?;
        Ok(Some(IngestLease {
            conn: Some(conn),
            epoch,
        }))
    }

    /// From now on, every batch this store commits checks it is still under `lease`.
    pub fn fence_by(&self, lease: &IngestLease) {
        self.fence.store(lease.epoch, Ordering::SeqCst);
    }

    /// Refuses the transaction when another instance took the lease since this one did.
    pub(super) async fn check_fence(
        &self,
        tx: &mut Transaction<'static, Any>,
    ) -> Result<(), StoreError> {
        let held = self.fence.load(Ordering::SeqCst);
        if held == 0 {
            return Ok(());
        }
        let row = sqlx::query("SELECT value FROM meta WHERE name = 'ingest_epoch' FOR SHARE")
            .fetch_one(&mut **tx)
            .await
            .map_err(ctx("checking the ingest lease"))?;
        let value: String = row.try_get(0).map_err(ctx("checking the ingest lease"))?;
        let now: i64 = value.parse().unwrap_or(-1);
        if now != held {
            return Err(StoreError {
                doing: "committing a batch".into(),
                source: Box::new(LeaseLost { held, now }),
            });
        }
        Ok(())
    }
}
