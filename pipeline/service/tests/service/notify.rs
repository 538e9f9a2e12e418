//! Notifications leave through the outbox: PagerDuty (trigger, acknowledge; 429 retried,
//! 400 not), a signed webhook, and Alertmanager, against a local HTTP peer that records
//! what it is sent.

use reconlight_service::store::AckError;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use crate::common::*;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use reconlight_service::notify::Notifier;
use reconlight_testkit::generate;

#[derive(Default, Clone)]
struct Peer {
    pagerduty: Vec<serde_json::Value>,
    webhook: Vec<(String, String, String)>,
    alertmanager: Vec<serde_json::Value>,
    reject_dedup: Option<String>,
    throttle_next: usize,
}

type Shared = Arc<Mutex<Peer>>;

async fn pagerduty(State(p): State<Shared>, body: String) -> StatusCode {
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut p = p.lock().unwrap();
    p.pagerduty.push(v.clone());
    if p.throttle_next > 0 {
        p.throttle_next -= 1;
        return StatusCode::TOO_MANY_REQUESTS;
    }
    if p.reject_dedup.as_deref() == v["dedup_key"].as_str() {
        return StatusCode::BAD_REQUEST;
    }
    StatusCode::ACCEPTED
}

async fn webhook(State(p): State<Shared>, headers: HeaderMap, body: String) -> StatusCode {
    let sig = headers["x-reconlight-signature"]
        .to_str()
        .unwrap()
        .to_string();
    let id = headers["x-reconlight-delivery"]
        .to_str()
        .unwrap()
        .to_string();
    p.lock().unwrap().webhook.push((id, sig, body));
    StatusCode::OK
}

async fn alertmanager(State(p): State<Shared>, body: String) -> StatusCode {
    p.lock()
        .unwrap()
        .alertmanager
        .push(serde_json::from_str(&body).unwrap());
    StatusCode::OK
}

/// Serves the peer on a free local port.
async fn serve(app: Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_pagerduty_a_signed_webhook_and_alertmanager() {
    let peer: Shared = Arc::new(Mutex::new(Peer::default()));
    let addr = serve(
        Router::new()
            .route("/pd", post(pagerduty))
            .route("/hook", post(webhook))
            .route("/api/v2/alerts", post(alertmanager))
            .with_state(peer.clone()),
    )
    .await;

    let dir = tempfile::tempdir().unwrap();
    generate(400, 9, dir.path()).unwrap();
    let cfg = dir.path().join("reconlight.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text = text.replacen(
        "[[sources]]",
        &format!(
            "[notifiers.pagerduty]\nurl = \"http://{addr}/pd\"\nrouting_keys = {{ \"delivery-director\" = \"RK-D\", \"finance-director\" = \"RK-F\", \"after_sales-director\" = \"RK-A\", oncall = \"RK-O\" }}\n\n\
             [notifiers.alertmanager]\nurl = \"http://{addr}\"\nresend_interval = \"1m\"\n\n\
             [[notifiers.webhook]]\nname = \"ops\"\nurl = \"http://{addr}/hook\"\nsecret = \"s3cret\"\ntopics = [\"alerts\", \"actions\"]\n\n[[sources]]"
        ),
        1,
    );
    std::fs::write(&cfg, text).unwrap();
    let mut p = open(dir.path()).await;
    p.run_until_idle(|_, _| {}).await.unwrap();

    let handoff: Vec<_> = p
        .state
        .alerts
        .values()
        .filter(|a| a.rule_id == "handoffs.acknowledgement_sla" && a.state.as_str() == "firing")
        .cloned()
        .collect();
    assert!(
        !handoff.is_empty(),
        "the dataset has unacknowledged work orders"
    );
    assert!(
        handoff
            .iter()
            .all(|a| a.notify.iter().any(|t| t.ends_with("-director"))),
        "tier 0 notifies the department director"
    );
    let climbed = handoff.iter().filter(|a| a.tier == 1).count();
    assert!(
        handoff
            .iter()
            .filter(|a| a.tier == 1)
            .all(|a| a.notify.contains(&"oncall".to_string()))
    );

    let rejected = handoff[0].id.clone();
    {
        let mut peer = peer.lock().unwrap();
        peer.throttle_next = 1;
        peer.reject_dedup = Some(rejected.clone());
    }
    let notifier_config = p.config.notifiers.clone();
    let mut notifier = Notifier::new(p.store.clone(), notifier_config, p.metrics.clone());
    let now = chrono::Utc::now();
    let first = notifier.deliver(now).await.unwrap();
    let tries_of_rejected = |peer: &Shared| {
        peer.lock()
            .unwrap()
            .pagerduty
            .iter()
            .filter(|e| e["dedup_key"] == rejected.as_str())
            .count()
    };
    let rejected_after_first = tries_of_rejected(&peer);
    assert!(rejected_after_first >= 1);
    assert_eq!(
        first.failed, rejected_after_first,
        "every message PagerDuty refused with 400 is final: {first:?}"
    );
    assert!(first.retried >= 1, "the 429 is retried: {first:?}");
    let second = notifier
        .deliver(now + chrono::Duration::minutes(10))
        .await
        .unwrap();
    assert_eq!((second.retried, second.failed), (0, 0), "{second:?}");
    assert!(
        second.delivered >= 1,
        "the throttled message went through on the retry"
    );
    assert_eq!(
        tries_of_rejected(&peer),
        rejected_after_first,
        "a 400 is never retried"
    );

    let peer_state = peer.lock().unwrap().clone();
    let triggered: BTreeSet<&str> = peer_state
        .pagerduty
        .iter()
        .filter(|e| e["event_action"] == "trigger")
        .filter_map(|e| e["dedup_key"].as_str())
        .collect();
    // Resolved alerts live in the store only.
    let fired_handoffs: BTreeSet<String> = p
        .store
        .alerts()
        .await
        .unwrap()
        .iter()
        .filter(|a| a.rule_id == "handoffs.acknowledgement_sla" && a.fired_at.is_some())
        .map(|a| a.id.clone())
        .collect();
    for id in &triggered {
        assert!(
            fired_handoffs.contains(*id),
            "only alerts routed to a PagerDuty target are sent"
        );
    }
    assert!(triggered.contains(rejected.as_str()));
    let sample = peer_state
        .pagerduty
        .iter()
        .find(|e| e["event_action"] == "trigger")
        .unwrap();
    assert!(["critical", "warning"].contains(&sample["payload"]["severity"].as_str().unwrap()));
    assert_eq!(sample["payload"]["source"], "reconlight");
    println!(
        "{} handoff alerts, {climbed} escalated to on-call, {} PagerDuty requests",
        handoff.len(),
        peer_state.pagerduty.len()
    );

    // The webhook got every alert and action message, each signed over its exact body.
    let messages = p.store.outbox_pending(1_000_000).await.unwrap();
    let expected: usize = messages
        .iter()
        .filter(|m| m.topic == "alerts" || m.topic == "actions")
        .count();
    assert_eq!(peer_state.webhook.len(), expected);
    for (_, sig, body) in &peer_state.webhook {
        assert_eq!(*sig, reconlight_service::notify::signature("s3cret", body));
    }
    assert!(
        peer_state
            .webhook
            .iter()
            .any(|(_, _, b)| b.contains("\"action\":\"lead.nurture\"")),
        "lead.nurture action events"
    );

    // Alertmanager received the firing alerts, each to end well after the resend interval.
    let firing = p
        .state
        .alerts
        .values()
        .filter(|a| a.state.as_str() == "firing")
        .count();
    let pushed = peer_state.alertmanager.last().unwrap().as_array().unwrap();
    assert_eq!(pushed.len(), firing);
    let ends = chrono::DateTime::parse_from_rfc3339(pushed[0]["endsAt"].as_str().unwrap()).unwrap();
    assert!(ends.to_utc() > now + chrono::Duration::minutes(3));
    assert!(pushed[0]["labels"]["alertname"].as_str().is_some());

    // Someone takes an alert: PagerDuty hears acknowledge, and its escalation stops.
    let taken = handoff
        .iter()
        .find(|a| a.id != rejected)
        .unwrap_or(&handoff[0])
        .clone();
    let acked = p
        .store
        .acknowledge_alert(&taken.id, "wang.fang", "on my way", now)
        .await
        .unwrap();
    assert_eq!(acked.acknowledged.as_ref().unwrap().by, "wang.fang");
    let again = p
        .store
        .acknowledge_alert(&taken.id, "li.na", "me too", now)
        .await
        .unwrap_err();
    assert!(
        matches!(&again, AckError::Already { by, .. } if by == "wang.fang"),
        "{again}"
    );
    assert!(
        again
            .to_string()
            .contains("already acknowledged by wang.fang"),
        "{again}"
    );
    notifier
        .deliver(now + chrono::Duration::minutes(20))
        .await
        .unwrap();
    let peer_state = peer.lock().unwrap().clone();
    assert!(
        peer_state
            .pagerduty
            .iter()
            .any(|e| e["event_action"] == "acknowledge" && e["dedup_key"] == taken.id.as_str())
    );
    p.tick().await.unwrap();
    assert_eq!(
        p.state.alerts[&taken.id]
            .acknowledged
            .as_ref()
            .map(|a| a.by.as_str()),
        Some("wang.fang")
    );
    let metrics = p.metrics.render();
    assert!(
        metrics.contains(&format!("reconlight_notifications_total{{notifier=\"pagerduty\",outcome=\"failed\"}} {rejected_after_first}")),
        "{metrics}"
    );
}

/// A webhook added to a store with history is sent the alerts firing when it appears and
/// what happens from then on, never the resolved history written before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notifier_added_later_is_sent_what_fires_now_not_the_history() {
    let peer: Shared = Arc::new(Mutex::new(Peer::default()));
    let addr = serve(
        Router::new()
            .route("/hook", post(webhook))
            .with_state(peer.clone()),
    )
    .await;

    let dir = tempfile::tempdir().unwrap();
    generate(400, 9, dir.path()).unwrap();
    let mut p = open(dir.path()).await;
    p.run_until_idle(|_, _| {}).await.unwrap();
    let history = p.store.alerts().await.unwrap();
    let firing: BTreeSet<String> = history
        .iter()
        .filter(|a| a.state.as_str() == "firing")
        .map(|a| a.id.clone())
        .collect();
    let resolved = history
        .iter()
        .filter(|a| a.state.as_str() == "resolved")
        .count();
    assert!(
        !firing.is_empty() && resolved > 0,
        "the history holds firing and resolved alerts: {} firing, {resolved} resolved",
        firing.len()
    );
    drop(p);

    let cfg = dir.path().join("reconlight.toml");
    let text = std::fs::read_to_string(&cfg).unwrap().replacen(
        "[[sources]]",
        &format!(
            "[[notifiers.webhook]]\nname = \"late\"\nurl = \"http://{addr}/hook\"\nsecret = \"s3cret\"\ntopics = [\"alerts\"]\n\n[[sources]]"
        ),
        1,
    );
    std::fs::write(&cfg, text).unwrap();
    let p = open(dir.path()).await;
    let mut notifier = Notifier::configured(p.store.clone(), &p.config, p.metrics.clone())
        .unwrap()
        .unwrap();
    let now = chrono::Utc::now();
    let first = notifier.deliver(now).await.unwrap();
    let bodies: Vec<serde_json::Value> = peer
        .lock()
        .unwrap()
        .webhook
        .iter()
        .map(|(_, _, body)| serde_json::from_str(body).unwrap())
        .collect();
    let sent: BTreeSet<String> = bodies
        .iter()
        .map(|b| b["alert"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sent, firing, "the webhook is told what is firing now");
    assert_eq!(bodies.len(), firing.len(), "once each");
    assert!(bodies.iter().all(|b| b["transition"] == "fired"));
    assert_eq!(first.delivered, firing.len());
    assert_eq!(notifier.deliver(now).await.unwrap().delivered, 0);

    // What happens from now on reaches it.
    let taken = firing.iter().next().unwrap();
    p.store
        .acknowledge_alert(taken, "wang.fang", "on it", now)
        .await
        .unwrap();
    assert_eq!(notifier.deliver(now).await.unwrap().delivered, 1);
    let last: serde_json::Value =
        serde_json::from_str(&peer.lock().unwrap().webhook.last().unwrap().2).unwrap();
    assert_eq!(last["transition"], "acknowledged");
    assert_eq!(last["alert"]["id"], taken.as_str());

    // A restart neither writes its copies again nor resends anything.
    drop(notifier);
    drop(p);
    let p = open(dir.path()).await;
    let mut notifier = Notifier::configured(p.store.clone(), &p.config, p.metrics.clone())
        .unwrap()
        .unwrap();
    assert_eq!(notifier.deliver(now).await.unwrap().delivered, 0);
    assert_eq!(peer.lock().unwrap().webhook.len(), firing.len() + 1);
}
