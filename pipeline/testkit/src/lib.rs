//! `reconlight generate`: a deterministic, realistic dataset of a Chinese B2B medical-device
//! company: customers, contracts with 1-4 installment payment terms and months of CRM edits,
//! e-signature envelopes, bank statements (a camt.053 per account and business day, as banks
//! deliver them, and a GBK CSV export) with other companies' credits, split and combined
//! payments, bank fees, reversals and pending entries, and injected problems listed in
//! `truth.jsonl`.

mod bank;
mod company;
mod names;
mod payments;
mod sales;
mod topics;
pub mod writers;

pub use topics::{DatasetTopic, dataset_kafka_config, dataset_topics};

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use reconlight_formats::model::{Contract, Currency, Customer, HandoffTicket, Money};
use rust_decimal::Decimal;
use serde::Serialize;

use names::*;
use writers::*;

/// One injected problem, as the nightly diff must find it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub struct TruthLine {
    pub kind: String,
    pub contract_no: Option<String>,
    pub installment: Option<u32>,
    pub bank_ref: Option<String>,
}

/// What was generated.
#[derive(Debug, Default, Serialize)]
pub struct GenerateSummary {
    pub customers: usize,
    pub contracts: usize,
    pub crm_events: usize,
    pub signature_events: usize,
    pub bank_lines: usize,
    pub business_date: NaiveDate,
    pub problems: BTreeMap<String, usize>,
}

const TERMS: &[&str] = &[
    r#"[{"seq":1,"percent":"100","due_days":30,"anchor":"signed"}]"#,
    r#"[{"seq":1,"percent":"30","due_days":7,"anchor":"signed"},{"seq":2,"percent":"70","due_days":30,"anchor":"signed"}]"#,
    r#"[{"seq":1,"percent":"30","due_days":7,"anchor":"signed"},{"seq":2,"percent":"70","due_days":15,"anchor":"accepted"}]"#,
    r#"[{"seq":1,"percent":"30","due_days":7,"anchor":"signed"},{"seq":2,"percent":"60","due_days":45,"anchor":"signed"},{"seq":3,"percent":"10","due_days":365,"anchor":"accepted"}]"#,
    r#"[{"seq":1,"percent":"20","due_days":7,"anchor":"signed"},{"seq":2,"percent":"30","due_days":20,"anchor":"signed"},{"seq":3,"percent":"30","due_days":40,"anchor":"signed"},{"seq":4,"percent":"20","due_days":10,"anchor":"accepted"}]"#,
    r#"[{"seq":1,"percent":"50","due_days":10,"anchor":"signed"},{"seq":2,"percent":"50","due_days":40,"anchor":"signed"}]"#,
    // Due order differs from sequence order: four equal parts falling due last to first.
    r#"[{"seq":1,"percent":"25","due_days":75,"anchor":"signed"},{"seq":2,"percent":"25","due_days":50,"anchor":"signed"},{"seq":3,"percent":"25","due_days":28,"anchor":"signed"},{"seq":4,"percent":"25","due_days":7,"anchor":"signed"}]"#,
    // An acceptance-anchored first installment and a signing-anchored second one.
    r#"[{"seq":1,"percent":"60","due_days":5,"anchor":"accepted"},{"seq":2,"percent":"40","due_days":10,"anchor":"signed"}]"#,
    // Two equal installments due the same day (equipment and installation).
    r#"[{"seq":1,"percent":"50","due_days":20,"anchor":"signed"},{"seq":2,"percent":"50","due_days":20,"anchor":"signed"}]"#,
];

const MAIN_ACCOUNT: &str = "128905678810201";
const CSV_ACCOUNT: &str = "755912345610801";
const USD_ACCOUNT: &str = "128905678810299";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Problem {
    None,
    NotCertified,
    AmountMismatch,
    Missing,
    Partial,
    Over,
    Duplicate,
}

/// A credit to place on one of the two accounts.
#[derive(Clone, Debug)]
struct Credit {
    date: NaiveDate,
    amount: Decimal,
    payer: String,
    payer_account: String,
    memo: String,
    /// Filled when the credit is written.
    bank_ref: String,
    /// The bank returns the payment on this date (a camt reversal entry).
    returned: Option<NaiveDate>,
    /// ISO code: CNY, or USD for the foreign-currency account.
    currency: &'static str,
}

impl Credit {
    /// A credit from the customer's own account and name.
    fn new(date: NaiveDate, amount: Decimal, customer: &Customer, memo: String) -> Credit {
        Credit {
            date,
            amount,
            payer: customer.name.clone(),
            payer_account: customer.bank_account_no.clone().unwrap_or_default(),
            memo,
            bank_ref: String::new(),
            returned: None,
            currency: "CNY",
        }
    }
}

struct Gen {
    rng: Rng,
    tz: chrono_tz::Tz,
    start: NaiveDate,
    end: NaiveDate,
}

impl Gen {
    fn local(&self, date: NaiveDate, minute_of_day: i64) -> DateTime<Utc> {
        let naive = date.and_hms_opt(0, 0, 0).expect("midnight") + Duration::minutes(minute_of_day);
        self.tz
            .from_local_datetime(&naive)
            .earliest()
            .expect("valid local time")
            .with_timezone(&Utc)
    }

    fn date_of(&self, t: DateTime<Utc>) -> NaiveDate {
        t.with_timezone(&self.tz).date_naive()
    }

    fn work_time(&mut self, date: NaiveDate) -> DateTime<Utc> {
        let m = self.rng.range(9 * 60, 18 * 60);
        self.local(date, m)
    }

    fn ip(&mut self) -> String {
        format!(
            "10.{}.{}.{}",
            self.rng.range(10, 40),
            self.rng.range(0, 255),
            self.rng.range(2, 254)
        )
    }

    /// A contract number as payers type it.
    fn spell(&mut self, no: &str) -> String {
        let digits: String = no.chars().filter(char::is_ascii_digit).collect();
        let (y, s) = digits.split_at(4);
        match self.rng.range(0, 6) {
            0 | 1 => no.to_string(),
            2 => format!("HT{y}{s}"),
            3 => format!("ht-{y}-{s}"),
            4 => format!("HT {y} {s}"),
            5 => full_width(no),
            _ => format!("ht{y}{s}"),
        }
    }

    /// A remittance naming contract `no` and, with `with_hint`, installments `seqs` of the
    /// `of` it has, in one of the many ways people write an installment.
    fn memo(&mut self, no: &str, seqs: &[u32], of: usize, with_hint: bool) -> String {
        let r = self.spell(no);
        if !with_hint || seqs.is_empty() {
            return match self.rng.range(0, 2) {
                0 => format!("{r}货款"),
                1 => format!("合同号:{r}"),
                _ => format!("付合同{r}设备款"),
            };
        }
        if let [a, .., b] = seqs {
            return match self.rng.range(0, 2) {
                0 => format!("{r} 第{a}-{b}期款"),
                1 => format!("合同号{r}第{a}至{b}期"),
                _ => format!("Payment {r} installments {a}-{b}"),
            };
        }
        let n = seqs[0];
        const NUMERALS: [&str; 13] = [
            "零", "一", "二", "三", "四", "五", "六", "七", "八", "九", "十", "十一", "十二",
        ];
        const ORDINALS: [&str; 5] = ["1st", "2nd", "3rd", "4th", "5th"];
        match self.rng.range(0, 9) {
            0 => format!("{r} 第{n}期款"),
            1 => format!("合同号{r}第{}期", NUMERALS[n.min(12) as usize]),
            2 => format!("付{r} {n}/{of}期货款"),
            3 => format!("{no}/{n}"),
            4 => format!("{no}-{n}期"),
            5 => format!("Payment {r} installment {n}"),
            6 => format!("{r} inst. {n}"),
            7 if n <= 5 => format!("{} installment {r}", ORDINALS[n as usize - 1]),
            _ => format!("付{r} 第{n}期货款"),
        }
    }
}

/// `HT-2026-000123` as a Chinese input method types it: `ＨＴ－２０２６－０００１２３`.
fn full_width(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() {
                char::from_u32(c as u32 + 0xfee0).unwrap_or(c)
            } else {
                c
            }
        })
        .collect()
}

fn money(amount: Decimal) -> Money {
    Money::new(amount, Currency::CNY)
}

/// Generates the dataset into `out`.
pub fn generate(contracts: usize, seed: u64, out: &Path) -> std::io::Result<GenerateSummary> {
    let mut g = Gen {
        rng: Rng::new(seed),
        tz: chrono_tz::Asia::Shanghai,
        start: NaiveDate::from_ymd_opt(2026, 8, 1).expect("date"),
        end: NaiveDate::from_ymd_opt(2026, 10, 31).expect("date"),
    };
    let mut world = company::company(&mut g, contracts);
    payments::payments(&mut g, &mut world);
    bank::bank(&mut g, contracts, &mut world);
    sales::sales(&mut g, &mut world);
    write(&g, world, out)
}

/// A CDC event before it is written: time, table, op, before and after images.
type CdcEvent = (
    DateTime<Utc>,
    CdcTable,
    String,
    Option<serde_json::Value>,
    Option<serde_json::Value>,
);

/// Everything generated, on its way to the files.
#[derive(Default)]
struct World {
    customers: Vec<Customer>,
    cdc: Vec<CdcEvent>,
    docusign: Vec<(DateTime<Utc>, String)>,
    tickets: Vec<(DateTime<Utc>, HandoffTicket, bool)>,
    final_contracts: Vec<(Contract, Problem)>,
    /// Which of `TERMS` each contract's payment terms mean (`None`: unreadable terms).
    terms_intent: BTreeMap<String, Option<usize>>,
    /// Each customer's city and core name: customers sharing both have similar names.
    name_parts: BTreeMap<String, (&'static str, &'static str)>,
    credits: Vec<Credit>,
    truth: BTreeSet<TruthLine>,
    camt_days: BTreeMap<NaiveDate, Vec<CamtEntry>>,
    /// The USD account's statement days.
    usd_days: BTreeMap<NaiveDate, Vec<CamtEntry>>,
    csv_lines: Vec<CsvLine>,
}

/// Writes the dataset's files and returns what was written.
fn write(g: &Gen, w: World, out: &Path) -> std::io::Result<GenerateSummary> {
    let World {
        customers,
        cdc,
        mut docusign,
        mut tickets,
        final_contracts,
        truth,
        camt_days,
        usd_days,
        csv_lines,
        ..
    } = w;
    let mut cdc = cdc;
    let mut summary = GenerateSummary {
        business_date: g.end,
        ..Default::default()
    };
    // Write everything.
    std::fs::create_dir_all(out.join("crm"))?;
    std::fs::create_dir_all(out.join("esign"))?;
    std::fs::create_dir_all(out.join("bank/camt053"))?;
    std::fs::create_dir_all(out.join("bank/csv"))?;
    cdc.sort_by_key(|e| e.0);
    let mut files: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (n, (at, table, op, before, after)) in cdc.iter().enumerate() {
        let lsn = 24_000_000 + n as u64 * 376;
        let snapshot = if *op == "r" { "true" } else { "false" };
        let line = debezium_line(
            *table,
            op,
            before.clone(),
            after.clone(),
            *at,
            lsn,
            700 + n as u64,
            snapshot,
        );
        let file = format!("{}.jsonl", table.name());
        files.entry(file.clone()).or_default().push(line);
        if op == "d" {
            files.entry(file).or_default().push("null".into());
        }
    }
    tickets.sort_by_key(|t| t.0);
    let mut seen_tickets = BTreeMap::new();
    for (n, (at, t, update)) in tickets.iter().enumerate() {
        let lsn = 90_000_000 + n as u64 * 212;
        let before = if *update {
            seen_tickets.get(&t.ticket_id).map(ticket_row)
        } else {
            None
        };
        let line = debezium_line(
            CdcTable::HandoffTickets,
            if *update { "u" } else { "c" },
            before,
            Some(ticket_row(t)),
            *at,
            lsn,
            50_000 + n as u64,
            "false",
        );
        files
            .entry("handoff_tickets.jsonl".to_string())
            .or_default()
            .push(line);
        seen_tickets.insert(t.ticket_id.clone(), t.clone());
    }
    for (file, lines) in &files {
        std::fs::write(out.join("crm").join(file), lines.join("\n") + "\n")?;
        summary.crm_events += lines.len();
    }
    docusign.sort_by_key(|d| d.0);
    summary.signature_events = docusign.len();
    std::fs::write(
        out.join("esign/docusign.jsonl"),
        docusign
            .into_iter()
            .map(|d| d.1)
            .collect::<Vec<_>>()
            .join("\n")
            + "\n",
    )?;

    // One camt.053 per account and business day with entries, as banks deliver them over
    // SFTP or their APIs each morning; each day's opening balance is the day before's
    // closing.
    let mut balance = Decimal::from(5_000_000);
    for (d, entries) in camt_days {
        summary.bank_lines += entries.iter().map(|e| e.txs.len()).sum::<usize>();
        let day = [(d, entries)];
        let (xml, closing) = camt053(
            &format!("ICBC{}", d.format("%Y%m%d")),
            MAIN_ACCOUNT,
            &day,
            balance,
            g.local(d, 23 * 60 + 40),
        );
        balance = closing;
        std::fs::write(out.join(format!("bank/camt053/{d}.xml")), xml)?;
    }
    let mut usd_balance = Decimal::from(20_000);
    for (d, entries) in usd_days {
        summary.bank_lines += entries.iter().map(|e| e.txs.len()).sum::<usize>();
        let day = [(d, entries)];
        let (xml, closing) = camt053_in(
            "USD",
            &format!("ICBCUSD{}", d.format("%Y%m%d")),
            USD_ACCOUNT,
            &day,
            usd_balance,
            g.local(d, 23 * 60 + 40),
        );
        usd_balance = closing;
        std::fs::write(out.join(format!("bank/camt053/{d}-usd.xml")), xml)?;
    }
    summary.bank_lines += csv_lines.len();
    std::fs::write(
        out.join("bank/csv/cmb-export.csv"),
        bank_csv(CSV_ACCOUNT, &csv_lines, Decimal::from(800_000)),
    )?;

    let mut truth_text = String::new();
    for t in &truth {
        *summary.problems.entry(t.kind.clone()).or_default() += 1;
        truth_text.push_str(&serde_json::to_string(t)?);
        truth_text.push('\n');
    }
    std::fs::write(out.join("truth.jsonl"), truth_text)?;
    std::fs::write(out.join("reconlight.toml"), dataset_config())?;
    summary.customers = customers.len();
    summary.contracts = final_contracts.len();
    Ok(summary)
}

/// The configuration that reads a generated dataset (also a worked example of every source).
pub fn dataset_config() -> String {
    format!(
        r#"# reconlight configuration for a dataset written by `reconlight generate`.
[store]
url = "sqlite://reconlight.db"

[business]
time_zone = "Asia/Shanghai"
amount_tolerance = "1.00"

[auth]
# A dataset is served on 127.0.0.1: anyone on this machine may read the queue and the
# lights; working the queue needs a token (`reconlight tokens create --role clerk`).
anonymous = "viewer"

[ingest]
batch_size = 2000
# A replayed dataset runs on event time, so every run gives identical alerts and work items.
clock = "event_time"

[[sources]]
name = "crm-customers"
format = "debezium"
path = "crm/customers.jsonl"

[[sources]]
name = "crm-contracts"
format = "debezium"
path = "crm/contracts.jsonl"

[[sources]]
name = "crm-handoff-tickets"
format = "debezium"
path = "crm/handoff_tickets.jsonl"

[[sources]]
name = "crm-sales-targets"
format = "debezium"
path = "crm/sales_targets.jsonl"

[[sources]]
name = "crm-corrective-actions"
format = "debezium"
path = "crm/corrective_actions.jsonl"

[[sources]]
name = "crm-leads"
format = "debezium"
path = "crm/leads.jsonl"

[[sources]]
name = "crm-lead-interactions"
format = "debezium"
path = "crm/lead_interactions.jsonl"

[[sources]]
name = "crm-marketing-spend"
format = "debezium"
path = "crm/marketing_spend.jsonl"

[[sources]]
name = "docusign"
format = "docusign"
path = "esign/docusign.jsonl"

[[sources]]
name = "bank-icbc"
format = "camt"
path = "bank/camt053"

[[sources]]
name = "bank-cmb"
format = "csv"
path = "bank/csv"

[sources.csv]
encoding = "gbk"
skip_lines = 2
date_formats = ["%Y%m%d"]
thousands_separator = ","
account = "{CSV_ACCOUNT}"

[sources.csv.columns]
booking_date = "交易日期"
credit = "收入金额"
debit = "支出金额"
reference = "交易流水号"
counterparty_name = "对方户名"
counterparty_account = "对方账号"
remittance = ["摘要"]
"#
    )
}

/// Reads a dataset's `truth.jsonl`.
pub fn read_truth(dir: &Path) -> std::io::Result<Vec<TruthLine>> {
    let text = std::fs::read_to_string(dir.join("truth.jsonl"))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(std::io::Error::from))
        .collect()
}

/// True when `dir` holds a generated dataset.
pub fn dataset_exists(dir: &Path) -> bool {
    dir.join("reconlight.toml").is_file() && dir.join("truth.jsonl").is_file()
}
