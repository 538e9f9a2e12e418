//! The open credits a clerk looks at first for a missing or short payment: those from the
//! customer's account or exact name, and those of the missing amount.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::json;

use super::counts_as_received;
use crate::reconcile::matching::{Matches, PayerIndex};
use crate::state::{BankRow, LiveState};

/// Candidate lines listed on a receivable with nothing or too little received.
const MAX_CANDIDATES: usize = 5;

/// Credits booked by D that no installment took, by the customer their payer is (account or
/// exact name) and by amount: the bank lines a clerk looks at first for a missing or short
/// payment.
pub(super) struct OpenCredits<'a> {
    by_customer: HashMap<&'a str, Vec<&'a BankRow>>,
    by_amount: BTreeMap<Decimal, Vec<&'a BankRow>>,
    payer: HashMap<&'a str, &'a str>,
}

impl<'a> OpenCredits<'a> {
    pub(super) fn new(state: &'a LiveState, matches: &Matches, through: NaiveDate) -> Self {
        let payers = PayerIndex::new(state.customers.values());
        let mut open = OpenCredits {
            by_customer: HashMap::new(),
            by_amount: BTreeMap::new(),
            payer: HashMap::new(),
        };
        for b in state.bank.values() {
            let tx = &b.tx;
            if !counts_as_received(b, through)
                || matches
                    .get(&tx.bank_ref)
                    .is_some_and(|a| a.iter().any(|a| a.confirmed))
            {
                continue;
            }
            if let Some(customer) = payers
                .identify_exactly(
                    tx.counterparty_account.as_deref(),
                    tx.counterparty_name.as_deref(),
                )
                .and_then(|c| state.customers.get_key_value(c))
                .map(|(id, _)| id.as_str())
            {
                open.by_customer.entry(customer).or_default().push(b);
                open.payer.insert(tx.bank_ref.as_str(), customer);
            }
            open.by_amount
                .entry(tx.amount.amount.normalize())
                .or_default()
                .push(b);
        }
        open
    }

    /// Open credits from the customer or of the missing amount (within the tolerance), in
    /// the currency, both first, then nearest the due date.
    pub(super) fn candidates(
        &self,
        customer: &str,
        currency: &str,
        missing: Decimal,
        tol: Decimal,
        due: Option<NaiveDate>,
    ) -> Vec<serde_json::Value> {
        let mut seen: HashMap<&str, (bool, bool, &BankRow)> = HashMap::new();
        for b in self.by_customer.get(customer).into_iter().flatten() {
            seen.insert(b.tx.bank_ref.as_str(), (true, false, b));
        }
        let lo = (missing - tol).normalize();
        let hi = (missing + tol).normalize();
        // A common round amount can have many open credits: the nearest few are enough.
        for b in self.by_amount.range(lo..=hi).flat_map(|(_, v)| v).take(200) {
            seen.entry(b.tx.bank_ref.as_str())
                .and_modify(|e| e.1 = true)
                .or_insert((false, true, b));
        }
        let mut found: Vec<(bool, bool, &BankRow)> = seen
            .into_values()
            .filter(|(_, _, b)| b.tx.amount.currency.to_string() == currency)
            .collect();
        let distance = |b: &BankRow| due.map_or(0, |d| (b.tx.booking_date - d).num_days().abs());
        found.sort_by_key(|(payer, amount, b)| {
            (
                !(*payer && *amount),
                !*payer,
                distance(b),
                b.tx.bank_ref.clone(),
            )
        });
        found
            .into_iter()
            .take(MAX_CANDIDATES)
            .map(|(payer, amount, b)| {
                let tx = &b.tx;
                let why = match (payer, amount) {
                    (true, true) => "paid by this customer, for the amount missing",
                    (true, false) => "paid by this customer, matched to nothing",
                    _ => "the amount missing, from a payer not known as this customer",
                };
                json!({
                    "bank_ref": tx.bank_ref,
                    "booking_date": tx.booking_date,
                    "amount": tx.amount.amount,
                    "payer": tx.counterparty_name,
                    "payer_account": tx.counterparty_account,
                    "payer_customer": self.payer.get(tx.bank_ref.as_str()),
                    "remittance": tx.remittance,
                    "why": why,
                })
            })
            .collect()
    }
}
