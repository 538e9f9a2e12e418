//! A contract's story on one page: the business track (CRM status, customer confirmation,
//! CA-certified signature) beside the money track (installments, credits, bank matching),
//! the handoff progress per department, the open work items and the audit trail.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Duration, Utc};
use reconlight_core::monthly::HANDOFF_SLA_HOURS;
use reconlight_core::workitems::WorkItemState;
use reconlight_formats::model::{HandoffTicket, SignatureStatus};
use rust_decimal::Decimal;

use super::html::{esc, kind_label, seg, state_badge};
use super::{Ctx, Nav, layout, problem};
use crate::server::AppState;
use crate::store::{ContractView, QueueFilter, QueueSort};

fn yes_no(ctx: &Ctx, ok: bool, detail: &str) -> String {
    format!(
        "<span class=\"badge {}\">{}</span> {}",
        if ok { "ok" } else { "warn" },
        ctx.t(if ok { "contract.yes" } else { "contract.no" }),
        esc(detail)
    )
}

fn department_name(ctx: &Ctx, department: &str) -> String {
    match (ctx.lang, department) {
        (super::Lang::Zh, "delivery") => "交付部".into(),
        (super::Lang::Zh, "finance") => "财务部".into(),
        (super::Lang::Zh, "after_sales") => "售后部".into(),
        _ => department.replace('_', " "),
    }
}

/// Where a department's work order stands: done, in progress, or overdue (not
/// acknowledged within the handoff SLA).
fn handoff_state(t: &HandoffTicket, now: DateTime<Utc>) -> &'static str {
    if t.completed_at.is_some() {
        "done"
    } else if t.acknowledged_at.is_none()
        && now >= t.created_at + Duration::hours(HANDOFF_SLA_HOURS)
    {
        "overdue"
    } else {
        "in_progress"
    }
}

fn tracks(ctx: &Ctx, v: &ContractView) -> String {
    let t = |k: &str| ctx.t(k);
    let c = &v.contract;
    let certified = v
        .signatures
        .iter()
        .find(|s| s.ca_certified && s.status == SignatureStatus::Completed);
    let signature = match certified {
        Some(s) => yes_no(
            ctx,
            true,
            &format!("{} · {}", s.provider, s.signer.as_deref().unwrap_or("")),
        ),
        None => yes_no(ctx, false, c.signature_method.as_deref().unwrap_or("")),
    };
    let expected: Decimal = v.installments.iter().map(|i| i.amount.amount).sum();
    let received: Decimal = v
        .credits
        .iter()
        .flat_map(|(_, allocs)| allocs.iter())
        .filter(|a| a.contract_no == c.contract_no && a.confirmed)
        .map(|a| a.amount)
        .sum();
    let ccy = c.amount.currency.to_string();
    format!(
        "<h2>{title}</h2><div class=\"tracks\">\
         <div class=\"track card\"><h3>{crm}</h3><p><span class=\"badge\">{status}</span></p></div>\
         <div class=\"track card\"><h3>{accepted}</h3><p>{acc}</p></div>\
         <div class=\"track card\"><h3>{sig}</h3><p>{signature}</p></div>\
         <div class=\"track card\"><h3>{bank}</h3><p><b>{received}</b> / {expected}</p>\
         <progress max=\"100\" value=\"{pct}\" aria-label=\"{bank}\"></progress></div></div>",
        title = t("contract.tracks"),
        crm = t("contract.crm_status"),
        status = t(&format!("status.{}", c.status.as_str())),
        accepted = t("contract.accepted"),
        acc = match c.accepted_at {
            Some(at) => yes_no(ctx, true, &ctx.lang.time(at, ctx.tz)),
            None => yes_no(ctx, false, ""),
        },
        sig = t("contract.signature"),
        bank = t("contract.bank"),
        received = ctx.lang.money(received, &ccy),
        expected = ctx.lang.money(expected, &ccy),
        pct = if expected > Decimal::ZERO {
            (received * Decimal::ONE_HUNDRED / expected)
                .round()
                .min(Decimal::ONE_HUNDRED)
        } else {
            Decimal::ZERO
        },
    )
}

fn installments(ctx: &Ctx, v: &ContractView) -> String {
    let t = |k: &str| ctx.t(k);
    let no = &v.contract.contract_no;
    let mut paid: BTreeMap<u32, Vec<(String, Decimal, bool)>> = BTreeMap::new();
    for (row, allocs) in &v.credits {
        for a in allocs.iter().filter(|a| &a.contract_no == no) {
            paid.entry(a.seq)
                .or_default()
                .push((row.tx.bank_ref.clone(), a.amount, a.confirmed));
        }
    }
    let mut h = format!(
        "<h2>{}</h2><table><thead><tr><th scope=\"col\">#</th><th scope=\"col\">{}</th><th scope=\"col\" class=\"num\">{}</th><th scope=\"col\" class=\"num\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
        t("contract.installments"),
        t("contract.due"),
        t("item.expected"),
        t("item.received"),
        t("contract.paid_by")
    );
    for i in &v.installments {
        let ccy = i.amount.currency.to_string();
        let lines = paid.get(&i.seq).cloned().unwrap_or_default();
        let received: Decimal = lines.iter().filter(|l| l.2).map(|l| l.1).sum();
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            i.seq,
            i.due_date.map(|d| ctx.lang.date(d)).unwrap_or_else(|| "—".into()),
            ctx.lang.money(i.amount.amount, &ccy),
            ctx.lang.money(received, &ccy),
            lines
                .iter()
                .map(|(r, a, confirmed)| format!(
                    "<span class=\"mono\">{}</span> {}{}",
                    esc(r),
                    ctx.lang.money(*a, &ccy),
                    if *confirmed { "" } else { " ?" }
                ))
                .collect::<Vec<_>>()
                .join("<br>")
        ));
    }
    h.push_str("</tbody></table>");
    if let Some(e) = &v.terms_error {
        h.push_str(&format!(
            "<p class=\"error\">{}: {}</p>",
            t("contract.terms_error"),
            esc(e)
        ));
    }
    h
}

fn handoffs(ctx: &Ctx, v: &ContractView) -> String {
    let t = |k: &str| ctx.t(k);
    if v.tickets.is_empty() {
        return String::new();
    }
    let now = Utc::now();
    let mut h = format!("<h2>{}</h2><ul class=\"handoffs\">", t("contract.handoffs"));
    for ticket in &v.tickets {
        let state = handoff_state(ticket, now);
        let width = match state {
            "done" => 100,
            _ if ticket.acknowledged_at.is_some() => 60,
            _ => 20,
        };
        h.push_str(&format!(
            "<li><span class=\"dept\">{}</span><div class=\"bar\" role=\"img\" aria-label=\"{}: {}\"><span class=\"fill {state} w{width}\"></span></div><span class=\"badge h-{state}\">{}</span></li>",
            esc(&department_name(ctx, &ticket.department)),
            esc(&department_name(ctx, &ticket.department)),
            t(&format!("contract.handoff.{state}")),
            t(&format!("contract.handoff.{state}")),
        ));
    }
    h.push_str("</ul>");
    h
}

fn audit(ctx: &Ctx, entries: &[reconlight_core::audit::AuditEntry]) -> String {
    let t = |k: &str| ctx.t(k);
    let mut h = format!(
        "<h2>{}</h2><table class=\"audit\"><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
        t("contract.audit"),
        t("item.when"),
        t("item.who"),
        t("contract.audit.ip"),
        t("contract.audit.field"),
        t("contract.audit.before"),
        t("contract.audit.after"),
    );
    for e in entries.iter().rev() {
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td>{}.{}</td><td>{}</td><td>{}</td></tr>",
            ctx.lang.time(e.source_time, ctx.tz),
            esc(e.operator.as_deref().unwrap_or("")),
            esc(e.ip.as_deref().unwrap_or("")),
            esc(&e.table),
            esc(&e.field),
            esc(e.before.as_deref().unwrap_or("")),
            esc(e.after.as_deref().unwrap_or("")),
        ));
    }
    h.push_str("</tbody></table>");
    h
}

pub async fn page(State(s): State<AppState>, ctx: Ctx, Path(no): Path<String>) -> Response {
    let t = |k: &str| ctx.t(k);
    let view = match s.store.contract_view(&no).await {
        Ok(Some(v)) => v,
        Ok(None) => {
            return problem(
                &ctx,
                StatusCode::NOT_FOUND,
                &format!("{} {no}", t("contract.unknown")),
            );
        }
        Err(e) => return problem(&ctx, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let entries = s.store.audit_entries(Some(&no)).await.unwrap_or_default();
    let items = s
        .store
        .queue_page(
            &QueueFilter {
                contract_no: Some(no.clone()),
                states: vec![WorkItemState::Open, WorkItemState::Assigned],
                today: Some(ctx.today),
                ..Default::default()
            },
            QueueSort::Sla,
            0,
            100,
        )
        .await
        .map(|p| p.items)
        .unwrap_or_default();
    let c = &view.contract;
    let mut body = format!(
        "<p class=\"crumbs\"><a href=\"/\">{queue}</a></p><h1>{title} <span class=\"mono\">{no}</span></h1>\
         <dl class=\"facts\"><dt>{l_customer}</dt><dd>{customer}</dd><dt>{l_amount}</dt><dd>{amount}</dd>\
         <dt>{l_owner}</dt><dd>{owner}</dd><dt>{l_signed}</dt><dd>{signed}</dd></dl><div id=\"live\" data-live>",
        queue = t("nav.queue"),
        title = t("contract.title"),
        no = esc(&no),
        l_customer = t("queue.customer"),
        customer = esc(&view
            .customer
            .as_ref()
            .map(|cu| format!("{} ({})", cu.name, cu.customer_id))
            .unwrap_or_else(|| c.customer_id.clone())),
        l_amount = t("contract.amount"),
        amount = ctx
            .lang
            .money(c.amount.amount, &c.amount.currency.to_string()),
        l_owner = t("contract.owner"),
        owner = esc(c.owner_id.as_deref().unwrap_or("—")),
        l_signed = t("contract.signed_at"),
        signed = c
            .signed_at
            .map(|at| ctx.lang.time(at, ctx.tz))
            .unwrap_or_else(|| "—".into()),
    );
    body.push_str(&tracks(&ctx, &view));
    body.push_str(&handoffs(&ctx, &view));
    body.push_str(&installments(&ctx, &view));
    if !items.is_empty() {
        body.push_str(&format!(
            "<h2>{}</h2><ul class=\"items\">",
            t("contract.work_items")
        ));
        for e in &items {
            let w = &e.item;
            body.push_str(&format!(
                "<li><a href=\"/items/{}\" class=\"mono\">{}</a> {} {} — {}</li>",
                seg(&w.id),
                esc(&w.id),
                kind_label(&ctx, w.finding.kind.as_str()),
                state_badge(&ctx, w.state),
                esc(&super::describe::summary(&ctx, &w.finding))
            ));
        }
        body.push_str("</ul>");
    }
    if !view.signatures.is_empty() {
        body.push_str(&format!(
            "<h2>{}</h2><table><tbody>",
            t("contract.signatures")
        ));
        for sig in &view.signatures {
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&sig.provider),
                esc(&sig.event),
                esc(sig.signature_type.as_deref().unwrap_or("")),
                if sig.ca_certified { "CA" } else { "" },
                esc(sig.signer.as_deref().unwrap_or(""))
            ));
        }
        body.push_str("</tbody></table>");
    }
    body.push_str(&audit(&ctx, &entries));
    body.push_str("</div>");
    layout(
        &ctx,
        &format!("{} {no}", t("contract.title")),
        Nav::Queue,
        &body,
    )
}
