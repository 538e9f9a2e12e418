//! Findings per credit booked by the business date: taken by no installment (an unmatched
//! receipt), or only by a low-confidence suggestion.

use chrono::NaiveDate;
use serde_json::json;

use super::{DiffSummary, counts_as_received};
use crate::reconcile::matching::Matches;
use crate::state::LiveState;
use crate::workitems::{Finding, WorkItemKind};

pub(super) fn findings(
    state: &LiveState,
    matches: &Matches,
    through: NaiveDate,
    summary: &mut DiffSummary,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    // Credits no installment took.
    for b in state.bank.values() {
        let tx = &b.tx;
        if !counts_as_received(b, through) {
            continue;
        }
        summary.credits += 1;
        summary.credit_amount += tx.amount.amount;
        let allocs = matches.get(&tx.bank_ref).map(Vec::as_slice).unwrap_or(&[]);
        if allocs.iter().any(|a| a.confirmed) {
            summary.credits_matched += 1;
            summary.credit_amount_matched += tx.amount.amount;
            continue;
        }
        summary.difference += tx.amount.amount;
        // A possible second payment is its installment's duplicate_payment item.
        if !allocs.is_empty() && allocs.iter().all(|a| a.duplicate) {
            continue;
        }
        let base = json!({
            "booking_date": tx.booking_date,
            "account": tx.account,
            "payer": tx.counterparty_name,
            "payer_account": tx.counterparty_account,
            "remittance": tx.remittance,
            "end_to_end_id": tx.end_to_end_id,
            "format": tx.format,
        });
        if let Some(s) = allocs.first() {
            findings.push(Finding {
                kind: WorkItemKind::SuggestedMatch,
                contract_no: Some(s.contract_no.clone()),
                installment: Some(s.seq),
                bank_ref: Some(tx.bank_ref.clone()),
                customer_id: state
                    .contracts
                    .get(&s.contract_no)
                    .map(|c| c.customer_id.clone()),
                currency: Some(tx.amount.currency.to_string()),
                expected: state
                    .installments
                    .get(&(s.contract_no.clone(), s.seq))
                    .map(|i| i.amount.amount),
                received: Some(tx.amount.amount),
                summary: format!(
                    "credit {} of {} {} may pay {} installment {} ({}% sure): {}",
                    tx.bank_ref,
                    tx.amount.currency,
                    tx.amount.amount,
                    s.contract_no,
                    s.seq,
                    s.confidence,
                    s.explanation
                ),
                details: json!({"credit": base, "suggestions": allocs}),
            });
        } else {
            findings.push(Finding {
                kind: WorkItemKind::UnmatchedReceipt,
                contract_no: None,
                installment: None,
                bank_ref: Some(tx.bank_ref.clone()),
                customer_id: None,
                currency: Some(tx.amount.currency.to_string()),
                expected: None,
                received: Some(tx.amount.amount),
                summary: format!(
                    "credit {} of {} {} from {} on {} matches no installment (remittance: \"{}\")",
                    tx.bank_ref,
                    tx.amount.currency,
                    tx.amount.amount,
                    tx.counterparty_name
                        .as_deref()
                        .unwrap_or("an unnamed payer"),
                    tx.booking_date,
                    tx.remittance
                ),
                details: json!({"credit": base}),
            });
        }
    }

    findings
}
