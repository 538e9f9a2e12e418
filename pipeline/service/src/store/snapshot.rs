//! The live state as one file, written beside a SQLite store when the pipeline stops
//! cleanly, so the next start reads it instead of every live table (at 200,000 contracts
//! most of a start went into reading and parsing the tables' documents).
//!
//! The file is a cache: it is read only while the store is exactly what it pictures, and
//! anything else reads the tables. A marker row in `state_snapshot` says so. The pipeline
//! puts it there before it reads the state, and every batch it commits counts itself in it;
//! triggers on the tables the live state comes from delete the marker on any other write (a
//! one-off command, another process, a statement typed into the database). The file
//! records the marker and the count it was written under, and a start uses the file only
//! if the marker still says the same. Work items are not in the file: clerks change them
//! beside the pipeline, and a start reads them from their table.
//!
//! Layout: a first line naming the format, the sections (each a JSON array or object,
//! read on both cores at once), then a JSON trailer with each section's length and
//! SHA-256, and the trailer's length as the last line.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;

use reconlight_core::audit::{AuditEntry, AuditHead};
use reconlight_core::state::{BankRow, LiveState};

use super::{Backend, Store, StoreError, ctx};

/// The file's first line.
const FORMAT: &str = "reconlight live state snapshot, format 1\n";

/// What the file records of the store it pictures.
#[derive(Debug, Serialize, Deserialize)]
struct Trailer {
    snapshot_id: String,
    commits: i64,
    schema_version: i64,
    written_at: DateTime<Utc>,
    sections: Vec<SectionInfo>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SectionInfo {
    name: String,
    bytes: usize,
    sha256: String,
}

/// The small parts of the state, in one section (written from references).
#[derive(Serialize)]
struct Rest<'a> {
    terms_errors: &'a BTreeMap<String, String>,
    /// As stored: sealed with its MAC, without the key.
    audit_head: AuditHead,
    /// In sequence order, as the store reads them.
    amount_changes: Vec<&'a AuditEntry>,
    positions: &'a BTreeMap<String, u64>,
    watermark: Option<DateTime<Utc>>,
    dead_letter_count: u64,
}

/// `Rest`, read back.
#[derive(Deserialize)]
struct RestRead {
    terms_errors: BTreeMap<String, String>,
    audit_head: AuditHead,
    amount_changes: Vec<AuditEntry>,
    positions: BTreeMap<String, u64>,
    watermark: Option<DateTime<Utc>>,
    dead_letter_count: u64,
}

/// The sections, in file order.
const SECTIONS: [&str; 10] = [
    "customers",
    "contracts",
    "tickets",
    "extra",
    "signatures",
    "bank",
    "installments",
    "matches",
    "alerts",
    "rest",
];

/// The marker row a snapshot is valid under.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Marker {
    snapshot_id: String,
    commits: i64,
}

/// How a start got its state.
#[derive(Debug)]
pub enum StateSource {
    /// From the snapshot file.
    Snapshot { bytes: u64 },
    /// From the tables, with why the snapshot was not used (`None` where there is none
    /// to use: a PostgreSQL store, or no file).
    Tables { why_not_snapshot: Option<String> },
}

impl Store {
    /// Where this store's snapshot lives: beside a SQLite database, none for PostgreSQL.
    fn snapshot_path(&self) -> Option<PathBuf> {
        if self.backend != Backend::Sqlite {
            return None;
        }
        let path = self.url.strip_prefix("sqlite://")?;
        let path = path.split('?').next().unwrap_or(path);
        (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(format!("{path}.state")))
    }

    async fn marker(&self) -> Result<Option<(Marker, bool)>, StoreError> {
        let row = sqlx::query("SELECT snapshot_id, commits, writing FROM state_snapshot")
            .fetch_optional(&self.pool)
            .await
            .map_err(ctx("reading the state snapshot's marker"))?;
        row.map(|r| -> Result<_, sqlx::Error> {
            let writing: i64 = r.try_get(2)?;
            Ok((
                Marker {
                    snapshot_id: r.try_get(0)?,
                    commits: r.try_get(1)?,
                },
                writing != 0,
            ))
        })
        .transpose()
        .map_err(ctx("reading the state snapshot's marker"))
    }

    /// Reads the live state for the pipeline's start: from the snapshot when the store
    /// is still what it pictures, else from the tables. Either way this process's batches
    /// count themselves under a new marker from here on.
    pub async fn start_state(&self) -> Result<(LiveState, StateSource), StoreError> {
        let Some(path) = self.snapshot_path() else {
            return Ok((
                self.load().await?,
                StateSource::Tables {
                    why_not_snapshot: None,
                },
            ));
        };
        let run_id = new_marker_id()?;
        let partial = partial_path(&path);
        if partial.exists() {
            // Left by a stop that did not finish writing.
            remove_snapshot(&partial);
        }
        let mut why_not = None;
        if path.exists() {
            match self.take_snapshot(&path, &run_id).await {
                Ok((state, bytes)) => {
                    // Pictures the store only until this run's first batch.
                    remove_snapshot(&path);
                    self.set_snapshot_run(Some(run_id));
                    return Ok((state, StateSource::Snapshot { bytes }));
                }
                Err(why) => why_not = Some(why),
            }
            remove_snapshot(&path);
        }
        // Marked before reading: a write by anyone else while the tables are read
        // removes the mark, and this run's snapshot will not be trusted.
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(ctx("marking the state snapshot"))?;
        for sql in [
            "DELETE FROM state_snapshot",
            "INSERT INTO state_snapshot (snapshot_id, commits, writing) VALUES ($1, 0, 0)",
        ] {
            sqlx::query(sql)
                .bind(run_id.clone())
                .execute(&mut *tx)
                .await
                .map_err(ctx("marking the state snapshot"))?;
        }
        tx.commit()
            .await
            .map_err(ctx("marking the state snapshot"))?;
        self.set_snapshot_run(Some(run_id));
        let state = self.load().await?;
        Ok((
            state,
            StateSource::Tables {
                why_not_snapshot: why_not,
            },
        ))
    }

    /// The snapshot's state if the marker still says what the file was written under; the
    /// marker then moves to `run_id`. `Err` says why not.
    async fn take_snapshot(&self, path: &Path, run_id: &str) -> Result<(LiveState, u64), String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let size = bytes.len() as u64;
        let trailer = read_trailer(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        if trailer.schema_version != super::SCHEMA_VERSION {
            return Err(format!(
                "it was written for schema version {}",
                trailer.schema_version
            ));
        }
        let marker = self.marker().await.map_err(|e| e.to_string())?;
        let expected = Marker {
            snapshot_id: trailer.snapshot_id.clone(),
            commits: trailer.commits,
        };
        if marker != Some((expected.clone(), false)) {
            return Err("the store was written after it (or it was not written to the end)".into());
        }
        // Taken over in one statement: a write in between would have removed the mark.
        let moved = sqlx::query(
            "UPDATE state_snapshot SET snapshot_id = $1, commits = 0 WHERE snapshot_id = $2 AND commits = $3 AND writing = 0",
        )
        .bind(run_id.to_string())
        .bind(expected.snapshot_id)
        .bind(expected.commits)
        .execute(&self.pool)
        .await
        .map_err(|e| format!("marking the state snapshot: {e}"))?
        .rows_affected();
        if moved != 1 {
            return Err("the store was written while it was being read".into());
        }
        let mut state = tokio::task::spawn_blocking(move || decode(&bytes, &trailer))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("{}: {e}", path.display()))?;
        // Work items are read from their table, where clerks change them.
        self.load_work_items(&mut state)
            .await
            .map_err(|e| e.to_string())?;
        Ok((state, size))
    }

    /// Writes the snapshot of `state`, which must be what this process's batches left in
    /// the store: skipped (and any older file removed) when something else wrote since.
    /// Returns the file and its size when written.
    pub async fn save_snapshot(
        &self,
        state: &LiveState,
    ) -> Result<Option<(PathBuf, u64)>, StoreError> {
        let (Some(path), Some(run_id)) = (self.snapshot_path(), self.snapshot_run()) else {
            return Ok(None);
        };
        let still = |m: &Option<(Marker, bool)>| match m {
            Some((m, false)) if m.snapshot_id == run_id => Some(m.clone()),
            _ => None,
        };
        let Some(marker) = still(&self.marker().await?) else {
            tracing::info!(
                "no state snapshot written: the store was changed outside this process's batches; the next start reads the tables"
            );
            if path.exists() {
                remove_snapshot(&path);
            }
            return Ok(None);
        };
        let partial = partial_path(&path);
        let written = write_file(&partial, state, &marker)
            .and_then(|size| std::fs::rename(&partial, &path).map(|()| size));
        let size = match written {
            Ok(size) => size,
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(StoreError {
                    doing: format!("writing the state snapshot {}", path.display()),
                    source: Box::new(e),
                });
            }
        };
        // A write while the file was being made: it pictures a store that is gone.
        if still(&self.marker().await?) != Some(marker) {
            let _ = std::fs::remove_file(&path);
            return Ok(None);
        }
        Ok(Some((path, size)))
    }
}

/// Where a snapshot is written before it takes its name.
fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

fn remove_snapshot(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        tracing::warn!(
            "could not remove the used state snapshot {}: {e}",
            path.display()
        );
    }
}

/// A fresh marker id: 128 random bits, in hex.
fn new_marker_id() -> Result<String, StoreError> {
    crate::access::random_bytes::<16>()
        .map(hex::encode)
        .map_err(ctx("making a state snapshot marker"))
}

fn write_file(path: &Path, s: &LiveState, marker: &Marker) -> std::io::Result<u64> {
    use std::os::unix::fs::OpenOptionsExt;
    // As private as the database it pictures is meant to be.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    out.write_all(FORMAT.as_bytes())?;
    let mut sections = Vec::with_capacity(SECTIONS.len());
    for name in SECTIONS {
        // Hashed on its way to the file: no copy of the state is held in memory.
        let mut section = Hashing {
            inner: &mut out,
            hash: Sha256::new(),
            bytes: 0,
        };
        encode_section(name, s, &mut section)?;
        sections.push(SectionInfo {
            name: name.to_string(),
            bytes: section.bytes,
            sha256: hex::encode(section.hash.finalize()),
        });
    }
    let trailer = serde_json::to_vec(&Trailer {
        snapshot_id: marker.snapshot_id.clone(),
        commits: marker.commits,
        schema_version: super::SCHEMA_VERSION,
        written_at: Utc::now(),
        sections,
    })
    .map_err(std::io::Error::other)?;
    out.write_all(b"\n")?;
    out.write_all(&trailer)?;
    write!(out, "\n{}\n", trailer.len())?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    Ok(file.metadata()?.len())
}

/// Passes bytes on, hashing and counting them.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    bytes: usize,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn encode_section(name: &str, s: &LiveState, out: &mut impl Write) -> std::io::Result<()> {
    use serde_json::to_writer;
    fn values<K, V>(map: &BTreeMap<K, V>) -> Vec<&V> {
        map.values().collect()
    }
    match name {
        "customers" => to_writer(out, &values(&s.customers)),
        "contracts" => to_writer(out, &values(&s.contracts)),
        "tickets" => to_writer(out, &values(&s.tickets)),
        "extra" => to_writer(out, &s.extra),
        "signatures" => to_writer(out, &values(&s.signatures)),
        "bank" => to_writer(out, &values(&s.bank)),
        "installments" => to_writer(out, &values(&s.installments)),
        "matches" => to_writer(out, &values(&s.matches)),
        "alerts" => to_writer(out, &values(&s.alerts)),
        "rest" => to_writer(
            out,
            &Rest {
                terms_errors: &s.terms_errors,
                audit_head: s.audit_head.sealed(),
                amount_changes: {
                    let mut changes: Vec<&AuditEntry> = s.amount_changes.iter().collect();
                    changes.sort_by_key(|e| e.seq);
                    changes
                },
                positions: &s.positions,
                watermark: s.watermark,
                dead_letter_count: s.dead_letter_count,
            },
        ),
        _ => unreachable!("a section this module names"),
    }
    .map_err(std::io::Error::other)
}

/// The trailer, found from the file's end.
fn read_trailer(bytes: &[u8]) -> Result<Trailer, String> {
    if !bytes.starts_with(FORMAT.as_bytes()) {
        return Err("not a reconlight state snapshot of this format".into());
    }
    let truncated = || "it ends early (not written to the end)".to_string();
    let body = bytes.strip_suffix(b"\n").ok_or_else(truncated)?;
    let last_line = body
        .iter()
        .rposition(|&b| b == b'\n')
        .ok_or_else(truncated)?;
    let len: usize = std::str::from_utf8(&body[last_line + 1..])
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(truncated)?;
    let start = last_line.checked_sub(len).ok_or_else(truncated)?;
    serde_json::from_slice(&body[start..last_line]).map_err(|e| format!("its trailer: {e}"))
}

/// One section, parsed.
enum Part {
    Customers(Vec<reconlight_formats::model::Customer>),
    Contracts(Vec<reconlight_formats::model::Contract>),
    Tickets(Vec<reconlight_formats::model::HandoffTicket>),
    Extra(BTreeMap<String, BTreeMap<String, reconlight_formats::model::Row>>),
    Signatures(Vec<reconlight_formats::model::SignatureEvent>),
    Bank(Vec<BankRow>),
    Installments(Vec<reconlight_core::derived::Installment>),
    Matches(Vec<Vec<reconlight_core::derived::Allocation>>),
    Alerts(Vec<reconlight_rules::Alert>),
    Rest(Box<RestRead>),
}

fn decode_section(name: &str, body: &[u8]) -> serde_json::Result<Part> {
    use serde_json::from_slice as json;
    Ok(match name {
        "customers" => Part::Customers(json(body)?),
        "contracts" => Part::Contracts(json(body)?),
        "tickets" => Part::Tickets(json(body)?),
        "extra" => Part::Extra(json(body)?),
        "signatures" => Part::Signatures(json(body)?),
        "bank" => Part::Bank(json(body)?),
        "installments" => Part::Installments(json(body)?),
        "matches" => Part::Matches(json(body)?),
        "alerts" => Part::Alerts(json(body)?),
        "rest" => Part::Rest(json(body)?),
        _ => unreachable!("names are checked against SECTIONS"),
    })
}

/// Checks and parses the sections on two threads, the largest first.
fn decode(bytes: &[u8], trailer: &Trailer) -> Result<LiveState, String> {
    let names: Vec<&str> = trailer.sections.iter().map(|s| s.name.as_str()).collect();
    if names != SECTIONS {
        return Err(format!("its sections are {names:?}, not {SECTIONS:?}"));
    }
    let mut at = FORMAT.len();
    let mut bodies = Vec::with_capacity(SECTIONS.len());
    for s in &trailer.sections {
        let body = bytes
            .get(at..at + s.bytes)
            .ok_or_else(|| format!("section {} ends past the file's end", s.name))?;
        bodies.push((s, body));
        at += s.bytes;
    }
    bodies.sort_by_key(|(s, _)| std::cmp::Reverse(s.bytes));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || {
        let mut parts = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some((info, body)) = bodies.get(i) else {
                return Ok(parts);
            };
            if hex::encode(Sha256::digest(body)) != info.sha256 {
                return Err(format!("section {} does not match its checksum", info.name));
            }
            parts.push(
                decode_section(&info.name, body)
                    .map_err(|e| format!("section {}: {e}", info.name))?,
            );
        }
    };
    let (a, b) = std::thread::scope(|scope| {
        let other = scope.spawn(work);
        let mine = work();
        (
            mine,
            other.join().expect("a snapshot section's parser panicked"),
        )
    });
    let mut s = LiveState::default();
    for part in a?.into_iter().chain(b?) {
        match part {
            Part::Customers(v) => {
                s.customers = v.into_iter().map(|c| (c.customer_id.clone(), c)).collect()
            }
            Part::Contracts(v) => {
                s.contracts = v.into_iter().map(|c| (c.contract_no.clone(), c)).collect()
            }
            Part::Tickets(v) => {
                s.tickets = v.into_iter().map(|t| (t.ticket_id.clone(), t)).collect()
            }
            Part::Extra(v) => s.extra = v,
            Part::Signatures(v) => {
                s.signatures = v.into_iter().map(|e| (e.event_id.clone(), e)).collect()
            }
            Part::Bank(v) => s.bank = v.into_iter().map(|b| (b.tx.bank_ref.clone(), b)).collect(),
            Part::Installments(v) => {
                s.installments = v
                    .into_iter()
                    .map(|i| ((i.contract_no.clone(), i.seq), i))
                    .collect()
            }
            Part::Matches(v) => {
                s.matches = v
                    .into_iter()
                    .filter_map(|list| Some((list.first()?.bank_ref.clone(), list)))
                    .collect()
            }
            Part::Alerts(v) => s.alerts = v.into_iter().map(|a| (a.id.clone(), a)).collect(),
            Part::Rest(r) => {
                let RestRead {
                    terms_errors,
                    audit_head,
                    amount_changes,
                    positions,
                    watermark,
                    dead_letter_count,
                } = *r;
                s.terms_errors = terms_errors;
                s.audit_head = audit_head;
                s.amount_changes = amount_changes;
                s.positions = positions;
                s.watermark = watermark;
                s.dead_letter_count = dead_letter_count;
            }
        }
    }
    Ok(s)
}
