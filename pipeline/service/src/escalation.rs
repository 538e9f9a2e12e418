//! Escalation: a firing alert climbs its policy's tiers each time a tier's delay passes
//! without anyone acknowledging it; acknowledging stops the climb. Policies are
//! configuration; targets may name the alert's fields (`{department}-director`).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use reconlight_rules::duration::parse_duration;
use reconlight_rules::template::render;
use reconlight_rules::{Alert, AlertState};
use serde::Deserialize;

use crate::settings::{ConfigDuration, ConfigProblem, problem};

/// One tier: after how long since firing, and whom it notifies.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// `0s`, `4h`, `1d`...
    pub after: ConfigDuration,
    pub notify: Vec<String>,
}

/// An escalation policy.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub tiers: Vec<Tier>,
    /// How its alerts read in chat robots and email (a rule's `message_zh`/`message_en`
    /// annotations take precedence).
    #[serde(default)]
    pub message: crate::config::notifiers::MessageTemplates,
}

/// The configured policies, by name.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EscalationConfig {
    pub policies: BTreeMap<String, Policy>,
}

impl Default for EscalationConfig {
    fn default() -> Self {
        let tier = |after: &str, notify: &[&str]| Tier {
            after: ConfigDuration(parse_duration(after).expect("a valid default")),
            notify: notify.iter().map(|s| s.to_string()).collect(),
        };
        EscalationConfig {
            policies: BTreeMap::from([
                (
                    "handoff".to_string(),
                    Policy {
                        tiers: vec![
                            tier("0s", &["{department}-director"]),
                            tier("4h", &["{department}-director", "oncall"]),
                        ],
                        message: Default::default(),
                    },
                ),
                (
                    "finance".to_string(),
                    Policy {
                        tiers: vec![tier("0s", &["finance"]), tier("24h", &["finance", "cfo"])],
                        message: Default::default(),
                    },
                ),
            ]),
        }
    }
}

impl EscalationConfig {
    /// Checks every delay parses and tiers are in order.
    pub fn validate(&self) -> Result<(), ConfigProblem> {
        for (name, p) in &self.policies {
            if p.tiers.is_empty() {
                return Err(problem(
                    format!("escalation.policies.{name}"),
                    "has no tiers",
                ));
            }
            let mut last = Duration::zero();
            for (i, t) in p.tiers.iter().enumerate() {
                let d = t.after.0;
                if d < last {
                    return Err(problem(
                        format!("escalation.policies.{name} tier {}", i + 1),
                        "delays must not decrease",
                    ));
                }
                last = d;
            }
        }
        Ok(())
    }

    /// Where a firing alert stands now: its tier and whom to notify, if that is a change.
    pub fn step(
        &self,
        policy: &str,
        alert: &Alert,
        now: DateTime<Utc>,
    ) -> Option<(u32, Vec<String>)> {
        let p = self.policies.get(policy)?;
        if alert.state != AlertState::Firing || alert.acknowledged.is_some() {
            return None;
        }
        let fired = alert.fired_at?;
        let tier = p
            .tiers
            .iter()
            .enumerate()
            .filter(|(_, t)| now - fired >= t.after.0)
            .map(|(i, _)| i)
            .next_back()?;
        let notify: Vec<String> = p.tiers[tier]
            .notify
            .iter()
            .map(|t| render(t, &alert.fields))
            .collect();
        (tier as u32 != alert.tier || notify != alert.notify).then_some((tier as u32, notify))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reconlight_rules::Level;

    fn alert(fired: &str) -> Alert {
        let t: DateTime<Utc> = fired.parse().unwrap();
        Alert {
            id: "AL-1".into(),
            rule_id: "handoffs.acknowledgement_sla".into(),
            subject: "TK-1".into(),
            state: AlertState::Firing,
            level: Level::Red,
            active_since: t,
            fired_at: Some(t),
            cleared_at: None,
            resolved_at: None,
            updated_at: t,
            title: String::new(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            fields: BTreeMap::from([("department".to_string(), "delivery".to_string())]),
            tier: 0,
            notify: Vec::new(),
            acknowledged: None,
        }
    }

    #[test]
    fn climbs_until_acknowledged() {
        let config = EscalationConfig::default();
        let mut a = alert("2026-10-01T00:00:00Z");
        let (tier, notify) = config
            .step("handoff", &a, "2026-10-01T00:00:00Z".parse().unwrap())
            .unwrap();
        assert_eq!(
            (tier, notify.as_slice()),
            (0, ["delivery-director".to_string()].as_slice())
        );
        a.notify = notify;
        assert_eq!(
            config.step("handoff", &a, "2026-10-01T03:59:00Z".parse().unwrap()),
            None
        );
        let (tier, notify) = config
            .step("handoff", &a, "2026-10-01T04:00:00Z".parse().unwrap())
            .unwrap();
        assert_eq!(
            (tier, notify),
            (
                1,
                vec!["delivery-director".to_string(), "oncall".to_string()]
            )
        );
        a.acknowledged = Some(reconlight_rules::Acknowledgement {
            by: "zhang.wei".into(),
            at: "2026-10-01T01:00:00Z".parse().unwrap(),
            reason: "on it".into(),
            fired_at: a.fired_at,
        });
        assert_eq!(
            config.step("handoff", &a, "2026-10-02T00:00:00Z".parse().unwrap()),
            None,
            "acknowledged: no climb"
        );
        assert!(EscalationConfig::default().validate().is_ok());
    }
}
