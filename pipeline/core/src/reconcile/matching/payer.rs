//! Who paid: a credit without a contract number is traced to a customer by the payer's
//! account, by the payer's normalized company name, or (as a suggestion for a clerk only)
//! by a name that is merely similar.

use std::collections::{BTreeSet, HashMap, HashSet};

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

/// The fewest bigrams a name of `len` bigrams shares with any name at least `floor`
/// similar to it: `2s / (len + m) >= floor` with `s <= m` gives `s >= floor * len / (2 - floor)`.
fn min_shared(len: usize, floor: f64) -> usize {
    let exact = floor * len as f64 / (2.0 - floor);
    // Rounded down by a hair, so that float error can only widen the search.
    ((exact - 1e-9).ceil().max(1.0) as usize).min(len)
}

/// The bigrams of `grams` whose lists must be read to find every name at least `floor`
/// similar: all but the `min_shared - 1` most common (`count` gives a bigram's list
/// length), since such a name shares at least `min_shared` of them, so one of the rest.
pub(crate) fn rarest_needed(
    grams: &[(char, char)],
    floor: f64,
    count: impl Fn(&(char, char)) -> usize,
) -> Vec<(char, char)> {
    if grams.is_empty() {
        return Vec::new();
    }
    let mut by_count: Vec<(usize, (char, char))> = grams.iter().map(|g| (count(g), *g)).collect();
    by_count.sort_unstable();
    by_count.truncate(grams.len() + 1 - min_shared(grams.len(), floor));
    by_count.into_iter().map(|(_, g)| g).collect()
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
        // Only customers as similar as `RELEVANT_SIMILARITY` can be the best or come
        // within the margin of it, and each of them shares one of the name's rarer bigrams:
        // the common ones' long lists (a city, `科技`) are never read.
        let probe = rarest_needed(&grams, RELEVANT_SIMILARITY, |g| {
            self.by_bigram.get(g).map_or(0, Vec::len)
        });
        let mut seen: HashSet<u32> = HashSet::new();
        let mut best: Option<(f64, &Indexed)> = None;
        let mut runner_up = 0.0_f64;
        for g in probe {
            for &i in self.by_bigram.get(&g).into_iter().flatten() {
                if !seen.insert(i) {
                    continue;
                }
                let Some(c) = self.slots[i as usize].as_ref() else {
                    continue;
                };
                let similarity = dice(&grams, &c.grams);
                if similarity < RELEVANT_SIMILARITY {
                    continue;
                }
                // The best by similarity, then by id; the runner-up's similarity only.
                match best {
                    Some((b, leader))
                        if b > similarity || (b == similarity && leader.id <= c.id) =>
                    {
                        runner_up = runner_up.max(similarity);
                    }
                    _ => {
                        if let Some((b, _)) = best {
                            runner_up = runner_up.max(b);
                        }
                        best = Some((similarity, c));
                    }
                }
            }
        }
        let (best, customer) = best?;
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

    /// Who paid, by name only, found by looking at every customer: an exact normalized
    /// name identifies its one customer (a shared one nobody); otherwise the most similar
    /// name (by Dice, then the smaller id) if similar enough and ahead of the next by the
    /// margin.
    fn by_looking_at_everyone(customers: &[Customer], payer: &str) -> Option<(String, f64)> {
        let name = normalize_company_name(payer);
        if name.is_empty() {
            return None;
        }
        let same: Vec<&Customer> = customers
            .iter()
            .filter(|c| normalize_company_name(&c.name) == name)
            .collect();
        if !same.is_empty() {
            return (same.len() == 1).then(|| (same[0].customer_id.clone(), 1.0));
        }
        let grams = bigrams(&name);
        let mut scored: Vec<(f64, &str)> = customers
            .iter()
            .map(|c| {
                let theirs = bigrams(&normalize_company_name(&c.name));
                (dice(&grams, &theirs), c.customer_id.as_str())
            })
            .filter(|(s, _)| *s > 0.0)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
        let (best, id) = *scored.first()?;
        let next = scored.get(1).map_or(0.0, |s| s.0);
        (best >= MIN_SIMILARITY && best - next >= SIMILARITY_MARGIN).then(|| (id.to_string(), best))
    }

    const PARTS: &[&str] = &[
        "成都",
        "华康",
        "医院",
        "北京",
        "科技",
        "有限公司",
        "瑞达",
        "生物",
        "医疗",
        "器械",
        "上海",
        "华",
        "康",
        "达",
        "市",
        "acme",
        "co",
        "ltd",
        "alpha",
        "beta",
        "a",
        "b",
    ];

    fn a_name() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::collection::vec(proptest::sample::select(PARTS), 1..5).prop_map(|p| p.concat())
    }

    use proptest::prelude::*;

    proptest! {
        /// The index reads only the rarer bigrams' lists; its answers are those of a look
        /// at every customer.
        #[test]
        fn similar_names_are_found_as_by_looking_at_everyone(
            names in proptest::collection::vec(a_name(), 1..60),
            payers in proptest::collection::vec(a_name(), 1..20),
        ) {
            let customers: Vec<Customer> = names
                .iter()
                .enumerate()
                .map(|(i, n)| customer(&format!("C{i:03}"), n, ""))
                .collect();
            let index = PayerIndex::new(customers.iter());
            for payer in &payers {
                let found = index.identify(None, Some(payer)).map(|(id, how)| {
                    let similarity = match how {
                        PayerMatch::SimilarName { similarity, .. } => similarity,
                        _ => 1.0,
                    };
                    (id.to_string(), similarity)
                });
                prop_assert_eq!(found, by_looking_at_everyone(&customers, payer), "payer {}", payer);
            }
        }
    }

    #[test]
    fn the_rarest_bigrams_leave_out_only_what_no_similar_name_can_miss() {
        // 9 bigrams at 0.5: a name that similar shares at least 3, so 7 lists are read.
        let grams: Vec<(char, char)> = (0..9u8)
            .map(|i| (char::from(b'a' + i), char::from(b'a' + i + 1)))
            .collect();
        let probe = rarest_needed(&grams, 0.5, |g| (g.0 as usize) * 10);
        assert_eq!(probe.len(), 7);
        assert_eq!(probe[0], ('a', 'b'), "the shortest list first");
        assert!(!probe.contains(&('i', 'j')) && !probe.contains(&('h', 'i')));
        assert_eq!(rarest_needed(&grams[..1], 0.5, |_| 1), vec![('a', 'b')]);
        assert!(rarest_needed(&[], 0.5, |_| 1).is_empty());
    }
}
