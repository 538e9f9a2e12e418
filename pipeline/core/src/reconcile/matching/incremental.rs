//! Matching that follows the change, not the history. What each credit's text names is read
//! once and remembered, with indexes from each contract number, account and payer name back
//! to the credits that mention it; a batch then re-reads the evidence of only the credits
//! its changes can concern, and re-allocates only the units (`evidence::Unit`) those credits
//! and the changed contracts and customers belong to. Units share nothing, so the result is
//! the one `match_credits` computes over everything (`differences_from_full` checks it).

use std::collections::{BTreeSet, HashMap, HashSet};

use reconlight_formats::model::{ContractStatus, Customer};

use super::evidence::{Evidence, Unit, UnitCredit, evidence_of, one_digit_away};
use super::payer::{
    PayerIndex, PayerKeys, RELEVANT_SIMILARITY, bigrams, dice, normalize_account, rarest_needed,
};
use super::{MatchSettings, Matches, allocate_units, is_live_credit, read_references};
use crate::multimap::{MultiMap, add, remove};
use crate::reconcile::reference::normalize_company_name;
use crate::state::{BankRow, LiveState};

/// What the matcher remembers of one live credit.
struct CreditFacts {
    /// The contract numbers its text names, known or not.
    numbers: Vec<String>,
    evidence: Evidence,
    /// The contracts a clerk allocated it to.
    manual_contracts: Vec<String>,
    /// The customers it may pay (its unit's links).
    customers: Vec<String>,
    /// The keys its payer is looked up by, when the evidence asks who paid.
    payer_keys: Vec<String>,
    /// The payer name's character pairs, when no customer has its account or exact name.
    inexact: Option<Vec<(char, char)>>,
}

/// The changes a batch made that matching depends on.
pub struct MatchChanges<'a> {
    pub credits: &'a BTreeSet<String>,
    pub contracts: &'a BTreeSet<String>,
    pub customers: &'a BTreeSet<String>,
    /// Contracts whose installments changed.
    pub installments: &'a BTreeSet<String>,
    /// Credits whose clerk decision changed.
    pub decisions: &'a BTreeSet<String>,
}

/// The matcher's memory between batches.
#[derive(Default)]
pub struct IncrementalMatcher {
    payers: PayerIndex,
    credits: HashMap<String, CreditFacts>,
    /// Contract number (as read in a text, or a clerk's allocation) to the credits naming it.
    mentions: MultiMap,
    /// Numbers read in a text that are no contract, to the credits naming them.
    unknown: MultiMap,
    /// Payer account (`acct:`) or normalized name (`name:`) to the credits asking for it.
    payer_keys: MultiMap,
    /// Credits whose payer no customer's account or exact name identifies, by each bigram of
    /// the payer's name: a customer's change looks only at credits sharing a bigram with it.
    inexact_by_gram: HashMap<(char, char), BTreeSet<String>>,
    /// Customer to the credits that may pay it.
    credits_of: MultiMap,
    /// Customer to its contracts, and each contract's customer.
    contracts_of: MultiMap,
    customer_of: HashMap<String, String>,
    cancelled: HashSet<String>,
}

fn payer_keys_of(row: &BankRow) -> Vec<String> {
    let mut keys = Vec::new();
    if let Some(a) = row
        .tx
        .counterparty_account
        .as_deref()
        .map(normalize_account)
        .filter(|a| !a.is_empty())
    {
        keys.push(format!("acct:{a}"));
    }
    if let Some(n) = row
        .tx
        .counterparty_name
        .as_deref()
        .map(normalize_company_name)
        .filter(|n| !n.is_empty())
    {
        keys.push(format!("name:{n}"));
    }
    keys
}

impl IncrementalMatcher {
    /// Reads every credit of the state once.
    pub fn new(state: &LiveState, settings: &MatchSettings) -> Self {
        let mut m = IncrementalMatcher {
            payers: PayerIndex::new(state.customers.values()),
            ..Default::default()
        };
        for c in state.contracts.values() {
            if c.status == ContractStatus::Cancelled {
                m.cancelled.insert(c.contract_no.clone());
            }
            m.customer_of
                .insert(c.contract_no.clone(), c.customer_id.clone());
            add(&mut m.contracts_of, &c.customer_id, &c.contract_no);
        }
        let credits: Vec<&BankRow> = state.bank.values().filter(|b| is_live_credit(b)).collect();
        let texts: Vec<&str> = credits.iter().map(|c| c.tx.remittance.as_str()).collect();
        let named = read_references(settings.finder, &texts);
        let evidence = evidence_in_parallel(state, &m.payers, &credits, &named);
        for ((row, (numbers, _)), evidence) in credits.into_iter().zip(named).zip(evidence) {
            m.remember_evidence(state, row, numbers, evidence);
        }
        m
    }

    /// Brings the matches up to date with a batch's changes: re-reads what the changes
    /// concern and re-allocates the units they touch.
    pub fn update(
        &mut self,
        state: &mut LiveState,
        changes: &MatchChanges,
        settings: &MatchSettings,
        dirty: &mut crate::state::Dirty,
    ) {
        let mut recheck: BTreeSet<String> = changes.credits.clone();
        recheck.extend(changes.decisions.iter().cloned());
        let mut touched: BTreeSet<String> = BTreeSet::new();
        for no in changes.contracts {
            let before = (
                self.customer_of.get(no).cloned(),
                self.cancelled.contains(no),
            );
            if let Some(old) = self.customer_of.remove(no) {
                remove(&mut self.contracts_of, &old, no);
                touched.insert(old);
            }
            self.cancelled.remove(no);
            if let Some(c) = state.contracts.get(no) {
                self.customer_of.insert(no.clone(), c.customer_id.clone());
                add(&mut self.contracts_of, &c.customer_id, no);
                touched.insert(c.customer_id.clone());
                if c.status == ContractStatus::Cancelled {
                    self.cancelled.insert(no.clone());
                }
            }
            // What a text naming it says changes only when it appears, disappears, is
            // cancelled or changes hands: then the credits naming it, and those naming an
            // unknown number one slip away from it, are read again.
            if before
                != (
                    self.customer_of.get(no).cloned(),
                    self.cancelled.contains(no),
                )
            {
                recheck.extend(self.mentions.get(no).into_iter().flatten().cloned());
                for near in one_digit_away(no, |n| self.unknown.contains_key(n)) {
                    recheck.extend(self.unknown[&near].iter().cloned());
                }
            }
        }
        for no in changes.installments {
            touched.extend(self.customer_of.get(no).cloned());
        }
        for id in changes.customers {
            let old = self.payers.keys_of(id);
            match state.customers.get(id) {
                Some(c) => self.payers.upsert(c),
                None => self.payers.remove(id),
            }
            let new = state.customers.get(id).map(customer_keys);
            for keys in old.iter().chain(new.iter()) {
                self.payers_concerned(keys, &mut recheck);
            }
            touched.insert(id.clone());
        }
        let mut scope = recheck.clone();
        let recheck: Vec<&BankRow> = recheck
            .iter()
            .filter_map(|r| {
                self.forget(r, &mut touched);
                state.bank.get(r).filter(|b| is_live_credit(b))
            })
            .collect();
        let texts: Vec<&str> = recheck.iter().map(|c| c.tx.remittance.as_str()).collect();
        let named = read_references(settings.finder, &texts);
        for (row, (numbers, hints)) in recheck.into_iter().zip(named) {
            let facts = self.remember(state, row, numbers, hints);
            touched.extend(facts.customers.iter().cloned());
        }
        let (units, in_units) = self.units_of(state, &touched);
        scope.extend(in_units);
        let matches: Matches = allocate_units(&units, settings);
        state.replace_matches(&scope, matches, dirty);
    }

    /// The credits a change of this customer's account or name can concern.
    fn payers_concerned(&self, keys: &PayerKeys, out: &mut BTreeSet<String>) {
        let mut lookup =
            |key: String| out.extend(self.payer_keys.get(&key).into_iter().flatten().cloned());
        if let Some(a) = &keys.account {
            lookup(format!("acct:{a}"));
        }
        if !keys.name.is_empty() {
            lookup(format!("name:{}", keys.name));
        }
        if keys.grams.is_empty() {
            return;
        }
        // A payer name this similar shares one of the name's rarer bigrams (see
        // `rarest_needed`): the lists of the common ones are not read.
        let probe = rarest_needed(&keys.grams, RELEVANT_SIMILARITY, |g| {
            self.inexact_by_gram.get(g).map_or(0, BTreeSet::len)
        });
        let mut seen: HashSet<&str> = HashSet::new();
        for gram in probe {
            for r in self.inexact_by_gram.get(&gram).into_iter().flatten() {
                if seen.insert(r.as_str())
                    && let Some(grams) = self.credits.get(r).and_then(|f| f.inexact.as_ref())
                    && dice(grams, &keys.grams) >= RELEVANT_SIMILARITY
                {
                    out.insert(r.to_string());
                }
            }
        }
    }

    /// Drops what was remembered of a credit, noting the customers it pointed at.
    fn forget(&mut self, bank_ref: &str, touched: &mut BTreeSet<String>) {
        let Some(facts) = self.credits.remove(bank_ref) else {
            return;
        };
        for no in mention_keys(&facts) {
            remove(&mut self.mentions, &no, bank_ref);
        }
        for (no, _) in &facts.evidence.unknown {
            remove(&mut self.unknown, no, bank_ref);
        }
        for key in &facts.payer_keys {
            remove(&mut self.payer_keys, key, bank_ref);
        }
        for gram in facts.inexact.iter().flatten() {
            if let Some(set) = self.inexact_by_gram.get_mut(gram) {
                set.remove(bank_ref);
                if set.is_empty() {
                    self.inexact_by_gram.remove(gram);
                }
            }
        }
        for c in &facts.customers {
            remove(&mut self.credits_of, c, bank_ref);
        }
        touched.extend(facts.customers);
    }

    /// Reads a live credit's evidence and indexes it.
    fn remember(
        &mut self,
        state: &LiveState,
        row: &BankRow,
        numbers: Vec<String>,
        hints: Vec<u32>,
    ) -> &CreditFacts {
        let evidence = evidence_of(state, &self.payers, row, &numbers, hints);
        self.remember_evidence(state, row, numbers, evidence)
    }

    /// `remember` with the evidence already read.
    fn remember_evidence(
        &mut self,
        state: &LiveState,
        row: &BankRow,
        numbers: Vec<String>,
        evidence: Evidence,
    ) -> &CreditFacts {
        let bank_ref = row.tx.bank_ref.clone();
        let manual = state.manual.get(&bank_ref);
        let customers: Vec<String> = evidence
            .customers(state, manual)
            .into_iter()
            .map(str::to_string)
            .collect();
        let asks_payer = evidence.asks_payer();
        let payer_keys = if asks_payer {
            payer_keys_of(row)
        } else {
            Vec::new()
        };
        let exact = matches!(
            evidence.payer,
            Some((
                _,
                super::PayerMatch::Account { .. } | super::PayerMatch::Name { .. }
            ))
        );
        let inexact = (asks_payer && !exact)
            .then(|| {
                row.tx
                    .counterparty_name
                    .as_deref()
                    .map(normalize_company_name)
                    .filter(|n| !n.is_empty())
                    .map(|n| bigrams(&n))
            })
            .flatten();
        let manual_contracts = manual
            .into_iter()
            .flat_map(|m| &m.allocations)
            .map(|a| a.contract_no.clone())
            .collect();
        let facts = CreditFacts {
            numbers,
            evidence,
            manual_contracts,
            customers,
            payer_keys,
            inexact,
        };
        for no in mention_keys(&facts) {
            add(&mut self.mentions, &no, &bank_ref);
        }
        for (no, _) in &facts.evidence.unknown {
            add(&mut self.unknown, no, &bank_ref);
        }
        for key in &facts.payer_keys {
            add(&mut self.payer_keys, key, &bank_ref);
        }
        for gram in facts.inexact.iter().flatten() {
            self.inexact_by_gram
                .entry(*gram)
                .or_default()
                .insert(bank_ref.clone());
        }
        for c in &facts.customers {
            add(&mut self.credits_of, c, &bank_ref);
        }
        self.credits.entry(bank_ref).or_insert(facts)
    }

    /// The units holding these customers, and every credit in them.
    fn units_of<'s>(
        &'s self,
        state: &'s LiveState,
        customers: &BTreeSet<String>,
    ) -> (Vec<Unit<'s>>, BTreeSet<String>) {
        let mut seen: HashSet<&str> = HashSet::new();
        let mut in_units = BTreeSet::new();
        let mut units = Vec::new();
        for start in customers {
            if !seen.insert(start.as_str()) {
                continue;
            }
            let (mut members, mut credits) = (vec![start.as_str()], BTreeSet::new());
            let mut queue = vec![start.as_str()];
            while let Some(c) = queue.pop() {
                for r in self.credits_of.get(c).into_iter().flatten() {
                    if !credits.insert(r.as_str()) {
                        continue;
                    }
                    for other in &self.credits[r].customers {
                        if seen.insert(other.as_str()) {
                            members.push(other.as_str());
                            queue.push(other.as_str());
                        }
                    }
                }
            }
            if credits.is_empty() {
                continue;
            }
            in_units.extend(credits.iter().map(|r| r.to_string()));
            units.push(self.unit(state, &members, &credits));
        }
        (units, in_units)
    }

    /// One unit, in the order `evidence::units` builds it.
    fn unit<'s>(
        &'s self,
        state: &'s LiveState,
        members: &[&str],
        credits: &BTreeSet<&str>,
    ) -> Unit<'s> {
        let mut unit = Unit::default();
        let members: HashSet<&str> = members.iter().copied().collect();
        let mut rows: Vec<&BankRow> = credits.iter().filter_map(|r| state.bank.get(*r)).collect();
        rows.sort_by(|a, b| {
            (a.tx.booking_date, &a.tx.bank_ref).cmp(&(b.tx.booking_date, &b.tx.bank_ref))
        });
        for row in rows {
            unit.credits.push(UnitCredit {
                row,
                evidence: self.credits[&row.tx.bank_ref].evidence.clone(),
                manual: state.manual.get(&row.tx.bank_ref),
            });
        }
        let contracts: BTreeSet<&str> = members
            .iter()
            .flat_map(|c| self.contracts_of.get(*c).into_iter().flatten())
            .map(String::as_str)
            .collect();
        for no in contracts {
            let payable = state
                .contracts
                .get(no)
                .is_some_and(|c| c.status != ContractStatus::Cancelled);
            for inst in state
                .installments
                .range((no.to_string(), 0)..=(no.to_string(), u32::MAX))
                .map(|(_, i)| i)
                .filter(|i| members.contains(&i.customer_id.as_str()))
            {
                unit.installments.push(inst);
                unit.payable.push(payable);
            }
        }
        unit
    }
}

/// Every credit's evidence, read on every core (a start reads all of them).
fn evidence_in_parallel(
    state: &LiveState,
    payers: &PayerIndex,
    credits: &[&BankRow],
    named: &[(Vec<String>, Vec<u32>)],
) -> Vec<Evidence> {
    type Named = (Vec<String>, Vec<u32>);
    let credits: Vec<(&BankRow, &Named)> = credits.iter().copied().zip(named).collect();
    super::on_every_core(&credits, 1_000, || {
        |(row, (numbers, hints)): &(&BankRow, &Named)| {
            evidence_of(state, payers, row, numbers, hints.clone())
        }
    })
}

/// The numbers a credit is found by when a contract changes: those its text names and
/// those a clerk allocated it to.
fn mention_keys(facts: &CreditFacts) -> Vec<String> {
    let mut keys = facts.numbers.clone();
    keys.extend(facts.manual_contracts.iter().cloned());
    keys.sort();
    keys.dedup();
    keys
}

fn customer_keys(c: &Customer) -> PayerKeys {
    let name = normalize_company_name(&c.name);
    PayerKeys {
        account: c
            .bank_account_no
            .as_deref()
            .map(normalize_account)
            .filter(|a| !a.is_empty()),
        grams: bigrams(&name),
        name,
    }
}

/// The credits whose allocation differs from a full recomputation, with both versions:
/// empty when the incremental matches are right.
pub fn differences_from_full(state: &LiveState, settings: &MatchSettings) -> Vec<String> {
    let full = super::match_credits(state, settings, None);
    let keys: BTreeSet<&String> = full.keys().chain(state.matches.keys()).collect();
    keys.into_iter()
        .filter(|k| full.get(*k) != state.matches.get(*k))
        .map(|k| {
            format!(
                "{k}: kept {:?}, recomputed {:?}",
                state.matches.get(k),
                full.get(k)
            )
        })
        .collect()
}
