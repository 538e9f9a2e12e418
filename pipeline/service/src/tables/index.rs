//! Which rows belong to which contract, kept up to date batch by batch, so that the tables
//! for the contracts and credits a batch changed are built from those rows only.

use std::collections::{BTreeSet, HashMap};

use reconlight_core::audit::AuditEntry;
use reconlight_core::derived::{Allocation, Installment};
use reconlight_core::multimap::{MultiMap, add, remove};
use reconlight_core::state::{BankRow, Dirty, LiveState};
use reconlight_core::workitems::WorkItem;
use reconlight_formats::model::{Contract, Customer, HandoffTicket, SignatureEvent};

use super::Selection;

/// Secondary indexes from a contract to its rows in the other tables.
#[derive(Default)]
pub struct SubjectIndex {
    tickets: MultiMap,
    ticket_contract: HashMap<String, String>,
    signatures: MultiMap,
    /// Contract to the credits allocated to it, and back.
    credits: MultiMap,
    credit_contracts: MultiMap,
    contracts_of_customer: MultiMap,
    customer_of: HashMap<String, String>,
    work_items: MultiMap,
    /// Contract to its amount changes' positions in `LiveState::amount_changes`.
    amount_changes: HashMap<String, Vec<usize>>,
    amount_changes_seen: usize,
}

/// The subjects a batch changed, by key.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChangedSubjects {
    pub contracts: BTreeSet<String>,
    pub credits: BTreeSet<String>,
}

impl SubjectIndex {
    pub fn new(state: &LiveState) -> Self {
        let mut index = SubjectIndex::default();
        for (no, c) in &state.contracts {
            index.customer_of.insert(no.clone(), c.customer_id.clone());
            add(&mut index.contracts_of_customer, &c.customer_id, no);
        }
        for (id, t) in &state.tickets {
            index
                .ticket_contract
                .insert(id.clone(), t.contract_no.clone());
            add(&mut index.tickets, &t.contract_no, id);
        }
        for (id, e) in &state.signatures {
            if let Some(no) = &e.contract_no {
                add(&mut index.signatures, no, id);
            }
        }
        for (r, allocations) in &state.matches {
            for a in allocations {
                add(&mut index.credits, &a.contract_no, r);
                add(&mut index.credit_contracts, r, &a.contract_no);
            }
        }
        index.index_amount_changes(state);
        index.index_work_items(state);
        index
    }

    /// Takes in a batch's changes (after reconciliation) and says which subjects they touch:
    /// a contract when any of its rows changed, or a credit allocated to it moved; a credit
    /// when it or its allocations changed.
    pub fn update(&mut self, state: &LiveState, dirty: &Dirty) -> ChangedSubjects {
        let mut changed = ChangedSubjects {
            contracts: dirty.contracts.clone(),
            credits: dirty.bank.clone(),
        };
        for no in &dirty.contracts {
            if let Some(old) = self.customer_of.remove(no) {
                remove(&mut self.contracts_of_customer, &old, no);
            }
            if let Some(c) = state.contracts.get(no) {
                self.customer_of.insert(no.clone(), c.customer_id.clone());
                add(&mut self.contracts_of_customer, &c.customer_id, no);
            }
        }
        changed.contracts.extend(dirty.installments.iter().cloned());
        for c in &dirty.customers {
            changed.contracts.extend(
                self.contracts_of_customer
                    .get(c)
                    .into_iter()
                    .flatten()
                    .cloned(),
            );
        }
        for id in &dirty.tickets {
            if let Some(old) = self.ticket_contract.remove(id) {
                remove(&mut self.tickets, &old, id);
                changed.contracts.insert(old);
            }
            if let Some(t) = state.tickets.get(id) {
                self.ticket_contract
                    .insert(id.clone(), t.contract_no.clone());
                add(&mut self.tickets, &t.contract_no, id);
                changed.contracts.insert(t.contract_no.clone());
            }
        }
        for id in &dirty.signatures {
            if let Some(no) = state
                .signatures
                .get(id)
                .and_then(|s| s.contract_no.as_ref())
            {
                add(&mut self.signatures, no, id);
                changed.contracts.insert(no.clone());
            }
        }
        for r in &dirty.matches {
            for old in self.credit_contracts.remove(r).into_iter().flatten() {
                remove(&mut self.credits, &old, r);
                changed.contracts.insert(old);
            }
            for a in state.matches.get(r).into_iter().flatten() {
                add(&mut self.credits, &a.contract_no, r);
                add(&mut self.credit_contracts, r, &a.contract_no);
                changed.contracts.insert(a.contract_no.clone());
            }
            changed.credits.insert(r.clone());
        }
        for id in &dirty.work_items {
            if let Some(no) = state
                .work_items
                .get(id)
                .and_then(|w| w.finding.contract_no.as_ref())
            {
                add(&mut self.work_items, no, id);
                changed.contracts.insert(no.clone());
            }
        }
        self.index_amount_changes(state);
        changed
    }

    /// Indexes the amount changes appended since the last look.
    fn index_amount_changes(&mut self, state: &LiveState) {
        for (at, e) in state
            .amount_changes
            .iter()
            .enumerate()
            .skip(self.amount_changes_seen)
        {
            if e.field == "amount" {
                self.amount_changes
                    .entry(e.key.clone())
                    .or_default()
                    .push(at);
            }
        }
        self.amount_changes_seen = state.amount_changes.len();
    }

    /// Indexes the work items afresh (the nightly diff replaces the queue as a whole).
    pub fn index_work_items(&mut self, state: &LiveState) {
        self.work_items.clear();
        for w in state.work_items.values() {
            if let Some(no) = &w.finding.contract_no {
                add(&mut self.work_items, no, &w.id);
            }
        }
    }
}

/// The rows each table holds for a selection.
#[derive(Default)]
pub(super) struct SelectedRows<'s> {
    pub customers: Vec<&'s Customer>,
    pub contracts: Vec<&'s Contract>,
    pub tickets: Vec<&'s HandoffTicket>,
    pub signatures: Vec<&'s SignatureEvent>,
    pub installments: Vec<(&'s (String, u32), &'s Installment)>,
    /// The allocations to the selected installments (what they received).
    pub allocations_to_installments: Vec<&'s Allocation>,
    pub bank: Vec<&'s BankRow>,
    pub allocations: Vec<&'s Allocation>,
    pub work_items: Vec<&'s WorkItem>,
    pub amount_changes: Vec<&'s AuditEntry>,
}

impl<'s> SelectedRows<'s> {
    pub fn new(state: &'s LiveState, selection: &Selection, index: &'s SubjectIndex) -> Self {
        match selection {
            Selection::All => {
                let allocations: Vec<&Allocation> = state.matches.values().flatten().collect();
                SelectedRows {
                    customers: state.customers.values().collect(),
                    contracts: state.contracts.values().collect(),
                    tickets: state.tickets.values().collect(),
                    signatures: state.signatures.values().collect(),
                    installments: state.installments.iter().collect(),
                    allocations_to_installments: allocations.clone(),
                    bank: state.bank.values().collect(),
                    allocations,
                    work_items: state.work_items.values().collect(),
                    amount_changes: state
                        .amount_changes
                        .iter()
                        .filter(|e| e.field == "amount")
                        .collect(),
                }
            }
            Selection::Contracts(selected) => {
                let mut rows = SelectedRows::default();
                let mut customers = BTreeSet::new();
                let mut credits = BTreeSet::new();
                for no in selected.iter() {
                    let Some(contract) = state.contracts.get(no) else {
                        // Its other rows (a delivery, a signature) still count.
                        rows.add_rows_of(state, index, no, &mut credits);
                        continue;
                    };
                    customers.insert(contract.customer_id.as_str());
                    rows.contracts.push(contract);
                    rows.add_rows_of(state, index, no, &mut credits);
                }
                rows.customers = customers
                    .into_iter()
                    .filter_map(|c| state.customers.get(c))
                    .collect();
                for r in credits {
                    for a in state.matches.get(r).into_iter().flatten() {
                        if selected.contains(&a.contract_no) {
                            rows.allocations.push(a);
                        }
                    }
                }
                rows.allocations_to_installments = rows.allocations.clone();
                rows
            }
            Selection::Credits(selected) => SelectedRows {
                bank: selected.iter().filter_map(|r| state.bank.get(r)).collect(),
                allocations: selected
                    .iter()
                    .flat_map(|r| state.matches.get(r).into_iter().flatten())
                    .collect(),
                ..SelectedRows::default()
            },
        }
    }

    fn add_rows_of(
        &mut self,
        state: &'s LiveState,
        index: &'s SubjectIndex,
        no: &str,
        credits: &mut BTreeSet<&'s str>,
    ) {
        let each = |i: &'s MultiMap| i.get(no).into_iter().flatten();
        self.tickets
            .extend(each(&index.tickets).filter_map(|t| state.tickets.get(t)));
        self.signatures
            .extend(each(&index.signatures).filter_map(|s| state.signatures.get(s)));
        self.work_items
            .extend(each(&index.work_items).filter_map(|w| state.work_items.get(w)));
        credits.extend(each(&index.credits).map(String::as_str));
        self.installments.extend(
            state
                .installments
                .range((no.to_string(), 0)..=(no.to_string(), u32::MAX)),
        );
        self.amount_changes.extend(
            index
                .amount_changes
                .get(no)
                .into_iter()
                .flatten()
                .filter_map(|at| state.amount_changes.get(*at)),
        );
    }
}
