//! The work queue's index (`work_queue`): one row per work item with what clerks filter and
//! sort by, so a page of a queue of 100,000 items is one indexed query, not a read of every
//! document. The row is written in the same transaction as the item; the contract's
//! customer, owner and region and the credit's payer come from the live state then.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};
use sqlx::{AssertSqlSafe, Row};

use super::write::Cell;
use super::*;
use reconlight_core::state::LiveState;
use reconlight_core::workitems::{WorkItem, WorkItemKind, WorkItemState};

pub(super) const QUEUE_COLUMNS: [&str; 15] = [
    "item_id",
    "state",
    "active",
    "kind",
    "assignee",
    "customer_id",
    "customer",
    "payer",
    "owner",
    "region",
    "currency",
    "at_stake",
    "sla_due",
    "first_found",
    "search",
];

/// The money at stake in hundredths, for sorting and range filters only (pages show the
/// item's decimal amounts).
fn cents(amount: Decimal) -> i64 {
    (amount * Decimal::ONE_HUNDRED)
        .trunc()
        .to_i64()
        .unwrap_or(i64::MAX)
}

/// The queue row of a work item, its context taken from the live state.
pub(super) fn queue_row(w: &WorkItem, s: &LiveState) -> Vec<Cell> {
    let f = &w.finding;
    let contract = f.contract_no.as_ref().and_then(|no| s.contracts.get(no));
    let customer_id = f
        .customer_id
        .clone()
        .or_else(|| contract.map(|c| c.customer_id.clone()));
    let customer = customer_id.as_ref().and_then(|id| s.customers.get(id));
    let region = contract
        .and_then(|c| c.region.clone())
        .or_else(|| customer.and_then(|c| c.region.clone()));
    let credit = f.bank_ref.as_ref().and_then(|r| s.bank.get(r));
    let search = [
        Some(w.id.as_str()),
        f.contract_no.as_deref(),
        f.bank_ref.as_deref(),
        customer_id.as_deref(),
        customer.map(|c| c.name.as_str()),
        contract.and_then(|c| c.owner_id.as_deref()),
        credit.and_then(|b| b.tx.counterparty_name.as_deref()),
        credit.map(|b| b.tx.remittance.as_str()),
        Some(f.summary.as_str()),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join("\u{1f}")
    .to_lowercase();
    vec![
        Cell::Text(Some(w.id.clone())),
        Cell::Text(Some(w.state.as_str().into())),
        Cell::Int(w.state.is_active() as i64),
        Cell::Text(Some(f.kind.as_str().into())),
        Cell::Text(w.assignee.clone()),
        Cell::Text(customer_id),
        Cell::Text(customer.map(|c| c.name.clone())),
        Cell::Text(credit.and_then(|b| b.tx.counterparty_name.clone())),
        Cell::Text(contract.and_then(|c| c.owner_id.clone())),
        Cell::Text(region),
        Cell::Text(f.currency.clone()),
        Cell::Int(cents(f.amount_at_stake())),
        Cell::Text(Some(w.sla_due.to_string())),
        Cell::Text(Some(w.first_found.to_string())),
        Cell::Text(Some(search)),
    ]
}

/// Where an item stands against its SLA on a business date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaState {
    /// Past its due date.
    Overdue,
    /// Due within two days.
    DueSoon,
    /// More than two days left.
    OnTime,
}

impl SlaState {
    pub const ALL: [SlaState; 3] = [SlaState::Overdue, SlaState::DueSoon, SlaState::OnTime];
    /// Days before the due date from which an item is "due soon".
    pub const DUE_SOON_DAYS: i64 = 2;

    pub fn as_str(&self) -> &'static str {
        match self {
            SlaState::Overdue => "overdue",
            SlaState::DueSoon => "due_soon",
            SlaState::OnTime => "on_time",
        }
    }

    pub fn of(sla_due: NaiveDate, today: NaiveDate) -> SlaState {
        if sla_due < today {
            SlaState::Overdue
        } else if sla_due <= today + chrono::Duration::days(Self::DUE_SOON_DAYS) {
            SlaState::DueSoon
        } else {
            SlaState::OnTime
        }
    }
}

/// How a page of the queue is ordered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueSort {
    /// The most money at stake first.
    #[default]
    Money,
    /// The nearest SLA due date first.
    Sla,
    /// The oldest first found first.
    Age,
}

impl QueueSort {
    pub const ALL: [QueueSort; 3] = [QueueSort::Money, QueueSort::Sla, QueueSort::Age];

    pub fn as_str(&self) -> &'static str {
        match self {
            QueueSort::Money => "money",
            QueueSort::Sla => "sla",
            QueueSort::Age => "age",
        }
    }

    /// The ORDER BY columns, of the table or alias `t`.
    fn order_by(&self, t: &str) -> String {
        let cols: &[&str] = match self {
            QueueSort::Money => &["at_stake DESC", "sla_due", "item_id"],
            QueueSort::Sla => &["sla_due", "at_stake DESC", "item_id"],
            QueueSort::Age => &["first_found", "at_stake DESC", "item_id"],
        };
        cols.iter()
            .map(|c| format!("{t}{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Which items a page shows; empty fields do not filter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueFilter {
    pub kind: Option<WorkItemKind>,
    /// Several states (the page's "active" is open and assigned).
    pub states: Vec<WorkItemState>,
    pub assignee: Option<String>,
    /// A customer id, or part of the customer's name.
    pub customer: Option<String>,
    pub owner: Option<String>,
    pub region: Option<String>,
    pub contract_no: Option<String>,
    pub min_amount: Option<Decimal>,
    pub max_amount: Option<Decimal>,
    /// First found at least this many days before `today`.
    pub min_age_days: Option<i64>,
    pub sla: Option<SlaState>,
    /// Words that must all appear in the contract number, customer, payer, remittance,
    /// owner, bank reference or summary.
    pub text: Option<String>,
    /// The business date ages and SLA states are counted from.
    pub today: Option<NaiveDate>,
}

/// One page of the queue.
#[derive(Clone, Debug, Serialize)]
pub struct QueuePage {
    /// Items that pass the filter, on every page.
    pub total: u64,
    /// The money at stake of all of them, per currency.
    pub at_stake: Vec<(String, Decimal)>,
    pub items: Vec<QueueEntry>,
}

/// A work item with the context the queue shows beside it.
#[derive(Clone, Debug, Serialize)]
pub struct QueueEntry {
    #[serde(flatten)]
    pub item: WorkItem,
    /// The customer's name.
    pub customer: Option<String>,
    /// The bank credit's payer, when the item is about a credit.
    pub payer: Option<String>,
    /// The contract's owner (the sales rep).
    pub owner: Option<String>,
    pub region: Option<String>,
}

enum Bind {
    Text(String),
    Int(i64),
}

/// `column` contains the text bound as `param`: a plain substring search (faster than
/// `LIKE`, and nothing in the text is a wildcard).
fn contains(backend: Backend, column: &str, param: &str) -> String {
    match backend {
        Backend::Sqlite => format!("instr({column}, {param}) > 0"),
        Backend::Postgres => format!("strpos({column}, {param}) > 0"),
    }
}

impl QueueFilter {
    fn where_clause(&self, backend: Backend) -> (String, Vec<Bind>) {
        let mut conds: Vec<String> = Vec::new();
        let mut binds = Vec::new();
        let bind = |b: Bind, binds: &mut Vec<Bind>| {
            binds.push(b);
            format!("${}", binds.len())
        };
        if let Some(k) = self.kind {
            let p = bind(Bind::Text(k.as_str().into()), &mut binds);
            conds.push(format!("kind = {p}"));
        }
        let mut states = self.states.clone();
        states.sort_by_key(|s| s.as_str());
        states.dedup();
        if states == [WorkItemState::Assigned, WorkItemState::Open] {
            // Open or assigned: the column the queue's indexes start with.
            conds.push("active = 1".into());
        } else if !states.is_empty() {
            let ps: Vec<String> = states
                .iter()
                .map(|s| bind(Bind::Text(s.as_str().into()), &mut binds))
                .collect();
            conds.push(format!("state IN ({})", ps.join(", ")));
        }
        for (col, value) in [
            ("assignee", &self.assignee),
            ("owner", &self.owner),
            ("region", &self.region),
        ] {
            if let Some(v) = value {
                let p = bind(Bind::Text(v.clone()), &mut binds);
                conds.push(format!("{col} = {p}"));
            }
        }
        if let Some(c) = &self.contract_no {
            let p = bind(Bind::Text(c.clone()), &mut binds);
            conds.push(format!(
                "item_id IN (SELECT item_id FROM work_items WHERE contract_no = {p})"
            ));
        }
        if let Some(c) = &self.customer {
            let id = bind(Bind::Text(c.clone()), &mut binds);
            let name = bind(Bind::Text(c.to_lowercase()), &mut binds);
            conds.push(format!(
                "(customer_id = {id} OR {})",
                contains(backend, "lower(customer)", &name)
            ));
        }
        if let Some(a) = self.min_amount {
            let p = bind(Bind::Int(cents(a)), &mut binds);
            conds.push(format!("at_stake >= {p}"));
        }
        if let Some(a) = self.max_amount {
            let p = bind(Bind::Int(cents(a)), &mut binds);
            conds.push(format!("at_stake <= {p}"));
        }
        let today = self
            .today
            .unwrap_or_else(|| chrono::Utc::now().date_naive());
        if let Some(days) = self.min_age_days {
            let p = bind(
                Bind::Text((today - chrono::Duration::days(days)).to_string()),
                &mut binds,
            );
            conds.push(format!("first_found <= {p}"));
        }
        if let Some(sla) = self.sla {
            let soon = (today + chrono::Duration::days(SlaState::DUE_SOON_DAYS)).to_string();
            match sla {
                SlaState::Overdue => {
                    let p = bind(Bind::Text(today.to_string()), &mut binds);
                    conds.push(format!("sla_due < {p}"));
                }
                SlaState::DueSoon => {
                    let from = bind(Bind::Text(today.to_string()), &mut binds);
                    let to = bind(Bind::Text(soon), &mut binds);
                    conds.push(format!("sla_due >= {from} AND sla_due <= {to}"));
                }
                SlaState::OnTime => {
                    let p = bind(Bind::Text(soon), &mut binds);
                    conds.push(format!("sla_due > {p}"));
                }
            }
        }
        if let Some(text) = &self.text {
            for word in text.split_whitespace() {
                let p = bind(Bind::Text(word.to_lowercase()), &mut binds);
                conds.push(contains(backend, "search", &p));
            }
        }
        let clause = if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        };
        (clause, binds)
    }
}

fn bound<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    binds: &[Bind],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for b in binds {
        q = match b {
            Bind::Text(t) => q.bind(t.clone()),
            Bind::Int(i) => q.bind(*i),
        };
    }
    q
}

impl Store {
    /// One page of the work queue: the items that pass `filter`, in `sort` order.
    pub async fn queue_page(
        &self,
        filter: &QueueFilter,
        sort: QueueSort,
        offset: u64,
        limit: u64,
    ) -> Result<QueuePage, StoreError> {
        let (clause, binds) = filter.where_clause(self.backend);
        let sums = bound(
            sqlx::query(AssertSqlSafe(format!(
                "SELECT COALESCE(currency, ''), COUNT(*), CAST(SUM(at_stake) AS BIGINT) FROM work_queue{clause} GROUP BY currency ORDER BY currency"
            ))),
            &binds,
        )
        .fetch_all(&self.pool)
        .await
        .map_err(ctx("counting the work queue"))?;
        let mut total = 0u64;
        let mut at_stake = Vec::new();
        for r in &sums {
            let currency: String = r.try_get(0).map_err(ctx("counting the work queue"))?;
            let n: i64 = r.try_get(1).map_err(ctx("counting the work queue"))?;
            let sum: i64 = r.try_get(2).map_err(ctx("counting the work queue"))?;
            total += n as u64;
            at_stake.push((currency, Decimal::new(sum, 2)));
        }
        let sql = format!(
            // The page's ids come from the order's index alone (skipping `offset` rows
            // reads no table row); the documents and the context are joined to 50 of them.
            "SELECT w.doc, q.customer, q.owner, q.region, q.payer FROM (SELECT item_id FROM work_queue{clause} ORDER BY {inner} LIMIT {limit} OFFSET {offset}) p \
             JOIN work_queue q ON q.item_id = p.item_id JOIN work_items w ON w.item_id = p.item_id ORDER BY {outer}",
            inner = sort.order_by(""),
            outer = sort.order_by("q."),
            // Callers bound it: the API to 1,000, exports to their own limit.
            limit = limit,
        );
        let rows = bound(sqlx::query(AssertSqlSafe(sql)), &binds)
            .fetch_all(&self.pool)
            .await
            .map_err(ctx("reading a page of the work queue"))?;
        let items = rows
            .iter()
            .map(|r| {
                let doc: String = r.try_get(0).map_err(ctx("reading the work queue"))?;
                Ok(QueueEntry {
                    item: serde_json::from_str(&doc).map_err(ctx("reading a work item"))?,
                    customer: r.try_get(1).map_err(ctx("reading the work queue"))?,
                    owner: r.try_get(2).map_err(ctx("reading the work queue"))?,
                    region: r.try_get(3).map_err(ctx("reading the work queue"))?,
                    payer: r.try_get(4).map_err(ctx("reading the work queue"))?,
                })
            })
            .collect::<Result<Vec<QueueEntry>, StoreError>>()?;
        Ok(QueuePage {
            total,
            at_stake,
            items,
        })
    }

    /// Open and assigned items per kind and currency: (kind, currency, count, at stake).
    pub async fn queue_by_kind(&self) -> Result<Vec<(String, String, u64, Decimal)>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, COALESCE(currency, ''), COUNT(*), CAST(SUM(at_stake) AS BIGINT) FROM work_queue \
             WHERE active = 1 GROUP BY kind, currency ORDER BY kind, currency",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(ctx("counting the work queue"))?;
        rows.iter()
            .map(|r| {
                let n: i64 = r.try_get(2).map_err(ctx("counting the work queue"))?;
                let sum: i64 = r.try_get(3).map_err(ctx("counting the work queue"))?;
                Ok((
                    r.try_get(0).map_err(ctx("counting the work queue"))?,
                    r.try_get(1).map_err(ctx("counting the work queue"))?,
                    n as u64,
                    Decimal::new(sum, 2),
                ))
            })
            .collect()
    }

    /// The open or assigned item of a bank credit (an unmatched receipt or a suggested
    /// match): where a clerk's match of that credit is made.
    pub async fn active_credit_item(&self, bank_ref: &str) -> Result<Option<WorkItem>, StoreError> {
        let row = sqlx::query(
            "SELECT doc FROM work_items WHERE bank_ref = $1 AND kind IN ('unmatched_receipt', 'suggested_match') AND state IN ('open', 'assigned') ORDER BY item_id LIMIT 1",
        )
        .bind(bank_ref.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(ctx("reading a credit's work item"))?;
        row.map(|r| {
            let doc: String = r.try_get(0).map_err(ctx("reading a credit's work item"))?;
            serde_json::from_str(&doc).map_err(ctx("reading a work item"))
        })
        .transpose()
    }

    /// Writes the queue rows of items that have none (a store from before the index).
    pub async fn index_missing_queue_rows(&self, state: &LiveState) -> Result<usize, StoreError> {
        let indexed: Vec<String> = sqlx::query("SELECT item_id FROM work_queue")
            .fetch_all(&self.pool)
            .await
            .map_err(ctx("reading the work queue"))?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()
            .map_err(ctx("reading the work queue"))?;
        let indexed: std::collections::HashSet<String> = indexed.into_iter().collect();
        let missing: Vec<&WorkItem> = state
            .work_items
            .values()
            .filter(|w| !indexed.contains(&w.id))
            .collect();
        if missing.is_empty() {
            return Ok(0);
        }
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(ctx("starting a transaction"))?;
        let mut rows = write::Rows::default();
        for w in &missing {
            rows.push(queue_row(w, state));
        }
        rows.upsert(&mut tx, "work_queue", &QUEUE_COLUMNS).await?;
        tx.commit().await.map_err(ctx("indexing the work queue"))?;
        Ok(missing.len())
    }
}
