//! Matching bank credits to installments. Passes run in a fixed order for each credit, the
//! credits in booking order, and every allocation records its rule, a confidence and a
//! sentence a finance clerk understands:
//!
//! 1. the remittance names a contract (and maybe installments `第N期`): the credit pays those
//!    installments, oldest open first; an amount that differs is kept as a partial or an
//!    overpayment, a second full payment of a paid installment as a duplicate;
//! 2. no contract number: the payer's account, else its normalized company name, identifies
//!    the customer (a merely similar name gives a suggestion for a clerk only), and the
//!    amount must equal one open installment due around the booking date (45 days before
//!    to 90 days after), or the smallest set of up to 5 of them, oldest first;
//! 3. otherwise the credit stays unmatched.
//!
//! The result depends only on the data, never on arrival order, so a replay or the nightly
//! full run reproduces it exactly.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use reconlight_connectors::model::{ContractStatus, Direction};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

mod payer;
mod placement;

use super::reference::ContractRefFinder;
use super::terms::Installment;
use placement::{describe, place_by_amount, place_by_reference, place_on_targets, split_exact};

use crate::state::LiveState;
pub use payer::{PayerIndex, PayerMatch, name_similarity, normalize_account};

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
    /// The payer's normalized company name is the customer's, and the amount fits.
    PayerName,
    /// The payer's name only resembles the customer's: a suggestion for a clerk.
    SimilarPayerName,
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
            MatchRule::SimilarPayerName => "similar_payer_name",
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

/// A credit traced by its payer pays installments due at most this many days after its booking...
const PAYER_WINDOW_BEFORE_DUE: i64 = 45;
/// ...and at most this many days before it.
const PAYER_WINDOW_AFTER_DUE: i64 = 90;

/// Every credit's allocations, by bank reference (credits with none are unmatched).
pub type Matches = BTreeMap<String, Vec<Allocation>>;

/// An installment, by its position in the live table's (contract, seq) order.
type Key = usize;

/// What each installment has been paid so far in this pass.
struct Ledger<'s> {
    installments: Vec<&'s Installment>,
    allocated: Vec<Decimal>,
}

impl<'s> Ledger<'s> {
    fn new(state: &'s LiveState) -> Self {
        let installments: Vec<&Installment> = state.installments.values().collect();
        let allocated = vec![Decimal::ZERO; installments.len()];
        Ledger {
            installments,
            allocated,
        }
    }
    /// The installments only, for passes that allocate nothing.
    fn without_payments(state: &'s LiveState) -> Self {
        Ledger {
            installments: state.installments.values().collect(),
            allocated: Vec::new(),
        }
    }
    fn expected(&self, key: &Key) -> Decimal {
        self.installments[*key].amount.amount
    }
    fn outstanding(&self, key: &Key) -> Decimal {
        self.expected(key) - self.allocated[*key]
    }
    fn add(&mut self, key: &Key, amount: Decimal) {
        self.allocated[*key] += amount;
    }
    fn installment(&self, key: &Key) -> &'s Installment {
        self.installments[*key]
    }
    fn seq(&self, key: &Key) -> u32 {
        self.installments[*key].seq
    }
}

/// Each contract's installments: a range of ledger keys (the table is ordered by contract).
fn contract_ranges<'s>(ledger: &Ledger<'s>) -> HashMap<&'s str, std::ops::Range<usize>> {
    let mut out: HashMap<&'s str, std::ops::Range<usize>> =
        HashMap::with_capacity(ledger.installments.len() / 2);
    let mut start = 0;
    for i in 1..=ledger.installments.len() {
        if i == ledger.installments.len()
            || ledger.installments[i].contract_no != ledger.installments[start].contract_no
        {
            out.insert(ledger.installments[start].contract_no.as_str(), start..i);
            start = i;
        }
    }
    out
}

/// The contract numbers and installment hints of each text, in order; spread over the
/// machine's cores for large inputs.
pub fn read_references(finder: &ContractRefFinder, texts: &[&str]) -> Vec<(Vec<String>, Vec<u32>)> {
    let read =
        |finder: &ContractRefFinder, t: &&str| (finder.contract_numbers(t), finder.installments(t));
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if threads == 1 || texts.len() < 10_000 {
        return texts.iter().map(|t| read(finder, t)).collect();
    }
    let chunk = texts.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = texts
            .chunks(chunk)
            .map(|part| {
                // Each thread its own regex caches: shared ones contend on a lock.
                let finder = finder.clone();
                s.spawn(move || part.iter().map(|t| read(&finder, t)).collect::<Vec<_>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("reference reader"))
            .collect()
    })
}

/// The exact-reference pass on its own: credits whose text names one contract and its
/// installments and whose amount equals their total within the tolerance. Returns how many
/// and how much. (The full matcher runs this first; this is the part comparable with a SQL
/// join, and what the benchmark measures.)
pub fn exact_reference_pass(
    state: &LiveState,
    settings: &MatchSettings,
    through: Option<NaiveDate>,
) -> (usize, Decimal) {
    // The installment index (the join's build side) and the credits are gathered at once.
    let (ledger, credits) = std::thread::scope(|s| {
        let index = s.spawn(|| Ledger::without_payments(state));
        let credits: Vec<&crate::state::BankRow> = state
            .bank
            .values()
            .filter(|b| {
                b.tx.direction == Direction::Credit && !b.tx.reversal && b.reversed_by.is_none()
            })
            .filter(|b| through.is_none_or(|d| b.tx.booking_date <= d))
            .collect();
        (index.join().expect("installment index"), credits)
    });
    let by_contract = contract_ranges(&ledger);
    // Each core reads and joins its share of the credits; only the sums come back.
    let pass = |part: &[&crate::state::BankRow], finder: &ContractRefFinder| {
        let mut count = 0usize;
        let mut total = Decimal::ZERO;
        for credit in part {
            let text = credit.tx.remittance.as_str();
            let refs = finder.contract_numbers(text);
            let [contract] = refs.as_slice() else {
                continue;
            };
            let Some(range) = by_contract.get(contract.as_str()) else {
                continue;
            };
            let hints = finder.installments(text);
            if hints.is_empty() {
                continue;
            }
            let mut expected = Decimal::ZERO;
            for seq in &hints {
                match range.clone().find(|k| ledger.seq(k) == *seq) {
                    Some(k) => expected += ledger.expected(&k),
                    None => {
                        expected = Decimal::MIN;
                        break;
                    }
                }
            }
            if (credit.tx.amount.amount - expected).abs() <= settings.tolerance {
                count += 1;
                total += credit.tx.amount.amount;
            }
        }
        (count, total)
    };
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if threads == 1 || credits.len() < 10_000 {
        return pass(&credits, settings.finder);
    }
    let chunk = credits.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = credits
            .chunks(chunk)
            .map(|part| {
                let finder = settings.finder.clone();
                s.spawn(move || pass(part, &finder))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("exact pass worker"))
            .fold((0, Decimal::ZERO), |a, b| (a.0 + b.0, a.1 + b.1))
    })
}

/// Matches every credit booked on or before `through` (all credits when `None`).
pub fn match_credits(
    state: &LiveState,
    settings: &MatchSettings,
    through: Option<NaiveDate>,
) -> Matches {
    let tol = settings.tolerance;
    let payable = |contract_no: &str| {
        state
            .contracts
            .get(contract_no)
            .is_some_and(|c| c.status != ContractStatus::Cancelled)
    };
    let mut ledger = Ledger::new(state);
    let by_contract = contract_ranges(&ledger);
    let mut by_customer: HashMap<&str, Vec<Key>> = HashMap::new();
    for (k, inst) in ledger.installments.iter().enumerate() {
        if payable(&inst.contract_no) {
            by_customer
                .entry(inst.customer_id.as_str())
                .or_default()
                .push(k);
        }
    }
    for keys in by_customer.values_mut() {
        // Oldest due first (unknown due dates last); keys already follow (contract, seq).
        keys.sort_by_key(|k| {
            let due = ledger.installments[*k].due_date;
            (due.is_none(), due, *k)
        });
    }
    let payers = PayerIndex::new(state.customers.values());

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

    // What each remittance text names: the costly part, done once per credit, in parallel.
    let texts: Vec<&str> = credits.iter().map(|c| c.tx.remittance.as_str()).collect();
    let named = read_references(settings.finder, &texts);

    let mut matches = Matches::new();
    for (credit, (contract_refs, hints)) in credits.into_iter().zip(named) {
        let tx = &credit.tx;
        let amount = tx.amount.amount;
        let manual = state.manual.get(&tx.bank_ref);
        if let Some(m) = manual.filter(|m| !m.allocations.is_empty()) {
            let allocations = m
                .allocations
                .iter()
                .filter_map(|a| {
                    let range = by_contract.get(a.contract_no.as_str())?;
                    range
                        .clone()
                        .find(|k| ledger.seq(k) == a.seq)
                        .map(|k| (k, a))
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|(k, a)| {
                    ledger.add(&k, a.amount);
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
        let same_currency = |k: &Key| ledger.installment(k).amount.currency == tx.amount.currency;
        let refs: Vec<String> = contract_refs
            .into_iter()
            .filter(|c| payable(c) && by_contract.contains_key(c.as_str()))
            .collect();
        let placed: Vec<(Key, Decimal, MatchRule, u8, String)> = if !refs.is_empty() {
            let candidates: Vec<Key> = refs
                .iter()
                .flat_map(|c| by_contract[c.as_str()].clone())
                .filter(same_currency)
                .collect();
            let hinted: Vec<Key> = if refs.len() == 1 {
                candidates
                    .iter()
                    .filter(|k| hints.contains(&ledger.seq(k)))
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
            let payer = payers.identify(
                tx.counterparty_account.as_deref(),
                tx.counterparty_name.as_deref(),
            );
            match payer.and_then(|(c, how)| by_customer.get(c).map(|keys| (c, how, keys))) {
                Some((customer, how, keys)) => {
                    // Without a contract number, only installments due around the booking date qualify.
                    let in_window = |k: &Key| {
                        ledger.installment(k).due_date.is_some_and(|due| {
                            tx.booking_date >= due - chrono::Duration::days(PAYER_WINDOW_BEFORE_DUE)
                                && tx.booking_date
                                    <= due + chrono::Duration::days(PAYER_WINDOW_AFTER_DUE)
                        })
                    };
                    let open: Vec<Key> = keys
                        .iter()
                        .filter(|k| same_currency(k) && ledger.outstanding(k) > tol && in_window(k))
                        .cloned()
                        .collect();
                    let payer_name = tx.counterparty_name.as_deref().unwrap_or("");
                    let (rule, confidence, why) = match &how {
                        PayerMatch::Account { account } => (
                            MatchRule::PayerAccount,
                            95u8,
                            format!("payer account {account} belongs to customer {customer}"),
                        ),
                        PayerMatch::Name { .. } => (
                            MatchRule::PayerName,
                            90u8,
                            format!(
                                "payer \"{payer_name}\" is customer {customer} (same company name)"
                            ),
                        ),
                        PayerMatch::SimilarName {
                            similarity,
                            customer_name,
                        } => (
                            MatchRule::SimilarPayerName,
                            ((50.0 + 40.0 * similarity) as u8).min(85),
                            format!(
                                "payer \"{payer_name}\" resembles customer {customer} \"{customer_name}\" ({:.0}% similar)",
                                similarity * 100.0
                            ),
                        ),
                    };
                    place_by_amount(&ledger, &open, amount, tol)
                        .map(|(keys, combined)| {
                            let what = describe(&ledger, &keys);
                            let confidence = if combined { confidence.saturating_sub(5) } else { confidence };
                            split_exact(&ledger, &keys, amount)
                                .into_iter()
                                .map(|(k, a)| {
                                    let explanation = format!("{why}; the amount {amount} equals the open {what}, due around {}", tx.booking_date);
                                    (k, a, rule, confidence, explanation)
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
                .filter(|p| {
                    let i = ledger.installment(&p.0);
                    !m.rejected
                        .iter()
                        .any(|(c, s)| *c == i.contract_no && *s == i.seq)
                })
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
                    contract_no: ledger.installment(&k).contract_no.clone(),
                    seq: ledger.seq(&k),
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
