//! Finance's discrepancy queue: one work item per real problem, with a stable id so a
//! re-run updates and never duplicates, auto-resolved when the problem goes away and
//! reopened when it comes back.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What kind of discrepancy a work item is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkItemKind {
    /// An installment due before the business date with nothing received.
    MissingPayment,
    /// Less received than expected, for an installment already due.
    PartialPayment,
    /// More received than expected.
    Overpayment,
    /// Paid in full twice by separate credits.
    DuplicatePayment,
    /// A bank credit matched to no installment.
    UnmatchedReceipt,
    /// The CRM amount differs from the CA-signed contract amount.
    AmountMismatch,
    /// The CRM says signed, but no CA-certified completed signature exists.
    SignatureNotCertified,
    /// The contract's payment terms cannot be turned into installments.
    TermsUnparseable,
    /// A low-confidence match for a clerk to confirm or reject.
    SuggestedMatch,
}

impl WorkItemKind {
    pub const ALL: [WorkItemKind; 9] = [
        WorkItemKind::MissingPayment,
        WorkItemKind::PartialPayment,
        WorkItemKind::Overpayment,
        WorkItemKind::DuplicatePayment,
        WorkItemKind::UnmatchedReceipt,
        WorkItemKind::AmountMismatch,
        WorkItemKind::SignatureNotCertified,
        WorkItemKind::TermsUnparseable,
        WorkItemKind::SuggestedMatch,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            WorkItemKind::MissingPayment => "missing_payment",
            WorkItemKind::PartialPayment => "partial_payment",
            WorkItemKind::Overpayment => "overpayment",
            WorkItemKind::DuplicatePayment => "duplicate_payment",
            WorkItemKind::UnmatchedReceipt => "unmatched_receipt",
            WorkItemKind::AmountMismatch => "amount_mismatch",
            WorkItemKind::SignatureNotCertified => "signature_not_certified",
            WorkItemKind::TermsUnparseable => "terms_unparseable",
            WorkItemKind::SuggestedMatch => "suggested_match",
        }
    }
}

impl fmt::Display for WorkItemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WorkItemKind {
    type Err = reconlight_formats::UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WorkItemKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| reconlight_formats::UnknownName::new("work item kind", s, ""))
    }
}

/// Where a work item is in finance's queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkItemState {
    Open,
    Assigned,
    Resolved,
    Dismissed,
}

impl WorkItemState {
    pub const ALL: [WorkItemState; 4] = [
        WorkItemState::Open,
        WorkItemState::Assigned,
        WorkItemState::Resolved,
        WorkItemState::Dismissed,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            WorkItemState::Open => "open",
            WorkItemState::Assigned => "assigned",
            WorkItemState::Resolved => "resolved",
            WorkItemState::Dismissed => "dismissed",
        }
    }

    /// Open or assigned: someone still has to act.
    pub fn is_active(&self) -> bool {
        matches!(self, WorkItemState::Open | WorkItemState::Assigned)
    }
}

/// A problem the nightly diff found, before it becomes (or updates) a work item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: WorkItemKind,
    pub contract_no: Option<String>,
    pub installment: Option<u32>,
    pub bank_ref: Option<String>,
    pub customer_id: Option<String>,
    pub currency: Option<String>,
    pub expected: Option<Decimal>,
    pub received: Option<Decimal>,
    /// One line a clerk reads first.
    pub summary: String,
    /// The evidence: credits, allocations and their explanations, signature events.
    pub details: serde_json::Value,
}

impl Finding {
    /// The stable id of the problem: its kind and subject.
    pub fn id(&self) -> String {
        work_item_id(
            self.kind,
            self.contract_no.as_deref(),
            self.installment,
            self.bank_ref.as_deref(),
        )
    }

    /// The money at stake, for SLA tiers and reports.
    pub fn amount_at_stake(&self) -> Decimal {
        if self.kind == WorkItemKind::SuggestedMatch {
            // The whole credit waits for a clerk's decision.
            return self.received.unwrap_or_default();
        }
        match (self.expected, self.received) {
            (Some(e), Some(r)) => (e - r).abs(),
            (Some(e), None) => e,
            (None, Some(r)) => r,
            (None, None) => Decimal::ZERO,
        }
    }
}

/// The stable id of a work item for a kind and subject.
pub fn work_item_id(
    kind: WorkItemKind,
    contract_no: Option<&str>,
    installment: Option<u32>,
    bank_ref: Option<&str>,
) -> String {
    let key = format!(
        "{}\u{1f}{}\u{1f}{}\u{1f}{}",
        kind.as_str(),
        contract_no.unwrap_or(""),
        installment.map(|i| i.to_string()).unwrap_or_default(),
        bank_ref.unwrap_or("")
    );
    format!("WI-{}", &hex::encode(Sha256::digest(key.as_bytes()))[..16])
}

/// One note in a work item's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    /// `nightly` for the diff, else the clerk.
    pub by: String,
    pub action: String,
    pub note: String,
}

/// A discrepancy in finance's queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkItem {
    pub id: String,
    pub state: WorkItemState,
    #[serde(flatten)]
    pub finding: Finding,
    /// The business date the problem was first found.
    pub first_found: NaiveDate,
    /// The business date of the latest nightly diff that found it.
    pub last_found: NaiveDate,
    pub sla_due: NaiveDate,
    pub assignee: Option<String>,
    pub resolution: Option<String>,
    pub history: Vec<HistoryEntry>,
    pub updated_at: DateTime<Utc>,
    /// Counts the changes; a write succeeds only over the version it read.
    #[serde(default)]
    pub version: u64,
}

/// Days to act, by the money at stake: the first tier whose threshold the amount reaches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaTiers(pub Vec<(Decimal, i64)>);

impl Default for SlaTiers {
    fn default() -> Self {
        SlaTiers(vec![
            (Decimal::new(100_000, 0), 1),
            (Decimal::new(10_000, 0), 3),
            (Decimal::ZERO, 7),
        ])
    }
}

impl SlaTiers {
    pub fn days_for(&self, amount: Decimal) -> i64 {
        self.0
            .iter()
            .find(|(min, _)| amount >= *min)
            .map(|(_, d)| *d)
            .unwrap_or(7)
    }
}

/// What reconciling the queue against one night's findings changed.
#[derive(Debug, Default)]
pub struct QueueChanges {
    pub changed: Vec<WorkItem>,
    pub opened: usize,
    pub reopened: usize,
    pub updated: usize,
    pub auto_resolved: usize,
}

/// Brings the queue in line with the findings of the diff for `date`.
pub fn reconcile_queue(
    items: &BTreeMap<String, WorkItem>,
    findings: &[Finding],
    date: NaiveDate,
    sla: &SlaTiers,
    now: DateTime<Utc>,
) -> QueueChanges {
    let mut out = QueueChanges::default();
    let mut found = std::collections::BTreeSet::new();
    for f in findings {
        let id = f.id();
        found.insert(id.clone());
        match items.get(&id) {
            None => {
                out.opened += 1;
                out.changed.push(WorkItem {
                    id,
                    state: WorkItemState::Open,
                    finding: f.clone(),
                    first_found: date,
                    last_found: date,
                    sla_due: date + chrono::Duration::days(sla.days_for(f.amount_at_stake())),
                    assignee: None,
                    resolution: None,
                    history: vec![HistoryEntry {
                        at: now,
                        by: "nightly".into(),
                        action: "opened".into(),
                        note: format!("found by the nightly diff of {date}"),
                    }],
                    updated_at: now,
                    version: 1,
                });
            }
            Some(item) => {
                let mut item = item.clone();
                let mut changed = false;
                if item.state == WorkItemState::Resolved && item.last_found < date {
                    item.state = WorkItemState::Open;
                    item.resolution = None;
                    item.history.push(HistoryEntry {
                        at: now,
                        by: "nightly".into(),
                        action: "reopened".into(),
                        note: format!("found again by the nightly diff of {date}"),
                    });
                    out.reopened += 1;
                    changed = true;
                }
                if item.finding != *f {
                    item.finding = f.clone();
                    out.updated += 1;
                    changed = true;
                }
                if item.last_found < date {
                    item.last_found = date;
                    changed = true;
                }
                if changed {
                    item.updated_at = now;
                    item.version += 1;
                    out.changed.push(item);
                }
            }
        }
    }
    for item in items.values() {
        if item.state.is_active() && !found.contains(&item.id) && item.last_found <= date {
            let mut item = item.clone();
            item.state = WorkItemState::Resolved;
            item.resolution = Some(format!(
                "auto-resolved: no longer found by the nightly diff of {date}"
            ));
            item.history.push(HistoryEntry {
                at: now,
                by: "nightly".into(),
                action: "auto_resolved".into(),
                note: format!("no longer found by the nightly diff of {date}"),
            });
            item.updated_at = now;
            item.version += 1;
            out.auto_resolved += 1;
            out.changed.push(item);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(received: &str) -> Finding {
        Finding {
            kind: WorkItemKind::PartialPayment,
            contract_no: Some("HT-2026-000001".into()),
            installment: Some(2),
            bank_ref: None,
            customer_id: Some("C00001".into()),
            currency: Some("CNY".into()),
            expected: Some("150000.00".parse().unwrap()),
            received: Some(received.parse().unwrap()),
            summary: "short".into(),
            details: serde_json::json!({}),
        }
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    fn apply(items: &mut BTreeMap<String, WorkItem>, findings: &[Finding], d: u32) -> QueueChanges {
        let changes = reconcile_queue(
            items,
            findings,
            day(d),
            &SlaTiers::default(),
            day(d).and_hms_opt(18, 0, 0).unwrap().and_utc(),
        );
        for w in &changes.changed {
            items.insert(w.id.clone(), w.clone());
        }
        changes
    }

    #[test]
    fn opens_updates_auto_resolves_and_reopens_one_item() {
        let mut items = BTreeMap::new();
        let c = apply(&mut items, &[finding("50000.00")], 1);
        assert_eq!((c.opened, items.len()), (1, 1));
        let id = finding("0").id();
        assert_eq!(items[&id].sla_due, day(2), "100,000 at stake: one day");
        assert_eq!(
            apply(&mut items, &[finding("50000.00")], 1).changed.len(),
            0,
            "a re-run changes nothing"
        );
        let c = apply(&mut items, &[finding("80000.00")], 2);
        assert_eq!(
            (c.updated, items[&id].finding.received),
            (1, Some("80000.00".parse().unwrap()))
        );
        let c = apply(&mut items, &[], 3);
        assert_eq!(c.auto_resolved, 1);
        assert_eq!(items[&id].state, WorkItemState::Resolved);
        let c = apply(&mut items, &[finding("80000.00")], 4);
        assert_eq!(
            (c.reopened, items.len()),
            (1, 1),
            "the same item comes back, never a duplicate"
        );
        assert_eq!(items[&id].state, WorkItemState::Open);
        let actions: Vec<&str> = items[&id]
            .history
            .iter()
            .map(|h| h.action.as_str())
            .collect();
        assert_eq!(actions, ["opened", "auto_resolved", "reopened"]);
    }

    #[test]
    fn a_dismissed_item_stays_dismissed() {
        let mut items = BTreeMap::new();
        apply(&mut items, &[finding("50000.00")], 1);
        let id = finding("0").id();
        items.get_mut(&id).unwrap().state = WorkItemState::Dismissed;
        let c = apply(&mut items, &[finding("50000.00")], 2);
        assert_eq!((c.reopened, c.auto_resolved), (0, 0));
        assert_eq!(items[&id].state, WorkItemState::Dismissed);
    }

    #[test]
    fn sla_tiers_follow_the_money() {
        let tiers = SlaTiers::default();
        assert_eq!(tiers.days_for("100000".parse().unwrap()), 1);
        assert_eq!(tiers.days_for("99999.99".parse().unwrap()), 3);
        assert_eq!(tiers.days_for("9999.99".parse().unwrap()), 7);
    }
}
