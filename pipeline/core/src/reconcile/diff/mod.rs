//! The nightly diff: CRM receivables against bank receipts against signed contracts, at a
//! business date D. Every difference becomes a finding; `workitems` turns findings into the
//! queue. Definitions (D in the business time zone, tolerance from the configuration):
//!
//! - `missing_payment`: an installment of a signed contract due before D, nothing received
//!   (unless a suggested match would cover it: then the suggestion is the work item);
//! - `partial_payment`: due before D, received less than expected by more than the tolerance;
//! - `overpayment`: received more than expected by more than the tolerance (due or not);
//! - `duplicate_payment`: two or more separate credits each paid the installment in full;
//! - `unmatched_receipt`: a credit booked by D that no installment took;
//! - `suggested_match`: a credit booked by D with only a low-confidence match;
//! - `amount_mismatch`: the CRM amount differs from the latest CA-signed amount;
//! - `signature_not_certified`: the CRM says signed, no CA-certified completion exists by D;
//! - `terms_unparseable`: a signed contract whose terms give no installments.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use chrono_tz::Tz;
use reconlight_formats::model::{Direction, end_of_business_day};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

mod candidates;
mod contracts;
mod installments;
mod receipts;
#[cfg(test)]
mod tests;

use super::matching::{MatchSettings, Matches, match_credits};
use crate::state::{BankRow, LiveState};
use crate::workitems::Finding;

/// Headline numbers of one nightly diff.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DiffSummary {
    pub date: NaiveDate,
    pub installments_due: usize,
    pub expected_due: Decimal,
    pub received_on_due: Decimal,
    /// Sum of the absolute differences (shortfalls, excess, unmatched credits).
    pub difference: Decimal,
    /// `difference / expected_due`, in percent.
    pub difference_rate_percent: Decimal,
    pub credits: usize,
    pub credits_matched: usize,
    pub credit_amount: Decimal,
    pub credit_amount_matched: Decimal,
    pub findings_by_kind: BTreeMap<String, usize>,
    pub amount_by_kind: BTreeMap<String, Decimal>,
}

/// What one nightly run did: the diff's headline numbers and how the queue changed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NightlyOutcome {
    pub summary: DiffSummary,
    pub opened: usize,
    pub reopened: usize,
    pub updated: usize,
    pub auto_resolved: usize,
    pub open_items: usize,
}

/// A credit booked by D that was not returned: money received.
pub(super) fn counts_as_received(b: &BankRow, through: NaiveDate) -> bool {
    b.tx.direction == Direction::Credit
        && !b.tx.reversal
        && b.reversed_by.is_none()
        && b.tx.booking_date <= through
}

/// Runs the diff for business date `date`.
pub fn nightly_diff(
    state: &LiveState,
    settings: &MatchSettings,
    tz: Tz,
    date: NaiveDate,
) -> (Matches, Vec<Finding>, DiffSummary) {
    let matches = match_credits(state, settings, Some(date));
    let mut summary = DiffSummary {
        date,
        ..Default::default()
    };
    let mut findings = installments::findings(state, &matches, settings, date, &mut summary);
    findings.extend(receipts::findings(state, &matches, date, &mut summary));
    findings.extend(contracts::findings(state, end_of_business_day(date, tz)));
    findings.sort_by(|a, b| {
        (a.kind, &a.contract_no, a.installment, &a.bank_ref).cmp(&(
            b.kind,
            &b.contract_no,
            b.installment,
            &b.bank_ref,
        ))
    });
    for f in &findings {
        *summary
            .findings_by_kind
            .entry(f.kind.as_str().into())
            .or_default() += 1;
        *summary
            .amount_by_kind
            .entry(f.kind.as_str().into())
            .or_default() += f.amount_at_stake();
    }
    if !summary.expected_due.is_zero() {
        summary.difference_rate_percent =
            (summary.difference * Decimal::ONE_HUNDRED / summary.expected_due).round_dp(2);
    }
    (matches, findings, summary)
}
