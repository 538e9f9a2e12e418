//! Writing a micro-batch: every changed row of the live state, gathered per table and sent
//! in multi-row statements inside the batch's transaction.

use serde::Serialize;
// Table and column names in dynamic SQL are this module's constants, never input.
use sqlx::{Any, AssertSqlSafe, Transaction};

use super::{InstallmentsDoc, StoreError, ctx, to_json};
use reconlight_core::state::{Dirty, LiveState};

/// Inserts or replaces one row; the first column is the key.
pub(super) async fn upsert(
    tx: &mut Transaction<'static, Any>,
    table: &str,
    cols: &[&str],
    values: Vec<Option<String>>,
) -> Result<(), StoreError> {
    upsert_cells(
        tx,
        table,
        cols,
        values.into_iter().map(Cell::Text).collect(),
    )
    .await
}

/// One row whose cells are typed (PostgreSQL will not put text into a BIGINT column).
pub(super) async fn upsert_cells(
    tx: &mut Transaction<'static, Any>,
    table: &str,
    cols: &[&str],
    cells: Vec<Cell>,
) -> Result<(), StoreError> {
    let mut rows = Rows::default();
    rows.push(cells);
    rows.upsert(tx, table, cols).await
}

const WORK_ITEM_COLUMNS: [&str; 8] = [
    "item_id",
    "kind",
    "state",
    "contract_no",
    "bank_ref",
    "last_found",
    "doc",
    "version",
];

fn work_item_row(w: &reconlight_core::workitems::WorkItem) -> Vec<Cell> {
    vec![
        Cell::Text(Some(w.id.clone())),
        Cell::Text(Some(w.finding.kind.as_str().into())),
        Cell::Text(Some(w.state.as_str().into())),
        Cell::Text(w.finding.contract_no.clone()),
        Cell::Text(w.finding.bank_ref.clone()),
        Cell::Text(Some(w.last_found.to_string())),
        Cell::json(w),
        Cell::Int(w.version as i64),
    ]
}

/// Writes a work item only if the stored one is still at version `read` (`None`: only if
/// there is none yet). False when another writer got there first.
pub(super) async fn write_work_item_if(
    tx: &mut Transaction<'static, Any>,
    w: &reconlight_core::workitems::WorkItem,
    read: Option<u64>,
) -> Result<bool, StoreError> {
    let doc = serde_json::to_string(w).expect("work items serialize");
    let rows = match read {
        None => sqlx::query(
            "INSERT INTO work_items (item_id, kind, state, contract_no, bank_ref, last_found, doc, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (item_id) DO NOTHING",
        )
        .bind(w.id.clone())
        .bind(w.finding.kind.as_str())
        .bind(w.state.as_str())
        .bind(w.finding.contract_no.clone())
        .bind(w.finding.bank_ref.clone())
        .bind(w.last_found.to_string())
        .bind(doc)
        .bind(w.version as i64),
        Some(v) => sqlx::query(
            "UPDATE work_items SET kind = $2, state = $3, contract_no = $4, bank_ref = $5, last_found = $6, doc = $7, version = $8 \
             WHERE item_id = $1 AND version = $9",
        )
        .bind(w.id.clone())
        .bind(w.finding.kind.as_str())
        .bind(w.state.as_str())
        .bind(w.finding.contract_no.clone())
        .bind(w.finding.bank_ref.clone())
        .bind(w.last_found.to_string())
        .bind(doc)
        .bind(w.version as i64)
        .bind(v as i64),
    }
    .execute(&mut **tx)
    .await
    .map_err(ctx("writing a work item"))?
    .rows_affected();
    Ok(rows == 1)
}

const OUTBOX_COLUMNS: [&str; 6] = [
    "message_id",
    "topic",
    "message_key",
    "payload",
    "created_at",
    "written_at",
];

fn outbox_row(m: &reconlight_core::outbox::OutboxMessage, written: &str) -> Vec<Cell> {
    let created = m.created_at.to_rfc3339();
    [&m.id, &m.topic, &m.key, &m.payload, &created, written]
        .map(|v| Cell::Text(Some(v.to_string())))
        .into()
}

/// Outbox messages written at `written` (`deliveries::written_at` of the writer's clock).
pub(super) async fn write_outbox<'a>(
    tx: &mut Transaction<'static, Any>,
    messages: impl IntoIterator<Item = &'a reconlight_core::outbox::OutboxMessage>,
    written: &str,
) -> Result<(), StoreError> {
    let mut rows = Rows::default();
    for m in messages {
        rows.push(outbox_row(m, written));
    }
    rows.insert(tx, "outbox", &OUTBOX_COLUMNS, Conflict::Ignore)
        .await
}

pub(super) async fn write_batch(
    tx: &mut Transaction<'static, Any>,
    s: &LiveState,
    d: &Dirty,
) -> Result<(), StoreError> {
    let text = |v: &str| Cell::Text(Some(v.to_string()));
    let mut rows = Rows::default();
    let mut gone = Vec::new();
    for k in &d.customers {
        match s.customers.get(k) {
            Some(c) => rows.push(vec![text(k), Cell::json(c)]),
            None => gone.push(k.clone()),
        }
    }
    rows.upsert(tx, "crm_customers", &["customer_id", "doc"])
        .await?;
    delete_keys(tx, "crm_customers", "customer_id", &mut gone).await?;
    for k in &d.contracts {
        match s.contracts.get(k) {
            Some(c) => rows.push(vec![
                text(k),
                text(&c.customer_id),
                text(c.status.as_str()),
                Cell::Text(Some(c.amount.amount.to_string())),
                Cell::Text(Some(c.amount.currency.to_string())),
                Cell::json(c),
            ]),
            None => gone.push(k.clone()),
        }
    }
    rows.upsert(
        tx,
        "crm_contracts",
        &[
            "contract_no",
            "customer_id",
            "status",
            "amount",
            "currency",
            "doc",
        ],
    )
    .await?;
    delete_keys(tx, "crm_contracts", "contract_no", &mut gone).await?;
    for k in &d.tickets {
        match s.tickets.get(k) {
            Some(t) => rows.push(vec![text(k), text(&t.contract_no), Cell::json(t)]),
            None => gone.push(k.clone()),
        }
    }
    rows.upsert(
        tx,
        "crm_handoff_tickets",
        &["ticket_id", "contract_no", "doc"],
    )
    .await?;
    delete_keys(tx, "crm_handoff_tickets", "ticket_id", &mut gone).await?;
    for (table, key) in &d.extra {
        let id = format!("{table}\u{1f}{key}");
        match s.extra.get(table).and_then(|t| t.get(key)) {
            Some(row) => rows.push(vec![
                Cell::Text(Some(id)),
                text(table),
                text(key),
                Cell::json(row),
            ]),
            None => gone.push(id),
        }
    }
    rows.upsert(tx, "crm_rows", &["row_id", "table_name", "row_key", "doc"])
        .await?;
    delete_keys(tx, "crm_rows", "row_id", &mut gone).await?;
    for k in &d.signatures {
        if let Some(e) = s.signatures.get(k) {
            rows.push(vec![
                text(k),
                Cell::Text(e.contract_no.clone()),
                Cell::json(e),
            ]);
        }
    }
    rows.upsert(tx, "signature_events", &["event_id", "contract_no", "doc"])
        .await?;
    for k in &d.bank {
        if let Some(b) = s.bank.get(k) {
            let dir = match b.tx.direction {
                reconlight_formats::model::Direction::Credit => "credit",
                reconlight_formats::model::Direction::Debit => "debit",
            };
            rows.push(vec![
                text(k),
                Cell::Text(Some(b.tx.booking_date.to_string())),
                text(dir),
                Cell::Text(Some(b.tx.amount.amount.to_string())),
                Cell::Text(Some(b.tx.amount.currency.to_string())),
                Cell::json(b),
            ]);
        }
    }
    rows.upsert(
        tx,
        "bank_transactions",
        &[
            "bank_ref",
            "booking_date",
            "direction",
            "amount",
            "currency",
            "doc",
        ],
    )
    .await?;
    for no in &d.installments {
        let list: Vec<_> = s
            .installments
            .range((no.clone(), 0)..=(no.clone(), u32::MAX))
            .map(|(_, v)| v.clone())
            .collect();
        let err = s.terms_errors.get(no).cloned();
        if list.is_empty() && err.is_none() {
            gone.push(no.clone());
        } else {
            let doc = InstallmentsDoc {
                contract_no: no.clone(),
                installments: list,
                terms_error: err,
            };
            rows.push(vec![text(no), Cell::json(&doc)]);
        }
    }
    rows.upsert(tx, "installments", &["contract_no", "doc"])
        .await?;
    delete_keys(tx, "installments", "contract_no", &mut gone).await?;
    for k in &d.matches {
        match s.matches.get(k) {
            Some(list) => rows.push(vec![text(k), Cell::json(list)]),
            None => gone.push(k.clone()),
        }
    }
    rows.upsert(tx, "matches", &["bank_ref", "doc"]).await?;
    delete_keys(tx, "matches", "bank_ref", &mut gone).await?;
    for k in &d.alerts {
        if let Some(a) = s.alerts.get(k) {
            rows.push(vec![
                text(k),
                text(&a.rule_id),
                text(a.state.as_str()),
                text(a.level.as_str()),
                Cell::json(a),
            ]);
        }
    }
    rows.upsert(
        tx,
        "alerts",
        &["alert_id", "rule_id", "state", "level", "doc"],
    )
    .await?;
    let mut queue = Rows::default();
    for k in &d.work_items {
        if let Some(w) = s.work_items.get(k) {
            queue.push(super::workqueue::queue_row(w, s));
            match d.work_items_read.get(k) {
                // The nightly diff writes only over what it read: a clerk who acted since
                // wins the race, and the diff merges and tries again.
                Some(read) => {
                    if !write_work_item_if(tx, w, *read).await? {
                        return Err(StoreError::conflict(
                            "writing the nightly diff's work items",
                            format!("work item {k}"),
                        ));
                    }
                }
                None => rows.push(work_item_row(w)),
            }
        }
    }
    rows.upsert(tx, "work_items", &WORK_ITEM_COLUMNS).await?;
    queue
        .upsert(tx, "work_queue", &super::workqueue::QUEUE_COLUMNS)
        .await?;
    for e in &d.audit {
        rows.push(vec![
            Cell::Int(e.seq as i64),
            Cell::Text(e.contract_no.clone()),
            text(&e.table),
            text(&e.key),
            text(&e.field),
            Cell::Text(Some(e.stored_doc())),
            text(&e.hash),
        ]);
    }
    rows.insert(
        tx,
        "audit_entries",
        &[
            "seq",
            "contract_no",
            "table_name",
            "row_key",
            "field",
            "doc",
            "hash",
        ],
        Conflict::Fail,
    )
    .await?;
    if !d.audit.is_empty() {
        rows.push(vec![text("audit_head"), Cell::json(&s.audit_head.sealed())]);
    }
    if d.watermark {
        rows.push(vec![text("watermark"), Cell::json(&s.watermark)]);
    }
    for (name, value) in &d.meta {
        rows.push(vec![text(name), text(value)]);
    }
    rows.upsert(tx, "meta", &["name", "value"]).await?;
    for l in &d.dead_letters {
        let id = hex::encode(
            &<sha2::Sha256 as sha2::Digest>::digest(
                format!("{}\u{1f}{}", l.source, l.position).as_bytes(),
            )[..12],
        );
        rows.push(vec![
            Cell::Text(Some(id)),
            text(&l.source),
            text(&l.position),
            text(&l.reason),
            text(&l.raw),
            Cell::Text(Some(l.recorded_at.to_rfc3339())),
        ]);
    }
    rows.upsert(
        tx,
        "dead_letters",
        &[
            "letter_id",
            "source",
            "source_position",
            "reason",
            "raw",
            "recorded_at",
        ],
    )
    .await?;
    for c in &d.match_history {
        let id = hex::encode(
            &<sha2::Sha256 as sha2::Digest>::digest(
                format!(
                    "{}\u{1f}{}\u{1f}{:?}",
                    c.bank_ref,
                    c.at.to_rfc3339(),
                    c.after
                )
                .as_bytes(),
            )[..12],
        );
        rows.push(vec![
            Cell::Text(Some(id)),
            text(&c.bank_ref),
            Cell::Text(Some(c.at.to_rfc3339())),
            Cell::json(c),
        ]);
    }
    rows.insert(
        tx,
        "match_history",
        &["change_id", "bank_ref", "recorded_at", "doc"],
        Conflict::Ignore,
    )
    .await?;
    let written = super::deliveries::written_at(chrono::Utc::now());
    write_outbox(tx, &d.outbox, &written).await?;
    for k in &d.positions {
        let v = s.positions.get(k).copied().unwrap_or(0) as i64;
        rows.push(vec![text(k), Cell::Int(v)]);
    }
    rows.upsert(tx, "source_positions", &["position_key", "consumed"])
        .await?;
    for id in &d.inbox_consumed {
        sqlx::query("UPDATE inbox SET consumed = 1 WHERE inbox_id = $1")
            .bind(id.clone())
            .execute(&mut **tx)
            .await
            .map_err(ctx("marking the inbox"))?;
    }
    if let Some((date, doc)) = &d.nightly_report {
        rows.push(vec![Cell::Text(Some(date.to_string())), text(doc)]);
    }
    rows.upsert(tx, "nightly_reports", &["business_date", "doc"])
        .await?;
    mark_change(tx).await
}

/// Counts the commits that change what pages show (batches, clerks' actions,
/// acknowledgements), so open pages learn of a change by reading one row.
pub(super) async fn mark_change(tx: &mut Transaction<'static, Any>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO meta (name, value) VALUES ('change_seq', '1') \
         ON CONFLICT (name) DO UPDATE SET value = CAST(CAST(meta.value AS BIGINT) + 1 AS TEXT)",
    )
    .execute(&mut **tx)
    .await
    .map_err(ctx("counting the change"))?;
    Ok(())
}

/// Bound parameters per multi-row statement (numbered, PostgreSQL).
const MAX_PARAMETERS: usize = 256;
/// Bound parameters per multi-row statement on SQLite (anonymous; its limit is 32,766).
const MAX_SQLITE_PARAMETERS: usize = 4096;

/// One bound value.
pub(super) enum Cell {
    Text(Option<String>),
    Int(i64),
}

impl Cell {
    fn json(v: &impl Serialize) -> Cell {
        Cell::Text(Some(to_json(v)))
    }
}

/// What a row whose key is already there does.
#[derive(Clone, Copy)]
enum Conflict {
    /// Replaces the other columns.
    Update,
    /// Keeps the row there.
    Ignore,
    /// Is an error (append-only tables).
    Fail,
}

/// Rows gathered for one table, written with as few statements as the databases' limits on
/// bound parameters allow: a batch is thousands of rows, and a statement per row made the
/// commit the slowest part of the path.
#[derive(Default)]
pub(super) struct Rows(Vec<Vec<Cell>>);

impl Rows {
    pub(super) fn push(&mut self, row: Vec<Cell>) {
        self.0.push(row);
    }

    pub(super) async fn upsert(
        &mut self,
        tx: &mut Transaction<'static, Any>,
        table: &str,
        cols: &[&str],
    ) -> Result<(), StoreError> {
        self.insert(tx, table, cols, Conflict::Update).await
    }

    /// Writes and empties the gathered rows; the first column is the key.
    async fn insert(
        &mut self,
        tx: &mut Transaction<'static, Any>,
        table: &str,
        cols: &[&str],
        conflict: Conflict,
    ) -> Result<(), StoreError> {
        let mut rows = std::mem::take(&mut self.0);
        if rows.is_empty() {
            return Ok(());
        }
        if matches!(conflict, Conflict::Update) {
            // PostgreSQL refuses to update one row twice in a statement: the last one wins.
            let mut seen = std::collections::HashSet::new();
            rows.reverse();
            rows.retain(|r| match r.first() {
                Some(Cell::Text(Some(k))) => seen.insert(k.clone()),
                _ => true,
            });
            rows.reverse();
        }
        // SQLite looks a numbered parameter up in a list as long as the statement's, so
        // numbered statements cost the square of their size: SQLite gets anonymous `?`
        // parameters and longer statements, PostgreSQL a few hundred numbered ones.
        let positional = tx.backend_name() == "SQLite";
        let limit = if positional {
            MAX_SQLITE_PARAMETERS
        } else {
            MAX_PARAMETERS
        };
        let per_statement = (limit / cols.len()).max(1);
        let conflict_clause = match conflict {
            Conflict::Update => format!(
                " ON CONFLICT ({}) DO UPDATE SET {}",
                cols[0],
                cols[1..]
                    .iter()
                    .map(|c| format!("{c} = excluded.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Conflict::Ignore => format!(" ON CONFLICT ({}) DO NOTHING", cols[0]),
            Conflict::Fail => String::new(),
        };
        while !rows.is_empty() {
            let rest = rows.split_off(rows.len().min(per_statement));
            let chunk = std::mem::replace(&mut rows, rest);
            let width = cols.len();
            let tuples: Vec<String> = (0..chunk.len())
                .map(|row| {
                    let marks: Vec<String> = (1..=width)
                        .map(|c| mark(positional, row * width + c))
                        .collect();
                    format!("({})", marks.join(", "))
                })
                .collect();
            let sql = format!(
                "INSERT INTO {table} ({}) VALUES {}{conflict_clause}",
                cols.join(", "),
                tuples.join(", ")
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for cell in chunk.into_iter().flatten() {
                q = match cell {
                    Cell::Text(v) => q.bind(v),
                    Cell::Int(v) => q.bind(v),
                };
            }
            q.execute(&mut **tx)
                .await
                .map_err(ctx(format!("writing {table}")))?;
        }
        Ok(())
    }
}

/// The `n`th bound parameter: anonymous on SQLite (see `Rows::insert`), numbered elsewhere.
fn mark(positional: bool, n: usize) -> String {
    if positional {
        "?".into()
    } else {
        format!("${n}")
    }
}

/// Deletes the rows with these keys (and empties the list).
async fn delete_keys(
    tx: &mut Transaction<'static, Any>,
    table: &str,
    key_col: &str,
    keys: &mut Vec<String>,
) -> Result<(), StoreError> {
    let positional = tx.backend_name() == "SQLite";
    for chunk in std::mem::take(keys).chunks(1000) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| mark(positional, i)).collect();
        let mut q = sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE {key_col} IN ({})",
            marks.join(", ")
        )));
        for k in chunk {
            q = q.bind(k.clone());
        }
        q.execute(&mut **tx)
            .await
            .map_err(ctx(format!("deleting from {table}")))?;
    }
    Ok(())
}
