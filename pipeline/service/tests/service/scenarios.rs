//! The scenario catalogue (`tests/scenarios/*.toml`): small hand-written cases a finance
//! clerk recognises, each with the work items a clerk expects. Every scenario is written
//! out in the standard wire formats (Debezium JSON, DocuSign Connect, camt.053, a GBK bank
//! CSV or MT940), run through `run` and `nightly`, and its open work items compared with
//! the expected ones exactly. The expectations come from the stories, never from the code.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use reconlight_formats::model::{Contract, ContractStatus, Currency, Customer, Money};
use reconlight_testkit::writers::{
    CamtEntry, CamtTx, CdcTable, CsvLine, Envelope, Mt940Line, bank_csv, camt053_in, contract_row,
    customer_row, debezium_line, docusign_line, mt940,
};
use rust_decimal::Decimal;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    title: String,
    #[allow(dead_code)]
    story: String,
    business_date: NaiveDate,
    #[serde(default = "camt")]
    bank_format: String,
    #[serde(default)]
    customers: Vec<ScenarioCustomer>,
    #[serde(default)]
    contracts: Vec<ScenarioContract>,
    #[serde(default)]
    credits: Vec<ScenarioCredit>,
    #[serde(default)]
    expect: Vec<Expected>,
}

fn camt() -> String {
    "camt".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioCustomer {
    id: String,
    name: String,
    account: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioContract {
    no: String,
    customer: String,
    amount: Decimal,
    currency: Option<String>,
    signed: Option<NaiveDate>,
    accepted: Option<NaiveDate>,
    terms: String,
    status: Option<String>,
    signature: Option<String>,
    signed_amount: Option<Decimal>,
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Change {
    at: NaiveDate,
    amount: Option<Decimal>,
    terms: Option<String>,
    status: Option<String>,
    accepted: Option<NaiveDate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioCredit {
    #[serde(rename = "ref")]
    bank_ref: String,
    date: NaiveDate,
    amount: Decimal,
    currency: Option<String>,
    payer: Option<String>,
    account: Option<String>,
    memo: String,
    returned: Option<NaiveDate>,
}

#[derive(Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(deny_unknown_fields)]
struct Expected {
    kind: String,
    contract: Option<String>,
    installment: Option<u32>,
    bank_ref: Option<String>,
}

fn scenarios_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios")
}

/// 10:00 on `date` in Asia/Shanghai.
fn at(date: NaiveDate, hour: u32) -> DateTime<Utc> {
    chrono_tz::Asia::Shanghai
        .from_local_datetime(&date.and_hms_opt(hour, 0, 0).expect("time"))
        .single()
        .expect("a Shanghai time")
        .with_timezone(&Utc)
}

fn status(text: Option<&str>) -> ContractStatus {
    match text.unwrap_or("signed") {
        "signed" => ContractStatus::Signed,
        "draft" => ContractStatus::Draft,
        "cancelled" => ContractStatus::Cancelled,
        other => panic!("unknown contract status `{other}`"),
    }
}

const ACCOUNT: &str = "128905678810201";

/// Writes the scenario's files and configuration into `dir`.
fn write(s: &Scenario, dir: &Path) {
    std::fs::create_dir_all(dir.join("crm")).unwrap();
    std::fs::create_dir_all(dir.join("esign")).unwrap();
    std::fs::create_dir_all(dir.join("bank")).unwrap();
    let opened = at(NaiveDate::from_ymd_opt(2025, 12, 1).unwrap(), 9);
    let mut customers = Vec::new();
    for (n, c) in s.customers.iter().enumerate() {
        let row = customer_row(&Customer {
            customer_id: c.id.clone(),
            name: c.name.clone(),
            bank_account_no: c.account.clone(),
            region: None,
        });
        customers.push(debezium_line(
            CdcTable::Customers,
            "c",
            None,
            Some(row),
            opened,
            1_000 + n as u64,
            1,
            "false",
        ));
    }
    std::fs::write(dir.join("crm/customers.jsonl"), customers.join("\n") + "\n").unwrap();

    let mut contract_events: Vec<(DateTime<Utc>, String)> = Vec::new();
    let mut envelopes: Vec<(DateTime<Utc>, String)> = Vec::new();
    for (n, c) in s.contracts.iter().enumerate() {
        let created = c.signed.map(|d| at(d, 10)).unwrap_or(opened);
        let currency = Currency::from_str(c.currency.as_deref().unwrap_or("CNY")).unwrap();
        let mut row = Contract {
            contract_no: c.no.clone(),
            customer_id: c.customer.clone(),
            owner_id: Some("U001".into()),
            region: None,
            amount: Money::new(c.amount, currency),
            status: status(c.status.as_deref()),
            signed_at: c.signed.map(|d| at(d, 10)),
            signature_method: Some(
                match c.signature.as_deref().unwrap_or("ca") {
                    "ca" => "e_sign",
                    "wet_ink" => "wet_ink",
                    "none" => "email",
                    other => panic!("unknown signature `{other}`"),
                }
                .into(),
            ),
            accepted_at: c.accepted.map(|d| at(d, 11)),
            payment_terms: c.terms.clone(),
            updated_at: Some(created),
            updated_by: Some("sales01".into()),
            updated_ip: Some("10.1.2.3".into()),
        };
        // The contract as first entered; an acceptance is its own later update.
        let mut first = row.clone();
        first.accepted_at = None;
        let lsn = 10_000 + n as u64 * 100;
        contract_events.push((
            created,
            debezium_line(
                CdcTable::Contracts,
                "c",
                None,
                Some(contract_row(&first)),
                created,
                lsn,
                2,
                "false",
            ),
        ));
        if let Some(accepted) = row.accepted_at {
            let mut after = first.clone();
            after.accepted_at = Some(accepted);
            after.updated_at = Some(accepted);
            contract_events.push((
                accepted,
                debezium_line(
                    CdcTable::Contracts,
                    "u",
                    Some(contract_row(&first)),
                    Some(contract_row(&after)),
                    accepted,
                    lsn + 1,
                    3,
                    "false",
                ),
            ));
        }
        if c.signed.is_some() && c.signature.as_deref().unwrap_or("ca") == "ca" {
            let env = Envelope {
                envelope_id: &format!("ENV-{}", c.no),
                contract_no: &c.no,
                amount: c.signed_amount.unwrap_or(c.amount),
                signature_type: "ca_digital",
                signer: "签约人",
                sent_at: created - Duration::hours(1),
            };
            envelopes.push((created, docusign_line(&env, "envelope-completed", created)));
        }
        for (k, change) in c.changes.iter().enumerate() {
            let when = at(change.at, 15);
            let before = row.clone();
            if let Some(a) = change.amount {
                row.amount = Money::new(a, currency);
            }
            if let Some(t) = &change.terms {
                row.payment_terms = t.clone();
            }
            if let Some(st) = &change.status {
                row.status = status(Some(st));
            }
            if let Some(a) = change.accepted {
                row.accepted_at = Some(at(a, 11));
            }
            row.updated_at = Some(when);
            contract_events.push((
                when,
                debezium_line(
                    CdcTable::Contracts,
                    "u",
                    Some(contract_row(&before)),
                    Some(contract_row(&row)),
                    when,
                    lsn + 10 + k as u64,
                    4,
                    "false",
                ),
            ));
        }
    }
    contract_events.sort_by_key(|e| e.0);
    envelopes.sort_by_key(|e| e.0);
    let lines = |v: Vec<(DateTime<Utc>, String)>| {
        v.into_iter().map(|e| e.1).collect::<Vec<_>>().join("\n") + "\n"
    };
    std::fs::write(dir.join("crm/contracts.jsonl"), lines(contract_events)).unwrap();
    std::fs::write(dir.join("esign/docusign.jsonl"), lines(envelopes)).unwrap();

    // The bank: every credit, and a reversal entry for each returned one, by currency.
    let currencies: BTreeSet<String> = s
        .credits
        .iter()
        .map(|c| c.currency.clone().unwrap_or_else(|| "CNY".into()))
        .collect();
    for currency in currencies {
        let credits: Vec<&ScenarioCredit> = s
            .credits
            .iter()
            .filter(|c| c.currency.as_deref().unwrap_or("CNY") == currency)
            .collect();
        let account = if currency == "CNY" {
            ACCOUNT.to_string()
        } else {
            format!("{ACCOUNT}-{currency}")
        };
        write_bank(s, &credits, &currency, &account, dir);
    }
    let sources = match s.bank_format.as_str() {
        "csv" => r#"
[[sources]]
name = "bank"
format = "csv"
path = "bank"

[sources.csv]
encoding = "gbk"
skip_lines = 2
date_formats = ["%Y%m%d"]
thousands_separator = ","
account = "128905678810201"

[sources.csv.columns]
booking_date = "交易日期"
credit = "收入金额"
debit = "支出金额"
reference = "交易流水号"
counterparty_name = "对方户名"
counterparty_account = "对方账号"
remittance = ["摘要"]
"#
        .to_string(),
        other => format!("\n[[sources]]\nname = \"bank\"\nformat = \"{other}\"\npath = \"bank\"\n"),
    };
    let config = format!(
        r#"[store]
url = "sqlite://reconlight.db"

[business]
time_zone = "Asia/Shanghai"
amount_tolerance = "1.00"
auto_confirm_confidence = 90

[ingest]
batch_size = 7
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
name = "docusign"
format = "docusign"
path = "esign/docusign.jsonl"
{sources}"#
    );
    std::fs::write(dir.join("reconlight.toml"), config).unwrap();
}

fn write_bank(
    s: &Scenario,
    credits: &[&ScenarioCredit],
    currency: &str,
    account: &str,
    dir: &Path,
) {
    // (date, credit, reversal) in date order.
    let mut entries: Vec<(NaiveDate, &ScenarioCredit, bool)> = Vec::new();
    for c in credits {
        entries.push((c.date, c, false));
        if let Some(back) = c.returned {
            entries.push((back, c, true));
        }
    }
    entries.sort_by_key(|e| (e.0, e.2));
    let file = account.to_string();
    match s.bank_format.as_str() {
        "camt" => {
            let mut days: Vec<(NaiveDate, Vec<CamtEntry>)> = Vec::new();
            for (date, c, reversal) in entries {
                let entry = CamtEntry {
                    entry_ref: if reversal {
                        format!("{}-R", c.bank_ref)
                    } else {
                        c.bank_ref.clone()
                    },
                    credit: !reversal,
                    reversal,
                    booked: true,
                    date,
                    txs: vec![CamtTx {
                        bank_ref: c.bank_ref.clone(),
                        amount: c.amount,
                        end_to_end_id: format!("E2E-{}", c.bank_ref),
                        party_name: c.payer.clone(),
                        party_account: c.account.clone(),
                        remittance: c.memo.clone(),
                    }],
                };
                match days.last_mut() {
                    Some((d, v)) if *d == date => v.push(entry),
                    _ => days.push((date, vec![entry])),
                }
            }
            let created = at(s.business_date, 23);
            let (xml, _) = camt053_in(
                currency,
                "STMT",
                account,
                &days,
                Decimal::from(1_000_000),
                created,
            );
            std::fs::write(dir.join(format!("bank/{file}.xml")), xml).unwrap();
        }
        "csv" => {
            assert_eq!(currency, "CNY", "the CSV export is of the CNY account");
            let lines: Vec<CsvLine> = entries
                .into_iter()
                .map(|(date, c, reversal)| CsvLine {
                    date,
                    time: "10:30:00".into(),
                    credit: (!reversal).then_some(c.amount),
                    debit: reversal.then_some(c.amount),
                    party_name: c.payer.clone().unwrap_or_default(),
                    party_account: c.account.clone().unwrap_or_default(),
                    memo: if reversal {
                        format!("退汇 {}", c.memo)
                    } else {
                        c.memo.clone()
                    },
                    bank_ref: if reversal {
                        format!("{}-R", c.bank_ref)
                    } else {
                        c.bank_ref.clone()
                    },
                })
                .collect();
            std::fs::write(
                dir.join(format!("bank/{file}.csv")),
                bank_csv(account, &lines, Decimal::from(1_000_000)),
            )
            .unwrap();
        }
        "mt940" => {
            let mut days: Vec<(NaiveDate, Vec<Mt940Line>)> = Vec::new();
            for (date, c, reversal) in entries {
                let line = Mt940Line {
                    date,
                    amount: c.amount,
                    credit: true,
                    reversal,
                    bank_ref: if reversal {
                        format!("{}-R", c.bank_ref)
                    } else {
                        c.bank_ref.clone()
                    },
                    party_name: c.payer.clone(),
                    party_account: c.account.clone(),
                    remittance: c.memo.clone(),
                };
                match days.last_mut() {
                    Some((d, v)) if *d == date => v.push(line),
                    _ => days.push((date, vec![line])),
                }
            }
            std::fs::write(
                dir.join(format!("bank/{file}.sta")),
                mt940(account, currency, &days, Decimal::from(1_000_000)),
            )
            .unwrap();
        }
        other => panic!("unknown bank_format `{other}`"),
    }
}

/// Runs one scenario; returns what differs from its expectation, if anything.
async fn run(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let s: Scenario = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let dir = tempfile::tempdir().unwrap();
    write(&s, dir.path());
    let mut p = crate::common::open(dir.path()).await;
    let stats = p.run_until_idle(|_, _| {}).await.expect("run");
    assert_eq!(
        stats.dead_letters,
        0,
        "{}: every record of a scenario is valid; dead letters: {:?}",
        path.display(),
        p.store.dead_letters(20).await.unwrap()
    );
    p.nightly(s.business_date).await.expect("nightly");
    // MT940 references are the statement's account, date, bank and customer references.
    let spelled = |bank_ref: &str| {
        s.credits
            .iter()
            .map(|c| c.bank_ref.as_str())
            .find(|r| bank_ref == *r || bank_ref.contains(&format!("/{r}/")))
            .unwrap_or(bank_ref)
            .to_string()
    };
    let found: BTreeSet<Expected> = p
        .state
        .work_items
        .values()
        .filter(|w| w.state.is_active())
        .map(|w| {
            let f = &w.finding;
            Expected {
                kind: f.kind.as_str().to_string(),
                contract: f.contract_no.clone(),
                installment: f.installment,
                bank_ref: f.bank_ref.as_deref().map(spelled),
            }
        })
        .collect();
    let want: BTreeSet<Expected> = s.expect.iter().cloned().collect();
    if found == want {
        return None;
    }
    let summaries: Vec<String> = p
        .state
        .work_items
        .values()
        .filter(|w| w.state.is_active())
        .map(|w| format!("    {}: {}", w.finding.kind, w.finding.summary))
        .collect();
    let matches: Vec<String> = p
        .state
        .matches
        .values()
        .flatten()
        .map(|a| {
            format!(
                "    {} -> {}#{} {} ({}%{}): {}",
                spelled(&a.bank_ref),
                a.contract_no,
                a.seq,
                a.amount,
                a.confidence,
                if a.confirmed { "" } else { ", unconfirmed" },
                a.explanation
            )
        })
        .collect();
    Some(format!(
        "{} ({})\n  missing: {:?}\n  unexpected: {:?}\n  open items:\n{}\n  allocations:\n{}",
        path.file_name().unwrap().to_string_lossy(),
        s.title,
        want.difference(&found).collect::<Vec<_>>(),
        found.difference(&want).collect::<Vec<_>>(),
        summaries.join("\n"),
        matches.join("\n")
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_gives_the_work_items_a_clerk_expects() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(scenarios_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 25,
        "the catalogue holds at least 25 scenarios"
    );
    let mut failures = Vec::new();
    for f in &files {
        if let Some(why) = run(f).await {
            failures.push(why);
        }
    }
    println!(
        "{} of {} scenarios give exactly the expected work items",
        files.len() - failures.len(),
        files.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
