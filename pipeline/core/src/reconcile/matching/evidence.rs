//! What each credit says about where it belongs (the contracts and installments its text
//! names, who paid it), and the units the allocation decides over: a customer's contracts
//! with every credit that points at them. Units share nothing, so each is allocated on its
//! own, by any thread, and a change re-allocates only the units it touches.

use std::collections::HashMap;

use reconlight_formats::model::ContractStatus;

use super::payer::{PayerIndex, PayerMatch};
use super::read_references;
use crate::reconcile::reference::ContractRefFinder;
use crate::reconcile::terms::Installment;
use crate::state::{BankRow, LiveState};

use super::ManualDecision;

/// What one credit's text and payer say.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Evidence {
    /// Contracts the text names that the CRM knows and that can still be paid.
    pub contracts: Vec<String>,
    /// The text names only contracts that were cancelled: nothing can take the credit.
    pub cancelled_only: bool,
    /// Numbers the text names that are no contract, each with the contracts one digit away.
    pub unknown: Vec<(String, Vec<String>)>,
    /// Installments the text names.
    pub hints: Vec<u32>,
    /// The customer the payer is, when the text names no known contract.
    pub payer: Option<(String, PayerMatch)>,
}

impl Evidence {
    /// Whether who paid decides where the credit belongs: its text names no contract that
    /// can be paid, and not only cancelled ones.
    pub fn asks_payer(&self) -> bool {
        self.contracts.is_empty() && !self.cancelled_only
    }

    /// The customers whose installments this credit may pay.
    pub fn customers<'s>(
        &self,
        state: &'s LiveState,
        manual: Option<&ManualDecision>,
    ) -> Vec<&'s str> {
        let customer_of = |no: &str| state.contracts.get(no).map(|c| c.customer_id.as_str());
        let mut out: Vec<&str> = Vec::new();
        for a in manual.into_iter().flat_map(|m| &m.allocations) {
            out.extend(customer_of(&a.contract_no));
        }
        out.extend(self.contracts.iter().filter_map(|c| customer_of(c)));
        for (_, near) in &self.unknown {
            out.extend(near.iter().filter_map(|c| customer_of(c)));
        }
        if let Some((customer, _)) = &self.payer
            && let Some(c) = state.customers.get(customer)
        {
            out.push(c.customer_id.as_str());
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Reads what each credit's remittance names and, where it names no known contract, who
/// the payer is.
pub fn read_evidence(
    state: &LiveState,
    finder: &ContractRefFinder,
    payers: &PayerIndex,
    credits: &[&BankRow],
) -> Vec<Evidence> {
    let texts: Vec<&str> = credits.iter().map(|c| c.tx.remittance.as_str()).collect();
    let named = read_references(finder, &texts);
    credits
        .iter()
        .zip(named)
        .map(|(credit, (numbers, hints))| evidence_of(state, payers, credit, &numbers, hints))
        .collect()
}

/// What one credit says, given the contract numbers and installments its text names.
pub fn evidence_of(
    state: &LiveState,
    payers: &PayerIndex,
    credit: &BankRow,
    numbers: &[String],
    hints: Vec<u32>,
) -> Evidence {
    let mut evidence = Evidence {
        hints,
        ..Evidence::default()
    };
    let mut cancelled = 0;
    for no in numbers {
        match state.contracts.get(no) {
            Some(c) if c.status == ContractStatus::Cancelled => cancelled += 1,
            Some(_) => evidence.contracts.push(no.clone()),
            None => {
                let near = one_digit_away(no, |n| {
                    state
                        .contracts
                        .get(n)
                        .is_some_and(|c| c.status != ContractStatus::Cancelled)
                });
                evidence.unknown.push((no.clone(), near));
            }
        }
    }
    evidence.cancelled_only = cancelled > 0 && evidence.contracts.is_empty();
    if evidence.asks_payer() {
        evidence.payer = payers
            .identify(
                credit.tx.counterparty_account.as_deref(),
                credit.tx.counterparty_name.as_deref(),
            )
            .map(|(c, how)| (c.to_string(), how));
    }
    evidence
}

/// The contract numbers that differ from `no` in one digit or by two neighbouring digits
/// swapped (the typing slips a clerk sees every day), among those `exists` knows.
pub fn one_digit_away(no: &str, exists: impl Fn(&str) -> bool) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = no.as_bytes();
    let mut candidate = bytes.to_vec();
    let check = |candidate: &[u8], out: &mut Vec<String>| {
        if let Ok(text) = std::str::from_utf8(candidate)
            && text != no
            && exists(text)
            && !out.iter().any(|o| o == text)
        {
            out.push(text.to_string());
        }
    };
    for i in 0..bytes.len() {
        if !bytes[i].is_ascii_digit() {
            continue;
        }
        for d in b'0'..=b'9' {
            candidate[i] = d;
            check(&candidate, &mut out);
        }
        candidate[i] = bytes[i];
        if i + 1 < bytes.len() && bytes[i + 1].is_ascii_digit() && bytes[i] != bytes[i + 1] {
            candidate.swap(i, i + 1);
            check(&candidate, &mut out);
            candidate.swap(i, i + 1);
        }
    }
    out.sort();
    out
}

/// A credit inside a unit, with what it says.
pub struct UnitCredit<'s> {
    pub row: &'s BankRow,
    pub evidence: Evidence,
    pub manual: Option<&'s ManualDecision>,
}

/// Some customers' installments and every credit that may pay them.
#[derive(Default)]
pub struct Unit<'s> {
    /// In (contract, seq) order.
    pub installments: Vec<&'s Installment>,
    /// Whether each installment's contract can still be paid (not cancelled).
    pub payable: Vec<bool>,
    /// In (booking date, bank reference) order.
    pub credits: Vec<UnitCredit<'s>>,
}

/// Groups the credits (with their evidence) and the installments into units: a customer,
/// joined with every other customer one credit points at as well. Credits that point at
/// nobody are left out: no installment can take them.
pub fn units<'s>(
    state: &'s LiveState,
    credits: Vec<&'s BankRow>,
    evidence: Vec<Evidence>,
) -> Vec<Unit<'s>> {
    let mut ids: HashMap<&'s str, usize> = HashMap::new();
    let mut parent: Vec<usize> = Vec::new();
    let mut id = |c: &'s str, parent: &mut Vec<usize>| {
        *ids.entry(c).or_insert_with(|| {
            parent.push(parent.len());
            parent.len() - 1
        })
    };
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut pointed: Vec<(usize, UnitCredit<'s>)> = Vec::new();
    for (row, evidence) in credits.into_iter().zip(evidence) {
        let manual = state.manual.get(&row.tx.bank_ref);
        let customers = evidence.customers(state, manual);
        let Some(first) = customers.first() else {
            continue;
        };
        let a = id(first, &mut parent);
        for c in &customers[1..] {
            let b = id(c, &mut parent);
            let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
            if ra != rb {
                parent[ra.max(rb)] = ra.min(rb);
            }
        }
        pointed.push((
            a,
            UnitCredit {
                row,
                evidence,
                manual,
            },
        ));
    }
    let mut by_root: HashMap<usize, usize> = HashMap::new();
    let mut out: Vec<Unit<'s>> = Vec::new();
    let mut unit_of = |r: usize, out: &mut Vec<Unit<'s>>| {
        *by_root.entry(r).or_insert_with(|| {
            out.push(Unit::default());
            out.len() - 1
        })
    };
    for (a, credit) in pointed {
        let r = root(&mut parent, a);
        let u = unit_of(r, &mut out);
        out[u].credits.push(credit);
    }
    for inst in state.installments.values() {
        let Some(&i) = ids.get(inst.customer_id.as_str()) else {
            continue;
        };
        let r = root(&mut parent, i);
        if let Some(&u) = by_root.get(&r) {
            let payable = state
                .contracts
                .get(&inst.contract_no)
                .is_some_and(|c| c.status != ContractStatus::Cancelled);
            out[u].installments.push(inst);
            out[u].payable.push(payable);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::one_digit_away;

    #[test]
    fn finds_contract_numbers_one_slip_away() {
        let known = ["HT-2026-000100", "HT-2026-000010", "HT-2026-001100"];
        let exists = |n: &str| known.contains(&n);
        assert_eq!(one_digit_away("HT-2026-000101", exists), ["HT-2026-000100"]);
        assert_eq!(
            one_digit_away("HT-2026-000001", exists),
            ["HT-2026-000010"],
            "two digits swapped"
        );
        assert!(one_digit_away("HT-2026-999999", exists).is_empty());
    }
}
