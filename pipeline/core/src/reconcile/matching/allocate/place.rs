//! How a decided credit is laid on its installments: named ones in full or in part, a
//! spread oldest due first, a set summing to the amount.

use rust_decimal::Decimal;

use super::claims::{Book, Placed};
use crate::derived::MatchRule;

/// A credit that names its installments pays exactly those: in full, as a second payment
/// of installments already paid, or in part (oldest due first, any excess on the last).
pub(super) fn place_named(
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
pub(super) fn spread(
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
pub(super) fn fill(
    book: &mut Book,
    c: usize,
    targets: &[usize],
    amount: Decimal,
) -> Vec<(usize, Decimal)> {
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
pub(super) fn split(
    book: &mut Book,
    c: usize,
    targets: &[usize],
    amount: Decimal,
) -> Vec<(usize, Decimal)> {
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
pub(super) fn combination(book: &Book, open: &[usize], amount: Decimal) -> Option<Vec<usize>> {
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

pub(super) fn first_subset(
    book: &Book,
    pool: &[usize],
    size: usize,
    amount: Decimal,
) -> Option<Vec<usize>> {
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
