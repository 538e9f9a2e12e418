//! Webhook receivers for the e-signature platforms: each verifies the provider's signature
//! exactly as the provider specifies, keeps the body in the inbox (idempotently: a replay is
//! accepted and adds nothing) and answers at once; the pipeline applies inbox entries in its
//! next micro-batch, on the same path as every other record. A bad signature gets 401 and
//! nothing is kept.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::AppState;
use crate::config::ConfigDuration;

pub use crate::config::webhooks::{
    AdobeSignHook, DocusignHook, EsignCnHook, FadadaHook, WebhooksConfig,
};

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Compares without leaking where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// DocuSign: `X-DocuSign-Signature-N` = base64(HMAC-SHA256(key, body)) for one of the keys.
pub fn docusign_verified(keys: &[String], headers: &HeaderMap, body: &[u8]) -> bool {
    let expected: Vec<Vec<u8>> = keys.iter().map(|k| hmac(k.as_bytes(), body)).collect();
    (1..=10)
        .filter_map(|n| header(headers, &format!("x-docusign-signature-{n}")))
        .filter_map(|s| {
            base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .ok()
        })
        .any(|sig| expected.iter().any(|e| same(e, &sig)))
}

/// A provider's timestamp (milliseconds since the epoch) within `window` of the clock.
fn fresh(ms: Option<&str>, window: ConfigDuration) -> bool {
    let Some(ms) = ms.and_then(|t| t.trim().parse::<i64>().ok()) else {
        return false;
    };
    let now = chrono::Utc::now().timestamp_millis();
    (now - ms).abs() <= window.0.num_milliseconds()
}

/// 法大大 nonces seen in the last ten minutes (a nonce must not come twice).
fn nonce_seen_before(nonce: &str) -> bool {
    use std::sync::{Mutex, OnceLock};
    use std::time::{Duration, Instant};
    static SEEN: OnceLock<Mutex<std::collections::HashMap<String, Instant>>> = OnceLock::new();
    let mut seen = SEEN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    seen.retain(|_, at| at.elapsed() < Duration::from_secs(600));
    seen.insert(nonce.to_string(), Instant::now()).is_some()
}

/// e签宝: hex(HMAC-SHA256(secret, timestamp + query values in key order + body)).
pub fn esign_cn_verified(
    hook: &EsignCnHook,
    headers: &HeaderMap,
    query: &BTreeMap<String, String>,
    body: &[u8],
) -> bool {
    if header(headers, "x-tsign-open-app-id") != Some(hook.app_id.as_str()) {
        return false;
    }
    let (Some(ts), Some(sig)) = (
        header(headers, "x-tsign-open-timestamp"),
        header(headers, "x-tsign-open-signature"),
    ) else {
        return false;
    };
    let mut data = ts.as_bytes().to_vec();
    for v in query.values() {
        data.extend_from_slice(v.as_bytes());
    }
    data.extend_from_slice(body);
    let expected = hex::encode(hmac(hook.app_secret.as_bytes(), &data));
    same(
        expected.as_bytes(),
        sig.trim().to_ascii_lowercase().as_bytes(),
    )
}

/// 法大大: the sorted `k=v&...` of the FASC headers and bizContent, SHA-256 hex, signed
/// with HMAC-SHA256 under a key that is HMAC-SHA256(secret, timestamp).
pub fn fadada_sign(app_secret: &str, fields: &BTreeMap<&str, String>) -> String {
    let joined: String = fields
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let sign_text = hex::encode(Sha256::digest(joined.as_bytes()));
    let timestamp = fields.get("X-FASC-Timestamp").cloned().unwrap_or_default();
    let key = hmac(app_secret.as_bytes(), timestamp.as_bytes());
    hex::encode(hmac(&key, sign_text.as_bytes()))
}

fn fadada_fields(headers: &HeaderMap, biz: &str) -> BTreeMap<&'static str, String> {
    let mut fields = BTreeMap::new();
    for name in [
        "X-FASC-App-Id",
        "X-FASC-Sign-Type",
        "X-FASC-Timestamp",
        "X-FASC-Nonce",
        "X-FASC-Event",
    ] {
        fields.insert(name, header(headers, name).unwrap_or("").to_string());
    }
    fields.insert("bizContent", biz.to_string());
    fields
}

async fn keep(s: &AppState, provider: &str, body: String) -> Result<bool, Response> {
    let id = format!(
        "{provider}:{}",
        &hex::encode(Sha256::digest(body.as_bytes()))[..24]
    );
    s.store
        .inbox_insert(&id, provider, &body, chrono::Utc::now())
        .await
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response())
}

fn counted(s: &AppState, provider: &str, outcome: &str) {
    s.metrics
        .webhooks
        .with_label_values(&[provider, outcome])
        .inc();
}

fn refused(s: &AppState, provider: &str) -> Response {
    counted(s, provider, "rejected");
    (StatusCode::UNAUTHORIZED, "signature does not verify").into_response()
}

fn stale(s: &AppState, provider: &str, window: ConfigDuration) -> Response {
    counted(s, provider, "replayed");
    (
        StatusCode::UNAUTHORIZED,
        format!("the signed timestamp is missing or more than {window} from the clock"),
    )
        .into_response()
}

fn not_configured(provider: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        format!("the {provider} webhook is not configured"),
    )
        .into_response()
}

pub(super) async fn docusign(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(hook) = s.webhooks.as_ref().and_then(|w| w.docusign.clone()) else {
        return not_configured("docusign");
    };
    if !docusign_verified(&hook.keys, &headers, &body) {
        return refused(&s, "docusign");
    }
    match keep(&s, "docusign", String::from_utf8_lossy(&body).into_owned()).await {
        Ok(new) => {
            counted(&s, "docusign", if new { "accepted" } else { "duplicate" });
            StatusCode::OK.into_response()
        }
        Err(r) => r,
    }
}

pub(super) async fn esign_cn(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
    body: axum::body::Bytes,
) -> Response {
    let Some(hook) = s.webhooks.as_ref().and_then(|w| w.esign_cn.clone()) else {
        return not_configured("esign_cn");
    };
    if !esign_cn_verified(&hook, &headers, &query, &body) {
        return refused(&s, "esign_cn");
    }
    if !fresh(
        header(&headers, "x-tsign-open-timestamp"),
        hook.replay_window,
    ) {
        return stale(&s, "esign_cn", hook.replay_window);
    }
    match keep(&s, "esign_cn", String::from_utf8_lossy(&body).into_owned()).await {
        Ok(new) => {
            counted(&s, "esign_cn", if new { "accepted" } else { "duplicate" });
            (
                StatusCode::OK,
                axum::Json(serde_json::json!({"code": 200, "msg": "success"})),
            )
                .into_response()
        }
        Err(r) => r,
    }
}

pub(super) async fn fadada(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(hook) = s.webhooks.as_ref().and_then(|w| w.fadada.clone()) else {
        return not_configured("fadada");
    };
    let form: BTreeMap<String, String> = url_form(&body);
    let biz = form.get("bizContent").cloned().unwrap_or_default();
    let fields = fadada_fields(&headers, &biz);
    let expected = fadada_sign(&hook.app_secret, &fields);
    let given = header(&headers, "X-FASC-Sign")
        .unwrap_or("")
        .to_ascii_lowercase();
    if fields["X-FASC-App-Id"] != hook.app_id || !same(expected.as_bytes(), given.as_bytes()) {
        return refused(&s, "fadada");
    }
    if !fresh(Some(&fields["X-FASC-Timestamp"]), hook.replay_window) {
        return stale(&s, "fadada", hook.replay_window);
    }
    if fields["X-FASC-Nonce"].is_empty() || nonce_seen_before(&fields["X-FASC-Nonce"]) {
        counted(&s, "fadada", "replayed");
        return (
            StatusCode::UNAUTHORIZED,
            "the nonce is missing or was used within the last ten minutes",
        )
            .into_response();
    }
    let line = serde_json::json!({"event": fields["X-FASC-Event"], "bizContent": biz}).to_string();
    match keep(&s, "fadada", line).await {
        Ok(new) => {
            counted(&s, "fadada", if new { "accepted" } else { "duplicate" });
            // 法大大 reads `success` in the reply as the acknowledgement.
            (StatusCode::OK, "success").into_response()
        }
        Err(r) => r,
    }
}

fn adobe_echo(id: &str) -> Response {
    (
        StatusCode::OK,
        [("X-AdobeSign-ClientId", id.to_string())],
        axum::Json(serde_json::json!({"xAdobeSignClientId": id})),
    )
        .into_response()
}

pub(super) async fn adobe_sign_intent(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let Some(hook) = s.webhooks.as_ref().and_then(|w| w.adobe_sign.clone()) else {
        return not_configured("adobe_sign");
    };
    match header(&headers, "x-adobesign-clientid") {
        Some(id) if hook.accepts(id) => adobe_echo(id),
        _ => refused(&s, "adobe_sign"),
    }
}

/// With webhook OAuth, Acrobat Sign sends a bearer token from the company's authorization
/// server with every notification.
async fn adobe_sign_authorized(
    s: &AppState,
    headers: &HeaderMap,
) -> Result<(), super::auth::AuthError> {
    let Some(verifier) = &s.adobe_oauth else {
        return Ok(());
    };
    let token = header(headers, "authorization")
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .ok_or(super::auth::AuthError::NoBearer)?;
    verifier.verify(token.trim()).await.map(|_| ())
}

pub(super) async fn adobe_sign(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(hook) = s.webhooks.as_ref().and_then(|w| w.adobe_sign.clone()) else {
        return not_configured("adobe_sign");
    };
    let Some(client_id) = header(&headers, "x-adobesign-clientid").filter(|id| hook.accepts(id))
    else {
        return refused(&s, "adobe_sign");
    };
    let client_id = client_id.to_string();
    if let Err(why) = adobe_sign_authorized(&s, &headers).await {
        counted(&s, "adobe_sign", "rejected");
        return (StatusCode::UNAUTHORIZED, why.to_string()).into_response();
    }
    match keep(
        &s,
        "adobe_sign",
        String::from_utf8_lossy(&body).into_owned(),
    )
    .await
    {
        Ok(new) => {
            counted(&s, "adobe_sign", if new { "accepted" } else { "duplicate" });
            adobe_echo(&client_id)
        }
        Err(r) => r,
    }
}

/// `application/x-www-form-urlencoded` into a map.
fn url_form(body: &[u8]) -> BTreeMap<String, String> {
    let decode = |s: &str| -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    match u8::from_str_radix(
                        std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                        16,
                    ) {
                        Ok(b) => {
                            out.push(b);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| pair.split_once('=').map(|(k, v)| (decode(k), decode(v))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_form_bodies() {
        let f = url_form(b"bizContent=%7B%22a%22%3A1%7D&x=a+b");
        assert_eq!(f["bizContent"], "{\"a\":1}");
        assert_eq!(f["x"], "a b");
    }
}
