//! The customers' payments, following each signed contract's installments exactly as the
//! pipeline derives them, in the many ways real payers pay, and the injected payment problems.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use reconlight_connectors::model::{ContractStatus, Customer};
use rust_decimal::Decimal;

use super::names::*;
use super::*;
use crate::reconcile::matching::{PayerIndex, PayerMatch};
use crate::reconcile::terms::{Installment, installments};

/// A name close to the customer's but not the same company name: `成都华康医院` ->
/// `成都市华康医院`.
fn similar_name(name: &str) -> String {
    match CITIES.iter().find(|c| name.starts_with(**c)) {
        Some(city) => format!("{city}市{}", &name[city.len()..]),
        None => format!("{name}集团"),
    }
}

/// Credits for every installment due (and some early), and the truth of the problems.
pub(super) fn payments(g: &mut Gen, w: &mut World) {
    let final_contracts = std::mem::take(&mut w.final_contracts);
    let customers = std::mem::take(&mut w.customers);
    let mut credits = std::mem::take(&mut w.credits);
    let mut truth = std::mem::take(&mut w.truth);
    // Payments, from the final contract state and the same installment rules the pipeline uses.
    let mut all_installments: BTreeMap<String, Vec<Installment>> = BTreeMap::new();
    for (c, _) in &final_contracts {
        if c.status != ContractStatus::Cancelled
            && let Ok(list) = installments(c, None, g.tz)
        {
            all_installments.insert(c.contract_no.clone(), list);
        }
    }
    let mut customer_amounts: BTreeMap<String, Vec<Decimal>> = BTreeMap::new();
    for list in all_installments.values() {
        for inst in list {
            customer_amounts
                .entry(inst.customer_id.clone())
                .or_default()
                .push(inst.amount.amount);
        }
    }
    let customer_by_id: BTreeMap<String, Customer> = customers
        .iter()
        .map(|c| (c.customer_id.clone(), c.clone()))
        .collect();
    let tol2 = Decimal::new(200, 2);
    let payers = PayerIndex::new(customers.iter());
    for (c, problem) in &final_contracts {
        if c.status != ContractStatus::Signed {
            continue;
        }
        let cust = &customer_by_id[&c.customer_id];
        let contract_truth = |kind: &str| TruthLine {
            kind: kind.into(),
            contract_no: Some(c.contract_no.clone()),
            installment: None,
            bank_ref: None,
        };
        match problem {
            Problem::NotCertified => {
                truth.insert(contract_truth("signature_not_certified"));
            }
            Problem::AmountMismatch => {
                truth.insert(contract_truth("amount_mismatch"));
            }
            _ => {}
        }
        let Some(list) = all_installments.get(&c.contract_no) else {
            // Terms nobody can read: no installments, and finance must look at the contract.
            truth.insert(contract_truth("terms_unparseable"));
            continue;
        };
        let signed_day = g.date_of(c.signed_at.expect("signed"));
        let due: Vec<&Installment> = list
            .iter()
            .filter(|i| i.due_date.is_some_and(|d| d < g.end))
            .collect();
        let mut problem = *problem;
        let mut target = None;
        if matches!(
            problem,
            Problem::Missing | Problem::Partial | Problem::Over | Problem::Duplicate
        ) {
            let candidates: Vec<&&Installment> = due
                .iter()
                .filter(|i| {
                    problem != Problem::Duplicate
                        || i.due_date.is_some_and(|d| d + Duration::days(12) < g.end)
                })
                .collect();
            if candidates.is_empty() {
                problem = Problem::None;
            } else {
                target = Some(candidates[g.rng.range(0, candidates.len() as i64 - 1) as usize].seq);
            }
        }
        let hints_required = problem != Problem::None;
        let payer_name = |g: &mut Gen| {
            if g.rng.chance(0.1) {
                format!("{}（{}分公司）", cust.name, g.rng.pick(CITIES))
            } else {
                cust.name.clone()
            }
        };
        let account = cust.bank_account_no.clone().unwrap_or_default();
        let mut skip_next = false;
        for (idx, inst) in list.iter().enumerate() {
            if skip_next {
                skip_next = false;
                continue;
            }
            let Some(due_date) = inst.due_date else {
                continue;
            };
            let is_due = due_date < g.end;
            if !is_due && !g.rng.chance(0.15) {
                continue;
            }
            let lo = (signed_day + Duration::days(1))
                .max(due_date - Duration::days(if is_due { 6 } else { 10 }));
            let hi = (due_date + Duration::days(2)).min(g.end);
            if lo > hi {
                continue;
            }
            let date = lo + Duration::days(g.rng.range(0, (hi - lo).num_days()));
            let expected = inst.amount.amount;
            let is_target = target == Some(inst.seq);
            let mut pay = |g: &mut Gen,
                           date: NaiveDate,
                           amount: Decimal,
                           memo: String,
                           payer: Option<(String, String)>,
                           returned: Option<NaiveDate>| {
                let (payer, payer_account) =
                    payer.unwrap_or_else(|| (payer_name(g), account.clone()));
                credits.push(Credit {
                    date,
                    amount,
                    payer,
                    payer_account,
                    memo,
                    bank_ref: String::new(),
                    returned,
                });
                credits.len() - 1
            };
            if is_target {
                match problem {
                    Problem::Missing => {
                        truth.insert(TruthLine {
                            kind: "missing_payment".into(),
                            contract_no: Some(c.contract_no.clone()),
                            installment: Some(inst.seq),
                            bank_ref: None,
                        });
                    }
                    Problem::Partial => {
                        let share = Decimal::new(g.rng.range(40, 90), 2);
                        let memo = g.memo(&c.contract_no, &[inst.seq], true);
                        pay(g, date, (expected * share).round_dp(2), memo, None, None);
                        truth.insert(TruthLine {
                            kind: "partial_payment".into(),
                            contract_no: Some(c.contract_no.clone()),
                            installment: Some(inst.seq),
                            bank_ref: None,
                        });
                    }
                    Problem::Over => {
                        let extra = Decimal::from(g.rng.range(2, 500) * 10);
                        let memo = g.memo(&c.contract_no, &[inst.seq], true);
                        pay(g, date, expected + extra, memo, None, None);
                        truth.insert(TruthLine {
                            kind: "overpayment".into(),
                            contract_no: Some(c.contract_no.clone()),
                            installment: Some(inst.seq),
                            bank_ref: None,
                        });
                    }
                    Problem::Duplicate => {
                        let first = due_date.min(g.end - Duration::days(11));
                        let second = first + Duration::days(g.rng.range(3, 10));
                        let memo = g.memo(&c.contract_no, &[inst.seq], true);
                        pay(g, first, expected, memo.clone(), None, None);
                        let idx = pay(g, second, expected, memo, None, None);
                        // The bank reference of the second credit is known once it is written.
                        truth.insert(TruthLine {
                            kind: "duplicate_payment".into(),
                            contract_no: Some(c.contract_no.clone()),
                            installment: Some(inst.seq),
                            bank_ref: Some(format!("@credit{idx}")),
                        });
                    }
                    _ => {}
                }
                continue;
            }
            let style = g.rng.range(0, 99);
            let next = list.get(idx + 1);
            let unambiguous = customer_amounts[&c.customer_id]
                .iter()
                .filter(|a| (**a - expected).abs() <= tol2)
                .count()
                == 1;
            if !hints_required
                && style < 6
                && next
                    .is_some_and(|n| n.due_date.is_some_and(|d| d < g.end) && target != Some(n.seq))
            {
                // One credit paying this installment and the next together.
                let n = next.expect("checked");
                let day = date
                    .max(n.due_date.expect("checked") - Duration::days(3))
                    .min(g.end);
                // Without a hint the matcher looks for the installments that sum to the
                // amount: name them when another set would sum to it too.
                let total = expected + n.amount.amount;
                let other_fit = list.iter().enumerate().any(|(i, a)| {
                    let single = ![inst.seq, n.seq].contains(&a.seq)
                        && (a.amount.amount - total).abs() <= tol2;
                    single
                        || list[i + 1..].iter().any(|b| {
                            (a.seq, b.seq) != (inst.seq, n.seq)
                                && (a.amount.amount + b.amount.amount - total).abs() <= tol2
                        })
                });
                let hint = g.rng.chance(0.5) || other_fit;
                let memo = g.memo(&c.contract_no, &[inst.seq, n.seq], hint);
                pay(g, day, expected + n.amount.amount, memo, None, None);
                skip_next = true;
            } else if !hints_required && style < 16 && unambiguous {
                let memo = g.rng.pick(GENERIC_MEMOS).to_string();
                pay(g, date, expected, memo, None, None);
            } else if !hints_required && style < 22 && unambiguous {
                // From an account the CRM does not know, under the company's name: the same
                // name (confirmed) or a similar one (a suggestion for a clerk).
                let similar = g.rng.chance(0.5);
                let name = if similar {
                    similar_name(&cust.name)
                } else {
                    format!(
                        "{}（{}）",
                        cust.name,
                        g.rng.pick(&["财务部", "采购部", "北京办事处"])
                    )
                };
                let other_account = format!("6228{:015}", g.rng.next_u64() % 1_000_000_000_000_000);
                let memo = g.rng.pick(GENERIC_MEMOS).to_string();
                match payers.identify(Some(&other_account), Some(&name)) {
                    Some((who, PayerMatch::SimilarName { .. })) if who == cust.customer_id => {
                        let idx = pay(g, date, expected, memo, Some((name, other_account)), None);
                        truth.insert(TruthLine {
                            kind: "suggested_match".into(),
                            contract_no: Some(c.contract_no.clone()),
                            installment: Some(inst.seq),
                            bank_ref: Some(format!("@credit{idx}")),
                        });
                    }
                    Some((who, PayerMatch::Name { .. })) if who == cust.customer_id => {
                        pay(g, date, expected, memo, Some((name, other_account)), None);
                    }
                    _ => {
                        let memo = g.memo(&c.contract_no, &[inst.seq], true);
                        pay(g, date, expected, memo, None, None);
                    }
                }
            } else if style < 32 && expected > Decimal::from(1000) {
                // Split into 2-3 transfers.
                let parts = g.rng.range(2, 3);
                let mut left = expected;
                for p in 0..parts {
                    let amt = if p + 1 == parts {
                        left
                    } else {
                        (expected * Decimal::new(g.rng.range(25, 45), 2)).round_dp(2)
                    };
                    left -= amt;
                    let day = (date + Duration::days(p)).min(g.end);
                    let memo = g.memo(&c.contract_no, &[inst.seq], true);
                    pay(g, day, amt, memo, None, None);
                }
            } else if style < 40 && date < g.end {
                // The bank returns the payment the next day; most payers send it again.
                let back = date + Duration::days(1);
                let memo = g.memo(&c.contract_no, &[inst.seq], true);
                pay(g, date, expected, memo.clone(), None, Some(back));
                let again = back + Duration::days(g.rng.range(2, 4));
                if g.rng.chance(0.7) && again <= g.end {
                    pay(g, again, expected, memo, None, None);
                } else if is_due {
                    truth.insert(TruthLine {
                        kind: "missing_payment".into(),
                        contract_no: Some(c.contract_no.clone()),
                        installment: Some(inst.seq),
                        bank_ref: None,
                    });
                }
            } else if style < 46 {
                // The payer's bank deducts a fee within tolerance.
                let fee = *g.rng.pick(&[
                    Decimal::new(50, 2),
                    Decimal::new(80, 2),
                    Decimal::new(20, 2),
                ]);
                let memo = g.memo(&c.contract_no, &[inst.seq], true);
                pay(g, date, expected - fee, memo, None, None);
            } else {
                // Installments of equal amounts can only be told apart by a hint.
                let twin = list
                    .iter()
                    .any(|o| o.seq != inst.seq && (o.amount.amount - expected).abs() <= tol2);
                let hint = hints_required || g.rng.chance(0.6) || twin;
                let memo = g.memo(&c.contract_no, &[inst.seq], hint);
                pay(g, date, expected, memo, None, None);
            }
        }
    }

    w.final_contracts = final_contracts;
    w.customers = customers;
    w.credits = credits;
    w.truth = truth;
}
