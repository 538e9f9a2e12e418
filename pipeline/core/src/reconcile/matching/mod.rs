//! Matching bank credits to installments, by strength of evidence. Credits are grouped
//! into units (a customer's contracts and every credit pointing at them, `evidence`), and
//! each unit is allocated on its own over all its open installments and credits together
//! (`allocate`): a named installment first, then an amount equal to one installment, then
//! due-date order. Every allocation records its rule, a confidence and a sentence a finance
//! clerk understands. The result depends only on the data, never on booking or arrival
//! order, so a replay, the streaming path and the nightly diff all reproduce it exactly.

use std::collections::HashMap;

use chrono::NaiveDate;
use reconlight_formats::model::Direction;
use rust_decimal::Decimal;

pub use crate::derived::{Allocation, ManualAllocation, ManualDecision, MatchRule, Matches};

mod allocate;
mod evidence;
pub mod incremental;
mod payer;

use super::reference::ContractRefFinder;
use super::terms::Installment;

use crate::state::{BankRow, LiveState};
pub use allocate::{DUPLICATE_DAYS, NEAR_DAYS};
pub use evidence::{Evidence, one_digit_away};
pub use payer::{PayerIndex, PayerMatch, name_similarity, normalize_account};

/// The settings matching depends on.
pub struct MatchSettings<'a> {
    pub tolerance: Decimal,
    pub auto_confirm: u8,
    pub finder: &'a ContractRefFinder,
}

/// A credit that counts: money in, not itself a reversal, not returned.
fn is_live_credit(b: &BankRow) -> bool {
    b.tx.direction == Direction::Credit && !b.tx.reversal && b.reversed_by.is_none()
}

/// The contract numbers and installment hints of each text, in order; spread over the
/// machine's cores for large inputs.
pub fn read_references(finder: &ContractRefFinder, texts: &[&str]) -> Vec<(Vec<String>, Vec<u32>)> {
    // Each thread its own regex caches: shared ones contend on a lock.
    on_every_core(texts, 10_000, || {
        let finder = finder.clone();
        move |t: &&str| finder.read(t)
    })
}

/// Maps `items` in order, a chunk per core when there are at least `min` of them; `make`
/// gives each chunk's thread its own mapping function (and so its own caches).
pub(crate) fn on_every_core<T: Sync, R: Send, F: Fn(&T) -> R>(
    items: &[T],
    min: usize,
    make: impl Fn() -> F + Sync,
) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if threads == 1 || items.len() < min.max(2) {
        return items.iter().map(make()).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| {
                let make = &make;
                s.spawn(move || part.iter().map(make()).collect::<Vec<_>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a worker thread"))
            .collect()
    })
}

/// The exact-reference pass on its own: credits whose text names one contract and its
/// installments and whose amount equals their total within the tolerance. Returns how many
/// and how much. (The allocation runs this as its first step; this is the part comparable
/// with a SQL join, and what the benchmark measures.)
pub fn exact_reference_pass(
    state: &LiveState,
    settings: &MatchSettings,
    through: Option<NaiveDate>,
) -> (usize, Decimal) {
    // The installment index (the join's build side) and the credits are gathered at once.
    let (index, credits) = std::thread::scope(|s| {
        let index = s.spawn(|| {
            let all: Vec<&Installment> = state.installments.values().collect();
            let mut ranges: HashMap<&str, std::ops::Range<usize>> =
                HashMap::with_capacity(all.len() / 2);
            let mut start = 0;
            for i in 1..=all.len() {
                if i == all.len() || all[i].contract_no != all[start].contract_no {
                    ranges.insert(all[start].contract_no.as_str(), start..i);
                    start = i;
                }
            }
            (all, ranges)
        });
        let credits: Vec<&BankRow> = state
            .bank
            .values()
            .filter(|b| is_live_credit(b))
            .filter(|b| through.is_none_or(|d| b.tx.booking_date <= d))
            .collect();
        (index.join().expect("installment index"), credits)
    });
    let (all, by_contract) = index;
    // Each core reads and joins its share of the credits; only the sums come back.
    let pass = |part: &[&BankRow], finder: &ContractRefFinder| {
        let mut count = 0usize;
        let mut total = Decimal::ZERO;
        for credit in part {
            let Some((contract, hints)) = finder.read_single(&credit.tx.remittance) else {
                continue;
            };
            let Some(range) = by_contract.get(contract.as_str()) else {
                continue;
            };
            if hints.is_empty() {
                continue;
            }
            let mut expected = Decimal::ZERO;
            for seq in &hints {
                match range.clone().find(|k| all[*k].seq == *seq) {
                    Some(k) => expected += all[k].amount.amount,
                    None => {
                        expected = Decimal::MIN;
                        break;
                    }
                }
            }
            if (credit.tx.amount.amount - expected).abs() <= settings.tolerance {
                count += 1;
                total += credit.tx.amount.amount;
            }
        }
        (count, total)
    };
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if threads == 1 || credits.len() < 10_000 {
        return pass(&credits, settings.finder);
    }
    let chunk = credits.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = credits
            .chunks(chunk)
            .map(|part| {
                let finder = settings.finder.clone();
                s.spawn(move || pass(part, &finder))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("exact pass worker"))
            .fold((0, Decimal::ZERO), |a, b| (a.0 + b.0, a.1 + b.1))
    })
}

/// Matches every credit booked on or before `through` (all credits when `None`).
pub fn match_credits(
    state: &LiveState,
    settings: &MatchSettings,
    through: Option<NaiveDate>,
) -> Matches {
    let mut credits: Vec<&BankRow> = state
        .bank
        .values()
        .filter(|b| is_live_credit(b))
        .filter(|b| through.is_none_or(|d| b.tx.booking_date <= d))
        .collect();
    credits.sort_by(|a, b| {
        (a.tx.booking_date, &a.tx.bank_ref).cmp(&(b.tx.booking_date, &b.tx.bank_ref))
    });
    let payers = PayerIndex::new(state.customers.values());
    let evidence = evidence::read_evidence(state, settings.finder, &payers, &credits);
    let units = evidence::units(state, credits, evidence);
    allocate_units(&units, settings)
}

/// Allocates every unit, spread over the machine's cores when there are many.
fn allocate_units(units: &[evidence::Unit], settings: &MatchSettings) -> Matches {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if threads == 1 || units.len() < 2_000 {
        return units
            .iter()
            .flat_map(|u| allocate::allocate(u, settings))
            .collect();
    }
    let chunk = units.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = units
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .flat_map(|u| allocate::allocate(u, settings))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("allocation worker"))
            .collect()
    })
}
