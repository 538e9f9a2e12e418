//! ISO 20022 bank-to-customer cash management messages: camt.053 statements, camt.054
//! notifications and camt.052 reports, versions .001.02 to .001.08 (elements are found by
//! local name, so every version's namespace reads the same way).
//!
//! Only booked entries become transactions. A batch entry (`NtryDtls` with several
//! `TxDtls`) yields one transaction per payment. Statements with opening and closing
//! balances are checked: opening + credits - debits must equal closing.

use crate::error::{ValueError, invalid};
use std::str::FromStr;

use chrono::NaiveDate;
use roxmltree::{Document, Node};
use rust_decimal::Decimal;

use crate::error::DecodeError;
use crate::model::{BankTransaction, Currency, Direction, Money};
pub use crate::statement::StatementSummary;

/// A decoded camt message: transactions (or per-entry errors) and statement summaries.
#[derive(Clone, Debug)]
pub struct CamtMessage {
    /// e.g. `camt.053.001.08`.
    pub format: String,
    pub statements: Vec<StatementSummary>,
    pub transactions: Vec<Result<BankTransaction, DecodeError>>,
    /// Entries that were not booked (pending, information only) and so carry no money yet.
    pub unbooked_entries: usize,
}

const FORMAT: &str = "camt";

fn child<'a>(node: Node<'a, 'a>, name: &str) -> Option<Node<'a, 'a>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn children<'a>(node: Node<'a, 'a>, name: &'a str) -> impl Iterator<Item = Node<'a, 'a>> + 'a {
    node.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == name)
}

fn path<'a>(node: Node<'a, 'a>, names: &[&str]) -> Option<Node<'a, 'a>> {
    names.iter().try_fold(node, |n, name| child(n, name))
}

fn text_at(node: Node<'_, '_>, names: &[&str]) -> Option<String> {
    path(node, names)
        .and_then(|n| n.text())
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

fn date_at(node: Node<'_, '_>, names: &[&str]) -> Option<NaiveDate> {
    let n = path(node, names)?;
    if let Some(d) = text_at(n, &["Dt"]) {
        return NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok();
    }
    let dt = text_at(n, &["DtTm"])?;
    NaiveDate::parse_from_str(dt.get(..10)?, "%Y-%m-%d").ok()
}

/// Reads the bytes of a camt file, honouring a non-UTF-8 encoding declared in the prolog.
pub fn decode_bytes(bytes: &[u8]) -> Result<CamtMessage, DecodeError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => decode(text),
        Err(_) => {
            let head = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).to_string();
            let label = regex_lite_encoding(&head).unwrap_or_else(|| "windows-1252".into());
            let enc = encoding_rs::Encoding::for_label(label.as_bytes()).ok_or_else(|| {
                DecodeError::new(FORMAT, "", format!("unknown XML encoding `{label}`"))
            })?;
            let (text, _, _) = enc.decode(bytes);
            let text = text.replacen(&format!("encoding=\"{label}\""), "encoding=\"UTF-8\"", 1);
            decode(&text)
        }
    }
}

fn regex_lite_encoding(head: &str) -> Option<String> {
    let start = head.find("encoding=")? + "encoding=".len();
    let quote = head[start..].chars().next()?;
    let rest = &head[start + quote.len_utf8()..];
    Some(rest[..rest.find(quote)?].to_string())
}

/// Decodes a camt message.
pub fn decode(xml: &str) -> Result<CamtMessage, DecodeError> {
    let doc = Document::parse(xml)
        .map_err(|e| DecodeError::new(FORMAT, "", format!("not well-formed XML: {e}")))?;
    let root = doc.root_element();
    let ns = root.tag_name().namespace().unwrap_or("");
    let format = ns
        .rsplit(':')
        .next()
        .filter(|v| v.starts_with("camt."))
        .unwrap_or("camt")
        .to_string();
    let message = root
        .children()
        .find(|c| c.is_element())
        .ok_or_else(|| DecodeError::new(FORMAT, "", "empty document"))?;
    let kind = message.tag_name().name();
    let statement_tag = match kind {
        "BkToCstmrStmt" => "Stmt",
        "BkToCstmrDbtCdtNtfctn" => "Ntfctn",
        "BkToCstmrAcctRpt" => "Rpt",
        other => {
            return Err(DecodeError::new(
                FORMAT,
                "",
                format!("`{other}` is not a bank-to-customer statement, notification or report"),
            ));
        }
    };
    let mut out = CamtMessage {
        format,
        statements: Vec::new(),
        transactions: Vec::new(),
        unbooked_entries: 0,
    };
    for (si, stmt) in children(message, statement_tag).enumerate() {
        decode_statement(xml, stmt, si + 1, &mut out);
    }
    if out.statements.is_empty() {
        return Err(DecodeError::new(
            FORMAT,
            "",
            format!("no `{statement_tag}` in the message"),
        ));
    }
    Ok(out)
}

fn decode_statement(xml: &str, stmt: Node<'_, '_>, number: usize, out: &mut CamtMessage) {
    let id = text_at(stmt, &["Id"]).unwrap_or_else(|| format!("statement-{number}"));
    let account = text_at(stmt, &["Acct", "Id", "IBAN"])
        .or_else(|| text_at(stmt, &["Acct", "Id", "Othr", "Id"]))
        .unwrap_or_default();
    let acct_ccy = text_at(stmt, &["Acct", "Ccy"]).and_then(|c| Currency::from_str(&c).ok());
    let mut opening = None;
    let mut closing = None;
    let mut problems = Vec::new();
    for bal in children(stmt, "Bal") {
        let code = text_at(bal, &["Tp", "CdOrPrtry", "Cd"]).unwrap_or_default();
        let Some(amount) = signed_amount(bal) else {
            if matches!(code.as_str(), "OPBD" | "PRCD" | "CLBD") {
                let written = text_at(bal, &["Amt"]).unwrap_or_default();
                problems.push(format!(
                    "statement {id}: the {code} balance `{written}` is unreadable, so the statement's balance cannot be checked"
                ));
            }
            continue;
        };
        match code.as_str() {
            "OPBD" | "PRCD" if opening.is_none() => opening = Some(amount),
            "CLBD" if closing.is_none() => closing = Some(amount),
            _ => {}
        }
    }
    let mut summary = StatementSummary {
        id: id.clone(),
        account: account.clone(),
        currency: acct_ccy,
        opening_balance: opening,
        closing_balance: closing,
        booked_credits: Decimal::ZERO,
        booked_debits: Decimal::ZERO,
        entries: 0,
        balance_difference: None,
        problems,
    };
    for (ei, entry) in children(stmt, "Ntry").enumerate() {
        summary.entries += 1;
        let position = format!("statement {id} entry {}", ei + 1);
        let booked = match path(entry, &["Sts", "Cd"]).or_else(|| child(entry, "Sts")) {
            Some(n) => n.text().map(str::trim) == Some("BOOK"),
            None => true,
        };
        if !booked {
            out.unbooked_entries += 1;
            continue;
        }
        match decode_entry(entry, &account, &position, &out.format) {
            Ok(txs) => {
                for tx in &txs {
                    summary.book(tx.direction, tx.amount.amount);
                }
                out.transactions.extend(txs.into_iter().map(Ok));
            }
            Err(reason) => {
                // The money is still on the statement even if the entry cannot be used.
                if let Some((amt, dir)) = entry_amount(entry) {
                    summary.book(dir, amt);
                }
                out.transactions.push(Err(reason
                    .at(FORMAT, position)
                    .with_raw(&xml[entry.range()])));
            }
        }
    }
    summary.check_balance();
    out.statements.push(summary);
}

/// An ISO 20022 amount (`xs:decimal`: digits, at most one point, nothing else), exactly.
fn xs_decimal(text: &str) -> Option<Decimal> {
    let t = text.trim();
    let (whole, fraction) = t.split_once('.').unwrap_or((t, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) {
        return None;
    }
    Decimal::from_str(t).ok()
}

fn signed_amount(node: Node<'_, '_>) -> Option<Decimal> {
    let amt = xs_decimal(&text_at(node, &["Amt"])?)?;
    Some(match text_at(node, &["CdtDbtInd"]).as_deref() {
        Some("DBIT") => -amt,
        _ => amt,
    })
}

fn entry_amount(entry: Node<'_, '_>) -> Option<(Decimal, Direction)> {
    let amt = xs_decimal(&text_at(entry, &["Amt"])?)?;
    let dir = match text_at(entry, &["CdtDbtInd"])?.as_str() {
        "CRDT" => Direction::Credit,
        "DBIT" => Direction::Debit,
        _ => return None,
    };
    Some((amt, dir))
}

fn amount_of(node: Node<'_, '_>, what: &str) -> Result<Money, ValueError> {
    let amt = child(node, "Amt").ok_or_else(|| invalid!("{what} has no Amt"))?;
    let text = amt.text().map(str::trim).unwrap_or("");
    if text.starts_with('-') {
        return Err(invalid!(
            "{what} Amt `{text}` is negative (the sign belongs in CdtDbtInd)"
        ));
    }
    let value =
        xs_decimal(text).ok_or_else(|| invalid!("{what} Amt `{text}` is not a decimal amount"))?;
    let value =
        crate::money::within_range(text, value).map_err(|e| e.in_field(format!("{what} Amt")))?;
    let ccy = amt
        .attribute("Ccy")
        .ok_or_else(|| invalid!("{what} Amt has no Ccy attribute"))?;
    let currency = Currency::from_str(ccy).map_err(|e| invalid!("{what} Amt@Ccy: {e}"))?;
    Ok(Money::new(value, currency))
}

fn direction_of(node: Node<'_, '_>) -> Result<Option<Direction>, ValueError> {
    match text_at(node, &["CdtDbtInd"]).as_deref() {
        Some("CRDT") => Ok(Some(Direction::Credit)),
        Some("DBIT") => Ok(Some(Direction::Debit)),
        Some(other) => Err(invalid!("CdtDbtInd `{other}` is neither CRDT nor DBIT")),
        None => Ok(None),
    }
}

fn decode_entry(
    entry: Node<'_, '_>,
    account: &str,
    position: &str,
    format: &str,
) -> Result<Vec<BankTransaction>, ValueError> {
    let amount = amount_of(entry, "entry")?;
    let direction = direction_of(entry)?.ok_or("entry has no CdtDbtInd")?;
    let reversal = text_at(entry, &["RvslInd"]).is_some_and(|v| v == "true" || v == "1");
    let booking_date = date_at(entry, &["BookgDt"])
        .or_else(|| date_at(entry, &["ValDt"]))
        .ok_or("entry has neither BookgDt nor ValDt")?;
    let value_date = date_at(entry, &["ValDt"]);
    let entry_ref = text_at(entry, &["AcctSvcrRef"]).or_else(|| text_at(entry, &["NtryRef"]));
    let entry_info = text_at(entry, &["AddtlNtryInf"]);

    let details: Vec<Node> = children(entry, "NtryDtls")
        .flat_map(|d| children(d, "TxDtls"))
        .collect();
    let base = BankTransaction {
        bank_ref: String::new(),
        account: account.to_string(),
        direction,
        amount,
        reversal,
        booking_date,
        value_date,
        counterparty_name: None,
        counterparty_account: None,
        remittance: String::new(),
        end_to_end_id: None,
        format: format.to_string(),
    };
    let fallback_ref = || {
        entry_ref.clone().unwrap_or_else(|| {
            format!(
                "{account}/{booking_date}/{}",
                position.rsplit(' ').next().unwrap_or("")
            )
        })
    };

    if details.len() <= 1 {
        let mut tx = base;
        tx.bank_ref = fallback_ref();
        fill_details(&mut tx, details.first().copied(), entry_info.as_deref());
        return Ok(vec![tx]);
    }

    // A batch: one booked amount, several payments. Each needs its own amount to be split.
    let mut txs = Vec::with_capacity(details.len());
    let mut sum = Decimal::ZERO;
    for (ti, d) in details.iter().enumerate() {
        let what = format!("batch transaction {}", ti + 1);
        let tx_amount = match child(*d, "Amt") {
            Some(_) => amount_of(*d, &what)?,
            None => path(*d, &["AmtDtls", "TxAmt"])
                .or_else(|| path(*d, &["AmtDtls", "InstdAmt"]))
                .map(|n| amount_of(n, &what))
                .ok_or_else(|| invalid!("{what} has no amount, so the batch cannot be split"))??,
        };
        if tx_amount.currency != amount.currency {
            return Err(invalid!(
                "{what} is in {} but the entry is in {}",
                tx_amount.currency,
                amount.currency
            ));
        }
        sum += tx_amount.amount;
        let mut tx = base.clone();
        tx.amount = tx_amount;
        tx.direction = direction_of(*d)?.unwrap_or(direction);
        tx.bank_ref = text_at(*d, &["Refs", "AcctSvcrRef"])
            .filter(|r| Some(r) != entry_ref.as_ref())
            .unwrap_or_else(|| format!("{}/{}", fallback_ref(), ti + 1));
        fill_details(&mut tx, Some(*d), entry_info.as_deref());
        txs.push(tx);
    }
    if txs.iter().all(|t| t.direction == direction) && sum != amount.amount {
        return Err(invalid!(
            "batch transactions sum to {sum} but the entry amount is {}",
            amount.amount
        ));
    }
    Ok(txs)
}

fn fill_details(tx: &mut BankTransaction, details: Option<Node<'_, '_>>, entry_info: Option<&str>) {
    let mut remittance: Vec<String> = Vec::new();
    if let Some(d) = details {
        let party = match tx.direction {
            Direction::Credit => ("Dbtr", "DbtrAcct", "UltmtDbtr"),
            Direction::Debit => ("Cdtr", "CdtrAcct", "UltmtCdtr"),
        };
        // v02-v07: RltdPties/Dbtr/Nm; v08: RltdPties/Dbtr/Pty/Nm.
        tx.counterparty_name = text_at(d, &["RltdPties", party.0, "Nm"])
            .or_else(|| text_at(d, &["RltdPties", party.0, "Pty", "Nm"]))
            .or_else(|| text_at(d, &["RltdPties", party.2, "Nm"]))
            .or_else(|| text_at(d, &["RltdPties", party.2, "Pty", "Nm"]));
        tx.counterparty_account = text_at(d, &["RltdPties", party.1, "Id", "IBAN"])
            .or_else(|| text_at(d, &["RltdPties", party.1, "Id", "Othr", "Id"]));
        tx.end_to_end_id = text_at(d, &["Refs", "EndToEndId"]).filter(|r| r != "NOTPROVIDED");
        if let Some(rmt) = child(d, "RmtInf") {
            for u in children(rmt, "Ustrd") {
                if let Some(t) = u.text().map(str::trim).filter(|t| !t.is_empty()) {
                    remittance.push(t.to_string());
                }
            }
            for s in children(rmt, "Strd") {
                if let Some(r) = text_at(s, &["CdtrRefInf", "Ref"]) {
                    remittance.push(r);
                }
                for info in children(s, "AddtlRmtInf") {
                    if let Some(t) = info.text().map(str::trim).filter(|t| !t.is_empty()) {
                        remittance.push(t.to_string());
                    }
                }
            }
        }
        if let Some(info) = text_at(d, &["AddtlTxInf"]) {
            remittance.push(info);
        }
    }
    if let Some(info) = entry_info {
        remittance.push(info.to_string());
    }
    // Banks often repeat the same text at transaction and entry level.
    let mut seen = std::collections::HashSet::new();
    remittance.retain(|r| seen.insert(r.clone()));
    tx.remittance = remittance.join(" | ");
}
