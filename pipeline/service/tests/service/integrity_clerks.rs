//! Integrity of what people do: clerks acting at the same time (nothing overwritten, a
//! credit never matched beyond its amount, a nightly run merging what clerks did while it
//! ran), and who may act at all (OIDC bearer tokens, Acrobat Sign's webhook OAuth).

use std::sync::Arc;

use crate::common::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use reconlight_service::access::Role;
use tower::ServiceExt;

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    token: &str,
    body: serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .body(if method == "GET" {
            Body::empty()
        } else {
            Body::from(body.to_string())
        })
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 10 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clerks_at_once_on_one_item_every_answered_action_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (p, _) = generate_and_run(dir.path(), 300, 21).await;
    let app = reconlight_service::server::app(p.store.clone(), p.metrics.clone());
    let item = p
        .state
        .work_items
        .values()
        .find(|w| w.finding.kind.as_str() == "missing_payment")
        .unwrap()
        .clone();
    let before = item.history.len();
    let mut tasks = Vec::new();
    for n in 0..50 {
        let clerk = token(&p.store, &format!("clerk{n:02}"), Role::Clerk).await;
        let app = app.clone();
        let id = item.id.clone();
        tasks.push(tokio::spawn(async move {
            let (action, body) = match n % 10 {
                0 => (
                    "assign",
                    serde_json::json!({"assignee": format!("clerk{n:02}")}),
                ),
                9 => ("resolve", serde_json::json!({"reason": "客户已付"})),
                _ => ("comment", serde_json::json!({"text": format!("note {n}")})),
            };
            call(
                &app,
                "POST",
                &format!("/api/v1/work-items/{id}/{action}"),
                &clerk,
                body,
            )
            .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            StatusCode::OK => ok += 1,
            StatusCode::CONFLICT => assert!(
                body["error"]
                    .as_str()
                    .unwrap()
                    .contains("only open or assigned"),
                "{body}"
            ),
            other => panic!("{other}: {body}"),
        }
    }
    let stored = p.store.work_item(&item.id).await.unwrap().unwrap();
    assert_eq!(
        stored.history.len() - before,
        ok,
        "every action answered 200 is in the item's history"
    );
    let comments = stored
        .history
        .iter()
        .filter(|h| h.action == "commented")
        .count();
    assert_eq!(comments, 40, "no comment lost");
    assert_eq!(stored.version as usize, item.version as usize + ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_parallel_matches_allocate_a_credit_once() {
    let dir = tempfile::tempdir().unwrap();
    let (p, _) = generate_and_run(dir.path(), 300, 21).await;
    let app = reconlight_service::server::app(p.store.clone(), p.metrics.clone());
    let unmatched = p
        .state
        .work_items
        .values()
        .find(|w| w.finding.kind.as_str() == "unmatched_receipt")
        .unwrap()
        .clone();
    let targets: Vec<(String, u32)> = p
        .state
        .installments
        .values()
        .take(10)
        .map(|i| (i.contract_no.clone(), i.seq))
        .collect();
    let mut tasks = Vec::new();
    for (n, (contract, seq)) in targets.into_iter().enumerate() {
        let clerk = token(&p.store, &format!("clerk{n}"), Role::Clerk).await;
        let app = app.clone();
        let id = unmatched.id.clone();
        tasks.push(tokio::spawn(async move {
            call(
                &app,
                "POST",
                &format!("/api/v1/work-items/{id}/match"),
                &clerk,
                serde_json::json!({"contract_no": contract, "installment": seq}),
            )
            .await
            .0
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::CONFLICT)
    );
    let decision = p
        .store
        .manual_decision_of(unmatched.finding.bank_ref.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(decision.allocations.len(), 1, "{decision:?}");
    assert_eq!(
        decision.allocations[0].amount,
        unmatched.finding.received.unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nightly_run_keeps_what_clerks_did_while_it_ran() {
    let dir = tempfile::tempdir().unwrap();
    let (mut p, _) = generate_and_run(dir.path(), 300, 21).await;
    let app = reconlight_service::server::app(p.store.clone(), p.metrics.clone());
    let clerk = token(&p.store, "li.na", Role::Clerk).await;
    let ids: Vec<String> = p
        .state
        .work_items
        .values()
        .filter(|w| w.state.is_active())
        .map(|w| w.id.clone())
        .take(20)
        .collect();
    // The nightly diff for the next day (it rewrites every item it still finds) while
    // clerks comment on twenty items.
    let date = p.default_business_date() + chrono::Duration::days(1);
    let comments = {
        let (app, clerk, ids) = (app.clone(), clerk.clone(), ids.clone());
        tokio::spawn(async move {
            for (n, id) in ids.iter().enumerate() {
                let (status, body) = call(
                    &app,
                    "POST",
                    &format!("/api/v1/work-items/{id}/comment"),
                    &clerk,
                    serde_json::json!({"text": format!("跟进 {n}")}),
                )
                .await;
                assert_eq!(status, StatusCode::OK, "{body}");
                tokio::task::yield_now().await;
            }
        })
    };
    p.nightly(date).await.unwrap();
    comments.await.unwrap();
    // Whatever the interleaving, every comment is still there.
    for (n, id) in ids.iter().enumerate() {
        let stored = p.store.work_item(id).await.unwrap().unwrap();
        assert!(
            stored
                .history
                .iter()
                .any(|h| h.note == format!("跟进 {n}") && h.by == "li.na"),
            "{id}: {:?}",
            stored.history
        );
    }
    // And the store refuses a write over a version that moved on.
    let id = &ids[0];
    let mut stale = p.store.work_item(id).await.unwrap().unwrap();
    let (status, _) = call(
        &app,
        "POST",
        &format!("/api/v1/work-items/{id}/comment"),
        &clerk,
        serde_json::json!({"text": "one more"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let read = Some(stale.version);
    stale.version += 1;
    let mut dirty = reconlight_core::state::Dirty::default();
    dirty.work_items.insert(id.clone());
    dirty.work_items_read.insert(id.clone(), read);
    p.state.work_items.insert(id.clone(), stale);
    let err = p.store.commit(&p.state, &dirty).await.unwrap_err();
    assert!(err.is_conflict(), "{err}");
    // A clerk who saw an old version is told.
    let (status, body) = call(
        &app,
        "POST",
        &format!("/api/v1/work-items/{id}/comment"),
        &clerk,
        serde_json::json!({"text": "late", "version": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("someone else acted on it first")
    );
}

const ISSUER: &str = "https://sso.example.cn/realms/finance";

fn jwt(claims: serde_json::Value) -> String {
    let key = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/oidc/test-signing-key.pem"),
    )
    .unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("test-key-1".into());
    encode(&header, &claims, &EncodingKey::from_rsa_pem(&key).unwrap()).unwrap()
}

fn claims(name: &str, roles: &[&str], aud: &str, exp_in: i64) -> serde_json::Value {
    let now = chrono::Utc::now().timestamp();
    serde_json::json!({
        "iss": ISSUER, "aud": aud, "sub": format!("u-{name}"), "preferred_username": name,
        "roles": roles, "iat": now, "exp": now + exp_in,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_bearer_tokens_name_the_clerk_and_give_the_role() {
    let dir = tempfile::tempdir().unwrap();
    let (p, _) = generate_and_run(dir.path(), 200, 3).await;
    let jwks = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/oidc/jwks.json");
    let access: reconlight_service::access::AuthConfig = toml::from_str(&format!(
        "[oidc]\nissuer = \"{ISSUER}\"\naudience = \"reconlight\"\njwks_file = \"{}\"\n",
        jwks.display()
    ))
    .unwrap();
    let app = reconlight_service::server::app_with(
        p.store.clone(),
        p.metrics.clone(),
        reconlight_service::server::ServerOptions {
            access: Arc::new(access),
            ..Default::default()
        },
    );
    let item = p
        .state
        .work_items
        .values()
        .find(|w| w.state.is_active())
        .unwrap()
        .clone();
    let uri = format!("/api/v1/work-items/{}/comment", item.id);
    let note = serde_json::json!({"text": "已联系客户"});

    let viewer = jwt(claims(
        "zhou.jie",
        &["reconlight-viewer"],
        "reconlight",
        300,
    ));
    assert_eq!(
        call(&app, "GET", "/api/v1/work-items", &viewer, note.clone())
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, "POST", &uri, &viewer, note.clone()).await.0,
        StatusCode::FORBIDDEN
    );
    let clerk = jwt(claims(
        "chen.jing",
        &["staff", "reconlight-clerk"],
        "reconlight",
        300,
    ));
    let (status, body) = call(&app, "POST", &uri, &clerk, note.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["history"].as_array().unwrap().last().unwrap()["by"],
        "chen.jing"
    );

    for (why, token) in [
        (
            "expired",
            jwt(claims(
                "chen.jing",
                &["reconlight-clerk"],
                "reconlight",
                -600,
            )),
        ),
        (
            "for another audience",
            jwt(claims("chen.jing", &["reconlight-clerk"], "crm", 300)),
        ),
        (
            "without a reconlight role",
            jwt(claims("chen.jing", &["staff"], "reconlight", 300)),
        ),
    ] {
        let (status, body) = call(&app, "POST", &uri, &token, note.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}: {body}");
    }
    // A token signed with a shared secret (or none) is never accepted.
    let forged = encode(
        &Header::new(Algorithm::HS256),
        &claims("mallory", &["reconlight-admin"], "reconlight", 300),
        &EncodingKey::from_secret(b"guessable").unwrap(),
    )
    .unwrap();
    let (status, body) = call(&app, "POST", &uri, &forged, note).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"].as_str().unwrap().contains("HS256"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acrobat_sign_with_webhook_oauth_needs_the_bearer_token() {
    let dir = tempfile::tempdir().unwrap();
    let (p, _) = generate_and_run(dir.path(), 100, 4).await;
    let jwks = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/oidc/jwks.json");
    let hooks: reconlight_service::server::webhooks::WebhooksConfig = toml::from_str(&format!(
        "[adobe_sign]\nclient_ids = [\"CBJCH-old\", \"CBJCH-new\"]\n[adobe_sign.oauth]\nissuer = \"{ISSUER}\"\naudience = \"acrobat-sign\"\njwks_file = \"{}\"\nroles = {{ \"webhook\" = \"viewer\" }}\n",
        jwks.display()
    ))
    .unwrap();
    let app = reconlight_service::server::app_with(
        p.store.clone(),
        p.metrics.clone(),
        reconlight_service::server::ServerOptions {
            webhooks: Some(Arc::new(hooks)),
            ..Default::default()
        },
    );
    let body = r#"{"webhookNotificationId":"n-9","event":"AGREEMENT_WORKFLOW_COMPLETED","eventDate":"2026-10-31T08:00:00Z","agreement":{"id":"ad-9","name":"HT-2026-000004","status":"SIGNED"}}"#;
    let post = |token: Option<String>| {
        let mut r =
            Request::post("/webhooks/adobe-sign").header("X-AdobeSign-ClientId", "CBJCH-new");
        if let Some(t) = token {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        r.body(Body::from(body)).unwrap()
    };
    let status = |r: Request<Body>| {
        let app = app.clone();
        async move { app.oneshot(r).await.unwrap().status() }
    };
    assert_eq!(
        status(post(None)).await,
        StatusCode::UNAUTHORIZED,
        "no token"
    );
    let wrong_aud = jwt(claims("adobe", &["webhook"], "reconlight", 300));
    assert_eq!(
        status(post(Some(wrong_aud))).await,
        StatusCode::UNAUTHORIZED
    );
    let good = jwt(claims("adobe", &["webhook"], "acrobat-sign", 300));
    let response = app.clone().oneshot(post(Some(good))).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["x-adobesign-clientid"].to_str().unwrap(),
        "CBJCH-new",
        "the client id that called is echoed"
    );
    assert_eq!(p.store.inbox_pending(10).await.unwrap().len(), 1);
}
