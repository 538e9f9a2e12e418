//! Where a credit goes once the contract or customer is known: the named installments,
//! the one open installment whose amount fits, the smallest set that sums to it, or the
//! oldest open ones first.

use rust_decimal::Decimal;

use super::{Key, Ledger, MatchRule};

pub(super) fn describe(ledger: &Ledger, keys: &[Key]) -> String {
    let name = |k: &Key| (ledger.installment(k).contract_no.as_str(), ledger.seq(k));
    match keys {
        [k] => format!("installment {} of {}", name(k).1, name(k).0),
        _ => format!(
            "installments {}",
            keys.iter()
                .map(|k| format!("{}#{}", name(k).0, name(k).1))
                .collect::<Vec<_>>()
                .join(" + ")
        ),
    }
}

/// Gives each installment its outstanding amount; the last takes what is left (so a fee
/// within tolerance shows on it, and the parts sum to the credit exactly).
pub(super) fn split_exact(ledger: &Ledger, keys: &[Key], amount: Decimal) -> Vec<(Key, Decimal)> {
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
            (*k, a)
        })
        .collect()
}

/// One open installment whose outstanding amount equals the credit, else the smallest set of
/// up to 5 (oldest first). The bool says whether several were combined.
pub(super) fn place_by_amount(
    ledger: &Ledger,
    open: &[Key],
    amount: Decimal,
    tol: Decimal,
) -> Option<(Vec<Key>, bool)> {
    if let Some(k) = open
        .iter()
        .find(|k| (ledger.outstanding(k) - amount).abs() <= tol)
    {
        return Some((vec![*k], false));
    }
    let pool: Vec<(Key, Decimal)> = open
        .iter()
        .take(20)
        .map(|k| (*k, ledger.outstanding(k)))
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
            return Some(idx.iter().map(|&i| pool[i].0).collect());
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

pub(super) type Placed = Vec<(Key, Decimal, MatchRule, u8, String)>;

/// The text names the installments: pay exactly those.
pub(super) fn place_on_targets(
    ledger: &Ledger,
    targets: &[Key],
    amount: Decimal,
    tol: Decimal,
    refs: &str,
) -> Placed {
    let what = describe(ledger, targets);
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
    let expected: Decimal = targets.iter().map(|k| ledger.expected(k)).sum();
    if outstanding <= tol && (amount - expected).abs() <= tol {
        let mut left = amount;
        return targets
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let a = if i + 1 == targets.len() { left } else { ledger.expected(k) };
                left -= a;
                (
                    *k,
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
pub(super) fn place_by_reference(
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
        let what = describe(ledger, &keys);
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
            .find(|k| (ledger.expected(k) - amount).abs() <= tol)
            .unwrap_or_else(|| candidates.last().expect("non-empty"));
        let what = describe(ledger, std::slice::from_ref(target));
        return vec![(
            *target,
            amount,
            MatchRule::ContractReferenceAlreadyPaid,
            95,
            format!(
                "remittance names {refs}, whose installments are all paid: {amount} is applied to {what} as an excess payment"
            ),
        )];
    }
    let what = describe(ledger, &open);
    fifo(ledger, &open, amount, refs, &what)
}

/// Pays installments oldest first; what is left after the last one stays on it as excess.
pub(super) fn fifo(
    ledger: &Ledger,
    keys: &[Key],
    amount: Decimal,
    refs: &str,
    what: &str,
) -> Placed {
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
            *k,
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
