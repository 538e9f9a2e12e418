//! A rule: one TOML file with its SQL, read from a pack directory.

use std::collections::BTreeMap;

use chrono::Duration;
use serde::Deserialize;

use crate::duration::parse_duration;

pub use reconlight_core::alerts::Level;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    id: String,
    title: String,
    #[serde(default)]
    description: String,
    sql: String,
    subject: Vec<String>,
    #[serde(default, rename = "for")]
    for_: Option<String>,
    #[serde(default)]
    keep_firing_for: Option<String>,
    #[serde(default)]
    resolve_sql: Option<String>,
    #[serde(default)]
    escalation: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// A loaded rule.
#[derive(Clone, Debug)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub description: String,
    /// Returns the rows in breach: one per subject, with a `level` column.
    pub sql: String,
    /// Columns that together name the subject of an alert (e.g. `contract_no`).
    pub subject: Vec<String>,
    /// How long a breach must hold before the alert fires.
    pub for_: Duration,
    /// How long a firing alert stays firing after the breach is gone.
    pub keep_firing_for: Duration,
    /// Hysteresis: subjects this query returns keep a firing alert firing even when they
    /// no longer breach `sql` (fire at one threshold, clear at another).
    pub resolve_sql: Option<String>,
    /// The escalation policy firing alerts climb.
    pub escalation: Option<String>,
    /// An action event (e.g. `lead.nurture`) emitted when an alert fires, for other systems to act on.
    pub action: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Templates; `{column}` is replaced by the breach row's value.
    pub annotations: BTreeMap<String, String>,
    /// The file it came from, and the line its `sql` starts on.
    pub origin: String,
    pub sql_line: usize,
}

/// A rule file that cannot be used, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct RuleError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl Rule {
    /// Parses a rule file's text; `origin` names it in errors.
    pub fn parse(origin: &str, text: &str) -> Result<Rule, RuleError> {
        let err = |line: usize, message: String| RuleError {
            file: origin.to_string(),
            line,
            message,
        };
        let file: RuleFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
            err(line, e.message().to_string())
        })?;
        let key_line = |key: &str| {
            text.lines()
                .position(|l| {
                    l.trim_start().starts_with(key)
                        && l[l.find(key).unwrap_or(0) + key.len()..]
                            .trim_start()
                            .starts_with('=')
                })
                .map(|i| i + 1)
                .unwrap_or(1)
        };
        let dur = |key: &str, v: &Option<String>| -> Result<Duration, RuleError> {
            match v {
                None => Ok(Duration::zero()),
                Some(s) => {
                    parse_duration(s).map_err(|m| err(key_line(key), format!("`{key}`: {m}")))
                }
            }
        };
        if file.id.trim().is_empty() {
            return Err(err(key_line("id"), "`id` is empty".into()));
        }
        if file.subject.is_empty() {
            return Err(err(key_line("subject"), "`subject` names no column".into()));
        }
        let sql_line = key_line("sql");
        Ok(Rule {
            for_: dur("for", &file.for_)?,
            keep_firing_for: dur("keep_firing_for", &file.keep_firing_for)?,
            id: file.id,
            title: file.title,
            description: file.description,
            sql: file.sql,
            subject: file.subject,
            resolve_sql: file.resolve_sql,
            escalation: file.escalation,
            action: file.action,
            labels: file.labels,
            annotations: file.annotations,
            origin: origin.to_string(),
            sql_line,
        })
    }

    /// An error located at this rule's SQL.
    pub fn sql_error(&self, message: impl Into<String>) -> RuleError {
        RuleError {
            file: self.origin.clone(),
            line: self.sql_line,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_rule_file() {
        let text = "id = \"t.one\"\ntitle = \"One\"\nsubject = [\"contract_no\"]\nfor = \"1h\"\nsql = \"SELECT 1\"\n[labels]\nteam = \"finance\"\n";
        let rule = Rule::parse("packs/t/one.toml", text).unwrap();
        assert_eq!(rule.id, "t.one");
        assert_eq!(rule.for_, Duration::hours(1));
        assert_eq!(rule.sql_line, 5);
        assert_eq!(rule.labels["team"], "finance");
    }

    #[test]
    fn names_file_and_line_of_a_mistake() {
        let text = "id = \"t.one\"\ntitle = \"One\"\nsubject = [\"c\"]\nfor = \"soon\"\nsql = \"SELECT 1\"\n";
        let e = Rule::parse("one.toml", text).unwrap_err();
        assert_eq!((e.file.as_str(), e.line), ("one.toml", 4));
        assert!(e.message.contains("`for`"), "{e}");
        let e = Rule::parse("two.toml", "id = \"x\"\ntitle = 3\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
    }
}
