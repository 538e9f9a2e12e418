//! `reconlight generate`: a deterministic, realistic dataset of a Chinese B2B medical-device
//! company: customers, contracts with 1-4 installment payment terms and months of CRM edits,
//! e-signature envelopes, bank statements (camt.053 and a GBK CSV export) with other
//! companies' credits, split and combined payments, bank fees, reversals and pending
//! entries, and injected problems listed in `truth.jsonl`.

mod names;
mod writers;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use reconlight_connectors::model::{
    Contract, ContractStatus, Currency, Customer, HandoffTicket, Money,
};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::reconcile::terms::{Installment, installments};
use names::*;
use writers::*;

/// One injected problem, as the nightly diff must find it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub struct TruthLine {
    pub kind: String,
    pub contract_no: Option<String>,
    pub installment: Option<u32>,
    pub bank_ref: Option<String>,
}

/// What was generated.
#[derive(Debug, Default, Serialize)]
pub struct GenerateSummary {
    pub customers: usize,
    pub contracts: usize,
    pub crm_events: usize,
    pub signature_events: usize,
    pub bank_lines: usize,
    pub business_date: NaiveDate,
    pub problems: BTreeMap<String, usize>,
}

const TERMS: &[&str] = &[
    r#"[{"seq":1,"percent":"100","due_days":30,"anchor":"signed"}]"#,
    r#"[{"seq":1,"percent":"30","due_days":7,"anchor":"signed"},{"seq":2,"percent":"70","due_days":30,"anchor":"signed"}]"#,
    r#"[{"seq":1,"percent":"30","due_days":7,"anchor":"signed"},{"seq":2,"percent":"70","due_days":15,"anchor":"accepted"}]"#,
    r#"[{"seq":1,"percent":"30","due_days":7,"anchor":"signed"},{"seq":2,"percent":"60","due_days":45,"anchor":"signed"},{"seq":3,"percent":"10","due_days":365,"anchor":"accepted"}]"#,
    r#"[{"seq":1,"percent":"20","due_days":7,"anchor":"signed"},{"seq":2,"percent":"30","due_days":20,"anchor":"signed"},{"seq":3,"percent":"30","due_days":40,"anchor":"signed"},{"seq":4,"percent":"20","due_days":10,"anchor":"accepted"}]"#,
    r#"[{"seq":1,"percent":"50","due_days":10,"anchor":"signed"},{"seq":2,"percent":"50","due_days":40,"anchor":"signed"}]"#,
];

const MAIN_ACCOUNT: &str = "128905678810201";
const CSV_ACCOUNT: &str = "755912345610801";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Problem {
    None,
    NotCertified,
    AmountMismatch,
    Missing,
    Partial,
    Over,
    Duplicate,
}

/// A credit to place on one of the two accounts.
#[derive(Clone, Debug)]
struct Credit {
    date: NaiveDate,
    amount: Decimal,
    payer: String,
    payer_account: String,
    memo: String,
    /// Filled when the credit is written.
    bank_ref: String,
}

struct Gen {
    rng: Rng,
    tz: chrono_tz::Tz,
    start: NaiveDate,
    end: NaiveDate,
}

impl Gen {
    fn local(&self, date: NaiveDate, minute_of_day: i64) -> DateTime<Utc> {
        let naive = date.and_hms_opt(0, 0, 0).expect("midnight") + Duration::minutes(minute_of_day);
        self.tz
            .from_local_datetime(&naive)
            .earliest()
            .expect("valid local time")
            .with_timezone(&Utc)
    }

    fn date_of(&self, t: DateTime<Utc>) -> NaiveDate {
        t.with_timezone(&self.tz).date_naive()
    }

    fn work_time(&mut self, date: NaiveDate) -> DateTime<Utc> {
        let m = self.rng.range(9 * 60, 18 * 60);
        self.local(date, m)
    }

    fn ip(&mut self) -> String {
        format!(
            "10.{}.{}.{}",
            self.rng.range(10, 40),
            self.rng.range(0, 255),
            self.rng.range(2, 254)
        )
    }

    fn spell(&mut self, no: &str) -> String {
        let digits: String = no.chars().filter(char::is_ascii_digit).collect();
        let (y, s) = digits.split_at(4);
        match self.rng.range(0, 5) {
            0 | 1 => no.to_string(),
            2 => format!("HT{y}{s}"),
            3 => format!("ht-{y}-{s}"),
            4 => format!("HT {y} {s}"),
            _ => format!("ht{y}{s}"),
        }
    }

    fn memo(&mut self, no: &str, seqs: &[u32], with_hint: bool) -> String {
        let r = self.spell(no);
        let hint = match seqs {
            [one] => format!("第{one}期"),
            [a, .., b] => format!("第{a}-{b}期"),
            [] => String::new(),
        };
        if with_hint {
            match self.rng.range(0, 3) {
                0 => format!("{r} {hint}款"),
                1 => format!("合同号{r}{hint}"),
                2 => format!("付{r} {hint}货款"),
                _ => format!("Payment {r} {hint}"),
            }
        } else {
            match self.rng.range(0, 2) {
                0 => format!("{r}货款"),
                1 => format!("合同号:{r}"),
                _ => format!("付合同{r}设备款"),
            }
        }
    }
}

fn money(amount: Decimal) -> Money {
    Money::new(amount, Currency::CNY)
}

/// Generates the dataset into `out`.
pub fn generate(contracts: usize, seed: u64, out: &Path) -> anyhow::Result<GenerateSummary> {
    let mut g = Gen {
        rng: Rng::new(seed),
        tz: chrono_tz::Asia::Shanghai,
        start: NaiveDate::from_ymd_opt(2026, 8, 1).expect("date"),
        end: NaiveDate::from_ymd_opt(2026, 10, 31).expect("date"),
    };
    let period_days = (g.end - g.start).num_days();
    let mut truth: BTreeSet<TruthLine> = BTreeSet::new();
    let mut summary = GenerateSummary {
        business_date: g.end,
        ..Default::default()
    };

    // Customers: a snapshot of the CRM taken the day before the period.
    let n_customers = (contracts / 3).max(5);
    let mut customers: Vec<Customer> = Vec::with_capacity(n_customers);
    let mut used_names = BTreeSet::new();
    let mut used_accounts = BTreeSet::new();
    for i in 0..n_customers {
        let mut name;
        let mut tries = 0;
        loop {
            let (kind, suffix) = *g.rng.pick(KINDS);
            name = format!(
                "{}{}{}{}",
                g.rng.pick(CITIES),
                g.rng.pick(CORES),
                kind,
                suffix
            );
            tries += 1;
            if tries > 20 {
                name = format!(
                    "{}{}第{}{}{}",
                    g.rng.pick(CITIES),
                    g.rng.pick(CORES),
                    i + 1,
                    kind,
                    suffix
                );
            }
            if used_names.insert(crate::reconcile::reference::normalize_company_name(&name)) {
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
    let mut cdc: Vec<(
        DateTime<Utc>,
        CdcTable,
        String,
        Option<serde_json::Value>,
        Option<serde_json::Value>,
    )> = Vec::new();
    for c in &customers {
        cdc.push((
            snapshot_at,
            CdcTable::Customers,
            "r".into(),
            None,
            Some(customer_row(c)),
        ));
    }

    let mut docusign: Vec<(DateTime<Utc>, String)> = Vec::new();
    let mut tickets: Vec<(DateTime<Utc>, HandoffTicket, bool)> = Vec::new();
    let mut credits: Vec<Credit> = Vec::new();
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
            payment_terms: g.rng.pick(TERMS).to_string(),
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
        // Customer acceptance, for terms anchored on it.
        let accept_at =
            signed_at + Duration::days(g.rng.range(8, 40)) + Duration::minutes(g.rng.range(0, 300));
        if c.payment_terms.contains("accepted")
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
            if g.date_of(ack) < g.end {
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

    // Payments, from the final contract state and the same installment rules the pipeline uses.
    let mut all_installments: BTreeMap<String, Vec<Installment>> = BTreeMap::new();
    for (c, _) in &final_contracts {
        if c.status != ContractStatus::Cancelled
            && let Ok(list) = installments(c, g.tz)
        {
            all_installments.insert(c.contract_no.clone(), list);
        }
    }
    let mut customer_amounts: BTreeMap<String, Vec<Decimal>> = BTreeMap::new();
    for list in all_installments.values() {
        for inst in list {
            customer_amounts
                .entry(inst.customer_id.clone())
                .or_default()
                .push(inst.amount.amount);
        }
    }
    let customer_by_id: BTreeMap<String, Customer> = customers
        .iter()
        .map(|c| (c.customer_id.clone(), c.clone()))
        .collect();
    let tol2 = Decimal::new(200, 2);
    for (c, problem) in &final_contracts {
        if c.status != ContractStatus::Signed {
            continue;
        }
        let cust = &customer_by_id[&c.customer_id];
        let list = &all_installments[&c.contract_no];
        let signed_day = g.date_of(c.signed_at.expect("signed"));
        let due: Vec<&Installment> = list
            .iter()
            .filter(|i| i.due_date.is_some_and(|d| d < g.end))
            .collect();
        let mut problem = *problem;
        let mut target = None;
        if matches!(
            problem,
            Problem::Missing | Problem::Partial | Problem::Over | Problem::Duplicate
        ) {
            let candidates: Vec<&&Installment> = due
                .iter()
                .filter(|i| {
                    problem != Problem::Duplicate
                        || i.due_date.is_some_and(|d| d + Duration::days(12) < g.end)
                })
                .collect();
            if candidates.is_empty() {
                problem = Problem::None;
            } else {
                target = Some(candidates[g.rng.range(0, candidates.len() as i64 - 1) as usize].seq);
            }
        }
        match problem {
            Problem::NotCertified => {
                truth.insert(TruthLine {
                    kind: "signature_not_certified".into(),
                    contract_no: Some(c.contract_no.clone()),
                    installment: None,
                    bank_ref: None,
                });
            }
            Problem::AmountMismatch => {
                truth.insert(TruthLine {
                    kind: "amount_mismatch".into(),
                    contract_no: Some(c.contract_no.clone()),
                    installment: None,
                    bank_ref: None,
                });
            }
            _ => {}
        }
        let hints_required = problem != Problem::None;
        let payer_name = |g: &mut Gen| {
            if g.rng.chance(0.1) {
                format!("{}（{}分公司）", cust.name, g.rng.pick(CITIES))
            } else {
                cust.name.clone()
            }
        };
        let account = cust.bank_account_no.clone().unwrap_or_default();
        let mut skip_next = false;
        for (idx, inst) in list.iter().enumerate() {
            if skip_next {
                skip_next = false;
                continue;
            }
            let Some(due_date) = inst.due_date else {
                continue;
            };
            let is_due = due_date < g.end;
            if !is_due && !g.rng.chance(0.15) {
                continue;
            }
            let lo = (signed_day + Duration::days(1))
                .max(due_date - Duration::days(if is_due { 6 } else { 10 }));
            let hi = (due_date + Duration::days(2)).min(g.end);
            if lo > hi {
                continue;
            }
            let date = lo + Duration::days(g.rng.range(0, (hi - lo).num_days()));
            let expected = inst.amount.amount;
            let is_target = target == Some(inst.seq);
            let mut push = |g: &mut Gen, date: NaiveDate, amount: Decimal, memo: String| {
                let payer = payer_name(g);
                credits.push(Credit {
                    date,
                    amount,
                    payer,
                    payer_account: account.clone(),
                    memo,
                    bank_ref: String::new(),
                });
            };
            if is_target {
                match problem {
                    Problem::Missing => {
                        truth.insert(TruthLine {
                            kind: "missing_payment".into(),
                            contract_no: Some(c.contract_no.clone()),
                            installment: Some(inst.seq),
                            bank_ref: None,
                        });
                    }
                    Problem::Partial => {
                        let share = Decimal::new(g.rng.range(40, 90), 2);
                        let memo = g.memo(&c.contract_no, &[inst.seq], true);
                        push(&mut g, date, (expected * share).round_dp(2), memo);
                        truth.insert(TruthLine {
                            kind: "partial_payment".into(),
                            contract_no: Some(c.contract_no.clone()),
                            installment: Some(inst.seq),
                            bank_ref: None,
                        });
                    }
                    Problem::Over => {
                        let extra = Decimal::from(g.rng.range(2, 500) * 10);
                        let memo = g.memo(&c.contract_no, &[inst.seq], true);
                        push(&mut g, date, expected + extra, memo);
                        truth.insert(TruthLine {
                            kind: "overpayment".into(),
                            contract_no: Some(c.contract_no.clone()),
                            installment: Some(inst.seq),
                            bank_ref: None,
                        });
                    }
                    Problem::Duplicate => {
                        let first = due_date.min(g.end - Duration::days(11));
                        let second = first + Duration::days(g.rng.range(3, 10));
                        let memo = g.memo(&c.contract_no, &[inst.seq], true);
                        push(&mut g, first, expected, memo.clone());
                        push(&mut g, second, expected, memo);
                        // The bank reference of the second credit is known once it is written.
                        truth.insert(TruthLine {
                            kind: "duplicate_payment".into(),
                            contract_no: Some(c.contract_no.clone()),
                            installment: Some(inst.seq),
                            bank_ref: Some(format!("@credit{}", credits.len() - 1)),
                        });
                    }
                    _ => {}
                }
                continue;
            }
            let style = g.rng.range(0, 99);
            let next = list.get(idx + 1);
            let unambiguous = customer_amounts[&c.customer_id]
                .iter()
                .filter(|a| (**a - expected).abs() <= tol2)
                .count()
                == 1;
            if !hints_required
                && style < 6
                && next
                    .is_some_and(|n| n.due_date.is_some_and(|d| d < g.end) && target != Some(n.seq))
            {
                // One credit paying this installment and the next together.
                let n = next.expect("checked");
                let day = date
                    .max(n.due_date.expect("checked") - Duration::days(3))
                    .min(g.end);
                let hint = g.rng.chance(0.5);
                let memo = g.memo(&c.contract_no, &[inst.seq, n.seq], hint);
                push(&mut g, day, expected + n.amount.amount, memo);
                skip_next = true;
            } else if !hints_required && style < 16 && unambiguous {
                let memo = g.rng.pick(GENERIC_MEMOS).to_string();
                push(&mut g, date, expected, memo);
            } else if style < 26 && expected > Decimal::from(1000) {
                // Split into 2-3 transfers.
                let parts = g.rng.range(2, 3);
                let mut left = expected;
                for p in 0..parts {
                    let amt = if p + 1 == parts {
                        left
                    } else {
                        (expected * Decimal::new(g.rng.range(25, 45), 2)).round_dp(2)
                    };
                    left -= amt;
                    let day = (date + Duration::days(p)).min(g.end);
                    let memo = g.memo(&c.contract_no, &[inst.seq], true);
                    push(&mut g, day, amt, memo);
                }
            } else if style < 36 {
                // The payer's bank deducts a fee within tolerance.
                let fee = *g.rng.pick(&[
                    Decimal::new(50, 2),
                    Decimal::new(80, 2),
                    Decimal::new(20, 2),
                ]);
                let memo = g.memo(&c.contract_no, &[inst.seq], true);
                push(&mut g, date, expected - fee, memo);
            } else {
                let hint = hints_required || g.rng.chance(0.6);
                let memo = g.memo(&c.contract_no, &[inst.seq], hint);
                push(&mut g, date, expected, memo);
            }
        }
    }

    // Other companies' credits nobody can match.
    let n_other = (contracts / 40).max(3);
    let mut other_credits = Vec::new();
    for _ in 0..n_other {
        let date = g.start + Duration::days(g.rng.range(0, period_days));
        let payer = format!(
            "{}{}{}有限公司",
            g.rng.pick(CITIES),
            g.rng.pick(OTHER_CORES),
            g.rng.pick(OTHER_KINDS)
        );
        let memo = g.rng.pick(OTHER_MEMOS).to_string();
        other_credits.push(credits.len());
        let amount = Decimal::new(g.rng.range(5_000, 3_000_000), 2);
        credits.push(Credit {
            date,
            amount,
            payer,
            payer_account: format!("6217{:015}", g.rng.next_u64() % 1_000_000_000_000_000),
            memo,
            bank_ref: String::new(),
        });
    }

    // Lay the credits out on the two accounts, in booking order.
    let mut order: Vec<usize> = (0..credits.len()).collect();
    order.sort_by_key(|&i| (credits[i].date, i));
    let mut camt_days: BTreeMap<NaiveDate, Vec<CamtEntry>> = BTreeMap::new();
    let mut csv_lines: Vec<CsvLine> = Vec::new();
    let mut ref_no = 0u64;
    let mut next_ref = |prefix: &str, date: NaiveDate| {
        ref_no += 1;
        format!("{prefix}{}{:06}", date.format("%Y%m%d"), ref_no)
    };
    let mut pending_batch: Option<CamtEntry> = None;
    for &i in &order {
        let cr = credits[i].clone();
        if g.rng.chance(0.3) {
            let r = next_ref("CMB", cr.date);
            csv_lines.push(CsvLine {
                date: cr.date,
                time: format!(
                    "{:02}:{:02}:{:02}",
                    g.rng.range(8, 20),
                    g.rng.range(0, 59),
                    g.rng.range(0, 59)
                ),
                credit: Some(cr.amount),
                debit: None,
                party_name: cr.payer.clone(),
                party_account: cr.payer_account.clone(),
                memo: cr.memo.clone(),
                bank_ref: r.clone(),
            });
            credits[i].bank_ref = r;
            continue;
        }
        let tx_ref = next_ref("ICBC", cr.date);
        credits[i].bank_ref = tx_ref.clone();
        let tx = CamtTx {
            bank_ref: tx_ref.clone(),
            amount: cr.amount,
            end_to_end_id: format!("E2E{}", &tx_ref[4..]),
            party_name: Some(cr.payer.clone()),
            party_account: Some(cr.payer_account.clone()),
            remittance: cr.memo.clone(),
        };
        // A few same-day credits arrive as one batch entry.
        if let Some(b) = pending_batch
            .as_mut()
            .filter(|b| b.date == cr.date && b.txs.len() < 3)
        {
            b.txs.push(tx);
            continue;
        }
        if let Some(b) = pending_batch.take() {
            camt_days.entry(b.date).or_default().push(b);
        }
        if g.rng.chance(0.06) {
            pending_batch = Some(CamtEntry {
                entry_ref: format!("B{tx_ref}"),
                credit: true,
                reversal: false,
                booked: true,
                date: cr.date,
                txs: vec![tx],
            });
        } else {
            camt_days.entry(cr.date).or_default().push(CamtEntry {
                entry_ref: tx_ref,
                credit: true,
                reversal: false,
                booked: true,
                date: cr.date,
                txs: vec![tx],
            });
        }
    }
    if let Some(b) = pending_batch.take() {
        camt_days.entry(b.date).or_default().push(b);
    }
    // A batch of one is an ordinary entry: its reference is the transaction's.
    for entries in camt_days.values_mut() {
        for e in entries.iter_mut() {
            if e.txs.len() == 1 && e.entry_ref.starts_with('B') {
                e.entry_ref = e.txs[0].bank_ref.clone();
            }
        }
    }
    for (idx, c) in credits.iter().enumerate() {
        for t in truth.clone() {
            if t.bank_ref.as_deref() == Some(&format!("@credit{idx}")) {
                truth.remove(&t);
                truth.insert(TruthLine {
                    bank_ref: Some(c.bank_ref.clone()),
                    ..t
                });
            }
        }
    }
    for &i in &other_credits {
        truth.insert(TruthLine {
            kind: "unmatched_receipt".into(),
            contract_no: None,
            installment: None,
            bank_ref: Some(credits[i].bank_ref.clone()),
        });
    }
    // Debits, a mistaken credit returned the next day, and pending entries.
    let mut day = g.start;
    while day <= g.end {
        if g.rng.chance(0.5) || day == g.end {
            let r = next_ref("ICBC", day);
            let payee = format!(
                "{}{}{}有限公司",
                g.rng.pick(CITIES),
                g.rng.pick(OTHER_CORES),
                g.rng.pick(OTHER_KINDS)
            );
            let amount = if day == g.end {
                Decimal::new(3500, 2)
            } else {
                Decimal::new(g.rng.range(100_000, 5_000_000), 2)
            };
            let memo = if day == g.end {
                "账户管理费".to_string()
            } else {
                "采购付款".to_string()
            };
            camt_days.entry(day).or_default().push(CamtEntry {
                entry_ref: r.clone(),
                credit: false,
                reversal: false,
                booked: true,
                date: day,
                txs: vec![CamtTx {
                    bank_ref: r.clone(),
                    amount,
                    end_to_end_id: format!("E2E{}", &r[4..]),
                    party_name: Some(payee),
                    party_account: None,
                    remittance: memo,
                }],
            });
        }
        if g.rng.chance(0.3) {
            let r = next_ref("CMB", day);
            csv_lines.push(CsvLine {
                date: day,
                time: "10:15:00".into(),
                credit: None,
                debit: Some(Decimal::new(g.rng.range(10_000, 900_000), 2)),
                party_name: format!(
                    "{}{}{}有限公司",
                    g.rng.pick(CITIES),
                    g.rng.pick(OTHER_CORES),
                    g.rng.pick(OTHER_KINDS)
                ),
                party_account: format!("6217{:015}", g.rng.next_u64() % 1_000_000_000_000_000),
                memo: "服务费".into(),
                bank_ref: r,
            });
        }
        day += Duration::days(1);
    }
    for _ in 0..(contracts / 500).max(1) {
        let d = g.start + Duration::days(g.rng.range(0, period_days - 2));
        let r = next_ref("ICBC", d);
        let rr = next_ref("ICBC", d + Duration::days(1));
        let amount = Decimal::new(g.rng.range(100_000, 9_000_000), 2);
        let payer = format!(
            "{}{}{}有限公司",
            g.rng.pick(CITIES),
            g.rng.pick(OTHER_CORES),
            g.rng.pick(OTHER_KINDS)
        );
        let acct = format!("6217{:015}", g.rng.next_u64() % 1_000_000_000_000_000);
        let e2e = format!("E2E{}", &r[4..]);
        let tx = CamtTx {
            bank_ref: r.clone(),
            amount,
            end_to_end_id: e2e.clone(),
            party_name: Some(payer.clone()),
            party_account: Some(acct.clone()),
            remittance: "误汇款".into(),
        };
        camt_days.entry(d).or_default().push(CamtEntry {
            entry_ref: r.clone(),
            credit: true,
            reversal: false,
            booked: true,
            date: d,
            txs: vec![tx.clone()],
        });
        let back = CamtTx {
            bank_ref: rr.clone(),
            remittance: "退回误汇款".into(),
            ..tx
        };
        camt_days
            .entry(d + Duration::days(1))
            .or_default()
            .push(CamtEntry {
                entry_ref: rr,
                credit: false,
                reversal: true,
                booked: true,
                date: d + Duration::days(1),
                txs: vec![back],
            });
    }
    for _ in 0..3 {
        let d = g.start + Duration::days(g.rng.range(0, period_days));
        let r = next_ref("ICBC", d);
        let tx = CamtTx {
            bank_ref: r.clone(),
            amount: Decimal::new(g.rng.range(100_000, 900_000), 2),
            end_to_end_id: "NOTPROVIDED".into(),
            party_name: Some("在途资金".into()),
            party_account: None,
            remittance: "待清算".into(),
        };
        camt_days.entry(d).or_default().push(CamtEntry {
            entry_ref: r,
            credit: true,
            reversal: false,
            booked: false,
            date: d,
            txs: vec![tx],
        });
    }
    csv_lines.sort_by(|a, b| (a.date, &a.time, &a.bank_ref).cmp(&(b.date, &b.time, &b.bank_ref)));

    // Write everything.
    std::fs::create_dir_all(out.join("crm"))?;
    std::fs::create_dir_all(out.join("esign"))?;
    std::fs::create_dir_all(out.join("bank/camt053"))?;
    std::fs::create_dir_all(out.join("bank/csv"))?;
    cdc.sort_by_key(|e| e.0);
    let mut files: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (n, (at, table, op, before, after)) in cdc.iter().enumerate() {
        let lsn = 24_000_000 + n as u64 * 376;
        let snapshot = if *op == "r" { "true" } else { "false" };
        let line = debezium_line(
            *table,
            op,
            before.clone(),
            after.clone(),
            *at,
            lsn,
            700 + n as u64,
            snapshot,
        );
        let file = match table {
            CdcTable::Customers => "customers.jsonl",
            CdcTable::Contracts => "contracts.jsonl",
            CdcTable::HandoffTickets => "handoff_tickets.jsonl",
        };
        files.entry(file).or_default().push(line);
        if op == "d" {
            files.entry(file).or_default().push("null".into());
        }
    }
    tickets.sort_by_key(|t| t.0);
    let mut seen_tickets = BTreeMap::new();
    for (n, (at, t, update)) in tickets.iter().enumerate() {
        let lsn = 90_000_000 + n as u64 * 212;
        let before = if *update {
            seen_tickets.get(&t.ticket_id).map(ticket_row)
        } else {
            None
        };
        let line = debezium_line(
            CdcTable::HandoffTickets,
            if *update { "u" } else { "c" },
            before,
            Some(ticket_row(t)),
            *at,
            lsn,
            50_000 + n as u64,
            "false",
        );
        files.entry("handoff_tickets.jsonl").or_default().push(line);
        seen_tickets.insert(t.ticket_id.clone(), t.clone());
    }
    for (file, lines) in &files {
        std::fs::write(out.join("crm").join(file), lines.join("\n") + "\n")?;
        summary.crm_events += lines.len();
    }
    docusign.sort_by(|a, b| a.0.cmp(&b.0));
    summary.signature_events = docusign.len();
    std::fs::write(
        out.join("esign/docusign.jsonl"),
        docusign
            .into_iter()
            .map(|d| d.1)
            .collect::<Vec<_>>()
            .join("\n")
            + "\n",
    )?;

    let mut by_month: BTreeMap<(i32, u32), Vec<(NaiveDate, Vec<CamtEntry>)>> = BTreeMap::new();
    for (d, entries) in camt_days {
        use chrono::Datelike;
        summary.bank_lines += entries.iter().map(|e| e.txs.len()).sum::<usize>();
        by_month
            .entry((d.year(), d.month()))
            .or_default()
            .push((d, entries));
    }
    let mut balance = Decimal::from(5_000_000);
    for ((y, m), days) in by_month {
        let last = days.last().map(|d| d.0).unwrap_or(g.end);
        let (xml, closing) = camt053(
            &format!("ICBC{y}{m:02}"),
            MAIN_ACCOUNT,
            &days,
            balance,
            g.local(last, 23 * 60 + 40),
        );
        balance = closing;
        std::fs::write(out.join(format!("bank/camt053/{y}-{m:02}.xml")), xml)?;
    }
    summary.bank_lines += csv_lines.len();
    std::fs::write(
        out.join("bank/csv/cmb-export.csv"),
        bank_csv(CSV_ACCOUNT, &csv_lines, Decimal::from(800_000)),
    )?;

    let mut truth_text = String::new();
    for t in &truth {
        *summary.problems.entry(t.kind.clone()).or_default() += 1;
        truth_text.push_str(&serde_json::to_string(t)?);
        truth_text.push('\n');
    }
    std::fs::write(out.join("truth.jsonl"), truth_text)?;
    std::fs::write(out.join("reconlight.toml"), dataset_config())?;
    summary.customers = customers.len();
    summary.contracts = final_contracts.len();
    Ok(summary)
}

/// The configuration that reads a generated dataset (also a worked example of every source).
pub fn dataset_config() -> String {
    format!(
        r#"# reconlight configuration for a dataset written by `reconlight generate`.
[store]
url = "sqlite://reconlight.db"

[business]
time_zone = "Asia/Shanghai"
amount_tolerance = "1.00"

[ingest]
batch_size = 2000
# A replayed dataset runs on event time, so every run gives identical alerts and work items.
clock = "event_time"

[[sources]]
name = "crm-customers"
format = "debezium"
path = "crm/customers.jsonl"

[[sources]]
name = "crm-contracts"
format = "debezium"
path = "crm/contracts.jsonl"

[[sources]]
name = "crm-handoff-tickets"
format = "debezium"
path = "crm/handoff_tickets.jsonl"

[[sources]]
name = "docusign"
format = "docusign"
path = "esign/docusign.jsonl"

[[sources]]
name = "bank-icbc"
format = "camt"
path = "bank/camt053"

[[sources]]
name = "bank-cmb"
format = "csv"
path = "bank/csv"

[sources.csv]
encoding = "gbk"
skip_lines = 2
date_formats = ["%Y%m%d"]
thousands_separator = ","
account = "{CSV_ACCOUNT}"

[sources.csv.columns]
booking_date = "交易日期"
credit = "收入金额"
debit = "支出金额"
reference = "交易流水号"
counterparty_name = "对方户名"
counterparty_account = "对方账号"
remittance = ["摘要"]
"#
    )
}

/// Reads a dataset's `truth.jsonl`.
pub fn read_truth(dir: &Path) -> anyhow::Result<Vec<TruthLine>> {
    let text = std::fs::read_to_string(dir.join("truth.jsonl"))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(anyhow::Error::from))
        .collect()
}

/// True when `dir` holds a generated dataset.
pub fn dataset_exists(dir: &Path) -> bool {
    dir.join("reconlight.toml").is_file() && dir.join("truth.jsonl").is_file()
}
