//! Reconciliation: payment terms to expected receipts, bank credits to installments, and
//! the nightly diff that turns every difference into a finding.

pub mod diff;
pub mod matching;
pub mod reference;
pub mod terms;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::derived::Installment;
use crate::state::{Dirty, LiveState};
use matching::{MatchSettings, match_credits};
use terms::installments;

/// Brings a batch's changes into the reconciliation: the installments of the contracts it
/// touched (and of those whose delivery moved), then the allocation of the credits when
/// any input or a clerk's decision changed.
pub fn reconcile_batch(
    state: &mut LiveState,
    dirty: &mut Dirty,
    settings: &MatchSettings,
    tz: Tz,
    decisions_changed: bool,
) {
    let mut contracts = dirty.contracts.clone();
    // A completed delivery moves the due dates of delivery-anchored installments.
    contracts.extend(
        dirty
            .tickets
            .iter()
            .filter_map(|t| state.tickets.get(t))
            .map(|t| t.contract_no.clone()),
    );
    derive_installments(state, &contracts, tz, dirty);
    if dirty.touched_inputs() || decisions_changed {
        let matches = match_credits(state, settings, None);
        state.set_matches(matches, dirty);
    }
}

fn forget_installments(state: &mut LiveState, contract_no: &str, dirty: &mut Dirty) {
    let keys: Vec<_> = state
        .installments
        .range((contract_no.to_string(), 0)..=(contract_no.to_string(), u32::MAX))
        .map(|(k, _)| k.clone())
        .collect();
    for k in keys {
        state.installments.remove(&k);
    }
    state.terms_errors.remove(contract_no);
    dirty.installments.insert(contract_no.to_string());
}

/// Recomputes the installments of the given contracts from their terms and anchors.
pub fn derive_installments(
    state: &mut LiveState,
    contracts: &BTreeSet<String>,
    tz: Tz,
    dirty: &mut Dirty,
) {
    if contracts.is_empty() {
        return;
    }
    // Delivery anchors: the earliest completed delivery work order of each contract.
    let mut delivered: std::collections::HashMap<&str, DateTime<Utc>> =
        std::collections::HashMap::new();
    for t in state
        .tickets
        .values()
        .filter(|t| t.department == "delivery")
    {
        if let Some(done) = t.completed_at {
            delivered
                .entry(t.contract_no.as_str())
                .and_modify(|d| *d = (*d).min(done))
                .or_insert(done);
        }
    }
    let delivered: std::collections::HashMap<String, DateTime<Utc>> = delivered
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    for no in contracts {
        let before: Vec<Installment> = state
            .installments
            .range((no.clone(), 0)..=(no.clone(), u32::MAX))
            .map(|(_, v)| v.clone())
            .collect();
        let before_err = state.terms_errors.get(no).cloned();
        forget_installments(state, no, dirty);
        dirty.installments.remove(no);
        if let Some(c) = state.contracts.get(no) {
            match installments(c, delivered.get(no).copied(), tz) {
                Ok(list) => {
                    for i in list {
                        state.installments.insert((i.contract_no.clone(), i.seq), i);
                    }
                }
                Err(e) => {
                    state.terms_errors.insert(no.clone(), e);
                }
            }
        }
        let after: Vec<&Installment> = state
            .installments
            .range((no.clone(), 0)..=(no.clone(), u32::MAX))
            .map(|(_, v)| v)
            .collect();
        if before.iter().collect::<Vec<_>>() != after
            || before_err.as_ref() != state.terms_errors.get(no)
        {
            dirty.installments.insert(no.clone());
        }
    }
}
