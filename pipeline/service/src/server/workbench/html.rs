//! Small pieces of HTML the pages share. Everything that comes from data goes through
//! `esc`: CRM fields, remittance lines and comments are written by people outside.

use reconlight_core::workitems::{WorkItem, WorkItemState};

use super::Ctx;
use crate::store::SlaState;

pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A path segment (ids and contract numbers are the CRM's and the bank's text).
pub fn seg(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn state_badge(ctx: &Ctx, state: WorkItemState) -> String {
    format!(
        "<span class=\"badge state-{s}\">{}</span>",
        ctx.t(&format!("state.{}", state.as_str())),
        s = state.as_str()
    )
}

pub fn sla_badge(ctx: &Ctx, w: &WorkItem) -> String {
    if !w.state.is_active() {
        return ctx.lang.date(w.sla_due);
    }
    let sla = SlaState::of(w.sla_due, ctx.today);
    format!(
        "<span class=\"badge sla-{s}\">{}</span> {}",
        ctx.t(&format!("sla.{}", sla.as_str())),
        ctx.lang.date(w.sla_due),
        s = sla.as_str()
    )
}

pub fn kind_label(ctx: &Ctx, kind: &str) -> &'static str {
    ctx.t(&format!("kind.{kind}"))
}

/// A `<select>` with a label; `options` are (value, text).
pub fn select(id: &str, label: &str, options: &[(String, String)], chosen: &str) -> String {
    let opts: String = options
        .iter()
        .map(|(v, text)| {
            format!(
                "<option value=\"{}\"{}>{}</option>",
                esc(v),
                if v == chosen { " selected" } else { "" },
                esc(text)
            )
        })
        .collect();
    format!(
        "<div class=\"field\"><label for=\"{id}\">{label}</label><select id=\"{id}\" name=\"{id}\">{opts}</select></div>"
    )
}

/// A text input with a label.
pub fn input(id: &str, label: &str, value: &str, kind: &str, extra: &str) -> String {
    format!(
        "<div class=\"field\"><label for=\"{id}\">{label}</label><input id=\"{id}\" name=\"{id}\" type=\"{kind}\" value=\"{}\"{extra}></div>",
        esc(value)
    )
}

/// A JSON value as text ("" for null), for evidence the diff stored as JSON.
pub fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A JSON amount (a string, as decimals are stored, or a number) as a decimal.
pub fn json_decimal(v: &serde_json::Value) -> Option<rust_decimal::Decimal> {
    match v {
        serde_json::Value::String(s) => s.parse().ok(),
        serde_json::Value::Number(n) => n.to_string().parse().ok(),
        _ => None,
    }
}
