//! The pending and firing alerts, by rule and by the subject keys rules are partitioned by,
//! so that a batch's evaluation looks up the alerts of the subjects it changed instead of
//! reading every active alert of the rule.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use reconlight_rules::{Alert, AlertState};

use crate::tables::PARTITIONINGS;

/// Field name, then field value, to alert ids.
type ByField = HashMap<&'static str, HashMap<String, BTreeSet<String>>>;

#[derive(Default)]
pub(super) struct ActiveAlerts {
    by_rule: BTreeMap<String, BTreeSet<String>>,
    by_field: HashMap<String, ByField>,
}

impl ActiveAlerts {
    pub fn clear(&mut self) {
        self.by_rule.clear();
        self.by_field.clear();
    }

    /// The rule's active alert ids.
    pub fn of_rule(&self, rule_id: &str) -> Option<&BTreeSet<String>> {
        self.by_rule.get(rule_id)
    }

    /// The rule's active alerts whose `field` holds one of `values`, in id order.
    pub fn with_values<'a>(
        &self,
        rule_id: &str,
        field: &str,
        values: &BTreeSet<String>,
        alerts: &'a BTreeMap<String, Alert>,
    ) -> Vec<&'a Alert> {
        let Some(by_value) = self.by_field.get(rule_id).and_then(|f| f.get(field)) else {
            return Vec::new();
        };
        let ids: BTreeSet<&String> = values
            .iter()
            .filter_map(|v| by_value.get(v))
            .flatten()
            .collect();
        ids.into_iter().filter_map(|id| alerts.get(id)).collect()
    }

    /// Notes an alert's new version (`before` is the one it replaces, if any).
    pub fn update(&mut self, before: Option<&Alert>, after: &Alert) {
        if let Some(old) = before {
            self.remove(old);
        }
        if after.state == AlertState::Resolved {
            if let Some(ids) = self.by_rule.get_mut(&after.rule_id) {
                ids.remove(&after.id);
            }
            return;
        }
        self.by_rule
            .entry(after.rule_id.clone())
            .or_default()
            .insert(after.id.clone());
        let fields = self.by_field.entry(after.rule_id.clone()).or_default();
        for p in &PARTITIONINGS {
            if let Some(value) = after.fields.get(p.key) {
                fields
                    .entry(p.key)
                    .or_default()
                    .entry(value.clone())
                    .or_default()
                    .insert(after.id.clone());
            }
        }
    }

    fn remove(&mut self, alert: &Alert) {
        let Some(fields) = self.by_field.get_mut(&alert.rule_id) else {
            return;
        };
        for p in &PARTITIONINGS {
            if let Some(value) = alert.fields.get(p.key)
                && let Some(by_value) = fields.get_mut(p.key)
                && let Some(ids) = by_value.get_mut(value)
            {
                ids.remove(&alert.id);
                if ids.is_empty() {
                    by_value.remove(value);
                }
            }
        }
    }
}
