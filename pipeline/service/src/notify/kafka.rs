//! The Kafka sinks: outbox topics sent to Kafka topics by an idempotent producer, keyed by
//! the stable id of what each message is about, the outbox message id in a header.

use std::collections::{BTreeMap, BTreeSet};

use reconlight_kafka::{KafkaOutput, sent_ids};

use super::Outcome;
use crate::config::KafkaConfig;
use reconlight_core::outbox::OutboxMessage;

/// The notifier name deliveries are recorded under.
pub const NOTIFIER: &str = "kafka";

/// How far back each partition is read for ids sent before a crash: more than one
/// delivery round can leave unrecorded.
const RECONCILE_DEPTH: i64 = 20_000;

pub struct KafkaSink {
    output: KafkaOutput,
    brokers: String,
    properties: BTreeMap<String, String>,
    /// Outbox topic -> Kafka topic.
    topics: BTreeMap<String, String>,
    /// Whether ids already in the topics were marked delivered since start.
    pub reconciled: bool,
}

impl KafkaSink {
    pub fn new(config: &KafkaConfig) -> crate::error::Result<Self> {
        let output = KafkaOutput::new(&config.brokers, &config.producer_config()).map_err(
            crate::error::ServiceError::kafka(format!("a producer for {}", config.brokers)),
        )?;
        Ok(KafkaSink {
            output,
            brokers: config.brokers.clone(),
            // The read-back after a crash assigns partitions without joining the group.
            properties: config.properties.clone(),
            topics: config.sinks.clone(),
            reconciled: false,
        })
    }

    pub fn outbox_topics(&self) -> Vec<String> {
        self.topics.keys().cloned().collect()
    }

    /// Message ids already present at the end of the sink topics; an error when a topic
    /// could not be read back, as sending blind could send twice.
    pub async fn sent_ids(&self) -> crate::error::Result<BTreeSet<String>> {
        let mut ids = BTreeSet::new();
        for topic in self.topics.values() {
            let (brokers, properties, t) =
                (self.brokers.clone(), self.properties.clone(), topic.clone());
            let scanned = tokio::task::spawn_blocking(move || {
                sent_ids(&brokers, &properties, &t, RECONCILE_DEPTH)
            })
            .await;
            match scanned {
                Ok(Ok(found)) => ids.extend(found),
                Ok(Err(e)) => {
                    return Err(crate::error::ServiceError::kafka(format!(
                        "reading back {topic}"
                    ))(e));
                }
                Err(source) => {
                    return Err(crate::error::ServiceError::Task {
                        what: format!("reading back {topic}"),
                        source,
                    });
                }
            }
        }
        Ok(ids)
    }

    /// Sends every message concurrently and waits for each acknowledgement.
    pub async fn send_all(&self, messages: &[(OutboxMessage, u32)]) -> Vec<Outcome> {
        let sends = messages.iter().map(|(m, _)| async move {
            let Some(topic) = self.topics.get(&m.topic) else {
                return Outcome::Skipped;
            };
            match self.output.send(topic, &m.key, &m.id, &m.payload).await {
                Ok(()) => Outcome::Delivered,
                Err(e) => Outcome::Retry(e.to_string()),
            }
        });
        futures::future::join_all(sends).await
    }
}
