//! Matching bank credits to installments. Passes run in a fixed order for each credit, the
//! credits in booking order, and every allocation records its rule, a confidence and a
//! sentence a finance clerk understands:
//!
//! 1. the remittance names a contract (and maybe installments `第N期`): the credit pays those
//!    installments, oldest open first; an amount that differs is kept as a partial or an
//!    overpayment, a second full payment of a paid installment as a duplicate;
//! 2. no contract number: the payer's account (or, as a suggestion only, its normalized
//!    name) identifies the customer, and the amount must equal one open installment, or the
//!    smallest set of up to 5 open installments (oldest first);
//! 3. otherwise the credit stays unmatched.
//!
//! The result depends only on the data, never on arrival order, so a replay or the nightly
//! full run reproduces it exactly.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use reconlight_connectors::model::{ContractStatus, Direction};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::reference::{ContractRefFinder, normalize_company_name};
use super::terms::Installment;
use crate::state::LiveState;

/// Which pass placed a credit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchRule {
    /// Contract number (and installment) in the text, amount within tolerance.
    ContractReference,
    /// Contract number in the text, several installments paid together.
    ContractReferenceCombined,
    /// Contract number in the text, but the amount differs (partial or over).
    ContractReferenceAmountDiffers,
    /// Contract number in the text for installments already paid in full.
    ContractReferenceAlreadyPaid,
    /// The payer's account belongs to the customer, and the amount fits.
    PayerAccount,
    /// The payer's normalized name is the customer's, and the amount fits (a suggestion).
    PayerName,
    /// A clerk matched it by hand.
    Manual,
}

impl MatchRule {
    pub fn as_str(&self) -> &'static str {
        match self {
            MatchRule::ContractReference => "contract_reference",
            MatchRule::ContractReferenceCombined => "contract_reference_combined",
            MatchRule::ContractReferenceAmountDiffers => "contract_reference_amount_differs",
            MatchRule::ContractReferenceAlreadyPaid => "contract_reference_already_paid",
            MatchRule::PayerAccount => "payer_account",
            MatchRule::PayerName => "payer_name",
            MatchRule::Manual => "manual",
        }
    }
}

/// Part (or all) of a credit applied to one installment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub bank_ref: String,
    pub contract_no: String,
    pub seq: u32,
    pub amount: Decimal,
    pub rule: MatchRule,
    /// 0-100.
    pub confidence: u8,
    pub explanation: String,
    /// At or above the auto-confirm threshold (or confirmed by a clerk); suggestions are not.
    pub confirmed: bool,
}

/// A clerk's decisions about one credit; they outrank every automatic pass.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManualDecision {
    pub bank_ref: String,
    /// Allocations a clerk made or confirmed: the credit goes exactly there.
    pub allocations: Vec<ManualAllocation>,
    /// Installments a clerk said this credit does not pay.
    pub rejected: Vec<(String, u32)>,
}

/// Part of a credit a clerk applied to an installment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManualAllocation {
    pub contract_no: String,
    pub seq: u32,
    pub amount: Decimal,
    pub by: String,
    pub at: chrono::DateTime<chrono::Utc>,
    pub note: String,
}

/// The settings matching depends on.
pub struct MatchSettings<'a> {
    pub tolerance: Decimal,
    pub auto_confirm: u8,
    pub finder: &'a ContractRefFinder,
}

/// Every credit's allocations, by bank reference (credits with none are unmatched).
pub type Matches = BTreeMap<String, Vec<Allocation>>;

type Key = (String, u32);

struct Ledger<'s> {
    installments: &'s BTreeMap<Key, Installment>,
    allocated: HashMap<Key, Decimal>,
}

impl Ledger<'_> {
    fn outstanding(&self, key: &Key) -> Decimal {
        self.installments[key].amount.amount - self.allocated.get(key).copied().unwrap_or_default()
    }
    fn add(&mut self, key: &Key, amount: Decimal) {
        *self.allocated.entry(key.clone()).or_default() += amount;
    }
}

/// Matches every credit booked on or before `through` (all credits when `None`).
pub fn match_credits(
    state: &LiveState,
    settings: &MatchSettings,
    through: Option<NaiveDate>,
) -> Matches {
    let tol = settings.tolerance;
    let by_contract: BTreeMap<&str, Vec<Key>> =
        state.installments.keys().fold(BTreeMap::new(), |mut m, k| {
            m.entry(k.0.as_str())
                .or_insert_with(Vec::new)
                .push(k.clone());
            m
        });
    let payable = |contract_no: &str| {
        state
            .contracts
            .get(contract_no)
            .is_some_and(|c| c.status != ContractStatus::Cancelled)
    };
    let mut by_customer: HashMap<&str, Vec<Key>> = HashMap::new();
    for (k, inst) in &state.installments {
        if payable(&k.0) {
            by_customer
                .entry(inst.customer_id.as_str())
                .or_default()
                .push(k.clone());
        }
    }
    for keys in by_customer.values_mut() {
        keys.sort_by(|a, b| {
            let (ia, ib) = (&state.installments[a], &state.installments[b]);
            (ia.due_date.is_none(), ia.due_date, &a.0, a.1).cmp(&(
                ib.due_date.is_none(),
                ib.due_date,
                &b.0,
                b.1,
            ))
        });
    }
    let mut by_account: HashMap<String, &str> = HashMap::new();
    let mut by_name: HashMap<String, Option<&str>> = HashMap::new();
    for c in state.customers.values() {
        if let Some(acct) = c
            .bank_account_no
            .as_deref()
            .map(normalize_account)
            .filter(|a| !a.is_empty())
        {
            by_account.insert(acct, c.customer_id.as_str());
        }
        let name = normalize_company_name(&c.name);
        if !name.is_empty() {
            // Two customers with the same normalized name identify neither.
            by_name
                .entry(name)
                .and_modify(|v| *v = None)
                .or_insert(Some(c.customer_id.as_str()));
        }
    }

    let mut credits: Vec<_> = state
        .bank
        .values()
        .filter(|b| {
            b.tx.direction == Direction::Credit && !b.tx.reversal && b.reversed_by.is_none()
        })
        .filter(|b| through.is_none_or(|d| b.tx.booking_date <= d))
        .collect();
    credits.sort_by(|a, b| {
        (a.tx.booking_date, &a.tx.bank_ref).cmp(&(b.tx.booking_date, &b.tx.bank_ref))
    });

    let mut ledger = Ledger {
        installments: &state.installments,
        allocated: HashMap::new(),
    };
    let mut matches = Matches::new();
    for credit in credits {
        let tx = &credit.tx;
        let amount = tx.amount.amount;
        let manual = state.manual.get(&tx.bank_ref);
        if let Some(m) = manual.filter(|m| !m.allocations.is_empty()) {
            let allocations = m
                .allocations
                .iter()
                .filter(|a| {
                    state
                        .installments
                        .contains_key(&(a.contract_no.clone(), a.seq))
                })
                .map(|a| {
                    ledger.add(&(a.contract_no.clone(), a.seq), a.amount);
                    Allocation {
                        bank_ref: tx.bank_ref.clone(),
                        contract_no: a.contract_no.clone(),
                        seq: a.seq,
                        amount: a.amount,
                        rule: MatchRule::Manual,
                        confidence: 100,
                        explanation: format!(
                            "matched by hand by {} on {}{}",
                            a.by,
                            a.at.format("%Y-%m-%d"),
                            if a.note.is_empty() {
                                String::new()
                            } else {
                                format!(": {}", a.note)
                            }
                        ),
                        confirmed: true,
                    }
                })
                .collect::<Vec<_>>();
            if !allocations.is_empty() {
                matches.insert(tx.bank_ref.clone(), allocations);
                continue;
            }
        }
        let same_currency = |k: &Key| state.installments[k].amount.currency == tx.amount.currency;
        let refs: Vec<String> = settings
            .finder
            .contract_numbers(&tx.remittance)
            .into_iter()
            .filter(|c| payable(c) && by_contract.contains_key(c.as_str()))
            .collect();
        let placed: Vec<(Key, Decimal, MatchRule, u8, String)> = if !refs.is_empty() {
            let candidates: Vec<Key> = refs
                .iter()
                .flat_map(|c| by_contract[c.as_str()].iter().cloned())
                .filter(same_currency)
                .collect();
            let hints = settings.finder.installments(&tx.remittance);
            let hinted: Vec<Key> = if refs.len() == 1 {
                candidates
                    .iter()
                    .filter(|k| hints.contains(&k.1))
                    .cloned()
                    .collect()
            } else {
                Vec::new()
            };
            let refs_text = refs.join(", ");
            if !hinted.is_empty() && hinted.len() == hints.len() {
                place_on_targets(&ledger, &hinted, amount, tol, &refs_text)
            } else {
                place_by_reference(&ledger, &candidates, amount, tol, &refs_text)
            }
        } else {
            let account = tx
                .counterparty_account
                .as_deref()
                .map(normalize_account)
                .unwrap_or_default();
            let by_acct = by_account
                .get(&account)
                .copied()
                .filter(|_| !account.is_empty());
            let by_nm = tx
                .counterparty_name
                .as_deref()
                .map(normalize_company_name)
                .and_then(|n| by_name.get(&n).copied().flatten());
            let (customer, confidence, how) = match (by_acct, by_nm) {
                (Some(c), _) => (
                    Some(c),
                    95u8,
                    format!("payer account {account} belongs to customer {c}"),
                ),
                (None, Some(c)) => (
                    Some(c),
                    80u8,
                    format!(
                        "payer name \"{}\" matches customer {c}",
                        tx.counterparty_name.as_deref().unwrap_or("")
                    ),
                ),
                (None, None) => (None, 0, String::new()),
            };
            let rule = if by_acct.is_some() {
                MatchRule::PayerAccount
            } else {
                MatchRule::PayerName
            };
            match customer.and_then(|c| by_customer.get(c)) {
                Some(keys) => {
                    let open: Vec<Key> = keys
                        .iter()
                        .filter(|k| same_currency(k) && ledger.outstanding(k) > tol)
                        .cloned()
                        .collect();
                    place_by_amount(&ledger, &open, amount, tol)
                        .map(|(keys, combined)| {
                            let n = keys.len();
                            let conf = if combined { confidence - 5 } else { confidence };
                            let what = describe(&keys);
                            split_exact(&ledger, &keys, amount)
                                .into_iter()
                                .map(|(k, a)| {
                                    let explanation = format!(
                                        "{how}; the amount {amount} equals the open {what}"
                                    );
                                    (
                                        k,
                                        a,
                                        rule,
                                        if n > 1 { conf } else { confidence },
                                        explanation,
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default()
                }
                None => Vec::new(),
            }
        };
        // A clerk's rejection removes that installment from this credit's candidates.
        let placed: Vec<_> = match manual {
            Some(m) if !m.rejected.is_empty() => placed
                .into_iter()
                .filter(|p| !m.rejected.contains(&p.0))
                .collect(),
            _ => placed,
        };
        if placed.is_empty() {
            continue;
        }
        let allocations: Vec<Allocation> = placed
            .into_iter()
            .map(|(k, a, rule, confidence, explanation)| {
                let confirmed = confidence >= settings.auto_confirm;
                if confirmed {
                    ledger.add(&k, a);
                }
                Allocation {
                    bank_ref: tx.bank_ref.clone(),
                    contract_no: k.0,
                    seq: k.1,
                    amount: a,
                    rule,
                    confidence,
                    explanation,
                    confirmed,
                }
            })
            .collect();
        matches.insert(tx.bank_ref.clone(), allocations);
    }
    matches
}

/// Account numbers compare by their letters and digits only.
pub fn normalize_account(account: &str) -> String {
    account
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_uppercase()
}

fn describe(keys: &[Key]) -> String {
    match keys {
        [k] => format!("installment {} of {}", k.1, k.0),
        _ => format!(
            "installments {}",
            keys.iter()
                .map(|k| format!("{}#{}", k.0, k.1))
                .collect::<Vec<_>>()
                .join(" + ")
        ),
    }
}

/// Gives each installment its outstanding amount; the last takes what is left (so a fee
/// within tolerance shows on it, and the parts sum to the credit exactly).
fn split_exact(ledger: &Ledger, keys: &[Key], amount: Decimal) -> Vec<(Key, Decimal)> {
    let mut left = amount;
    keys.iter()
        .enumerate()
        .map(|(i, k)| {
            let a = if i + 1 == keys.len() {
                left
            } else {
                ledger.outstanding(k).min(left)
            };
            left -= a;
            (k.clone(), a)
        })
        .collect()
}

/// One open installment whose outstanding amount equals the credit, else the smallest set of
/// up to 5 (oldest first). The bool says whether several were combined.
fn place_by_amount(
    ledger: &Ledger,
    open: &[Key],
    amount: Decimal,
    tol: Decimal,
) -> Option<(Vec<Key>, bool)> {
    if let Some(k) = open
        .iter()
        .find(|k| (ledger.outstanding(k) - amount).abs() <= tol)
    {
        return Some((vec![k.clone()], false));
    }
    let pool: Vec<(Key, Decimal)> = open
        .iter()
        .take(20)
        .map(|k| (k.clone(), ledger.outstanding(k)))
        .collect();
    for size in 2..=5.min(pool.len()) {
        if let Some(set) = first_subset(&pool, size, amount, tol) {
            return Some((set, true));
        }
    }
    None
}

fn first_subset(
    pool: &[(Key, Decimal)],
    size: usize,
    amount: Decimal,
    tol: Decimal,
) -> Option<Vec<Key>> {
    let mut idx: Vec<usize> = (0..size).collect();
    loop {
        let sum: Decimal = idx.iter().map(|&i| pool[i].1).sum();
        if (sum - amount).abs() <= tol {
            return Some(idx.iter().map(|&i| pool[i].0.clone()).collect());
        }
        // Next combination in lexicographic order, so older installments are tried first.
        let mut i = size;
        loop {
            if i == 0 {
                return None;
            }
            i -= 1;
            if idx[i] < pool.len() - size + i {
                idx[i] += 1;
                for j in i + 1..size {
                    idx[j] = idx[j - 1] + 1;
                }
                break;
            }
        }
    }
}

type Placed = Vec<(Key, Decimal, MatchRule, u8, String)>;

/// The text names the installments: pay exactly those.
fn place_on_targets(
    ledger: &Ledger,
    targets: &[Key],
    amount: Decimal,
    tol: Decimal,
    refs: &str,
) -> Placed {
    let what = describe(targets);
    let outstanding: Decimal = targets.iter().map(|k| ledger.outstanding(k)).sum();
    if outstanding > tol && (amount - outstanding).abs() <= tol {
        let rule = if targets.len() > 1 {
            MatchRule::ContractReferenceCombined
        } else {
            MatchRule::ContractReference
        };
        return split_exact(ledger, targets, amount)
            .into_iter()
            .map(|(k, a)| {
                (
                    k,
                    a,
                    rule,
                    100,
                    format!(
                        "remittance names {refs} and {what}; the amount {amount} pays it in full"
                    ),
                )
            })
            .collect();
    }
    let expected: Decimal = targets
        .iter()
        .map(|k| ledger.installments[k].amount.amount)
        .sum();
    if outstanding <= tol && (amount - expected).abs() <= tol {
        let mut left = amount;
        return targets
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let a = if i + 1 == targets.len() { left } else { ledger.installments[k].amount.amount };
                left -= a;
                (
                    k.clone(),
                    a,
                    MatchRule::ContractReferenceAlreadyPaid,
                    95,
                    format!("remittance names {refs} and {what}, which was already paid in full: {amount} is a second payment"),
                )
            })
            .collect();
    }
    fifo(ledger, targets, amount, refs, &what)
}

/// The text names contracts only: an exact single or combined fit first, else oldest first.
fn place_by_reference(
    ledger: &Ledger,
    candidates: &[Key],
    amount: Decimal,
    tol: Decimal,
    refs: &str,
) -> Placed {
    let open: Vec<Key> = candidates
        .iter()
        .filter(|k| ledger.outstanding(k) > tol)
        .cloned()
        .collect();
    if let Some((keys, combined)) = place_by_amount(ledger, &open, amount, tol) {
        let what = describe(&keys);
        let rule = if combined {
            MatchRule::ContractReferenceCombined
        } else {
            MatchRule::ContractReference
        };
        return split_exact(ledger, &keys, amount)
            .into_iter()
            .map(|(k, a)| {
                (
                    k,
                    a,
                    rule,
                    100,
                    format!("remittance names {refs}; the amount {amount} equals the open {what}"),
                )
            })
            .collect();
    }
    if open.is_empty() {
        if candidates.is_empty() {
            return Vec::new();
        }
        // Everything is paid: a second payment of an installment, or money beyond the contract.
        let target = candidates
            .iter()
            .find(|k| (ledger.installments[*k].amount.amount - amount).abs() <= tol)
            .unwrap_or_else(|| candidates.last().expect("non-empty"));
        let what = describe(std::slice::from_ref(target));
        return vec![(
            target.clone(),
            amount,
            MatchRule::ContractReferenceAlreadyPaid,
            95,
            format!(
                "remittance names {refs}, whose installments are all paid: {amount} is applied to {what} as an excess payment"
            ),
        )];
    }
    let what = describe(&open);
    fifo(ledger, &open, amount, refs, &what)
}

/// Pays installments oldest first; what is left after the last one stays on it as excess.
fn fifo(ledger: &Ledger, keys: &[Key], amount: Decimal, refs: &str, what: &str) -> Placed {
    let mut left = amount;
    let mut out = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        if left.is_zero() {
            break;
        }
        let a = if i + 1 == keys.len() {
            left
        } else {
            ledger.outstanding(k).max(Decimal::ZERO).min(left)
        };
        if a.is_zero() {
            continue;
        }
        left -= a;
        out.push((
            k.clone(),
            a,
            MatchRule::ContractReferenceAmountDiffers,
            90,
            String::new(),
        ));
    }
    let expected: Decimal = keys
        .iter()
        .map(|k| ledger.outstanding(k).max(Decimal::ZERO))
        .sum();
    let verdict = if amount < expected {
        format!("{amount} is less than the {expected} still due")
    } else {
        format!("{amount} is more than the {expected} still due")
    };
    for p in &mut out {
        p.4 = format!("remittance names {refs} ({what}); {verdict}");
    }
    out
}
