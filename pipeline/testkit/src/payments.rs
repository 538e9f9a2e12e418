//! The customers' payments and the truth about them. Both come from what the generator
//! means: the schedule is its own reading of the terms it chose (`schedule`, not the
//! pipeline's parser), each payment is made for the installment the generator decides, and
//! every problem's expected work item is written from that intent. Nothing here calls the
//! matcher: where a clerk could not tell which installment a payment is for, the payer says
//! so in the remittance.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{Duration, NaiveDate};
use reconlight_formats::model::{ContractStatus, Customer};
use rust_decimal::{Decimal, RoundingStrategy};

use super::names::*;
use super::writers::contract_row;
use super::*;

/// An installment as the contract's terms promise it.
#[derive(Clone, Debug)]
struct Promised {
    seq: u32,
    amount: Decimal,
    due: Option<NaiveDate>,
}

/// The installments of `TERMS[k]` for a contract of `amount` signed on `signed`: shares of
/// the amount rounded to the cent, the last taking the rounding remainder; each due its
/// days after signing or acceptance.
fn schedule(
    k: usize,
    amount: Decimal,
    signed: NaiveDate,
    accepted: Option<NaiveDate>,
) -> Vec<Promised> {
    #[derive(serde::Deserialize)]
    struct Term {
        seq: u32,
        percent: String,
        due_days: i64,
        anchor: String,
    }
    let terms: Vec<Term> = serde_json::from_str(TERMS[k]).expect("TERMS are JSON");
    let mut left = amount;
    terms
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let share = Decimal::from_str(&t.percent).expect("a percentage");
            let a = if i + 1 == terms.len() {
                left
            } else {
                (amount * share / Decimal::ONE_HUNDRED)
                    .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
            };
            left -= a;
            let anchor = if t.anchor == "accepted" {
                accepted
            } else {
                Some(signed)
            };
            Promised {
                seq: t.seq,
                amount: a,
                due: anchor.map(|d| d + Duration::days(t.due_days)),
            }
        })
        .collect()
}

/// A name close to the customer's but not the same company name: `成都华康医院` ->
/// `成都市华康医院`.
fn similar_name(name: &str, city: &str) -> String {
    format!("{city}市{}", &name[city.len()..])
}

/// The customer's name as a branch or department writes it on a transfer.
fn branch_name(g: &mut Gen, name: &str) -> String {
    match g.rng.range(0, 3) {
        0 => format!("{name}（{}）", g.rng.pick(&["财务部", "采购部", "财务科"])),
        1 => format!("{name}（{}分公司）", g.rng.pick(CITIES)),
        2 if name.ends_with("公司") => format!("{name}{}分公司", g.rng.pick(CITIES)),
        _ => format!("{name}(北京办事处)"),
    }
}

/// Amounts a clerk takes for the same payment.
fn same(a: Decimal, b: Decimal) -> bool {
    (a - b).abs() <= Decimal::new(200, 2)
}

/// Without naming the installment, a payment on `day` for `list[i]` is recognisable when
/// no other installment of that amount falls due anywhere near it.
fn clear_by_date(list: &[Promised], i: usize, day: NaiveDate) -> bool {
    let Some(own) = list[i].due.map(|d| (day - d).num_days().abs()) else {
        return false;
    };
    list.iter().enumerate().all(|(j, other)| {
        j == i
            || !same(other.amount, list[i].amount)
            || other
                .due
                .is_some_and(|d| (day - d).num_days().abs() > own + 20)
    })
}

/// A second payment on `second` of what was paid on `first` reads as a duplicate when the
/// first is recognisable and no other installment of that amount falls due within three
/// weeks of the second (otherwise it could be paying that one).
fn clear_duplicate(list: &[Promised], i: usize, first: NaiveDate, second: NaiveDate) -> bool {
    clear_by_date(list, i, first)
        && list.iter().enumerate().all(|(j, other)| {
            j == i
                || !same(other.amount, list[i].amount)
                || other
                    .due
                    .is_some_and(|d| (second - d).num_days().abs() > 21)
        })
}

fn truth_line(kind: &str, no: &str, seq: Option<u32>, credit: Option<usize>) -> TruthLine {
    TruthLine {
        kind: kind.into(),
        contract_no: Some(no.to_string()),
        installment: seq,
        bank_ref: credit.map(|i| format!("@credit{i}")),
    }
}

/// Credits for every installment due (and some early), and the truth of the problems.
pub(super) fn payments(g: &mut Gen, w: &mut World) {
    let mut final_contracts = std::mem::take(&mut w.final_contracts);
    let customers = std::mem::take(&mut w.customers);
    let mut credits = std::mem::take(&mut w.credits);
    let mut truth = std::mem::take(&mut w.truth);
    let customer_by_id: BTreeMap<String, Customer> = customers
        .iter()
        .map(|c| (c.customer_id.clone(), c.clone()))
        .collect();
    // Customers whose city and core name no other customer shares: a payer name close to
    // theirs can only mean them.
    let mut sharing: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for parts in w.name_parts.values() {
        *sharing.entry(*parts).or_default() += 1;
    }
    let distinct = |customer: &str| {
        w.name_parts
            .get(customer)
            .is_some_and(|p| sharing.get(p) == Some(&1))
    };

    // Every signed contract's promised installments, and every customer's.
    let mut schedules: BTreeMap<String, Vec<Promised>> = BTreeMap::new();
    for (c, _) in &final_contracts {
        if c.status != ContractStatus::Signed {
            continue;
        }
        if let (Some(Some(k)), Some(signed)) = (w.terms_intent.get(&c.contract_no), c.signed_at) {
            let accepted = c.accepted_at.map(|a| g.date_of(a));
            schedules.insert(
                c.contract_no.clone(),
                schedule(*k, c.amount.amount, g.date_of(signed), accepted),
            );
        }
    }
    let mut by_customer: BTreeMap<&str, Vec<(Decimal, Option<NaiveDate>)>> = BTreeMap::new();
    for (c, _) in &final_contracts {
        for p in schedules.get(&c.contract_no).into_iter().flatten() {
            by_customer
                .entry(c.customer_id.as_str())
                .or_default()
                .push((p.amount, p.due));
        }
    }
    // Without a contract number, the payment is the customer's only installment of that
    // amount due within three months of it.
    let unique_for_customer = |customer: &str, amount: Decimal, day: NaiveDate| {
        by_customer
            .get(customer)
            .into_iter()
            .flatten()
            .filter(|(a, due)| {
                same(*a, amount) && due.is_none_or(|d| (day - d).num_days().abs() <= 100)
            })
            .count()
            == 1
    };

    // One transfer for installments of two contracts, waiting for its second contract.
    let mut waiting_pair: BTreeMap<String, (String, Promised)> = BTreeMap::new();
    let mut cancellations: Vec<(usize, NaiveDate)> = Vec::new();
    for (ci, (c, problem)) in final_contracts.iter().enumerate() {
        if c.status != ContractStatus::Signed {
            continue;
        }
        let no = c.contract_no.as_str();
        let cust = &customer_by_id[&c.customer_id];
        match problem {
            Problem::NotCertified => {
                truth.insert(truth_line("signature_not_certified", no, None, None));
            }
            Problem::AmountMismatch => {
                truth.insert(truth_line("amount_mismatch", no, None, None));
            }
            _ => {}
        }
        let Some(list) = schedules.get(no) else {
            // Terms nobody can read: no installments, and finance must look at the contract.
            truth.insert(truth_line("terms_unparseable", no, None, None));
            continue;
        };
        let signed_day = g.date_of(c.signed_at.expect("signed"));
        let is_due = |p: &Promised| p.due.is_some_and(|d| d < g.end);
        let mut problem = *problem;
        let mut target = None;
        if matches!(
            problem,
            Problem::Missing | Problem::Partial | Problem::Over | Problem::Duplicate
        ) {
            let candidates: Vec<&Promised> = list
                .iter()
                .filter(|p| is_due(p))
                .filter(|p| {
                    problem != Problem::Duplicate
                        || p.due.is_some_and(|d| d + Duration::days(12) < g.end)
                })
                .collect();
            if candidates.is_empty() {
                problem = Problem::None;
            } else {
                target = Some(candidates[g.rng.range(0, candidates.len() as i64 - 1) as usize].seq);
            }
        }
        // A few contracts are cancelled after their first payment: the money received is
        // then explained by nothing.
        let first_due = list
            .iter()
            .filter_map(|p| p.due)
            .min()
            .filter(|d| *d > signed_day && *d + Duration::days(8) < g.end);
        // The cancellation comes after every other change the CRM recorded for it.
        let last_change = c.updated_at.map(|u| g.date_of(u)).unwrap_or(signed_day);
        if problem == Problem::None
            && let Some(due) = first_due
            && due.max(last_change) + Duration::days(7) < g.end
            && g.rng.chance(0.01)
        {
            let first = list.iter().find(|p| p.due == Some(due)).expect("first due");
            let memo = g.memo(no, &[first.seq], list.len(), true);
            credits.push(Credit::new(due, first.amount, cust, memo));
            truth.insert(TruthLine {
                kind: "unmatched_receipt".into(),
                contract_no: None,
                installment: None,
                bank_ref: Some(format!("@credit{}", credits.len() - 1)),
            });
            cancellations.push((ci, due.max(last_change) + Duration::days(g.rng.range(2, 6))));
            continue;
        }
        let of = list.len();
        let mut skip_next = false;
        // Installments a problem's scenario already paid.
        let mut twin_paid: Vec<u32> = Vec::new();
        // The problem's installment first, so that its scenario can pay others.
        let mut order: Vec<usize> = (0..list.len()).collect();
        order.sort_by_key(|&i| Some(list[i].seq) != target);
        for idx in order {
            let inst = &list[idx];
            if skip_next {
                skip_next = false;
                continue;
            }
            if twin_paid.contains(&inst.seq) {
                continue;
            }
            let Some(due_date) = inst.due else {
                continue;
            };
            let due = due_date < g.end;
            if !due && !g.rng.chance(0.15) {
                continue;
            }
            // Some pay weeks ahead; only a payment of an amount no other installment of the
            // contract has is then recognisable without naming it.
            let only_one = list.iter().filter(|o| same(o.amount, inst.amount)).count() == 1;
            let ahead = if !due && g.rng.chance(0.3) {
                40
            } else if due {
                6
            } else {
                10
            };
            let lo = (signed_day + Duration::days(1)).max(due_date - Duration::days(ahead));
            let hi = (due_date + Duration::days(2)).min(g.end);
            if lo > hi {
                continue;
            }
            let date = lo + Duration::days(g.rng.range(0, (hi - lo).num_days()));
            let expected = inst.amount;
            let pay = |g: &mut Gen, credits: &mut Vec<Credit>, day, amount, memo| {
                let name = if g.rng.chance(0.1) {
                    branch_name(g, &cust.name)
                } else {
                    cust.name.clone()
                };
                credits.push(Credit {
                    payer: name,
                    ..Credit::new(day, amount, cust, memo)
                });
                credits.len() - 1
            };
            if target == Some(inst.seq) {
                match problem {
                    Problem::Missing => {
                        // Its twin (same amount, same due date) paid without naming which:
                        // a clerk is offered the first of the two and chases the other.
                        let twin = list.iter().find(|o| {
                            o.seq != inst.seq && o.due == inst.due && o.amount == inst.amount
                        });
                        match twin {
                            Some(t) if g.rng.chance(0.5) => {
                                let memo = g.memo(no, &[], of, false);
                                let i = pay(g, &mut credits, date, expected, memo);
                                let (first, second) = (t.seq.min(inst.seq), t.seq.max(inst.seq));
                                truth.insert(truth_line(
                                    "suggested_match",
                                    no,
                                    Some(first),
                                    Some(i),
                                ));
                                truth.insert(truth_line("missing_payment", no, Some(second), None));
                                twin_paid.push(t.seq);
                            }
                            _ => {
                                truth.insert(truth_line(
                                    "missing_payment",
                                    no,
                                    Some(inst.seq),
                                    None,
                                ));
                            }
                        }
                    }
                    Problem::Partial => {
                        let share = Decimal::new(g.rng.range(40, 90), 2);
                        let memo = g.memo(no, &[inst.seq], of, true);
                        pay(g, &mut credits, date, (expected * share).round_dp(2), memo);
                        truth.insert(truth_line("partial_payment", no, Some(inst.seq), None));
                    }
                    Problem::Over => {
                        let extra = Decimal::from(g.rng.range(2, 500) * 10);
                        let memo = g.memo(no, &[inst.seq], of, true);
                        pay(g, &mut credits, date, expected + extra, memo);
                        truth.insert(truth_line("overpayment", no, Some(inst.seq), None));
                    }
                    Problem::Duplicate => {
                        // The same payment sent twice a few days apart; without the
                        // installment named only where no other of that amount is near.
                        let first = due_date.min(g.end - Duration::days(11));
                        let second = first + Duration::days(g.rng.range(3, 10));
                        let hint = g.rng.chance(0.4) || !clear_duplicate(list, idx, first, second);
                        let memo = g.memo(no, &[inst.seq], of, hint);
                        pay(g, &mut credits, first, expected, memo.clone());
                        let again = pay(g, &mut credits, second, expected, memo);
                        truth.insert(truth_line(
                            "duplicate_payment",
                            no,
                            Some(inst.seq),
                            Some(again),
                        ));
                    }
                    _ => {}
                }
                continue;
            }
            let clear = clear_by_date(list, idx, date)
                || (!due && only_one && (due_date - date).num_days() > 10);
            let style = g.rng.range(0, 99);
            let next = list.get(idx + 1);
            if style < 5
                && next.is_some_and(|n| n.due.is_some_and(|d| d < g.end) && target != Some(n.seq))
            {
                // One credit paying this installment and the next together.
                let n = next.expect("checked");
                let day = date
                    .max(n.due.expect("checked") - Duration::days(3))
                    .min(g.end);
                // Without a hint the set must be the only one that sums to the amount.
                let total = expected + n.amount;
                let other_fit = list.iter().enumerate().any(|(i, a)| {
                    let single = ![inst.seq, n.seq].contains(&a.seq) && same(a.amount, total);
                    single
                        || list[i + 1..].iter().any(|b| {
                            (a.seq, b.seq) != (inst.seq, n.seq) && same(a.amount + b.amount, total)
                        })
                });
                let hint = g.rng.chance(0.5) || other_fit;
                let memo = g.memo(no, &[inst.seq, n.seq], of, hint);
                pay(g, &mut credits, day, total, memo);
                skip_next = true;
            } else if style < 9 && due {
                // One transfer for this and another contract's installment.
                match waiting_pair.remove(&c.customer_id) {
                    Some((other_no, other)) if other_no != no => {
                        let total = expected + other.amount;
                        let theirs = &schedules[&other_no];
                        let all: Vec<(&str, u32, Decimal)> = list
                            .iter()
                            .map(|p| (no, p.seq, p.amount))
                            .chain(theirs.iter().map(|p| (other_no.as_str(), p.seq, p.amount)))
                            .collect();
                        let meant = |x: &(&str, u32, Decimal)| {
                            (x.0 == no && x.1 == inst.seq) || (x.0 == other_no && x.1 == other.seq)
                        };
                        // Only the pair meant may sum to the transfer.
                        let ambiguous = all.iter().any(|a| same(a.2, total))
                            || all.iter().enumerate().any(|(i, a)| {
                                all[i + 1..]
                                    .iter()
                                    .any(|b| same(a.2 + b.2, total) && !(meant(a) && meant(b)))
                            });
                        let day = date.max(other.due.unwrap_or(date)).min(g.end);
                        if ambiguous {
                            let memo = g.memo(no, &[inst.seq], of, true);
                            pay(g, &mut credits, date, expected, memo);
                            let memo = g.memo(&other_no, &[other.seq], theirs.len(), true);
                            pay(g, &mut credits, day, other.amount, memo);
                        } else {
                            let memo = format!("{} {}货款", g.spell(&other_no), g.spell(no));
                            pay(g, &mut credits, day, total, memo);
                        }
                    }
                    back => {
                        if let Some(w) = back {
                            waiting_pair.insert(c.customer_id.clone(), w);
                            let memo = g.memo(no, &[inst.seq], of, true);
                            pay(g, &mut credits, date, expected, memo);
                        } else {
                            waiting_pair
                                .insert(c.customer_id.clone(), (no.to_string(), inst.clone()));
                        }
                    }
                }
            } else if style < 16 && unique_for_customer(&cust.customer_id, expected, date) {
                // From the customer's known account, with a generic memo.
                let memo = g.rng.pick(GENERIC_MEMOS).to_string();
                credits.push(Credit::new(date, expected, cust, memo));
            } else if style < 22 && unique_for_customer(&cust.customer_id, expected, date) {
                // From an account the CRM does not know, under the company's name: exactly
                // (with a branch or department note), or only similar (a suggestion).
                let other_account = format!("6228{:015}", g.rng.next_u64() % 1_000_000_000_000_000);
                let memo = g.rng.pick(GENERIC_MEMOS).to_string();
                let similar = g.rng.chance(0.5) && distinct(&cust.customer_id);
                let name = if similar {
                    let city = w.name_parts[&cust.customer_id].0;
                    similar_name(&cust.name, city)
                } else if g.rng.chance(0.5) {
                    branch_name(g, &cust.name)
                } else {
                    cust.name.clone()
                };
                credits.push(Credit {
                    payer: name,
                    payer_account: other_account,
                    ..Credit::new(date, expected, cust, memo)
                });
                if similar {
                    truth.insert(truth_line(
                        "suggested_match",
                        no,
                        Some(inst.seq),
                        Some(credits.len() - 1),
                    ));
                }
            } else if style < 29 && expected > Decimal::from(1000) {
                // Split into 2-3 transfers, each naming the installment.
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
                    let memo = g.memo(no, &[inst.seq], of, true);
                    pay(g, &mut credits, day, amt, memo);
                }
            } else if style < 33 && expected > Decimal::from(1000) && date < g.end {
                // Part now (naming the installment), the rest a few days later with only the
                // contract number: the top-up equals what is still open.
                let part = (expected * Decimal::new(g.rng.range(40, 80), 2)).round_dp(2);
                let rest = expected - part;
                let later = (date + Duration::days(g.rng.range(1, 6))).min(g.end);
                let unique_rest = !list.iter().any(|p| same(p.amount, rest));
                let memo = g.memo(no, &[inst.seq], of, true);
                pay(g, &mut credits, date, part, memo);
                let memo = g.memo(no, &[inst.seq], of, !unique_rest || !clear);
                pay(g, &mut credits, later, rest, memo);
            } else if style < 40 && date < g.end {
                // The bank returns the payment the next day; most payers send it again.
                let back = date + Duration::days(1);
                let hint = g.rng.chance(0.5) || !clear;
                let memo = g.memo(no, &[inst.seq], of, hint);
                let i = pay(g, &mut credits, date, expected, memo.clone());
                credits[i].returned = Some(back);
                let again = back + Duration::days(g.rng.range(2, 4));
                if g.rng.chance(0.7) && again <= g.end {
                    let resent_clear = clear_by_date(list, idx, again);
                    let memo = if resent_clear {
                        memo
                    } else {
                        g.memo(no, &[inst.seq], of, true)
                    };
                    pay(g, &mut credits, again, expected, memo);
                } else if due {
                    truth.insert(truth_line("missing_payment", no, Some(inst.seq), None));
                }
            } else if style < 45 {
                // The payer's bank deducts a fee within tolerance.
                let fee = *g.rng.pick(&[
                    Decimal::new(50, 2),
                    Decimal::new(80, 2),
                    Decimal::new(20, 2),
                ]);
                let hint = g.rng.chance(0.5) || !clear;
                let memo = g.memo(no, &[inst.seq], of, hint);
                pay(g, &mut credits, date, expected - fee, memo);
            } else if style < 48 && due && unique_for_customer(&cust.customer_id, expected, date) {
                // A slip in the contract number's year (a number that is no contract, one
                // digit from this one): a suggestion for a clerk, never a confirmed match.
                let memo = format!("{}货款", no.replacen("2026", "2025", 1));
                let i = pay(g, &mut credits, date, expected, memo);
                truth.insert(truth_line("suggested_match", no, Some(inst.seq), Some(i)));
            } else if style < 50 && due {
                // The customer's foreign subsidiary pays the figure in USD: it pays nothing
                // on a CNY contract.
                let memo = g.memo(no, &[inst.seq], of, true);
                credits.push(Credit {
                    currency: "USD",
                    ..Credit::new(date, expected, cust, memo)
                });
                truth.insert(TruthLine {
                    kind: "unmatched_receipt".into(),
                    contract_no: None,
                    installment: None,
                    bank_ref: Some(format!("@credit{}", credits.len() - 1)),
                });
                truth.insert(truth_line("missing_payment", no, Some(inst.seq), None));
            } else {
                // The installment named, or (where the date tells) only the contract.
                let hint = g.rng.chance(0.5) || !clear;
                let memo = g.memo(no, &[inst.seq], of, hint);
                pay(g, &mut credits, date, expected, memo);
            }
        }
    }
    // Installments that waited for a second contract to share a transfer with and found
    // none are paid on their own, naming the installment.
    for (_, (no, inst)) in std::mem::take(&mut waiting_pair) {
        let c = &final_contracts
            .iter()
            .find(|(c, _)| c.contract_no == no)
            .expect("contract")
            .0;
        let cust = &customer_by_id[&c.customer_id];
        let of = schedules[&no].len();
        let memo = g.memo(&no, &[inst.seq], of, true);
        let day = inst.due.expect("due").min(g.end);
        credits.push(Credit::new(day, inst.amount, cust, memo));
    }
    for (ci, day) in cancellations {
        let (c, _) = &mut final_contracts[ci];
        let at = g.work_time(day);
        let before = contract_row(c);
        c.status = ContractStatus::Cancelled;
        c.updated_at = Some(at);
        c.updated_by = Some("crm.admin".into());
        w.cdc.push((
            at,
            CdcTable::Contracts,
            "u".into(),
            Some(before),
            Some(contract_row(c)),
        ));
    }

    w.final_contracts = final_contracts;
    w.customers = customers;
    w.credits = credits;
    w.truth = truth;
}
