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

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use chrono_tz::Tz;
use reconlight_formats::model::{ContractStatus, Direction, end_of_business_day};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::json;

use super::matching::{Allocation, MatchSettings, Matches, PayerIndex, match_credits};
use crate::state::{BankRow, LiveState};
use crate::workitems::{Finding, WorkItemKind};

/// Headline numbers of one nightly diff.
#[derive(Clone, Debug, Default, Serialize)]
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
#[derive(Clone, Debug, Serialize)]
pub struct NightlyOutcome {
    pub summary: DiffSummary,
    pub opened: usize,
    pub reopened: usize,
    pub updated: usize,
    pub auto_resolved: usize,
    pub open_items: usize,
}

/// A credit booked by D that was not returned: money received.
fn counts_as_received(b: &BankRow, through: NaiveDate) -> bool {
    b.tx.direction == Direction::Credit
        && !b.tx.reversal
        && b.reversed_by.is_none()
        && b.tx.booking_date <= through
}

/// Candidate lines listed on a receivable with nothing or too little received.
const MAX_CANDIDATES: usize = 5;

/// Credits booked by D that no installment took, by the customer their payer is (account or
/// exact name) and by amount: the bank lines a clerk looks at first for a missing or short
/// payment.
struct OpenCredits<'a> {
    by_customer: HashMap<&'a str, Vec<&'a BankRow>>,
    by_amount: BTreeMap<Decimal, Vec<&'a BankRow>>,
    payer: HashMap<&'a str, &'a str>,
}

impl<'a> OpenCredits<'a> {
    fn new(state: &'a LiveState, matches: &Matches, through: NaiveDate) -> Self {
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
            if let Some(customer) = payers.identify_exactly(
                tx.counterparty_account.as_deref(),
                tx.counterparty_name.as_deref(),
            ) {
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
    fn candidates(
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

/// Runs the diff for business date `date`.
pub fn nightly_diff(
    state: &LiveState,
    settings: &MatchSettings,
    tz: Tz,
    date: NaiveDate,
) -> (Matches, Vec<Finding>, DiffSummary) {
    let tol = settings.tolerance;
    let through = date;
    let cutoff = end_of_business_day(date, tz);
    let matches = match_credits(state, settings, Some(through));
    let mut findings = Vec::new();
    let mut summary = DiffSummary {
        date,
        ..Default::default()
    };

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

    let open_credits = OpenCredits::new(state, &matches, through);
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

    // Contract-level checks against the e-signature platform.
    let mut signatures: BTreeMap<&str, Vec<&reconlight_formats::model::SignatureEvent>> =
        BTreeMap::new();
    for s in state
        .signatures
        .values()
        .filter(|s| s.occurred_at <= cutoff)
    {
        if let Some(no) = s.contract_no.as_deref() {
            signatures.entry(no).or_default().push(s);
        }
    }
    for (no, c) in &state.contracts {
        if c.status == ContractStatus::Cancelled {
            continue;
        }
        let events = signatures
            .get(no.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let ca = events
            .iter()
            .filter(|s| s.ca_certified)
            .max_by_key(|s| (s.occurred_at, s.event_id.clone()));
        match ca {
            Some(sig) => {
                if let Some(signed) = sig.amount.filter(|a| *a != c.amount) {
                    findings.push(Finding {
                        kind: WorkItemKind::AmountMismatch,
                        contract_no: Some(no.clone()),
                        installment: None,
                        bank_ref: None,
                        customer_id: Some(c.customer_id.clone()),
                        currency: Some(c.amount.currency.to_string()),
                        expected: Some(signed.amount),
                        received: Some(c.amount.amount),
                        summary: format!(
                            "{no}: the CRM says {}, the CA-signed contract (envelope {}) says {}",
                            c.amount, sig.envelope_id, signed
                        ),
                        details: json!({
                            "crm_amount": c.amount,
                            "signed_amount": signed,
                            "envelope_id": sig.envelope_id,
                            "signed_at": sig.occurred_at,
                            "crm_updated_by": c.updated_by,
                            "crm_updated_ip": c.updated_ip,
                            "crm_updated_at": c.updated_at,
                            "audit": format!("/api/v1/contracts/{no}/audit"),
                        }),
                    });
                }
            }
            None if c.status == ContractStatus::Signed => {
                let events: Vec<_> = events
                    .iter()
                    .map(|s| json!({"envelope_id": s.envelope_id, "event": s.event, "signature_type": s.signature_type, "at": s.occurred_at}))
                    .collect();
                findings.push(Finding {
                    kind: WorkItemKind::SignatureNotCertified,
                    contract_no: Some(no.clone()),
                    installment: None,
                    bank_ref: None,
                    customer_id: Some(c.customer_id.clone()),
                    currency: Some(c.amount.currency.to_string()),
                    expected: None,
                    received: None,
                    summary: format!(
                        "{no}: the CRM says signed ({}) but no CA-certified signature was completed",
                        c.signature_method.as_deref().unwrap_or("method not given")
                    ),
                    details: json!({"signature_method": c.signature_method, "signed_at": c.signed_at, "signature_events": events}),
                });
            }
            None => {}
        }
        if c.status == ContractStatus::Signed
            && let Some(why) = state.terms_errors.get(no)
        {
            findings.push(Finding {
                kind: WorkItemKind::TermsUnparseable,
                contract_no: Some(no.clone()),
                installment: None,
                bank_ref: None,
                customer_id: Some(c.customer_id.clone()),
                currency: Some(c.amount.currency.to_string()),
                expected: Some(c.amount.amount),
                received: None,
                summary: format!("{no}: payment terms give no installments: {why}"),
                details: json!({"payment_terms": c.payment_terms, "reason": why}),
            });
        }
    }

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

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use chrono::NaiveDate;
    use reconlight_formats::model::{
        BankTransaction, Contract, ContractStatus, Currency, Customer, Direction, Money,
    };
    use rust_decimal::Decimal;

    use super::nightly_diff;
    use crate::reconcile::matching::MatchSettings;
    use crate::reconcile::reference::ContractRefFinder;
    use crate::reconcile::terms::{Anchor, Installment};
    use crate::state::{BankRow, LiveState};
    use crate::workitems::WorkItemKind;

    fn money(text: &str) -> Money {
        Money::new(Decimal::from_str(text).unwrap(), Currency::CNY)
    }

    fn credit(s: &mut LiveState, bank_ref: &str, amount: &str, account: &str, day: u32) {
        s.bank.insert(
            bank_ref.into(),
            BankRow {
                tx: BankTransaction {
                    bank_ref: bank_ref.into(),
                    account: "128905678810201".into(),
                    direction: Direction::Credit,
                    amount: money(amount),
                    reversal: false,
                    booking_date: NaiveDate::from_ymd_opt(2026, 10, day).unwrap(),
                    value_date: None,
                    counterparty_name: None,
                    counterparty_account: Some(account.into()),
                    remittance: "货款".into(),
                    end_to_end_id: None,
                    format: "test".into(),
                },
                reversed_by: None,
                reverses: None,
                source: String::new(),
                position: String::new(),
            },
        );
    }

    #[test]
    fn a_missing_payment_lists_the_open_credits_that_could_be_it() {
        let mut s = LiveState::default();
        s.customers.insert(
            "C1".into(),
            Customer {
                customer_id: "C1".into(),
                name: "杭州云帆科技有限公司".into(),
                bank_account_no: Some("6222 0000 1111".into()),
                region: None,
            },
        );
        let no = "HT-2026-000001".to_string();
        s.contracts.insert(
            no.clone(),
            Contract {
                contract_no: no.clone(),
                customer_id: "C1".into(),
                owner_id: None,
                region: None,
                amount: money("100000.00"),
                status: ContractStatus::Signed,
                signed_at: None,
                signature_method: Some("e_sign".into()),
                accepted_at: None,
                payment_terms: String::new(),
                updated_at: None,
                updated_by: None,
                updated_ip: None,
            },
        );
        s.installments.insert(
            (no.clone(), 1),
            Installment {
                contract_no: no.clone(),
                seq: 1,
                customer_id: "C1".into(),
                amount: money("100000.00"),
                anchor: Anchor::Signed,
                due_days: 7,
                due_date: NaiveDate::from_ymd_opt(2026, 10, 1),
            },
        );
        // The customer paid something else; a stranger paid the exact amount; another
        // stranger's credit is neither.
        credit(&mut s, "B-CUSTOMER", "40000.00", "622200001111", 5);
        credit(&mut s, "B-AMOUNT", "99999.50", "6217000099998888", 20);
        credit(&mut s, "B-OTHER", "5000.00", "6217000077776666", 3);
        let finder = ContractRefFinder::new(
            r"(?i)HT[\s\-_/]*([0-9]{4})[\s\-_/]*([0-9]{6})",
            "HT-${1}-${2}",
        )
        .unwrap();
        let settings = MatchSettings {
            tolerance: Decimal::from_str("1.00").unwrap(),
            auto_confirm: 90,
            finder: &finder,
        };
        let date = NaiveDate::from_ymd_opt(2026, 10, 31).unwrap();
        let (_, findings, _) = nightly_diff(&s, &settings, chrono_tz::Asia::Shanghai, date);
        let missing = findings
            .iter()
            .find(|f| f.kind == WorkItemKind::MissingPayment)
            .expect("a missing payment");
        let candidates = missing.details["candidates"].as_array().unwrap();
        let refs: Vec<&str> = candidates
            .iter()
            .map(|c| c["bank_ref"].as_str().unwrap())
            .collect();
        assert_eq!(refs, ["B-CUSTOMER", "B-AMOUNT"]);
        assert_eq!(
            candidates[0]["why"],
            "paid by this customer, matched to nothing"
        );
        assert_eq!(candidates[0]["payer_customer"], "C1");
        assert_eq!(candidates[0]["amount"], "40000.00");
        assert_eq!(
            candidates[1]["why"],
            "the amount missing, from a payer not known as this customer"
        );
        // The credits nobody took are still unmatched receipts of their own.
        let unmatched = findings
            .iter()
            .filter(|f| f.kind == WorkItemKind::UnmatchedReceipt)
            .count();
        assert_eq!(unmatched, 3);
    }
}
