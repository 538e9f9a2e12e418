//! The store's schema, as a list of migrations: each brings a store from the version
//! before it. A store records the last one applied; the binary applies what is missing at
//! start, under a lock, and refuses a store written by a newer reconlight.

use sqlx::{AnyPool, AssertSqlSafe, Row};

use super::{Backend, StoreError, ctx};

/// The first schema (stores written before migrations existed hold exactly this).
const V1: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS crm_customers (customer_id TEXT PRIMARY KEY, doc TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS crm_contracts (contract_no TEXT PRIMARY KEY, customer_id TEXT NOT NULL, status TEXT NOT NULL, amount TEXT NOT NULL, currency TEXT NOT NULL, doc TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS crm_handoff_tickets (ticket_id TEXT PRIMARY KEY, contract_no TEXT NOT NULL, doc TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS crm_rows (row_id TEXT PRIMARY KEY, table_name TEXT NOT NULL, row_key TEXT NOT NULL, doc TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS signature_events (event_id TEXT PRIMARY KEY, contract_no TEXT, doc TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS bank_transactions (bank_ref TEXT PRIMARY KEY, booking_date TEXT NOT NULL, direction TEXT NOT NULL, amount TEXT NOT NULL, currency TEXT NOT NULL, doc TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS installments (contract_no TEXT PRIMARY KEY, doc TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS matches (bank_ref TEXT PRIMARY KEY, doc TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS alerts (alert_id TEXT PRIMARY KEY, rule_id TEXT NOT NULL, state TEXT NOT NULL, level TEXT NOT NULL, doc TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS work_items (item_id TEXT PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL, contract_no TEXT, bank_ref TEXT, last_found TEXT NOT NULL, doc TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit_entries (seq BIGINT PRIMARY KEY, contract_no TEXT, table_name TEXT NOT NULL, row_key TEXT NOT NULL, field TEXT NOT NULL, doc TEXT NOT NULL, hash TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS audit_entries_contract ON audit_entries (contract_no)",
    "CREATE TABLE IF NOT EXISTS dead_letters (letter_id TEXT PRIMARY KEY, source TEXT NOT NULL, source_position TEXT NOT NULL, reason TEXT NOT NULL, raw TEXT NOT NULL, recorded_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS source_positions (position_key TEXT PRIMARY KEY, consumed BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS outbox (message_id TEXT PRIMARY KEY, topic TEXT NOT NULL, message_key TEXT NOT NULL, payload TEXT NOT NULL, created_at TEXT NOT NULL, delivered_at TEXT)",
    "CREATE TABLE IF NOT EXISTS outbox_deliveries (delivery_id TEXT PRIMARY KEY, notifier TEXT NOT NULL, message_id TEXT NOT NULL, state TEXT NOT NULL, attempts BIGINT NOT NULL, last_error TEXT, next_attempt_at TEXT, updated_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS alert_acks (alert_id TEXT PRIMARY KEY, doc TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS inbox (inbox_id TEXT PRIMARY KEY, provider TEXT NOT NULL, body TEXT NOT NULL, received_at TEXT NOT NULL, consumed BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS manual_decisions (bank_ref TEXT PRIMARY KEY, doc TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS nightly_reports (business_date TEXT PRIMARY KEY, doc TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
];

/// Optimistic versions on what clerks change concurrently, the credits' match history, and
/// API tokens.
const V2: &[&str] = &[
    "ALTER TABLE work_items ADD COLUMN version BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE manual_decisions ADD COLUMN version BIGINT NOT NULL DEFAULT 0",
    "CREATE TABLE IF NOT EXISTS match_history (change_id TEXT PRIMARY KEY, bank_ref TEXT NOT NULL, recorded_at TEXT NOT NULL, doc TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS match_history_credit ON match_history (bank_ref)",
    "CREATE TABLE IF NOT EXISTS api_tokens (token_id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, hash TEXT NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT)",
];

/// A log of what clerks change (match decisions, acknowledgements), so the pipeline reads
/// what changed since its last batch instead of every decision ever made.
const V3: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS clerk_changes (seq BIGINT PRIMARY KEY, kind TEXT NOT NULL, item_key TEXT NOT NULL)",
];

/// The work queue's index: what clerks filter and sort by (the contract's customer, owner
/// and region, the money at stake, the SLA), beside each work item's document.
const V4: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS work_queue (item_id TEXT PRIMARY KEY, state TEXT NOT NULL, active BIGINT NOT NULL, kind TEXT NOT NULL, assignee TEXT, customer_id TEXT, customer TEXT, payer TEXT, owner TEXT, region TEXT, currency TEXT, at_stake BIGINT NOT NULL, sla_due TEXT NOT NULL, first_found TEXT NOT NULL, search TEXT NOT NULL)",
    // The open queue's three orders, and its count and money per currency from the index alone.
    "CREATE INDEX IF NOT EXISTS work_queue_by_money ON work_queue (active, at_stake DESC, sla_due, item_id)",
    "CREATE INDEX IF NOT EXISTS work_queue_by_sla ON work_queue (active, sla_due, at_stake DESC, item_id)",
    "CREATE INDEX IF NOT EXISTS work_queue_by_age ON work_queue (active, first_found, at_stake DESC, item_id)",
    "CREATE INDEX IF NOT EXISTS work_queue_totals ON work_queue (active, currency, at_stake)",
    "CREATE INDEX IF NOT EXISTS work_queue_state ON work_queue (state)",
    "CREATE INDEX IF NOT EXISTS work_items_credit ON work_items (bank_ref)",
    "CREATE INDEX IF NOT EXISTS work_items_contract ON work_items (contract_no)",
];

/// What is read often out of tables that grow with history: at start, the contracts'
/// amount changes among all audit entries and the alerts that are not resolved (partial
/// indexes, so the many writes outside them cost nothing more); every notifier round, the
/// outbox messages written lately.
const V5: &[&str] = &[
    "CREATE INDEX IF NOT EXISTS audit_entries_amounts ON audit_entries (seq) WHERE table_name = 'contracts' AND field IN ('amount', 'currency')",
    "CREATE INDEX IF NOT EXISTS alerts_unresolved ON alerts (alert_id) WHERE state <> 'resolved'",
    // Notifiers look for messages they have not tried among those written lately, and for
    // their retries by state, instead of through the whole outbox every round.
    "ALTER TABLE outbox ADD COLUMN written_at TEXT",
    "CREATE INDEX IF NOT EXISTS outbox_written ON outbox (written_at)",
    "CREATE INDEX IF NOT EXISTS outbox_deliveries_retry ON outbox_deliveries (notifier, state, next_attempt_at)",
];

/// Notifiers start where they first appear in the configuration (`store/subscriptions.rs`).
/// A store that already has messages marks them as every notifier's until its next start,
/// so the notifiers it was configured with keep what they had not yet sent.
const V6: &[&str] = &[
    "INSERT INTO meta (name, value) SELECT 'notifier_history_kept', 'until the next start' WHERE EXISTS (SELECT 1 FROM outbox)",
];

/// Audit entries are written without repeating their columns in their document (see
/// `reconlight_core::audit::StoredEntry::read`; an older reconlight could not read them, so
/// the version says so). Delivered messages are pruned with their delivery records, found
/// by message.
const V7: &[&str] =
    &["CREATE INDEX IF NOT EXISTS outbox_deliveries_message ON outbox_deliveries (message_id)"];

/// The state snapshot's marker (`snapshot.rs`); on SQLite, where snapshots are written,
/// triggers on the tables the live state is read from (work items aside) remove it when
/// anything but a batch counted under it writes to them.
const V8: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS state_snapshot (snapshot_id TEXT PRIMARY KEY, commits BIGINT NOT NULL, writing BIGINT NOT NULL)",
];

/// The tables a state snapshot pictures, and which of their rows (a condition on `NEW`
/// or `OLD`, `$row`).
const SNAPSHOT_TABLES: &[(&str, &str)] = &[
    ("crm_customers", "TRUE"),
    ("crm_contracts", "TRUE"),
    ("crm_handoff_tickets", "TRUE"),
    ("crm_rows", "TRUE"),
    ("signature_events", "TRUE"),
    ("bank_transactions", "TRUE"),
    ("installments", "TRUE"),
    ("matches", "TRUE"),
    ("alerts", "TRUE"),
    ("source_positions", "TRUE"),
    ("audit_entries", "TRUE"),
    ("dead_letters", "TRUE"),
    ("meta", "$row.name IN ('audit_head', 'watermark')"),
];

/// V8's triggers, SQLite's dialect.
fn snapshot_triggers() -> Vec<String> {
    let mut ddl = Vec::new();
    for (table, rows) in SNAPSHOT_TABLES {
        for (op, row) in [("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")] {
            let rows = rows.replace("$row", row);
            ddl.push(format!(
                "CREATE TRIGGER IF NOT EXISTS state_snapshot_{table}_{name} AFTER {op} ON {table} \
                 WHEN ({rows}) AND EXISTS (SELECT 1 FROM state_snapshot WHERE writing = 0) \
                 BEGIN DELETE FROM state_snapshot; END",
                name = op.to_lowercase(),
            ));
        }
    }
    ddl
}

const MIGRATIONS: &[&[&str]] = &[V1, V2, V3, V4, V5, V6, V7, V8];

/// The statements of one migration on one backend.
fn migration(version: usize, backend: Backend) -> Vec<String> {
    let mut ddl: Vec<String> = MIGRATIONS[version].iter().map(|s| s.to_string()).collect();
    if MIGRATIONS[version] == V8 && backend == Backend::Sqlite {
        ddl.extend(snapshot_triggers());
    }
    ddl
}

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the store to `SCHEMA_VERSION`, one migration per transaction.
pub(super) async fn migrate(pool: &AnyPool, backend: Backend) -> Result<(), StoreError> {
    sqlx::query("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
        .execute(pool)
        .await
        .map_err(ctx("creating the schema"))?;
    loop {
        let mut tx = pool.begin().await.map_err(ctx("starting a migration"))?;
        if backend == Backend::Postgres {
            // Instances starting together migrate one at a time.
            sqlx::query("SELECT pg_advisory_xact_lock(7355608)")
                .execute(&mut *tx)
                .await
                .map_err(ctx("waiting for the migration lock"))?;
        }
        let version: i64 = sqlx::query("SELECT value FROM meta WHERE name = 'schema_version'")
            .fetch_optional(&mut *tx)
            .await
            .map_err(ctx("reading the schema version"))?
            .map(|r| r.try_get::<String, _>(0))
            .transpose()
            .map_err(ctx("reading the schema version"))?
            .map_or(Ok(0), |v| v.parse::<i64>())
            .map_err(ctx("reading the schema version"))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError {
                doing: "opening the store".into(),
                source: format!(
                    "the store has schema version {version}, written by a newer reconlight; this one knows up to {SCHEMA_VERSION}"
                )
                .into(),
            });
        }
        if version == SCHEMA_VERSION {
            return Ok(());
        }
        let next = version + 1;
        for ddl in migration(version as usize, backend) {
            sqlx::query(AssertSqlSafe(ddl.as_str()))
                .execute(&mut *tx)
                .await
                .map_err(ctx(format!(
                    "migrating the store to schema version {next}: {ddl}"
                )))?;
        }
        sqlx::query(
            "INSERT INTO meta (name, value) VALUES ('schema_version', $1) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(next.to_string())
        .execute(&mut *tx)
        .await
        .map_err(ctx("recording the schema version"))?;
        tx.commit()
            .await
            .map_err(ctx(format!("migrating the store to schema version {next}")))?;
        tracing::info!("store migrated to schema version {next}");
    }
}
