//! Every format reconlight reads, behind one trait. A source names its `Format`; files,
//! drop folders, Kafka messages, webhook bodies and `reconlight decode` all decode through
//! `Format::decode_file` or `Format::decode_message`, so a new format is one module and one
//! entry in `Format` and `Format::decoder`.

use serde::{Deserialize, Serialize};

use crate::adobe_sign::{self, AdobeSignOptions};
use crate::bank_csv::{self, CsvOptions};
use crate::camt;
use crate::debezium::{self, DebeziumMessage, DebeziumOptions};
use crate::docusign::{self, DocusignOptions};
use crate::error::{DecodeError, ValueError};
use crate::esign_cn::{self, EsignCnOptions};
use crate::fadada::{self, FadadaOptions};
use crate::model::{BankTransaction, Record};
use crate::mt940;
use crate::statement::StatementSummary;

/// A wire format a source speaks.
#[derive(schemars::JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Debezium JSON change events, one per line.
    Debezium,
    /// DocuSign Connect JSON SIM notifications, one per line.
    Docusign,
    /// e签宝 v3 callbacks, one JSON body per line.
    EsignCn,
    /// 法大大 FASC 5.1 callbacks, one `{"event", "bizContent"}` per line.
    Fadada,
    /// Adobe Acrobat Sign webhook notifications, one per line.
    AdobeSign,
    /// ISO 20022 camt.052 / camt.053 / camt.054 XML.
    Camt,
    /// SWIFT MT940 statements and MT942 interim reports.
    Mt940,
    /// Bank CSV exports (needs the bank's layout, `CsvOptions`).
    Csv,
}

impl Format {
    pub const ALL: [Format; 8] = [
        Format::Debezium,
        Format::Docusign,
        Format::EsignCn,
        Format::Fadada,
        Format::AdobeSign,
        Format::Camt,
        Format::Mt940,
        Format::Csv,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Debezium => "debezium",
            Format::Docusign => "docusign",
            Format::EsignCn => "esign_cn",
            Format::Fadada => "fadada",
            Format::AdobeSign => "adobe_sign",
            Format::Camt => "camt",
            Format::Mt940 => "mt940",
            Format::Csv => "csv",
        }
    }

    /// The format's decoder.
    /// A bank statement format (its statements' balances are checked).
    pub fn is_bank(self) -> bool {
        matches!(self, Format::Camt | Format::Mt940 | Format::Csv)
    }

    pub fn decoder(self) -> &'static dyn Decoder {
        match self {
            Format::Debezium => &DebeziumDecoder,
            Format::Docusign => &DocusignDecoder,
            Format::EsignCn => &EsignCnDecoder,
            Format::Fadada => &FadadaDecoder,
            Format::AdobeSign => &AdobeSignDecoder,
            Format::Camt => &CamtDecoder,
            Format::Mt940 => &Mt940Decoder,
            Format::Csv => &CsvDecoder,
        }
    }

    /// A file: one record per line for record formats, a whole document for statements.
    pub fn decode_file(self, bytes: &[u8], options: &FormatOptions) -> Decoded {
        let decoder = self.decoder();
        if !decoder.one_record_per_line() {
            return decoder.document(bytes, options);
        }
        let text = String::from_utf8_lossy(bytes);
        let items = text
            .lines()
            .enumerate()
            .map(|(i, line)| self.decode_line(i as u64, line, options))
            .collect();
        Decoded {
            items,
            statements: Vec::new(),
        }
    }

    /// Whether a file of this format holds one record per line (and can be read a line at
    /// a time) rather than one document.
    pub fn one_record_per_line(self) -> bool {
        self.decoder().one_record_per_line()
    }

    /// The item on the 0-based line `index` of a line format's file, as `decode_file`
    /// decodes it.
    pub fn decode_line(self, index: u64, line: &str, options: &FormatOptions) -> DecodedItem {
        let position = format!("line {}", index + 1);
        DecodedItem {
            index,
            outcome: record_outcome(self, line, options, &position),
            position,
            raw: line.to_string(),
        }
    }

    /// A message (from Kafka or a webhook): one record for record formats, however many
    /// lines it has; a whole document for statements.
    pub fn decode_message(self, bytes: &[u8], options: &FormatOptions) -> Decoded {
        let decoder = self.decoder();
        if !decoder.one_record_per_line() {
            return decoder.document(bytes, options);
        }
        let outcome = match std::str::from_utf8(bytes) {
            Err(e) => Outcome::Error(DecodeError::new(
                self.as_str(),
                "",
                format!("the message is not UTF-8 ({e})"),
            )),
            Ok(text) => record_outcome(self, text, options, ""),
        };
        Decoded {
            items: vec![DecodedItem {
                index: 0,
                position: String::new(),
                raw: String::from_utf8_lossy(bytes).into_owned(),
                outcome,
            }],
            statements: Vec::new(),
        }
    }
}

impl std::str::FromStr for Format {
    type Err = crate::error::UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim().to_ascii_lowercase().replace('-', "_");
        Format::ALL
            .into_iter()
            .find(|f| f.as_str() == name)
            .ok_or_else(|| {
                crate::error::UnknownName::new(
                    "format",
                    s,
                    Format::ALL.map(Format::as_str).join(", "),
                )
            })
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Each format's options, as a source's configuration gives them.
#[derive(Clone, Copy)]
pub struct FormatOptions<'a> {
    pub debezium: &'a DebeziumOptions,
    pub docusign: &'a DocusignOptions,
    pub esign_cn: &'a EsignCnOptions,
    pub fadada: &'a FadadaOptions,
    pub adobe_sign: &'a AdobeSignOptions,
    /// The bank's CSV layout; a CSV source without one cannot be read.
    pub csv: Option<&'a CsvOptions>,
}

/// What one item of an input turned out to be.
#[derive(Debug)]
pub enum Outcome {
    Record(Box<Record>),
    /// Valid input that carries nothing to apply (tombstones, transaction markers, pending
    /// entries, empty lines).
    Skip(&'static str),
    Error(DecodeError),
}

/// One positioned item of an input.
#[derive(Debug)]
pub struct DecodedItem {
    /// 0-based index within its input: what a file's position counts.
    pub index: u64,
    /// Where, for people: `line 17`, `transaction 3 (REF)`, `row 12`.
    pub position: String,
    /// The input the item came from (for dead letters).
    pub raw: String,
    pub outcome: Outcome,
}

/// An input's items, and the statements it held (for the balance checks).
#[derive(Debug, Default)]
pub struct Decoded {
    pub items: Vec<DecodedItem>,
    pub statements: Vec<StatementSummary>,
}

/// One format's decoder.
pub trait Decoder: Sync {
    /// True for formats with one record per line of a file (change events, callbacks);
    /// false for statements, which are whole documents.
    fn one_record_per_line(&self) -> bool {
        true
    }

    /// One record (a line, a Kafka message, a webhook body): a record, a reason to skip
    /// it, or why it cannot be read.
    fn record(&self, text: &str, options: &FormatOptions) -> Result<Option<Record>, Skipped> {
        let _ = (text, options);
        Err(Skipped::Error(
            "a statement is a whole document, not a record".into(),
        ))
    }

    /// A whole document. Record formats read it line by line (`Format::decode_file`).
    fn document(&self, bytes: &[u8], options: &FormatOptions) -> Decoded {
        let _ = (bytes, options);
        Decoded::default()
    }
}

/// Why a record gave nothing to apply.
pub enum Skipped {
    /// Valid, with nothing to apply (a tombstone, a transaction marker).
    Valid(&'static str),
    Error(ValueError),
}

fn record_outcome(format: Format, text: &str, options: &FormatOptions, position: &str) -> Outcome {
    if text.trim().is_empty() {
        return Outcome::Skip("empty line");
    }
    match format.decoder().record(text, options) {
        Ok(Some(r)) => Outcome::Record(Box::new(r)),
        Ok(None) => Outcome::Skip("nothing to apply"),
        Err(Skipped::Valid(why)) => Outcome::Skip(why),
        Err(Skipped::Error(e)) => Outcome::Error(e.at(format.as_str(), position)),
    }
}

struct DebeziumDecoder;
impl Decoder for DebeziumDecoder {
    fn record(&self, text: &str, o: &FormatOptions) -> Result<Option<Record>, Skipped> {
        match debezium::decode(text, o.debezium).map_err(Skipped::Error)? {
            DebeziumMessage::Change(c) => Ok(Some(Record::Crm(c))),
            DebeziumMessage::Tombstone => Err(Skipped::Valid("tombstone")),
            DebeziumMessage::Ignored(why) => Err(Skipped::Valid(why)),
        }
    }
}

struct DocusignDecoder;
impl Decoder for DocusignDecoder {
    fn record(&self, text: &str, o: &FormatOptions) -> Result<Option<Record>, Skipped> {
        docusign::decode(text, o.docusign)
            .map(|s| Some(Record::Signature(s)))
            .map_err(Skipped::Error)
    }
}

struct EsignCnDecoder;
impl Decoder for EsignCnDecoder {
    fn record(&self, text: &str, o: &FormatOptions) -> Result<Option<Record>, Skipped> {
        esign_cn::decode(text, o.esign_cn)
            .map(|s| Some(Record::Signature(s)))
            .map_err(Skipped::Error)
    }
}

struct FadadaDecoder;
impl Decoder for FadadaDecoder {
    fn record(&self, text: &str, o: &FormatOptions) -> Result<Option<Record>, Skipped> {
        fadada::decode(text, o.fadada)
            .map(|s| Some(Record::Signature(s)))
            .map_err(Skipped::Error)
    }
}

struct AdobeSignDecoder;
impl Decoder for AdobeSignDecoder {
    fn record(&self, text: &str, o: &FormatOptions) -> Result<Option<Record>, Skipped> {
        adobe_sign::decode(text, o.adobe_sign)
            .map(|s| Some(Record::Signature(s)))
            .map_err(Skipped::Error)
    }
}

/// A document that failed as a whole: one error item at `position` 0.
fn failed(position: &str, bytes: &[u8], e: DecodeError) -> Decoded {
    Decoded {
        items: vec![DecodedItem {
            index: 0,
            position: position.into(),
            raw: clip(bytes),
            outcome: Outcome::Error(e),
        }],
        statements: Vec::new(),
    }
}

/// At most 64 KiB of a document, for a dead letter.
pub fn clip(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(65_536)]).into_owned()
}

/// A statement's transactions as positioned items.
fn statement_items(
    statements: Vec<StatementSummary>,
    transactions: Vec<Result<BankTransaction, DecodeError>>,
) -> Decoded {
    let items = transactions
        .into_iter()
        .enumerate()
        .map(|(i, t)| match t {
            Ok(tx) => DecodedItem {
                index: i as u64,
                position: format!("transaction {} ({})", i + 1, tx.bank_ref),
                raw: serde_json::to_string(&tx).unwrap_or_default(),
                outcome: Outcome::Record(Box::new(Record::Bank(tx))),
            },
            Err(e) => DecodedItem {
                index: i as u64,
                position: e.position.clone(),
                raw: e.raw.clone().unwrap_or_default(),
                outcome: Outcome::Error(e),
            },
        })
        .collect();
    Decoded { items, statements }
}

struct CamtDecoder;
impl Decoder for CamtDecoder {
    fn one_record_per_line(&self) -> bool {
        false
    }
    fn document(&self, bytes: &[u8], _: &FormatOptions) -> Decoded {
        match camt::decode_bytes(bytes) {
            Ok(msg) => statement_items(msg.statements, msg.transactions),
            Err(e) => failed("document", bytes, e),
        }
    }
}

struct Mt940Decoder;
impl Decoder for Mt940Decoder {
    fn one_record_per_line(&self) -> bool {
        false
    }
    fn document(&self, bytes: &[u8], _: &FormatOptions) -> Decoded {
        match mt940::decode(&String::from_utf8_lossy(bytes)) {
            Ok(msg) => statement_items(msg.statements, msg.transactions),
            Err(e) => failed("file", bytes, e),
        }
    }
}

struct CsvDecoder;
impl Decoder for CsvDecoder {
    fn one_record_per_line(&self) -> bool {
        false
    }
    fn document(&self, bytes: &[u8], o: &FormatOptions) -> Decoded {
        let Some(options) = o.csv else {
            return failed(
                "file",
                bytes,
                DecodeError::new("csv", "", "the source has no `[sources.csv]` layout"),
            );
        };
        match bank_csv::decode(bytes, options) {
            Ok(rows) => {
                let items = rows
                    .into_iter()
                    .enumerate()
                    .map(|(i, row)| match row {
                        Ok(tx) => DecodedItem {
                            index: i as u64,
                            position: format!("row {} ({})", i + 1, tx.bank_ref),
                            raw: serde_json::to_string(&tx).unwrap_or_default(),
                            outcome: Outcome::Record(Box::new(Record::Bank(tx))),
                        },
                        Err(e) => DecodedItem {
                            index: i as u64,
                            position: e.position.clone(),
                            raw: e.raw.clone().unwrap_or_default(),
                            outcome: Outcome::Error(e),
                        },
                    })
                    .collect();
                Decoded {
                    items,
                    statements: Vec::new(),
                }
            }
            Err(e) => failed("file", bytes, e),
        }
    }
}
