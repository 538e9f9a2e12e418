//! The customers' payments, following each signed contract's installments exactly as the
//! pipeline derives them, in the many ways real payers pay, and the injected payment problems.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use reconlight_connectors::model::{ContractStatus, Customer};
use rust_decimal::Decimal;

use super::names::*;
use super::*;
use crate::reconcile::terms::{Installment, installments};

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
    for (c, problem) in &final_contracts {
        if c.status != ContractStatus::Signed {
            continue;
        }
        let cust = &customer_by_id[&c.customer_id];
        let list = &all_installments[&c.contract_no];
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
        match problem {
            Problem::NotCertified => {
                truth.insert(TruthLine {
                    kind: "signature_not_certified".into(),
                    contract_no: Some(c.contract_no.clone()),
                    installment: None,
                    bank_ref: None,
                });
            }
            Problem::AmountMismatch => {
                truth.insert(TruthLine {
                    kind: "amount_mismatch".into(),
                    contract_no: Some(c.contract_no.clone()),
                    installment: None,
                    bank_ref: None,
                });
            }
            _ => {}
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
            let mut push = |g: &mut Gen, date: NaiveDate, amount: Decimal, memo: String| {
                let payer = payer_name(g);
                credits.push(Credit {
                    date,
                    amount,
                    payer,
                    payer_account: account.clone(),
                    memo,
                    bank_ref: String::new(),
                });
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
                        push(g, date, (expected * share).round_dp(2), memo);
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
                        push(g, date, expected + extra, memo);
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
                        push(g, first, expected, memo.clone());
                        push(g, second, expected, memo);
                        // The bank reference of the second credit is known once it is written.
                        truth.insert(TruthLine {
                            kind: "duplicate_payment".into(),
                            contract_no: Some(c.contract_no.clone()),
                            installment: Some(inst.seq),
                            bank_ref: Some(format!("@credit{}", credits.len() - 1)),
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
                push(g, day, expected + n.amount.amount, memo);
                skip_next = true;
            } else if !hints_required && style < 16 && unambiguous {
                let memo = g.rng.pick(GENERIC_MEMOS).to_string();
                push(g, date, expected, memo);
            } else if style < 26 && expected > Decimal::from(1000) {
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
                    push(g, day, amt, memo);
                }
            } else if style < 36 {
                // The payer's bank deducts a fee within tolerance.
                let fee = *g.rng.pick(&[
                    Decimal::new(50, 2),
                    Decimal::new(80, 2),
                    Decimal::new(20, 2),
                ]);
                let memo = g.memo(&c.contract_no, &[inst.seq], true);
                push(g, date, expected - fee, memo);
            } else {
                // Installments of equal amounts can only be told apart by a hint.
                let twin = list
                    .iter()
                    .any(|o| o.seq != inst.seq && (o.amount.amount - expected).abs() <= tol2);
                let hint = hints_required || g.rng.chance(0.6) || twin;
                let memo = g.memo(&c.contract_no, &[inst.seq], hint);
                push(g, date, expected, memo);
            }
        }
    }

    w.final_contracts = final_contracts;
    w.customers = customers;
    w.credits = credits;
    w.truth = truth;
}
