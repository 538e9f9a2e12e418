//! The monthly report on a generated dataset, checked against figures this test computes
//! itself from the generated CRM change files (Debezium JSON read here with serde_json,
//! not with reconlight's decoders); then mailed (HTML body, CSV attached) to a real SMTP
//! server and served on the page in both languages.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::*;
use crate::smtp::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use reconlight_core::monthly::Month;
use reconlight_service::notify::Notifier;
use reconlight_testkit::generate;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;
use tower::ServiceExt;

/// The final row of every key of one Debezium file: creates and updates replace, deletes
/// remove, tombstones are skipped. Decimals sent as bytes are decoded with the scale their schema gives.
fn final_rows(path: &Path, key: &str) -> BTreeMap<String, BTreeMap<String, Value>> {
    let mut rows = BTreeMap::new();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        if v.is_null() {
            continue; // the tombstone after a delete
        }
        let payload = v.get("payload").unwrap_or(&v);
        let scales = decimal_scales(&v["schema"]);
        match payload["op"].as_str().unwrap() {
            "d" => {
                let before = &payload["before"];
                rows.remove(before[key].as_str().unwrap());
            }
            _ => {
                let mut after: BTreeMap<String, Value> =
                    serde_json::from_value(payload["after"].clone()).unwrap();
                for (column, scale) in &scales {
                    if let Some(Value::String(b64)) = after.get(column) {
                        let d = bytes_decimal(b64, *scale);
                        after.insert(column.clone(), Value::String(d.to_string()));
                    }
                }
                rows.insert(after[key].as_str().unwrap().to_string(), after);
            }
        }
    }
    rows
}

/// Columns of the `after` struct that are Kafka Connect decimals, with their scale.
fn decimal_scales(schema: &Value) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    for f in schema["fields"].as_array().into_iter().flatten() {
        if f["field"] != "after" {
            continue;
        }
        for c in f["fields"].as_array().into_iter().flatten() {
            if c["name"] == "org.apache.kafka.connect.data.Decimal" {
                let scale = c["parameters"]["scale"].as_str().unwrap().parse().unwrap();
                out.insert(c["field"].as_str().unwrap().to_string(), scale);
            }
        }
    }
    out
}

/// A big-endian two's complement unscaled integer, base64.
fn bytes_decimal(b64: &str, scale: u32) -> Decimal {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let mut n: i128 = if bytes[0] & 0x80 != 0 { -1 } else { 0 };
    for b in bytes {
        n = (n << 8) | b as i128;
    }
    Decimal::from_i128_with_scale(n, scale)
}

fn text<'a>(row: &'a BTreeMap<String, Value>, column: &str) -> Option<&'a str> {
    row.get(column).and_then(Value::as_str)
}

fn time(row: &BTreeMap<String, Value>, column: &str) -> Option<DateTime<Utc>> {
    text(row, column).map(|t| DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc))
}

fn local_date(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&Shanghai).date_naive()
}

fn money(row: &BTreeMap<String, Value>, column: &str) -> Decimal {
    text(row, column).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monthly_report_matches_figures_computed_from_the_crm_files() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _smtpd = start_smtpd(dir.path(), port, false);
    generate(400, 9, dir.path()).unwrap();
    let cfg = dir.path().join("reconlight.toml");
    let text_cfg = std::fs::read_to_string(&cfg).unwrap().replacen(
        "[[sources]]",
        &format!(
            "[reports]\nemail = [\"cfo@example.cn\"]\n\n[notifiers.email]\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\nfrom = \"reconlight <reports@example.cn>\"\n\n[[sources]]"
        ),
        1,
    );
    std::fs::write(&cfg, text_cfg).unwrap();
    let mut p = open(dir.path()).await;
    p.run_until_idle(|_, _| {}).await.unwrap();
    let date = p.default_business_date();
    p.nightly(date).await.unwrap();
    let month: Month = "2026-09".parse().unwrap();
    assert!(
        date > month.last_day(),
        "the dataset covers the month: {date}"
    );
    let files = p.monthly_report(month).await.unwrap();
    let f = &files.figures;

    // What this test reads itself.
    let crm = dir.path().join("crm");
    let contracts = final_rows(&crm.join("contracts.jsonl"), "contract_no");
    let targets = final_rows(&crm.join("sales_targets.jsonl"), "target_id");
    let tickets = final_rows(&crm.join("handoff_tickets.jsonl"), "ticket_id");
    let signed: Vec<&BTreeMap<String, Value>> = contracts
        .values()
        .filter(|c| text(c, "status") == Some("signed"))
        .collect();

    // Targets: periods that began in September; signed amounts within each period.
    let mut reps: BTreeMap<(String, String), (Decimal, Decimal)> = BTreeMap::new();
    for t in targets.values() {
        let start: NaiveDate = text(t, "period_start").unwrap().parse().unwrap();
        let end: NaiveDate = text(t, "period_end").unwrap().parse().unwrap();
        if !month.contains(start) {
            continue;
        }
        let owner = text(t, "owner_id").unwrap();
        let achieved: Decimal = signed
            .iter()
            .filter(|c| text(c, "owner_id") == Some(owner))
            .filter(|c| {
                let d = local_date(time(c, "signed_at").unwrap());
                d >= start && d <= end
            })
            .map(|c| money(c, "amount"))
            .sum();
        let e = reps
            .entry((text(t, "region").unwrap().to_string(), owner.to_string()))
            .or_default();
        e.0 += money(t, "target_amount");
        e.1 += achieved;
    }
    assert!(reps.len() >= 5, "the dataset has September targets");
    let got: BTreeMap<(String, String), (Decimal, Decimal)> = f
        .reps
        .iter()
        .map(|r| ((r.team.clone(), r.owner_id.clone()), (r.target, r.achieved)))
        .collect();
    assert_eq!(got, reps, "target and signed amount per team and rep");
    let mut teams: BTreeMap<String, (Decimal, Decimal)> = BTreeMap::new();
    for ((team, _), (t, a)) in &reps {
        let e = teams.entry(team.clone()).or_default();
        e.0 += t;
        e.1 += a;
    }
    for t in &f.teams {
        let (target, achieved) = teams[&t.team];
        assert_eq!(
            (t.target, t.achieved),
            (target, achieved),
            "team {}",
            t.team
        );
        assert_eq!(
            t.attainment_percent,
            Some((achieved * Decimal::from(100) / target).round_dp(1))
        );
    }
    assert!(f.reps.iter().any(|r| r.achieved > Decimal::ZERO));

    // Handoffs: work orders created in September (business dates), acknowledged within
    // 24 hours of the contract's signing.
    let month_end = Shanghai
        .with_ymd_and_hms(2026, 10, 1, 0, 0, 0)
        .unwrap()
        .with_timezone(&Utc);
    let mut departments: BTreeMap<String, (usize, usize, usize, usize)> = BTreeMap::new();
    for t in tickets.values() {
        let created = time(t, "created_at").unwrap();
        if !month.contains(local_date(created)) {
            continue;
        }
        let signed_at = contracts
            .get(text(t, "contract_no").unwrap())
            .and_then(|c| time(c, "signed_at"))
            .unwrap_or(created);
        let deadline = signed_at + Duration::hours(24);
        let e = departments
            .entry(text(t, "department").unwrap().to_string())
            .or_default();
        e.0 += 1;
        match time(t, "acknowledged_at") {
            Some(ack) => {
                e.1 += 1;
                if ack <= deadline {
                    e.2 += 1;
                }
            }
            None if deadline < month_end => e.3 += 1,
            None => {}
        }
    }
    let got: BTreeMap<String, (usize, usize, usize, usize)> = f
        .departments
        .iter()
        .map(|d| {
            (
                d.department.clone(),
                (d.tickets, d.acknowledged, d.within_sla, d.overdue_open),
            )
        })
        .collect();
    assert_eq!(
        got, departments,
        "work orders, acknowledged, within SLA, overdue per department"
    );
    assert!(departments.values().any(|d| d.2 < d.0), "some were late");

    // Receivables: the installments due in September of signed contracts. For contracts
    // whose terms are JSON (percent of the amount, due days after signing or acceptance)
    // this test derives them itself; terms in prose (签约后7日内付30%...) are the terms
    // parser's to read, and their installments are taken from the pipeline's state.
    let mut due: BTreeMap<(String, u32), Decimal> = BTreeMap::new();
    let mut prose: Vec<String> = Vec::new();
    for c in &signed {
        let no = text(c, "contract_no").unwrap().to_string();
        let Ok(terms) = serde_json::from_str::<Vec<Value>>(text(c, "payment_terms").unwrap())
        else {
            prose.push(no);
            continue;
        };
        let amount = money(c, "amount");
        // Each share rounded to the cent, half away from zero (四舍五入); the rounding
        // remainder goes to the last one (docs/configuration.md).
        let mut shares: Vec<(u32, Option<NaiveDate>, Decimal)> = Vec::new();
        for term in &terms {
            let anchor = match term["anchor"].as_str() {
                Some("signed") => time(c, "signed_at"),
                Some("accepted") => time(c, "accepted_at"),
                _ => None,
            };
            let percent: Decimal = term["percent"].as_str().unwrap().parse().unwrap();
            let due_date =
                anchor.map(|a| local_date(a) + Duration::days(term["due_days"].as_i64().unwrap()));
            shares.push((
                term["seq"].as_u64().unwrap() as u32,
                due_date,
                (amount * percent / Decimal::from(100))
                    .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero),
            ));
        }
        let before_last: Decimal = shares.iter().rev().skip(1).map(|s| s.2).sum();
        if let Some(last) = shares.last_mut() {
            last.2 = amount - before_last;
        }
        for (seq, due_date, share) in shares {
            if due_date.is_some_and(|d| month.contains(d)) {
                due.insert((no.clone(), seq), share);
            }
        }
    }
    let json_contracts = due.len();
    for no in &prose {
        for ((n, seq), inst) in p
            .state
            .installments
            .range((no.clone(), 0)..=(no.clone(), u32::MAX))
        {
            if inst.due_date.is_some_and(|d| month.contains(d)) {
                due.insert((n.clone(), *seq), inst.amount.amount);
            }
        }
    }
    let r = &f.receivables;
    assert!(json_contracts > 0 && due.len() > json_contracts);
    assert_eq!(
        (r.installments_due, r.expected),
        (due.len(), due.values().copied().sum::<Decimal>()),
        "installments due in September and their amounts"
    );
    assert!(r.received <= r.expected + r.difference);
    assert_eq!(
        r.difference_rate_percent,
        Some((r.difference * Decimal::from(100) / r.expected).round_dp(1))
    );
    // Aging: every open item about money due or booked by the month's end, by days past
    // that date at the month's end.
    let mut aging = [(0usize, Decimal::ZERO); 4];
    for w in p.state.work_items.values().filter(|w| w.state.is_active()) {
        let f = &w.finding;
        let since = match (&f.contract_no, f.installment, &f.bank_ref) {
            (Some(no), Some(seq), _) => p.state.installments[&(no.clone(), seq)].due_date,
            (_, _, Some(r)) => Some(p.state.bank[r].tx.booking_date),
            _ => None,
        }
        .unwrap_or(w.first_found);
        if since > month.last_day() {
            continue;
        }
        let age = (month.last_day() - since).num_days();
        let bucket = match age {
            0..=30 => 0,
            31..=60 => 1,
            61..=90 => 2,
            _ => 3,
        };
        aging[bucket].0 += 1;
        aging[bucket].1 += w.finding.amount_at_stake();
    }
    let got: Vec<(usize, Decimal)> = r
        .open_by_age
        .iter()
        .map(|b| (b.items, b.at_stake))
        .collect();
    assert_eq!(got, aging.to_vec(), "open items and money at stake by age");
    assert!(aging[0].0 > 0, "September's problems are in the aging");
    println!(
        "{month}: {} reps, {} teams, {} departments, {} installments due, difference rate {:?}",
        f.reps.len(),
        f.teams.len(),
        f.departments.len(),
        r.installments_due,
        r.difference_rate_percent
    );

    // The files, the mail and the page.
    let csv = std::fs::read_to_string(&files.csv).unwrap();
    assert!(csv.starts_with("section,name,metric,value\n"));
    let html = std::fs::read_to_string(&files.html).unwrap();
    assert!(html.contains("<html lang=\"zh-CN\">") && html.contains("目标达成"));
    assert_eq!(html.matches("<svg").count(), 3, "a chart per section");
    if let Ok(out) = std::env::var("RECONLIGHT_SAVE_REPORT") {
        std::fs::copy(&files.html, out).unwrap();
    }

    let mut n = Notifier::configured(p.store.clone(), &p.config, p.metrics.clone())
        .unwrap()
        .unwrap();
    let round = n.deliver(Utc::now()).await.unwrap();
    assert_eq!(round.failed + round.retried, 0, "{round:?}");
    let mails = received(dir.path());
    let report: Vec<&String> = mails
        .iter()
        .filter(|m| m.contains("To: cfo@example.cn"))
        .collect();
    assert_eq!(report.len(), 1, "one report mail");
    let mail = mail_parts(report[0]);
    assert_eq!(mail.subject, "reconlight 月度报告 2026-09");
    assert!(mail.html.contains("交接健康度"));
    assert_eq!(
        mail.attachments,
        vec![("monthly-2026-09.csv".to_string(), csv.clone())]
    );

    let app = reconlight_service::server::app(p.store.clone(), p.metrics.clone());
    let viewer = token(
        &p.store,
        "zhao.min",
        reconlight_service::access::Role::Viewer,
    )
    .await;
    let get = |uri: &str, lang: &str| {
        Request::get(uri)
            .header("authorization", format!("Bearer {viewer}"))
            .header("accept-language", lang)
            .body(Body::empty())
            .unwrap()
    };
    let response = app
        .clone()
        .oneshot(get("/reports/monthly/2026-09", "en-US,en;q=0.9"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), 1 << 24)
        .await
        .unwrap();
    let page = String::from_utf8(body.to_vec()).unwrap();
    assert!(page.contains("Target attainment") && page.contains("Handoff health"));
    let missing = app
        .clone()
        .oneshot(get("/reports/monthly/2026-13", "zh-CN"))
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    let none = app
        .oneshot(get("/reports/monthly/2025-01", "zh-CN"))
        .await
        .unwrap();
    assert_eq!(none.status(), StatusCode::NOT_FOUND);
}
