//! Findings per installment of a signed contract: missing, partial, over- and duplicate
//! payments, each with the credits it received and the candidates for what is missing.

use std::collections::HashMap;

use chrono::NaiveDate;
use reconlight_formats::model::ContractStatus;
use rust_decimal::Decimal;
use serde_json::json;

use super::DiffSummary;
use super::candidates::OpenCredits;
use crate::reconcile::matching::{Allocation, MatchSettings, Matches};
use crate::state::LiveState;
use crate::workitems::{Finding, WorkItemKind};

pub(super) fn findings(
    state: &LiveState,
    matches: &Matches,
    settings: &MatchSettings,
    date: NaiveDate,
    summary: &mut DiffSummary,
) -> Vec<Finding> {
    let tol = settings.tolerance;
    let through = date;
    let mut findings = Vec::new();
    let mut by_installment: HashMap<(&str, u32), Vec<&Allocation>> = HashMap::new();
    // Second payments the evidence cannot confirm (they could also be paying early).
    let mut possible_duplicates: HashMap<(&str, u32), Vec<&Allocation>> = HashMap::new();
    let mut suggested: HashMap<(&str, u32), Decimal> = HashMap::new();
    for a in matches.values().flatten() {
        if a.confirmed {
            by_installment
                .entry((a.contract_no.as_str(), a.seq))
                .or_default()
                .push(a);
        } else if a.duplicate {
            possible_duplicates
                .entry((a.contract_no.as_str(), a.seq))
                .or_default()
                .push(a);
        } else {
            *suggested
                .entry((a.contract_no.as_str(), a.seq))
                .or_default() += a.amount;
        }
    }
    let credit_line = |a: &Allocation| {
        let b = &state.bank[&a.bank_ref].tx;
        json!({
            "bank_ref": a.bank_ref,
            "booking_date": b.booking_date,
            "credit_amount": b.amount.amount,
            "allocated": a.amount,
            "payer": b.counterparty_name,
            "payer_account": b.counterparty_account,
            "remittance": b.remittance,
            "rule": a.rule.as_str(),
            "confidence": a.confidence,
            "explanation": a.explanation,
        })
    };

    let open_credits = OpenCredits::new(state, matches, through);
    for ((no, seq), inst) in &state.installments {
        let Some(contract) = state
            .contracts
            .get(no)
            .filter(|c| c.status == ContractStatus::Signed)
        else {
            continue;
        };
        let allocs = by_installment
            .get(&(no.as_str(), *seq))
            .cloned()
            .unwrap_or_default();
        let expected = inst.amount.amount;
        let received: Decimal = allocs.iter().map(|a| a.amount).sum();
        let due = inst.due_date.is_some_and(|d| d < date);
        if due {
            summary.installments_due += 1;
            summary.expected_due += expected;
            summary.received_on_due += received;
            summary.difference += (expected - received).abs();
        } else if received > expected {
            summary.difference += received - expected;
        }
        let possible = possible_duplicates
            .get(&(no.as_str(), *seq))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let full: Vec<&&Allocation> = allocs
            .iter()
            .chain(possible)
            .filter(|a| (a.amount - expected).abs() <= tol)
            .collect();
        let kind = if received.is_zero() {
            due.then_some(WorkItemKind::MissingPayment)
        } else if full.len() >= 2 {
            Some(WorkItemKind::DuplicatePayment)
        } else if received - expected > tol {
            Some(WorkItemKind::Overpayment)
        } else if expected - received > tol && due {
            Some(WorkItemKind::PartialPayment)
        } else {
            None
        };
        let Some(kind) = kind else { continue };
        // A shortfall a suggested match would cover is that suggestion's work item, not a second one.
        let pending = suggested
            .get(&(no.as_str(), *seq))
            .copied()
            .unwrap_or_default();
        if matches!(
            kind,
            WorkItemKind::MissingPayment | WorkItemKind::PartialPayment
        ) && received + pending >= expected - tol
        {
            continue;
        }
        let ccy = inst.amount.currency;
        let due_text = inst
            .due_date
            .map(|d| d.to_string())
            .unwrap_or_else(|| "not yet fixed".into());
        let (bank_ref, summary_line) = match kind {
            WorkItemKind::MissingPayment => (
                None,
                format!(
                    "{no} installment {seq}: {ccy} {expected} was due {due_text}; nothing received"
                ),
            ),
            WorkItemKind::DuplicatePayment => {
                let second = full
                    .iter()
                    .map(|a| (&state.bank[&a.bank_ref].tx.booking_date, &a.bank_ref))
                    .min_by(|x, y| x.cmp(y))
                    .and_then(|first| {
                        full.iter()
                            .map(|a| &a.bank_ref)
                            .filter(|r| *r != first.1)
                            .min_by_key(|r| (&state.bank[*r].tx.booking_date, *r))
                    })
                    .cloned();
                let doubt = full
                    .iter()
                    .find(|a| !a.confirmed && Some(&a.bank_ref) == second.as_ref())
                    .map(|a| format!(" ({}% sure: {})", a.confidence, a.explanation))
                    .unwrap_or_default();
                let s = format!(
                    "{no} installment {seq}: {ccy} {expected} was paid in full {} times; {} looks like a duplicate{doubt}",
                    full.len(),
                    second.as_deref().unwrap_or("")
                );
                (second, s)
            }
            WorkItemKind::Overpayment => (
                None,
                format!(
                    "{no} installment {seq}: expected {ccy} {expected}, received {received} ({} too much)",
                    received - expected
                ),
            ),
            _ => (
                None,
                format!(
                    "{no} installment {seq}: expected {ccy} {expected} by {due_text}, received {received} ({} short)",
                    expected - received
                ),
            ),
        };
        let candidates = match kind {
            WorkItemKind::MissingPayment | WorkItemKind::PartialPayment => open_credits.candidates(
                &contract.customer_id,
                &ccy.to_string(),
                expected - received,
                tol,
                inst.due_date,
            ),
            _ => Vec::new(),
        };
        findings.push(Finding {
            kind,
            contract_no: Some(no.clone()),
            installment: Some(*seq),
            bank_ref,
            customer_id: Some(contract.customer_id.clone()),
            currency: Some(ccy.to_string()),
            expected: Some(expected),
            received: Some(received),
            summary: summary_line,
            details: json!({
                "due_date": inst.due_date,
                "anchor": inst.anchor.as_str(),
                "due_days": inst.due_days,
                "contract_amount": contract.amount.amount,
                "owner_id": contract.owner_id,
                "credits": allocs.iter().chain(possible).map(|a| credit_line(a)).collect::<Vec<_>>(),
                "candidates": candidates,
                "audit": format!("/api/v1/contracts/{no}/audit"),
            }),
        });
    }

    findings
}
