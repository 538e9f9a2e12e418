//! A work item: what was expected and what arrived, each credit with its evidence, the
//! candidates with one click to match, and every action a clerk can take, with its history.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use reconlight_core::workitems::{WorkItem, WorkItemKind};
use rust_decimal::Decimal;
use serde_json::Value;

use super::html::{
    esc, json_decimal as decimal, json_text as text, kind_label, seg, sla_badge, state_badge,
};
use super::{Ctx, Nav, layout, problem};
use crate::server::AppState;

/// One action form; app.js sends it to `/api/v1/work-items/{id}/{action}`.
fn action_form(w: &WorkItem, action: &str, fields: &str, button: &str, extra: &str) -> String {
    format!(
        "<form class=\"action\" data-item=\"{id}\" data-action=\"{action}\" data-version=\"{v}\"{extra}>{fields}<button type=\"submit\">{button}</button></form>",
        id = esc(&w.id),
        v = w.version,
    )
}

fn field(id: &str, name: &str, label: &str, required: bool) -> String {
    format!(
        "<label for=\"{id}\">{label}</label><input id=\"{id}\" name=\"{name}\" type=\"text\"{}>",
        if required { " required" } else { "" }
    )
}

fn credits_table(ctx: &Ctx, rows: &[Value], currency: &str) -> String {
    let t = |k: &str| ctx.t(k);
    let mut h = format!(
        "<table><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\" class=\"num\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\" class=\"num\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
        t("item.credit"),
        t("item.booked"),
        t("item.amount"),
        t("item.payer"),
        t("item.remittance"),
        t("item.rule"),
        t("item.confidence"),
        t("item.why"),
    );
    for c in rows {
        let amount = decimal(&c["allocated"]).or_else(|| decimal(&c["amount"]));
        h.push_str(&format!(
            "<tr><td class=\"mono\">{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(&text(&c["bank_ref"])),
            esc(&text(&c["booking_date"])),
            amount.map(|a| ctx.lang.money(a, currency)).unwrap_or_default(),
            esc(&text(&c["payer"])),
            esc(&text(&c["remittance"])),
            esc(&text(&c["rule"])),
            c["confidence"].as_u64().map(|c| format!("{c}%")).unwrap_or_default(),
            esc(&text(&c["explanation"])),
        ));
    }
    h.push_str("</tbody></table>");
    h
}

pub async fn page(State(s): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> Response {
    let t = |k: &str| ctx.t(k);
    let w = match s.store.work_item(&id).await {
        Ok(Some(w)) => w,
        Ok(None) => {
            return problem(
                &ctx,
                StatusCode::NOT_FOUND,
                &format!("{}: {id}", t("error.not_found")),
            );
        }
        Err(e) => return problem(&ctx, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let f = &w.finding;
    let ccy = f.currency.as_deref().unwrap_or("");
    let money = |d: Option<Decimal>| {
        d.map(|d| ctx.lang.money(d, ccy))
            .unwrap_or_else(|| "—".into())
    };
    let difference = match (f.expected, f.received) {
        (Some(e), Some(r)) => Some(r - e),
        _ => None,
    };
    let contract = f
        .contract_no
        .as_ref()
        .map(|no| {
            format!(
                "<a href=\"/contracts/{}\">{}</a>{}",
                seg(no),
                esc(no),
                f.installment
                    .map(|i| format!(" · {} {i}", t("item.installment")))
                    .unwrap_or_default()
            )
        })
        .unwrap_or_else(|| "—".into());
    let mut body = format!(
        "<p class=\"crumbs\"><a href=\"/\">{queue}</a></p><div id=\"live\" data-live>\
         <h1>{kind} <span class=\"mono\">{id}</span> {state}</h1><p class=\"lead\">{summary}</p>\
         <div class=\"figures\">\
         <div class=\"figure\"><span>{l_exp}</span><b>{exp}</b></div>\
         <div class=\"figure\"><span>{l_rec}</span><b>{rec}</b></div>\
         <div class=\"figure\"><span>{l_diff}</span><b>{diff}</b></div></div>\
         <dl class=\"facts\"><dt>{l_contract}</dt><dd>{contract}</dd>\
         <dt>{l_credit}</dt><dd class=\"mono\">{credit}</dd>\
         <dt>{l_sla}</dt><dd>{sla}</dd><dt>{l_found}</dt><dd>{found}</dd>\
         <dt>{l_assignee}</dt><dd id=\"assignee\">{assignee}</dd><dt>{l_version}</dt><dd>{version}</dd></dl>",
        queue = t("nav.queue"),
        kind = kind_label(&ctx, f.kind.as_str()),
        id = esc(&w.id),
        state = state_badge(&ctx, w.state),
        summary = esc(&super::describe::summary(&ctx, f)),
        l_exp = t("item.expected"),
        exp = money(f.expected),
        l_rec = t("item.received"),
        rec = money(f.received),
        l_diff = t("item.difference"),
        diff = money(difference),
        l_contract = t("item.contract"),
        l_credit = t("item.credit"),
        credit = esc(f.bank_ref.as_deref().unwrap_or("—")),
        l_sla = t("col.sla_due"),
        sla = sla_badge(&ctx, &w),
        l_found = t("item.first_found"),
        found = ctx.lang.date(w.first_found),
        l_assignee = t("item.assignee"),
        assignee = esc(w.assignee.as_deref().unwrap_or("—")),
        l_version = t("item.version"),
        version = w.version,
    );
    let d = &f.details;
    if let Some(credits) = d["credits"].as_array().filter(|c| !c.is_empty()) {
        body.push_str(&format!(
            "<h2>{}</h2>{}",
            t("item.credits"),
            credits_table(&ctx, credits, ccy)
        ));
    }
    if let Some(credit) = d.get("credit") {
        body.push_str(&format!(
            "<h2>{}</h2><dl class=\"facts\"><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd></dl>",
            t("item.credit"),
            t("item.booked"),
            esc(&text(&credit["booking_date"])),
            t("item.amount"),
            money(f.received),
            t("item.payer"),
            esc(&text(&credit["payer"])),
            t("item.remittance"),
            esc(&text(&credit["remittance"])),
        ));
    }
    let active = w.state.is_active();
    if let Some(suggestions) = d["suggestions"].as_array().filter(|s| !s.is_empty()) {
        body.push_str(&format!(
            "<h2>{}</h2>{}",
            t("item.suggestions"),
            credits_table(&ctx, suggestions, ccy)
        ));
        if active && f.kind == WorkItemKind::SuggestedMatch {
            body.push_str("<div class=\"row\">");
            body.push_str(&action_form(&w, "confirm", "", t("item.confirm"), ""));
            body.push_str(&action_form(
                &w,
                "reject",
                &field("reject-reason", "reason", t("item.reason"), true),
                t("item.reject"),
                "",
            ));
            body.push_str("</div>");
        }
    }
    if matches!(
        f.kind,
        WorkItemKind::MissingPayment | WorkItemKind::PartialPayment
    ) {
        body.push_str(&candidates(&ctx, &s, &w).await);
    }
    if active {
        body.push_str(&format!(
            "<h2>{}</h2><div class=\"actions card\">",
            t("item.actions")
        ));
        if matches!(
            f.kind,
            WorkItemKind::UnmatchedReceipt | WorkItemKind::SuggestedMatch
        ) {
            body.push_str(&action_form(
                &w,
                "match",
                &format!(
                    "{}{}{}",
                    field("match-contract", "contract_no", t("item.contract"), true),
                    field(
                        "match-installment",
                        "installment",
                        t("item.installment"),
                        true
                    ),
                    field("match-amount", "amount", t("item.amount"), false),
                ),
                t("item.match"),
                "",
            ));
        }
        body.push_str(&action_form(
            &w,
            "assign",
            &field("assign-to", "assignee", t("item.assignee"), true),
            t("item.assign"),
            "",
        ));
        body.push_str(&action_form(
            &w,
            "resolve",
            &field("resolve-reason", "reason", t("item.reason"), true),
            t("item.resolve"),
            "",
        ));
        body.push_str(&action_form(
            &w,
            "dismiss",
            &field("dismiss-reason", "reason", t("item.reason"), true),
            t("item.dismiss"),
            "",
        ));
        body.push_str("</div>");
    }
    body.push_str(&format!(
        "<h2>{}</h2>{}",
        t("item.comment"),
        action_form(
            &w,
            "comment",
            &format!(
                "<label for=\"comment-text\">{}</label><textarea id=\"comment-text\" name=\"text\" rows=\"2\" required></textarea>",
                t("item.comment")
            ),
            t("item.comment.add"),
            " class=\"action comment\"",
        )
    ));
    body.push_str(&format!(
        "<h2>{}</h2><table class=\"history\"><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
        t("item.history"),
        t("item.when"),
        t("item.who"),
        t("item.what"),
        t("item.note")
    ));
    for h in w.history.iter().rev() {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ctx.lang.time(h.at, ctx.tz),
            esc(&h.by),
            esc(&h.action),
            esc(&h.note)
        ));
    }
    body.push_str(&format!(
        "</tbody></table><details><summary>{}</summary><pre>{}</pre></details></div>",
        t("item.details"),
        esc(&serde_json::to_string_pretty(d).unwrap_or_default())
    ));
    layout(
        &ctx,
        &format!("{} {}", t("item.title"), w.id),
        Nav::Queue,
        &body,
    )
}

/// Why the diff lists a candidate, in the reader's language (the diff writes English).
fn why(ctx: &Ctx, text: &str) -> String {
    let key = match text {
        "paid by this customer, for the amount missing" => "why.customer_and_amount",
        "paid by this customer, matched to nothing" => "why.customer",
        "the amount missing, from a payer not known as this customer" => "why.amount",
        other => return other.to_string(),
    };
    ctx.t(key).to_string()
}

/// The open credits the diff listed for a missing or short payment, each with a button
/// that matches it (through the credit's own work item) to this installment.
async fn candidates(ctx: &Ctx, s: &AppState, w: &WorkItem) -> String {
    let t = |k: &str| ctx.t(k);
    let f = &w.finding;
    let ccy = f.currency.as_deref().unwrap_or("");
    let list = f.details["candidates"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut h = format!("<h2>{}</h2>", t("item.candidates"));
    if list.is_empty() {
        h.push_str(&format!(
            "<p class=\"empty\">{}</p>",
            t("item.no_candidates")
        ));
        return h;
    }
    h.push_str(&format!(
        "<table><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\" class=\"num\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\"><span class=\"sr-only\">{}</span></th></tr></thead><tbody>",
        t("item.credit"),
        t("item.booked"),
        t("item.amount"),
        t("item.payer"),
        t("item.remittance"),
        t("item.why"),
        t("item.match"),
    ));
    for c in &list {
        let bank_ref = text(&c["bank_ref"]);
        let amount = decimal(&c["amount"]);
        // The credit's own item (an unmatched receipt, or a suggestion elsewhere) is
        // where a match is made.
        let target = s.store.active_credit_item(&bank_ref).await.ok().flatten();
        let button = match (
            &target,
            f.contract_no.as_deref(),
            f.installment,
            w.state.is_active(),
        ) {
            (Some(credit_item), Some(no), Some(seq), true) => {
                let missing = f.expected.unwrap_or_default() - f.received.unwrap_or_default();
                let amount = amount.map(|a| a.min(missing)).unwrap_or(missing);
                format!(
                    "<form class=\"action\" data-item=\"{}\" data-action=\"match\" data-version=\"{}\">\
                     <input type=\"hidden\" name=\"contract_no\" value=\"{}\"><input type=\"hidden\" name=\"installment\" value=\"{seq}\">\
                     <input type=\"hidden\" name=\"amount\" value=\"{amount}\">\
                     <button type=\"submit\" aria-label=\"{} {}\">{}</button></form>",
                    esc(&credit_item.id),
                    credit_item.version,
                    esc(no),
                    t("item.match"),
                    esc(&bank_ref),
                    t("item.match"),
                )
            }
            _ => String::new(),
        };
        h.push_str(&format!(
            "<tr><td class=\"mono\">{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{button}</td></tr>",
            esc(&bank_ref),
            esc(&text(&c["booking_date"])),
            amount.map(|a| ctx.lang.money(a, ccy)).unwrap_or_default(),
            esc(&text(&c["payer"])),
            esc(&text(&c["remittance"])),
            esc(&why(ctx, &text(&c["why"]))),
        ));
    }
    h.push_str("</tbody></table>");
    h
}
