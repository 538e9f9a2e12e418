//! Writes the generated company's data in the real wire formats: Debezium JSON change
//! events, DocuSign Connect JSON SIM notifications, ISO 20022 camt.053.001.08 statements,
//! SWIFT MT940 statements and a GBK-encoded bank CSV export.

use base64::Engine;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use reconlight_formats::model::{Contract, Customer, HandoffTicket};
use rust_decimal::Decimal;
use serde_json::{Value as Json, json};

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn opt_ts(t: Option<DateTime<Utc>>) -> Json {
    t.map(|t| Json::String(ts(t))).unwrap_or(Json::Null)
}

/// The `precise` decimal encoding: base64 of the minimal big-endian two's-complement bytes.
pub fn precise_decimal(amount: Decimal, scale: u32) -> String {
    let mut d = amount;
    d.rescale(scale);
    let unscaled: i128 = d.mantissa();
    let bytes = unscaled.to_be_bytes();
    let mut start = 0;
    while start < 15 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0x00 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    base64::engine::general_purpose::STANDARD.encode(&bytes[start..])
}

fn col(field: &str, kind: &str, optional: bool) -> Json {
    json!({"type": kind, "optional": optional, "field": field})
}

fn zoned(field: &str, optional: bool) -> Json {
    json!({"type": "string", "optional": optional, "name": "io.debezium.time.ZonedTimestamp", "version": 1, "field": field})
}

fn contract_columns() -> Vec<Json> {
    vec![
        col("contract_no", "string", false),
        col("customer_id", "string", false),
        col("owner_id", "string", true),
        col("region", "string", true),
        json!({"type": "bytes", "optional": false, "name": "org.apache.kafka.connect.data.Decimal", "version": 1,
               "parameters": {"scale": "2", "connect.decimal.precision": "18"}, "field": "amount"}),
        col("currency", "string", false),
        col("status", "string", false),
        zoned("signed_at", true),
        col("signature_method", "string", true),
        zoned("accepted_at", true),
        col("payment_terms", "string", false),
        zoned("updated_at", false),
        col("updated_by", "string", true),
        col("updated_ip", "string", true),
    ]
}

fn ticket_columns() -> Vec<Json> {
    vec![
        col("ticket_id", "string", false),
        col("contract_no", "string", false),
        col("department", "string", false),
        zoned("created_at", false),
        zoned("acknowledged_at", true),
        zoned("completed_at", true),
    ]
}

fn source_schema() -> Json {
    json!({"type": "struct", "optional": false, "name": "io.debezium.connector.postgresql.Source", "field": "source", "fields": [
        col("version", "string", false), col("connector", "string", false), col("name", "string", false),
        col("ts_ms", "int64", false),
        {"type": "string", "optional": true, "name": "io.debezium.data.Enum", "version": 1,
         "parameters": {"allowed": "true,last,false,incremental"}, "default": "false", "field": "snapshot"},
        col("db", "string", false), col("sequence", "string", true), col("schema", "string", false),
        col("table", "string", false), col("txId", "int64", true), col("lsn", "int64", true), col("xmin", "int64", true)
    ]})
}

/// The after/before image of a contract row.
pub fn contract_row(c: &Contract) -> Json {
    json!({
        "contract_no": c.contract_no,
        "customer_id": c.customer_id,
        "owner_id": c.owner_id,
        "region": c.region,
        "amount": precise_decimal(c.amount.amount, 2),
        "currency": c.amount.currency.to_string(),
        "status": c.status.as_str(),
        "signed_at": opt_ts(c.signed_at),
        "signature_method": c.signature_method,
        "accepted_at": opt_ts(c.accepted_at),
        "payment_terms": c.payment_terms,
        "updated_at": opt_ts(c.updated_at),
        "updated_by": c.updated_by,
        "updated_ip": c.updated_ip,
    })
}

pub fn customer_row(c: &Customer) -> Json {
    json!({"customer_id": c.customer_id, "name": c.name, "bank_account_no": c.bank_account_no, "region": c.region})
}

pub fn ticket_row(t: &HandoffTicket) -> Json {
    json!({
        "ticket_id": t.ticket_id,
        "contract_no": t.contract_no,
        "department": t.department,
        "created_at": ts(t.created_at),
        "acknowledged_at": opt_ts(t.acknowledged_at),
        "completed_at": opt_ts(t.completed_at),
    })
}

/// Which reference table an event is for, and how it is framed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum CdcTable {
    Customers,
    Contracts,
    HandoffTickets,
    /// One of the extra CRM tables (sales targets, leads...), written without a schema.
    Extra(&'static str),
}

impl CdcTable {
    pub fn name(&self) -> &'static str {
        match self {
            CdcTable::Customers => "customers",
            CdcTable::Contracts => "contracts",
            CdcTable::HandoffTickets => "handoff_tickets",
            CdcTable::Extra(name) => name,
        }
    }
}

/// One Debezium change event as a JSON line. Customers are written without the schema
/// envelope (as with `value.converter.schemas.enable=false`), the other tables with it.
#[allow(clippy::too_many_arguments)]
pub fn debezium_line(
    table: CdcTable,
    op: &str,
    before: Option<Json>,
    after: Option<Json>,
    at: DateTime<Utc>,
    lsn: u64,
    tx_id: u64,
    snapshot: &str,
) -> String {
    let payload = json!({
        "before": before,
        "after": after,
        "source": {
            "version": "2.7.3.Final", "connector": "postgresql", "name": "crm", "ts_ms": at.timestamp_millis(),
            "snapshot": snapshot, "db": "crm", "sequence": format!("[null,\"{lsn}\"]"), "schema": "crm",
            "table": table.name(), "txId": tx_id, "lsn": lsn, "xmin": null
        },
        "op": op,
        "ts_ms": at.timestamp_millis() + 37,
        "transaction": null
    });
    let value = match table {
        CdcTable::Customers | CdcTable::Extra(_) => payload,
        CdcTable::Contracts | CdcTable::HandoffTickets => {
            let cols = if table == CdcTable::Contracts {
                contract_columns()
            } else {
                ticket_columns()
            };
            let row_name = format!("crm.crm.{}.Value", table.name());
            json!({
                "schema": {"type": "struct", "optional": false, "name": format!("crm.crm.{}.Envelope", table.name()), "version": 2, "fields": [
                    {"type": "struct", "fields": cols, "optional": true, "name": row_name, "field": "before"},
                    {"type": "struct", "fields": cols, "optional": true, "name": row_name, "field": "after"},
                    source_schema(),
                    col("op", "string", false),
                    col("ts_ms", "int64", true),
                    {"type": "struct", "optional": true, "name": "event.block", "version": 1, "field": "transaction", "fields": [
                        col("id", "string", false), col("total_order", "int64", false), col("data_collection_order", "int64", false)
                    ]}
                ]},
                "payload": payload
            })
        }
    };
    value.to_string()
}

/// A DocuSign envelope notification.
pub struct Envelope<'a> {
    pub envelope_id: &'a str,
    pub contract_no: &'a str,
    pub amount: Decimal,
    pub signature_type: &'a str,
    pub signer: &'a str,
    pub sent_at: DateTime<Utc>,
}

/// One Connect JSON SIM message (`envelope-sent`, `recipient-completed`, `envelope-completed`,
/// `envelope-voided`).
pub fn docusign_line(env: &Envelope, event: &str, at: DateTime<Utc>) -> String {
    let status = match event {
        "envelope-completed" => "completed",
        "envelope-voided" => "voided",
        "envelope-sent" => "sent",
        _ => "delivered",
    };
    let mut summary = json!({
        "status": status,
        "emailSubject": format!("请签署合同 {}", env.contract_no),
        "sentDateTime": ts(env.sent_at),
        "statusChangedDateTime": ts(at),
        "customFields": {"textCustomFields": [
            {"fieldId": "10001", "name": "contract_no", "show": "true", "required": "true", "value": env.contract_no},
            {"fieldId": "10002", "name": "contract_amount", "show": "true", "required": "true", "value": env.amount.to_string()},
            {"fieldId": "10003", "name": "currency", "show": "false", "required": "false", "value": "CNY"},
            {"fieldId": "10004", "name": "signature_type", "show": "false", "required": "false", "value": env.signature_type}
        ], "listCustomFields": []},
        "recipients": {"signers": [{
            "recipientId": "1", "name": env.signer, "email": "signer@example.cn",
            "status": if event == "envelope-sent" { "sent" } else { "completed" },
            "signedDateTime": if event == "envelope-sent" { Json::Null } else { Json::String(ts(at)) }
        }]}
    });
    if event == "envelope-completed" {
        summary["completedDateTime"] = Json::String(ts(at));
    }
    if event == "envelope-voided" {
        summary["voidedDateTime"] = Json::String(ts(at));
    }
    let mut data = json!({
        "accountId": "7c1e5a2b-3f4d-4e6a-9b8c-1d2e3f4a5b6c",
        "userId": "0f9e8d7c-6b5a-4c3d-2e1f-0a9b8c7d6e5f",
        "envelopeId": env.envelope_id,
        "envelopeSummary": summary
    });
    if event == "recipient-completed" {
        data["recipientId"] = Json::String("1".into());
    }
    json!({
        "event": event,
        "apiVersion": "v2.1",
        "uri": format!("/restapi/v2.1/accounts/7c1e5a2b-3f4d-4e6a-9b8c-1d2e3f4a5b6c/envelopes/{}", env.envelope_id),
        "retryCount": 0,
        "configurationId": 10231,
        "generatedDateTime": ts(at + chrono::Duration::milliseconds(850)),
        "data": data
    })
    .to_string()
}

/// One payment inside a camt entry.
#[derive(Clone, Debug)]
pub struct CamtTx {
    pub bank_ref: String,
    pub amount: Decimal,
    pub end_to_end_id: String,
    pub party_name: Option<String>,
    pub party_account: Option<String>,
    pub remittance: String,
}

/// One camt entry: a single payment, or a batch of several.
#[derive(Clone, Debug)]
pub struct CamtEntry {
    pub entry_ref: String,
    pub credit: bool,
    pub reversal: bool,
    pub booked: bool,
    pub date: NaiveDate,
    pub txs: Vec<CamtTx>,
}

impl CamtEntry {
    pub fn amount(&self) -> Decimal {
        self.txs.iter().map(|t| t.amount).sum()
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A camt.053.001.08 message in CNY with one statement per day; balances chain from
/// `opening`.
pub fn camt053(
    msg_id: &str,
    account: &str,
    days: &[(NaiveDate, Vec<CamtEntry>)],
    opening: Decimal,
    created: DateTime<Utc>,
) -> (String, Decimal) {
    camt053_in("CNY", msg_id, account, days, opening, created)
}

/// A camt.053.001.08 message for an account kept in `currency`.
pub fn camt053_in(
    currency: &str,
    msg_id: &str,
    account: &str,
    days: &[(NaiveDate, Vec<CamtEntry>)],
    opening: Decimal,
    created: DateTime<Utc>,
) -> (String, Decimal) {
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.08\">\n  <BkToCstmrStmt>\n");
    x.push_str(&format!(
        "    <GrpHdr>\n      <MsgId>{msg_id}</MsgId>\n      <CreDtTm>{}</CreDtTm>\n    </GrpHdr>\n",
        created.to_rfc3339_opts(SecondsFormat::Secs, false)
    ));
    let mut balance = opening;
    for (n, (date, entries)) in days.iter().enumerate() {
        let open = balance;
        for e in entries.iter().filter(|e| e.booked) {
            if e.credit {
                balance += e.amount();
            } else {
                balance -= e.amount();
            }
        }
        let bal = |code: &str, amt: Decimal| {
            format!(
                "      <Bal>\n        <Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp>\n        <Amt Ccy=\"{currency}\">{}</Amt>\n        <CdtDbtInd>{}</CdtDbtInd>\n        <Dt><Dt>{date}</Dt></Dt>\n      </Bal>\n",
                amt.abs(),
                if amt.is_sign_negative() {
                    "DBIT"
                } else {
                    "CRDT"
                }
            )
        };
        x.push_str(&format!(
            "    <Stmt>\n      <Id>{msg_id}-{:03}</Id>\n      <ElctrncSeqNb>{}</ElctrncSeqNb>\n      <CreDtTm>{date}T23:30:00+08:00</CreDtTm>\n      <Acct>\n        <Id><Othr><Id>{account}</Id></Othr></Id>\n        <Ccy>{currency}</Ccy>\n        <Ownr><Nm>成都瑞康医疗设备有限公司</Nm></Ownr>\n      </Acct>\n",
            n + 1,
            n + 1
        ));
        x.push_str(&bal("OPBD", open));
        x.push_str(&bal("CLBD", balance));
        for e in entries {
            x.push_str(&camt_entry(e, currency));
        }
        x.push_str("    </Stmt>\n");
    }
    x.push_str("  </BkToCstmrStmt>\n</Document>\n");
    (x, balance)
}

fn camt_entry(e: &CamtEntry, currency: &str) -> String {
    let mut x = String::new();
    let cd = if e.credit { "CRDT" } else { "DBIT" };
    x.push_str(&format!("      <Ntry>\n        <NtryRef>{}</NtryRef>\n        <Amt Ccy=\"{currency}\">{}</Amt>\n        <CdtDbtInd>{cd}</CdtDbtInd>\n", esc(&e.entry_ref), e.amount()));
    if e.reversal {
        x.push_str("        <RvslInd>true</RvslInd>\n");
    }
    x.push_str(&format!(
        "        <Sts><Cd>{}</Cd></Sts>\n        <BookgDt><Dt>{}</Dt></BookgDt>\n        <ValDt><Dt>{}</Dt></ValDt>\n        <AcctSvcrRef>{}</AcctSvcrRef>\n",
        if e.booked { "BOOK" } else { "PDNG" },
        e.date,
        e.date,
        esc(&e.entry_ref)
    ));
    x.push_str(&format!(
        "        <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>{}</Cd><SubFmlyCd>{}</SubFmlyCd></Fmly></Domn></BkTxCd>\n        <NtryDtls>\n",
        if e.credit { "RCDT" } else { "ICDT" },
        if e.reversal { "RRTN" } else { "DMCT" }
    ));
    if e.txs.len() > 1 {
        x.push_str(&format!("          <Btch><NbOfTxs>{}</NbOfTxs><TtlAmt Ccy=\"{currency}\">{}</TtlAmt><CdtDbtInd>{cd}</CdtDbtInd></Btch>\n", e.txs.len(), e.amount()));
    }
    for t in &e.txs {
        x.push_str("          <TxDtls>\n            <Refs>\n");
        if e.txs.len() > 1 {
            x.push_str(&format!(
                "              <AcctSvcrRef>{}</AcctSvcrRef>\n",
                esc(&t.bank_ref)
            ));
        }
        x.push_str(&format!(
            "              <EndToEndId>{}</EndToEndId>\n            </Refs>\n",
            esc(&t.end_to_end_id)
        ));
        x.push_str(&format!(
            "            <Amt Ccy=\"{currency}\">{}</Amt>\n            <CdtDbtInd>{cd}</CdtDbtInd>\n",
            t.amount
        ));
        let (party, acct) = if e.credit {
            ("Dbtr", "DbtrAcct")
        } else {
            ("Cdtr", "CdtrAcct")
        };
        if t.party_name.is_some() || t.party_account.is_some() {
            x.push_str("            <RltdPties>\n");
            if let Some(n) = &t.party_name {
                x.push_str(&format!(
                    "              <{party}><Pty><Nm>{}</Nm></Pty></{party}>\n",
                    esc(n)
                ));
            }
            if let Some(a) = &t.party_account {
                x.push_str(&format!(
                    "              <{acct}><Id><Othr><Id>{}</Id></Othr></Id></{acct}>\n",
                    esc(a)
                ));
            }
            x.push_str("            </RltdPties>\n");
        }
        if !t.remittance.is_empty() {
            x.push_str(&format!(
                "            <RmtInf><Ustrd>{}</Ustrd></RmtInf>\n",
                esc(&t.remittance)
            ));
        }
        x.push_str("          </TxDtls>\n");
    }
    x.push_str("        </NtryDtls>\n      </Ntry>\n");
    x
}

/// One MT940 statement line (`:61:` with its `:86:` details).
#[derive(Clone, Debug)]
pub struct Mt940Line {
    pub date: NaiveDate,
    pub amount: Decimal,
    pub credit: bool,
    /// A reversal of an earlier entry (`RD`/`RC`).
    pub reversal: bool,
    pub bank_ref: String,
    pub party_name: Option<String>,
    pub party_account: Option<String>,
    pub remittance: String,
}

fn swift_amount(d: Decimal) -> String {
    format!("{:.2}", d).replace('.', ",")
}

/// `:86:` text in at most 6 lines of 65 characters, broken before a space where there is
/// one (the space starts the next line, so joining the lines gives the text back).
fn wrap65(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut lines = Vec::new();
    let mut start = 0;
    while start < chars.len() && lines.len() < 6 {
        let mut end = (start + 65).min(chars.len());
        if end < chars.len()
            && let Some(space) = (start + 1..end).rev().find(|&i| chars[i] == ' ')
        {
            end = space;
        }
        lines.push(chars[start..end].iter().collect());
        start = end;
    }
    lines
}

/// An MT940 file with one statement per day, `:86:` in the SEPA `/CODE/value` style;
/// balances chain from `opening`.
pub fn mt940(
    account: &str,
    currency: &str,
    days: &[(NaiveDate, Vec<Mt940Line>)],
    opening: Decimal,
) -> String {
    let mut out = String::new();
    let mut balance = opening;
    let mark = |d: Decimal| if d.is_sign_negative() { "D" } else { "C" };
    for (n, (date, lines)) in days.iter().enumerate() {
        let day = date.format("%y%m%d");
        out.push_str(&format!(
            ":20:STMT{}\r\n:25:{account}\r\n:28C:{}/1\r\n:60F:{}{day}{currency}{}\r\n",
            date.format("%Y%m%d"),
            n + 1,
            mark(balance),
            swift_amount(balance.abs())
        ));
        for l in lines {
            let sign = match (l.credit, l.reversal) {
                (true, false) => "C",
                (false, false) => "D",
                (true, true) => "RD",
                (false, true) => "RC",
            };
            // A reversal of a credit takes money out, and the other way round.
            if l.credit != l.reversal {
                balance += l.amount;
            } else {
                balance -= l.amount;
            }
            out.push_str(&format!(
                ":61:{day}{}{sign}{}NTRFNONREF//{}\r\n",
                date.format("%m%d"),
                swift_amount(l.amount),
                l.bank_ref
            ));
            let mut info = String::new();
            if let Some(name) = &l.party_name {
                info.push_str(&format!("/NAME/{name}"));
            }
            if let Some(acct) = &l.party_account {
                info.push_str(&format!("/IBAN/{acct}"));
            }
            info.push_str(&format!("/REMI/USTD//{}", l.remittance));
            out.push_str(&format!(":86:{}\r\n", wrap65(&info).join("\r\n")));
        }
        out.push_str(&format!(
            ":62F:{}{day}{currency}{}\r\n-\r\n",
            mark(balance),
            swift_amount(balance.abs())
        ));
    }
    out
}

/// One line of the bank CSV export.
#[derive(Clone, Debug)]
pub struct CsvLine {
    pub date: NaiveDate,
    pub time: String,
    pub credit: Option<Decimal>,
    pub debit: Option<Decimal>,
    pub party_name: String,
    pub party_account: String,
    pub memo: String,
    pub bank_ref: String,
}

fn thousands(d: Decimal) -> String {
    let s = format!("{:.2}", d);
    let (int, frac) = s.split_once('.').unwrap_or((&s, "00"));
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{out}.{frac}")
}

/// A China Merchants Bank-style export: two preamble lines, Chinese headers, separate
/// income/expense columns with thousands separators, `YYYYMMDD` dates, GBK encoded.
pub fn bank_csv(account: &str, lines: &[CsvLine], opening: Decimal) -> Vec<u8> {
    let mut text = format!(
        "账号:{account}\r\n币种:人民币\r\n交易日期,交易时间,收入金额,支出金额,余额,对方户名,对方账号,摘要,交易流水号\r\n"
    );
    let mut balance = opening;
    for l in lines {
        balance += l.credit.unwrap_or_default() - l.debit.unwrap_or_default();
        let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        text.push_str(&format!(
            "{},{},{},{},{},{},{},{},{}\r\n",
            l.date.format("%Y%m%d"),
            l.time,
            l.credit.map(|c| q(&thousands(c))).unwrap_or_default(),
            l.debit.map(|c| q(&thousands(c))).unwrap_or_default(),
            q(&thousands(balance)),
            q(&l.party_name),
            q(&l.party_account),
            q(&l.memo),
            l.bank_ref
        ));
    }
    let (bytes, _, _) = encoding_rs::GBK.encode(&text);
    bytes.into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn encodes_decimals_like_debezium() {
        assert_eq!(
            precise_decimal(Decimal::from_str("123.45").unwrap(), 2),
            "MDk="
        );
        assert_eq!(
            precise_decimal(Decimal::from_str("-1.28").unwrap(), 2),
            "gA=="
        );
        assert_eq!(
            thousands(Decimal::from_str("1234567.5").unwrap()),
            "1,234,567.50"
        );
    }
}
