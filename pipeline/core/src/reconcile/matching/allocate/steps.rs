//! The allocation's steps, strongest evidence first (the module above lists them).

use super::super::MatchSettings;
use super::super::evidence::UnitCredit;
use super::claims::{Book, Claim, Placed, Tier, empty_claim};
use super::place::{combination, place_named, split, spread};
use super::{DUPLICATE_DAYS, UNDECIDED};
use crate::derived::MatchRule;

pub(super) fn manual(book: &mut Book, claims: &mut [Option<Claim>], credits: &[UnitCredit]) {
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
}

pub(super) fn named(book: &mut Book, claims: &mut [Option<Claim>], credits: &[UnitCredit]) {
    let amount = |c: usize| credits[c].row.tx.amount.amount;
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
        claim.placed = place_named(book, c, &targets, amount(c), &claim.why);
    }
}

pub(super) fn equal_amount(
    book: &mut Book,
    claims: &mut [Option<Claim>],
    credits: &[UnitCredit],
    settings: &MatchSettings,
) {
    let tol = settings.tolerance;
    let amount = |c: usize| credits[c].row.tx.amount.amount;
    let booking = |c: usize| credits[c].row.tx.booking_date;
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
}

pub(super) fn sets(book: &mut Book, claims: &mut [Option<Claim>], credits: &[UnitCredit]) {
    let amount = |c: usize| credits[c].row.tx.amount.amount;
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
        if let Some(set) = combination(book, &open, amount(c)) {
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
            claim.placed = split(book, c, &set, amount(c))
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
}

pub(super) fn second_payments(
    book: &mut Book,
    claims: &mut [Option<Claim>],
    credits: &[UnitCredit],
    settings: &MatchSettings,
) {
    let tol = settings.tolerance;
    let amount = |c: usize| credits[c].row.tx.amount.amount;
    let booking = |c: usize| credits[c].row.tx.booking_date;
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
}

pub(super) fn spread_the_rest(
    book: &mut Book,
    claims: &mut [Option<Claim>],
    credits: &[UnitCredit],
) {
    let amount = |c: usize| credits[c].row.tx.amount.amount;
    // 5. What remains of credits naming a contract: oldest due first.
    for (c, slot) in claims.iter_mut().enumerate() {
        let Some(claim) = slot
            .as_mut()
            .filter(|k| k.placed.is_empty() && k.early.is_none() && k.tier == Tier::Contract)
        else {
            continue;
        };
        claim.placed = spread(book, c, &claim.candidates, amount(c), &claim.why);
    }
}

pub(super) fn early_payments(
    book: &mut Book,
    claims: &mut [Option<Claim>],
    credits: &[UnitCredit],
    settings: &MatchSettings,
) {
    let tol = settings.tolerance;
    let amount = |c: usize| credits[c].row.tx.amount.amount;
    let booking = |c: usize| credits[c].row.tx.booking_date;
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
                claim.placed = spread(book, c, &claim.candidates, amount(c), &claim.why);
            }
            None => {}
        }
    }
}

pub(super) fn weak_evidence(
    book: &mut Book,
    claims: &mut [Option<Claim>],
    credits: &[UnitCredit],
    settings: &MatchSettings,
) {
    let tol = settings.tolerance;
    let amount = |c: usize| credits[c].row.tx.amount.amount;
    let booking = |c: usize| credits[c].row.tx.booking_date;
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
            None => match combination(book, &open, amount(c)) {
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
}
