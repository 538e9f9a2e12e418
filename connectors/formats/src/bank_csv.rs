//! Bank statement exports as CSV. Every bank lays its columns out differently, so the
//! mapping is configuration: column names, a signed amount or separate credit/debit
//! columns, date formats, separators and the file's encoding (GBK for most Chinese banks).

use crate::error::{ValueError, invalid};
use std::collections::HashMap;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::DecodeError;
use crate::model::{BankTransaction, Currency, Direction, Money};
use crate::money::parse_amount_with;

/// Which header holds what. Unset optional columns are simply not read.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvColumns {
    pub booking_date: String,
    #[serde(default)]
    pub value_date: Option<String>,
    /// A signed amount column (see `negative_is_debit`); or use `credit` and `debit`.
    #[serde(default)]
    pub amount: Option<String>,
    #[serde(default)]
    pub credit: Option<String>,
    #[serde(default)]
    pub debit: Option<String>,
    /// The bank's unique reference; without it a reference is derived from the row.
    #[serde(default)]
    pub reference: Option<String>,
    #[serde(default)]
    pub counterparty_name: Option<String>,
    #[serde(default)]
    pub counterparty_account: Option<String>,
    /// Columns joined (with ` | `) into the remittance text.
    #[serde(default)]
    pub remittance: Vec<String>,
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
}

/// A bank's CSV layout.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvOptions {
    pub columns: CsvColumns,
    /// Any WHATWG encoding label: `utf-8`, `gbk`, `gb18030`, `windows-1252`.
    #[serde(default = "default_encoding")]
    pub encoding: String,
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    /// Lines before the header row (bank name, account, period...).
    #[serde(default)]
    pub skip_lines: usize,
    /// chrono formats tried in order.
    #[serde(default = "default_date_formats")]
    pub date_formats: Vec<String>,
    #[serde(default = "default_decimal_separator")]
    pub decimal_separator: char,
    #[serde(default)]
    pub thousands_separator: Option<char>,
    /// With a single signed amount column: negative means money out (the usual convention).
    #[serde(default = "yes")]
    pub negative_is_debit: bool,
    /// The statement's account when no column carries it.
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default = "default_currency")]
    pub currency: Currency,
}

fn default_encoding() -> String {
    "utf-8".into()
}
fn default_delimiter() -> char {
    ','
}
fn default_date_formats() -> Vec<String> {
    vec![
        "%Y-%m-%d".into(),
        "%Y/%m/%d".into(),
        "%Y%m%d".into(),
        "%Y-%m-%d %H:%M:%S".into(),
    ]
}
fn default_decimal_separator() -> char {
    '.'
}
fn yes() -> bool {
    true
}
fn default_currency() -> Currency {
    Currency::CNY
}

const FORMAT: &str = "bank csv";

/// Decodes a whole CSV export. Row errors are returned in place; a file whose header lacks
/// a mapped column fails as a whole.
pub fn decode(
    bytes: &[u8],
    options: &CsvOptions,
) -> Result<Vec<Result<BankTransaction, DecodeError>>, DecodeError> {
    let encoding =
        encoding_rs::Encoding::for_label(options.encoding.as_bytes()).ok_or_else(|| {
            DecodeError::new(
                FORMAT,
                "",
                format!("unknown encoding `{}`", options.encoding),
            )
        })?;
    let (text, _, had_errors) = encoding.decode(bytes);
    if had_errors {
        return Err(DecodeError::new(
            FORMAT,
            "",
            format!("the file is not valid {} text", encoding.name()),
        ));
    }
    let body: String = text
        .lines()
        .skip(options.skip_lines)
        .collect::<Vec<_>>()
        .join("\n");
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(options.delimiter as u8)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(body.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| {
            DecodeError::new(
                FORMAT,
                format!("line {}", options.skip_lines + 1),
                e.to_string(),
            )
        })?
        .clone();
    let index: HashMap<&str, usize> = headers.iter().enumerate().map(|(i, h)| (h, i)).collect();
    let col = |name: &Option<String>| -> Result<Option<usize>, DecodeError> {
        match name {
            None => Ok(None),
            Some(n) => index.get(n.as_str()).copied().map(Some).ok_or_else(|| {
                DecodeError::new(
                    FORMAT,
                    format!("line {}", options.skip_lines + 1),
                    format!(
                        "the header has no column `{n}` (columns: {})",
                        headers.iter().collect::<Vec<_>>().join(", ")
                    ),
                )
            }),
        }
    };
    let c = &options.columns;
    let date_col = col(&Some(c.booking_date.clone()))?.expect("set");
    let value_date_col = col(&c.value_date)?;
    let amount_col = col(&c.amount)?;
    let credit_col = col(&c.credit)?;
    let debit_col = col(&c.debit)?;
    if amount_col.is_none() && credit_col.is_none() && debit_col.is_none() {
        return Err(DecodeError::new(
            FORMAT,
            "",
            "the mapping names neither `amount` nor `credit`/`debit` columns",
        ));
    }
    let ref_col = col(&c.reference)?;
    let name_col = col(&c.counterparty_name)?;
    let acct_col = col(&c.counterparty_account)?;
    let account_col = col(&c.account)?;
    let ccy_col = col(&c.currency)?;
    let rmt_cols: Vec<usize> = c
        .remittance
        .iter()
        .map(|r| col(&Some(r.clone())).map(|i| i.expect("set")))
        .collect::<Result<_, _>>()?;

    let mut out = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, row) in reader.records().enumerate() {
        let line = options.skip_lines + i + 2;
        let position = format!("line {line}");
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                out.push(Err(DecodeError::new(FORMAT, position, e.to_string())));
                continue;
            }
        };
        if row.iter().all(str::is_empty) {
            continue;
        }
        let get = |i: Option<usize>| {
            i.and_then(|i| row.get(i))
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        let result = (|| -> Result<BankTransaction, ValueError> {
            let date_text =
                get(Some(date_col)).ok_or_else(|| invalid!("empty `{}`", c.booking_date))?;
            let booking_date = parse_date(date_text, &options.date_formats)?;
            let value_date = get(value_date_col)
                .map(|d| parse_date(d, &options.date_formats))
                .transpose()?;
            let amount_of = |s: &str| {
                parse_amount_with(s, options.decimal_separator, options.thousands_separator)
            };
            let (direction, amount) = if let Some(text) = get(amount_col) {
                let a = amount_of(text)?;
                let debit = a.is_sign_negative() == options.negative_is_debit;
                (
                    if debit {
                        Direction::Debit
                    } else {
                        Direction::Credit
                    },
                    a.abs(),
                )
            } else {
                let credit = get(credit_col)
                    .map(amount_of)
                    .transpose()?
                    .filter(|a| !a.is_zero());
                let debit = get(debit_col)
                    .map(amount_of)
                    .transpose()?
                    .filter(|a| !a.is_zero());
                // With separate columns each holds a positive amount: a minus sign there
                // (a reversal? a correction?) is not guessed at.
                for (a, name) in [(credit, &c.credit), (debit, &c.debit)] {
                    if let Some(a) = a.filter(|a| a.is_sign_negative()) {
                        return Err(invalid!(
                            "`{}` holds the negative amount {a}; with separate credit and debit columns each holds a positive amount",
                            name.as_deref().unwrap_or_default()
                        ));
                    }
                }
                match (credit, debit) {
                    (Some(a), None) => (Direction::Credit, a),
                    (None, Some(a)) => (Direction::Debit, a),
                    (None, None) => return Err("neither a credit nor a debit amount".into()),
                    (Some(_), Some(_)) => return Err("both a credit and a debit amount".into()),
                }
            };
            let currency = match get(ccy_col) {
                Some(code) => Currency::from_str(code)?,
                None => options.currency,
            };
            let account = get(account_col)
                .map(str::to_string)
                .or_else(|| options.account.clone())
                .unwrap_or_default();
            let remittance = rmt_cols
                .iter()
                .filter_map(|i| get(Some(*i)))
                .collect::<Vec<_>>()
                .join(" | ");
            let counterparty_name = get(name_col).map(str::to_string);
            let counterparty_account = get(acct_col).map(str::to_string);
            let bank_ref = match get(ref_col) {
                Some(r) => r.to_string(),
                None => {
                    // No bank reference: derive one from the row's content, numbering identical rows.
                    let mut h = Sha256::new();
                    h.update(format!("{account}|{booking_date}|{direction:?}|{amount}|{counterparty_account:?}|{remittance}"));
                    let digest = hex::encode(&h.finalize()[..8]);
                    let n = seen.entry(digest.clone()).or_insert(0);
                    *n += 1;
                    format!("csv-{digest}-{n}")
                }
            };
            Ok(BankTransaction {
                bank_ref,
                account,
                direction,
                amount: Money::new(amount, currency),
                reversal: false,
                booking_date,
                value_date,
                counterparty_name,
                counterparty_account,
                remittance,
                end_to_end_id: None,
                format: "csv".into(),
            })
        })();
        let raw = row
            .iter()
            .collect::<Vec<_>>()
            .join(&options.delimiter.to_string());
        out.push(result.map_err(|reason| reason.at(FORMAT, position).with_raw(raw)));
    }
    Ok(out)
}

fn parse_date(text: &str, formats: &[String]) -> Result<NaiveDate, ValueError> {
    for f in formats {
        if let Ok(d) = NaiveDate::parse_from_str(text, f) {
            return Ok(d);
        }
        if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(text, f) {
            return Ok(dt.date());
        }
    }
    Err(invalid!(
        "`{text}` matches none of the date formats {formats:?}"
    ))
}
