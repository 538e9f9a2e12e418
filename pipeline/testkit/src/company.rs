//! The company's CRM: customers, contracts through draft, pending signature, signed (or
//! cancelled), amount edits, acceptance and owner hand-overs; DocuSign envelopes; handoff
//! work orders. Decides which contracts carry an injected problem.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use reconlight_formats::model::{Contract, ContractStatus, Customer, HandoffTicket};
use rust_decimal::Decimal;

use super::names::*;
use super::writers::*;
use super::*;

/// Customers, contracts and everything the CRM and the e-signature platform emit.
pub(super) fn company(g: &mut Gen, contracts: usize) -> World {
    let period_days = (g.end - g.start).num_days();
    // Customers: a snapshot of the CRM taken the day before the period.
    let n_customers = (contracts / 3).max(5);
    let mut customers: Vec<Customer> = Vec::with_capacity(n_customers);
    // Two customers never share city, core name and kind: the legal form alone (有限公司 or
    // not) would not tell them apart.
    let mut used_names = BTreeSet::new();
    let mut used_accounts = BTreeSet::new();
    let mut name_parts = BTreeMap::new();
    for i in 0..n_customers {
        let mut name;
        let mut tries = 0;
        loop {
            let (kind, suffix) = *g.rng.pick(KINDS);
            let (city, core) = (*g.rng.pick(CITIES), *g.rng.pick(CORES));
            name = format!("{city}{core}{kind}{suffix}");
            let mut key = format!("{city}{core}{kind}");
            tries += 1;
            if tries > 20 {
                name = format!("{city}{core}第{}{kind}{suffix}", i + 1);
                key = name.clone();
            }
            if used_names.insert(key) {
                name_parts.insert(format!("C{:05}", i + 1), (city, core));
                break;
            }
        }
        let account = loop {
            let a = format!("6222{:015}", g.rng.next_u64() % 1_000_000_000_000_000);
            if used_accounts.insert(a.clone()) {
                break a;
            }
        };
        customers.push(Customer {
            customer_id: format!("C{:05}", i + 1),
            name,
            bank_account_no: Some(account),
            region: Some(g.rng.pick(REGIONS).to_string()),
        });
    }
    let snapshot_at = g.local(g.start - Duration::days(1), 20 * 60);
    let mut cdc: Vec<CdcEvent> = Vec::new();
    for c in &customers {
        cdc.push((
            snapshot_at,
            CdcTable::Customers,
            "r".into(),
            None,
            Some(customer_row(c)),
        ));
    }

    let mut terms_intent: BTreeMap<String, Option<usize>> = BTreeMap::new();
    let mut docusign: Vec<(DateTime<Utc>, String)> = Vec::new();
    let mut tickets: Vec<(DateTime<Utc>, HandoffTicket, bool)> = Vec::new();
    let mut final_contracts: Vec<(Contract, Problem)> = Vec::new();
    let reps: Vec<String> = (1..=((contracts / 25).clamp(4, 60)))
        .map(|i| format!("S{i:03}"))
        .collect();

    for i in 0..contracts {
        let no = format!("HT-2026-{:06}", i + 1);
        let cust = customers[g.rng.range(0, n_customers as i64 - 1) as usize].clone();
        let created_day = g.start + Duration::days(g.rng.range(0, period_days - 12));
        let created_at = g.work_time(created_day);
        let mut amount = Decimal::from(g.rng.range(200, 20_000) * 100);
        if g.rng.chance(0.2) {
            amount += Decimal::new(g.rng.range(1, 99), 2);
        }
        let owner = g.rng.pick(&reps).clone();
        let mut c = Contract {
            contract_no: no.clone(),
            customer_id: cust.customer_id.clone(),
            owner_id: Some(owner.clone()),
            region: cust.region.clone(),
            amount: money(amount),
            status: ContractStatus::Draft,
            signed_at: None,
            signature_method: None,
            accepted_at: None,
            payment_terms: {
                let k = g.rng.range(0, TERMS.len() as i64 - 1) as usize;
                if g.rng.chance(0.012) {
                    terms_intent.insert(no.clone(), None);
                    g.rng.pick(UNPARSEABLE_TERMS).to_string()
                } else {
                    terms_intent.insert(no.clone(), Some(k));
                    terms_text(g, k)
                }
            },
            updated_at: Some(created_at),
            updated_by: Some(owner.clone()),
            updated_ip: Some(g.ip()),
        };
        cdc.push((
            created_at,
            CdcTable::Contracts,
            "c".into(),
            None,
            Some(contract_row(&c)),
        ));
        let fate = g.rng.range(0, 99);
        if fate < 4 {
            // Stays a draft; a few drafts are deleted again.
            if g.rng.chance(0.3) {
                let at = created_at + Duration::hours(g.rng.range(2, 72));
                cdc.push((
                    at,
                    CdcTable::Contracts,
                    "d".into(),
                    Some(serde_json::json!({"contract_no": no})),
                    None,
                ));
                continue;
            }
            final_contracts.push((c, Problem::None));
            continue;
        }
        let pending_at = created_at + Duration::hours(g.rng.range(20, 72));
        let before = contract_row(&c);
        c.status = ContractStatus::PendingSignature;
        c.updated_at = Some(pending_at);
        c.updated_ip = Some(g.ip());
        cdc.push((
            pending_at,
            CdcTable::Contracts,
            "u".into(),
            Some(before),
            Some(contract_row(&c)),
        ));
        let envelope_id = format!(
            "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
            g.rng.next_u64() as u32,
            g.rng.next_u64() as u16,
            g.rng.next_u64() % 4096,
            g.rng.next_u64() % 4096,
            g.rng.next_u64() % (1 << 48)
        );
        let signer = g.rng.pick(SIGNERS).to_string();
        let signed_at = pending_at + Duration::hours(g.rng.range(18, 120));
        let problem_roll = g.rng.range(0, 999);
        let mut problem = match problem_roll {
            0..=29 => Problem::NotCertified,
            30..=49 => Problem::AmountMismatch,
            _ => Problem::None,
        };
        let not_signed = fate < 8 || g.date_of(signed_at) >= g.end;
        let cancelled = (8..11).contains(&fate);
        let wet_or_email = problem == Problem::NotCertified && g.rng.chance(0.5);
        if !wet_or_email {
            let env = Envelope {
                envelope_id: &envelope_id,
                contract_no: &no,
                amount: c.amount.amount,
                signature_type: "ca_digital",
                signer: &signer,
                sent_at: pending_at + Duration::minutes(5),
            };
            docusign.push((
                env.sent_at,
                docusign_line(&env, "envelope-sent", env.sent_at),
            ));
        }
        if not_signed || cancelled {
            if cancelled {
                let at = pending_at + Duration::hours(g.rng.range(24, 96));
                let before = contract_row(&c);
                c.status = ContractStatus::Cancelled;
                c.updated_at = Some(at);
                cdc.push((
                    at,
                    CdcTable::Contracts,
                    "u".into(),
                    Some(before),
                    Some(contract_row(&c)),
                ));
                if !wet_or_email {
                    let env = Envelope {
                        envelope_id: &envelope_id,
                        contract_no: &no,
                        amount: c.amount.amount,
                        signature_type: "ca_digital",
                        signer: &signer,
                        sent_at: pending_at + Duration::minutes(5),
                    };
                    docusign.push((at, docusign_line(&env, "envelope-voided", at)));
                }
            }
            final_contracts.push((c, Problem::None));
            continue;
        }
        // Signed: on the platform first, then sales marks the CRM.
        let platform_at = signed_at - Duration::minutes(g.rng.range(10, 180));
        if problem == Problem::NotCertified {
            if wet_or_email {
                c.signature_method = Some(
                    if g.rng.chance(0.5) {
                        "wet_ink"
                    } else {
                        "email"
                    }
                    .into(),
                );
            } else {
                c.signature_method = Some("e_sign".into());
                let env = Envelope {
                    envelope_id: &envelope_id,
                    contract_no: &no,
                    amount: c.amount.amount,
                    signature_type: if g.rng.chance(0.5) {
                        "electronic"
                    } else {
                        "wet_ink_scan"
                    },
                    signer: &signer,
                    sent_at: pending_at + Duration::minutes(5),
                };
                docusign.push((
                    platform_at,
                    docusign_line(&env, "recipient-completed", platform_at),
                ));
                docusign.push((
                    platform_at + Duration::seconds(3),
                    docusign_line(&env, "envelope-completed", platform_at),
                ));
            }
        } else {
            c.signature_method = Some("e_sign".into());
            let env = Envelope {
                envelope_id: &envelope_id,
                contract_no: &no,
                amount: c.amount.amount,
                signature_type: "ca_digital",
                signer: &signer,
                sent_at: pending_at + Duration::minutes(5),
            };
            docusign.push((
                platform_at,
                docusign_line(&env, "recipient-completed", platform_at),
            ));
            docusign.push((
                platform_at + Duration::seconds(3),
                docusign_line(&env, "envelope-completed", platform_at),
            ));
        }
        let before = contract_row(&c);
        c.status = ContractStatus::Signed;
        c.signed_at = Some(signed_at);
        c.updated_at = Some(signed_at);
        c.updated_ip = Some(g.ip());
        cdc.push((
            signed_at,
            CdcTable::Contracts,
            "u".into(),
            Some(before),
            Some(contract_row(&c)),
        ));
        if problem == Problem::AmountMismatch {
            // Sales edits the amount after signing; the signed contract does not change.
            let at = signed_at + Duration::minutes(g.rng.range(30, 300));
            let factor = Decimal::new(g.rng.range(105, 125), 2);
            let before = contract_row(&c);
            c.amount = money((c.amount.amount * factor).round_dp(0));
            c.updated_at = Some(at);
            c.updated_by = Some(g.rng.pick(&reps).clone());
            c.updated_ip = Some(g.ip());
            cdc.push((
                at,
                CdcTable::Contracts,
                "u".into(),
                Some(before),
                Some(contract_row(&c)),
            ));
        }
        // Now and then sales renegotiates the terms right after signing (before anything
        // falls due); the installments follow the latest terms.
        if problem == Problem::None && terms_intent[&no].is_some() && g.rng.chance(0.02) {
            let at = signed_at + Duration::hours(g.rng.range(2, 48));
            let k = g.rng.range(0, TERMS.len() as i64 - 1) as usize;
            let before = contract_row(&c);
            c.payment_terms = terms_text(g, k);
            c.updated_at = Some(at);
            c.updated_ip = Some(g.ip());
            terms_intent.insert(no.clone(), Some(k));
            cdc.push((
                at,
                CdcTable::Contracts,
                "u".into(),
                Some(before),
                Some(contract_row(&c)),
            ));
        }
        // Customer acceptance, for terms anchored on it.
        let accept_at =
            signed_at + Duration::days(g.rng.range(8, 40)) + Duration::minutes(g.rng.range(0, 300));
        if terms_intent[&no].is_some_and(|k| TERMS[k].contains("accepted"))
            && g.rng.chance(0.85)
            && g.date_of(accept_at) < g.end
        {
            let before = contract_row(&c);
            c.accepted_at = Some(accept_at);
            c.updated_at = Some(accept_at);
            c.updated_by = Some(c.owner_id.clone().unwrap_or_default());
            c.updated_ip = Some(g.ip());
            cdc.push((
                accept_at,
                CdcTable::Contracts,
                "u".into(),
                Some(before),
                Some(contract_row(&c)),
            ));
        }
        // Benign edits: owner hand-overs.
        for _ in 0..g.rng.range(0, 2) {
            let at = signed_at + Duration::hours(g.rng.range(6, 24 * 40));
            if g.date_of(at) >= g.end || c.updated_at.is_some_and(|u| at <= u) {
                continue;
            }
            let before = contract_row(&c);
            c.owner_id = Some(g.rng.pick(&reps).clone());
            c.updated_at = Some(at);
            c.updated_by = Some("crm.admin".into());
            c.updated_ip = Some(g.ip());
            cdc.push((
                at,
                CdcTable::Contracts,
                "u".into(),
                Some(before),
                Some(contract_row(&c)),
            ));
        }
        // Handoff work orders to delivery, finance and after-sales.
        for (k, dept) in ["delivery", "finance", "after_sales"].iter().enumerate() {
            let created = signed_at + Duration::minutes(g.rng.range(1, 90));
            let ack = created + Duration::minutes(g.rng.range(30, 34 * 60));
            let ticket = HandoffTicket {
                ticket_id: format!("TK-{}-{}", &no[3..], k + 1),
                contract_no: no.clone(),
                department: dept.to_string(),
                created_at: created,
                acknowledged_at: None,
                completed_at: None,
            };
            tickets.push((created, ticket.clone(), false));
            // A few work orders are never acknowledged at all.
            if g.date_of(ack) < g.end && g.rng.chance(0.97) {
                let mut acked = ticket;
                acked.acknowledged_at = Some(ack);
                tickets.push((ack, acked, true));
            }
        }
        if problem == Problem::None {
            problem = match g.rng.range(0, 999) {
                0..=39 => Problem::Missing,
                40..=59 => Problem::Partial,
                60..=74 => Problem::Over,
                75..=89 => Problem::Duplicate,
                _ => Problem::None,
            };
        }
        final_contracts.push((c, problem));
    }

    World {
        customers,
        cdc,
        docusign,
        tickets,
        final_contracts,
        terms_intent,
        name_parts,
        ..World::default()
    }
}

/// Terms `TERMS[k]` as the CRM holds them: mostly the structured JSON, sometimes written
/// out in Chinese or English.
fn terms_text(g: &mut Gen, k: usize) -> String {
    if g.rng.chance(0.15) {
        g.rng.pick(FREE_TEXT_TERMS[k]).to_string()
    } else {
        TERMS[k].to_string()
    }
}
