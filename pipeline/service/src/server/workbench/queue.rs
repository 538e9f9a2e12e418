//! The queue: filters, sorting, paging, full-text search, bulk actions, and the current
//! view exported as CSV or Excel.

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use reconlight_core::workitems::{WorkItemKind, WorkItemState};
use rust_decimal::Decimal;
use serde::Deserialize;

use super::html::{esc, input, kind_label, seg, select, sla_badge, state_badge};
use super::{Ctx, Nav, layout};
use crate::server::AppState;
use crate::store::{QueueEntry, QueueFilter, QueueSort, SlaState};

/// Items on a page.
pub const PAGE_SIZE: u64 = 50;
/// At most this many rows go into one export; a larger view is refused, never cut short.
const EXPORT_LIMIT: u64 = 200_000;

/// The queue's query string, as the filter form sends it (every field text, so a wrong
/// value is named on the page instead of failing the request).
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct QueueQuery {
    pub q: String,
    pub kind: String,
    /// `active` (open or assigned, the default), `any`, or one state.
    pub state: Option<String>,
    pub assignee: String,
    pub customer: String,
    pub owner: String,
    pub region: String,
    pub contract: String,
    pub min: String,
    pub max: String,
    pub age: String,
    pub sla: String,
    pub sort: String,
    pub page: String,
    pub lang: String,
}

fn some(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

impl QueueQuery {
    /// The filter, the order, the page, and what could not be read.
    pub fn read(&self, ctx: &Ctx) -> (QueueFilter, QueueSort, u64, Vec<String>) {
        let mut errors = Vec::new();
        let mut f = QueueFilter {
            text: some(&self.q),
            assignee: some(&self.assignee),
            customer: some(&self.customer),
            owner: some(&self.owner),
            region: some(&self.region),
            contract_no: some(&self.contract),
            today: Some(ctx.today),
            ..Default::default()
        };
        if let Some(k) = some(&self.kind) {
            match k.parse::<WorkItemKind>() {
                Ok(k) => f.kind = Some(k),
                Err(e) => errors.push(format!("kind: {e}")),
            }
        }
        match self.state.as_deref().map(str::trim) {
            None | Some("active") => f.states = vec![WorkItemState::Open, WorkItemState::Assigned],
            Some("") | Some("any") => {}
            Some(s) => match WorkItemState::ALL.iter().find(|x| x.as_str() == s) {
                Some(s) => f.states = vec![*s],
                None => errors.push(format!(
                    "state: `{s}` is not active, any, open, assigned, resolved or dismissed"
                )),
            },
        }
        for (name, text, slot) in [
            ("min", &self.min, &mut f.min_amount),
            ("max", &self.max, &mut f.max_amount),
        ] {
            if let Some(t) = some(text) {
                match t.replace(',', "").parse::<Decimal>() {
                    Ok(d) => *slot = Some(d),
                    Err(_) => errors.push(format!("{name}: `{t}` is not an amount")),
                }
            }
        }
        if let Some(t) = some(&self.age) {
            match t.parse::<i64>() {
                Ok(d) if (0..=36_500).contains(&d) => f.min_age_days = Some(d),
                _ => errors.push(format!("age: `{t}` is not a number of days")),
            }
        }
        if let Some(t) = some(&self.sla) {
            match SlaState::ALL.iter().find(|s| s.as_str() == t) {
                Some(s) => f.sla = Some(*s),
                None => errors.push(format!("sla: `{t}` is not overdue, due_soon or on_time")),
            }
        }
        let sort = match some(&self.sort) {
            None => QueueSort::Money,
            Some(t) => match QueueSort::ALL.iter().find(|s| s.as_str() == t) {
                Some(s) => *s,
                None => {
                    errors.push(format!("sort: `{t}` is not money, sla or age"));
                    QueueSort::Money
                }
            },
        };
        let page = match some(&self.page) {
            None => 1,
            Some(t) => match t.parse::<u64>() {
                Ok(p) if p >= 1 => p,
                _ => {
                    errors.push(format!("page: `{t}` is not a page number"));
                    1
                }
            },
        };
        (f, sort, page, errors)
    }

    /// This query on another page (or in another format).
    fn link(&self, path: &str, page: Option<u64>) -> String {
        let mut pairs: Vec<(&str, String)> = vec![
            ("q", self.q.clone()),
            ("kind", self.kind.clone()),
            ("assignee", self.assignee.clone()),
            ("customer", self.customer.clone()),
            ("owner", self.owner.clone()),
            ("region", self.region.clone()),
            ("contract", self.contract.clone()),
            ("min", self.min.clone()),
            ("max", self.max.clone()),
            ("age", self.age.clone()),
            ("sla", self.sla.clone()),
            ("sort", self.sort.clone()),
        ];
        if let Some(s) = &self.state {
            pairs.push(("state", s.clone()));
        }
        if let Some(p) = page {
            pairs.push(("page", p.to_string()));
        }
        pairs.retain(|(_, v)| !v.is_empty());
        let q = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        if q.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{q}")
        }
    }
}

fn filter_form(ctx: &Ctx, q: &QueueQuery) -> String {
    let t = |k: &str| ctx.t(k);
    let any = (String::new(), t("queue.any").to_string());
    let mut kinds = vec![any.clone()];
    kinds.extend(WorkItemKind::ALL.iter().map(|k| {
        (
            k.as_str().to_string(),
            kind_label(ctx, k.as_str()).to_string(),
        )
    }));
    let mut states = vec![
        ("active".to_string(), t("queue.active").to_string()),
        ("any".to_string(), t("queue.any").to_string()),
    ];
    states.extend(WorkItemState::ALL.iter().map(|s| {
        (
            s.as_str().to_string(),
            ctx.t(&format!("state.{}", s.as_str())).to_string(),
        )
    }));
    let mut slas = vec![any];
    slas.extend(SlaState::ALL.iter().map(|s| {
        (
            s.as_str().to_string(),
            ctx.t(&format!("sla.{}", s.as_str())).to_string(),
        )
    }));
    let sorts: Vec<(String, String)> = QueueSort::ALL
        .iter()
        .map(|s| {
            (
                s.as_str().to_string(),
                ctx.t(&format!("sort.{}", s.as_str())).to_string(),
            )
        })
        .collect();
    let search = format!(
        "<div class=\"field wide\"><label for=\"q\">{}</label><input id=\"q\" name=\"q\" type=\"search\" value=\"{}\" placeholder=\"{}\"></div>",
        t("queue.search"),
        esc(&q.q),
        t("queue.search.help")
    );
    format!(
        "<form id=\"filters\" class=\"filters card\" method=\"get\" action=\"/\" aria-label=\"{label}\">{search}{kind}{state}{sla}{assignee}{customer}{owner}{region}{min}{max}{age}{sort}\
         <div class=\"buttons\"><button type=\"submit\">{apply}</button> <a href=\"/\">{reset}</a></div></form>",
        label = t("queue.filters"),
        kind = select("kind", t("queue.kind"), &kinds, &q.kind),
        state = select(
            "state",
            t("queue.state"),
            &states,
            q.state.as_deref().unwrap_or("active")
        ),
        sla = select("sla", t("queue.sla"), &slas, &q.sla),
        assignee = input("assignee", t("queue.assignee"), &q.assignee, "text", ""),
        customer = input("customer", t("queue.customer"), &q.customer, "text", ""),
        owner = input("owner", t("queue.owner"), &q.owner, "text", ""),
        region = input("region", t("queue.region"), &q.region, "text", ""),
        min = input(
            "min",
            t("queue.min_amount"),
            &q.min,
            "text",
            " inputmode=\"decimal\""
        ),
        max = input(
            "max",
            t("queue.max_amount"),
            &q.max,
            "text",
            " inputmode=\"decimal\""
        ),
        age = input("age", t("queue.min_age"), &q.age, "number", " min=\"0\""),
        sort = select(
            "sort",
            t("queue.sort"),
            &sorts,
            if q.sort.is_empty() { "money" } else { &q.sort }
        ),
        apply = t("queue.apply"),
        reset = t("queue.reset"),
    )
}

fn subject(e: &QueueEntry) -> String {
    let f = &e.item.finding;
    let mut parts = Vec::new();
    if let Some(no) = &f.contract_no {
        let inst = f.installment.map(|i| format!(" #{i}")).unwrap_or_default();
        parts.push(format!(
            "<a href=\"/contracts/{}\">{}</a>{inst}",
            seg(no),
            esc(no)
        ));
    }
    if let Some(r) = &f.bank_ref {
        parts.push(format!("<span class=\"mono\">{}</span>", esc(r)));
    }
    parts.join("<br>")
}

fn rows(ctx: &Ctx, entries: &[QueueEntry]) -> String {
    let mut h = String::new();
    for e in entries {
        let w = &e.item;
        let f = &w.finding;
        let age = (ctx.today - w.first_found).num_days().max(0);
        h.push_str(&format!(
            "<tr data-id=\"{id}\" data-version=\"{version}\">\
             <td><input type=\"checkbox\" class=\"pick\" value=\"{id}\" aria-label=\"{select} {id}\"></td>\
             <td><a href=\"/items/{sid}\" class=\"mono\">{id}</a></td><td>{kind}</td><td>{subject}</td>\
             <td>{customer}</td><td class=\"num\">{money}</td><td>{sla}</td><td class=\"num\">{age} {days}</td>\
             <td>{assignee}</td><td>{state}</td><td class=\"summary\">{summary}</td></tr>",
            id = esc(&w.id),
            sid = seg(&w.id),
            version = w.version,
            select = ctx.t("queue.select"),
            kind = kind_label(ctx, f.kind.as_str()),
            subject = subject(e),
            customer = match (&e.customer, &e.payer) {
                (Some(c), _) => esc(c),
                (None, Some(p)) => format!(
                    "<span class=\"payer\">{} {}</span>",
                    ctx.t("item.payer"),
                    esc(p)
                ),
                (None, None) => esc(f.customer_id.as_deref().unwrap_or("")),
            },
            money = ctx.lang.money(f.amount_at_stake(), f.currency.as_deref().unwrap_or("")),
            sla = sla_badge(ctx, w),
            days = ctx.t("days"),
            assignee = esc(w.assignee.as_deref().unwrap_or("")),
            state = state_badge(ctx, w.state),
            summary = esc(&super::describe::summary(ctx, f)),
        ));
    }
    h
}

pub async fn page(State(s): State<AppState>, ctx: Ctx, Query(q): Query<QueueQuery>) -> Response {
    let (filter, sort, page, errors) = q.read(&ctx);
    let result = s
        .store
        .queue_page(&filter, sort, (page - 1) * PAGE_SIZE, PAGE_SIZE)
        .await;
    let t = |k: &str| ctx.t(k);
    let mut body = format!("<h1>{}</h1>", t("queue.title"));
    body.push_str(&filter_form(&ctx, &q));
    for e in &errors {
        body.push_str(&format!("<p class=\"error\" role=\"alert\">{}</p>", esc(e)));
    }
    let result = match result {
        Ok(r) => r,
        Err(e) => {
            body.push_str(&format!(
                "<p class=\"error\" role=\"alert\">{}</p>",
                esc(&e.to_string())
            ));
            let mut r = layout(&ctx, t("queue.title"), Nav::Queue, &body);
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            return r;
        }
    };
    let stakes = result
        .at_stake
        .iter()
        .map(|(c, a)| ctx.lang.money(*a, c))
        .collect::<Vec<_>>()
        .join(" · ");
    let pages = result.total.div_ceil(PAGE_SIZE).max(1);
    let first = (page - 1) * PAGE_SIZE + 1;
    let last = ((page - 1) * PAGE_SIZE + result.items.len() as u64).max(first - 1);
    let prev = if page > 1 {
        format!(
            "<a rel=\"prev\" href=\"{}\">{}</a>",
            esc(&q.link("/", Some(page - 1))),
            t("queue.prev")
        )
    } else {
        String::new()
    };
    let next = if page < pages {
        format!(
            "<a rel=\"next\" href=\"{}\">{}</a>",
            esc(&q.link("/", Some(page + 1))),
            t("queue.next")
        )
    } else {
        String::new()
    };
    let table = if result.items.is_empty() {
        format!("<p class=\"empty\">{}</p>", t("queue.none"))
    } else {
        format!(
            "<table class=\"queue\"><caption class=\"sr-only\">{title}</caption><thead><tr>\
             <th scope=\"col\"><input type=\"checkbox\" id=\"pick-all\" aria-label=\"{all}\"></th>\
             <th scope=\"col\">{c1}</th><th scope=\"col\">{c2}</th><th scope=\"col\">{c3}</th><th scope=\"col\">{c4}</th>\
             <th scope=\"col\" class=\"num\">{c5}</th><th scope=\"col\">{c6}</th><th scope=\"col\" class=\"num\">{c7}</th>\
             <th scope=\"col\">{c8}</th><th scope=\"col\">{c9}</th><th scope=\"col\">{c10}</th></tr></thead><tbody>{rows}</tbody></table>",
            title = t("queue.title"),
            all = t("queue.select_page"),
            c1 = t("col.item"),
            c2 = t("col.kind"),
            c3 = t("col.subject"),
            c4 = t("col.customer"),
            c5 = t("col.at_stake"),
            c6 = t("col.sla_due"),
            c7 = t("col.age"),
            c8 = t("col.assignee"),
            c9 = t("col.state"),
            c10 = t("col.summary"),
            rows = rows(&ctx, &result.items),
        )
    };
    body.push_str(&format!(
        "<div id=\"live\" data-live>\
         <p class=\"totals\"><b id=\"total\">{total}</b> {items} · {stakes} {at_stake}\
         <span class=\"exports\"><a href=\"{csv}\">{export_csv}</a> <a href=\"{xlsx}\">{export_xlsx}</a></span></p>\
         <form id=\"bulk\" class=\"bulk card\" aria-label=\"{bulk}\"><span>{bulk}</span>\
         <label for=\"bulk-assignee\">{assignee}</label><input id=\"bulk-assignee\" name=\"assignee\" type=\"text\">\
         <button type=\"submit\" name=\"op\" value=\"assign\">{assign}</button>\
         <label for=\"bulk-reason\">{reason}</label><input id=\"bulk-reason\" name=\"reason\" type=\"text\">\
         <button type=\"submit\" name=\"op\" value=\"dismiss\">{dismiss}</button></form>\
         {table}<nav class=\"pager\" aria-label=\"{pages_label}\">{prev} <span>{first}–{last} / {total}</span> {next}</nav></div>",
        total = result.total,
        items = t("queue.items"),
        at_stake = t("queue.at_stake_total"),
        csv = esc(&q.link("/queue.csv", None)),
        xlsx = esc(&q.link("/queue.xlsx", None)),
        export_csv = t("queue.export_csv"),
        export_xlsx = t("queue.export_xlsx"),
        bulk = t("queue.bulk"),
        assignee = t("queue.bulk.assignee"),
        assign = t("queue.bulk.assign"),
        reason = t("queue.bulk.reason"),
        dismiss = t("queue.bulk.dismiss"),
        pages_label = t("queue.pages"),
    ));
    layout(&ctx, t("queue.title"), Nav::Queue, &body)
}

/// The columns of an export.
const EXPORT_COLUMNS: [&str; 19] = [
    "item_id",
    "kind",
    "state",
    "contract_no",
    "installment",
    "bank_ref",
    "customer_id",
    "customer",
    "payer",
    "owner",
    "region",
    "currency",
    "expected",
    "received",
    "at_stake",
    "sla_due",
    "first_found",
    "assignee",
    "summary",
];

/// A cell of an export: text, or an exact decimal.
pub enum Cell {
    Text(String),
    Number(Decimal),
}

fn export_rows(entries: &[QueueEntry]) -> Vec<Vec<Cell>> {
    let text = |s: Option<&str>| Cell::Text(s.unwrap_or("").to_string());
    let num = |d: Option<Decimal>| d.map(Cell::Number).unwrap_or(Cell::Text(String::new()));
    entries
        .iter()
        .map(|e| {
            let w = &e.item;
            let f = &w.finding;
            vec![
                Cell::Text(w.id.clone()),
                Cell::Text(f.kind.as_str().into()),
                Cell::Text(w.state.as_str().into()),
                text(f.contract_no.as_deref()),
                f.installment
                    .map(|i| Cell::Number(i.into()))
                    .unwrap_or(Cell::Text(String::new())),
                text(f.bank_ref.as_deref()),
                text(f.customer_id.as_deref()),
                text(e.customer.as_deref()),
                text(e.payer.as_deref()),
                text(e.owner.as_deref()),
                text(e.region.as_deref()),
                text(f.currency.as_deref()),
                num(f.expected),
                num(f.received),
                Cell::Number(f.amount_at_stake()),
                Cell::Text(w.sla_due.to_string()),
                Cell::Text(w.first_found.to_string()),
                text(w.assignee.as_deref()),
                Cell::Text(f.summary.clone()),
            ]
        })
        .collect()
}

async fn export_view(s: &AppState, ctx: &Ctx, q: &QueueQuery) -> Result<Vec<QueueEntry>, Response> {
    let (filter, sort, _, errors) = q.read(ctx);
    if !errors.is_empty() {
        return Err((StatusCode::BAD_REQUEST, errors.join("\n")).into_response());
    }
    let page = s
        .store
        .queue_page(&filter, sort, 0, EXPORT_LIMIT)
        .await
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response())?;
    if page.total > EXPORT_LIMIT {
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "this view holds {} items; an export holds at most {EXPORT_LIMIT}: narrow the filters",
                page.total
            ),
        )
            .into_response());
    }
    Ok(page.items)
}

fn download(body: Vec<u8>, content_type: &'static str, name: &str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

/// A CSV field; text a spreadsheet would run as a formula is prefixed with `'`.
fn csv_field(cell: &Cell) -> String {
    match cell {
        Cell::Number(d) => d.normalize().to_string(),
        Cell::Text(t) => {
            let t = if t.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                format!("'{t}")
            } else {
                t.clone()
            };
            if t.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", t.replace('"', "\"\""))
            } else {
                t
            }
        }
    }
}

pub async fn csv(State(s): State<AppState>, ctx: Ctx, Query(q): Query<QueueQuery>) -> Response {
    let entries = match export_view(&s, &ctx, &q).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    // A byte order mark, so Excel reads the Chinese text as UTF-8.
    let mut out = String::from("\u{feff}");
    out.push_str(&EXPORT_COLUMNS.join(","));
    out.push_str("\r\n");
    for row in export_rows(&entries) {
        out.push_str(&row.iter().map(csv_field).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    download(
        out.into_bytes(),
        "text/csv; charset=utf-8",
        &format!("work-queue-{}.csv", ctx.today),
    )
}

pub async fn xlsx(State(s): State<AppState>, ctx: Ctx, Query(q): Query<QueueQuery>) -> Response {
    let entries = match export_view(&s, &ctx, &q).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    let header: Vec<Cell> = EXPORT_COLUMNS
        .iter()
        .map(|c| Cell::Text(c.to_string()))
        .collect();
    let mut rows = vec![header];
    rows.extend(export_rows(&entries));
    download(
        super::xlsx::workbook("work queue", &rows),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        &format!("work-queue-{}.xlsx", ctx.today),
    )
}
