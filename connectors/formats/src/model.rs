//! The canonical records every source is decoded into. Money is decimal with its currency;
//! times are UTC.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// An ISO 4217 currency code: three upper-case ASCII letters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

impl Currency {
    /// Renminbi, the default contract currency.
    pub const CNY: Currency = Currency(*b"CNY");

    /// The code as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("currency codes are ASCII")
    }
}

impl FromStr for Currency {
    type Err = crate::error::UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let b = t.as_bytes();
        if b.len() == 3 && b.iter().all(|c| c.is_ascii_alphabetic()) {
            Ok(Currency([
                b[0].to_ascii_uppercase(),
                b[1].to_ascii_uppercase(),
                b[2].to_ascii_uppercase(),
            ]))
        } else {
            Err(crate::error::UnknownName::new(
                "currency",
                t,
                "a three-letter ISO 4217 code",
            ))
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl schemars::JsonSchema for Currency {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Currency".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "description": "an ISO 4217 code"})
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An amount of money in one currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub amount: Decimal,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: Decimal, currency: Currency) -> Self {
        Money { amount, currency }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.currency, self.amount)
    }
}

/// A change-data-capture operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOp {
    Create,
    Update,
    Delete,
    /// A snapshot read: the row as it stood when the snapshot was taken.
    Read,
    Truncate,
}

/// A column value of a CRM row, typed by the change event's schema where it had one.
/// Serialized with its type (`{"type": "timestamp", "value": ...}`) so a stored row reads
/// back exactly: untagged, a timestamp would come back as text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Decimal(Decimal),
    Text(String),
    Timestamp(DateTime<Utc>),
    Date(NaiveDate),
    Time(NaiveTime),
    Bytes(Vec<u8>),
    Json(serde_json::Value),
}

/// One row of a CRM table, by column name.
pub type Row = BTreeMap<String, Value>;

/// A change to one row of a CRM table, as captured from the CRM database.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RowChange {
    /// `schema.table`, e.g. `crm.contracts`.
    pub table: String,
    pub op: ChangeOp,
    pub before: Option<Row>,
    pub after: Option<Row>,
    /// When the change happened in the CRM database.
    pub source_time: DateTime<Utc>,
}

/// Lifecycle of a contract as the CRM states it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContractStatus {
    Draft,
    PendingSignature,
    Signed,
    Cancelled,
}

impl ContractStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            ContractStatus::Draft => "draft",
            ContractStatus::PendingSignature => "pending_signature",
            ContractStatus::Signed => "signed",
            ContractStatus::Cancelled => "cancelled",
        }
    }
}

impl FromStr for ContractStatus {
    type Err = crate::error::UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "draft" => Ok(ContractStatus::Draft),
            "pending_signature" => Ok(ContractStatus::PendingSignature),
            "signed" => Ok(ContractStatus::Signed),
            "cancelled" | "canceled" => Ok(ContractStatus::Cancelled),
            other => Err(crate::error::UnknownName::new(
                "contract status",
                other,
                "draft, pending_signature, signed, cancelled",
            )),
        }
    }
}

/// A customer as the CRM states it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub customer_id: String,
    pub name: String,
    pub bank_account_no: Option<String>,
    pub region: Option<String>,
}

/// A contract as the CRM states it (the sales side of the truth).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contract {
    pub contract_no: String,
    pub customer_id: String,
    pub owner_id: Option<String>,
    pub region: Option<String>,
    pub amount: Money,
    pub status: ContractStatus,
    pub signed_at: Option<DateTime<Utc>>,
    /// How sales says it was signed: `e_sign`, `wet_ink`, `email`.
    pub signature_method: Option<String>,
    /// Customer acceptance (the anchor of "after acceptance" installments).
    pub accepted_at: Option<DateTime<Utc>>,
    /// The payment terms as stored in the CRM (structured JSON or free text).
    pub payment_terms: String,
    pub updated_at: Option<DateTime<Utc>>,
    pub updated_by: Option<String>,
    pub updated_ip: Option<String>,
}

/// A cross-department handoff work order raised when a contract is signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffTicket {
    pub ticket_id: String,
    pub contract_no: String,
    pub department: String,
    pub created_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// What happened to an e-signature envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureStatus {
    Sent,
    Delivered,
    Completed,
    Declined,
    Voided,
    /// One recipient signed; the envelope is not complete yet.
    RecipientSigned,
    Other,
}

impl SignatureStatus {
    /// The name rules and the store see (the serialized form).
    pub fn as_str(&self) -> &'static str {
        match self {
            SignatureStatus::Sent => "sent",
            SignatureStatus::Delivered => "delivered",
            SignatureStatus::Completed => "completed",
            SignatureStatus::Declined => "declined",
            SignatureStatus::Voided => "voided",
            SignatureStatus::RecipientSigned => "recipient_signed",
            SignatureStatus::Other => "other",
        }
    }
}

/// An e-signature platform's event about a contract's envelope (the finance side of "signed").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignatureEvent {
    /// A stable id for this event, so a replayed callback changes nothing.
    pub event_id: String,
    pub provider: String,
    pub envelope_id: String,
    /// The provider's own event name, e.g. `envelope-completed`.
    pub event: String,
    pub status: SignatureStatus,
    pub contract_no: Option<String>,
    pub amount: Option<Money>,
    /// `ca_digital`, `electronic`, `wet_ink_scan`, ...
    pub signature_type: Option<String>,
    /// Completed with a CA-certified digital signature: the only "signed" finance accepts.
    pub ca_certified: bool,
    pub signer: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

/// Credit (money in) or debit (money out), from the account holder's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Credit,
    Debit,
}

/// One booked bank transaction (one payment; a batch entry yields one per transaction).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BankTransaction {
    /// The bank's unique reference (camt `AcctSvcrRef`, CSV reference column): the dedup key.
    pub bank_ref: String,
    /// The statement's account (IBAN or domestic number).
    pub account: String,
    pub direction: Direction,
    /// Always positive; `direction` carries the sign.
    pub amount: Money,
    /// The entry reverses an earlier one (a returned or recalled payment).
    pub reversal: bool,
    pub booking_date: NaiveDate,
    pub value_date: Option<NaiveDate>,
    /// The other party: the payer of a credit, the payee of a debit.
    pub counterparty_name: Option<String>,
    pub counterparty_account: Option<String>,
    /// Unstructured and structured remittance information, joined by ` | `.
    pub remittance: String,
    pub end_to_end_id: Option<String>,
    /// The format it came from, e.g. `camt.053.001.08`.
    pub format: String,
}

/// A canonical record decoded from any source.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    Crm(RowChange),
    Signature(SignatureEvent),
    Bank(BankTransaction),
}

impl Record {
    /// The event time the pipeline clock advances to when this record is applied.
    pub fn event_time(&self, business_tz: chrono_tz::Tz) -> DateTime<Utc> {
        match self {
            Record::Crm(c) => c.source_time,
            Record::Signature(s) => s.occurred_at,
            Record::Bank(b) => end_of_business_day(b.booking_date, business_tz),
        }
    }
}

/// The last second of a business day, in UTC: a statement line is known once the day closes.
pub fn end_of_business_day(date: NaiveDate, tz: chrono_tz::Tz) -> DateTime<Utc> {
    use chrono::TimeZone;
    let local = date.and_hms_opt(23, 59, 59).expect("valid time");
    tz.from_local_datetime(&local)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| local.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_status_names_are_the_serialized_ones() {
        use SignatureStatus::*;
        for s in [
            Sent,
            Delivered,
            Completed,
            Declined,
            Voided,
            RecipientSigned,
            Other,
        ] {
            assert_eq!(serde_json::to_value(&s).unwrap(), s.as_str());
        }
    }
}
