//! The nightly report: counts and amounts per kind, the matched rate and the CRM-vs-bank
//! difference rate, as CSV and as one self-contained HTML page (no scripts, no links out).

use std::path::{Path, PathBuf};

use reconlight_core::reconcile::diff::NightlyOutcome;
use reconlight_core::workitems::WorkItem;

use super::{csv_field, esc};

/// `section,name,count,amount` rows: one per kind, then the headline figures.
pub fn csv(outcome: &NightlyOutcome) -> String {
    let s = &outcome.summary;
    let mut out = String::from("section,name,count,amount\n");
    for (kind, n) in &s.findings_by_kind {
        let amount = s.amount_by_kind.get(kind).copied().unwrap_or_default();
        out.push_str(&format!("kind,{kind},{n},{amount}\n"));
    }
    out.push_str(&format!(
        "summary,installments_due,{},{}\n",
        s.installments_due, s.expected_due
    ));
    out.push_str(&format!("summary,received_on_due,,{}\n", s.received_on_due));
    out.push_str(&format!("summary,difference,,{}\n", s.difference));
    out.push_str(&format!(
        "summary,difference_rate_percent,,{}\n",
        s.difference_rate_percent
    ));
    out.push_str(&format!(
        "summary,credits,{},{}\n",
        s.credits, s.credit_amount
    ));
    out.push_str(&format!(
        "summary,credits_matched,{},{}\n",
        s.credits_matched, s.credit_amount_matched
    ));
    out.push_str(&format!("queue,opened,{},\n", outcome.opened));
    out.push_str(&format!("queue,reopened,{},\n", outcome.reopened));
    out.push_str(&format!("queue,auto_resolved,{},\n", outcome.auto_resolved));
    out.push_str(&format!("queue,open,{},\n", outcome.open_items));
    out
}

/// The page: headline, per-kind table, and every open work item with its explanation.
pub fn html(outcome: &NightlyOutcome, items: &[WorkItem]) -> String {
    let s = &outcome.summary;
    let matched_rate = if s.credits == 0 {
        100.0
    } else {
        s.credits_matched as f64 * 100.0 / s.credits as f64
    };
    let mut h = format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>reconlight nightly report {date}</title><style>\
         body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;margin-bottom:2em}}\
         td,th{{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;font-size:13px;vertical-align:top}}\
         .num{{text-align:right;font-variant-numeric:tabular-nums}}.big{{font-size:28px;font-weight:600}}</style></head><body>\
         <h1>Nightly reconciliation, business date {date}</h1>\
         <p><span class=big>{rate}%</span> CRM-vs-bank difference rate &nbsp; <span class=big>{matched:.1}%</span> of credits matched \
         ({cm} of {c}) &nbsp; <span class=big>{open}</span> open work items</p>\
         <p>Due before {date}: {due} installments, {expected} expected, {received} received. \
         Queue changes: {opened} opened, {reopened} reopened, {resolved} auto-resolved.</p>\
         <h2>By kind</h2><table><tr><th>kind</th><th class=num>count</th><th class=num>amount at stake</th></tr>",
        date = s.date,
        rate = s.difference_rate_percent,
        matched = matched_rate,
        cm = s.credits_matched,
        c = s.credits,
        open = outcome.open_items,
        due = s.installments_due,
        expected = s.expected_due,
        received = s.received_on_due,
        opened = outcome.opened,
        reopened = outcome.reopened,
        resolved = outcome.auto_resolved,
    );
    for (kind, n) in &s.findings_by_kind {
        let amount = s.amount_by_kind.get(kind).copied().unwrap_or_default();
        h.push_str(&format!(
            "<tr><td>{kind}</td><td class=num>{n}</td><td class=num>{amount}</td></tr>"
        ));
    }
    h.push_str("</table><h2>Open work items</h2><table><tr><th>id</th><th>kind</th><th>contract</th><th>inst.</th><th>bank ref</th><th class=num>expected</th><th class=num>received</th><th>SLA due</th><th>what</th></tr>");
    for w in items.iter().filter(|w| w.state.is_active()) {
        let f = &w.finding;
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=num>{}</td><td class=num>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&w.id),
            f.kind,
            esc(f.contract_no.as_deref().unwrap_or("")),
            f.installment.map(|i| i.to_string()).unwrap_or_default(),
            esc(f.bank_ref.as_deref().unwrap_or("")),
            f.expected.map(|d| d.to_string()).unwrap_or_default(),
            f.received.map(|d| d.to_string()).unwrap_or_default(),
            w.sla_due,
            esc(&f.summary)
        ));
    }
    h.push_str("</table></body></html>\n");
    h
}

/// Every open work item as CSV, for a spreadsheet.
pub fn items_csv(items: &[WorkItem]) -> String {
    let mut out = String::from(
        "id,kind,state,contract_no,installment,bank_ref,customer_id,currency,expected,received,first_found,sla_due,assignee,summary\n",
    );
    for w in items.iter().filter(|w| w.state.is_active()) {
        let f = &w.finding;
        let row = [
            w.id.clone(),
            f.kind.as_str().to_string(),
            w.state.as_str().to_string(),
            f.contract_no.clone().unwrap_or_default(),
            f.installment.map(|i| i.to_string()).unwrap_or_default(),
            f.bank_ref.clone().unwrap_or_default(),
            f.customer_id.clone().unwrap_or_default(),
            f.currency.clone().unwrap_or_default(),
            f.expected.map(|d| d.to_string()).unwrap_or_default(),
            f.received.map(|d| d.to_string()).unwrap_or_default(),
            w.first_found.to_string(),
            w.sla_due.to_string(),
            w.assignee.clone().unwrap_or_default(),
            f.summary.clone(),
        ];
        out.push_str(
            &row.iter()
                .map(|v| csv_field(v))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push('\n');
    }
    out
}

/// Writes `nightly-D.csv`, `nightly-D-items.csv` and `nightly-D.html` into `dir`.
pub fn write_files(
    dir: &Path,
    outcome: &NightlyOutcome,
    items: &[WorkItem],
) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let date = outcome.summary.date;
    let files = [
        (dir.join(format!("nightly-{date}.csv")), csv(outcome)),
        (
            dir.join(format!("nightly-{date}-items.csv")),
            items_csv(items),
        ),
        (
            dir.join(format!("nightly-{date}.html")),
            html(outcome, items),
        ),
    ];
    for (path, text) in &files {
        std::fs::write(path, text)?;
    }
    Ok(files.into_iter().map(|(p, _)| p).collect())
}
