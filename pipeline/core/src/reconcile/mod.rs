//! Reconciliation: payment terms to expected receipts, bank credits to installments, and
//! the nightly diff that turns every difference into a finding.

pub mod diff;
pub mod matching;
pub mod reference;
pub mod terms;

use chrono_tz::Tz;

use crate::state::{Dirty, LiveState};
use matching::{MatchSettings, match_credits};

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
    state.derive_installments(&contracts, tz, dirty);
    if dirty.touched_inputs() || decisions_changed {
        let matches = match_credits(state, settings, None);
        state.set_matches(matches, dirty);
    }
}
