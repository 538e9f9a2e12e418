//! The outbox: every message for the outside world is written in the batch's transaction,
//! with an id derived from its content, and delivered from there. A crash re-sends, never
//! loses, and receivers deduplicate by id.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A message waiting for delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxMessage {
    pub id: String,
    /// `alerts`, `work_items`, `dead_letters`.
    pub topic: String,
    /// The stable id of what the message is about (alert or work item id).
    pub key: String,
    /// JSON.
    pub payload: String,
    pub created_at: DateTime<Utc>,
}

impl OutboxMessage {
    pub fn new(
        topic: &str,
        key: &str,
        payload: &impl Serialize,
        created_at: DateTime<Utc>,
    ) -> Self {
        let payload = serde_json::to_string(payload).expect("outbox payloads serialize");
        let mut h = Sha256::new();
        h.update(topic.as_bytes());
        h.update([0x1f]);
        h.update(key.as_bytes());
        h.update([0x1f]);
        h.update(payload.as_bytes());
        OutboxMessage {
            id: format!("MSG-{}", &hex::encode(h.finalize())[..20]),
            topic: topic.into(),
            key: key.into(),
            payload,
            created_at,
        }
    }
}
