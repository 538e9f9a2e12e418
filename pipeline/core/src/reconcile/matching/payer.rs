//! Who paid: a credit without a contract number is traced to a customer by the payer's
//! account, by the payer's normalized company name, or (as a suggestion for a clerk only)
//! by a name that is merely similar.

use std::collections::HashMap;

use reconlight_formats::model::Customer;

use crate::reconcile::reference::normalize_company_name;

/// Account numbers compare by their letters and digits only.
pub fn normalize_account(account: &str) -> String {
    account
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_uppercase()
}

/// How a payer was traced to a customer.
#[derive(Clone, Debug, PartialEq)]
pub enum PayerMatch {
    Account {
        account: String,
    },
    Name {
        normalized: String,
    },
    /// Similar, not equal: Dice coefficient of the normalized names' character pairs.
    SimilarName {
        similarity: f64,
        customer_name: String,
    },
}

/// A customer's id, name and the character pairs of its normalized name.
type IndexedName<'s> = (&'s str, &'s str, Vec<(char, char)>);

/// Indexes of the customers by account, normalized name and name fragments.
pub struct PayerIndex<'s> {
    by_account: HashMap<String, &'s str>,
    /// `None` when two customers share a normalized name: it identifies neither.
    by_name: HashMap<String, Option<&'s str>>,
    names: Vec<IndexedName<'s>>,
    by_bigram: HashMap<(char, char), Vec<usize>>,
}

/// Similar names below this are not suggested.
pub const MIN_SIMILARITY: f64 = 0.6;
/// The best similar name must lead the next one by this much.
pub const SIMILARITY_MARGIN: f64 = 0.1;

fn bigrams(normalized: &str) -> Vec<(char, char)> {
    let chars: Vec<char> = normalized.chars().collect();
    let mut out: Vec<(char, char)> = chars.windows(2).map(|w| (w[0], w[1])).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Dice coefficient of two sorted, deduplicated bigram sets.
fn dice(a: &[(char, char)], b: &[(char, char)]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let (mut i, mut j, mut shared) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                shared += 1;
                i += 1;
                j += 1;
            }
        }
    }
    2.0 * shared as f64 / (a.len() + b.len()) as f64
}

/// How similar two company names are (0..1), after normalization.
pub fn name_similarity(a: &str, b: &str) -> f64 {
    dice(
        &bigrams(&normalize_company_name(a)),
        &bigrams(&normalize_company_name(b)),
    )
}

impl<'s> PayerIndex<'s> {
    pub fn new(customers: impl Iterator<Item = &'s Customer>) -> Self {
        let mut index = PayerIndex {
            by_account: HashMap::new(),
            by_name: HashMap::new(),
            names: Vec::new(),
            by_bigram: HashMap::new(),
        };
        for c in customers {
            if let Some(acct) = c
                .bank_account_no
                .as_deref()
                .map(normalize_account)
                .filter(|a| !a.is_empty())
            {
                index.by_account.insert(acct, c.customer_id.as_str());
            }
            let name = normalize_company_name(&c.name);
            if name.is_empty() {
                continue;
            }
            index
                .by_name
                .entry(name.clone())
                .and_modify(|v| *v = None)
                .or_insert(Some(c.customer_id.as_str()));
            let grams = bigrams(&name);
            for g in &grams {
                index
                    .by_bigram
                    .entry(*g)
                    .or_default()
                    .push(index.names.len());
            }
            index
                .names
                .push((c.customer_id.as_str(), c.name.as_str(), grams));
        }
        index
    }

    /// The customer a payer's account or exact (normalized) name belongs to, without
    /// looking for similar names.
    pub fn identify_exactly(&self, account: Option<&str>, name: Option<&str>) -> Option<&'s str> {
        if let Some(acct) = account.map(normalize_account).filter(|a| !a.is_empty())
            && let Some(c) = self.by_account.get(&acct)
        {
            return Some(c);
        }
        let name = name.map(normalize_company_name).filter(|n| !n.is_empty())?;
        self.by_name.get(&name).copied().flatten()
    }

    /// The customer a payer is, and how that was found.
    pub fn identify(
        &self,
        account: Option<&str>,
        name: Option<&str>,
    ) -> Option<(&'s str, PayerMatch)> {
        if let Some(acct) = account.map(normalize_account).filter(|a| !a.is_empty())
            && let Some(c) = self.by_account.get(&acct)
        {
            return Some((c, PayerMatch::Account { account: acct }));
        }
        let name = name.map(normalize_company_name).filter(|n| !n.is_empty())?;
        if let Some(found) = self.by_name.get(&name) {
            // A shared name identifies nobody, not even by similarity.
            return found.map(|c| (c, PayerMatch::Name { normalized: name }));
        }
        let grams = bigrams(&name);
        let mut shared: HashMap<usize, usize> = HashMap::new();
        for g in &grams {
            for &i in self.by_bigram.get(g).into_iter().flatten() {
                *shared.entry(i).or_default() += 1;
            }
        }
        let mut scored: Vec<(f64, usize)> = shared
            .keys()
            .map(|&i| (dice(&grams, &self.names[i].2), i))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let (best, i) = *scored.first()?;
        let runner_up = scored.get(1).map(|s| s.0).unwrap_or(0.0);
        if best < MIN_SIMILARITY || best - runner_up < SIMILARITY_MARGIN {
            return None;
        }
        let (customer, customer_name, _) = self.names[i];
        Some((
            customer,
            PayerMatch::SimilarName {
                similarity: best,
                customer_name: customer_name.to_string(),
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(id: &str, name: &str, account: &str) -> Customer {
        Customer {
            customer_id: id.into(),
            name: name.into(),
            bank_account_no: Some(account.into()),
            region: None,
        }
    }

    #[test]
    fn traces_payers_by_account_name_and_similar_name() {
        let customers = [
            customer("C1", "成都华康医院", "6222 0000 1111"),
            customer("C2", "成都华康医疗器械有限公司", "6222000022222"),
            customer("C3", "上海瑞达生物科技股份有限公司", "6222000033333"),
        ];
        let index = PayerIndex::new(customers.iter());
        assert_eq!(index.identify(Some("622200001111"), None).unwrap().0, "C1");
        let (c, how) = index
            .identify(Some("999"), Some("上海瑞达生物科技有限公司"))
            .unwrap();
        assert_eq!(c, "C3", "legal-form suffixes do not matter");
        assert!(matches!(how, PayerMatch::Name { .. }));
        let (c, how) = index.identify(None, Some("成都市华康医院")).unwrap();
        assert_eq!(c, "C1");
        match how {
            PayerMatch::SimilarName { similarity, .. } => {
                assert!(similarity > 0.7 && similarity < 1.0)
            }
            other => panic!("{other:?}"),
        }
        assert!(index.identify(None, Some("北京某物流有限公司")).is_none());
    }
}
