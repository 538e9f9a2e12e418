//! Alerts reach DingTalk, WeCom and Feishu robots and mailboxes. A local receiver checks
//! each robot's signature the way the provider documents it (a robot with the wrong secret
//! gets nothing through) and DingTalk's limit of 20 messages a minute; a real SMTP server
//! (aiosmtpd, started by scripts/test.sh's Python) receives the mail over STARTTLS.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use crate::common::*;
use crate::smtp::*;
use axum::Router;
use axum::extract::{Query, State};
use axum::routing::post;
use base64::Engine;
use chrono::{Duration, Utc};
use hmac::{Hmac, Mac};
use reconlight_service::notify::Notifier;
use reconlight_testkit::generate;
use serde_json::{Value, json};
use sha2::Sha256;

const DINGTALK_SECRET: &str = "SEC0123456789abcdef";
const FEISHU_SECRET: &str = "feishu-signing-secret";
const EXTERNAL: &str = "https://reconlight.example.cn";

#[derive(Default)]
struct Receiver {
    /// Accepted DingTalk messages: (signed timestamp in ms, body).
    dingtalk: Vec<(i64, Value)>,
    dingtalk_refused: Vec<String>,
    /// Sends faster than 20 a minute by the signed timestamps.
    dingtalk_too_fast: usize,
    wecom: Vec<Value>,
    feishu: Vec<Value>,
    feishu_refused: Vec<String>,
}

type Shared = Arc<Mutex<Receiver>>;

fn hmac_b64(key: &[u8], message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// DingTalk: `timestamp` (ms, within an hour of now) and `sign` =
/// urlEncode(base64(HmacSHA256(secret, timestamp + "\n" + secret))) in the query.
async fn dingtalk(
    State(r): State<Shared>,
    Query(q): Query<BTreeMap<String, String>>,
    body: String,
) -> axum::Json<Value> {
    let mut r = r.lock().unwrap();
    let ts: i64 = q.get("timestamp").and_then(|t| t.parse().ok()).unwrap_or(0);
    let want = hmac_b64(
        DINGTALK_SECRET.as_bytes(),
        format!("{ts}\n{DINGTALK_SECRET}").as_bytes(),
    );
    let fresh = (Utc::now().timestamp_millis() - ts).abs() < 3_600_000;
    if q.get("access_token").map(String::as_str) != Some("robot-token")
        || q.get("sign") != Some(&want)
        || !fresh
    {
        r.dingtalk_refused.push(body);
        return axum::Json(json!({"errcode": 310000, "errmsg": "sign not match"}));
    }
    let in_last_minute = r
        .dingtalk
        .iter()
        .filter(|(t, _)| ts - t < 60_000 && ts >= *t)
        .count();
    if in_last_minute >= 20 {
        r.dingtalk_too_fast += 1;
        return axum::Json(json!({"errcode": 130101, "errmsg": "send too fast"}));
    }
    r.dingtalk.push((ts, serde_json::from_str(&body).unwrap()));
    axum::Json(json!({"errcode": 0, "errmsg": "ok"}))
}

async fn wecom(
    State(r): State<Shared>,
    Query(q): Query<BTreeMap<String, String>>,
    body: String,
) -> axum::Json<Value> {
    if q.get("key").map(String::as_str) != Some("wecom-key") {
        return axum::Json(json!({"errcode": 93000, "errmsg": "invalid webhook url"}));
    }
    r.lock()
        .unwrap()
        .wecom
        .push(serde_json::from_str(&body).unwrap());
    axum::Json(json!({"errcode": 0, "errmsg": "ok"}))
}

/// Feishu: `timestamp` (s) and `sign` = base64(HmacSHA256(key = timestamp + "\n" + secret,
/// message = empty)) in the body.
async fn feishu(State(r): State<Shared>, body: String) -> axum::Json<Value> {
    let v: Value = serde_json::from_str(&body).unwrap();
    let ts = v["timestamp"].as_str().unwrap_or("");
    let want = hmac_b64(format!("{ts}\n{FEISHU_SECRET}").as_bytes(), b"");
    let mut r = r.lock().unwrap();
    if v["sign"].as_str() != Some(want.as_str()) {
        r.feishu_refused.push(body);
        return axum::Json(
            json!({"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"}),
        );
    }
    r.feishu.push(v);
    axum::Json(json!({"code": 0, "msg": "success", "data": {}}))
}

/// The alert ids a message links to.
fn linked_ids(text: &str) -> Vec<String> {
    text.match_indices(&format!("{EXTERNAL}/api/v1/alerts/"))
        .map(|(i, m)| {
            text[i + m.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_chat_robots_and_mailboxes() {
    let receiver: Shared = Arc::new(Mutex::new(Receiver::default()));
    let app = Router::new()
        .route("/robot/send", post(dingtalk))
        .route("/cgi-bin/webhook/send", post(wecom))
        .route("/open-apis/bot/v2/hook/board", post(feishu))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let smtp_port = free_port();
    let _smtpd = start_smtpd(dir.path(), smtp_port, true);

    generate(500, 9, dir.path()).unwrap();
    let cfg = dir.path().join("reconlight.toml");
    let every = r#"["dingtalk:finance-group", "dingtalk:wrong-secret", "wecom:sales", "feishu:board", "feishu:wrong-secret", "email:cfo@example.cn", "email:controller@example.com"]"#;
    let text = std::fs::read_to_string(&cfg).unwrap().replacen(
        "[[sources]]",
        &format!(
            r#"[escalation.policies.handoff]
tiers = [{{ after = "0s", notify = {every} }}]
[escalation.policies.finance]
tiers = [{{ after = "0s", notify = {every} }}]

[notifiers]
external_url = "{EXTERNAL}"
[notifiers.dingtalk.finance-group]
url = "http://{addr}/robot/send?access_token=robot-token"
secret = "{DINGTALK_SECRET}"
mention = ["13800000000"]
[notifiers.dingtalk.wrong-secret]
url = "http://{addr}/robot/send?access_token=robot-token"
secret = "SEC-not-the-robots"
[notifiers.wecom.sales]
url = "http://{addr}/cgi-bin/webhook/send?key=wecom-key"
language = "en"
mention = ["zhangsan"]
[notifiers.feishu.board]
url = "http://{addr}/open-apis/bot/v2/hook/board"
secret = "{FEISHU_SECRET}"
mention_all = true
[notifiers.feishu.wrong-secret]
url = "http://{addr}/open-apis/bot/v2/hook/board"
secret = "not-the-bots"
[notifiers.email]
host = "127.0.0.1"
port = {smtp_port}
security = "starttls"
ca_file = "ca.pem"
from = "reconlight 对账 <alerts@example.cn>"
languages = {{ "controller@example.com" = "en" }}

[[sources]]"#
        ),
        1,
    );
    std::fs::write(&cfg, text).unwrap();
    let mut p = open(dir.path()).await;
    p.run_until_idle(|_, _| {}).await.unwrap();

    // What each target should be told: every alert transition past `pending`.
    let outbox = p.store.outbox_pending(1_000_000).await.unwrap();
    let expected: Vec<(String, Value)> = outbox
        .iter()
        .filter(|m| m.topic == "alerts")
        .map(|m| serde_json::from_str::<Value>(&m.payload).unwrap())
        .filter(|v| v["transition"] != "pending")
        .filter(|v| {
            v["alert"]["notify"]
                .as_array()
                .is_some_and(|t| t.contains(&json!("dingtalk:finance-group")))
        })
        .map(|v| (v["alert"]["id"].as_str().unwrap().to_string(), v))
        .collect();
    assert!(
        expected.len() >= 50,
        "a burst of at least 50 alert messages: {}",
        expected.len()
    );
    let expected_ids: BTreeMap<String, usize> =
        expected.iter().fold(BTreeMap::new(), |mut m, (id, _)| {
            *m.entry(id.clone()).or_default() += 1;
            m
        });

    let mut notifier = Notifier::configured(p.store.clone(), &p.config, p.metrics.clone())
        .unwrap()
        .expect("notifiers are configured");
    let t0 = Utc::now();
    let mut rounds = 0;
    loop {
        let now = t0 + Duration::seconds(20 * rounds);
        notifier.deliver(now).await.unwrap();
        rounds += 1;
        let mut waiting = 0;
        for target in [
            "dingtalk:finance-group",
            "wecom:sales",
            "feishu:board",
            "email",
        ] {
            waiting += p
                .store
                .pending_deliveries(target, &["alerts".into()], now + Duration::hours(1), 10)
                .await
                .unwrap()
                .len();
        }
        if waiting == 0 || rounds > 60 {
            break;
        }
    }

    let r = std::mem::take(&mut *receiver.lock().unwrap());
    println!(
        "{} alert messages; in {rounds} rounds of 20 s: {} DingTalk requests ({} refused for the wrong secret), {} WeCom, {} Feishu",
        expected.len(),
        r.dingtalk.len(),
        r.dingtalk_refused.len(),
        r.wecom.len(),
        r.feishu.len()
    );
    if let Ok(path) = std::env::var("RECONLIGHT_SAVE_MESSAGES") {
        let sample =
            json!({"dingtalk": r.dingtalk[0].1, "wecom": r.wecom[0], "feishu": r.feishu[0]});
        std::fs::write(path, serde_json::to_string_pretty(&sample).unwrap()).unwrap();
    }
    // DingTalk: signed right, never faster than 20 a minute, nothing lost.
    assert_eq!(
        r.dingtalk_too_fast, 0,
        "the robot's rate limit was respected"
    );
    for (i, (t, _)) in r.dingtalk.iter().enumerate() {
        let in_minute = r.dingtalk[i..]
            .iter()
            .filter(|(u, _)| u - t < 60_000)
            .count();
        assert!(in_minute <= 20, "{in_minute} messages within a minute");
    }
    let mut got: BTreeMap<String, usize> = BTreeMap::new();
    for (_, body) in &r.dingtalk {
        assert_eq!(body["msgtype"], "markdown");
        for id in linked_ids(body["markdown"]["text"].as_str().unwrap()) {
            *got.entry(id).or_default() += 1;
        }
    }
    assert_eq!(
        got, expected_ids,
        "every alert message reached DingTalk once"
    );
    let red = r
        .dingtalk
        .iter()
        .find(|(_, b)| b["at"]["atMobiles"] == json!(["13800000000"]))
        .expect("a red alert mentions the robot's people");
    assert!(
        red.1["markdown"]["text"]
            .as_str()
            .unwrap()
            .contains("@13800000000")
    );
    let chinese = &r.dingtalk[0].1["markdown"]["text"].as_str().unwrap();
    assert!(
        chinese.contains("对象") && (chinese.contains("红灯") || chinese.contains("黄灯")),
        "DingTalk messages are in Chinese: {chinese}"
    );
    // The robot with the wrong secret got nothing through, and its messages wait.
    assert!(!r.dingtalk_refused.is_empty());
    let wrong = p
        .store
        .pending_deliveries(
            "dingtalk:wrong-secret",
            &["alerts".into()],
            t0 + Duration::days(1),
            1_000_000,
        )
        .await
        .unwrap();
    assert_eq!(
        wrong.len(),
        expected.len(),
        "every message to the wrong robot is still to be sent"
    );

    // WeCom: markdown in English, people mentioned as <@userid> on red alerts.
    let wecom_ids: usize = r
        .wecom
        .iter()
        .map(|b| linked_ids(b["markdown"]["content"].as_str().unwrap()).len())
        .sum();
    assert_eq!(wecom_ids, expected.len());
    assert!(r.wecom.iter().all(|b| {
        b["markdown"]["content"]
            .as_str()
            .unwrap()
            .contains("Subject")
    }));
    assert!(r.wecom.iter().any(|b| {
        b["markdown"]["content"]
            .as_str()
            .unwrap()
            .contains("<@zhangsan>")
    }));

    // Feishu: signed cards, red header for red alerts, @all on red.
    let feishu_ids: usize = r
        .feishu
        .iter()
        .map(|b| linked_ids(b["card"]["elements"][0]["content"].as_str().unwrap()).len())
        .sum();
    assert_eq!(feishu_ids, expected.len());
    assert!(!r.feishu_refused.is_empty(), "the wrong secret is refused");
    assert!(r.feishu.iter().any(|b| {
        b["card"]["header"]["template"] == "red"
            && b["card"]["elements"][0]["content"]
                .as_str()
                .unwrap()
                .contains("<at id=all></at>")
    }));

    // Email: one mail per message and language, through STARTTLS, read back from the Maildir.
    let mails = received(dir.path());
    assert_eq!(
        mails.len(),
        2 * expected.len(),
        "a Chinese and an English mail each"
    );
    let to_cfo: Vec<&String> = mails
        .iter()
        .filter(|m| m.contains("To: cfo@example.cn"))
        .collect();
    assert_eq!(to_cfo.len(), expected.len());
    let parsed = mail_parts(to_cfo[0]);
    assert!(
        parsed.subject.contains("红灯") || parsed.subject.contains("黄灯"),
        "{}",
        parsed.subject
    );
    assert!(parsed.plain.contains("对象"), "{}", parsed.plain);
    assert!(parsed.html.contains("<li>对象"), "{}", parsed.html);
    let english = mails
        .iter()
        .find(|m| m.contains("To: controller@example.com"))
        .unwrap();
    let parsed = mail_parts(english);
    assert!(parsed.plain.contains("Subject:"), "{}", parsed.plain);
    let mut mailed_ids: BTreeSet<String> = BTreeSet::new();
    for m in &mails {
        mailed_ids.extend(linked_ids(&mail_parts(m).plain));
    }
    assert_eq!(
        mailed_ids,
        expected_ids.keys().cloned().collect::<BTreeSet<_>>()
    );
}
