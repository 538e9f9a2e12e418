//! What a person reads when an alert changes: one message per transition, in the target's
//! language, from the rule's template, its policy's, or the built-in one. Chat robots and
//! email render the same text (a small Markdown subset every provider displays).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use reconlight_rules::template::render;

use crate::config::notifiers::{Language, MessageTemplates};

/// One alert transition, ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertMessage {
    /// The outbox message it came from.
    pub message_id: String,
    /// One line: the email subject, the chat card's title.
    pub title: String,
    /// The body, in Markdown.
    pub markdown: String,
    /// A red alert: robots mention their people.
    pub red: bool,
}

/// Where the templates and links come from.
#[derive(Clone, Debug, Default)]
pub struct MessageContext {
    /// Policy templates by rule id (the rule's escalation policy's `message`).
    pub policy_templates: BTreeMap<String, MessageTemplates>,
    pub time_zone: Option<Tz>,
    /// Links to the alert start here (`[notifiers] external_url`).
    pub external_url: Option<String>,
}

/// Transitions people are told about: `pending` is not news yet.
pub fn worth_telling(transition: &str) -> bool {
    !matches!(transition, "pending" | "")
}

fn words(language: Language) -> Words {
    match language {
        Language::Zh => Words {
            red: "红灯",
            yellow: "黄灯",
            subject: "对象",
            rule: "规则",
            tier: "升级层级",
            fired: "触发于",
            acknowledged: "认领",
            open: "在 reconlight 中查看",
        },
        Language::En => Words {
            red: "Red",
            yellow: "Yellow",
            subject: "Subject",
            rule: "Rule",
            tier: "Escalation tier",
            fired: "Fired at",
            acknowledged: "Acknowledged by",
            open: "Open in reconlight",
        },
    }
}

struct Words {
    red: &'static str,
    yellow: &'static str,
    subject: &'static str,
    rule: &'static str,
    tier: &'static str,
    fired: &'static str,
    acknowledged: &'static str,
    open: &'static str,
}

fn transition_words(transition: &str, tier: u64, language: Language) -> String {
    match (language, transition) {
        (Language::Zh, "fired") => "触发".into(),
        (Language::Zh, "escalated") => "升为红灯".into(),
        (Language::Zh, "eased") => "降为黄灯".into(),
        (Language::Zh, "resolved") => "已恢复".into(),
        (Language::Zh, "cancelled") => "已取消".into(),
        (Language::Zh, "tier_up") => format!("升级至第 {tier} 级"),
        (Language::Zh, "acknowledged") => "已认领".into(),
        (Language::En, "fired") => "fired".into(),
        (Language::En, "escalated") => "turned red".into(),
        (Language::En, "eased") => "eased to yellow".into(),
        (Language::En, "resolved") => "resolved".into(),
        (Language::En, "cancelled") => "cancelled".into(),
        (Language::En, "tier_up") => format!("escalated to tier {tier}"),
        (Language::En, "acknowledged") => "acknowledged".into(),
        (_, other) => other.to_string(),
    }
}

fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Renders an `alerts` outbox payload (`{"transition", "alert"}`) for one language.
pub fn render_alert(
    message_id: &str,
    payload: &serde_json::Value,
    language: Language,
    context: &MessageContext,
) -> AlertMessage {
    let alert = &payload["alert"];
    let transition = payload["transition"].as_str().unwrap_or("");
    let w = words(language);
    let red = alert["level"] == "red";
    let tier = alert["tier"].as_u64().unwrap_or(0) + 1;
    let annotation = |name: &str| -> Option<String> {
        let suffix = match language {
            Language::Zh => "zh",
            Language::En => "en",
        };
        alert["annotations"][format!("{name}_{suffix}")]
            .as_str()
            .or_else(|| alert["annotations"][name].as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let title = annotation("title").unwrap_or_else(|| text(&alert["title"]));
    let subject = text(&alert["subject"]);
    let summary = annotation("summary").unwrap_or_else(|| format!("{title}: {subject}"));
    let fired_at = alert["fired_at"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| {
            let t = t.with_timezone(&Utc);
            match context.time_zone {
                Some(tz) => format!("{} ({tz})", t.with_timezone(&tz).format("%Y-%m-%d %H:%M")),
                None => t.format("%Y-%m-%d %H:%M UTC").to_string(),
            }
        })
        .unwrap_or_default();
    let id = text(&alert["id"]);
    let link = context
        .external_url
        .as_deref()
        .map(|base| format!("{}/api/v1/alerts/{id}", base.trim_end_matches('/')))
        .unwrap_or_default();
    let ack = &alert["acknowledged"];
    let level = if red { w.red } else { w.yellow };
    let doing = transition_words(transition, tier, language);

    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    for source in [&alert["fields"], &alert["labels"]] {
        if let Some(map) = source.as_object() {
            for (k, v) in map {
                fields.insert(k.clone(), text(v));
            }
        }
    }
    for (k, v) in [
        ("id", id.clone()),
        ("rule_id", text(&alert["rule_id"])),
        ("title", title.clone()),
        ("summary", summary.clone()),
        ("subject", subject.clone()),
        ("level", level.to_string()),
        ("transition", doing.clone()),
        ("tier", tier.to_string()),
        ("fired_at", fired_at.clone()),
        ("link", link.clone()),
        ("ack_by", text(&ack["by"])),
        ("ack_reason", text(&ack["reason"])),
    ] {
        fields.insert(k.to_string(), v);
    }

    let rule_template = annotation("message");
    let policy_template = context
        .policy_templates
        .get(alert["rule_id"].as_str().unwrap_or(""))
        .and_then(|t| t.get(language))
        .map(str::to_string);
    let mark = if red { "🔴" } else { "🟡" };
    let markdown = match rule_template.or(policy_template) {
        Some(template) => render(&template, &fields),
        None => {
            let mut body = format!("**{mark} {level} · {doing} · {title}**\n\n{summary}\n\n");
            body.push_str(&format!("- {}: {subject}\n", w.subject));
            body.push_str(&format!("- {}: {}\n", w.rule, fields["rule_id"]));
            body.push_str(&format!("- {}: {tier}\n", w.tier));
            if !fired_at.is_empty() {
                body.push_str(&format!("- {}: {fired_at}\n", w.fired));
            }
            if ack.is_object() {
                body.push_str(&format!(
                    "- {}: {} ({})\n",
                    w.acknowledged,
                    text(&ack["by"]),
                    text(&ack["reason"])
                ));
            }
            if !link.is_empty() {
                body.push_str(&format!("\n[{}]({link})\n", w.open));
            }
            body
        }
    };
    AlertMessage {
        message_id: message_id.to_string(),
        title: format!("{mark} [{level}] {doing}: {title}"),
        markdown,
        red,
    }
}

/// Several messages as one, for a robot whose rate limit is reached: nothing is dropped.
pub fn combine(messages: &[AlertMessage], language: Language) -> AlertMessage {
    if messages.len() == 1 {
        return messages[0].clone();
    }
    let heading = match language {
        Language::Zh => format!("{} 条告警变化", messages.len()),
        Language::En => format!("{} alert changes", messages.len()),
    };
    let red = messages.iter().any(|m| m.red);
    let mark = if red { "🔴" } else { "🟡" };
    let markdown = messages
        .iter()
        .map(|m| m.markdown.trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n\n---\n\n");
    AlertMessage {
        message_id: messages[0].message_id.clone(),
        title: format!("{mark} {heading}"),
        markdown: format!("**{heading}**\n\n{markdown}\n"),
        red,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payload() -> serde_json::Value {
        json!({"transition": "fired", "alert": {
            "id": "a1", "rule_id": "finance.installment_overdue", "subject": "HT-1#2",
            "level": "red", "tier": 0, "title": "An installment is overdue",
            "fired_at": "2026-11-30T01:00:00Z",
            "annotations": {"summary": "HT-1 installment 2 is overdue",
                            "summary_zh": "合同 HT-1 第2期逾期"},
            "labels": {"team": "finance"}, "fields": {"contract_no": "HT-1"}
        }})
    }

    #[test]
    fn chinese_text_from_the_rules_chinese_summary() {
        let ctx = MessageContext {
            time_zone: Some(chrono_tz::Asia::Shanghai),
            ..Default::default()
        };
        let m = render_alert("m1", &payload(), Language::Zh, &ctx);
        assert_eq!(m.title, "🔴 [红灯] 触发: An installment is overdue");
        assert!(m.markdown.contains("合同 HT-1 第2期逾期"), "{}", m.markdown);
        assert!(
            m.markdown
                .contains("触发于: 2026-11-30 09:00 (Asia/Shanghai)")
        );
        let en = render_alert("m1", &payload(), Language::En, &ctx);
        assert!(en.markdown.contains("HT-1 installment 2 is overdue"));
    }

    #[test]
    fn a_policy_template_fills_fields() {
        let mut ctx = MessageContext::default();
        ctx.policy_templates.insert(
            "finance.installment_overdue".into(),
            MessageTemplates {
                zh: Some("{level}：{contract_no} {transition}，第{tier}级".into()),
                en: None,
            },
        );
        let m = render_alert("m1", &payload(), Language::Zh, &ctx);
        assert_eq!(m.markdown, "红灯：HT-1 触发，第1级");
    }
}
