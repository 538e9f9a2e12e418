//! The trail as a database stores it: each entry under the columns it is found by, with a
//! document holding the rest of its content.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::AuditEntry;

/// The columns an entry is stored under: what it is found by, and its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditColumns {
    pub seq: i64,
    pub contract_no: Option<String>,
    pub table: String,
    pub key: String,
    pub field: String,
    pub hash: String,
}

/// An entry as stored: its columns, and the entry read from them and its document.
pub struct StoredEntry {
    pub columns: AuditColumns,
    pub entry: AuditEntry,
}

/// The part of an entry its document holds (schema 7 on): what the columns do not. The
/// previous entry's hash is that entry's own column.
#[derive(Serialize)]
struct ContentOut<'a> {
    before: &'a Option<String>,
    after: &'a Option<String>,
    operator: &'a Option<String>,
    ip: &'a Option<String>,
    source_time: &'a DateTime<Utc>,
    source_position: &'a str,
    keyed: bool,
}

/// A stored document of either form: documents written before schema 7 repeat the
/// columns and the previous hash, and are read as written so that `verify_chain` compares
/// them with the columns.
#[derive(Deserialize)]
struct ContentIn {
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default)]
    table: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    contract_no: Option<String>,
    #[serde(default)]
    field: Option<String>,
    before: Option<String>,
    after: Option<String>,
    operator: Option<String>,
    ip: Option<String>,
    source_time: DateTime<Utc>,
    source_position: String,
    #[serde(default)]
    prev_hash: Option<String>,
    #[serde(default)]
    hash: Option<String>,
    #[serde(default)]
    keyed: bool,
}

impl AuditEntry {
    /// The document stored beside the entry's columns: its content without them (a third
    /// of the size of the whole entry).
    pub fn stored_doc(&self) -> String {
        serde_json::to_string(&ContentOut {
            before: &self.before,
            after: &self.after,
            operator: &self.operator,
            ip: &self.ip,
            source_time: &self.source_time,
            source_position: &self.source_position,
            keyed: self.keyed,
        })
        .expect("an audit entry serializes")
    }
}

impl StoredEntry {
    /// An entry read back from its columns, its document and the hash of the entry stored
    /// before it (`""` for the first).
    pub fn read(
        columns: AuditColumns,
        prev_hash: &str,
        doc: &str,
    ) -> Result<StoredEntry, serde_json::Error> {
        let c: ContentIn = serde_json::from_str(doc)?;
        // Written before schema 7, the document is the whole entry and is read as it is;
        // from then on the columns and the entry before supply what it leaves out.
        let whole = c.seq.is_some();
        let own = |doc: Option<String>, column: &str| match whole {
            true => doc.unwrap_or_default(),
            false => column.to_string(),
        };
        let entry = AuditEntry {
            // A negative sequence number is no entry's: the chain check names it.
            seq: c
                .seq
                .unwrap_or_else(|| u64::try_from(columns.seq).unwrap_or(u64::MAX)),
            table: own(c.table, &columns.table),
            key: own(c.key, &columns.key),
            contract_no: if whole {
                c.contract_no
            } else {
                columns.contract_no.clone()
            },
            field: own(c.field, &columns.field),
            before: c.before,
            after: c.after,
            operator: c.operator,
            ip: c.ip,
            source_time: c.source_time,
            source_position: c.source_position,
            prev_hash: own(c.prev_hash, prev_hash),
            hash: own(c.hash, &columns.hash),
            keyed: c.keyed,
        };
        Ok(StoredEntry { columns, entry })
    }
}
