//! File sources: a file or a directory of files in one format, decoded into positioned
//! items. Each file's position is the number of items consumed from it, so a restart
//! resumes exactly where the last committed batch ended.

use crate::error::FileError;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use reconlight_formats::model::Record;
use reconlight_formats::statement::StatementSummary;
use reconlight_formats::{Decoded, Outcome as Decoded_};

use crate::config::{Config, SourceConfig};

/// What one input item turned out to be.
#[derive(Debug)]
pub enum Outcome {
    Record(Box<Record>, DateTime<Utc>),
    /// Valid input that carries nothing to apply (tombstones, transaction markers, pending entries).
    Skip(&'static str),
    Error(String),
}

/// One positioned item of a source.
#[derive(Debug)]
pub struct Item {
    pub source: String,
    /// The file, relative to the configuration's directory where possible.
    pub file: String,
    /// 0-based index of the item within its file.
    pub index: u64,
    /// Human position within the file: `line 17`, `statement S1 entry 3`.
    pub position: String,
    pub raw: String,
    pub outcome: Outcome,
    /// For a webhook body: its inbox entry, marked applied in the batch's transaction.
    pub inbox_id: Option<String>,
    /// More items of the same Kafka message follow: its offset is not consumed yet.
    pub partial: bool,
    /// For a drop-folder file: its position is kept under its content, not its name, so a
    /// new file under an old name, or a file moved back after a fix, is read from the start.
    pub content_key: Option<String>,
    /// The last item of a document whose bytes have this digest: once it is applied the
    /// whole document is, and later reads of the same bytes skip decoding it.
    pub completes: Option<u64>,
    /// A line of a line file: the byte offset just past it, kept beside the position so a
    /// restart seeks there instead of reading every line before it.
    pub line_end: Option<u64>,
}

impl Item {
    /// The key its file's position is stored under.
    pub fn position_key(&self) -> String {
        match &self.content_key {
            Some(key) => format!("{}:{key}", self.source),
            None => format!("{}:{}", self.source, self.file),
        }
    }

    /// The position stored once this item is applied: the next item's index.
    pub fn next_position(&self) -> u64 {
        if self.partial {
            self.index
        } else {
            self.index + 1
        }
    }

    /// `file position`, for dead letters and the audit trail.
    pub fn where_(&self) -> String {
        format!("{} {}", self.file, self.position)
    }
}

/// Statement-level facts a source noticed while decoding (balance checks).
#[derive(Debug, Default)]
pub struct SourceNotes {
    pub notes: Vec<StatementNote>,
}

/// What a statement's balances said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatementNote {
    /// Opening + credits - debits is not the closing balance.
    Unbalanced(String),
    /// A balance is unreadable or missing, so the check could not be made.
    Unchecked(String),
}

/// The files of a source, in name order.
pub fn source_files(config: &Config, source: &SourceConfig) -> Result<Vec<PathBuf>, FileError> {
    let Some(path) = &source.path else {
        return Ok(Vec::new());
    };
    let path = config.resolve(path);
    if path.is_file() {
        return Ok(vec![path]);
    }
    if !path.is_dir() {
        return Err(FileError::NotAFileOrDirectory {
            name: source.name.clone(),
            path,
        });
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&path)
        .map_err(FileError::io("list", &path))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && !in_transit(p))
        .collect();
    files.sort();
    Ok(files)
}

/// Hidden files, editor backups and uploads still being written (renamed when done).
fn in_transit(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    name.starts_with('.')
        || name.starts_with('~')
        || name.ends_with('~')
        || [
            ".part",
            ".tmp",
            ".partial",
            ".filepart",
            ".crdownload",
            ".swp",
        ]
        .iter()
        .any(|s| name.ends_with(s))
}

/// What reading a drop-folder file found.
pub enum Dropped {
    /// Changed too recently: perhaps still being written; looked at again next round.
    Settling,
    /// Listed but gone when read (moved or deleted by someone else).
    Vanished,
    /// Its items from the stored position on, and whether the file fails as a whole.
    Read { items: Vec<Item>, failed: bool },
}

/// Reads a drop-folder file once it has settled. Its position is kept under a hash of its
/// content, so only the same bytes resume where they stopped.
pub fn read_dropped(
    config: &Config,
    source: &SourceConfig,
    path: &Path,
    positions: &std::collections::BTreeMap<String, u64>,
    notes: &mut SourceNotes,
) -> Result<Dropped, FileError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Dropped::Vanished),
        Err(e) => return Err(FileError::io("read", path)(e)),
    };
    let age = meta
        .modified()
        .ok()
        .and_then(|m| m.elapsed().ok())
        .unwrap_or_default();
    if age < source.settle.0.to_std().unwrap_or_default() {
        return Ok(Dropped::Settling);
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Dropped::Vanished),
        Err(e) => return Err(FileError::io("read", path)(e)),
    };
    let digest = <sha2::Sha256 as sha2::Digest>::digest(&bytes);
    let key = format!("sha256:{}", hex::encode(&digest[..16]));
    let skip = positions
        .get(&format!("{}:{key}", source.name))
        .copied()
        .unwrap_or(0);
    let file = display_path(config, path);
    let mut items = decode_document(config, source, &file, &bytes, 0, notes);
    let failed = items.len() == 1
        && matches!(items[0].outcome, Outcome::Error(_))
        && (items[0].position == "document" || items[0].position == "file");
    // A file that fails as a whole fails again each time: its error is not a position.
    if !failed {
        items.retain(|i| i.index >= skip);
    }
    for item in &mut items {
        item.content_key = Some(key.clone());
    }
    Ok(Dropped::Read { items, failed })
}

fn display_path(config: &Config, path: &Path) -> String {
    path.strip_prefix(&config.base_dir)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Decodes the items of one file beyond its stored position. A document (a statement file)
/// must be decoded whole to find its items, so one whose bytes were consumed to the end is
/// not decoded again: a restart, or a poll of a folder of old statements, reads and hashes
/// it only.
pub fn read_file(
    config: &Config,
    source: &SourceConfig,
    path: &Path,
    positions: &std::collections::BTreeMap<String, u64>,
    notes: &mut SourceNotes,
) -> Result<Pending, FileError> {
    let file = display_path(config, path);
    let key = format!("{}:{file}", source.name);
    let skip = positions.get(&key).copied().unwrap_or(0);
    if source.format.one_record_per_line() {
        // The offset stands for the position it was stored with (one written by a reconlight
        // that kept no offsets, or moved the position without it, is not used).
        let (at, of_line) = offset_keys(&key);
        let resume = positions
            .get(&at)
            .copied()
            .filter(|_| positions.get(&of_line) == Some(&skip));
        return read_lines(config, source, path, file, skip, resume);
    }
    let bytes = std::fs::read(path).map_err(FileError::io("read", path))?;
    let digest = content_digest(&bytes);
    let done = consumed_key(&key);
    if positions.get(&done) == Some(&digest) {
        return Ok(Pending::default());
    }
    let mut items = decode_document(config, source, &file, &bytes, skip, notes);
    let mut pending = Pending::default();
    match items.iter_mut().max_by_key(|i| i.index) {
        Some(last) => last.completes = Some(digest),
        // Consumed before documents were marked (an older store): marked now.
        None => pending.consumed = Some((done, digest)),
    }
    pending.count = items.len();
    pending.items = Box::new(items.into_iter());
    Ok(pending)
}

/// Where the digest of a document consumed to its end is kept, beside its position.
pub fn consumed_key(position_key: &str) -> String {
    format!("{position_key}\u{1f}consumed")
}

/// Where a line file's byte offset is kept beside its position, and the position that
/// offset belongs to.
pub fn offset_keys(position_key: &str) -> (String, String) {
    (
        format!("{position_key}\u{1f}offset"),
        format!("{position_key}\u{1f}offset line"),
    )
}

/// The first 64 bits of the SHA-256 of a file's bytes.
fn content_digest(bytes: &[u8]) -> u64 {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(bytes);
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// Items not read yet, and how many there are.
pub struct Pending {
    pub count: usize,
    pub items: Box<dyn Iterator<Item = Item> + Send>,
    /// A document found consumed to its end without its digest on record: the marker to store.
    pub consumed: Option<(String, u64)>,
}

impl Default for Pending {
    fn default() -> Self {
        Pending {
            count: 0,
            items: Box::new(std::iter::empty()),
            consumed: None,
        }
    }
}

/// A line format's file, read and decoded one line at a time as the batches take them, so
/// that a large backlog is never held in memory at once. A restart seeks to where the last
/// committed line ended (`resume`, when it still falls at a line's end) and reads only what
/// follows; without it, it reads past the first `skip` lines.
fn read_lines(
    config: &Config,
    source: &SourceConfig,
    path: &Path,
    file: String,
    skip: u64,
    resume: Option<u64>,
) -> Result<Pending, FileError> {
    use std::io::{BufRead, Seek, SeekFrom};
    let open = || {
        std::fs::File::open(path)
            .map(|f| std::io::BufReader::with_capacity(1 << 20, f))
            .map_err(FileError::io("read", path))
    };
    let io = || FileError::io("read", path);
    let mut reader = open()?;
    let (skipped, resume_at) = match resume {
        Some(at) if skip > 0 && super::lines::ends_a_line(&mut reader, at).map_err(io())? => {
            reader.seek(SeekFrom::Start(at)).map_err(io())?;
            (skip, at)
        }
        _ => {
            reader.rewind().map_err(io())?;
            let skipped = super::lines::skip_lines(&mut reader, skip).map_err(io())?;
            (skipped, reader.stream_position().map_err(io())?)
        }
    };
    let mut rest = open()?;
    rest.seek(SeekFrom::Start(resume_at)).map_err(io())?;
    let count = (skipped + super::lines::count_lines(&mut rest).map_err(io())?) as usize;
    let tz: Tz = config.business.time_zone;
    let source = source.clone();
    let (mut index, mut offset) = (skipped, resume_at);
    let mut failed = false;
    let items = std::iter::from_fn(move || {
        if failed {
            return None;
        }
        let mut bytes = Vec::new();
        let decoded = match reader.read_until(b'\n', &mut bytes) {
            Ok(0) => return None,
            Ok(n) => {
                offset += n as u64;
                if bytes.last() == Some(&b'\n') {
                    bytes.pop();
                }
                if bytes.last() == Some(&b'\r') {
                    bytes.pop();
                }
                source.format.decode_line(
                    index,
                    &String::from_utf8_lossy(&bytes),
                    &source.format_options(),
                )
            }
            Err(e) => {
                failed = true;
                reconlight_formats::DecodedItem {
                    index,
                    position: format!("line {}", index + 1),
                    raw: String::new(),
                    outcome: Decoded_::Error(reconlight_formats::DecodeError::new(
                        source.format.as_str(),
                        format!("line {}", index + 1),
                        format!("the file could not be read on: {e}"),
                    )),
                }
            }
        };
        index += 1;
        let mut item = item_of(&source, &file, decoded, tz);
        item.line_end = (!failed).then_some(offset);
        Some(item)
    });
    Ok(Pending {
        count: count.saturating_sub(skip as usize),
        items: Box::new(items),
        consumed: None,
    })
}

/// Decodes the items of one file's bytes from index `skip` on: one per line for record
/// formats, a document's transactions for statements.
pub fn decode_document(
    config: &Config,
    source: &SourceConfig,
    file: &str,
    bytes: &[u8],
    skip: u64,
    notes: &mut SourceNotes,
) -> Vec<Item> {
    let decoded = source.format.decode_file(bytes, &source.format_options());
    items_of(config, source, file, decoded, skip, notes)
}

/// A decoded input as positioned items of `source` (from index `skip` on), with its
/// statements' balance verdicts noted.
pub fn items_of(
    config: &Config,
    source: &SourceConfig,
    file: &str,
    decoded: Decoded,
    skip: u64,
    notes: &mut SourceNotes,
) -> Vec<Item> {
    let tz: Tz = config.business.time_zone;
    note_statements(file, &decoded.statements, notes);
    decoded
        .items
        .into_iter()
        .filter(|it| it.index >= skip)
        .map(|it| item_of(source, file, it, tz))
        .collect()
}

fn item_of(source: &SourceConfig, file: &str, it: reconlight_formats::DecodedItem, tz: Tz) -> Item {
    Item {
        source: source.name.clone(),
        file: file.to_string(),
        index: it.index,
        position: it.position,
        raw: it.raw,
        outcome: match it.outcome {
            Decoded_::Record(r) => {
                let t = r.event_time(tz);
                Outcome::Record(r, t)
            }
            Decoded_::Skip(why) => Outcome::Skip(why),
            Decoded_::Error(e) => Outcome::Error(e.to_string()),
        },
        inbox_id: None,
        partial: false,
        content_key: None,
        completes: None,
        line_end: None,
    }
}

/// The balance verdicts of a file's statements.
fn note_statements(file: &str, statements: &[StatementSummary], notes: &mut SourceNotes) {
    for s in statements {
        for p in &s.problems {
            notes
                .notes
                .push(StatementNote::Unchecked(format!("{file}: {p}")));
        }
    }
    for s in statements.iter().filter(|s| s.unbalanced()) {
        notes.notes.push(StatementNote::Unbalanced(format!(
            "{file}: statement {} for {} does not balance: closing {} differs from opening + credits - debits by {}",
            s.id,
            s.account,
            s.closing_balance.unwrap_or_default(),
            s.balance_difference.unwrap_or_default()
        )));
    }
}

/// The pending items of every source, merged into one deterministic event-time order.
pub struct Merged {
    queues: Vec<Queue>,
    /// Drop-folder files read, and whether each failed as a whole: moved once applied.
    pub dropped: Vec<(PathBuf, bool)>,
}

/// One source's pending items: its files one after another, each read as it is reached.
pub struct Queue {
    head: Option<Item>,
    rest: std::collections::VecDeque<Pending>,
    remaining: usize,
}

impl Queue {
    pub fn new(pending: Vec<Pending>) -> Self {
        let remaining = pending.iter().map(|p| p.count).sum();
        let mut q = Queue {
            head: None,
            rest: pending.into(),
            remaining,
        };
        q.fill();
        q
    }

    fn fill(&mut self) {
        while self.head.is_none() {
            let Some(front) = self.rest.front_mut() else {
                return;
            };
            match front.items.next() {
                Some(item) => self.head = Some(item),
                None => {
                    self.rest.pop_front();
                }
            }
        }
    }

    fn pop(&mut self) -> Option<Item> {
        let item = self.head.take()?;
        self.remaining = self.remaining.saturating_sub(1);
        self.fill();
        Some(item)
    }
}

impl Merged {
    pub fn new(queues: Vec<Queue>) -> Self {
        Merged {
            queues,
            dropped: Vec::new(),
        }
    }

    /// Moves applied drop-folder files to `processed/` or `failed/` beside them, never over
    /// a file already there (a second `x.xml` becomes `x.2.xml`).
    pub fn file_away(&self) -> Result<(), FileError> {
        for (path, failed) in &self.dropped {
            let dir = path.parent().unwrap_or(Path::new(".")).join(if *failed {
                "failed"
            } else {
                "processed"
            });
            std::fs::create_dir_all(&dir).map_err(FileError::io("create", &dir))?;
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let (stem, ext) = match name.rsplit_once('.') {
                Some((s, e)) if !s.is_empty() => (s.to_string(), format!(".{e}")),
                _ => (name.to_string(), String::new()),
            };
            let mut target = dir.join(name.as_ref());
            let mut n = 1;
            while target.exists() {
                n += 1;
                target = dir.join(format!("{stem}.{n}{ext}"));
            }
            match std::fs::rename(path, &target) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    tracing::warn!(
                        "{} vanished before it could be moved to {}",
                        path.display(),
                        dir.display()
                    );
                }
                Err(e) => {
                    return Err(FileError::Move {
                        from: path.clone(),
                        to: target,
                        source: e,
                    });
                }
            }
        }
        Ok(())
    }

    pub fn remaining(&self) -> usize {
        self.queues.iter().map(|q| q.remaining).sum()
    }

    /// The next item: the queue head with the earliest event time (items without one, such
    /// as errors, go first); ties go to the source listed first.
    pub fn next_item(&mut self) -> Option<Item> {
        let mut best: Option<(usize, Option<DateTime<Utc>>)> = None;
        for (i, q) in self.queues.iter().enumerate() {
            let Some(head) = &q.head else { continue };
            let t = match &head.outcome {
                Outcome::Record(_, t) => Some(*t),
                _ => None,
            };
            let better = match best {
                None => true,
                Some((_, bt)) => t < bt,
            };
            if better {
                best = Some((i, t));
            }
        }
        best.and_then(|(i, _)| self.queues[i].pop())
    }
}
