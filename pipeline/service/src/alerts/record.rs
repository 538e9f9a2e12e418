//! What an evaluation changes in the alert set: lifecycle transitions recorded in the
//! state, the outbox and the metrics; escalation tiers climbed; acknowledgements applied.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use reconlight_core::alerts::AlertMessage;
use reconlight_core::outbox::OutboxMessage;
use reconlight_core::state::{Dirty, LiveState};
use reconlight_rules::{Alert, Rule, Transition};

use crate::escalation::EscalationConfig;
use crate::metrics::Metrics;

/// Applies clerks' and on-call's acknowledgements to the alerts they were made for.
pub fn apply_acks(
    state: &mut LiveState,
    acks: &BTreeMap<String, reconlight_rules::Acknowledgement>,
    dirty: &mut Dirty,
) {
    for (id, ack) in acks {
        if let Some(alert) = state.alerts.get_mut(id)
            && alert.state == reconlight_rules::AlertState::Firing
            && alert.fired_at == ack.fired_at
            && alert.acknowledged.as_ref() != Some(ack)
        {
            alert.acknowledged = Some(ack.clone());
            dirty.alerts.insert(id.clone());
        }
    }
}

/// Climbs the escalation tiers of a rule's firing alerts whose delays have passed.
#[allow(clippy::too_many_arguments)]
pub(super) fn escalate(
    rule: &Rule,
    policy: &str,
    ids: &BTreeSet<String>,
    escalation: &EscalationConfig,
    state: &mut LiveState,
    now: DateTime<Utc>,
    dirty: &mut Dirty,
    metrics: &Metrics,
) {
    for id in ids {
        let Some(alert) = state.alerts.get_mut(id) else {
            continue;
        };
        let Some((tier, notify)) = escalation.step(policy, alert, now) else {
            continue;
        };
        let climbed = tier > alert.tier;
        alert.tier = tier;
        alert.notify = notify;
        dirty.alerts.insert(id.clone());
        if climbed {
            metrics
                .alert_transitions
                .with_label_values(&[&rule.id, "tier_up"])
                .inc();
            dirty.outbox.push(OutboxMessage::new(
                "alerts",
                id,
                &AlertMessage {
                    transition: Transition::TierUp,
                    alert,
                },
                now,
            ));
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn record(
    rule: &Rule,
    changes: Vec<(Alert, Option<Transition>)>,
    state: &mut LiveState,
    now: DateTime<Utc>,
    dirty: &mut Dirty,
    metrics: &Metrics,
    escalation: &EscalationConfig,
    active: &mut super::active::ActiveAlerts,
) {
    for (mut alert, transition) in changes {
        // A newly firing alert notifies its policy's first tier from the start.
        if transition == Some(Transition::Fired)
            && let Some(policy) = &rule.escalation
            && let Some((tier, notify)) = escalation.step(policy, &alert, now)
        {
            alert.tier = tier;
            alert.notify = notify;
        }
        if let Some(t) = transition {
            let name = serde_json::to_value(t)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            metrics
                .alert_transitions
                .with_label_values(&[&rule.id, &name])
                .inc();
            dirty.outbox.push(OutboxMessage::new(
                "alerts",
                &alert.id,
                &AlertMessage {
                    transition: t,
                    alert: &alert,
                },
                now,
            ));
            // A rule may ask other systems to act when it fires (e.g. `lead.nurture`).
            if let (Transition::Fired, Some(action)) = (t, &rule.action) {
                dirty.outbox.push(OutboxMessage::new(
                    "actions",
                    &alert.id,
                    &serde_json::json!({
                        "action": action,
                        "rule": rule.id,
                        "subject": alert.subject,
                        "alert_id": alert.id,
                        "fields": alert.fields,
                        "at": now,
                    }),
                    now,
                ));
            }
        }
        active.update(state.alerts.get(&alert.id), &alert);
        dirty.alerts.insert(alert.id.clone());
        state.alerts.insert(alert.id.clone(), alert);
    }
}
