//! Who paid: a credit without a contract number is traced to a customer by the payer's
//! account, by the payer's normalized company name, or (as a suggestion for a clerk only)
//! by a name that is merely similar.

use std::collections::{BTreeSet, HashMap};

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

/// One indexed customer: its id, name, normalized account and name, and the character
/// pairs of the normalized name.
struct Indexed {
    id: String,
    name: String,
    account: Option<String>,
    normalized: String,
    grams: Vec<(char, char)>,
}

/// Indexes of the customers by account, normalized name and name fragments, kept up to
/// date as customers change (`upsert`, `remove`) so that a batch need not rebuild it.
#[derive(Default)]
pub struct PayerIndex {
    /// Customers by slot; a removed customer's slot is reused.
    slots: Vec<Option<Indexed>>,
    free: Vec<u32>,
    slot_of: HashMap<String, u32>,
    /// Several customers may share an account; the greatest id wins, as in the CRM's order.
    by_account: HashMap<String, BTreeSet<String>>,
    /// A normalized name shared by two customers identifies neither.
    by_name: HashMap<String, BTreeSet<String>>,
    by_bigram: HashMap<(char, char), Vec<u32>>,
}

/// Similar names below this are not suggested.
pub const MIN_SIMILARITY: f64 = 0.6;
/// The best similar name must lead the next one by this much.
pub const SIMILARITY_MARGIN: f64 = 0.1;
/// A customer whose name is less similar than this to a payer's can change neither the
/// best similar name nor whether it leads by the margin.
pub const RELEVANT_SIMILARITY: f64 = MIN_SIMILARITY - SIMILARITY_MARGIN - 1e-9;

pub(crate) fn bigrams(normalized: &str) -> Vec<(char, char)> {
    let chars: Vec<char> = normalized.chars().collect();
    let mut out: Vec<(char, char)> = chars.windows(2).map(|w| (w[0], w[1])).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Dice coefficient of two sorted, deduplicated bigram sets.
pub(crate) fn dice(a: &[(char, char)], b: &[(char, char)]) -> f64 {
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

/// The account and normalized name a customer is known by, as the index sees them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PayerKeys {
    pub account: Option<String>,
    pub name: String,
    pub grams: Vec<(char, char)>,
}

impl PayerIndex {
    pub fn new<'s>(customers: impl Iterator<Item = &'s Customer>) -> Self {
        let mut index = PayerIndex::default();
        for c in customers {
            index.upsert(c);
        }
        index
    }

    /// The keys a customer is indexed under, if it is.
    pub fn keys_of(&self, customer_id: &str) -> Option<PayerKeys> {
        let slot = self.slots[*self.slot_of.get(customer_id)? as usize].as_ref()?;
        Some(PayerKeys {
            account: slot.account.clone(),
            name: slot.normalized.clone(),
            grams: slot.grams.clone(),
        })
    }

    /// Adds a customer, or replaces what the index knew of it.
    pub fn upsert(&mut self, c: &Customer) {
        self.remove(&c.customer_id);
        let account = c
            .bank_account_no
            .as_deref()
            .map(normalize_account)
            .filter(|a| !a.is_empty());
        if let Some(acct) = &account {
            self.by_account
                .entry(acct.clone())
                .or_default()
                .insert(c.customer_id.clone());
        }
        let normalized = normalize_company_name(&c.name);
        let grams = if normalized.is_empty() {
            Vec::new()
        } else {
            self.by_name
                .entry(normalized.clone())
                .or_default()
                .insert(c.customer_id.clone());
            bigrams(&normalized)
        };
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        for g in &grams {
            self.by_bigram.entry(*g).or_default().push(slot);
        }
        self.slots[slot as usize] = Some(Indexed {
            id: c.customer_id.clone(),
            name: c.name.clone(),
            account,
            normalized,
            grams,
        });
        self.slot_of.insert(c.customer_id.clone(), slot);
    }

    /// Forgets a customer.
    pub fn remove(&mut self, customer_id: &str) {
        let Some(slot) = self.slot_of.remove(customer_id) else {
            return;
        };
        let Some(old) = self.slots[slot as usize].take() else {
            return;
        };
        self.free.push(slot);
        let forget = |map: &mut HashMap<String, BTreeSet<String>>, key: &str| {
            if let Some(ids) = map.get_mut(key) {
                ids.remove(customer_id);
                if ids.is_empty() {
                    map.remove(key);
                }
            }
        };
        if let Some(acct) = &old.account {
            forget(&mut self.by_account, acct);
        }
        if !old.normalized.is_empty() {
            forget(&mut self.by_name, &old.normalized);
        }
        for g in &old.grams {
            if let Some(list) = self.by_bigram.get_mut(g) {
                if let Some(at) = list.iter().position(|s| *s == slot) {
                    list.swap_remove(at);
                }
                if list.is_empty() {
                    self.by_bigram.remove(g);
                }
            }
        }
    }

    fn by_account(&self, acct: &str) -> Option<&str> {
        self.by_account
            .get(acct)
            .and_then(|ids| ids.last())
            .map(String::as_str)
    }

    /// The customer a payer's account or exact (normalized) name belongs to, without
    /// looking for similar names.
    pub fn identify_exactly(&self, account: Option<&str>, name: Option<&str>) -> Option<&str> {
        if let Some(acct) = account.map(normalize_account).filter(|a| !a.is_empty())
            && let Some(c) = self.by_account(&acct)
        {
            return Some(c);
        }
        let name = name.map(normalize_company_name).filter(|n| !n.is_empty())?;
        self.by_name
            .get(&name)
            .filter(|ids| ids.len() == 1)
            .and_then(|ids| ids.first())
            .map(String::as_str)
    }

    /// The customer a payer is, and how that was found.
    pub fn identify(
        &self,
        account: Option<&str>,
        name: Option<&str>,
    ) -> Option<(&str, PayerMatch)> {
        if let Some(acct) = account.map(normalize_account).filter(|a| !a.is_empty())
            && let Some(c) = self.by_account(&acct)
        {
            return Some((c, PayerMatch::Account { account: acct }));
        }
        let name = name.map(normalize_company_name).filter(|n| !n.is_empty())?;
        if let Some(found) = self.by_name.get(&name) {
            // A shared name identifies nobody, not even by similarity.
            return (found.len() == 1)
                .then(|| found.first())
                .flatten()
                .map(|c| (c.as_str(), PayerMatch::Name { normalized: name }));
        }
        let grams = bigrams(&name);
        let mut shared: HashMap<u32, usize> = HashMap::new();
        for g in &grams {
            for &i in self.by_bigram.get(g).into_iter().flatten() {
                *shared.entry(i).or_default() += 1;
            }
        }
        let mut scored: Vec<(f64, &Indexed)> = shared
            .keys()
            .filter_map(|&i| self.slots[i as usize].as_ref())
            .map(|c| (dice(&grams, &c.grams), c))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.id.cmp(&b.1.id)));
        let (best, customer) = *scored.first()?;
        let runner_up = scored.get(1).map(|s| s.0).unwrap_or(0.0);
        if best < MIN_SIMILARITY || best - runner_up < SIMILARITY_MARGIN {
            return None;
        }
        Some((
            customer.id.as_str(),
            PayerMatch::SimilarName {
                similarity: best,
                customer_name: customer.name.clone(),
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
