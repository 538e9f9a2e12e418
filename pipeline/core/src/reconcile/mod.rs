//! Reconciliation: payment terms to expected receipts, bank credits to installments, and
//! the nightly diff that turns every difference into a finding.

pub mod diff;
pub mod matching;
pub mod reference;
pub mod terms;

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::derived::Installment;
use crate::state::{Dirty, LiveState};
use matching::incremental::{IncrementalMatcher, MatchChanges};
use matching::{MatchSettings, match_credits};
use terms::installments;

/// What reconciliation keeps between batches so that a batch costs what it changed: the
/// matcher's memory and each contract's work orders (delivery anchors due dates).
#[derive(Default)]
pub struct Reconciler {
    matcher: IncrementalMatcher,
    tickets_of: HashMap<String, BTreeSet<String>>,
    ticket_contract: HashMap<String, String>,
}

impl Reconciler {
    /// Indexes a loaded state (whose installments and matches are already up to date).
    pub fn new(state: &LiveState, settings: &MatchSettings) -> Self {
        let mut r = Reconciler {
            matcher: IncrementalMatcher::new(state, settings),
            ..Default::default()
        };
        for t in state.tickets.values() {
            r.index_ticket(&t.ticket_id, Some(&t.contract_no));
        }
        r
    }

    fn index_ticket(&mut self, ticket_id: &str, contract_no: Option<&str>) -> Option<String> {
        let old = self.ticket_contract.remove(ticket_id);
        if let Some(old) = &old
            && let Some(set) = self.tickets_of.get_mut(old)
        {
            set.remove(ticket_id);
            if set.is_empty() {
                self.tickets_of.remove(old);
            }
        }
        if let Some(no) = contract_no {
            self.ticket_contract
                .insert(ticket_id.to_string(), no.to_string());
            self.tickets_of
                .entry(no.to_string())
                .or_default()
                .insert(ticket_id.to_string());
        }
        old
    }

    /// Brings a batch's changes into the reconciliation: the installments of the contracts
    /// it touched (and of those whose delivery moved), then the allocation of the units
    /// those changes, and the credits whose clerk decision changed, belong to.
    pub fn reconcile_batch(
        &mut self,
        state: &mut LiveState,
        dirty: &mut Dirty,
        settings: &MatchSettings,
        tz: Tz,
        decisions: &BTreeSet<String>,
    ) {
        let mut contracts = dirty.contracts.clone();
        // A completed delivery moves the due dates of delivery-anchored installments.
        for id in &dirty.tickets {
            let now = state.tickets.get(id).map(|t| t.contract_no.as_str());
            contracts.extend(self.index_ticket(id, now));
            contracts.extend(now.map(str::to_string));
        }
        derive_installments(state, &contracts, tz, dirty, |state, no| {
            delivered_at(state, self.tickets_of.get(no).into_iter().flatten())
        });
        let (credits, customers, installments) = (
            dirty.bank.clone(),
            dirty.customers.clone(),
            dirty.installments.clone(),
        );
        let changes = MatchChanges {
            credits: &credits,
            contracts: &contracts,
            customers: &customers,
            installments: &installments,
            decisions,
        };
        self.matcher.update(state, &changes, settings, dirty);
    }
}

/// When a contract was delivered: the earliest completion of its delivery work orders.
fn delivered_at<'a>(
    state: &LiveState,
    tickets: impl Iterator<Item = &'a String>,
) -> Option<DateTime<Utc>> {
    tickets
        .filter_map(|id| state.tickets.get(id))
        .filter(|t| t.department == "delivery")
        .filter_map(|t| t.completed_at)
        .min()
}

/// The same as a `Reconciler`'s batch, recomputed over everything: the reference the
/// incremental path is checked against.
pub fn reconcile_in_full(
    state: &mut LiveState,
    dirty: &mut Dirty,
    settings: &MatchSettings,
    tz: Tz,
) {
    let contracts: BTreeSet<String> = state.contracts.keys().cloned().collect();
    let mut tickets: HashMap<String, Vec<String>> = HashMap::new();
    for t in state.tickets.values() {
        tickets
            .entry(t.contract_no.clone())
            .or_default()
            .push(t.ticket_id.clone());
    }
    derive_installments(state, &contracts, tz, dirty, |state, no| {
        delivered_at(state, tickets.get(no).into_iter().flatten())
    });
    let matches = match_credits(state, settings, None);
    state.set_matches(matches, dirty);
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

/// Recomputes the installments of the given contracts from their terms and anchors
/// (`delivered` tells when a contract was delivered).
pub fn derive_installments(
    state: &mut LiveState,
    contracts: &BTreeSet<String>,
    tz: Tz,
    dirty: &mut Dirty,
    delivered: impl Fn(&LiveState, &str) -> Option<DateTime<Utc>>,
) {
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
            match installments(c, delivered(state, no), tz) {
                Ok(list) => {
                    for i in list {
                        state.installments.insert((i.contract_no.clone(), i.seq), i);
                    }
                }
                Err(e) => {
                    state.terms_errors.insert(no.clone(), e.to_string());
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
