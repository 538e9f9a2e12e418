//! A generic webhook: the outbox message's JSON, signed with HMAC-SHA256 over the raw body.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{Outcome, WebhookConfig, outcome_of, post_json};
use reconlight_core::outbox::OutboxMessage;

/// `sha256=<hex>` of HMAC-SHA256(secret, body): what receivers check.
pub fn signature(secret: &str, body: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub(super) async fn deliver(
    agent: &ureq::Agent,
    config: &WebhookConfig,
    message: &OutboxMessage,
) -> Outcome {
    let body = message.payload.clone();
    let headers = vec![
        (
            "X-Reconlight-Signature".to_string(),
            signature(&config.secret, &body),
        ),
        ("X-Reconlight-Delivery".to_string(), message.id.clone()),
        ("X-Reconlight-Topic".to_string(), message.topic.clone()),
    ];
    outcome_of(post_json(agent, config.url.as_str(), body, headers).await)
}
