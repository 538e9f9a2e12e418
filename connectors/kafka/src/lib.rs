//! Kafka in and out. The consumer's positions live in reconlight's store, not in Kafka:
//! on every partition assignment the consumer starts from the positions the pipeline
//! committed with its state, and offsets are committed to Kafka only after that database
//! commit (for tools that watch the group). The producer is idempotent and keys every
//! message by a stable id.

mod consumer;
mod producer;

pub use consumer::{KafkaInput, KafkaMessage};
pub use producer::{KafkaOutput, MESSAGE_ID_HEADER, sent_ids};

use std::collections::BTreeMap;

use rdkafka::ClientConfig;

/// Builds a client configuration: the brokers, then any librdkafka property (SASL, SSL...).
pub fn client_config(brokers: &str, properties: &BTreeMap<String, String>) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers);
    for (k, v) in properties {
        c.set(k, v);
    }
    c
}

/// Sets `key` unless the operator's properties already did.
fn set_default(config: &mut ClientConfig, key: &str, value: &str) {
    if config.get(key).is_none() {
        config.set(key, value);
    }
}
