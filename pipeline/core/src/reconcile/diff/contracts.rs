//! Findings per contract against the e-signature platform: a CRM amount that differs from
//! the latest CA-signed amount, a CRM "signed" with no CA-certified signature, and terms
//! that give no installments.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use reconlight_formats::model::ContractStatus;
use serde_json::json;

use crate::state::LiveState;
use crate::workitems::{Finding, WorkItemKind};

pub(super) fn findings(state: &LiveState, cutoff: DateTime<Utc>) -> Vec<Finding> {
    let mut findings = Vec::new();
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

    findings
}
