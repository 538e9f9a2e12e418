//! The e-signature webhooks: each provider's signature verified as it specifies (401 and
//! nothing kept when it does not), replays accepted and ignored, a body limit, and the
//! events applied by the next batch.

use std::collections::BTreeMap;

use crate::common::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use hmac::{Hmac, Mac};
use reconlight_testkit::generate;
use sha2::Sha256;
use tower::ServiceExt;

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

async fn send(
    app: &axum::Router,
    req: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_provider_is_verified_kept_once_and_applied() {
    let dir = tempfile::tempdir().unwrap();
    generate(100, 4, dir.path()).unwrap();
    let cfg = dir.path().join("reconlight.toml");
    let text = std::fs::read_to_string(&cfg).unwrap().replacen(
        "[[sources]]",
        "[webhooks.docusign]\nkeys = [\"old-key\", \"new-key\"]\n\n[webhooks.esign_cn]\napp_id = \"7438\"\napp_secret = \"esign-secret\"\n\n\
         [webhooks.fadada]\napp_id = \"FA001\"\napp_secret = \"fadada-secret\"\n\n[webhooks.adobe_sign]\nclient_id = \"CBJCH-client\"\n\n[[sources]]",
        1,
    );
    std::fs::write(&cfg, text).unwrap();
    let mut p = open(dir.path()).await;
    p.run_until_idle(|_, _| {}).await.unwrap();
    let app = reconlight_service::server::app_with(
        p.store.clone(),
        p.metrics.clone(),
        reconlight_service::server::ServerOptions::from_config(&p.config),
    );

    // DocuSign, signed with the newer of two keys (rotation).
    let ds = r#"{"event":"envelope-completed","apiVersion":"v2.1","generatedDateTime":"2026-10-31T10:00:00Z","data":{"envelopeId":"ds-wh-1","envelopeSummary":{"status":"completed","completedDateTime":"2026-10-31T09:59:00Z","customFields":{"textCustomFields":[{"name":"contract_no","value":"HT-2026-000001"},{"name":"contract_amount","value":"1.00"},{"name":"signature_type","value":"ca_digital"}]}}}}"#;
    let good = base64::engine::general_purpose::STANDARD.encode(hmac(b"new-key", ds.as_bytes()));
    let bad = base64::engine::general_purpose::STANDARD.encode(hmac(b"guess", ds.as_bytes()));
    let post = |sig1: &str, sig2: &str| {
        Request::post("/webhooks/docusign")
            .header("X-DocuSign-Signature-1", sig1.to_string())
            .header("X-DocuSign-Signature-2", sig2.to_string())
            .body(Body::from(ds))
            .unwrap()
    };
    assert_eq!(send(&app, post(&bad, &good)).await.0, StatusCode::OK);
    assert_eq!(
        send(&app, post(&bad, &good)).await.0,
        StatusCode::OK,
        "a replay is accepted"
    );
    assert_eq!(
        send(&app, post(&bad, &bad)).await.0,
        StatusCode::UNAUTHORIZED
    );

    // e签宝: HMAC over timestamp + query values + body, hex.
    let es = r#"{"action":"SIGN_FLOW_COMPLETE","timestamp":1793440000000,"signFlowId":"es-wh-1","customBizNum":"HT-2026-000002","signFlowStatus":"2"}"#;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let ts = now_ms.to_string();
    let sig = hex::encode(hmac(b"esign-secret", format!("{ts}1{es}").as_bytes()));
    let signed_at = |ts: &str| hex::encode(hmac(b"esign-secret", format!("{ts}1{es}").as_bytes()));
    let req_at = |ts: &str, sig: &str| {
        Request::post("/webhooks/esign-cn?flow=1")
            .header("X-Tsign-Open-App-Id", "7438")
            .header("X-Tsign-Open-TIMESTAMP", ts.to_string())
            .header("X-Tsign-Open-SIGNATURE", sig.to_string())
            .header("X-Tsign-Open-SIGNATURE-ALGORITHM", "hmac-sha256")
            .body(Body::from(es))
            .unwrap()
    };
    // A request captured a quarter of an hour ago and played again: correctly signed, stale.
    let old_ts = (now_ms - 15 * 60 * 1000).to_string();
    let (status, _, body) = send(&app, req_at(&old_ts, &signed_at(&old_ts))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.contains("more than 5m from the clock"), "{body}");
    let req = |sig: &str| {
        Request::post("/webhooks/esign-cn?flow=1")
            .header("X-Tsign-Open-App-Id", "7438")
            .header("X-Tsign-Open-TIMESTAMP", ts.clone())
            .header("X-Tsign-Open-SIGNATURE", sig.to_string())
            .header("X-Tsign-Open-SIGNATURE-ALGORITHM", "hmac-sha256")
            .body(Body::from(es))
            .unwrap()
    };
    let (status, _, body) = send(&app, req(&sig)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("success"));
    assert_eq!(
        send(&app, req(&"0".repeat(64))).await.0,
        StatusCode::UNAUTHORIZED
    );

    // 法大大: sorted headers + bizContent, SHA-256, HMAC under HMAC(secret, timestamp).
    let biz = r#"{"signTaskId":"fd-wh-1","signTaskStatus":"task_finished","transReferenceId":"HT-2026-000003","eventTime":"1793440000000"}"#;
    let mut fields: BTreeMap<&str, String> = BTreeMap::new();
    for (k, v) in [
        ("X-FASC-App-Id", "FA001"),
        ("X-FASC-Sign-Type", "HMAC-SHA256"),
        ("X-FASC-Timestamp", now_ms.to_string().as_str()),
        ("X-FASC-Nonce", "n0nce-7f3a"),
        ("X-FASC-Event", "sign-task-finished"),
    ] {
        fields.insert(k, v.to_string());
    }
    fields.insert("bizContent", biz.to_string());
    let sign = reconlight_service::server::webhooks::fadada_sign("fadada-secret", &fields);
    let form = format!(
        "bizContent={}",
        biz.replace('%', "%25")
            .replace('&', "%26")
            .replace('=', "%3D")
            .replace('+', "%2B")
    );
    let fadada_req = || {
        let mut req = Request::post("/webhooks/fadada")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("X-FASC-Sign", sign.clone());
        for (k, v) in fields.iter().filter(|(k, _)| k.starts_with("X-")) {
            req = req.header(*k, v.clone());
        }
        req.body(Body::from(form.clone())).unwrap()
    };
    let (status, _, body) = send(&app, fadada_req()).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "success"));
    // The same nonce again within ten minutes: a replay, refused.
    let (status, _, body) = send(&app, fadada_req()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.contains("nonce"), "{body}");

    // Acrobat Sign: verification of intent echoes the client id; a wrong id is refused.
    let intent = Request::get("/webhooks/adobe-sign")
        .header("X-AdobeSign-ClientId", "CBJCH-client")
        .body(Body::empty())
        .unwrap();
    let (status, headers, _) = send(&app, intent).await;
    assert_eq!(
        (status, headers["x-adobesign-clientid"].to_str().unwrap()),
        (StatusCode::OK, "CBJCH-client")
    );
    let adobe = r#"{"webhookNotificationId":"n-1","event":"AGREEMENT_WORKFLOW_COMPLETED","eventDate":"2026-10-31T08:00:00Z","agreement":{"id":"ad-wh-1","name":"HT-2026-000004","status":"SIGNED"}}"#;
    let wrong = Request::post("/webhooks/adobe-sign")
        .header("X-AdobeSign-ClientId", "someone")
        .body(Body::from(adobe))
        .unwrap();
    assert_eq!(send(&app, wrong).await.0, StatusCode::UNAUTHORIZED);
    let right = Request::post("/webhooks/adobe-sign")
        .header("X-AdobeSign-ClientId", "CBJCH-client")
        .body(Body::from(adobe))
        .unwrap();
    assert_eq!(send(&app, right).await.0, StatusCode::OK);

    // Too large.
    let huge = Request::post("/webhooks/docusign")
        .body(Body::from(vec![b'x'; 2 << 20]))
        .unwrap();
    assert_eq!(send(&app, huge).await.0, StatusCode::PAYLOAD_TOO_LARGE);

    // Four bodies kept, none of the refused ones; the next batch applies them.
    assert_eq!(p.store.inbox_pending(100).await.unwrap().len(), 4);
    let stats = p.run_until_idle(|_, _| {}).await.unwrap();
    assert_eq!((stats.records, stats.dead_letters), (4, 0), "{stats:?}");
    for (id, contract) in [
        ("docusign:ds-wh-1:envelope-completed:-", "HT-2026-000001"),
        ("esign.cn:es-wh-1:SIGN_FLOW_COMPLETE:-", "HT-2026-000002"),
        ("fadada:fd-wh-1:sign-task-finished:-", "HT-2026-000003"),
        (
            "adobe-sign:ad-wh-1:AGREEMENT_WORKFLOW_COMPLETED:n-1",
            "HT-2026-000004",
        ),
    ] {
        let e = p
            .state
            .signatures
            .get(id)
            .unwrap_or_else(|| panic!("{id} applied"));
        assert_eq!(e.contract_no.as_deref(), Some(contract));
    }
    assert_eq!(
        p.run_until_idle(|_, _| {}).await.unwrap().records,
        0,
        "applied once"
    );
    let metrics = p.metrics.render();
    for line in [
        "reconlight_webhooks_total{outcome=\"accepted\",provider=\"docusign\"} 1",
        "reconlight_webhooks_total{outcome=\"duplicate\",provider=\"docusign\"} 1",
        "reconlight_webhooks_total{outcome=\"rejected\",provider=\"docusign\"} 1",
        "reconlight_webhooks_total{outcome=\"rejected\",provider=\"adobe_sign\"} 1",
    ] {
        assert!(metrics.contains(line), "{line}\n{metrics}");
    }
}
