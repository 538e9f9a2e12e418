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

mod schema;
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

/// An API token as stored: its secret only as a hash.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    pub role: crate::access::Role,
    #[serde(skip)]
    pub hash: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

fn api_token_of(r: &AnyRow) -> Result<ApiToken, StoreError> {
    let get = |i: usize| -> Result<String, StoreError> {
        r.try_get(i).map_err(ctx("reading an API token"))
    };
    let role: String = get(2)?;
    Ok(ApiToken {
        id: get(0)?,
        name: get(1)?,
        role: role.parse().map_err(|e: String| StoreError {
            doing: "reading an API token".into(),
            source: e.into(),
        })?,
        hash: get(3)?,
        created_at: get(4)?,
        revoked_at: r.try_get(5).map_err(ctx("reading an API token"))?,
    })
}

/// The store.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    pub backend: Backend,
}

fn to_json(v: &impl Serialize) -> String {
    serde_json::to_string(v).expect("state serializes")
}

fn from_json<T: DeserializeOwned>(table: &str, key: &str, doc: &str) -> Result<T, StoreError> {
    serde_json::from_str(doc).map_err(ctx(format!("reading {table} row {key}")))
}

impl Store {
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
        let options = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 1 } else { 4 })
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(Duration::from_secs(30));
        let pool = options
            .connect(&url)
            .await
            .map_err(ctx(format!("connecting to {}", redact(&url))))?;
        if backend == Backend::Sqlite {
            for pragma in [
                "PRAGMA journal_mode=WAL",
                "PRAGMA synchronous=NORMAL",
                "PRAGMA busy_timeout=10000",
            ] {
                sqlx::query(pragma)
                    .execute(&pool)
                    .await
                    .map_err(ctx(pragma))?;
            }
        }
        schema::migrate(&pool, backend).await?;
        Ok(Store { pool, backend })
    }

    async fn docs<T: DeserializeOwned>(
        &self,
        table: &str,
        key: &str,
    ) -> Result<Vec<T>, StoreError> {
        let rows: Vec<AnyRow> = sqlx::query(AssertSqlSafe(format!(
            "SELECT {key}, doc FROM {table} ORDER BY {key}"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(ctx(format!("reading {table}")))?;
        rows.iter()
            .map(|r| {
                let k: String = r.try_get(0).map_err(ctx(format!("reading {table}")))?;
                let doc: String = r.try_get(1).map_err(ctx(format!("reading {table}")))?;
                from_json(table, &k, &doc)
            })
            .collect()
    }

    /// Reads the whole live state.
    pub async fn load(&self) -> Result<LiveState, StoreError> {
        let mut s = LiveState::default();
        for c in self
            .docs::<reconlight_formats::model::Customer>("crm_customers", "customer_id")
            .await?
        {
            s.customers.insert(c.customer_id.clone(), c);
        }
        for c in self
            .docs::<reconlight_formats::model::Contract>("crm_contracts", "contract_no")
            .await?
        {
            s.contracts.insert(c.contract_no.clone(), c);
        }
        for t in self
            .docs::<reconlight_formats::model::HandoffTicket>("crm_handoff_tickets", "ticket_id")
            .await?
        {
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
        for e in self
            .docs::<reconlight_formats::model::SignatureEvent>("signature_events", "event_id")
            .await?
        {
            s.signatures.insert(e.event_id.clone(), e);
        }
        for b in self
            .docs::<reconlight_core::state::BankRow>("bank_transactions", "bank_ref")
            .await?
        {
            s.bank.insert(b.tx.bank_ref.clone(), b);
        }
        for doc in self
            .docs::<InstallmentsDoc>("installments", "contract_no")
            .await?
        {
            if let Some(e) = doc.terms_error {
                s.terms_errors.insert(doc.contract_no.clone(), e);
            }
            for i in doc.installments {
                s.installments.insert((i.contract_no.clone(), i.seq), i);
            }
        }
        for list in self
            .docs::<Vec<reconlight_core::reconcile::matching::Allocation>>("matches", "bank_ref")
            .await?
        {
            if let Some(first) = list.first() {
                s.matches.insert(first.bank_ref.clone(), list);
            }
        }
        for a in self
            .docs::<reconlight_rules::Alert>("alerts", "alert_id")
            .await?
        {
            s.alerts.insert(a.id.clone(), a);
        }
        for w in self
            .docs::<reconlight_core::workitems::WorkItem>("work_items", "item_id")
            .await?
        {
            s.work_items.insert(w.id.clone(), w);
        }
        let rows: Vec<AnyRow> = sqlx::query("SELECT position_key, consumed FROM source_positions")
            .fetch_all(&self.pool)
            .await
            .map_err(ctx("reading source positions"))?;
        for r in rows {
            let k: String = r.try_get(0).map_err(ctx("reading source positions"))?;
            let v: i64 = r.try_get(1).map_err(ctx("reading source positions"))?;
            s.positions.insert(k, v as u64);
        }
        let rows: Vec<AnyRow> = sqlx::query(
            "SELECT doc FROM audit_entries WHERE table_name = 'contracts' AND field IN ('amount', 'currency') ORDER BY seq",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(ctx("reading contract amount changes"))?;
        for r in rows {
            let doc: String = r
                .try_get(0)
                .map_err(ctx("reading contract amount changes"))?;
            s.amount_changes.push(from_json("audit_entries", "", &doc)?);
        }
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

    async fn meta(&self, name: &str) -> Result<Option<String>, StoreError> {
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
                write_batch(&mut tx, state, dirty).await?;
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
        write_batch(&mut tx, state, dirty).await?;
        tx.commit().await.map_err(ctx("committing the batch"))?;
        Ok(())
    }

    /// Every work item, by id.
    pub async fn work_items(
        &self,
    ) -> Result<Vec<reconlight_core::workitems::WorkItem>, StoreError> {
        self.docs("work_items", "item_id").await
    }

    /// One work item.
    pub async fn work_item(
        &self,
        id: &str,
    ) -> Result<Option<reconlight_core::workitems::WorkItem>, StoreError> {
        self.doc("work_items", "item_id", id).await
    }

    /// One bank transaction.
    pub async fn bank_row(
        &self,
        bank_ref: &str,
    ) -> Result<Option<reconlight_core::state::BankRow>, StoreError> {
        self.doc("bank_transactions", "bank_ref", bank_ref).await
    }

    /// A credit's current allocations (empty when it is unmatched).
    pub async fn allocations_of(
        &self,
        bank_ref: &str,
    ) -> Result<Vec<reconlight_core::reconcile::matching::Allocation>, StoreError> {
        Ok(self
            .doc("matches", "bank_ref", bank_ref)
            .await?
            .unwrap_or_default())
    }

    /// How a credit's allocation moved over time, oldest first.
    pub async fn match_history(
        &self,
        bank_ref: &str,
    ) -> Result<Vec<reconlight_core::state::MatchChange>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT doc FROM match_history WHERE bank_ref = $1 ORDER BY recorded_at, change_id",
        )
        .bind(bank_ref.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(ctx("reading a credit's match history"))?;
        rows.into_iter()
            .map(|(doc,)| from_json("match_history", bank_ref, &doc))
            .collect()
    }

    /// A contract's installments (empty when it has none).
    pub async fn installments_of(
        &self,
        contract_no: &str,
    ) -> Result<Vec<reconlight_core::reconcile::terms::Installment>, StoreError> {
        Ok(self
            .doc::<InstallmentsDoc>("installments", "contract_no", contract_no)
            .await?
            .map(|d| d.installments)
            .unwrap_or_default())
    }

    /// Clerks' match decisions, by bank reference.
    pub async fn manual_decisions(
        &self,
    ) -> Result<
        std::collections::BTreeMap<String, reconlight_core::reconcile::matching::ManualDecision>,
        StoreError,
    > {
        Ok(self
            .docs::<reconlight_core::reconcile::matching::ManualDecision>(
                "manual_decisions",
                "bank_ref",
            )
            .await?
            .into_iter()
            .map(|d| (d.bank_ref.clone(), d))
            .collect())
    }

    /// The decisions about one credit so far (empty when there are none).
    pub async fn manual_decision_of(
        &self,
        bank_ref: &str,
    ) -> Result<reconlight_core::reconcile::matching::ManualDecision, StoreError> {
        Ok(self
            .doc("manual_decisions", "bank_ref", bank_ref)
            .await?
            .unwrap_or_else(|| reconlight_core::reconcile::matching::ManualDecision {
                bank_ref: bank_ref.to_string(),
                ..Default::default()
            }))
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

    /// Writes a clerk's action: the work item, the match decision it made, and its message.
    /// Writes a clerk's action only if nobody changed the item (or the credit's decisions)
    /// since it was read: `item.version` and `decision.version` are the new versions, one
    /// past what was read. A lost race is a conflict error (`is_conflict`).
    pub async fn save_action(
        &self,
        item: &reconlight_core::workitems::WorkItem,
        decision: Option<&reconlight_core::reconcile::matching::ManualDecision>,
        message: &reconlight_core::outbox::OutboxMessage,
    ) -> Result<(), StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(ctx("starting a transaction"))?;
        if !write_work_item_if(&mut tx, item, item.version.checked_sub(1)).await? {
            return Err(StoreError::conflict(
                "saving a clerk's action",
                format!("work item {}", item.id),
            ));
        }
        if let Some(d) = decision {
            let doc = to_json(d);
            let written = match d.version.checked_sub(1) {
                Some(0) | None => sqlx::query(
                    "INSERT INTO manual_decisions (bank_ref, doc, version) VALUES ($1, $2, $3) ON CONFLICT (bank_ref) DO NOTHING",
                )
                .bind(d.bank_ref.clone())
                .bind(doc.clone())
                .bind(d.version as i64)
                .execute(&mut *tx)
                .await
                .map_err(ctx("saving a match decision"))?
                .rows_affected(),
                _ => 0,
            };
            let written = if written == 1 {
                1
            } else {
                sqlx::query(
                    "UPDATE manual_decisions SET doc = $1, version = $2 WHERE bank_ref = $3 AND version = $4",
                )
                .bind(doc)
                .bind(d.version as i64)
                .bind(d.bank_ref.clone())
                .bind(d.version.saturating_sub(1) as i64)
                .execute(&mut *tx)
                .await
                .map_err(ctx("saving a match decision"))?
                .rows_affected()
            };
            if written != 1 {
                return Err(StoreError::conflict(
                    "saving a clerk's action",
                    format!("the decisions about credit {}", d.bank_ref),
                ));
            }
        }
        write_outbox(&mut tx, message).await?;
        tx.commit().await.map_err(ctx("committing the action"))?;
        Ok(())
    }

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
        upsert(
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
                Some(format!("{notifier}\u{1f}{message_id}")),
                Some(notifier.to_string()),
                Some(message_id.to_string()),
                Some(state.to_string()),
                Some(attempts.to_string()),
                last_error.map(str::to_string),
                next_attempt_at.map(|t| t.to_rfc3339()),
                Some(now.to_rfc3339()),
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

    /// Acknowledgements by alert id.
    pub async fn alert_acks(
        &self,
    ) -> Result<std::collections::BTreeMap<String, reconlight_rules::Acknowledgement>, StoreError>
    {
        let rows: Vec<AnyRow> = sqlx::query("SELECT alert_id, doc FROM alert_acks")
            .fetch_all(&self.pool)
            .await
            .map_err(ctx("reading alert acknowledgements"))?;
        rows.iter()
            .map(|r| {
                let id: String = r
                    .try_get(0)
                    .map_err(ctx("reading alert acknowledgements"))?;
                let doc: String = r
                    .try_get(1)
                    .map_err(ctx("reading alert acknowledgements"))?;
                Ok((id.clone(), from_json("alert_acks", &id, &doc)?))
            })
            .collect()
    }

    /// Acknowledges a firing alert: the ack and its message, in one transaction.
    pub async fn acknowledge_alert(
        &self,
        alert_id: &str,
        by: &str,
        reason: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Result<reconlight_rules::Alert, String>, StoreError> {
        let Some(mut alert) = self
            .doc::<reconlight_rules::Alert>("alerts", "alert_id", alert_id)
            .await?
        else {
            return Ok(Err(format!("no alert `{alert_id}`")));
        };
        if alert.state != reconlight_rules::AlertState::Firing {
            return Ok(Err(format!(
                "alert {alert_id} is {}; only firing alerts can be acknowledged",
                alert.state.as_str()
            )));
        }
        // The pipeline copies an ack onto the alert at its next batch: look at both.
        let stored: Option<reconlight_rules::Acknowledgement> =
            self.doc("alert_acks", "alert_id", alert_id).await?;
        if let Some(a) = alert
            .acknowledged
            .as_ref()
            .or(stored.as_ref())
            .filter(|a| a.fired_at == alert.fired_at)
        {
            return Ok(Err(format!(
                "alert {alert_id} was already acknowledged by {} at {}",
                a.by,
                a.at.to_rfc3339()
            )));
        }
        let ack = reconlight_rules::Acknowledgement {
            by: by.to_string(),
            at: now,
            reason: reason.to_string(),
            fired_at: alert.fired_at,
        };
        alert.acknowledged = Some(ack.clone());
        let message = reconlight_core::outbox::OutboxMessage::new(
            "alerts",
            &alert.id,
            &serde_json::json!({"transition": "acknowledged", "alert": alert}),
            now,
        );
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(ctx("starting a transaction"))?;
        upsert(
            &mut tx,
            "alert_acks",
            &["alert_id", "doc"],
            vec![Some(alert_id.to_string()), Some(to_json(&ack))],
        )
        .await?;
        write_outbox(&mut tx, &message).await?;
        tx.commit()
            .await
            .map_err(ctx("committing the acknowledgement"))?;
        Ok(Ok(alert))
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

    /// Every alert, by id.
    pub async fn alerts(&self) -> Result<Vec<reconlight_rules::Alert>, StoreError> {
        self.docs("alerts", "alert_id").await
    }

    /// Dead letters, newest first.
    pub async fn dead_letters(&self, limit: i64) -> Result<Vec<DeadLetter>, StoreError> {
        let rows: Vec<AnyRow> = sqlx::query("SELECT source, source_position, reason, raw, recorded_at FROM dead_letters ORDER BY recorded_at DESC, letter_id LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(ctx("reading dead letters"))?;
        rows.iter()
            .map(|r| {
                let at: String = r.try_get(4).map_err(ctx("reading dead letters"))?;
                Ok(DeadLetter {
                    source: r.try_get(0).map_err(ctx("reading dead letters"))?,
                    position: r.try_get(1).map_err(ctx("reading dead letters"))?,
                    reason: r.try_get(2).map_err(ctx("reading dead letters"))?,
                    raw: r.try_get(3).map_err(ctx("reading dead letters"))?,
                    recorded_at: chrono::DateTime::parse_from_rfc3339(&at)
                        .map(|t| t.to_utc())
                        .unwrap_or_default(),
                })
            })
            .collect()
    }

    /// The audit trail, of one contract or (with `None`) all of it, in sequence order.
    /// An API token by its id.
    pub async fn api_token(&self, id: &str) -> Result<Option<ApiToken>, StoreError> {
        let row = sqlx::query(
            "SELECT token_id, name, role, hash, created_at, revoked_at FROM api_tokens WHERE token_id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(ctx("reading an API token"))?;
        row.as_ref().map(api_token_of).transpose()
    }

    /// Every API token (without secrets), newest first.
    pub async fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        let rows = sqlx::query(
            "SELECT token_id, name, role, hash, created_at, revoked_at FROM api_tokens ORDER BY created_at DESC, token_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(ctx("reading the API tokens"))?;
        rows.iter().map(api_token_of).collect()
    }

    /// Stores a new token's hash.
    pub async fn add_api_token(
        &self,
        id: &str,
        name: &str,
        role: crate::access::Role,
        hash: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_tokens (token_id, name, role, hash, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id.to_string())
        .bind(name.to_string())
        .bind(role.as_str())
        .bind(hash.to_string())
        .bind(now.to_rfc3339())
        .execute(&self.pool)
        .await
        .map_err(ctx("storing an API token"))?;
        Ok(())
    }

    /// Revokes a token; false when there is no such token.
    pub async fn revoke_api_token(
        &self,
        id: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE token_id = $2 AND revoked_at IS NULL",
        )
        .bind(now.to_rfc3339())
        .bind(id.to_string())
        .execute(&self.pool)
        .await
        .map_err(ctx("revoking an API token"))?
        .rows_affected();
        Ok(n == 1)
    }

    /// The whole trail as stored: each entry with the columns it is found by.
    pub async fn audit_rows(&self) -> Result<Vec<reconlight_core::audit::StoredEntry>, StoreError> {
        let rows: Vec<AnyRow> = sqlx::query(
            "SELECT seq, contract_no, table_name, row_key, field, hash, doc FROM audit_entries ORDER BY seq",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(ctx("reading the audit trail"))?;
        rows.iter()
            .map(|r| {
                let get = ctx("reading the audit trail");
                let doc: String = r.try_get(6).map_err(get)?;
                Ok(reconlight_core::audit::StoredEntry {
                    seq: r.try_get(0).map_err(ctx("reading the audit trail"))?,
                    contract_no: r.try_get(1).map_err(ctx("reading the audit trail"))?,
                    table: r.try_get(2).map_err(ctx("reading the audit trail"))?,
                    key: r.try_get(3).map_err(ctx("reading the audit trail"))?,
                    field: r.try_get(4).map_err(ctx("reading the audit trail"))?,
                    hash: r.try_get(5).map_err(ctx("reading the audit trail"))?,
                    entry: from_json("audit_entries", "", &doc)?,
                })
            })
            .collect()
    }

    /// The trail's head as stored.
    pub async fn audit_head(
        &self,
    ) -> Result<Option<reconlight_core::audit::AuditHead>, StoreError> {
        match self.meta("audit_head").await? {
            Some(doc) => from_json("meta", "audit_head", &doc).map(Some),
            None => Ok(None),
        }
    }

    pub async fn audit_entries(
        &self,
        contract_no: Option<&str>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows: Vec<AnyRow> = match contract_no {
            Some(no) => {
                sqlx::query("SELECT doc FROM audit_entries WHERE contract_no = $1 ORDER BY seq")
                    .bind(no)
                    .fetch_all(&self.pool)
                    .await
            }
            None => {
                sqlx::query("SELECT doc FROM audit_entries ORDER BY seq")
                    .fetch_all(&self.pool)
                    .await
            }
        }
        .map_err(ctx("reading the audit trail"))?;
        rows.iter()
            .map(|r| {
                let doc: String = r.try_get(0).map_err(ctx("reading the audit trail"))?;
                from_json("audit_entries", "", &doc)
            })
            .collect()
    }

    /// The stored nightly reports, newest first.
    pub async fn nightly_reports(&self) -> Result<Vec<serde_json::Value>, StoreError> {
        let rows: Vec<AnyRow> =
            sqlx::query("SELECT doc FROM nightly_reports ORDER BY business_date DESC")
                .fetch_all(&self.pool)
                .await
                .map_err(ctx("reading nightly reports"))?;
        rows.iter()
            .map(|r| {
                let doc: String = r.try_get(0).map_err(ctx("reading nightly reports"))?;
                from_json("nightly_reports", "", &doc)
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
