//! What a finance clerk does with a work item: assign it, comment, resolve or dismiss it
//! with a reason, and for a bank credit match it by hand, confirm a suggested match or
//! reject it. Every action is written with who did it and when, in the item's history and
//! the outbox, in one transaction.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::store::{Store, StoreError};
use reconlight_core::outbox::OutboxMessage;
use reconlight_core::reconcile::matching::ManualAllocation;
use reconlight_core::workitems::{HistoryEntry, WorkItem, WorkItemKind, WorkItemState};

/// A clerk's action on a work item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    Assign {
        assignee: String,
    },
    Comment {
        text: String,
    },
    Resolve {
        reason: String,
    },
    Dismiss {
        reason: String,
    },
    /// Apply the item's bank credit (or `amount` of it) to an installment.
    Match {
        contract_no: String,
        installment: u32,
        amount: Option<Decimal>,
    },
    /// Accept a suggested match as it stands.
    Confirm,
    /// Refuse a suggested match: the credit does not pay that installment.
    Reject {
        reason: String,
    },
}

impl Action {
    fn name(&self) -> &'static str {
        match self {
            Action::Assign { .. } => "assigned",
            Action::Comment { .. } => "commented",
            Action::Resolve { .. } => "resolved",
            Action::Dismiss { .. } => "dismissed",
            Action::Match { .. } => "matched",
            Action::Confirm => "confirmed",
            Action::Reject { .. } => "rejected",
        }
    }
}

/// Why an action was refused.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("no work item `{0}`")]
    NotFound(String),
    /// The item's state or kind does not allow the action.
    #[error("{0}")]
    Conflict(String),
    /// The request itself is incomplete or wrong.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn require(text: &str, what: &str) -> Result<(), ActionError> {
    if text.trim().is_empty() {
        Err(ActionError::Invalid(format!("{what} must not be empty")))
    } else {
        Ok(())
    }
}

/// How often an action is tried again when another writer got there first.
const ATTEMPTS: usize = 20;

/// Performs `action` on work item `id` as clerk `by`, at `now`. With `expected`, only on
/// that version of the item (what the clerk saw): another change since is a conflict.
/// Without it, an action that lost a race to another writer is read again and retried, so
/// concurrent comments and assignments all land, and a match checks the credit again.
pub async fn perform(
    store: &Store,
    id: &str,
    by: &str,
    action: Action,
    now: DateTime<Utc>,
    expected: Option<u64>,
) -> Result<WorkItem, ActionError> {
    for attempt in 1..=ATTEMPTS {
        match perform_once(store, id, by, &action, now, expected).await {
            Err(ActionError::Store(e)) if e.is_conflict() => {
                if expected.is_some() || attempt == ATTEMPTS {
                    return Err(ActionError::Conflict(format!(
                        "work item {id} was changed by someone else while you acted: reload it and try again"
                    )));
                }
                // Back off, with jitter so clerks who collided do not collide again.
                let jitter = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.subsec_nanos() as u64 % 10)
                    .unwrap_or(0);
                let wait = (5 * attempt as u64).min(50) + jitter;
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            }
            other => return other,
        }
    }
    unreachable!("the last attempt returns")
}

async fn perform_once(
    store: &Store,
    id: &str,
    by: &str,
    action: &Action,
    now: DateTime<Utc>,
    expected: Option<u64>,
) -> Result<WorkItem, ActionError> {
    require(by, "`by` (who acts)")?;
    let mut item = store
        .work_item(id)
        .await?
        .ok_or_else(|| ActionError::NotFound(id.to_string()))?;
    if let Some(v) = expected.filter(|v| *v != item.version) {
        return Err(ActionError::Conflict(format!(
            "work item {id} is at version {} now, not {v}: someone else acted on it first; reload it",
            item.version
        )));
    }
    let active = item.state.is_active();
    let refuse = |what: &str| {
        ActionError::Conflict(format!(
            "work item {id} is {}; only open or assigned items can be {what}",
            item.state.as_str()
        ))
    };
    let mut decision = None;
    let note = match action {
        Action::Assign { assignee } => {
            require(assignee, "`assignee`")?;
            if !active {
                return Err(refuse("assigned"));
            }
            item.state = WorkItemState::Assigned;
            item.assignee = Some(assignee.clone());
            format!("assigned to {assignee}")
        }
        Action::Comment { text } => {
            require(text, "`text`")?;
            text.clone()
        }
        Action::Resolve { reason } => {
            require(reason, "`reason`")?;
            if !active {
                return Err(refuse("resolved"));
            }
            item.state = WorkItemState::Resolved;
            item.resolution = Some(format!("resolved by {by}: {reason}"));
            reason.clone()
        }
        Action::Dismiss { reason } => {
            require(reason, "`reason` (why this is not a problem)")?;
            if !active {
                return Err(refuse("dismissed"));
            }
            item.state = WorkItemState::Dismissed;
            item.resolution = Some(format!("dismissed by {by}: {reason}"));
            reason.clone()
        }
        Action::Match {
            contract_no,
            installment,
            amount,
        } => {
            if !active {
                return Err(refuse("matched"));
            }
            let bank_ref = credit_of(&item)?;
            let credit = store.bank_row(&bank_ref).await?.ok_or_else(|| {
                ActionError::Conflict(format!("bank credit {bank_ref} is no longer in the store"))
            })?;
            let installments = store.installments_of(contract_no).await?;
            if !installments.iter().any(|i| i.seq == *installment) {
                return Err(ActionError::Invalid(format!(
                    "{contract_no} has no installment {installment}"
                )));
            }
            let amount = amount.unwrap_or(credit.tx.amount.amount);
            if amount <= Decimal::ZERO || amount > credit.tx.amount.amount {
                return Err(ActionError::Invalid(format!(
                    "amount {amount} must be positive and at most the credit's {}",
                    credit.tx.amount.amount
                )));
            }
            let mut d = store.manual_decision_of(&bank_ref).await?;
            let taken: Decimal = d.allocations.iter().map(|a| a.amount).sum();
            if taken + amount > credit.tx.amount.amount {
                return Err(ActionError::Conflict(format!(
                    "credit {bank_ref} of {} has {taken} matched by hand already; {amount} more would exceed it",
                    credit.tx.amount.amount
                )));
            }
            d.version += 1;
            d.allocations.push(ManualAllocation {
                contract_no: contract_no.clone(),
                seq: *installment,
                amount,
                by: by.to_string(),
                at: now,
                note: String::new(),
            });
            decision = Some(d);
            item.state = WorkItemState::Resolved;
            item.resolution = Some(format!(
                "matched by {by} to {contract_no} installment {installment}"
            ));
            format!("matched {amount} of {bank_ref} to {contract_no} installment {installment}")
        }
        Action::Confirm | Action::Reject { .. } => {
            if item.finding.kind != WorkItemKind::SuggestedMatch {
                return Err(ActionError::Conflict(format!(
                    "work item {id} is a {}; only suggested matches can be confirmed or rejected",
                    item.finding.kind
                )));
            }
            if !active {
                return Err(refuse(if *action == Action::Confirm {
                    "confirmed"
                } else {
                    "rejected"
                }));
            }
            let bank_ref = credit_of(&item)?;
            let suggestions: Vec<(String, u32, Decimal)> = item.finding.details["suggestions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| {
                    Some((
                        s["contract_no"].as_str()?.to_string(),
                        s["seq"].as_u64()? as u32,
                        s["amount"].as_str()?.parse().ok()?,
                    ))
                })
                .collect();
            if suggestions.is_empty() {
                return Err(ActionError::Conflict(format!(
                    "work item {id} carries no suggestion"
                )));
            }
            let mut d = store.manual_decision_of(&bank_ref).await?;
            d.version += 1;
            if let Action::Reject { reason } = action {
                require(reason, "`reason`")?;
                d.rejected
                    .extend(suggestions.iter().map(|(c, s, _)| (c.clone(), *s)));
                item.state = WorkItemState::Dismissed;
                item.resolution = Some(format!("suggestion rejected by {by}: {reason}"));
                decision = Some(d);
                reason.clone()
            } else {
                d.allocations
                    .extend(suggestions.iter().map(|(c, s, a)| ManualAllocation {
                        contract_no: c.clone(),
                        seq: *s,
                        amount: *a,
                        by: by.to_string(),
                        at: now,
                        note: "suggested match confirmed".into(),
                    }));
                item.state = WorkItemState::Resolved;
                item.resolution = Some(format!("suggested match confirmed by {by}"));
                decision = Some(d);
                "suggested match confirmed".into()
            }
        }
    };
    item.history.push(HistoryEntry {
        at: now,
        by: by.to_string(),
        action: action.name().into(),
        note,
    });
    item.updated_at = now;
    item.version += 1;
    let message = OutboxMessage::new("work_items", &item.id, &item, now);
    store
        .save_action(&item, decision.as_ref(), &message)
        .await?;
    Ok(item)
}

fn credit_of(item: &WorkItem) -> Result<String, ActionError> {
    match item.finding.kind {
        WorkItemKind::UnmatchedReceipt | WorkItemKind::SuggestedMatch => {
            item.finding.bank_ref.clone().ok_or_else(|| {
                ActionError::Conflict(format!("work item {} names no bank credit", item.id))
            })
        }
        other => Err(ActionError::Conflict(format!(
            "work item {} is a {other}; only unmatched receipts and suggested matches are matched by hand",
            item.id
        ))),
    }
}
