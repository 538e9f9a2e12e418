//! SWIFT MT940 customer statements and MT942 interim reports: several statements per file,
//! `:61:` statement lines with their `:86:` details (free text or the common structured
//! styles: `?20..?29` German sub-fields, `/CODE/value/` SEPA style), opening and closing
//! balances checked like camt.

use crate::error::{ValueError, invalid};
use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::error::DecodeError;
use crate::model::{BankTransaction, Currency, Direction, Money};
use crate::statement::StatementSummary;

const FORMAT: &str = "mt940";

/// A decoded MT940/MT942 file.
#[derive(Clone, Debug)]
pub struct Mt940Message {
    /// `mt940` or `mt942`.
    pub format: String,
    pub statements: Vec<StatementSummary>,
    pub transactions: Vec<Result<BankTransaction, DecodeError>>,
}

/// One tag and its (possibly multi-line) value, with the line it started on.
struct Field {
    tag: String,
    value: String,
    line: usize,
}

fn fields(text: &str) -> Vec<Field> {
    let mut out: Vec<Field> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if let Some(rest) = line.strip_prefix(':')
            && let Some(end) = rest.find(':')
            && end <= 4
            && rest[..end].chars().all(|c| c.is_ascii_alphanumeric())
        {
            out.push(Field {
                tag: rest[..end].to_string(),
                value: rest[end + 1..].to_string(),
                line: i + 1,
            });
        } else if line.trim() == "-" || line.trim().starts_with('{') || line.trim() == "-}" {
            // Block ends and SWIFT envelope braces separate messages.
            out.push(Field {
                tag: "-".into(),
                value: String::new(),
                line: i + 1,
            });
        } else if let Some(last) = out.last_mut().filter(|f| f.tag != "-") {
            last.value.push('\n');
            last.value.push_str(line);
        }
    }
    out
}

/// A SWIFT amount: digits with a decimal comma (`3236,28`, `100,`), nothing else.
fn amount(text: &str) -> Result<Decimal, ValueError> {
    let t = text.trim();
    // The standard's decimal comma; a point from banks that do not follow it.
    let sep = if t.contains(',') { ',' } else { '.' };
    let (whole, fraction) = t.split_once(sep).unwrap_or((t, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || whole.len() + fraction.len() > 28
    {
        return Err(invalid!(
            "`{text}` is not an amount (digits and one decimal comma)"
        ));
    }
    let plain = if fraction.is_empty() {
        whole.to_string()
    } else {
        format!("{whole}.{fraction}")
    };
    let d = Decimal::from_str(&plain).map_err(|_| invalid!("`{text}` is not an amount"))?;
    crate::money::within_range(text, d)
}

fn date6(s: &str) -> Result<NaiveDate, ValueError> {
    NaiveDate::parse_from_str(s, "%y%m%d").map_err(|_| invalid!("`{s}` is not a YYMMDD date"))
}

/// `C110522EUR3236,28` -> signed amount, date, currency.
fn balance(value: &str) -> Result<(Decimal, NaiveDate, Currency), ValueError> {
    let v = value.trim();
    let part = |r: std::ops::Range<usize>| {
        v.get(r)
            .ok_or_else(|| invalid!("balance `{v}` is too short or not ASCII"))
    };
    if v.len() < 11 {
        return Err(invalid!("balance `{v}` is too short"));
    }
    let sign = part(0..1)?;
    if sign != "C" && sign != "D" {
        return Err(invalid!("balance `{v}` does not start with C or D"));
    }
    let date = date6(part(1..7)?)?;
    let currency = Currency::from_str(part(7..10)?)?;
    let a = amount(v.get(10..).unwrap_or_default())?;
    Ok((if sign == "D" { -a } else { a }, date, currency))
}

/// A parsed `:61:` statement line.
struct Line61 {
    value_date: NaiveDate,
    booking_date: NaiveDate,
    direction: Direction,
    reversal: bool,
    amount: Decimal,
    customer_ref: String,
    bank_ref: Option<String>,
    supplementary: String,
}

fn line61(value: &str) -> Result<Line61, ValueError> {
    let lines: Vec<&str> = value.lines().collect();
    let first = lines.first().copied().unwrap_or("");
    match line61_from(first, lines.get(1..).unwrap_or_default()) {
        // Some banks wrap a long statement line inside the amount: read it joined.
        Err(e) if lines.len() > 1 && e.to_string().contains("no transaction type") => {
            let joined = format!("{first}{}", lines[1].trim_start());
            line61_from(&joined, &lines[2..]).map_err(|_| e)
        }
        other => other,
    }
}

fn line61_from(first: &str, rest_lines: &[&str]) -> Result<Line61, ValueError> {
    let rest_lines = rest_lines.to_vec();
    // The fixed part (dates, mark, amount, type) is ASCII; the references after it may not be.
    let ascii_end = first.find(|c: char| !c.is_ascii()).unwrap_or(first.len());
    let b = &first.as_bytes()[..ascii_end];
    let at = |i: usize| first.get(i..ascii_end).unwrap_or("");
    if b.len() < 8 {
        return Err(invalid!("statement line `{first}` is too short"));
    }
    let value_date = date6(&first[..6])?;
    let mut i = 6;
    // Optional entry date MMDD.
    let mut booking_date = value_date;
    if b.len() >= i + 4 && b[i..i + 4].iter().all(u8::is_ascii_digit) {
        let (m, d) = (&first[i..i + 2], &first[i + 2..i + 4]);
        let year = chrono::Datelike::year(&value_date);
        let candidate = |y: i32| NaiveDate::from_ymd_opt(y, m.parse().ok()?, d.parse().ok()?);
        // The entry date may fall in the year before or after the value date.
        booking_date = [year, year - 1, year + 1]
            .into_iter()
            .filter_map(candidate)
            .min_by_key(|c| (*c - value_date).num_days().abs())
            .ok_or_else(|| invalid!("entry date `{m}{d}` is not a date"))?;
        i += 4;
    }
    let (direction, reversal) = if at(i).starts_with("RC") {
        i += 2;
        (Direction::Debit, true)
    } else if at(i).starts_with("RD") {
        i += 2;
        (Direction::Credit, true)
    } else if at(i).starts_with('C') || at(i).starts_with("EC") {
        i += if at(i).starts_with('E') { 2 } else { 1 };
        (Direction::Credit, false)
    } else if at(i).starts_with('D') || at(i).starts_with("ED") {
        i += if at(i).starts_with('E') { 2 } else { 1 };
        (Direction::Debit, false)
    } else {
        return Err(invalid!(
            "statement line `{first}`: no debit/credit mark after the dates"
        ));
    };
    // Optional funds code: the third letter of the currency code.
    if b.get(i).is_some_and(|c| c.is_ascii_alphabetic()) {
        i += 1;
    }
    let start = i;
    while b
        .get(i)
        .is_some_and(|c| c.is_ascii_digit() || *c == b',' || *c == b'.')
    {
        i += 1;
    }
    let amount = amount(&first[start..i])?;
    // Transaction type: N, F or S and a three-character code.
    if b.len() >= i + 4 {
        i += 4;
    } else {
        return Err(invalid!(
            "statement line `{first}`: no transaction type after the amount"
        ));
    }
    let tail = &first[i..];
    let (reference, bank) = match tail.split_once("//") {
        Some((r, b)) => (r, Some(b)),
        None => (tail, None),
    };
    // Up to 16 characters of customer reference; some banks put a name after it on the line.
    let customer_ref: String = reference
        .chars()
        .take(16)
        .collect::<String>()
        .trim()
        .to_string();
    let mut supplementary = reference
        .chars()
        .skip(16)
        .collect::<String>()
        .trim()
        .to_string();
    let bank_ref = bank
        .map(|b| b.chars().take(16).collect::<String>().trim().to_string())
        .filter(|b| !b.is_empty());
    if let Some(b) = bank {
        let extra = b.chars().skip(16).collect::<String>();
        if !extra.trim().is_empty() {
            supplementary = extra.trim().to_string();
        }
    }
    for l in rest_lines {
        if !l.trim().is_empty() {
            if !supplementary.is_empty() {
                supplementary.push(' ');
            }
            supplementary.push_str(l.trim());
        }
    }
    Ok(Line61 {
        value_date,
        booking_date,
        direction,
        reversal,
        amount,
        customer_ref,
        bank_ref,
        supplementary,
    })
}

/// What `:86:` says: counterparty and remittance, from whichever style the bank uses.
#[derive(Default)]
struct Details {
    name: Option<String>,
    account: Option<String>,
    remittance: String,
}

fn details(text: &str) -> Details {
    let joined: String = text.lines().map(str::trim_end).collect::<Vec<_>>().join("");
    let mut d = Details::default();
    if joined.contains("?20") || joined.contains("?00") {
        // German style: ?00 posting text, ?20-?29 and ?60-?63 remittance, ?31 account, ?32-?33 name.
        let mut remittance = Vec::new();
        let mut name = String::new();
        for part in joined.split('?').skip(1) {
            // A field code is two ASCII digits; anything else is not a field.
            let Some((code, value)) = part.split_at_checked(2) else {
                continue;
            };
            match code {
                "20" | "21" | "22" | "23" | "24" | "25" | "26" | "27" | "28" | "29" | "60"
                | "61" | "62" | "63" => remittance.push(value.to_string()),
                "31" => d.account = Some(value.trim().to_string()).filter(|v| !v.is_empty()),
                "32" | "33" => name.push_str(value),
                _ => {}
            }
        }
        d.name = Some(name.trim().to_string()).filter(|n| !n.is_empty());
        d.remittance = remittance.join("").trim().to_string();
        return d;
    }
    if joined.starts_with('/') && joined[1..].contains('/') {
        // SEPA style: /CODE/value/CODE/value (NAME, IBAN, REMI, EREF ...).
        const CODES: [&str; 12] = [
            "TRTP", "IBAN", "BIC", "NAME", "REMI", "EREF", "MARF", "CSID", "ORDP", "BENM", "ID",
            "SVCL",
        ];
        let mut current: Option<&str> = None;
        let mut values: Vec<(String, String)> = Vec::new();
        for piece in joined.split('/') {
            if let Some(code) = CODES.iter().find(|c| **c == piece.trim()) {
                current = Some(code);
                values.push((code.to_string(), String::new()));
            } else if current.is_some()
                && let Some(last) = values.last_mut()
            {
                if !last.1.is_empty() {
                    last.1.push('/');
                }
                last.1.push_str(piece);
            }
        }
        let get = |code: &str| {
            values
                .iter()
                .find(|(c, _)| c == code)
                .map(|(_, v)| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        d.name = get("NAME");
        d.account = get("IBAN");
        let mut remittance: Vec<String> = Vec::new();
        if let Some(r) = get("REMI") {
            // REMI may itself hold /USTD//text or /STRD/CUR/ref sub-codes.
            remittance.push(
                r.trim_start_matches("USTD//")
                    .trim_start_matches("STRD/CUR/")
                    .to_string(),
            );
        }
        if let Some(e) = get("EREF").filter(|e| e != "NOTPROVIDED") {
            remittance.push(e);
        }
        d.remittance = if remittance.is_empty() {
            joined.clone()
        } else {
            remittance.join(" | ")
        };
        return d;
    }
    d.remittance = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    d
}

/// Decodes an MT940 or MT942 file (any number of statements).
pub fn decode(text: &str) -> Result<Mt940Message, DecodeError> {
    // Some banks end the file (or each message) with the DOS end-of-file byte.
    let text = text.replace('\u{1a}', "");
    let fields = fields(&text);
    if !fields
        .iter()
        .any(|f| f.tag == "61" || f.tag == "60F" || f.tag == "60M" || f.tag == "34F")
    {
        return Err(DecodeError::new(
            FORMAT,
            "",
            "no MT940/MT942 statement in the file (no :60F:, :61: or :34F: field)",
        ));
    }
    let mt942 = fields.iter().any(|f| f.tag == "34F" || f.tag == "13D")
        && !fields.iter().any(|f| f.tag.starts_with("60"));
    let format = if mt942 { "mt942" } else { "mt940" };
    let mut out = Mt940Message {
        format: format.into(),
        statements: Vec::new(),
        transactions: Vec::new(),
    };
    // Split into statements at each :20:.
    let mut groups: Vec<Vec<&Field>> = Vec::new();
    for f in &fields {
        if f.tag == "20" || groups.is_empty() {
            groups.push(Vec::new());
        }
        if f.tag != "-" {
            groups.last_mut().expect("a group").push(f);
        }
    }
    for group in groups
        .into_iter()
        .filter(|g| g.iter().any(|f| f.tag == "25" || f.tag == "61"))
    {
        decode_statement(&group, format, &mut out);
    }
    Ok(out)
}

fn decode_statement(group: &[&Field], format: &str, out: &mut Mt940Message) {
    let get = |tag: &str| {
        group
            .iter()
            .find(|f| f.tag == tag)
            .map(|f| f.value.trim().to_string())
    };
    let reference = get("20").unwrap_or_default();
    let account = get("25").unwrap_or_default();
    let number = get("28C").or_else(|| get("28")).unwrap_or_default();
    let opening = get("60F").or_else(|| get("60M")).map(|v| balance(&v));
    let closing = get("62F").or_else(|| get("62M")).map(|v| balance(&v));
    // MT940 names the currency in its balances; MT942 in its floor limit (:34F:EURD0,).
    let currency = match (&opening, &closing) {
        (Some(Ok((_, _, c))), _) | (_, Some(Ok((_, _, c)))) => Some(*c),
        _ => get("34F").and_then(|v| v.get(..3).and_then(|c| Currency::from_str(c).ok())),
    };
    let mut summary = StatementSummary {
        id: if number.is_empty() {
            reference.clone()
        } else {
            format!("{reference} {number}")
        },
        account: account.clone(),
        currency,
        opening_balance: opening.as_ref().and_then(|b| b.as_ref().ok()).map(|b| b.0),
        closing_balance: closing.as_ref().and_then(|b| b.as_ref().ok()).map(|b| b.0),
        booked_credits: Decimal::ZERO,
        booked_debits: Decimal::ZERO,
        entries: 0,
        balance_difference: None,
        problems: Vec::new(),
    };
    for (what, tag, b) in [("opening", "60F", &opening), ("closing", "62F", &closing)] {
        if let Some(Err(e)) = b {
            summary.problems.push(format!(
                "statement {}: the {what} balance (:{tag}:) is unreadable ({e}), so the statement's balance cannot be checked",
                summary.id
            ));
        }
    }
    if format == "mt940" && closing.is_none() {
        summary.problems.push(format!(
            "statement {} has no closing balance (:62F:): the file may be cut short, and the balance cannot be checked",
            summary.id
        ));
    }
    let mut n = 0;
    for (i, f) in group.iter().enumerate() {
        if f.tag != "61" {
            continue;
        }
        n += 1;
        summary.entries += 1;
        let position = format!("statement {} line {} (:61: #{n})", summary.id, f.line);
        // The :86: fields after this line, up to the next :61:.
        let info: Vec<&str> = group[i + 1..]
            .iter()
            .take_while(|g| g.tag != "61")
            .filter(|g| g.tag == "86")
            .map(|g| g.value.as_str())
            .collect();
        let result = line61(&f.value).and_then(|l| {
            let currency =
                currency.ok_or("the statement has no balance line, so its currency is unknown")?;
            let d = details(&info.join("\n"));
            // Banks reuse references (Danske puts the same `//1234` on every line), so the
            // dedup key is both references with the date and the signed amount; without any
            // reference, the entry's place in its statement.
            let known = |r: &Option<String>| r.clone().filter(|r| !r.is_empty() && r != "NONREF");
            let (bank, customer) = (known(&l.bank_ref), known(&Some(l.customer_ref.clone())));
            let sign = if l.direction == Direction::Credit {
                "C"
            } else {
                "D"
            };
            let bank_ref = if bank.is_none() && customer.is_none() {
                format!("{account}/{reference}/{number}/{n}")
            } else {
                format!(
                    "{account}/{}/{}/{}/{sign}{}",
                    l.booking_date,
                    bank.as_deref().unwrap_or("-"),
                    customer.as_deref().unwrap_or("-"),
                    l.amount
                )
            };
            let mut remittance = d.remittance.clone();
            if d.name.is_none() && !l.supplementary.is_empty() {
                remittance = format!("{} | {remittance}", l.supplementary);
            }
            Ok(BankTransaction {
                bank_ref,
                account: account.clone(),
                direction: l.direction,
                amount: Money::new(l.amount, currency),
                reversal: l.reversal,
                booking_date: l.booking_date,
                value_date: Some(l.value_date),
                counterparty_name: d
                    .name
                    .or_else(|| Some(l.supplementary.clone()).filter(|s| !s.is_empty())),
                counterparty_account: d.account,
                remittance: remittance.trim_matches([' ', '|']).to_string(),
                end_to_end_id: None,
                format: format.to_string(),
            })
        });
        match result {
            Ok(tx) => {
                summary.book(tx.direction, tx.amount.amount);
                out.transactions.push(Ok(tx));
            }
            Err(reason) => out.transactions.push(Err(reason
                .at(FORMAT, position)
                .with_raw(format!(":61:{}", f.value)))),
        }
    }
    summary.check_balance();
    out.statements.push(summary);
}
