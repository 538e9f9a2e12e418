//! The audit trail: every change of a CRM row, field by field, with who changed it, from
//! where and when. Entries are append-only and hash-chained, so tampering is detectable.

use chrono::{DateTime, Utc};
use reconlight_connectors::model::{Contract, Customer, HandoffTicket};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One field of one CRM row changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    /// `contracts`, `customers`, `handoff_tickets`.
    pub table: String,
    /// The row's primary key.
    pub key: String,
    /// The contract the row belongs to, when there is one.
    pub contract_no: Option<String>,
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
    /// The CRM user who made the change (`updated_by`).
    pub operator: Option<String>,
    /// Where the change came from (`updated_ip`).
    pub ip: Option<String>,
    pub source_time: DateTime<Utc>,
    /// The input position of the change event.
    pub source_position: String,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditEntry {
    /// The hash of this entry's content chained to the previous entry's hash.
    pub fn compute_hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.prev_hash.as_bytes());
        for part in [
            self.seq.to_string(),
            self.table.clone(),
            self.key.clone(),
            self.contract_no.clone().unwrap_or_default(),
            self.field.clone(),
            self.before.clone().unwrap_or_else(|| "\u{0}".into()),
            self.after.clone().unwrap_or_else(|| "\u{0}".into()),
            self.operator.clone().unwrap_or_default(),
            self.ip.clone().unwrap_or_default(),
            self.source_time.to_rfc3339(),
            self.source_position.clone(),
        ] {
            h.update([0x1f]);
            h.update(part.as_bytes());
        }
        hex::encode(h.finalize())
    }
}

/// The end of the chain: the next sequence number and the last hash.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    pub next_seq: u64,
    pub last_hash: String,
}

/// A row's fields as text, for field-by-field comparison.
pub trait AuditedRow {
    fn table(&self) -> String;
    fn key(&self) -> String;
    fn contract_no(&self) -> Option<String>;
    fn fields(&self) -> Vec<(String, Option<String>)>;
    fn operator(&self) -> (Option<String>, Option<String>) {
        (None, None)
    }
}

fn ts(t: &Option<DateTime<Utc>>) -> Option<String> {
    t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

impl AuditedRow for Contract {
    fn table(&self) -> String {
        "contracts".into()
    }
    fn key(&self) -> String {
        self.contract_no.clone()
    }
    fn contract_no(&self) -> Option<String> {
        Some(self.contract_no.clone())
    }
    fn fields(&self) -> Vec<(String, Option<String>)> {
        vec![
            ("customer_id".into(), Some(self.customer_id.clone())),
            ("owner_id".into(), self.owner_id.clone()),
            ("region".into(), self.region.clone()),
            ("amount".into(), Some(self.amount.amount.to_string())),
            ("currency".into(), Some(self.amount.currency.to_string())),
            ("status".into(), Some(self.status.as_str().to_string())),
            ("signed_at".into(), ts(&self.signed_at)),
            ("signature_method".into(), self.signature_method.clone()),
            ("accepted_at".into(), ts(&self.accepted_at)),
            (
                "payment_terms".into(),
                Some(self.payment_terms.clone()).filter(|t| !t.is_empty()),
            ),
        ]
    }
    fn operator(&self) -> (Option<String>, Option<String>) {
        (self.updated_by.clone(), self.updated_ip.clone())
    }
}

impl AuditedRow for Customer {
    fn table(&self) -> String {
        "customers".into()
    }
    fn key(&self) -> String {
        self.customer_id.clone()
    }
    fn contract_no(&self) -> Option<String> {
        None
    }
    fn fields(&self) -> Vec<(String, Option<String>)> {
        vec![
            ("name".into(), Some(self.name.clone())),
            ("bank_account_no".into(), self.bank_account_no.clone()),
            ("region".into(), self.region.clone()),
        ]
    }
}

impl AuditedRow for HandoffTicket {
    fn table(&self) -> String {
        "handoff_tickets".into()
    }
    fn key(&self) -> String {
        self.ticket_id.clone()
    }
    fn contract_no(&self) -> Option<String> {
        Some(self.contract_no.clone())
    }
    fn fields(&self) -> Vec<(String, Option<String>)> {
        vec![
            ("contract_no".into(), Some(self.contract_no.clone())),
            ("department".into(), Some(self.department.clone())),
            ("created_at".into(), Some(self.created_at.to_rfc3339())),
            ("acknowledged_at".into(), ts(&self.acknowledged_at)),
            ("completed_at".into(), ts(&self.completed_at)),
        ]
    }
}

/// A row of an extra CRM table, for the audit trail.
pub struct ExtraRow<'a> {
    pub table: &'a str,
    pub key: &'a str,
    pub row: &'a reconlight_connectors::model::Row,
}

impl AuditedRow for ExtraRow<'_> {
    fn table(&self) -> String {
        self.table.to_string()
    }
    fn key(&self) -> String {
        self.key.to_string()
    }
    fn contract_no(&self) -> Option<String> {
        match self.row.get("contract_no") {
            Some(reconlight_connectors::model::Value::Text(s)) => Some(s.clone()),
            _ => None,
        }
    }
    fn fields(&self) -> Vec<(String, Option<String>)> {
        self.row
            .iter()
            .map(|(k, v)| (k.clone(), value_text(v)))
            .collect()
    }
    fn operator(&self) -> (Option<String>, Option<String>) {
        let text = |c: &str| self.row.get(c).and_then(value_text);
        (
            text("updated_by").or_else(|| text("created_by")),
            text("updated_ip"),
        )
    }
}

fn value_text(v: &reconlight_connectors::model::Value) -> Option<String> {
    use reconlight_connectors::model::Value;
    match v {
        Value::Null => None,
        Value::Text(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Decimal(d) => Some(d.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Timestamp(t) => Some(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        Value::Date(d) => Some(d.to_string()),
        Value::Time(t) => Some(t.to_string()),
        Value::Json(j) => Some(j.to_string()),
        Value::Bytes(b) => Some(hex::encode(b)),
    }
}

/// Appends one entry per changed field between `before` and `after` (either may be absent:
/// a create or a delete).
pub fn record_change<R: AuditedRow>(
    head: &mut AuditHead,
    before: Option<&R>,
    after: Option<&R>,
    source_time: DateTime<Utc>,
    position: &str,
    out: &mut Vec<AuditEntry>,
) {
    let Some(any) = after.or(before) else { return };
    let old = before.map(|r| r.fields()).unwrap_or_default();
    let new = after.map(|r| r.fields()).unwrap_or_default();
    let (operator, ip) = after.or(before).map(|r| r.operator()).unwrap_or_default();
    let names: Vec<String> = any.fields().into_iter().map(|(n, _)| n).collect();
    let value = |set: &[(String, Option<String>)], name: &str| {
        set.iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.clone())
    };
    for name in names {
        let (b, a) = (value(&old, &name), value(&new, &name));
        if b == a {
            continue;
        }
        let mut entry = AuditEntry {
            seq: head.next_seq,
            table: any.table(),
            key: any.key(),
            contract_no: any.contract_no(),
            field: name,
            before: b,
            after: a,
            operator: operator.clone(),
            ip: ip.clone(),
            source_time,
            source_position: position.to_string(),
            prev_hash: head.last_hash.clone(),
            hash: String::new(),
        };
        entry.hash = entry.compute_hash();
        head.next_seq += 1;
        head.last_hash = entry.hash.clone();
        out.push(entry);
    }
}

/// Checks a chain in sequence order; returns the first broken entry's sequence number.
pub fn verify_chain(entries: &[AuditEntry]) -> Result<usize, String> {
    let mut prev = String::new();
    for (i, e) in entries.iter().enumerate() {
        if e.seq != i as u64 {
            return Err(format!(
                "entry {}: expected sequence number {i} (an entry is missing)",
                e.seq
            ));
        }
        if e.prev_hash != prev {
            return Err(format!(
                "entry {}: does not follow the previous entry's hash",
                e.seq
            ));
        }
        if e.compute_hash() != e.hash {
            return Err(format!(
                "entry {}: its content does not match its hash (altered)",
                e.seq
            ));
        }
        prev = e.hash.clone();
    }
    Ok(entries.len())
}
