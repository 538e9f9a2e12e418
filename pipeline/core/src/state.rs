//! The live tables: the pipeline's in-memory picture of CRM, e-signature and bank, plus
//! everything derived from them. `apply` folds one canonical record in and notes what
//! changed, so the store writes only that in the batch's transaction.

use std::collections::{BTreeMap, BTreeSet};

use crate::alerts::Alert;
use chrono::{DateTime, Utc};
use reconlight_formats::crm::{CrmEntity, CrmMapping, CrmTable};
use reconlight_formats::model::{
    BankTransaction, ChangeOp, Contract, Customer, Direction, HandoffTicket, Record, RowChange,
    SignatureEvent,
};
use serde::{Deserialize, Serialize};

use crate::audit::{AuditEntry, AuditHead, record_change};
use crate::derived::{Allocation, Installment, ManualDecision, Matches};
use crate::error::ApplyError;
use crate::workitems::WorkItem;

/// A bank transaction and what became of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BankRow {
    pub tx: BankTransaction,
    /// The reversal entry that undid this one.
    pub reversed_by: Option<String>,
    /// For a reversal entry: the entry it undoes.
    pub reverses: Option<String>,
    /// Source name and position it was read from.
    pub source: String,
    pub position: String,
}

/// A credit moved from one allocation to another: a later credit with stronger evidence
/// took its installment, a clerk decided, or the CRM changed. Kept as the credit's match
/// history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchChange {
    pub bank_ref: String,
    /// The pipeline clock when it moved.
    pub at: DateTime<Utc>,
    /// (contract, installment, amount) before and after.
    pub before: Vec<(String, u32, rust_decimal::Decimal)>,
    pub after: Vec<(String, u32, rust_decimal::Decimal)>,
    /// The new allocation's explanation (empty when it is now unmatched).
    pub why: String,
}

/// A record that could not be used, kept with its raw bytes and the reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub source: String,
    /// File and position within it: `crm/contracts.jsonl line 17`.
    pub position: String,
    pub reason: String,
    pub raw: String,
    pub recorded_at: DateTime<Utc>,
}

/// The in-memory live tables.
#[derive(Debug, Default)]
pub struct LiveState {
    pub customers: BTreeMap<String, Customer>,
    pub contracts: BTreeMap<String, Contract>,
    pub tickets: BTreeMap<String, HandoffTicket>,
    /// Rows of the extra CRM tables: table -> key -> typed row.
    pub extra: BTreeMap<String, BTreeMap<String, reconlight_formats::model::Row>>,
    pub signatures: BTreeMap<String, SignatureEvent>,
    pub bank: BTreeMap<String, BankRow>,
    pub installments: BTreeMap<(String, u32), Installment>,
    /// Contracts whose payment terms cannot be turned into installments, and why.
    pub terms_errors: BTreeMap<String, String>,
    pub matches: Matches,
    /// Clerks' match decisions, by bank reference.
    pub manual: BTreeMap<String, ManualDecision>,
    pub alerts: BTreeMap<String, Alert>,
    pub work_items: BTreeMap<String, WorkItem>,
    pub audit_head: AuditHead,
    /// Audit entries of contract amount and currency changes (the rules read them).
    pub amount_changes: Vec<AuditEntry>,
    /// Records consumed per source file.
    pub positions: BTreeMap<String, u64>,
    /// The event-time watermark: the latest event time applied.
    pub watermark: Option<DateTime<Utc>>,
    pub dead_letter_count: u64,
    /// Bank entries by account and amount, for finding what a reversal undoes; built on
    /// first use over what the store loaded, then kept up to date by `apply`.
    bank_by_amount: std::sync::Mutex<BankByAmount>,
}

/// Bank references by (account, amount, currency), over the first `len` entries known.
#[derive(Debug, Default)]
struct BankByAmount {
    len: usize,
    refs: std::collections::HashMap<(String, String), Vec<String>>,
}

/// The rules read contracts' amount and currency changes: those audit entries stay in
/// memory, removals included, as a start reads them from the trail.
fn keep_amount_changes(kept: &mut Vec<AuditEntry>, entries: &[AuditEntry]) {
    kept.extend(
        entries
            .iter()
            .filter(|e| e.table == "contracts" && (e.field == "amount" || e.field == "currency"))
            .cloned(),
    );
}

fn amount_key(tx: &BankTransaction) -> (String, String) {
    (
        tx.account.clone(),
        format!("{} {}", tx.amount.amount.normalize(), tx.amount.currency),
    )
}

/// What one batch changed, for the store to write in one transaction.
#[derive(Debug, Default)]
pub struct Dirty {
    pub customers: BTreeSet<String>,
    pub contracts: BTreeSet<String>,
    pub tickets: BTreeSet<String>,
    /// (table, key) of changed extra-table rows.
    pub extra: BTreeSet<(String, String)>,
    pub signatures: BTreeSet<String>,
    pub bank: BTreeSet<String>,
    /// Contracts whose installments were recomputed.
    pub installments: BTreeSet<String>,
    /// Credits whose allocations changed.
    pub matches: BTreeSet<String>,
    pub alerts: BTreeSet<String>,
    pub work_items: BTreeSet<String>,
    /// For work items written over a stored one: the version that was read (`None`: none
    /// was stored). The write happens only if the store still holds that version.
    pub work_items_read: BTreeMap<String, Option<u64>>,
    pub positions: BTreeSet<String>,
    pub audit: Vec<AuditEntry>,
    pub dead_letters: Vec<DeadLetter>,
    /// Credits whose allocation moved.
    pub match_history: Vec<MatchChange>,
    pub outbox: Vec<crate::outbox::OutboxMessage>,
    pub watermark: bool,
    /// All CRM rows of a table were removed (a truncate).
    pub truncated: BTreeSet<&'static str>,
    /// Webhook bodies this batch applied.
    pub inbox_consumed: Vec<String>,
    /// A nightly diff's report (business date, JSON).
    pub nightly_report: Option<(chrono::NaiveDate, String)>,
    /// Other bookkeeping the batch writes with it: (name, JSON).
    pub meta: Vec<(String, String)>,
}

impl Dirty {
    /// True when the batch changed any table a rule or the matcher reads.
    pub fn touched_inputs(&self) -> bool {
        !(self.customers.is_empty()
            && self.contracts.is_empty()
            && self.tickets.is_empty()
            && self.extra.is_empty()
            && self.signatures.is_empty()
            && self.bank.is_empty()
            && self.truncated.is_empty())
    }
}

/// What applying a record did, when it did not fail.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    Changed,
    /// Valid, but carries nothing to apply (tombstone, duplicate, unmapped table).
    Ignored(&'static str),
}

impl LiveState {
    /// Folds one record into the live tables.
    pub fn apply(
        &mut self,
        record: Record,
        position: &str,
        mapping: &CrmMapping,
        dirty: &mut Dirty,
    ) -> Result<Applied, ApplyError> {
        match record {
            Record::Crm(change) => self.apply_crm(change, position, mapping, dirty),
            Record::Signature(sig) => self.apply_signature(sig, dirty),
            Record::Bank(tx) => self.apply_bank(tx, position, dirty),
        }
    }

    fn apply_crm(
        &mut self,
        change: RowChange,
        position: &str,
        mapping: &CrmMapping,
        dirty: &mut Dirty,
    ) -> Result<Applied, ApplyError> {
        let Some(table) = mapping.table_of(&change.table) else {
            return match mapping.extra_table_of(&change.table) {
                Some((name, def)) => self.apply_extra(name, def, change, position, dirty),
                None => Ok(Applied::Ignored("unmapped table")),
            };
        };
        let time = change.source_time;
        if change.op == ChangeOp::Truncate {
            let head = &mut self.audit_head;
            match table {
                CrmTable::Customers => {
                    for (k, old) in std::mem::take(&mut self.customers) {
                        record_change(head, Some(&old), None, time, position, &mut dirty.audit);
                        dirty.customers.insert(k);
                    }
                }
                CrmTable::Contracts => {
                    let first = dirty.audit.len();
                    for (k, old) in std::mem::take(&mut self.contracts) {
                        record_change(head, Some(&old), None, time, position, &mut dirty.audit);
                        dirty.contracts.insert(k);
                    }
                    keep_amount_changes(&mut self.amount_changes, &dirty.audit[first..]);
                }
                CrmTable::HandoffTickets => {
                    for (k, old) in std::mem::take(&mut self.tickets) {
                        record_change(head, Some(&old), None, time, position, &mut dirty.audit);
                        dirty.tickets.insert(k);
                    }
                }
            }
            return Ok(Applied::Changed);
        }
        let old_key = change
            .before
            .as_ref()
            .map(|b| mapping.key(table, b))
            .transpose()?;
        let new_entity = match (&change.op, &change.after) {
            (ChangeOp::Delete, _) | (_, None) => None,
            (_, Some(after)) => Some(mapping.entity(table, after)?),
        };
        let new_key = match &new_entity {
            Some(CrmEntity::Customer(c)) => Some(c.customer_id.clone()),
            Some(CrmEntity::Contract(c)) => Some(c.contract_no.clone()),
            Some(CrmEntity::HandoffTicket(t)) => Some(t.ticket_id.clone()),
            None => None,
        };
        // A primary-key change arrives as an update whose before and after keys differ.
        if let Some(old) = old_key.as_ref().filter(|k| Some(*k) != new_key.as_ref()) {
            self.remove_row(table, old, time, position, dirty);
        }
        match new_entity {
            None => {
                if let Some(old) = old_key.as_ref().filter(|_| new_key.is_none()) {
                    self.remove_row(table, old, time, position, dirty);
                }
            }
            Some(CrmEntity::Customer(c)) => {
                let before = self.customers.get(&c.customer_id);
                if before == Some(&c) {
                    return Ok(Applied::Ignored("unchanged row"));
                }
                record_change(
                    &mut self.audit_head,
                    before,
                    Some(&c),
                    time,
                    position,
                    &mut dirty.audit,
                );
                dirty.customers.insert(c.customer_id.clone());
                self.customers.insert(c.customer_id.clone(), c);
            }
            Some(CrmEntity::Contract(c)) => {
                let before = self.contracts.get(&c.contract_no);
                if before == Some(&c) {
                    return Ok(Applied::Ignored("unchanged row"));
                }
                let first = dirty.audit.len();
                record_change(
                    &mut self.audit_head,
                    before,
                    Some(&c),
                    time,
                    position,
                    &mut dirty.audit,
                );
                keep_amount_changes(&mut self.amount_changes, &dirty.audit[first..]);
                dirty.contracts.insert(c.contract_no.clone());
                self.contracts.insert(c.contract_no.clone(), c);
            }
            Some(CrmEntity::HandoffTicket(t)) => {
                let before = self.tickets.get(&t.ticket_id);
                if before == Some(&t) {
                    return Ok(Applied::Ignored("unchanged row"));
                }
                record_change(
                    &mut self.audit_head,
                    before,
                    Some(&t),
                    time,
                    position,
                    &mut dirty.audit,
                );
                dirty.tickets.insert(t.ticket_id.clone());
                self.tickets.insert(t.ticket_id.clone(), t);
            }
        }
        Ok(Applied::Changed)
    }

    fn apply_extra(
        &mut self,
        name: &str,
        def: &reconlight_formats::crm::extra::ExtraTable,
        change: RowChange,
        position: &str,
        dirty: &mut Dirty,
    ) -> Result<Applied, ApplyError> {
        use crate::audit::ExtraRow;
        let time = change.source_time;
        let table = self.extra.entry(name.to_string()).or_default();
        let mut removed = Vec::new();
        if change.op == ChangeOp::Truncate {
            removed.extend(std::mem::take(table));
        } else {
            let old_key = change.before.as_ref().map(|b| def.key_of(b)).transpose()?;
            let new_row = match (&change.op, &change.after) {
                (ChangeOp::Delete, _) | (_, None) => None,
                (_, Some(after)) => Some((def.key_of(after)?, def.typed(after)?)),
            };
            if let Some(old) = old_key.filter(|k| new_row.as_ref().is_none_or(|(nk, _)| nk != k))
                && let Some(row) = table.remove(&old)
            {
                removed.push((old, row));
            }
            if let Some((key, row)) = new_row {
                let before = table.get(&key);
                if before == Some(&row) {
                    return Ok(Applied::Ignored("unchanged row"));
                }
                let b = before.map(|r| ExtraRow {
                    table: name,
                    key: &key,
                    row: r,
                });
                let a = ExtraRow {
                    table: name,
                    key: &key,
                    row: &row,
                };
                record_change(
                    &mut self.audit_head,
                    b.as_ref(),
                    Some(&a),
                    time,
                    position,
                    &mut dirty.audit,
                );
                dirty.extra.insert((name.to_string(), key.clone()));
                table.insert(key, row);
            }
        }
        for (key, row) in removed {
            let b = ExtraRow {
                table: name,
                key: &key,
                row: &row,
            };
            record_change(
                &mut self.audit_head,
                Some(&b),
                None,
                time,
                position,
                &mut dirty.audit,
            );
            dirty.extra.insert((name.to_string(), key));
        }
        Ok(Applied::Changed)
    }

    fn remove_row(
        &mut self,
        table: CrmTable,
        key: &str,
        time: DateTime<Utc>,
        position: &str,
        dirty: &mut Dirty,
    ) {
        let head = &mut self.audit_head;
        match table {
            CrmTable::Customers => {
                if let Some(old) = self.customers.remove(key) {
                    record_change(head, Some(&old), None, time, position, &mut dirty.audit);
                    dirty.customers.insert(key.to_string());
                }
            }
            CrmTable::Contracts => {
                if let Some(old) = self.contracts.remove(key) {
                    let first = dirty.audit.len();
                    record_change(head, Some(&old), None, time, position, &mut dirty.audit);
                    keep_amount_changes(&mut self.amount_changes, &dirty.audit[first..]);
                    dirty.contracts.insert(key.to_string());
                }
            }
            CrmTable::HandoffTickets => {
                if let Some(old) = self.tickets.remove(key) {
                    record_change(head, Some(&old), None, time, position, &mut dirty.audit);
                    dirty.tickets.insert(key.to_string());
                }
            }
        }
    }

    fn apply_signature(
        &mut self,
        sig: SignatureEvent,
        dirty: &mut Dirty,
    ) -> Result<Applied, ApplyError> {
        if sig.contract_no.is_none() {
            return Err(ApplyError::Refused(format!(
                "{} envelope {} ({}) carries no contract number",
                sig.provider, sig.envelope_id, sig.event
            )));
        }
        if let Some(amount) = &sig.amount
            && amount.amount.is_sign_negative()
        {
            return Err(ApplyError::Refused(format!(
                "envelope {}: negative contract amount {}",
                sig.envelope_id, amount.amount
            )));
        }
        if self.signatures.get(&sig.event_id) == Some(&sig) {
            return Ok(Applied::Ignored("replayed signature event"));
        }
        dirty.signatures.insert(sig.event_id.clone());
        self.signatures.insert(sig.event_id.clone(), sig);
        Ok(Applied::Changed)
    }

    fn apply_bank(
        &mut self,
        tx: BankTransaction,
        position: &str,
        dirty: &mut Dirty,
    ) -> Result<Applied, ApplyError> {
        if tx.amount.amount.is_sign_negative() {
            return Err(ApplyError::Refused(format!(
                "bank reference {}: negative amount {}",
                tx.bank_ref, tx.amount.amount
            )));
        }
        if let Some(existing) = self.bank.get(&tx.bank_ref) {
            if existing.tx == tx {
                return Ok(Applied::Ignored("bank entry already imported"));
            }
            return Err(ApplyError::Refused(format!(
                "bank reference {} was already imported from {} with different content",
                tx.bank_ref, existing.position
            )));
        }
        let mut row = BankRow {
            tx,
            reversed_by: None,
            reverses: None,
            source: String::new(),
            position: position.to_string(),
        };
        if row.tx.reversal
            && let Some(original) = self.find_reversed(&row.tx)
        {
            row.reverses = Some(original.clone());
            if let Some(o) = self.bank.get_mut(&original) {
                o.reversed_by = Some(row.tx.bank_ref.clone());
            }
            dirty.bank.insert(original);
        }
        dirty.bank.insert(row.tx.bank_ref.clone());
        let index = self.bank_by_amount.get_mut().expect("not poisoned");
        if index.len == self.bank.len() {
            index
                .refs
                .entry(amount_key(&row.tx))
                .or_default()
                .push(row.tx.bank_ref.clone());
            index.len += 1;
        }
        self.bank.insert(row.tx.bank_ref.clone(), row);
        Ok(Applied::Changed)
    }

    /// The entry a reversal undoes: same account and amount, the opposite direction, not yet
    /// reversed, booked no later; the same end-to-end id or payer account wins, then the latest.
    fn find_reversed(&self, rev: &BankTransaction) -> Option<String> {
        let opposite = match rev.direction {
            Direction::Credit => Direction::Debit,
            Direction::Debit => Direction::Credit,
        };
        let mut index = self.bank_by_amount.lock().expect("not poisoned");
        if index.len != self.bank.len() {
            index.refs.clear();
            for b in self.bank.values() {
                index
                    .refs
                    .entry(amount_key(&b.tx))
                    .or_default()
                    .push(b.tx.bank_ref.clone());
            }
            index.len = self.bank.len();
        }
        index
            .refs
            .get(&amount_key(rev))
            .into_iter()
            .flatten()
            .filter_map(|r| self.bank.get(r))
            .filter(|b| {
                !b.tx.reversal
                    && b.reversed_by.is_none()
                    && b.tx.direction == opposite
                    && b.tx.account == rev.account
                    && b.tx.amount == rev.amount
                    && b.tx.booking_date <= rev.booking_date
            })
            .max_by_key(|b| {
                (
                    rev.end_to_end_id.is_some() && b.tx.end_to_end_id == rev.end_to_end_id,
                    rev.counterparty_account.is_some()
                        && b.tx.counterparty_account == rev.counterparty_account,
                    b.tx.booking_date,
                    b.tx.bank_ref.clone(),
                )
            })
            .map(|b| b.tx.bank_ref.clone())
    }

    /// Replaces the matches, noting which credits' allocations changed, and where a credit
    /// that was allocated moved elsewhere, why (its match history).
    pub fn set_matches(&mut self, matches: Matches, dirty: &mut Dirty) {
        let scope: BTreeSet<String> = matches.keys().chain(self.matches.keys()).cloned().collect();
        self.replace_matches(&scope, matches, dirty);
    }

    /// Replaces the matches of the credits in `scope` with those in `matches` (a credit of
    /// the scope without an entry there is no longer matched), as `set_matches` does.
    pub fn replace_matches(
        &mut self,
        scope: &BTreeSet<String>,
        mut matches: Matches,
        dirty: &mut Dirty,
    ) {
        let at = self.watermark.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        let placed = |v: &[Allocation]| -> Vec<(String, u32, rust_decimal::Decimal)> {
            v.iter()
                .map(|a| (a.contract_no.clone(), a.seq, a.amount))
                .collect()
        };
        for k in scope {
            let new = matches.remove(k).filter(|v| !v.is_empty());
            let old = self.matches.get(k).filter(|v| !v.is_empty());
            if old == new.as_ref() {
                continue;
            }
            dirty.matches.insert(k.clone());
            if let Some(old) = old.filter(|o| new.as_ref().is_none_or(|n| placed(o) != placed(n))) {
                let after = new.as_deref().unwrap_or_default();
                dirty.match_history.push(MatchChange {
                    bank_ref: k.clone(),
                    at,
                    before: placed(old),
                    after: placed(after),
                    why: after
                        .first()
                        .map(|a| a.explanation.clone())
                        .unwrap_or_default(),
                });
            }
            match new {
                Some(v) => self.matches.insert(k.clone(), v),
                None => self.matches.remove(k),
            };
        }
    }

    /// Confirmed amount allocated to each installment.
    pub fn received(&self) -> BTreeMap<(String, u32), rust_decimal::Decimal> {
        let mut out = BTreeMap::new();
        for a in self.matches.values().flatten().filter(|a| a.confirmed) {
            *out.entry((a.contract_no.clone(), a.seq)).or_default() += a.amount;
        }
        out
    }
}
