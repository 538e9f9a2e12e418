//! The finance workbench: server-rendered pages where clerks work the discrepancy queue,
//! read a contract's story and acknowledge the lights, in Chinese or English. Pages are
//! plain HTML; a small script (assets/app.js, no framework, nothing from a CDN) sends the
//! clerk's actions to the same JSON API the CLI uses and refreshes the page's live part when
//! the pipeline commits (server-sent events from `/events`).

mod contract;
mod describe;
pub(super) mod events;
mod html;
mod item;
mod lights;
mod queue;
mod text;
mod xlsx;

use std::convert::Infallible;

use axum::Form;
use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::Deserialize;

use super::AppState;
use super::auth::Caller;
use html::esc;
pub use text::Lang;

/// The workbench's routes (the access check in front of them is the API's).
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(queue::page))
        .route("/queue.csv", get(queue::csv))
        .route("/queue.xlsx", get(queue::xlsx))
        .route("/items/{id}", get(item::page))
        .route("/contracts/{no}", get(contract::page))
        .route("/lights", get(lights::page))
        .route("/signin", get(signin_page).post(signin))
        .route("/signout", post(signout))
        .route("/events", get(events::stream))
        .route("/assets/app.js", get(script))
        .route("/assets/app.css", get(style))
}

/// Paths that need no sign-in: the sign-in page itself and what it loads.
pub(super) fn is_public(path: &str) -> bool {
    path == "/signin" || path == "/signout" || path.starts_with("/assets/")
}

/// Paths a browser opens as a page: an unauthenticated visit is sent to the sign-in page
/// instead of getting a JSON error.
pub(super) fn is_page(path: &str) -> bool {
    path == "/"
        || path == "/lights"
        || path.starts_with("/items/")
        || path.starts_with("/contracts/")
        || path.starts_with("/reports/")
}

/// Who is looking, in which language, and the business calendar pages count days in.
pub(super) struct Ctx {
    pub lang: Lang,
    pub caller: Option<Caller>,
    pub tz: Tz,
    pub today: NaiveDate,
    /// The path and query, for links that change only the language.
    path: String,
    query: Vec<(String, String)>,
    /// `?lang=` chose the language: the answer remembers it in a cookie.
    chosen: bool,
}

const LANG_COOKIE: &str = "reconlight_lang";
const TOKEN_COOKIE: &str = "reconlight_token";

fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| kv.trim().strip_prefix(name)?.strip_prefix('='))
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Ctx, Infallible> {
        let query: Vec<(String, String)> = parts
            .uri
            .query()
            .map(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).unwrap_or_default())
            .unwrap_or_default();
        let asked = query
            .iter()
            .find(|(k, _)| k == "lang")
            .and_then(|(_, v)| Lang::parse(v));
        let lang = asked
            .or_else(|| cookie(parts, LANG_COOKIE).and_then(Lang::parse))
            .or_else(|| {
                parts
                    .headers
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(Lang::from_accept_language)
            })
            .unwrap_or(Lang::Zh);
        let tz = s.time_zone;
        Ok(Ctx {
            lang,
            caller: parts.extensions.get::<Caller>().cloned(),
            tz,
            today: chrono::Utc::now().with_timezone(&tz).date_naive(),
            path: parts.uri.path().to_string(),
            query,
            chosen: asked.is_some(),
        })
    }
}

impl Ctx {
    pub fn t(&self, key: &str) -> &'static str {
        self.lang.t(key)
    }

    /// This page in another language.
    fn with_lang(&self, lang: Lang) -> String {
        let mut q: Vec<(&str, &str)> = self
            .query
            .iter()
            .filter(|(k, _)| k != "lang")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        q.push(("lang", lang.code()));
        format!(
            "{}?{}",
            self.path,
            serde_urlencoded::to_string(q).unwrap_or_default()
        )
    }
}

/// Which part of the navigation a page belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Nav {
    Queue,
    Lights,
    None,
}

/// A whole page around `body`.
pub(super) fn layout(ctx: &Ctx, title: &str, nav: Nav, body: &str) -> Response {
    let t = |k: &str| ctx.t(k);
    let link = |href: &str, key: &str, this: Nav| {
        format!(
            "<a href=\"{href}\"{}>{}</a>",
            if nav == this {
                " aria-current=\"page\""
            } else {
                ""
            },
            t(key)
        )
    };
    let who = match &ctx.caller {
        // A server open to viewers without a token: offer the sign-in that lets one act.
        Some(c) if c.name == "anonymous" => format!(
            "<a href=\"/signin?{}\">{}</a>",
            esc(&serde_urlencoded::to_string([("next", ctx.path.as_str())]).unwrap_or_default()),
            t("sign_in")
        ),
        Some(c) => format!(
            "<span>{} <b id=\"who\">{}</b></span><form method=\"post\" action=\"/signout\"><button type=\"submit\" class=\"link\">{}</button></form>",
            t("signed_in_as"),
            esc(&c.name),
            t("sign_out")
        ),
        None => String::new(),
    };
    let langs = [(Lang::Zh, "中文"), (Lang::En, "English")]
        .iter()
        .map(|(l, name)| {
            format!(
                "<a href=\"{}\" lang=\"{}\" hreflang=\"{}\"{}>{name}</a>",
                esc(&ctx.with_lang(*l)),
                l.html(),
                l.html(),
                if *l == ctx.lang {
                    " aria-current=\"true\""
                } else {
                    ""
                }
            )
        })
        .collect::<Vec<_>>()
        .join(" ");
    let page = format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · reconlight</title><link rel=\"stylesheet\" href=\"/assets/app.css\">\
         <script src=\"/assets/app.js\" defer></script></head>\
         <body data-t-done=\"{done}\" data-t-conflict=\"{conflict}\" data-t-failed=\"{failed}\" data-t-none=\"{none}\" data-t-updated=\"{updated}\">\
         <header class=\"top\"><a class=\"brand\" href=\"/\">reconlight</a>\
         <nav aria-label=\"{navlabel}\">{queue} {lights}</nav>\
         <div class=\"langs\" role=\"group\" aria-label=\"{language}\">{langs}</div>\
         <div class=\"who\">{who}</div></header>\
         <main id=\"main\">{body}</main>\
         <div id=\"status\" class=\"status\" role=\"status\" aria-live=\"polite\"></div>\
         </body></html>",
        lang = ctx.lang.html(),
        title = esc(title),
        done = esc(t("item.done")),
        conflict = esc(t("item.conflict")),
        failed = esc(t("item.failed")),
        none = esc(t("queue.bulk.none")),
        updated = esc(t("updated")),
        navlabel = t("nav.main"),
        queue = link("/", "nav.queue", Nav::Queue),
        lights = link("/lights", "nav.lights", Nav::Lights),
        language = t("language"),
    );
    let mut r = Html(page).into_response();
    let headers = r.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Pages never run anything but the workbench's own script.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
        ),
    );
    if ctx.chosen
        && let Ok(v) = HeaderValue::from_str(&format!(
            "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
            ctx.lang.code()
        ))
    {
        headers.insert(header::SET_COOKIE, v);
    }
    r
}

/// A page that says what is wrong, with its status.
pub(super) fn problem(ctx: &Ctx, status: StatusCode, message: &str) -> Response {
    let mut r = layout(
        ctx,
        ctx.t("error.not_found"),
        Nav::None,
        &format!("<p class=\"error\" role=\"alert\">{}</p>", esc(message)),
    );
    *r.status_mut() = status;
    r
}

#[derive(Deserialize, Default)]
struct SigninQuery {
    next: Option<String>,
}

fn signin_form(ctx: &Ctx, next: &str, refused: Option<&str>) -> Response {
    let error = refused
        .map(|why| {
            format!(
                "<p class=\"error\" role=\"alert\">{}: {}</p>",
                ctx.t("sign_in.refused"),
                esc(why)
            )
        })
        .unwrap_or_default();
    layout(
        ctx,
        ctx.t("sign_in"),
        Nav::None,
        &format!(
            "<h1>{title}</h1>{error}<form method=\"post\" action=\"/signin\" class=\"card narrow\">\
             <input type=\"hidden\" name=\"next\" value=\"{next}\">\
             <label for=\"token\">{label}</label>\
             <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required>\
             <p class=\"help\">{help}</p><button type=\"submit\">{title}</button></form>",
            title = ctx.t("sign_in"),
            next = esc(next),
            label = ctx.t("sign_in.token"),
            help = ctx.t("sign_in.help"),
        ),
    )
}

async fn signin_page(
    ctx: Ctx,
    axum::extract::Query(q): axum::extract::Query<SigninQuery>,
) -> Response {
    signin_form(&ctx, q.next.as_deref().unwrap_or("/"), None)
}

#[derive(Deserialize)]
struct SigninForm {
    token: String,
    next: Option<String>,
}

/// Where to go after signing in: a path on this server only.
fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/",
    }
}

async fn signin(State(s): State<AppState>, ctx: Ctx, Form(f): Form<SigninForm>) -> Response {
    let token = f.token.trim();
    let next = local_path(f.next.as_deref()).to_string();
    match s.gate.caller(token).await {
        Ok(_) if token.bytes().all(|b| b.is_ascii_graphic() && b != b';') => {
            let mut r = Redirect::to(&next).into_response();
            // HttpOnly: scripts never see the token; SameSite=Strict: other sites cannot
            // make the browser act with it.
            if let Ok(v) = HeaderValue::from_str(&format!(
                "{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
            )) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Ok(_) => {
            let mut r = signin_form(&ctx, &next, Some("not a token"));
            *r.status_mut() = StatusCode::UNAUTHORIZED;
            r
        }
        Err(why) => {
            let mut r = signin_form(&ctx, &next, Some(&why.to_string()));
            *r.status_mut() = StatusCode::UNAUTHORIZED;
            r
        }
    }
}

async fn signout() -> Response {
    let mut r = Redirect::to("/signin").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("reconlight_token=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn script() -> Response {
    asset(
        include_str!("assets/app.js"),
        "text/javascript; charset=utf-8",
    )
}

async fn style() -> Response {
    asset(include_str!("assets/app.css"), "text/css; charset=utf-8")
}
