//! The alert lifecycle: a breach becomes pending, fires once it has held for the rule's
//! `for`, escalates when its level rises, and resolves once it has been gone for
//! `keep_firing_for` (and its hysteresis condition no longer holds). The whole state is a
//! plain value the pipeline stores with each batch, so timers survive a restart.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use reconlight_core::alerts::{Acknowledgement, Alert, AlertState, Level};

use crate::engine::{Breach, Evaluation};
use crate::rule::Rule;
use crate::template::render;

/// A change worth telling someone about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transition {
    Pending,
    Fired,
    /// Level rose (yellow -> red) while firing.
    Escalated,
    /// Level fell (red -> yellow) while firing.
    Eased,
    Resolved,
    /// The breach cleared before `for` passed; the alert never fired.
    Cancelled,
    /// Nobody acknowledged it in time: it climbed to the next escalation tier.
    TierUp,
    /// Someone took it.
    Acknowledged,
}

/// The stable id of a rule's alert for a subject.
pub fn alert_id(rule_id: &str, subject: &str) -> String {
    let digest = Sha256::digest(format!("{rule_id}\u{1f}{subject}").as_bytes());
    format!("AL-{}", &hex::encode(digest)[..16])
}

/// Applies one evaluation of `rule` to its current alerts. Returns the alerts that changed
/// (including removed pending ones, as `Cancelled`) with what happened to each.
pub fn apply(
    rule: &Rule,
    evaluation: &Evaluation,
    current: &BTreeMap<String, Alert>,
    now: DateTime<Utc>,
) -> Vec<(Alert, Option<Transition>)> {
    apply_among(
        rule,
        evaluation,
        current,
        current.values().filter(|a| a.rule_id == rule.id),
        now,
    )
}

/// `apply` for an evaluation that covered only some subjects: of the rule's alerts not in
/// breach, only those in `evaluated` (the subjects the evaluation looked at) may clear.
pub fn apply_among<'a>(
    rule: &Rule,
    evaluation: &Evaluation,
    current: &BTreeMap<String, Alert>,
    evaluated: impl Iterator<Item = &'a Alert>,
    now: DateTime<Utc>,
) -> Vec<(Alert, Option<Transition>)> {
    let mut changes = Vec::new();
    let breaching: BTreeMap<&str, &Breach> = evaluation
        .breaches
        .iter()
        .map(|b| (b.subject.as_str(), b))
        .collect();
    for breach in &evaluation.breaches {
        let id = alert_id(&rule.id, &breach.subject);
        let existing = current.get(&id);
        if let Some(change) = on_breach(rule, existing, breach, &id, now) {
            changes.push(change);
        }
    }
    for alert in evaluated {
        if breaching.contains_key(alert.subject.as_str()) {
            continue;
        }
        match alert.state {
            AlertState::Resolved => {}
            AlertState::Pending => {
                let mut a = alert.clone();
                a.state = AlertState::Resolved;
                a.resolved_at = Some(now);
                a.updated_at = now;
                changes.push((a, Some(Transition::Cancelled)));
            }
            AlertState::Firing => {
                let mut a = alert.clone();
                if evaluation.holding.contains(&alert.subject) {
                    if a.cleared_at.take().is_some() {
                        changes.push((a, None));
                    }
                    continue;
                }
                let cleared_at = *a.cleared_at.get_or_insert(now);
                if now - cleared_at >= rule.keep_firing_for {
                    a.state = AlertState::Resolved;
                    a.resolved_at = Some(now);
                    a.updated_at = now;
                    changes.push((a, Some(Transition::Resolved)));
                } else if alert.cleared_at.is_none() {
                    changes.push((a, None));
                }
            }
        }
    }
    changes
}

fn on_breach(
    rule: &Rule,
    existing: Option<&Alert>,
    breach: &Breach,
    id: &str,
    now: DateTime<Utc>,
) -> Option<(Alert, Option<Transition>)> {
    // Most breaches of a batch's evaluation are the alerts as they stand: say so before
    // rendering anything.
    if let Some(a) = existing
        && a.state != AlertState::Resolved
        && a.cleared_at.is_none()
        && a.level == breach.level
        && a.fields == breach.fields
        && !(a.state == AlertState::Pending && now - a.active_since >= rule.for_)
    {
        return None;
    }
    let annotations: BTreeMap<String, String> = rule
        .annotations
        .iter()
        .map(|(k, t)| (k.clone(), render(t, &breach.fields)))
        .collect();
    let mut labels = rule.labels.clone();
    labels.insert("rule".into(), rule.id.clone());
    labels.insert("level".into(), breach.level.as_str().into());
    match existing {
        Some(a) if a.state != AlertState::Resolved => {
            let mut a = a.clone();
            let timer_reset = a.cleared_at.take().is_some();
            let before = (a.state, a.level, a.fields.clone());
            let mut transition = None;
            if a.state == AlertState::Pending && now - a.active_since >= rule.for_ {
                a.state = AlertState::Firing;
                a.fired_at = Some(now);
                transition = Some(Transition::Fired);
            } else if a.state == AlertState::Firing && breach.level != a.level {
                transition = Some(if breach.level > a.level {
                    Transition::Escalated
                } else {
                    Transition::Eased
                });
            }
            a.level = breach.level;
            a.fields = breach.fields.clone();
            a.annotations = annotations;
            a.labels = labels;
            if transition.is_none() && before == (a.state, a.level, a.fields.clone()) {
                // Nothing a reader could see changed.
                return timer_reset.then_some((a, None));
            }
            a.updated_at = now;
            Some((a, transition))
        }
        _ => {
            let fires_now = rule.for_.is_zero();
            let alert = Alert {
                id: id.to_string(),
                rule_id: rule.id.clone(),
                subject: breach.subject.clone(),
                state: if fires_now {
                    AlertState::Firing
                } else {
                    AlertState::Pending
                },
                level: breach.level,
                active_since: now,
                fired_at: fires_now.then_some(now),
                cleared_at: None,
                resolved_at: None,
                updated_at: now,
                title: rule.title.clone(),
                labels,
                annotations,
                fields: breach.fields.clone(),
                tier: 0,
                notify: Vec::new(),
                acknowledged: None,
            };
            Some((
                alert,
                Some(if fires_now {
                    Transition::Fired
                } else {
                    Transition::Pending
                }),
            ))
        }
    }
}
