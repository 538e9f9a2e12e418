//! Alerts as the live state keeps them: a rule's breach for one subject, where it is in its
//! life, its level and who acknowledged it. The rule engine (`reconlight-rules`) decides how
//! they change; the state, the store and the notifiers only carry them.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How bad a breach is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Yellow,
    Red,
}

impl Level {
    pub fn as_str(&self) -> &'static str {
        match self {
            Level::Yellow => "yellow",
            Level::Red => "red",
        }
    }

    pub fn parse(text: &str) -> Option<Level> {
        match text.trim().to_ascii_lowercase().as_str() {
            "yellow" => Some(Level::Yellow),
            "red" => Some(Level::Red),
            _ => None,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an alert is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// In breach, waiting for `for` to pass.
    Pending,
    Firing,
    Resolved,
}

impl AlertState {
    pub fn as_str(&self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// An `alerts` outbox message's payload: what happened (a lifecycle transition or
/// `acknowledged`) and the alert as it stands after it. Serialized straight from the alert,
/// its fields in their declared order.
#[derive(Serialize)]
pub struct AlertMessage<'a, T: Serialize> {
    pub transition: T,
    pub alert: &'a Alert,
}

/// One alert: a rule's breach for one subject.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable for the rule and subject, so receivers deduplicate.
    pub id: String,
    pub rule_id: String,
    pub subject: String,
    pub state: AlertState,
    pub level: Level,
    /// When the current breach began.
    pub active_since: DateTime<Utc>,
    pub fired_at: Option<DateTime<Utc>>,
    /// When a firing alert's breach (and its hysteresis condition) was first seen gone;
    /// it resolves once this is `keep_firing_for` old.
    pub cleared_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub title: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// The breach row's columns at the last evaluation.
    pub fields: BTreeMap<String, String>,
    /// The escalation tier reached in this firing (0 = the first).
    #[serde(default)]
    pub tier: u32,
    /// Who the current tier notifies.
    #[serde(default)]
    pub notify: Vec<String>,
    /// Someone took it: the climb stops.
    #[serde(default)]
    pub acknowledged: Option<Acknowledgement>,
}

/// Who acknowledged a firing alert, when and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgement {
    pub by: String,
    pub at: DateTime<Utc>,
    pub reason: String,
    /// The firing it applies to: a later firing of the same alert starts unacknowledged.
    pub fired_at: Option<DateTime<Utc>>,
}
