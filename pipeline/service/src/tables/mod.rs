//! The live tables as Arrow record batches, for rule SQL: all of them, or only the rows of
//! the contracts or credits a batch changed (`Selection`, found through `SubjectIndex`).
//! Money is `Decimal128(18, 2)`, times are `Timestamp(µs, UTC)`, business dates are `Date32`.

mod index;

pub use index::{ChangedSubjects, SubjectIndex};

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use std::collections::BTreeMap;

use reconlight_formats::crm::extra::{ColumnType, ExtraTable};
use reconlight_formats::model::{Direction, Row, Value, end_of_business_day};
use reconlight_rules::clock::timestamp_type;
use rust_decimal::Decimal;

use reconlight_core::state::LiveState;

/// Names of the tables rules can read.
pub const TABLES: [&str; 9] = [
    "customers",
    "contracts",
    "handoff_tickets",
    "signatures",
    "installments",
    "bank_transactions",
    "matches",
    "work_items",
    "contract_amount_changes",
];

#[derive(Default)]
struct Columns {
    fields: Vec<Field>,
    arrays: Vec<ArrayRef>,
}

fn money_units(d: Decimal) -> i128 {
    let d = d.round_dp(2);
    d.mantissa() * 10i128.pow(2 - d.scale())
}

fn days(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}

impl Columns {
    fn push(&mut self, name: &str, data_type: DataType, array: ArrayRef) {
        self.fields.push(Field::new(name, data_type, true));
        self.arrays.push(array);
    }
    fn text(&mut self, name: &str, v: Vec<Option<String>>) {
        self.push(name, DataType::Utf8, Arc::new(StringArray::from(v)));
    }
    fn money(&mut self, name: &str, v: Vec<Option<Decimal>>) {
        let a = Decimal128Array::from(
            v.into_iter()
                .map(|d| d.map(money_units))
                .collect::<Vec<_>>(),
        )
        .with_precision_and_scale(18, 2)
        .expect("valid decimal type");
        self.push(name, DataType::Decimal128(18, 2), Arc::new(a));
    }
    fn time(&mut self, name: &str, v: Vec<Option<DateTime<Utc>>>) {
        let a = TimestampMicrosecondArray::from(
            v.into_iter()
                .map(|t| t.map(|t| t.timestamp_micros()))
                .collect::<Vec<_>>(),
        )
        .with_timezone("UTC");
        self.push(name, timestamp_type(), Arc::new(a));
    }
    fn date(&mut self, name: &str, v: Vec<Option<NaiveDate>>) {
        self.push(
            name,
            DataType::Date32,
            Arc::new(Date32Array::from(
                v.into_iter().map(|d| d.map(days)).collect::<Vec<_>>(),
            )),
        );
    }
    fn flag(&mut self, name: &str, v: Vec<bool>) {
        self.push(name, DataType::Boolean, Arc::new(BooleanArray::from(v)));
    }
    fn opt_flag(&mut self, name: &str, v: Vec<Option<bool>>) {
        self.push(name, DataType::Boolean, Arc::new(BooleanArray::from(v)));
    }
    fn int(&mut self, name: &str, v: Vec<Option<i64>>) {
        self.push(name, DataType::Int64, Arc::new(Int64Array::from(v)));
    }
    fn finish(self) -> RecordBatch {
        RecordBatch::try_new(Arc::new(Schema::new(self.fields)), self.arrays)
            .expect("columns of equal length")
    }
}

macro_rules! col {
    ($c:ident . $kind:ident ($name:expr, $rows:expr, |$r:ident| $e:expr)) => {
        $c.$kind($name, $rows.iter().map(|$r| $e).collect())
    };
}

/// Builds one extra CRM table from its typed rows.
fn extra_table(def: &ExtraTable, rows: Option<&BTreeMap<String, Row>>) -> RecordBatch {
    let rows: Vec<&Row> = rows.map(|r| r.values().collect()).unwrap_or_default();
    let mut c = Columns::default();
    for (name, ty) in &def.columns {
        let get = |r: &Row| r.get(name).cloned().unwrap_or(Value::Null);
        match ty {
            ColumnType::Text => c.text(
                name,
                rows.iter()
                    .map(|r| match get(r) {
                        Value::Text(s) => Some(s),
                        _ => None,
                    })
                    .collect(),
            ),
            ColumnType::Int => c.int(
                name,
                rows.iter()
                    .map(|r| match get(r) {
                        Value::Int(i) => Some(i),
                        _ => None,
                    })
                    .collect(),
            ),
            ColumnType::Decimal => c.money(
                name,
                rows.iter()
                    .map(|r| match get(r) {
                        Value::Decimal(d) => Some(d),
                        _ => None,
                    })
                    .collect(),
            ),
            ColumnType::Bool => c.opt_flag(
                name,
                rows.iter()
                    .map(|r| match get(r) {
                        Value::Bool(b) => Some(b),
                        _ => None,
                    })
                    .collect(),
            ),
            ColumnType::Timestamp => c.time(
                name,
                rows.iter()
                    .map(|r| match get(r) {
                        Value::Timestamp(t) => Some(t),
                        _ => None,
                    })
                    .collect(),
            ),
            ColumnType::Date => c.date(
                name,
                rows.iter()
                    .map(|r| match get(r) {
                        Value::Date(d) => Some(d),
                        _ => None,
                    })
                    .collect(),
            ),
        }
    }
    c.finish()
}

/// Which rows the tables hold.
pub enum Selection<'a> {
    All,
    /// The rows of these contracts (and their customers); tables without a contract
    /// number are empty.
    Contracts(&'a std::collections::BTreeSet<String>),
    /// The rows of these credits; tables without a bank reference are empty.
    Credits(&'a std::collections::BTreeSet<String>),
}

/// How the tables a rule reads are cut by subject: contract-keyed tables (with a contract's
/// customer as a dimension), and credit-keyed ones.
pub const PARTITIONINGS: [reconlight_rules::scope::Partitioning<'static>; 2] = [
    reconlight_rules::scope::Partitioning {
        key: "contract_no",
        tables: &[
            "contracts",
            "installments",
            "signatures",
            "handoff_tickets",
            "contract_amount_changes",
            "matches",
            "work_items",
        ],
        dimensions: &[("customers", "customer_id")],
    },
    reconlight_rules::scope::Partitioning {
        key: "bank_ref",
        tables: &["bank_transactions", "matches"],
        dimensions: &[],
    },
];

/// Builds every table. `tolerance` is exposed on installments so rules need not repeat it;
/// `extra` are the configured extra CRM tables.
pub fn build_tables(
    state: &LiveState,
    tolerance: Decimal,
    tz: chrono_tz::Tz,
    extra: &BTreeMap<String, ExtraTable>,
) -> Vec<(String, RecordBatch)> {
    build_selected(
        state,
        tolerance,
        tz,
        extra,
        &Selection::All,
        &SubjectIndex::default(),
    )
}

/// Builds the tables holding the selected rows.
pub fn build_selected(
    state: &LiveState,
    tolerance: Decimal,
    tz: chrono_tz::Tz,
    extra: &BTreeMap<String, ExtraTable>,
    selection: &Selection,
    index: &SubjectIndex,
) -> Vec<(String, RecordBatch)> {
    let selected = index::SelectedRows::new(state, selection, index);
    let mut out = Vec::with_capacity(TABLES.len());

    let rows: Vec<_> = selected.customers.clone();
    let mut c = Columns::default();
    col!(c.text("customer_id", rows, |r| Some(r.customer_id.clone())));
    col!(c.text("name", rows, |r| Some(r.name.clone())));
    col!(c.text("bank_account_no", rows, |r| r.bank_account_no.clone()));
    col!(c.text("region", rows, |r| r.region.clone()));
    out.push(("customers", c.finish()));

    let rows: Vec<_> = selected.contracts.clone();
    let mut c = Columns::default();
    col!(c.text("contract_no", rows, |r| Some(r.contract_no.clone())));
    col!(c.text("customer_id", rows, |r| Some(r.customer_id.clone())));
    col!(c.text("owner_id", rows, |r| r.owner_id.clone()));
    col!(c.text("region", rows, |r| r.region.clone()));
    col!(c.money("amount", rows, |r| Some(r.amount.amount)));
    col!(c.text("currency", rows, |r| Some(r.amount.currency.to_string())));
    col!(c.text("status", rows, |r| Some(r.status.as_str().to_string())));
    col!(c.time("signed_at", rows, |r| r.signed_at));
    col!(c.text("signature_method", rows, |r| r.signature_method.clone()));
    col!(c.time("accepted_at", rows, |r| r.accepted_at));
    col!(c.text("payment_terms", rows, |r| Some(r.payment_terms.clone())));
    col!(c.text("terms_error", rows, |r| {
        state.terms_errors.get(&r.contract_no).cloned()
    }));
    col!(c.time("updated_at", rows, |r| r.updated_at));
    col!(c.text("updated_by", rows, |r| r.updated_by.clone()));
    col!(c.text("updated_ip", rows, |r| r.updated_ip.clone()));
    out.push(("contracts", c.finish()));

    let rows: Vec<_> = selected.tickets.clone();
    let mut c = Columns::default();
    col!(c.text("ticket_id", rows, |r| Some(r.ticket_id.clone())));
    col!(c.text("contract_no", rows, |r| Some(r.contract_no.clone())));
    col!(c.text("department", rows, |r| Some(r.department.clone())));
    col!(c.time("created_at", rows, |r| Some(r.created_at)));
    col!(c.time("acknowledged_at", rows, |r| r.acknowledged_at));
    col!(c.time("completed_at", rows, |r| r.completed_at));
    out.push(("handoff_tickets", c.finish()));

    let rows: Vec<_> = selected.signatures.clone();
    let mut c = Columns::default();
    col!(c.text("event_id", rows, |r| Some(r.event_id.clone())));
    col!(c.text("provider", rows, |r| Some(r.provider.clone())));
    col!(c.text("envelope_id", rows, |r| Some(r.envelope_id.clone())));
    col!(c.text("event", rows, |r| Some(r.event.clone())));
    col!(c.text("status", rows, |r| {
        Some(
            serde_json::to_value(&r.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        )
    }));
    col!(c.text("contract_no", rows, |r| r.contract_no.clone()));
    col!(c.money("amount", rows, |r| r.amount.map(|m| m.amount)));
    col!(c.text("currency", rows, |r| {
        r.amount.map(|m| m.currency.to_string())
    }));
    col!(c.text("signature_type", rows, |r| r.signature_type.clone()));
    col!(c.flag("ca_certified", rows, |r| r.ca_certified));
    col!(c.text("signer", rows, |r| r.signer.clone()));
    col!(c.time("occurred_at", rows, |r| Some(r.occurred_at)));
    out.push(("signatures", c.finish()));

    // Received, and how many credits (and how many of the installment's full amount) paid
    // each installment, from the confirmed allocations to the selected installments.
    let mut per_installment: std::collections::BTreeMap<(String, u32), (i64, i64)> =
        Default::default();
    let mut received: std::collections::BTreeMap<(String, u32), Decimal> = Default::default();
    for a in selected
        .allocations_to_installments
        .iter()
        .filter(|a| a.confirmed)
    {
        let key = (a.contract_no.clone(), a.seq);
        *received.entry(key.clone()).or_default() += a.amount;
        let e = per_installment.entry(key.clone()).or_default();
        e.0 += 1;
        if let Some(i) = state.installments.get(&key)
            && (a.amount - i.amount.amount).abs() <= tolerance
        {
            e.1 += 1;
        }
    }
    let rows: Vec<_> = selected.installments.clone();
    let mut c = Columns::default();
    col!(c.text("contract_no", rows, |r| Some(r.0.0.clone())));
    col!(c.int("seq", rows, |r| Some(r.0.1 as i64)));
    col!(c.text("customer_id", rows, |r| Some(r.1.customer_id.clone())));
    col!(c.text("contract_status", rows, |r| {
        state
            .contracts
            .get(&r.0.0)
            .map(|k| k.status.as_str().to_string())
    }));
    col!(c.money("amount", rows, |r| Some(r.1.amount.amount)));
    col!(c.text("currency", rows, |r| Some(r.1.amount.currency.to_string())));
    col!(c.text("anchor", rows, |r| Some(r.1.anchor.as_str().to_string())));
    col!(c.int("due_days", rows, |r| Some(r.1.due_days)));
    col!(c.date("due_date", rows, |r| r.1.due_date));
    col!(c.money("received", rows, |r| Some(
        received.get(r.0).copied().unwrap_or_default()
    )));
    col!(c.int("credit_count", rows, |r| Some(
        per_installment.get(r.0).map(|p| p.0).unwrap_or(0)
    )));
    col!(c.int("full_credit_count", rows, |r| Some(
        per_installment.get(r.0).map(|p| p.1).unwrap_or(0)
    )));
    col!(c.money("tolerance", rows, |_r| Some(tolerance)));
    out.push(("installments", c.finish()));

    let rows: Vec<_> = selected.bank.clone();
    let matched = |bank_ref: &str, confirmed: bool| -> Decimal {
        state
            .matches
            .get(bank_ref)
            .map(|v| {
                v.iter()
                    .filter(|a| a.confirmed == confirmed)
                    .map(|a| a.amount)
                    .sum()
            })
            .unwrap_or_default()
    };
    let mut c = Columns::default();
    col!(c.text("bank_ref", rows, |r| Some(r.tx.bank_ref.clone())));
    col!(c.text("account", rows, |r| Some(r.tx.account.clone())));
    col!(c.text("direction", rows, |r| Some(match r.tx.direction {
        Direction::Credit => "credit".into(),
        Direction::Debit => "debit".into(),
    })));
    col!(c.money("amount", rows, |r| Some(r.tx.amount.amount)));
    col!(c.text("currency", rows, |r| Some(r.tx.amount.currency.to_string())));
    col!(c.flag("reversal", rows, |r| r.tx.reversal));
    col!(c.text("reversed_by", rows, |r| r.reversed_by.clone()));
    col!(c.text("reverses", rows, |r| r.reverses.clone()));
    col!(c.date("booking_date", rows, |r| Some(r.tx.booking_date)));
    col!(c.date("value_date", rows, |r| r.tx.value_date));
    col!(c.time("booked_at", rows, |r| Some(end_of_business_day(
        r.tx.booking_date,
        tz
    ))));
    col!(c.text("counterparty_name", rows, |r| {
        r.tx.counterparty_name.clone()
    }));
    col!(c.text("counterparty_account", rows, |r| {
        r.tx.counterparty_account.clone()
    }));
    col!(c.text("remittance", rows, |r| Some(r.tx.remittance.clone())));
    col!(c.text("end_to_end_id", rows, |r| r.tx.end_to_end_id.clone()));
    col!(c.text("format", rows, |r| Some(r.tx.format.clone())));
    col!(c.money("matched_amount", rows, |r| Some(matched(
        &r.tx.bank_ref,
        true
    ))));
    col!(c.money("suggested_amount", rows, |r| Some(matched(
        &r.tx.bank_ref,
        false
    ))));
    out.push(("bank_transactions", c.finish()));

    let rows: Vec<_> = selected.allocations.clone();
    let mut c = Columns::default();
    col!(c.text("bank_ref", rows, |r| Some(r.bank_ref.clone())));
    col!(c.text("contract_no", rows, |r| Some(r.contract_no.clone())));
    col!(c.int("seq", rows, |r| Some(r.seq as i64)));
    col!(c.money("amount", rows, |r| Some(r.amount)));
    col!(c.text("rule", rows, |r| Some(r.rule.as_str().to_string())));
    col!(c.int("confidence", rows, |r| Some(r.confidence as i64)));
    col!(c.text("explanation", rows, |r| Some(r.explanation.clone())));
    col!(c.flag("confirmed", rows, |r| r.confirmed));
    out.push(("matches", c.finish()));

    let rows: Vec<_> = selected.work_items.clone();
    let mut c = Columns::default();
    col!(c.text("id", rows, |r| Some(r.id.clone())));
    col!(c.text("kind", rows, |r| Some(r.finding.kind.as_str().to_string())));
    col!(c.text("state", rows, |r| Some(r.state.as_str().to_string())));
    col!(c.text("contract_no", rows, |r| r.finding.contract_no.clone()));
    col!(c.int("installment", rows, |r| {
        r.finding.installment.map(i64::from)
    }));
    col!(c.text("bank_ref", rows, |r| r.finding.bank_ref.clone()));
    col!(c.money("expected", rows, |r| r.finding.expected));
    col!(c.money("received", rows, |r| r.finding.received));
    col!(c.date("first_found", rows, |r| Some(r.first_found)));
    col!(c.date("last_found", rows, |r| Some(r.last_found)));
    col!(c.date("sla_due", rows, |r| Some(r.sla_due)));
    col!(c.text("assignee", rows, |r| r.assignee.clone()));
    out.push(("work_items", c.finish()));

    let rows: Vec<_> = selected.amount_changes.clone();
    let mut c = Columns::default();
    col!(c.text("contract_no", rows, |r| Some(r.key.clone())));
    col!(c.money("before", rows, |r| {
        r.before.as_deref().and_then(|b| b.parse().ok())
    }));
    col!(c.money("after", rows, |r| {
        r.after.as_deref().and_then(|a| a.parse().ok())
    }));
    col!(c.text("operator", rows, |r| r.operator.clone()));
    col!(c.text("ip", rows, |r| r.ip.clone()));
    col!(c.time("changed_at", rows, |r| Some(r.source_time)));
    col!(c.text("source_position", rows, |r| Some(r.source_position.clone())));
    col!(c.int("audit_seq", rows, |r| Some(r.seq as i64)));
    out.push(("contract_amount_changes", c.finish()));

    let mut out: Vec<(String, RecordBatch)> =
        out.into_iter().map(|(n, b)| (n.to_string(), b)).collect();
    for (name, def) in extra {
        let rows = match selection {
            Selection::All => state.extra.get(name),
            _ => None,
        };
        out.push((name.clone(), extra_table(def, rows)));
    }
    out
}
