//! Group chat robots: DingTalk's custom robot (加签: HMAC-SHA256 of `timestamp\nsecret`
//! keyed with the secret, in the URL), WeCom's group robot (the key in the URL, no
//! signature) and Feishu's custom bot (HMAC-SHA256 keyed with `timestamp\nsecret` over
//! nothing, in the body). Each answers HTTP 200 with its own error code in the body.

use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use super::message::AlertMessage;
use super::{HttpResult, Outcome, outcome_of};
use crate::config::notifiers::RobotConfig;

/// Which chat product a robot belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Provider {
    DingTalk,
    WeCom,
    Feishu,
}

impl Provider {
    /// The target prefix in escalation tiers and the notifier's name: `dingtalk:<robot>`.
    pub fn prefix(self) -> &'static str {
        match self {
            Provider::DingTalk => "dingtalk",
            Provider::WeCom => "wecom",
            Provider::Feishu => "feishu",
        }
    }

    /// The provider's documented rate limit per robot.
    pub fn default_per_minute(self) -> u32 {
        match self {
            Provider::DingTalk | Provider::WeCom => 20,
            Provider::Feishu => 100,
        }
    }

    /// How long one message's text may be, in bytes, with room for the envelope
    /// (WeCom markdown: 4,096; DingTalk: 20,000; Feishu cards: 30 KB).
    pub fn max_bytes(self) -> usize {
        match self {
            Provider::DingTalk => 18_000,
            Provider::WeCom => 3_800,
            Provider::Feishu => 25_000,
        }
    }
}

/// DingTalk's `sign`: base64(HMAC-SHA256(key = secret, message = "{timestamp_ms}\n{secret}")),
/// before URL encoding.
pub fn dingtalk_sign(secret: &str, timestamp_ms: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{timestamp_ms}\n{secret}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Feishu's `sign`: base64(HMAC-SHA256(key = "{timestamp_s}\n{secret}", message = empty)).
pub fn feishu_sign(secret: &str, timestamp_s: i64) -> String {
    let key = format!("{timestamp_s}\n{secret}");
    let mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn with_query(url: &str, extra: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{extra}")
}

/// The URL and JSON body of one message to one robot.
pub fn request(
    provider: Provider,
    config: &RobotConfig,
    message: &AlertMessage,
    now: DateTime<Utc>,
) -> (String, String) {
    let mention = message.red;
    let people: &[String] = if mention { &config.mention } else { &[] };
    let url = config.url.as_str();
    match provider {
        Provider::DingTalk => {
            let mut text = message.markdown.clone();
            if !people.is_empty() {
                // DingTalk only notifies the mobiles that also appear in the text.
                let at: Vec<String> = people.iter().map(|p| format!("@{p}")).collect();
                text.push_str(&format!("\n\n{}", at.join(" ")));
            }
            let body = json!({
                "msgtype": "markdown",
                "markdown": {"title": message.title, "text": text},
                "at": {"atMobiles": people, "isAtAll": mention && config.mention_all},
            });
            let url = match &config.secret {
                Some(secret) => {
                    let ts = now.timestamp_millis();
                    let sign = url_encode(&dingtalk_sign(secret, ts));
                    with_query(url, &format!("timestamp={ts}&sign={sign}"))
                }
                None => url.to_string(),
            };
            (url, body.to_string())
        }
        Provider::WeCom => {
            let mut content = message.markdown.clone();
            if !people.is_empty() {
                let at: Vec<String> = people.iter().map(|p| format!("<@{p}>")).collect();
                content.push_str(&format!("\n{}", at.join(" ")));
            }
            let body = json!({"msgtype": "markdown", "markdown": {"content": content}});
            (url.to_string(), body.to_string())
        }
        Provider::Feishu => {
            let mut content = message.markdown.clone();
            let mut at: Vec<String> = people.iter().map(|p| format!("<at id={p}></at>")).collect();
            if mention && config.mention_all {
                at.push("<at id=all></at>".into());
            }
            if !at.is_empty() {
                content.push_str(&format!("\n{}", at.join(" ")));
            }
            let mut body = json!({
                "msg_type": "interactive",
                "card": {
                    "header": {
                        "title": {"tag": "plain_text", "content": message.title},
                        "template": if message.red { "red" } else { "yellow" },
                    },
                    "elements": [{"tag": "markdown", "content": content}],
                },
            });
            if let Some(secret) = &config.secret {
                let ts = now.timestamp();
                body["timestamp"] = json!(ts.to_string());
                body["sign"] = json!(feishu_sign(secret, ts));
            }
            (url.to_string(), body.to_string())
        }
    }
}

/// What an answer means: the HTTP status first, then the provider's error code (0 is
/// success; anything else, rate limits and signature failures alike, is tried again).
pub(super) fn outcome(result: HttpResult) -> Outcome {
    let body = match &result {
        Ok((s, body)) if (200..300).contains(s) => body.clone(),
        _ => return outcome_of(result),
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) else {
        return Outcome::Retry(format!("the robot's answer is not JSON: {body}"));
    };
    let code = v
        .get("errcode")
        .or_else(|| v.get("code"))
        .or_else(|| v.get("StatusCode"))
        .and_then(|c| c.as_i64());
    match code {
        Some(0) => Outcome::Delivered,
        Some(code) => {
            let msg = v
                .get("errmsg")
                .or_else(|| v.get("msg"))
                .or_else(|| v.get("StatusMessage"))
                .and_then(|m| m.as_str())
                .unwrap_or("");
            Outcome::Retry(format!("the robot answered error {code}: {msg}"))
        }
        None => Outcome::Retry(format!("the robot's answer has no error code: {body}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_providers_examples() {
        // Computed independently with Python's hmac/hashlib/base64, as the providers'
        // documentation does it.
        assert_eq!(
            dingtalk_sign("this is secret", 1_700_000_000_000),
            "sSFWELbV2YwjdDQhWZwTcWlX5BWUx5J6TPpsZmuPii0="
        );
        assert_eq!(
            feishu_sign("this is secret", 1_700_000_000),
            "OfGzRzoUICBOoc8wVra1e4A1hPfbZ9zqXozA8CWVUuY="
        );
        assert_eq!(url_encode("a+b/c="), "a%2Bb%2Fc%3D");
    }

    #[test]
    fn error_codes_in_a_200_are_retried() {
        assert_eq!(
            outcome(Ok((200, r#"{"errcode":0,"errmsg":"ok"}"#.into()))),
            Outcome::Delivered
        );
        assert_eq!(
            outcome(Ok((
                200,
                r#"{"errcode":130101,"errmsg":"send too fast"}"#.into()
            ))),
            Outcome::Retry("the robot answered error 130101: send too fast".into())
        );
        assert_eq!(
            outcome(Ok((
                200,
                r#"{"code":19021,"msg":"sign match fail"}"#.into()
            ))),
            Outcome::Retry("the robot answered error 19021: sign match fail".into())
        );
    }
}
