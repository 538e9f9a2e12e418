//! The durable store, through sqlx: SQLite by default, PostgreSQL in production, one code
//! path. Each micro-batch is one transaction holding its state changes, derived results,
//! alerts, work items, outbox rows and source positions (the single commit point).

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::any::{AnyPoolOptions, AnyRow};
// Table and column names in dynamic SQL are this module's constants, never input.
use sqlx::{Any, AnyPool, AssertSqlSafe, Row, Transaction};

use reconlight_core::audit::AuditEntry;
use reconlight_core::state::{DeadLetter, Dirty, LiveState};

mod acks;
mod audit;
mod checkpoint;
mod clerk_changes;
mod contract_view;
pub use checkpoint::Checkpointer;
pub use clerk_changes::ClerkChanges;
use clerk_changes::{ChangeKind, log_change};
pub use contract_view::ContractView;
mod deliveries;
mod lease;
pub use lease::{IngestLease, LeaseLost};
mod queue;
mod retention;
pub use queue::monthly_report_key;
mod schema;
mod snapshot;
pub use snapshot::StateSource;
mod subscriptions;
mod table_read;
mod tokens;
pub use acks::AckError;
pub use tokens::ApiToken;
mod workqueue;
pub use workqueue::{QueueEntry, QueueFilter, QueuePage, QueueSort, SlaState};
mod write;
pub use schema::SCHEMA_VERSION;
use write::{upsert, write_batch, write_outbox, write_work_item_if};

/// The advisory lock key of the nightly diff ("RECO" in ASCII).
const NIGHTLY_LOCK_KEY: i64 = 0x5245_434F;

/// Which database the store talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A store failure, with what the store was doing.
#[derive(Debug, thiserror::Error)]
#[error("store: {doing}: {source}")]
pub struct StoreError {
    doing: String,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

/// Another writer changed the row first (its version moved on).
#[derive(Debug, thiserror::Error)]
#[error("{0} was changed by someone else first")]
pub struct Conflict(pub String);

impl StoreError {
    fn conflict(doing: &str, what: String) -> StoreError {
        StoreError {
            doing: doing.into(),
            source: Box::new(Conflict(what)),
        }
    }

    /// True when the write lost a race: read again and retry, or tell the user.
    pub fn is_conflict(&self) -> bool {
        self.source.downcast_ref::<Conflict>().is_some()
    }
}

fn ctx<E: std::error::Error + Send + Sync + 'static>(
    doing: impl Into<String>,
) -> impl FnOnce(E) -> StoreError {
    let doing = doing.into();
    move |e| StoreError {
        doing,
        source: Box::new(e),
    }
}

/// The store.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    pub backend: Backend,
    /// Where it connects (the ingest lease holds a connection of its own).
    url: String,
    /// The ingest lease epoch batch commits are fenced by; 0 before any lease.
    fence: std::sync::Arc<std::sync::atomic::AtomicI64>,
    /// Where each notifier looks for outbox messages it has not tried.
    delivery_windows: std::sync::Arc<deliveries::DeliveryWindows>,
    /// Where each notifier's messages start.
    subscriptions: std::sync::Arc<subscriptions::Subscriptions>,
    /// The state snapshot marker this process's batches count themselves under
    /// (`snapshot.rs`), once its pipeline has read the state.
    snapshot_run: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

fn to_json(v: &impl Serialize) -> String {
    serde_json::to_string(v).expect("state serializes")
}

/// Each `(key, doc)` row's document.
fn parse_docs<T: DeserializeOwned>(table: &str, rows: &[AnyRow]) -> Result<Vec<T>, StoreError> {
    rows.iter()
        .map(|r| {
            let k: String = r.try_get(0).map_err(ctx(format!("reading {table}")))?;
            let doc: String = r.try_get(1).map_err(ctx(format!("reading {table}")))?;
            from_json(table, &k, &doc)
        })
        .collect()
}

fn from_json<T: DeserializeOwned>(table: &str, key: &str, doc: &str) -> Result<T, StoreError> {
    serde_json::from_str(doc).map_err(ctx(format!("reading {table} row {key}")))
}

/// Set on every SQLite connection.
const SQLITE_PRAGMAS: [&str; 6] = [
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=10000",
    // 64 MiB of page cache (the default is 2 MiB): a batch's upserts land all over the
    // tables' indexes, and a small cache spilled them to the log mid-transaction.
    "PRAGMA cache_size=-65536",
    // A multi-row upsert keeps a statement journal to undo itself on a conflict; in a
    // file it was an eighth of the commit's time.
    "PRAGMA temp_store=MEMORY",
    // Checkpoints run beside the batches (`checkpoint.rs`); a commit still does one when the
    // log passes 256 MiB, should those fall behind.
    "PRAGMA wal_autocheckpoint=65536",
];

impl Store {
    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(ctx("checking the database"))
    }

    /// Connects (creating a SQLite file if needed) and creates the schema.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError {
                doing: format!("opening `{url}`"),
                source: "the store URL must start with sqlite:// or postgres://".into(),
            });
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                if let Some(path) = url.strip_prefix("sqlite://")
                    && let Some(parent) =
                        std::path::Path::new(path.split('?').next().unwrap_or(path)).parent()
                    && !parent.as_os_str().is_empty()
                {
                    std::fs::create_dir_all(parent)
                        .map_err(ctx(format!("creating {}", parent.display())))?;
                }
                format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
            }
            _ => url.to_string(),
        };
        let sqlite = backend == Backend::Sqlite;
        let options = AnyPoolOptions::new()
            .max_connections(if sqlite { 1 } else { 4 })
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(Duration::from_secs(30))
            // Per connection, so a connection opened again after an error has them too.
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        for pragma in SQLITE_PRAGMAS {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            });
        let pool = options
            .connect(&url)
            .await
            .map_err(ctx(format!("connecting to {}", redact(&url))))?;
        schema::migrate(&pool, backend).await?;
        Ok(Store {
            pool,
            backend,
            url,
            fence: Default::default(),
            delivery_windows: Default::default(),
            subscriptions: Default::default(),
            snapshot_run: Default::default(),
        })
    }

    async fn docs<T: DeserializeOwned>(
        &self,
        table: &str,
        key: &str,
    ) -> Result<Vec<T>, StoreError> {
        self.docs_filtered(table, key, "TRUE").await
    }

    /// `docs` of the rows that meet a condition (this module's constant SQL).
    async fn docs_filtered<T: DeserializeOwned>(
        &self,
        table: &str,
        key: &str,
        condition: &str,
    ) -> Result<Vec<T>, StoreError> {
        parse_docs(table, &self.doc_rows(table, key, condition).await?)
    }

    async fn doc_rows(
        &self,
        table: &str,
        key: &str,
        condition: &str,
    ) -> Result<Vec<AnyRow>, StoreError> {
        sqlx::query(AssertSqlSafe(format!(
            "SELECT {key}, doc FROM {table} WHERE {condition} ORDER BY {key}"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(ctx(format!("reading {table}")))
    }

    /// Reads every work item into the state.
    async fn load_work_items(&self, s: &mut LiveState) -> Result<(), StoreError> {
        let work_items = self.read_table::<reconlight_core::workitems::WorkItem>(
            "work_items",
            "item_id",
            "TRUE",
        );
        for w in work_items.await?.finish(self).await? {
            s.work_items.insert(w.id.clone(), w);
        }
        Ok(())
    }

    fn snapshot_run(&self) -> Option<String> {
        self.snapshot_run.lock().expect("not poisoned").clone()
    }

    fn set_snapshot_run(&self, run: Option<String>) {
        *self.snapshot_run.lock().expect("not poisoned") = run;
    }

    /// Writes a batch as this process's pipeline: counted under its snapshot marker, so
    /// the triggers that watch the live tables let it pass (`snapshot.rs`).
    async fn write_as_pipeline(
        &self,
        tx: &mut Transaction<'static, Any>,
        state: &LiveState,
        dirty: &Dirty,
    ) -> Result<(), StoreError> {
        let run = self.snapshot_run();
        if let Some(run) = &run {
            sqlx::query("UPDATE state_snapshot SET writing = 1 WHERE snapshot_id = $1")
                .bind(run.clone())
                .execute(&mut **tx)
                .await
                .map_err(ctx("counting the batch under the state snapshot's marker"))?;
        }
        write_batch(tx, state, dirty).await?;
        if let Some(run) = run {
            sqlx::query(
                "UPDATE state_snapshot SET writing = 0, commits = commits + 1 WHERE snapshot_id = $1",
            )
            .bind(run)
            .execute(&mut **tx)
            .await
            .map_err(ctx("counting the batch under the state snapshot's marker"))?;
        }
        Ok(())
    }

    /// Reads the whole live state.
    pub async fn load(&self) -> Result<LiveState, StoreError> {
        use reconlight_core::state::BankRow;
        use reconlight_formats::model::{Contract, Customer, HandoffTicket, SignatureEvent};
        use reconlight_rules::Alert;
        type AllocationList = Vec<reconlight_core::reconcile::matching::Allocation>;
        let mut s = LiveState::default();
        let customers = self.read_table::<Customer>("crm_customers", "customer_id", "TRUE");
        for c in customers.await?.finish(self).await? {
            s.customers.insert(c.customer_id.clone(), c);
        }
        let contracts = self.read_table::<Contract>("crm_contracts", "contract_no", "TRUE");
        for c in contracts.await?.finish(self).await? {
            s.contracts.insert(c.contract_no.clone(), c);
        }
        let tickets = self.read_table::<HandoffTicket>("crm_handoff_tickets", "ticket_id", "TRUE");
        for t in tickets.await?.finish(self).await? {
            s.tickets.insert(t.ticket_id.clone(), t);
        }
        let rows: Vec<AnyRow> =
            sqlx::query("SELECT table_name, row_key, doc FROM crm_rows ORDER BY row_id")
                .fetch_all(&self.pool)
                .await
                .map_err(ctx("reading crm_rows"))?;
        for r in rows {
            let table: String = r.try_get(0).map_err(ctx("reading crm_rows"))?;
            let key: String = r.try_get(1).map_err(ctx("reading crm_rows"))?;
            let doc: String = r.try_get(2).map_err(ctx("reading crm_rows"))?;
            let row = from_json("crm_rows", &key, &doc)?;
            s.extra.entry(table).or_default().insert(key, row);
        }
        let signatures = self.read_table::<SignatureEvent>("signature_events", "event_id", "TRUE");
        for e in signatures.await?.finish(self).await? {
            s.signatures.insert(e.event_id.clone(), e);
        }
        let bank = self.read_table::<BankRow>("bank_transactions", "bank_ref", "TRUE");
        for b in bank.await?.finish(self).await? {
            s.bank.insert(b.tx.bank_ref.clone(), b);
        }
        let installments =
            self.read_table::<InstallmentsDoc>("installments", "contract_no", "TRUE");
        for doc in installments.await?.finish(self).await? {
            if let Some(e) = doc.terms_error {
                s.terms_errors.insert(doc.contract_no.clone(), e);
            }
            for i in doc.installments {
                s.installments.insert((i.contract_no.clone(), i.seq), i);
            }
        }
        let matches = self.read_table::<AllocationList>("matches", "bank_ref", "TRUE");
        for list in matches.await?.finish(self).await? {
            if let Some(first) = list.first() {
                s.matches.insert(first.bank_ref.clone(), list);
            }
        }
        // Resolved alerts are history, read from the store when asked for.
        let alerts = self.read_table::<Alert>("alerts", "alert_id", "state <> 'resolved'");
        for a in alerts.await?.finish(self).await? {
            s.alerts.insert(a.id.clone(), a);
        }
        self.load_work_items(&mut s).await?;
        let rows: Vec<AnyRow> = sqlx::query("SELECT position_key, consumed FROM source_positions")
            .fetch_all(&self.pool)
            .await
            .map_err(ctx("reading source positions"))?;
        for r in rows {
            let k: String = r.try_get(0).map_err(ctx("reading source positions"))?;
            let v: i64 = r.try_get(1).map_err(ctx("reading source positions"))?;
            s.positions.insert(k, v as u64);
        }
        s.amount_changes = self.amount_changes().await?;
        if let Some(head) = self.meta("audit_head").await? {
            s.audit_head = from_json("meta", "audit_head", &head)?;
        }
        if let Some(w) = self.meta("watermark").await? {
            s.watermark = from_json("meta", "watermark", &w)?;
        }
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM dead_letters")
            .fetch_one(&self.pool)
            .await
            .and_then(|r| r.try_get(0))
            .map_err(ctx("counting dead letters"))?;
        s.dead_letter_count = n as u64;
        Ok(s)
    }

    pub(crate) async fn meta(&self, name: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT value FROM meta WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(ctx(format!("reading meta {name}")))?;
        row.map(|r| r.try_get(0).map_err(ctx(format!("reading meta {name}"))))
            .transpose()
    }

    /// Starts the transaction the nightly diff commits in, holding the nightly lock for its
    /// duration: on PostgreSQL a transaction-scoped advisory lock, so one instance of many
    /// runs the diff and a crashed one releases it; `None` when another instance holds it.
    /// SQLite serializes writers itself and needs no lock (`Some(None)`).
    pub async fn begin_nightly(
        &self,
    ) -> Result<Option<Option<Transaction<'static, Any>>>, StoreError> {
        if self.backend == Backend::Sqlite {
            return Ok(Some(None));
        }
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(ctx("starting the nightly transaction"))?;
        let locked: bool = sqlx::query("SELECT pg_try_advisory_xact_lock($1)")
            .bind(NIGHTLY_LOCK_KEY)
            .fetch_one(&mut *tx)
            .await
            .and_then(|r| r.try_get(0))
            .map_err(ctx("taking the nightly lock"))?;
        Ok(locked.then_some(Some(tx)))
    }

    /// Writes one batch's changes in a transaction from `begin_nightly`, or its own.
    pub async fn commit_in(
        &self,
        tx: Option<Transaction<'static, Any>>,
        state: &LiveState,
        dirty: &Dirty,
    ) -> Result<(), StoreError> {
        match tx {
            Some(mut tx) => {
                self.check_fence(&mut tx).await?;
                self.write_as_pipeline(&mut tx, state, dirty).await?;
                tx.commit()
                    .await
                    .map_err(ctx("committing the nightly diff"))
            }
            None => self.commit(state, dirty).await,
        }
    }

    /// Writes one batch's changes, atomically.
    pub async fn commit(&self, state: &LiveState, dirty: &Dirty) -> Result<(), StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(ctx("starting a transaction"))?;
        self.check_fence(&mut tx).await?;
        self.write_as_pipeline(&mut tx, state, dirty).await?;
        tx.commit().await.map_err(ctx("committing the batch"))?;
        Ok(())
    }

    async fn doc<T: DeserializeOwned>(
        &self,
        table: &str,
        key: &str,
        value: &str,
    ) -> Result<Option<T>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT doc FROM {table} WHERE {key} = $1"
        )))
        .bind(value)
        .fetch_optional(&self.pool)
        .await
        .map_err(ctx(format!("reading {table}")))?;
        match row {
            Some(r) => {
                let doc: String = r.try_get(0).map_err(ctx(format!("reading {table}")))?;
                from_json(table, value, &doc).map(Some)
            }
            None => Ok(None),
        }
    }
}

/// Installments are written per contract: the list, or why the terms gave none.
#[derive(serde::Serialize, serde::Deserialize)]
struct InstallmentsDoc {
    contract_no: String,
    installments: Vec<reconlight_core::reconcile::terms::Installment>,
    terms_error: Option<String>,
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_string(),
    }
}
