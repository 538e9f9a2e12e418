//! The monthly report: target attainment per team and rep, handoff health per department,
//! receivables. A CSV of every figure, and an HTML page (a chart per section, inline SVG)
//! that reads the same in a browser and in a mail client.

use std::path::{Path, PathBuf};

use reconlight_core::monthly::MonthlyFigures;
use rust_decimal::Decimal;

use super::svg::{Bar, Marker, bars};
use super::{csv_field, esc};
use crate::config::notifiers::Language;

/// `section,name,metric,value` rows, every figure of the page.
pub fn csv(f: &MonthlyFigures) -> String {
    let mut out = String::from("section,name,metric,value\n");
    let mut row = |section: &str, name: &str, metric: &str, value: String| {
        out.push_str(&format!("{section},{},{metric},{value}\n", csv_field(name)));
    };
    let opt = |v: Option<Decimal>| v.map(|d| d.to_string()).unwrap_or_default();
    for t in &f.teams {
        row("team", &t.team, "reps", t.reps.to_string());
        row("team", &t.team, "target", t.target.to_string());
        row("team", &t.team, "achieved", t.achieved.to_string());
        row(
            "team",
            &t.team,
            "attainment_percent",
            opt(t.attainment_percent),
        );
    }
    for r in &f.reps {
        let name = format!("{}/{}", r.team, r.owner_id);
        row("rep", &name, "periods", r.periods.to_string());
        row("rep", &name, "target", r.target.to_string());
        row("rep", &name, "achieved", r.achieved.to_string());
        row(
            "rep",
            &name,
            "attainment_percent",
            opt(r.attainment_percent),
        );
        row(
            "rep",
            &name,
            "periods_under_60",
            r.periods_under_60.to_string(),
        );
    }
    for d in &f.departments {
        let n = &d.department;
        row("handoff", n, "tickets", d.tickets.to_string());
        row("handoff", n, "acknowledged", d.acknowledged.to_string());
        row("handoff", n, "within_sla", d.within_sla.to_string());
        row(
            "handoff",
            n,
            "within_sla_percent",
            opt(d.within_sla_percent),
        );
        row("handoff", n, "overdue_open", d.overdue_open.to_string());
        row(
            "handoff",
            n,
            "median_hours_to_acknowledge",
            opt(d.median_hours_to_acknowledge),
        );
        row(
            "handoff",
            n,
            "median_hours_to_complete",
            opt(d.median_hours_to_complete),
        );
    }
    let r = &f.receivables;
    row(
        "receivables",
        "month",
        "installments_due",
        r.installments_due.to_string(),
    );
    row("receivables", "month", "expected", r.expected.to_string());
    row("receivables", "month", "received", r.received.to_string());
    row(
        "receivables",
        "month",
        "difference",
        r.difference.to_string(),
    );
    row(
        "receivables",
        "month",
        "difference_rate_percent",
        opt(r.difference_rate_percent),
    );
    for b in &r.open_by_age {
        row("open_by_age", &b.label, "items", b.items.to_string());
        row("open_by_age", &b.label, "at_stake", b.at_stake.to_string());
    }
    out
}

struct Words {
    title: &'static str,
    targets: &'static str,
    per_rep: &'static str,
    team: &'static str,
    rep: &'static str,
    reps: &'static str,
    periods: &'static str,
    target: &'static str,
    achieved: &'static str,
    attainment: &'static str,
    under_60: &'static str,
    handoffs: &'static str,
    department: &'static str,
    tickets: &'static str,
    acknowledged: &'static str,
    within_sla: &'static str,
    overdue: &'static str,
    to_ack: &'static str,
    to_complete: &'static str,
    receivables: &'static str,
    due: &'static str,
    expected: &'static str,
    received: &'static str,
    difference: &'static str,
    rate: &'static str,
    by_age: &'static str,
    age: &'static str,
    items: &'static str,
    at_stake: &'static str,
    none: &'static str,
}

const ZH: Words = Words {
    title: "月度报告",
    targets: "目标达成",
    per_rep: "目标达成（按销售）",
    team: "团队（区域）",
    rep: "销售",
    reps: "人数",
    periods: "目标周期",
    target: "目标",
    achieved: "已签约",
    attainment: "达成率",
    under_60: "低于60%的周期",
    handoffs: "交接健康度",
    department: "部门",
    tickets: "工单",
    acknowledged: "已确认",
    within_sla: "24小时内确认",
    overdue: "逾期未确认",
    to_ack: "确认用时中位数（小时）",
    to_complete: "完成用时中位数（小时）",
    receivables: "应收账款",
    due: "本月到期分期",
    expected: "应收",
    received: "实收",
    difference: "差额",
    rate: "差异率",
    by_age: "待处理金额（按账龄）",
    age: "账龄（天）",
    items: "待办事项",
    at_stake: "涉及金额",
    none: "本月没有数据",
};

const EN: Words = Words {
    title: "Monthly report",
    targets: "Target attainment",
    per_rep: "Target attainment per rep",
    team: "Team (region)",
    rep: "Rep",
    reps: "Reps",
    periods: "Target periods",
    target: "Target",
    achieved: "Signed",
    attainment: "Attainment",
    under_60: "Periods under 60%",
    handoffs: "Handoff health",
    department: "Department",
    tickets: "Work orders",
    acknowledged: "Acknowledged",
    within_sla: "Acknowledged within 24 h",
    overdue: "Overdue, not acknowledged",
    to_ack: "Median hours to acknowledge",
    to_complete: "Median hours to complete",
    receivables: "Receivables",
    due: "Installments due this month",
    expected: "Expected",
    received: "Received",
    difference: "Difference",
    rate: "Difference rate",
    by_age: "Open money at stake by age",
    age: "Age (days)",
    items: "Work items",
    at_stake: "At stake",
    none: "No data this month",
};

/// A decimal with thousands separators and two places: `1,234,567.80`.
pub fn money(d: Decimal) -> String {
    let s = format!("{:.2}", d.round_dp(2));
    let (sign, s) = s.strip_prefix('-').map_or(("", s.as_str()), |r| ("-", r));
    let (int, frac) = s.split_once('.').unwrap_or((s, "00"));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}.{frac}")
}

fn pct(v: Option<Decimal>) -> String {
    v.map(|d| format!("{d:.1}%")).unwrap_or_else(|| "-".into())
}

fn number(v: Option<Decimal>) -> String {
    v.map(|d| d.to_string()).unwrap_or_else(|| "-".into())
}

fn f64_of(d: Decimal) -> f64 {
    d.to_string().parse().unwrap_or(0.0)
}

fn table(head: &[&str], rows: Vec<Vec<String>>, empty: &str) -> String {
    if rows.is_empty() {
        return format!("<p class=\"empty\">{}</p>\n", esc(empty));
    }
    let mut out = String::from("<table>\n<thead><tr>");
    for (i, h) in head.iter().enumerate() {
        let class = if i == 0 { "" } else { " class=\"n\"" };
        out.push_str(&format!("<th scope=\"col\"{class}>{}</th>", esc(h)));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for r in rows {
        out.push_str("<tr>");
        for (i, c) in r.iter().enumerate() {
            let class = if i == 0 { "" } else { " class=\"n\"" };
            out.push_str(&format!("<td{class}>{}</td>", esc(c)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
    out
}

/// The page, in one language.
pub fn html(f: &MonthlyFigures, language: Language) -> String {
    let w = match language {
        Language::Zh => &ZH,
        Language::En => &EN,
    };
    let lang = match language {
        Language::Zh => "zh-CN",
        Language::En => "en",
    };
    let mut body = String::new();

    body.push_str(&format!("<h2>{}</h2>\n", esc(w.targets)));
    let team_bars: Vec<Bar> = f
        .teams
        .iter()
        .map(|t| Bar {
            label: t.team.clone(),
            value: t.attainment_percent.map(f64_of).unwrap_or(0.0),
            text: pct(t.attainment_percent),
        })
        .collect();
    body.push_str(&bars(
        &format!("{} · {}", w.attainment, w.team),
        &team_bars,
        &[
            Marker {
                value: 60.0,
                label: "60%".into(),
            },
            Marker {
                value: 100.0,
                label: "100%".into(),
            },
        ],
        "#2e86c1",
    ));
    body.push_str(&table(
        &[w.team, w.reps, w.target, w.achieved, w.attainment],
        f.teams
            .iter()
            .map(|t| {
                vec![
                    t.team.clone(),
                    t.reps.to_string(),
                    money(t.target),
                    money(t.achieved),
                    pct(t.attainment_percent),
                ]
            })
            .collect(),
        w.none,
    ));
    body.push_str(&format!("<h2>{}</h2>\n", esc(w.handoffs)));
    let dept_bars: Vec<Bar> = f
        .departments
        .iter()
        .map(|d| Bar {
            label: d.department.clone(),
            value: d.within_sla_percent.map(f64_of).unwrap_or(0.0),
            text: pct(d.within_sla_percent),
        })
        .collect();
    body.push_str(&bars(
        w.within_sla,
        &dept_bars,
        &[Marker {
            value: 100.0,
            label: "100%".into(),
        }],
        "#28b463",
    ));
    body.push_str(&table(
        &[
            w.department,
            w.tickets,
            w.acknowledged,
            w.within_sla,
            w.overdue,
            w.to_ack,
            w.to_complete,
        ],
        f.departments
            .iter()
            .map(|d| {
                vec![
                    d.department.clone(),
                    d.tickets.to_string(),
                    d.acknowledged.to_string(),
                    format!("{} ({})", d.within_sla, pct(d.within_sla_percent)),
                    d.overdue_open.to_string(),
                    number(d.median_hours_to_acknowledge),
                    number(d.median_hours_to_complete),
                ]
            })
            .collect(),
        w.none,
    ));

    let r = &f.receivables;
    body.push_str(&format!("<h2>{}</h2>\n", esc(w.receivables)));
    body.push_str(&table(
        &[w.due, w.expected, w.received, w.difference, w.rate],
        vec![vec![
            r.installments_due.to_string(),
            money(r.expected),
            money(r.received),
            money(r.difference),
            pct(r.difference_rate_percent),
        ]],
        w.none,
    ));
    let age_bars: Vec<Bar> = r
        .open_by_age
        .iter()
        .map(|b| Bar {
            label: b.label.clone(),
            value: f64_of(b.at_stake),
            text: money(b.at_stake),
        })
        .collect();
    body.push_str(&bars(w.by_age, &age_bars, &[], "#cb4335"));
    body.push_str(&table(
        &[w.age, w.items, w.at_stake],
        r.open_by_age
            .iter()
            .map(|b| vec![b.label.clone(), b.items.to_string(), money(b.at_stake)])
            .collect(),
        w.none,
    ));

    body.push_str(&format!("<h2>{}</h2>\n", esc(w.per_rep)));
    body.push_str(&table(
        &[
            w.rep,
            w.team,
            w.periods,
            w.target,
            w.achieved,
            w.attainment,
            w.under_60,
        ],
        f.reps
            .iter()
            .map(|r| {
                vec![
                    r.owner_id.clone(),
                    r.team.clone(),
                    r.periods.to_string(),
                    money(r.target),
                    money(r.achieved),
                    pct(r.attainment_percent),
                    r.periods_under_60.to_string(),
                ]
            })
            .collect(),
        w.none,
    ));

    format!(
        "<!doctype html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n<title>reconlight · {title} {month}</title>\n<style>\nbody{{font-family:sans-serif;max-width:960px;margin:1em auto;padding:0 1em;color:#222}}\ntable{{border-collapse:collapse;margin:.5em 0 1.5em}}\nth,td{{border-bottom:1px solid #ddd;padding:4px 10px;text-align:left}}\n.n{{text-align:right}}\n.empty{{color:#666}}\n</style>\n</head>\n<body>\n<h1>{title} {month}</h1>\n{body}</body>\n</html>\n",
        title = esc(w.title),
        month = f.month,
    )
}

/// Writes `monthly-YYYY-MM.csv` and `monthly-YYYY-MM.html` into `dir`.
pub fn write_files(
    dir: &Path,
    f: &MonthlyFigures,
    language: Language,
) -> std::io::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let csv_path = dir.join(format!("monthly-{}.csv", f.month));
    let html_path = dir.join(format!("monthly-{}.html", f.month));
    std::fs::write(&csv_path, csv(f))?;
    std::fs::write(&html_path, html(f, language))?;
    Ok((csv_path, html_path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_groups_thousands() {
        assert_eq!(money(Decimal::new(123456780, 2)), "1,234,567.80");
        assert_eq!(money(Decimal::new(-5, 1)), "-0.50");
        assert_eq!(money(Decimal::from(100)), "100.00");
    }
}
