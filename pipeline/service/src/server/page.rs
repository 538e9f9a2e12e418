//! The plain HTML page: the lights, then the discrepancy queue. Self-contained, no scripts.

use std::collections::BTreeMap;

use reconlight_rules::{Alert, AlertState, Level};

use reconlight_core::workitems::WorkItem;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Renders the page.
pub fn render(items: &[WorkItem], alerts: &[Alert], report: Option<&serde_json::Value>) -> String {
    let mut h = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>reconlight</title><style>\
         body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;width:100%;margin-bottom:2em}\
         td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;font-size:14px;vertical-align:top}\
         .red{color:#fff;background:#c62828;padding:1px 6px;border-radius:3px}.yellow{background:#f9a825;padding:1px 6px;border-radius:3px}\
         .num{text-align:right;font-variant-numeric:tabular-nums}</style></head><body><h1>reconlight</h1>",
    );
    if let Some(r) = report {
        let s = &r["summary"];
        h.push_str(&format!(
            "<p>Nightly diff of <b>{}</b>: CRM-vs-bank difference rate <b>{}%</b>; {} of {} credits matched; {} open work items.</p>",
            esc(s["date"].as_str().unwrap_or("")),
            esc(s["difference_rate_percent"].to_string().trim_matches('"')),
            s["credits_matched"],
            s["credits"],
            r["open_items"]
        ));
    }
    let firing: Vec<&Alert> = alerts
        .iter()
        .filter(|a| a.state == AlertState::Firing)
        .collect();
    let mut by_rule: BTreeMap<(&str, Level), usize> = BTreeMap::new();
    for a in &firing {
        *by_rule.entry((a.rule_id.as_str(), a.level)).or_default() += 1;
    }
    h.push_str(&format!("<h2>Lights ({} firing)</h2><table><tr><th>rule</th><th>level</th><th class=num>alerts</th></tr>", firing.len()));
    for ((rule, level), n) in &by_rule {
        h.push_str(&format!("<tr><td>{}</td><td><span class=\"{level}\">{level}</span></td><td class=num>{n}</td></tr>", esc(rule)));
    }
    h.push_str("</table>");
    let open: Vec<&WorkItem> = items.iter().filter(|w| w.state.is_active()).collect();
    h.push_str(&format!(
        "<h2>Discrepancy queue ({} open)</h2><table><tr><th>id</th><th>kind</th><th>subject</th><th>what</th><th>SLA due</th></tr>",
        open.len()
    ));
    for w in open {
        let f = &w.finding;
        let subject = [
            f.contract_no.clone(),
            f.installment.map(|i| format!("#{i}")),
            f.bank_ref.clone(),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
        h.push_str(&format!(
            "<tr><td><a href=\"/api/v1/work-items/{id}\">{id}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            f.kind,
            esc(&subject),
            esc(&f.summary),
            w.sla_due,
            id = esc(&w.id)
        ));
    }
    h.push_str("</table><p><a href=\"/metrics\">/metrics</a> · <a href=\"/api/v1/work-items\">/api/v1/work-items</a> · <a href=\"/api/v1/alerts\">/api/v1/alerts</a> · <a href=\"/api/v1/reports/nightly\">/api/v1/reports/nightly</a></p></body></html>");
    h
}
