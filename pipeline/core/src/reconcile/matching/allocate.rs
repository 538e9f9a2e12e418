//! The allocation of one unit's credits to its installments, by strength of evidence and
//! never by the order credits were booked or arrived in:
//!
//! 0. a clerk's decision: the credit goes exactly where the clerk put it;
//! 1. credits that name their installments take them;
//! 2. a credit whose amount equals one open installment's remaining amount takes it, the
//!    installment due nearest the booking date first; one due well after the booking date
//!    (a prepayment) waits until the stronger evidence below has spoken;
//! 3. a credit that equals the amount of a set of open installments pays them together;
//! 4. a credit equal to an installment already paid in full, with no open installment of
//!    that amount due near its booking date, is that installment's duplicate;
//! 5. what remains of credits naming a contract is spread over its open installments,
//!    oldest due first;
//! 6. the prepayments that waited take the open installment of their amount due nearest;
//! 7. weak evidence (a payer whose name only resembles a customer's, a contract number one
//!    digit off) gives suggestions that take nothing from anyone.
//!
//! Within a step, a credit chooses the installment due nearest its booking date; of credits
//! of equal evidence wanting the same installment, the one booked first (then the lower bank
//! reference) takes it: all properties of the data. Where the evidence
//! cannot tell two installments apart, or a credit could be a prepayment or a duplicate,
//! the explanation says so and the confidence drops below the auto-confirm threshold.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::evidence::{Unit, UnitCredit};
use super::payer::PayerMatch;
use super::{Allocation, MatchRule, MatchSettings};

/// A payment this many days or less before the due date is on time, not a prepayment.
pub const NEAR_DAYS: i64 = 15;
/// A second payment equal to a paid installment is a possible duplicate when it comes
/// within this many days of the payment that paid it.
pub const DUPLICATE_DAYS: i64 = 20;
/// A credit traced by its payer pays installments due at most this many days after its
/// booking...
const PAYER_WINDOW_BEFORE_DUE: i64 = 45;
/// ...and at most this many days before it.
const PAYER_WINDOW_AFTER_DUE: i64 = 90;
/// Where the evidence cannot decide: below the default auto-confirm threshold (90).
const UNDECIDED: u8 = 80;
/// A contract number one digit off: a suggestion at most.
const NEAR_MISS: u8 = 75;

/// How strong the evidence tying a credit to its candidates is.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Tier {
    /// The text names a contract.
    Contract,
    /// The payer's account or exact company name is the customer's.
    Payer,
    /// Only a similar name or a contract number one digit off.
    Weak,
}

/// What the allocation knows of a credit.
struct Claim {
    tier: Tier,
    /// Candidate installments (indexes into the unit's installments).
    candidates: Vec<usize>,
    /// Named installments, when the text names one contract and installments of it.
    named: Vec<usize>,
    /// The evidence in words, the start of every explanation.
    why: String,
    /// Confidence of the evidence itself (payer traces are below 100).
    confidence: u8,
    rule: MatchRule,
    /// Where it went, once decided.
    placed: Vec<Placed>,
    /// An open installment of its amount due well after its booking (a possible prepayment).
    early: Option<usize>,
}

struct Placed {
    inst: usize,
    amount: Decimal,
    rule: MatchRule,
    confidence: u8,
    explanation: String,
    duplicate: bool,
}

/// The unit's installments and what each has been paid so far.
struct Book<'u> {
    inst: Vec<&'u crate::reconcile::terms::Installment>,
    payable: Vec<bool>,
    remaining: Vec<Decimal>,
    /// The credits (indexes) that paid each installment, for explanations and duplicates.
    paid_by: Vec<Vec<usize>>,
    tol: Decimal,
}

impl Book<'_> {
    fn expected(&self, i: usize) -> Decimal {
        self.inst[i].amount.amount
    }
    fn open(&self, i: usize) -> bool {
        self.remaining[i] > self.tol
    }
    fn due(&self, i: usize) -> Option<NaiveDate> {
        self.inst[i].due_date
    }
    /// Oldest due first, unknown due dates last, then by contract and sequence.
    fn due_order(&self, i: usize) -> (bool, Option<NaiveDate>, &str, u32) {
        let inst = self.inst[i];
        (
            inst.due_date.is_none(),
            inst.due_date,
            inst.contract_no.as_str(),
            inst.seq,
        )
    }
    fn name(&self, i: usize) -> String {
        let inst = self.inst[i];
        match inst.due_date {
            Some(d) => format!("installment {} of {} (due {d})", inst.seq, inst.contract_no),
            None => format!(
                "installment {} of {} (due date not fixed yet)",
                inst.seq, inst.contract_no
            ),
        }
    }
    fn names(&self, set: &[usize]) -> String {
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
    fn distance(&self, i: usize, booking: NaiveDate) -> i64 {
        self.due(i)
            .map_or(i64::MAX / 4, |d| (booking - d).num_days().abs())
    }
    /// Due well after the booking date, or not yet fixed: paying it now is paying early.
    fn far_ahead(&self, i: usize, booking: NaiveDate) -> bool {
        self.due(i)
            .is_none_or(|d| (d - booking).num_days() > NEAR_DAYS)
    }
    fn pay(&mut self, i: usize, amount: Decimal, credit: usize) {
        self.remaining[i] -= amount;
        if !self.open(i) && !self.paid_by[i].contains(&credit) {
            self.paid_by[i].push(credit);
        }
    }
}

/// Allocates the unit's credits; returns each placed credit's allocations.
pub(super) fn allocate(unit: &Unit, settings: &MatchSettings) -> Vec<(String, Vec<Allocation>)> {
    let tol = settings.tolerance;
    let mut book = Book {
        inst: unit.installments.clone(),
        payable: unit.payable.clone(),
        remaining: unit.installments.iter().map(|i| i.amount.amount).collect(),
        paid_by: vec![Vec::new(); unit.installments.len()],
        tol,
    };
    let credits = &unit.credits;
    let amount = |c: usize| credits[c].row.tx.amount.amount;
    let booking = |c: usize| credits[c].row.tx.booking_date;
    let mut claims: Vec<Option<Claim>> = credits.iter().map(|c| claim(c, &book)).collect();

    // 0. A clerk's decision outranks everything.
    for (c, credit) in credits.iter().enumerate() {
        let Some(m) = credit.manual.filter(|m| !m.allocations.is_empty()) else {
            continue;
        };
        let mut placed = Vec::new();
        for a in &m.allocations {
            let Some(i) = (0..book.inst.len())
                .find(|&i| book.inst[i].contract_no == a.contract_no && book.inst[i].seq == a.seq)
            else {
                continue;
            };
            book.pay(i, a.amount, c);
            let note = if a.note.is_empty() {
                String::new()
            } else {
                format!(": {}", a.note)
            };
            placed.push(Placed {
                inst: i,
                amount: a.amount,
                rule: MatchRule::Manual,
                confidence: 100,
                explanation: format!(
                    "matched by hand by {} on {}{note}",
                    a.by,
                    a.at.format("%Y-%m-%d")
                ),
                duplicate: false,
            });
        }
        if !placed.is_empty() {
            claims[c] = Some(Claim {
                placed,
                ..empty_claim()
            });
        }
    }

    // 1. Credits that name their installments take them.
    for (c, slot) in claims.iter_mut().enumerate() {
        let Some(claim) = slot.as_mut().filter(|k| k.placed.is_empty()) else {
            continue;
        };
        if claim.named.is_empty() {
            continue;
        }
        let mut targets = claim.named.clone();
        targets.sort_by(|a, b| book.due_order(*a).cmp(&book.due_order(*b)));
        claim.placed = place_named(&mut book, c, &targets, amount(c), &claim.why);
    }

    // 2. A credit equal to one open installment's remaining amount takes it, the one due
    //    nearest its booking; installments due well after the booking wait for stronger
    //    evidence. Of two credits that want the same installment, the one booked first pays
    //    it: the later one is the second payment.
    let mut order: Vec<usize> = (0..credits.len())
        .filter(|&c| {
            claims[c]
                .as_ref()
                .is_some_and(|k| k.placed.is_empty() && k.tier < Tier::Weak)
        })
        .collect();
    order.sort_by_key(|&c| claims[c].as_ref().map(|k| k.tier));
    let mut equal_amount: Vec<(usize, usize)> = Vec::new();
    for c in order {
        let claim = claims[c].as_mut().expect("filtered above");
        let nearest = claim
            .candidates
            .iter()
            .copied()
            .filter(|&i| book.open(i) && (book.remaining[i] - amount(c)).abs() <= tol)
            .min_by(|a, b| {
                (book.distance(*a, booking(c)), book.due_order(*a))
                    .cmp(&(book.distance(*b, booking(c)), book.due_order(*b)))
            });
        let Some(i) = nearest else { continue };
        if book.far_ahead(i, booking(c)) {
            claim.early = Some(i);
            continue;
        }
        book.pay(i, amount(c), c);
        equal_amount.push((c, i));
        claim.placed.push(Placed {
            inst: i,
            amount: amount(c),
            rule: claim.rule,
            confidence: claim.confidence,
            explanation: format!(
                "{}; the amount {} equals the open {}",
                claim.why,
                amount(c),
                book.name(i)
            ),
            duplicate: false,
        });
    }
    // Two installments alike in amount and due date cannot be told apart: say so when one
    // of them is left open, since then it matters which one was paid.
    for (c, i) in equal_amount {
        let claim = claims[c].as_mut().expect("placed");
        let twin = claim.candidates.iter().copied().find(|&j| {
            j != i
                && book.inst[j].contract_no == book.inst[i].contract_no
                && book.due(j) == book.due(i)
                && book.expected(j) == book.expected(i)
                && book.open(j)
        });
        if let Some(j) = twin {
            let p = &mut claim.placed[0];
            p.confidence = p.confidence.min(UNDECIDED);
            p.explanation.push_str(&format!(
                "; installment {} is alike (same amount, same due date), so it could pay either",
                book.inst[j].seq
            ));
        }
    }

    // 3. The amount of a set of open installments.
    for (c, slot) in claims.iter_mut().enumerate() {
        let Some(claim) = slot
            .as_mut()
            .filter(|k| k.placed.is_empty() && k.early.is_none() && k.tier < Tier::Weak)
        else {
            continue;
        };
        let open: Vec<usize> = claim
            .candidates
            .iter()
            .copied()
            .filter(|&i| book.open(i))
            .collect();
        if let Some(set) = combination(&book, &open, amount(c)) {
            let names = book.names(&set);
            let (rule, confidence) = match claim.tier {
                Tier::Contract => (MatchRule::ContractReferenceCombined, claim.confidence),
                _ => (claim.rule, claim.confidence.saturating_sub(5)),
            };
            let explanation = format!(
                "{}; the amount {} equals the open {names} together",
                claim.why,
                amount(c)
            );
            claim.placed = split(&mut book, c, &set, amount(c))
                .into_iter()
                .map(|(inst, a)| Placed {
                    inst,
                    amount: a,
                    rule,
                    confidence,
                    explanation: explanation.clone(),
                    duplicate: false,
                })
                .collect();
        }
    }

    // 4. A second payment of an installment already paid in full.
    for (c, slot) in claims.iter_mut().enumerate() {
        let Some(claim) = slot
            .as_mut()
            .filter(|k| k.placed.is_empty() && k.tier < Tier::Weak)
        else {
            continue;
        };
        let early = claim.early;
        let paid = claim
            .candidates
            .iter()
            .copied()
            .filter(|&i| !book.open(i) && (book.expected(i) - amount(c)).abs() <= tol)
            .filter(|&i| {
                // Beside an open installment of the amount, only a payment soon after the
                // first one looks like a duplicate; otherwise it is paying early.
                early.is_none()
                    || book.paid_by[i].iter().any(|&d| {
                        d != c && (booking(d) - booking(c)).num_days().abs() <= DUPLICATE_DAYS
                    })
            })
            .min_by(|a, b| {
                (book.distance(*a, booking(c)), book.due_order(*a))
                    .cmp(&(book.distance(*b, booking(c)), book.due_order(*b)))
            });
        let Some(p) = paid else { continue };
        let first = book.paid_by[p]
            .iter()
            .find(|&&d| d != c)
            .map(|&d| {
                format!(
                    " by {} on {}",
                    credits[d].row.tx.bank_ref, credits[d].row.tx.booking_date
                )
            })
            .unwrap_or_default();
        let mut explanation = format!(
            "{}; the amount {} equals {}, already paid in full{first}: a second payment",
            claim.why,
            amount(c),
            book.name(p)
        );
        let mut confidence = claim.confidence.min(95);
        if let Some(e) = early {
            confidence = confidence.min(UNDECIDED);
            explanation.push_str(&format!(", or an early payment of {}", book.name(e)));
        }
        let rule = match claim.tier {
            Tier::Contract => MatchRule::ContractReferenceAlreadyPaid,
            _ => claim.rule,
        };
        book.pay(p, amount(c), c);
        claim.placed.push(Placed {
            inst: p,
            amount: amount(c),
            rule,
            confidence,
            explanation,
            duplicate: true,
        });
    }

    // 5. What remains of credits naming a contract: oldest due first.
    for (c, slot) in claims.iter_mut().enumerate() {
        let Some(claim) = slot
            .as_mut()
            .filter(|k| k.placed.is_empty() && k.early.is_none() && k.tier == Tier::Contract)
        else {
            continue;
        };
        claim.placed = spread(&mut book, c, &claim.candidates, amount(c), &claim.why);
    }

    // 6. The payments that looked early: a nearer installment that a partial payment has
    //    since left short by exactly this amount goes first, else the early one.
    for (c, slot) in claims.iter_mut().enumerate() {
        let Some(claim) = slot
            .as_mut()
            .filter(|k| k.placed.is_empty() && k.early.is_some())
        else {
            continue;
        };
        let target = claim
            .candidates
            .iter()
            .copied()
            .filter(|&i| book.open(i) && (book.remaining[i] - amount(c)).abs() <= tol)
            .min_by(|a, b| {
                (book.distance(*a, booking(c)), book.due_order(*a))
                    .cmp(&(book.distance(*b, booking(c)), book.due_order(*b)))
            });
        match target {
            Some(i) => {
                let how = match book.due(i) {
                    Some(d) if d > booking(c) => {
                        format!(
                            ", paid {} days before it is due",
                            (d - booking(c)).num_days()
                        )
                    }
                    None => ", paid before its due date is fixed".to_string(),
                    _ => String::new(),
                };
                let explanation = format!(
                    "{}; the amount {} equals the open {}{how}",
                    claim.why,
                    amount(c),
                    book.name(i)
                );
                book.pay(i, amount(c), c);
                claim.placed.push(Placed {
                    inst: i,
                    amount: amount(c),
                    rule: claim.rule,
                    confidence: claim.confidence,
                    explanation,
                    duplicate: false,
                });
            }
            None if claim.tier == Tier::Contract => {
                claim.placed = spread(&mut book, c, &claim.candidates, amount(c), &claim.why);
            }
            None => {}
        }
    }

    // 7. Weak evidence: suggestions only, which take nothing from anyone.
    for (c, slot) in claims.iter_mut().enumerate() {
        let Some(claim) = slot
            .as_mut()
            .filter(|k| k.placed.is_empty() && k.tier == Tier::Weak)
        else {
            continue;
        };
        let open: Vec<usize> = claim
            .candidates
            .iter()
            .copied()
            .filter(|&i| book.open(i))
            .collect();
        let single = open
            .iter()
            .copied()
            .filter(|&i| (book.remaining[i] - amount(c)).abs() <= tol)
            .min_by(|a, b| {
                (book.distance(*a, booking(c)), book.due_order(*a))
                    .cmp(&(book.distance(*b, booking(c)), book.due_order(*b)))
            });
        let (set, confidence) = match single {
            Some(i) => (vec![i], claim.confidence),
            None => match combination(&book, &open, amount(c)) {
                Some(set) => (set, claim.confidence.saturating_sub(5)),
                None => continue,
            },
        };
        let explanation = format!(
            "{}; the amount {} equals the open {}",
            claim.why,
            amount(c),
            book.names(&set)
        );
        let mut left = amount(c);
        let last = set.len() - 1;
        claim.placed = set
            .iter()
            .enumerate()
            .map(|(n, &i)| {
                let a = if n == last {
                    left
                } else {
                    book.remaining[i].min(left)
                };
                left -= a;
                Placed {
                    inst: i,
                    amount: a,
                    rule: claim.rule,
                    confidence: confidence.min(settings.auto_confirm.saturating_sub(1)),
                    explanation: explanation.clone(),
                    duplicate: false,
                }
            })
            .collect();
    }

    claims
        .into_iter()
        .enumerate()
        .filter_map(|(c, claim)| {
            let claim = claim?;
            if claim.placed.is_empty() {
                return None;
            }
            let bank_ref = &credits[c].row.tx.bank_ref;
            Some((
                bank_ref.clone(),
                claim
                    .placed
                    .into_iter()
                    .map(|p| Allocation {
                        bank_ref: bank_ref.clone(),
                        contract_no: book.inst[p.inst].contract_no.clone(),
                        seq: book.inst[p.inst].seq,
                        amount: p.amount,
                        rule: p.rule,
                        confidence: p.confidence,
                        explanation: p.explanation,
                        confirmed: p.confidence >= settings.auto_confirm,
                        duplicate: p.duplicate,
                    })
                    .collect(),
            ))
        })
        .collect()
}

fn empty_claim() -> Claim {
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
fn claim(credit: &UnitCredit, book: &Book) -> Option<Claim> {
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

/// A credit that names its installments pays exactly those: in full, as a second payment
/// of installments already paid, or in part (oldest due first, any excess on the last).
fn place_named(
    book: &mut Book,
    c: usize,
    targets: &[usize],
    amount: Decimal,
    why: &str,
) -> Vec<Placed> {
    let tol = book.tol;
    let outstanding: Decimal = targets
        .iter()
        .map(|&i| book.remaining[i].max(Decimal::ZERO))
        .sum();
    let expected: Decimal = targets.iter().map(|&i| book.expected(i)).sum();
    let placed = |parts: Vec<(usize, Decimal)>, confidence, explanation: String, duplicate| {
        parts
            .into_iter()
            .map(|(inst, a)| Placed {
                inst,
                amount: a,
                rule: MatchRule::InstallmentReference,
                confidence,
                explanation: explanation.clone(),
                duplicate,
            })
            .collect::<Vec<_>>()
    };
    if outstanding > tol && (amount - outstanding).abs() <= tol {
        let parts = split(book, c, targets, amount);
        return placed(
            parts,
            100,
            format!("{why}; the amount {amount} pays it in full"),
            false,
        );
    }
    if outstanding <= tol && (amount - expected).abs() <= tol {
        let mut left = amount;
        let parts: Vec<(usize, Decimal)> = targets
            .iter()
            .enumerate()
            .map(|(n, &i)| {
                let a = if n + 1 == targets.len() {
                    left
                } else {
                    book.expected(i)
                };
                left -= a;
                (i, a)
            })
            .collect();
        for (i, a) in &parts {
            book.pay(*i, *a, c);
        }
        return placed(
            parts,
            95,
            format!("{why}, which was already paid in full: {amount} is a second payment"),
            true,
        );
    }
    let parts = fill(book, c, targets, amount);
    let verdict = if amount < outstanding {
        format!("{amount} is less than the {outstanding} still due")
    } else {
        format!("{amount} is more than the {outstanding} still due")
    };
    placed(parts, 100, format!("{why}; {verdict}"), false)
}

/// Spreads a credit naming a contract over its open installments, oldest due first;
/// with nothing open, all of it is excess on the installment due last.
fn spread(
    book: &mut Book,
    c: usize,
    candidates: &[usize],
    amount: Decimal,
    why: &str,
) -> Vec<Placed> {
    let mut open: Vec<usize> = candidates
        .iter()
        .copied()
        .filter(|&i| book.open(i))
        .collect();
    open.sort_by(|a, b| book.due_order(*a).cmp(&book.due_order(*b)));
    let targets = if open.is_empty() {
        match candidates
            .iter()
            .copied()
            .max_by(|a, b| book.due_order(*a).cmp(&book.due_order(*b)))
        {
            Some(last) => vec![last],
            None => return Vec::new(),
        }
    } else {
        open
    };
    let outstanding: Decimal = targets
        .iter()
        .map(|&i| book.remaining[i].max(Decimal::ZERO))
        .sum();
    let parts = fill(book, c, &targets, amount);
    let paid: Vec<usize> = parts.iter().map(|p| p.0).collect();
    let verdict = if outstanding <= book.tol {
        format!(
            "every installment is paid: {amount} is money beyond the contract, kept on {}",
            book.names(&paid)
        )
    } else if amount < outstanding {
        format!(
            "no open installment equals {amount}: it pays {} oldest due first, less than the {outstanding} still due",
            book.names(&paid)
        )
    } else {
        format!(
            "no open installment equals {amount}: it pays {} oldest due first, more than the {outstanding} still due",
            book.names(&paid)
        )
    };
    let explanation = format!("{why}; {verdict}");
    parts
        .into_iter()
        .map(|(inst, a)| Placed {
            inst,
            amount: a,
            rule: MatchRule::ContractReferenceAmountDiffers,
            confidence: 90,
            explanation: explanation.clone(),
            duplicate: false,
        })
        .collect()
}

/// Pays the targets in order, each what it still needs; the last takes what is left.
fn fill(book: &mut Book, c: usize, targets: &[usize], amount: Decimal) -> Vec<(usize, Decimal)> {
    let mut left = amount;
    let mut out = Vec::new();
    for (n, &i) in targets.iter().enumerate() {
        if left.is_zero() {
            break;
        }
        let a = if n + 1 == targets.len() {
            left
        } else {
            book.remaining[i].max(Decimal::ZERO).min(left)
        };
        if a.is_zero() {
            continue;
        }
        left -= a;
        book.pay(i, a, c);
        out.push((i, a));
    }
    out
}

/// Gives each target what it still needs; the last takes the rest (so a fee within the
/// tolerance shows on it, and the parts sum to the credit exactly).
fn split(book: &mut Book, c: usize, targets: &[usize], amount: Decimal) -> Vec<(usize, Decimal)> {
    let mut left = amount;
    let parts: Vec<(usize, Decimal)> = targets
        .iter()
        .enumerate()
        .map(|(n, &i)| {
            let a = if n + 1 == targets.len() {
                left
            } else {
                book.remaining[i].max(Decimal::ZERO).min(left)
            };
            left -= a;
            (i, a)
        })
        .collect();
    for (i, a) in &parts {
        book.pay(*i, *a, c);
    }
    parts
}

/// The smallest set of 2 to 5 open installments whose remaining amounts sum to the credit,
/// trying the oldest due first.
fn combination(book: &Book, open: &[usize], amount: Decimal) -> Option<Vec<usize>> {
    let mut pool: Vec<usize> = open.to_vec();
    pool.sort_by(|a, b| book.due_order(*a).cmp(&book.due_order(*b)));
    pool.truncate(20);
    for size in 2..=5.min(pool.len()) {
        if let Some(set) = first_subset(book, &pool, size, amount) {
            return Some(set);
        }
    }
    None
}

fn first_subset(book: &Book, pool: &[usize], size: usize, amount: Decimal) -> Option<Vec<usize>> {
    let mut idx: Vec<usize> = (0..size).collect();
    loop {
        let sum: Decimal = idx.iter().map(|&i| book.remaining[pool[i]]).sum();
        if (sum - amount).abs() <= book.tol {
            return Some(idx.iter().map(|&i| pool[i]).collect());
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
