//! What the allocation knows of each credit (its claim: candidate installments, named ones,
//! the evidence in words) and of each installment (the book of what it has been paid).

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::super::evidence::UnitCredit;
use super::super::payer::PayerMatch;
use super::{NEAR_DAYS, NEAR_MISS, PAYER_WINDOW_AFTER_DUE, PAYER_WINDOW_BEFORE_DUE};
use crate::derived::MatchRule;

/// How strong the evidence tying a credit to its candidates is.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(super) enum Tier {
    /// The text names a contract.
    Contract,
    /// The payer's account or exact company name is the customer's.
    Payer,
    /// Only a similar name or a contract number one digit off.
    Weak,
}

/// What the allocation knows of a credit.
pub(super) struct Claim {
    pub(super) tier: Tier,
    /// Candidate installments (indexes into the unit's installments).
    pub(super) candidates: Vec<usize>,
    /// Named installments, when the text names one contract and installments of it.
    pub(super) named: Vec<usize>,
    /// The evidence in words, the start of every explanation.
    pub(super) why: String,
    /// Confidence of the evidence itself (payer traces are below 100).
    pub(super) confidence: u8,
    pub(super) rule: MatchRule,
    /// Where it went, once decided.
    pub(super) placed: Vec<Placed>,
    /// An open installment of its amount due well after its booking (a possible prepayment).
    pub(super) early: Option<usize>,
}

pub(super) struct Placed {
    pub(super) inst: usize,
    pub(super) amount: Decimal,
    pub(super) rule: MatchRule,
    pub(super) confidence: u8,
    pub(super) explanation: String,
    pub(super) duplicate: bool,
}

/// The unit's installments and what each has been paid so far.
pub(super) struct Book<'u> {
    pub(super) inst: Vec<&'u crate::reconcile::terms::Installment>,
    pub(super) payable: Vec<bool>,
    pub(super) remaining: Vec<Decimal>,
    /// The credits (indexes) that paid each installment, for explanations and duplicates.
    pub(super) paid_by: Vec<Vec<usize>>,
    pub(super) tol: Decimal,
}

impl Book<'_> {
    pub(super) fn expected(&self, i: usize) -> Decimal {
        self.inst[i].amount.amount
    }
    pub(super) fn open(&self, i: usize) -> bool {
        self.remaining[i] > self.tol
    }
    pub(super) fn due(&self, i: usize) -> Option<NaiveDate> {
        self.inst[i].due_date
    }
    /// Oldest due first, unknown due dates last, then by contract and sequence.
    pub(super) fn due_order(&self, i: usize) -> (bool, Option<NaiveDate>, &str, u32) {
        let inst = self.inst[i];
        (
            inst.due_date.is_none(),
            inst.due_date,
            inst.contract_no.as_str(),
            inst.seq,
        )
    }
    pub(super) fn name(&self, i: usize) -> String {
        let inst = self.inst[i];
        match inst.due_date {
            Some(d) => format!("installment {} of {} (due {d})", inst.seq, inst.contract_no),
            None => format!(
                "installment {} of {} (due date not fixed yet)",
                inst.seq, inst.contract_no
            ),
        }
    }
    pub(super) fn names(&self, set: &[usize]) -> String {
        match set {
            [one] => self.name(*one),
            _ => format!(
                "installments {}",
                set.iter()
                    .map(|i| format!("{}#{}", self.inst[*i].contract_no, self.inst[*i].seq))
                    .collect::<Vec<_>>()
                    .join(" + ")
            ),
        }
    }
    /// Days between the booking and the due date (unknown due dates are farthest).
    pub(super) fn distance(&self, i: usize, booking: NaiveDate) -> i64 {
        self.due(i)
            .map_or(i64::MAX / 4, |d| (booking - d).num_days().abs())
    }
    /// Due well after the booking date, or not yet fixed: paying it now is paying early.
    pub(super) fn far_ahead(&self, i: usize, booking: NaiveDate) -> bool {
        self.due(i)
            .is_none_or(|d| (d - booking).num_days() > NEAR_DAYS)
    }
    pub(super) fn pay(&mut self, i: usize, amount: Decimal, credit: usize) {
        self.remaining[i] -= amount;
        if !self.open(i) && !self.paid_by[i].contains(&credit) {
            self.paid_by[i].push(credit);
        }
    }
}

pub(super) fn empty_claim() -> Claim {
    Claim {
        tier: Tier::Weak,
        candidates: Vec::new(),
        named: Vec::new(),
        why: String::new(),
        confidence: 0,
        rule: MatchRule::Manual,
        placed: Vec::new(),
        early: None,
    }
}

/// What the evidence lets a credit pay, and how strongly.
pub(super) fn claim(credit: &UnitCredit, book: &Book) -> Option<Claim> {
    let tx = &credit.row.tx;
    let ev = &credit.evidence;
    let rejected = |i: usize| {
        credit.manual.is_some_and(|m| {
            m.rejected
                .iter()
                .any(|(c, s)| *c == book.inst[i].contract_no && *s == book.inst[i].seq)
        })
    };
    let usable = |i: usize| {
        book.payable[i] && book.inst[i].amount.currency == tx.amount.currency && !rejected(i)
    };
    let of_contracts = |contracts: &[String]| -> Vec<usize> {
        (0..book.inst.len())
            .filter(|&i| usable(i) && contracts.contains(&book.inst[i].contract_no))
            .collect()
    };
    if !ev.contracts.is_empty() {
        let candidates = of_contracts(&ev.contracts);
        let named: Vec<usize> = match ev.contracts.as_slice() {
            [_] if !ev.hints.is_empty() => {
                let found: Vec<usize> = candidates
                    .iter()
                    .copied()
                    .filter(|&i| ev.hints.contains(&book.inst[i].seq))
                    .collect();
                if found.len() == ev.hints.len() {
                    found
                } else {
                    Vec::new()
                }
            }
            _ => Vec::new(),
        };
        let why = if named.is_empty() {
            format!("remittance names {}", ev.contracts.join(", "))
        } else {
            let seqs: Vec<String> = named
                .iter()
                .map(|i| book.inst[*i].seq.to_string())
                .collect();
            format!(
                "remittance names {} installment {}",
                ev.contracts[0],
                seqs.join(" and ")
            )
        };
        return Some(Claim {
            tier: Tier::Contract,
            candidates,
            rule: if named.is_empty() {
                MatchRule::ContractReference
            } else {
                MatchRule::InstallmentReference
            },
            named,
            why,
            confidence: 100,
            placed: Vec::new(),
            early: None,
        });
    }
    let in_window = |i: usize| {
        book.due(i).is_some_and(|due| {
            tx.booking_date >= due - chrono::Duration::days(PAYER_WINDOW_BEFORE_DUE)
                && tx.booking_date <= due + chrono::Duration::days(PAYER_WINDOW_AFTER_DUE)
        })
    };
    let payer_name = tx.counterparty_name.as_deref().unwrap_or("");
    let of_customer = |customer: &str| -> Vec<usize> {
        (0..book.inst.len())
            .filter(|&i| usable(i) && book.inst[i].customer_id == customer && in_window(i))
            .collect()
    };
    // A number in the text that is no contract: never confirmed without a clerk.
    if let Some((unknown, near)) = ev.unknown.first() {
        let mut candidates = of_contracts(near);
        let mut why = format!("remittance names {unknown}, which is no contract");
        if !near.is_empty() {
            why.push_str(&format!("; {} differs by one digit", near.join(" or ")));
        }
        if let Some((customer, _)) = &ev.payer {
            candidates.extend(of_customer(customer));
            candidates.sort_unstable();
            candidates.dedup();
            why.push_str(&format!("; the payer is customer {customer}"));
        }
        return (!candidates.is_empty()).then(|| Claim {
            tier: Tier::Weak,
            candidates,
            named: Vec::new(),
            why,
            confidence: NEAR_MISS,
            rule: MatchRule::NearMissReference,
            placed: Vec::new(),
            early: None,
        });
    }
    let (customer, how) = ev.payer.as_ref()?;
    let (tier, rule, confidence, why) = match how {
        PayerMatch::Account { account } => (
            Tier::Payer,
            MatchRule::PayerAccount,
            95u8,
            format!("payer account {account} belongs to customer {customer}"),
        ),
        PayerMatch::Name { .. } => (
            Tier::Payer,
            MatchRule::PayerName,
            90u8,
            format!("payer \"{payer_name}\" is customer {customer} (same company name)"),
        ),
        PayerMatch::SimilarName {
            similarity,
            customer_name,
        } => (
            Tier::Weak,
            MatchRule::SimilarPayerName,
            ((50.0 + 40.0 * similarity) as u8).min(85),
            format!(
                "payer \"{payer_name}\" resembles customer {customer} \"{customer_name}\" ({:.0}% similar)",
                similarity * 100.0
            ),
        ),
    };
    Some(Claim {
        tier,
        candidates: of_customer(customer),
        named: Vec::new(),
        why,
        confidence,
        rule,
        placed: Vec::new(),
        early: None,
    })
}
