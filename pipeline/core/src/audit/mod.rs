//! The audit trail: every change of a CRM row, field by field, with who changed it, from
//! where and when. Entries are append-only and chained with an HMAC keyed by a secret kept
//! outside the database: whoever can write the database cannot recompute the chain, delete
//! its end unnoticed (the head is keyed too, and witnessed in a file beside the key), or
//! move an entry to another contract.

use std::path::Path;

mod stored;
pub use stored::{AuditColumns, StoredEntry};

use crate::error::{AuditKeyError, ChainBroken};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use reconlight_formats::model::{Contract, Customer, HandoffTicket};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The secret the chain is keyed with.
#[derive(Clone)]
pub struct AuditKey(Arc<Vec<u8>>);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(..)")
    }
}

impl PartialEq for AuditKey {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl Eq for AuditKey {}

impl AuditKey {
    pub fn new(bytes: Vec<u8>) -> AuditKey {
        AuditKey(Arc::new(bytes))
    }

    /// The key from `RECONLIGHT_AUDIT_KEY` (hex), else from `file`, which is created with
    /// 32 random bytes (mode 0600) the first time.
    pub fn load_or_create(file: &Path) -> Result<AuditKey, AuditKeyError> {
        if let Ok(hex_key) = std::env::var("RECONLIGHT_AUDIT_KEY") {
            let bytes = hex::decode(hex_key.trim()).map_err(|e| {
                AuditKeyError::Invalid(format!("RECONLIGHT_AUDIT_KEY is not hex: {e}"))
            })?;
            if bytes.len() < 16 {
                return Err(AuditKeyError::Invalid(
                    "RECONLIGHT_AUDIT_KEY must hold at least 16 bytes".into(),
                ));
            }
            return Ok(AuditKey::new(bytes));
        }
        match std::fs::read_to_string(file) {
            Ok(text) => hex::decode(text.trim()).map(AuditKey::new).map_err(|e| {
                AuditKeyError::Invalid(format!("audit key {}: not hex: {e}", file.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = vec![0u8; 32];
                use std::io::Read;
                std::fs::File::open("/dev/urandom")
                    .and_then(|mut r| r.read_exact(&mut bytes))
                    .map_err(|source| AuditKeyError::Io {
                        doing: "read random bytes for an audit key from",
                        path: "/dev/urandom".into(),
                        source,
                    })?;
                if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|source| AuditKeyError::Io {
                        doing: "create",
                        path: dir.to_path_buf(),
                        source,
                    })?;
                }
                write_private(file, hex::encode(&bytes).as_bytes()).map_err(|source| {
                    AuditKeyError::Io {
                        doing: "write the audit key",
                        path: file.to_path_buf(),
                        source,
                    }
                })?;
                tracing::info!(
                    "created the audit key {}: keep it outside the database's backups",
                    file.display()
                );
                Ok(AuditKey::new(bytes))
            }
            Err(source) => Err(AuditKeyError::Io {
                doing: "read the audit key",
                path: file.to_path_buf(),
                source,
            }),
        }
    }

    fn mac(&self, parts: &[&[u8]]) -> String {
        let mut m = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        for p in parts {
            m.update(p);
            m.update(&[0x1f]);
        }
        hex::encode(m.finalize().into_bytes())
    }

    /// The head's MAC: binds the entry count to the last hash.
    pub fn head_mac(&self, head: &AuditHead) -> String {
        self.mac(&[
            b"head",
            head.next_seq.to_string().as_bytes(),
            head.last_hash.as_bytes(),
        ])
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(tmp, path)
}

/// Writes the head beside the key, where a database writer cannot roll it back.
pub fn write_witness(path: &Path, head: &AuditHead) -> Result<(), AuditKeyError> {
    let doc = serde_json::to_string(head).expect("the head serializes");
    write_private(path, doc.as_bytes()).map_err(|source| AuditKeyError::Io {
        doing: "write the audit head",
        path: path.to_path_buf(),
        source,
    })
}

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
    /// Chained with the HMAC key (entries written before keys existed are plain SHA-256).
    #[serde(default)]
    pub keyed: bool,
}

impl AuditEntry {
    fn parts(&self) -> [String; 11] {
        [
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
        ]
    }

    /// This entry's content chained to the previous entry's hash: an HMAC with `key` for a
    /// keyed entry, SHA-256 for the entries written before keys existed.
    pub fn compute_hash(&self, key: Option<&AuditKey>) -> Option<String> {
        let parts = self.parts();
        if self.keyed {
            let key = key?;
            let mut all: Vec<&[u8]> = vec![self.prev_hash.as_bytes()];
            all.extend(parts.iter().map(|p| p.as_bytes()));
            return Some(key.mac(&all));
        }
        let mut h = Sha256::new();
        h.update(self.prev_hash.as_bytes());
        for part in parts {
            h.update([0x1f]);
            h.update(part.as_bytes());
        }
        Some(hex::encode(h.finalize()))
    }
}

/// The end of the chain: the next sequence number and the last hash.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    pub next_seq: u64,
    pub last_hash: String,
    /// The head's MAC, so that it cannot be moved back over deleted entries.
    #[serde(default)]
    pub mac: Option<String>,
    /// The key new entries are chained with (never stored).
    #[serde(skip)]
    pub key: Option<AuditKey>,
}

impl AuditHead {
    /// The head as stored: with its MAC when keyed.
    pub fn sealed(&self) -> AuditHead {
        let mut head = self.clone();
        head.mac = self.key.as_ref().map(|k| k.head_mac(self));
        head.key = None;
        head
    }
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
    pub row: &'a reconlight_formats::model::Row,
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
            Some(reconlight_formats::model::Value::Text(s)) => Some(s.clone()),
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

fn value_text(v: &reconlight_formats::model::Value) -> Option<String> {
    use reconlight_formats::model::Value;
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
            keyed: head.key.is_some(),
        };
        entry.hash = entry
            .compute_hash(head.key.as_ref())
            .expect("a keyed entry has its key");
        head.next_seq += 1;
        head.last_hash = entry.hash.clone();
        out.push(entry);
    }
}

/// What the trail's end says about itself, outside the chain.
pub struct HeadEvidence<'a> {
    /// The head stored in the database.
    pub stored: Option<&'a AuditHead>,
    /// The witness file's head, when there is one.
    pub witness: Option<&'a AuditHead>,
}

/// Checks the trail: every entry in sequence from 0, chained to the one before, its hash
/// recomputed (with the key for keyed entries), its columns equal to its content, no
/// unkeyed entry after a keyed one, and the end equal to the stored head (whose MAC holds)
/// and to the witness. Returns the number of entries.
pub fn verify_chain(
    entries: &[StoredEntry],
    key: Option<&AuditKey>,
    head: HeadEvidence,
) -> Result<usize, ChainBroken> {
    let mut prev = String::new();
    let mut keyed_seen = false;
    for (i, stored) in entries.iter().enumerate() {
        let e = &stored.entry;
        if e.seq != i as u64 {
            return Err(ChainBroken::Entry {
                seq: e.seq,
                why: format!("expected sequence number {i} (an entry is missing)"),
            });
        }
        let stored = &stored.columns;
        if stored.seq != e.seq as i64
            || stored.contract_no != e.contract_no
            || stored.table != e.table
            || stored.key != e.key
            || stored.field != e.field
            || stored.hash != e.hash
        {
            return Err(ChainBroken::Entry {
                seq: e.seq,
                why: format!(
                    "its columns (contract {:?}, table {}, key {}, field {}) differ from its content (contract {:?}, table {}, key {}, field {}): altered",
                    stored.contract_no,
                    stored.table,
                    stored.key,
                    stored.field,
                    e.contract_no,
                    e.table,
                    e.key,
                    e.field
                ),
            });
        }
        if e.keyed {
            keyed_seen = true;
        } else if keyed_seen {
            return Err(ChainBroken::Entry {
                seq: e.seq,
                why: "unkeyed after keyed entries (written without the key)".into(),
            });
        }
        if e.prev_hash != prev {
            return Err(ChainBroken::Entry {
                seq: e.seq,
                why: "does not follow the previous entry's hash".into(),
            });
        }
        match e.compute_hash(key) {
            None => {
                return Err(ChainBroken::Entry {
                    seq: e.seq,
                    why: "keyed, and no audit key was given to check it".into(),
                });
            }
            Some(h) if h != e.hash => {
                return Err(ChainBroken::Entry {
                    seq: e.seq,
                    why: "its content does not match its hash (altered)".into(),
                });
            }
            Some(_) => {}
        }
        prev = e.hash.clone();
    }
    let end = (entries.len() as u64, prev);
    if let Some(h) = head.stored {
        if (h.next_seq, h.last_hash.clone()) != end {
            return Err(ChainBroken::End(format!(
                "the trail ends at entry {} but its head says {} entries: entries were removed",
                end.0, h.next_seq
            )));
        }
        if let (Some(k), true) = (key, keyed_seen) {
            match &h.mac {
                Some(mac) if *mac == k.head_mac(h) => {}
                _ => {
                    return Err(ChainBroken::End(
                        "the trail's head does not carry a valid MAC: altered".into(),
                    ));
                }
            }
        }
    } else if !entries.is_empty() {
        return Err(ChainBroken::End("the trail has entries but no head".into()));
    }
    // The witness is written after each commit, so it may lag a crash behind; but the
    // chain must pass through it and never end before it.
    if let Some(w) = head.witness {
        let passes = match w.next_seq {
            0 => true,
            n if n > end.0 => false,
            n => entries[n as usize - 1].entry.hash == w.last_hash,
        };
        if !passes {
            return Err(ChainBroken::End(format!(
                "the trail ends at entry {} but the head witnessed outside the database says {} (hash {}): entries were removed or rewritten",
                end.0, w.next_seq, w.last_hash
            )));
        }
    }
    Ok(entries.len())
}
