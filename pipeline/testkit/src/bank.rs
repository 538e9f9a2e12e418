//! The bank side: other companies' credits, the credits laid out on the two accounts (some
//! in batch entries), debits, a mistaken credit and its reversal, pending entries.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use rust_decimal::Decimal;

use super::names::*;
use super::writers::*;
use super::*;

/// Lays every credit out on the camt.053 account or the CSV account, adding the bank's own lines.
pub(super) fn bank(g: &mut Gen, contracts: usize, w: &mut World) {
    let period_days = (g.end - g.start).num_days();
    let mut credits = std::mem::take(&mut w.credits);
    let mut truth = std::mem::take(&mut w.truth);
    // Other companies' credits nobody can match.
    let n_other = (contracts / 40).max(3);
    let mut other_credits = Vec::new();
    for _ in 0..n_other {
        let date = g.start + Duration::days(g.rng.range(0, period_days));
        let payer = format!(
            "{}{}{}有限公司",
            g.rng.pick(CITIES),
            g.rng.pick(OTHER_CORES),
            g.rng.pick(OTHER_KINDS)
        );
        let memo = g.rng.pick(OTHER_MEMOS).to_string();
        other_credits.push(credits.len());
        let amount = Decimal::new(g.rng.range(5_000, 3_000_000), 2);
        credits.push(Credit {
            date,
            amount,
            payer,
            payer_account: format!("6217{:015}", g.rng.next_u64() % 1_000_000_000_000_000),
            memo,
            bank_ref: String::new(),
            returned: None,
            currency: "CNY",
        });
    }

    // Lay the credits out on the two accounts, in booking order.
    let mut order: Vec<usize> = (0..credits.len()).collect();
    order.sort_by_key(|&i| (credits[i].date, i));
    let mut camt_days: BTreeMap<NaiveDate, Vec<CamtEntry>> = BTreeMap::new();
    let mut csv_lines: Vec<CsvLine> = Vec::new();
    let mut ref_no = 0u64;
    let mut next_ref = |prefix: &str, date: NaiveDate| {
        ref_no += 1;
        format!("{prefix}{}{:06}", date.format("%Y%m%d"), ref_no)
    };
    let mut pending_batch: Option<CamtEntry> = None;
    let mut returns: Vec<(NaiveDate, CamtTx)> = Vec::new();
    let mut usd_days: BTreeMap<NaiveDate, Vec<CamtEntry>> = BTreeMap::new();
    for &i in &order {
        let cr = credits[i].clone();
        if cr.currency == "USD" {
            let r = next_ref("ICBCUSD", cr.date);
            credits[i].bank_ref = r.clone();
            usd_days.entry(cr.date).or_default().push(CamtEntry {
                entry_ref: r.clone(),
                credit: true,
                reversal: false,
                booked: true,
                date: cr.date,
                txs: vec![CamtTx {
                    bank_ref: r.clone(),
                    amount: cr.amount,
                    end_to_end_id: format!("E2E{}", &r[7..]),
                    party_name: Some(cr.payer.clone()),
                    party_account: Some(cr.payer_account.clone()),
                    remittance: cr.memo.clone(),
                }],
            });
            continue;
        }
        // A returned payment shows as a reversal entry, which only the camt account carries.
        if g.rng.chance(0.3) && cr.returned.is_none() {
            let r = next_ref("CMB", cr.date);
            csv_lines.push(CsvLine {
                date: cr.date,
                time: format!(
                    "{:02}:{:02}:{:02}",
                    g.rng.range(8, 20),
                    g.rng.range(0, 59),
                    g.rng.range(0, 59)
                ),
                credit: Some(cr.amount),
                debit: None,
                party_name: cr.payer.clone(),
                party_account: cr.payer_account.clone(),
                memo: cr.memo.clone(),
                bank_ref: r.clone(),
            });
            credits[i].bank_ref = r;
            continue;
        }
        let tx_ref = next_ref("ICBC", cr.date);
        credits[i].bank_ref = tx_ref.clone();
        let tx = CamtTx {
            bank_ref: tx_ref.clone(),
            amount: cr.amount,
            end_to_end_id: format!("E2E{}", &tx_ref[4..]),
            party_name: Some(cr.payer.clone()),
            party_account: Some(cr.payer_account.clone()),
            remittance: cr.memo.clone(),
        };
        if let Some(back) = cr.returned {
            returns.push((back, tx.clone()));
            camt_days.entry(cr.date).or_default().push(CamtEntry {
                entry_ref: tx_ref,
                credit: true,
                reversal: false,
                booked: true,
                date: cr.date,
                txs: vec![tx],
            });
            continue;
        }
        // A few same-day credits arrive as one batch entry.
        if let Some(b) = pending_batch
            .as_mut()
            .filter(|b| b.date == cr.date && b.txs.len() < 3)
        {
            b.txs.push(tx);
            continue;
        }
        if let Some(b) = pending_batch.take() {
            camt_days.entry(b.date).or_default().push(b);
        }
        if g.rng.chance(0.06) {
            pending_batch = Some(CamtEntry {
                entry_ref: format!("B{tx_ref}"),
                credit: true,
                reversal: false,
                booked: true,
                date: cr.date,
                txs: vec![tx],
            });
        } else {
            camt_days.entry(cr.date).or_default().push(CamtEntry {
                entry_ref: tx_ref,
                credit: true,
                reversal: false,
                booked: true,
                date: cr.date,
                txs: vec![tx],
            });
        }
    }
    if let Some(b) = pending_batch.take() {
        camt_days.entry(b.date).or_default().push(b);
    }
    for (back, tx) in returns {
        let r = next_ref("ICBC", back);
        let returned = CamtTx {
            bank_ref: r.clone(),
            remittance: format!("退汇 {}", tx.remittance),
            ..tx
        };
        camt_days.entry(back).or_default().push(CamtEntry {
            entry_ref: r,
            credit: false,
            reversal: true,
            booked: true,
            date: back,
            txs: vec![returned],
        });
    }
    // A batch of one is an ordinary entry: its reference is the transaction's.
    for entries in camt_days.values_mut() {
        for e in entries.iter_mut() {
            if e.txs.len() == 1 && e.entry_ref.starts_with('B') {
                e.entry_ref = e.txs[0].bank_ref.clone();
            }
        }
    }
    // Truth lines that name a credit by its index get the bank reference it was given.
    let placeholders: Vec<TruthLine> = truth
        .iter()
        .filter(|t| {
            t.bank_ref
                .as_deref()
                .is_some_and(|r| r.starts_with("@credit"))
        })
        .cloned()
        .collect();
    for t in placeholders {
        truth.remove(&t);
        let idx: usize = t
            .bank_ref
            .as_deref()
            .and_then(|r| r.strip_prefix("@credit"))
            .and_then(|i| i.parse().ok())
            .expect("placeholder index");
        truth.insert(TruthLine {
            bank_ref: Some(credits[idx].bank_ref.clone()),
            ..t
        });
    }
    for &i in &other_credits {
        truth.insert(TruthLine {
            kind: "unmatched_receipt".into(),
            contract_no: None,
            installment: None,
            bank_ref: Some(credits[i].bank_ref.clone()),
        });
    }
    // Debits, a mistaken credit returned the next day, and pending entries.
    let mut day = g.start;
    while day <= g.end {
        if g.rng.chance(0.5) || day == g.end {
            let r = next_ref("ICBC", day);
            let payee = format!(
                "{}{}{}有限公司",
                g.rng.pick(CITIES),
                g.rng.pick(OTHER_CORES),
                g.rng.pick(OTHER_KINDS)
            );
            let amount = if day == g.end {
                Decimal::new(3500, 2)
            } else {
                Decimal::new(g.rng.range(100_000, 5_000_000), 2)
            };
            let memo = if day == g.end {
                "账户管理费".to_string()
            } else {
                "采购付款".to_string()
            };
            camt_days.entry(day).or_default().push(CamtEntry {
                entry_ref: r.clone(),
                credit: false,
                reversal: false,
                booked: true,
                date: day,
                txs: vec![CamtTx {
                    bank_ref: r.clone(),
                    amount,
                    end_to_end_id: format!("E2E{}", &r[4..]),
                    party_name: Some(payee),
                    party_account: None,
                    remittance: memo,
                }],
            });
        }
        if g.rng.chance(0.3) {
            let r = next_ref("CMB", day);
            csv_lines.push(CsvLine {
                date: day,
                time: "10:15:00".into(),
                credit: None,
                debit: Some(Decimal::new(g.rng.range(10_000, 900_000), 2)),
                party_name: format!(
                    "{}{}{}有限公司",
                    g.rng.pick(CITIES),
                    g.rng.pick(OTHER_CORES),
                    g.rng.pick(OTHER_KINDS)
                ),
                party_account: format!("6217{:015}", g.rng.next_u64() % 1_000_000_000_000_000),
                memo: "服务费".into(),
                bank_ref: r,
            });
        }
        day += Duration::days(1);
    }
    for _ in 0..(contracts / 500).max(1) {
        let d = g.start + Duration::days(g.rng.range(0, period_days - 2));
        let r = next_ref("ICBC", d);
        let rr = next_ref("ICBC", d + Duration::days(1));
        let amount = Decimal::new(g.rng.range(100_000, 9_000_000), 2);
        let payer = format!(
            "{}{}{}有限公司",
            g.rng.pick(CITIES),
            g.rng.pick(OTHER_CORES),
            g.rng.pick(OTHER_KINDS)
        );
        let acct = format!("6217{:015}", g.rng.next_u64() % 1_000_000_000_000_000);
        let e2e = format!("E2E{}", &r[4..]);
        let tx = CamtTx {
            bank_ref: r.clone(),
            amount,
            end_to_end_id: e2e.clone(),
            party_name: Some(payer.clone()),
            party_account: Some(acct.clone()),
            remittance: "误汇款".into(),
        };
        camt_days.entry(d).or_default().push(CamtEntry {
            entry_ref: r.clone(),
            credit: true,
            reversal: false,
            booked: true,
            date: d,
            txs: vec![tx.clone()],
        });
        let back = CamtTx {
            bank_ref: rr.clone(),
            remittance: "退回误汇款".into(),
            ..tx
        };
        camt_days
            .entry(d + Duration::days(1))
            .or_default()
            .push(CamtEntry {
                entry_ref: rr,
                credit: false,
                reversal: true,
                booked: true,
                date: d + Duration::days(1),
                txs: vec![back],
            });
    }
    for _ in 0..3 {
        let d = g.start + Duration::days(g.rng.range(0, period_days));
        let r = next_ref("ICBC", d);
        let tx = CamtTx {
            bank_ref: r.clone(),
            amount: Decimal::new(g.rng.range(100_000, 900_000), 2),
            end_to_end_id: "NOTPROVIDED".into(),
            party_name: Some("在途资金".into()),
            party_account: None,
            remittance: "待清算".into(),
        };
        camt_days.entry(d).or_default().push(CamtEntry {
            entry_ref: r,
            credit: true,
            reversal: false,
            booked: false,
            date: d,
            txs: vec![tx],
        });
    }
    csv_lines.sort_by(|a, b| (a.date, &a.time, &a.bank_ref).cmp(&(b.date, &b.time, &b.bank_ref)));

    w.credits = credits;
    w.truth = truth;
    w.camt_days = camt_days;
    w.usd_days = usd_days;
    w.csv_lines = csv_lines;
}
