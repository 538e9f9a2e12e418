//! The nightly diff over 1,000,000 installments and 1,000,000 bank lines, and the same
//! exact-reference matching in DuckDB over the same data, in one run:
//!
//!     cargo bench -p reconlight --bench nightly [-- INSTALLMENTS BANK_LINES RUNS]
//!
//! Prints medians, peak memory and the ratio. Needs `python3` with `duckdb`
//! (`pip install duckdb`); without it, only reconlight's figures are printed.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::Command;
use std::str::FromStr;
use std::time::Instant;

use chrono::{Duration, NaiveDate};
use reconlight_core::reconcile::diff::nightly_diff;
use reconlight_core::reconcile::matching::{MatchSettings, exact_reference_pass};
use reconlight_core::reconcile::reference::ContractRefFinder;
use reconlight_core::reconcile::terms::{Anchor, Installment};
use reconlight_core::state::{BankRow, LiveState};
use reconlight_formats::model::{
    BankTransaction, Contract, ContractStatus, Currency, Customer, Direction, Money,
    SignatureEvent, SignatureStatus,
};
use rust_decimal::Decimal;

// As the binary does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn peak_memory_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_string)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A company: contracts of three installments, and bank lines that pay most of them in the
/// usual ways (reference and installment, reference only, partial, by account) plus
/// other companies' credits.
fn company(installments: usize, bank_lines: usize) -> LiveState {
    let mut rng = Lcg(20261127);
    let mut s = LiveState::default();
    let customers = (installments / 20).max(1);
    for c in 0..customers {
        let id = format!("C{c:07}");
        s.customers.insert(
            id.clone(),
            Customer {
                customer_id: id,
                name: format!("客户{c}有限公司"),
                bank_account_no: Some(format!("6222{c:015}")),
                region: None,
            },
        );
    }
    let start = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
    let contracts = installments.div_ceil(3);
    let mut keys = Vec::with_capacity(installments);
    for n in 0..contracts {
        let no = format!("HT-2025-{n:06}");
        let customer = format!("C{:07}", rng.below(customers as u64));
        let total = Decimal::new((rng.below(99_000) as i64 + 1_000) * 100, 2) * Decimal::from(10);
        let signed = start + Duration::days(rng.below(330) as i64);
        s.contracts.insert(
            no.clone(),
            Contract {
                contract_no: no.clone(),
                customer_id: customer.clone(),
                owner_id: None,
                region: None,
                amount: Money::new(total, Currency::CNY),
                status: ContractStatus::Signed,
                signed_at: Some(signed.and_hms_opt(2, 0, 0).unwrap().and_utc()),
                signature_method: Some("e_sign".into()),
                accepted_at: None,
                payment_terms: String::new(),
                updated_at: None,
                updated_by: None,
                updated_ip: None,
            },
        );
        let event_id = format!("docusign:{no}:envelope-completed:-");
        s.signatures.insert(
            event_id.clone(),
            SignatureEvent {
                event_id,
                provider: "docusign".into(),
                envelope_id: format!("env-{n}"),
                event: "envelope-completed".into(),
                status: SignatureStatus::Completed,
                contract_no: Some(no.clone()),
                amount: Some(Money::new(total, Currency::CNY)),
                signature_type: Some("ca_digital".into()),
                ca_certified: true,
                signer: None,
                occurred_at: signed.and_hms_opt(1, 0, 0).unwrap().and_utc(),
            },
        );
        let shares = [
            Decimal::new(30, 2),
            Decimal::new(30, 2),
            Decimal::new(40, 2),
        ];
        for (i, share) in shares.iter().enumerate() {
            if keys.len() == installments {
                break;
            }
            let seq = i as u32 + 1;
            let inst = Installment {
                contract_no: no.clone(),
                seq,
                customer_id: customer.clone(),
                amount: Money::new((total * share).round_dp(2), Currency::CNY),
                anchor: Anchor::Signed,
                due_days: 10 * seq as i64,
                due_date: Some(signed + Duration::days(10 * seq as i64)),
            };
            keys.push((no.clone(), seq));
            s.installments.insert((no.clone(), seq), inst);
        }
    }
    for line in 0..bank_lines {
        let roll = rng.below(100);
        let (amount, remittance, account, date) = match keys.get(line) {
            Some(key) if roll < 90 => {
                let inst = &s.installments[key];
                let due = inst.due_date.unwrap();
                let digits = &key.0[3..].replace('-', "");
                let account = s.customers[&inst.customer_id].bank_account_no.clone();
                match roll {
                    0..=69 => {
                        let text = match rng.below(3) {
                            0 => format!("{} 第{}期", key.0, key.1),
                            1 => format!("合同号HT{digits}第{}期款", key.1),
                            _ => format!("Payment ht-{} installment {}", &key.0[3..], key.1),
                        };
                        (inst.amount.amount, text, account, due)
                    }
                    70..=79 => (inst.amount.amount, format!("{}货款", key.0), account, due),
                    80..=84 => (
                        (inst.amount.amount * Decimal::new(6, 1)).round_dp(2),
                        format!("{} 第{}期", key.0, key.1),
                        account,
                        due,
                    ),
                    _ => (inst.amount.amount, "货款".to_string(), account, due),
                }
            }
            _ => (
                Decimal::new(rng.below(10_000_000) as i64 + 100, 2),
                "往来款".to_string(),
                Some(format!("6217{line:015}")),
                start + Duration::days(rng.below(360) as i64),
            ),
        };
        let bank_ref = format!("B{line:09}");
        s.bank.insert(
            bank_ref.clone(),
            BankRow {
                tx: BankTransaction {
                    bank_ref,
                    account: "128905678810201".into(),
                    direction: Direction::Credit,
                    amount: Money::new(amount, Currency::CNY),
                    reversal: false,
                    booking_date: date,
                    value_date: None,
                    counterparty_name: None,
                    counterparty_account: account,
                    remittance,
                    end_to_end_id: None,
                    format: "bench".into(),
                },
                reversed_by: None,
                reverses: None,
                source: String::new(),
                position: String::new(),
            },
        );
    }
    s
}

fn write_csv(state: &LiveState, dir: &std::path::Path) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join("installments.csv"))?);
    writeln!(f, "contract_no,seq,amount,due_date")?;
    for ((no, seq), i) in &state.installments {
        writeln!(f, "{no},{seq},{},{}", i.amount.amount, i.due_date.unwrap())?;
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join("bank.csv"))?);
    writeln!(f, "bank_ref,booking_date,direction,amount,remittance")?;
    for b in state.bank.values() {
        writeln!(
            f,
            "{},{},credit,{},\"{}\"",
            b.tx.bank_ref,
            b.tx.booking_date,
            b.tx.amount.amount,
            b.tx.remittance.replace('"', "\"\"")
        )?;
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let installments: usize = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let bank_lines: usize = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let runs: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(3);

    let started = Instant::now();
    let state = company(installments, bank_lines);
    println!(
        "data: {} installments of {} contracts, {} bank lines (built in {:.1}s)",
        state.installments.len(),
        state.contracts.len(),
        state.bank.len(),
        started.elapsed().as_secs_f64()
    );
    let finder = ContractRefFinder::new(
        r"(?i)HT[\s\-_/]*([0-9]{4})[\s\-_/]*([0-9]{6})",
        "HT-${1}-${2}",
    )
    .unwrap();
    let settings = MatchSettings {
        tolerance: Decimal::from_str("1.00").unwrap(),
        auto_confirm: 90,
        finder: &finder,
    };
    let date = NaiveDate::from_ymd_opt(2026, 1, 31).unwrap();
    let tz = chrono_tz::Asia::Shanghai;

    let mut exact = Vec::new();
    let mut exact_result = (0, Decimal::ZERO);
    for _ in 0..runs.max(3) {
        let t = Instant::now();
        exact_result = exact_reference_pass(&state, &settings, Some(date));
        exact.push(t.elapsed().as_secs_f64());
    }
    let mut full = Vec::new();
    let mut kinds = BTreeMap::new();
    // RECONLIGHT_BENCH_EXACT_ONLY=1 skips the full diff (for profiling the shared part).
    let full_runs = if std::env::var_os("RECONLIGHT_BENCH_EXACT_ONLY").is_some() {
        0
    } else {
        runs
    };
    for _ in 0..full_runs {
        let t = Instant::now();
        let (matches, findings, summary) = nightly_diff(&state, &settings, tz, date);
        full.push(t.elapsed().as_secs_f64());
        kinds = summary.findings_by_kind.clone();
        drop((matches, findings));
    }
    let exact_median = median(exact);
    println!(
        "reconlight exact-reference pass: median {exact_median:.3}s over {} runs; {} credits matched, {} CNY",
        runs.max(3),
        exact_result.0,
        exact_result.1
    );
    if !full.is_empty() {
        println!(
            "reconlight full nightly diff (all passes + findings): median {:.3}s over {runs} runs; findings {kinds:?}",
            median(full)
        );
    }
    println!("peak memory (VmHWM): {:.0} MiB", peak_memory_mib());

    let dir = tempfile::tempdir().unwrap();
    write_csv(&state, dir.path()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/bench_duckdb.py");
    match Command::new("python3")
        .arg(script)
        .arg(dir.path())
        .arg("5")
        .output()
    {
        Ok(out) if out.status.success() => {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let duck = v["median_seconds"].as_f64().unwrap();
            println!(
                "DuckDB {} exact-reference SQL: median {duck:.3}s over 5 runs; {} credits matched, {} CNY",
                v["duckdb"].as_str().unwrap_or("?"),
                v["matched"],
                v["amount"].as_str().unwrap_or("?")
            );
            println!(
                "ratio DuckDB / reconlight on the shared part: {:.2}x",
                duck / exact_median
            );
            if v["matched"].as_u64() != Some(exact_result.0 as u64) {
                println!(
                    "WARNING: DuckDB matched {} credits, reconlight {}",
                    v["matched"], exact_result.0
                );
            }
        }
        Ok(out) => println!(
            "DuckDB not run: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ),
        Err(e) => println!("DuckDB not run: {e}"),
    }
}
