//! The allocation of one unit's credits to its installments, by strength of evidence and
//! never by the order credits were booked or arrived in:
//!
//! 0. a clerk's decision: the credit goes exactly where the clerk put it;
//! 1. credits that name their installments take them;
//! 2. a credit whose amount equals one open installment's remaining amount takes it, the
//!    installment due nearest the booking date first; one due well after the booking date
//!    (a prepayment) waits until the stronger evidence below has spoken;
//! 3. a credit that equals the amount of a set of open installments pays them together;
//! 4. a credit equal to an installment already paid in full, with no open installment of
//!    that amount due near its booking date, is that installment's duplicate;
//! 5. what remains of credits naming a contract is spread over its open installments,
//!    oldest due first;
//! 6. the prepayments that waited take the open installment of their amount due nearest;
//! 7. weak evidence (a payer whose name only resembles a customer's, a contract number one
//!    digit off) gives suggestions that take nothing from anyone.
//!
//! Within a step, a credit chooses the installment due nearest its booking date; of credits
//! of equal evidence wanting the same installment, the one booked first (then the lower bank
//! reference) takes it: all properties of the data. Where the evidence
//! cannot tell two installments apart, or a credit could be a prepayment or a duplicate,
//! the explanation says so and the confidence drops below the auto-confirm threshold.

mod claims;
mod place;
mod steps;

use super::evidence::Unit;
use super::{Allocation, MatchSettings};
use claims::{Book, Claim, claim};
use steps::{
    early_payments, equal_amount, manual, named, second_payments, sets, spread_the_rest,
    weak_evidence,
};

/// A payment this many days or less before the due date is on time, not a prepayment.
pub const NEAR_DAYS: i64 = 15;
/// A second payment equal to a paid installment is a possible duplicate when it comes
/// within this many days of the payment that paid it.
pub const DUPLICATE_DAYS: i64 = 20;
/// A credit traced by its payer pays installments due at most this many days after its
/// booking...
pub(super) const PAYER_WINDOW_BEFORE_DUE: i64 = 45;
/// ...and at most this many days before it.
pub(super) const PAYER_WINDOW_AFTER_DUE: i64 = 90;
/// Where the evidence cannot decide: below the default auto-confirm threshold (90).
pub(super) const UNDECIDED: u8 = 80;
/// A contract number one digit off: a suggestion at most.
pub(super) const NEAR_MISS: u8 = 75;

/// Allocates the unit's credits; returns each placed credit's allocations.
pub(super) fn allocate(unit: &Unit, settings: &MatchSettings) -> Vec<(String, Vec<Allocation>)> {
    let tol = settings.tolerance;
    let mut book = Book {
        inst: unit.installments.clone(),
        payable: unit.payable.clone(),
        remaining: unit.installments.iter().map(|i| i.amount.amount).collect(),
        paid_by: vec![Vec::new(); unit.installments.len()],
        tol,
    };
    let credits = &unit.credits;
    let mut claims: Vec<Option<Claim>> = credits.iter().map(|c| claim(c, &book)).collect();
    manual(&mut book, &mut claims, credits);
    named(&mut book, &mut claims, credits);
    equal_amount(&mut book, &mut claims, credits, settings);
    sets(&mut book, &mut claims, credits);
    second_payments(&mut book, &mut claims, credits, settings);
    spread_the_rest(&mut book, &mut claims, credits);
    early_payments(&mut book, &mut claims, credits, settings);
    weak_evidence(&mut book, &mut claims, credits, settings);
    claims
        .into_iter()
        .enumerate()
        .filter_map(|(c, claim)| {
            let claim = claim?;
            if claim.placed.is_empty() {
                return None;
            }
            let bank_ref = &credits[c].row.tx.bank_ref;
            Some((
                bank_ref.clone(),
                claim
                    .placed
                    .into_iter()
                    .map(|p| Allocation {
                        bank_ref: bank_ref.clone(),
                        contract_no: book.inst[p.inst].contract_no.clone(),
                        seq: book.inst[p.inst].seq,
                        amount: p.amount,
                        rule: p.rule,
                        confidence: p.confidence,
                        explanation: p.explanation,
                        confirmed: p.confidence >= settings.auto_confirm,
                        duplicate: p.duplicate,
                    })
                    .collect(),
            ))
        })
        .collect()
}
