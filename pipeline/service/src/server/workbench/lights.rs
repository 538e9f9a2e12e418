//! The lights: a summary strip (difference rate, auto-match rate, open items and money at
//! stake by kind) with the difference rate's trend over the last 30 nightly runs, then the
//! firing alerts by level and rule, each acknowledged with a reason.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use reconlight_core::alerts::{Alert, AlertState, Level};
use rust_decimal::Decimal;
use serde_json::Value;

use super::html::{esc, json_decimal as decimal, kind_label};
use super::{Ctx, Nav, layout, problem};
use crate::server::AppState;

/// The difference rate of each nightly run, oldest first, as a small line chart.
fn trend(ctx: &Ctx, reports: &[Value]) -> String {
    let points: Vec<(String, f64)> = reports
        .iter()
        .take(30)
        .filter_map(|r| {
            let s = &r["summary"];
            // Only the chart's geometry is floating point; the figures stay decimal.
            let rate = decimal(&s["difference_rate_percent"])?
                .to_string()
                .parse()
                .ok()?;
            Some((s["date"].as_str()?.to_string(), rate))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    if points.is_empty() {
        return String::new();
    }
    let (w, h, pad) = (360.0, 80.0, 6.0);
    let max = points.iter().map(|p| p.1).fold(1.0f64, f64::max);
    let step = if points.len() > 1 {
        (w - 2.0 * pad) / (points.len() - 1) as f64
    } else {
        0.0
    };
    let coords: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, (_, v))| {
            format!(
                "{:.1},{:.1}",
                pad + step * i as f64,
                h - pad - (v / max) * (h - 2.0 * pad)
            )
        })
        .collect();
    let first = &points[0];
    let last = &points[points.len() - 1];
    format!(
        "<figure class=\"trend\"><svg viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"{label}: {d0} {v0}% … {d1} {v1}%\">\
         <polyline fill=\"none\" stroke=\"#1d4ed8\" stroke-width=\"2\" points=\"{pts}\"/>{dots}</svg>\
         <figcaption>{label}: {d0} {v0}% → {d1} {v1}%</figcaption></figure>",
        label = esc(ctx.t("lights.trend")),
        pts = coords.join(" "),
        dots = coords
            .iter()
            .map(|c| {
                let (x, y) = c.split_once(',').unwrap_or(("0", "0"));
                format!("<circle cx=\"{x}\" cy=\"{y}\" r=\"3\" fill=\"#1d4ed8\"/>")
            })
            .collect::<String>(),
        d0 = esc(&first.0),
        v0 = first.1,
        d1 = esc(&last.0),
        v1 = last.1,
    )
}

fn summary(ctx: &Ctx, reports: &[Value], by_kind: &[(String, String, u64, Decimal)]) -> String {
    let t = |k: &str| ctx.t(k);
    let mut h = format!("<h2>{}</h2>", t("lights.summary"));
    match reports.first() {
        Some(r) => {
            let s = &r["summary"];
            let credits = s["credits"].as_u64().unwrap_or(0);
            let matched = s["credits_matched"].as_u64().unwrap_or(0);
            let auto = if credits > 0 {
                (Decimal::from(matched) * Decimal::ONE_HUNDRED / Decimal::from(credits)).round_dp(1)
            } else {
                Decimal::ZERO
            };
            h.push_str(&format!(
                "<div class=\"figures\"><div class=\"figure\"><span>{}</span><b id=\"difference-rate\">{}%</b><small>{}</small></div>\
                 <div class=\"figure\"><span>{}</span><b>{}%</b><small>{matched} / {credits}</small></div>\
                 <div class=\"figure\"><span>{}</span><b>{}</b></div></div>",
                t("lights.difference_rate"),
                decimal(&s["difference_rate_percent"]).unwrap_or_default(),
                esc(s["date"].as_str().unwrap_or("")),
                t("lights.auto_match"),
                auto,
                t("lights.open_items"),
                by_kind.iter().map(|k| k.2).sum::<u64>(),
            ));
            h.push_str(&trend(ctx, reports));
        }
        None => h.push_str(&format!(
            "<p class=\"empty\">{}</p>",
            t("lights.no_nightly")
        )),
    }
    if !by_kind.is_empty() {
        h.push_str(&format!(
            "<table class=\"by-kind\"><caption>{}</caption><thead><tr><th scope=\"col\">{}</th><th scope=\"col\" class=\"num\">{}</th><th scope=\"col\" class=\"num\">{}</th></tr></thead><tbody>",
            t("lights.by_kind"),
            t("col.kind"),
            t("lights.count"),
            t("col.at_stake")
        ));
        for (kind, ccy, n, sum) in by_kind {
            h.push_str(&format!(
                "<tr><td><a href=\"/?kind={kind}\">{}</a></td><td class=\"num\">{n}</td><td class=\"num\">{}</td></tr>",
                kind_label(ctx, kind),
                ctx.lang.money(*sum, ccy),
                kind = esc(kind),
            ));
        }
        h.push_str("</tbody></table>");
    }
    h
}

fn alerts_table(ctx: &Ctx, alerts: &[&Alert]) -> String {
    let t = |k: &str| ctx.t(k);
    if alerts.is_empty() {
        return format!("<p class=\"empty\">{}</p>", t("lights.none"));
    }
    let now = Utc::now();
    let mut h = format!(
        "<table class=\"alerts\"><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
        t("lights.level"),
        t("lights.rule"),
        t("lights.subject"),
        t("lights.tier"),
        t("lights.firing_for"),
        t("lights.ack"),
    );
    for a in alerts {
        let title = match ctx.lang {
            super::Lang::Zh => a.annotations.get("title_zh").unwrap_or(&a.title),
            super::Lang::En => &a.title,
        };
        let ack = match &a.acknowledged {
            Some(k) => format!(
                "{} <b>{}</b>: {}",
                t("lights.acked"),
                esc(&k.by),
                esc(&k.reason)
            ),
            None => format!(
                "<form class=\"ack\" data-alert=\"{id}\"><label for=\"ack-{n}\">{reason}</label>\
                 <input id=\"ack-{n}\" name=\"reason\" type=\"text\" required><button type=\"submit\">{ack}</button></form>",
                id = esc(&a.id),
                n = esc(&a.id),
                reason = t("item.reason"),
                ack = t("lights.ack"),
            ),
        };
        h.push_str(&format!(
            "<tr data-alert=\"{}\"><td><span class=\"badge level-{lvl}\">{}</span></td><td>{}<br><small class=\"mono\">{}</small></td><td class=\"mono\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{ack}</td></tr>",
            esc(&a.id),
            t(&format!("level.{}", a.level.as_str())),
            esc(title),
            esc(&a.rule_id),
            esc(&a.subject),
            a.tier,
            ctx.lang.duration(now - a.fired_at.unwrap_or(a.active_since)),
            lvl = a.level.as_str(),
        ));
    }
    h.push_str("</tbody></table>");
    h
}

pub async fn page(State(s): State<AppState>, ctx: Ctx) -> Response {
    let t = |k: &str| ctx.t(k);
    let (alerts, reports, by_kind) = match (
        s.store.open_alerts().await,
        s.store.nightly_reports().await,
        s.store.queue_by_kind().await,
    ) {
        (Ok(a), Ok(r), Ok(k)) => (a, r, k),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            return problem(&ctx, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string());
        }
    };
    let mut firing: Vec<&Alert> = alerts
        .iter()
        .filter(|a| a.state == AlertState::Firing)
        .collect();
    // Red first, then by rule, then the longest firing first.
    firing.sort_by(|a, b| {
        (a.level != Level::Red, &a.rule_id, a.fired_at).cmp(&(
            b.level != Level::Red,
            &b.rule_id,
            b.fired_at,
        ))
    });
    let red = firing.iter().filter(|a| a.level == Level::Red).count();
    let body = format!(
        "<h1>{}</h1><div id=\"live\" data-live>{}<h2>{} <span class=\"badge level-red\">{red}</span> <span class=\"badge level-yellow\">{}</span></h2>{}</div>",
        t("lights.title"),
        summary(&ctx, &reports, &by_kind),
        t("lights.firing"),
        firing.len() - red,
        alerts_table(&ctx, &firing),
    );
    layout(&ctx, t("lights.title"), Nav::Lights, &body)
}
