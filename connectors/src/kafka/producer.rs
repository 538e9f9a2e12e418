//! The producer: idempotent, every message keyed by a stable id with the outbox message id
//! in a header, so receivers (and a restarted reconlight) can tell what was already sent.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaResult;
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

/// The header carrying the outbox message id.
pub const MESSAGE_ID_HEADER: &str = "reconlight-message-id";

/// Sends outbox messages to topics.
pub struct KafkaOutput {
    producer: FutureProducer,
}

impl KafkaOutput {
    pub fn new(brokers: &str, properties: &BTreeMap<String, String>) -> KafkaResult<Self> {
        let mut config = super::client_config(brokers, properties);
        config.set("enable.idempotence", "true");
        super::set_default(&mut config, "message.timeout.ms", "30000");
        Ok(KafkaOutput {
            producer: config.create()?,
        })
    }

    /// Sends a raw message (`None` payload: a tombstone) and waits for the acknowledgement.
    pub async fn send_raw(
        &self,
        topic: &str,
        key: Option<&str>,
        payload: Option<&[u8]>,
    ) -> Result<(), String> {
        let mut record: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic);
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(p) = payload {
            record = record.payload(p);
        }
        self.producer
            .send(record, Duration::from_secs(30))
            .await
            .map(|_| ())
            .map_err(|(e, _)| e.to_string())
    }

    /// Creates `topic` with `partitions` partitions unless it exists.
    pub async fn ensure_topic(
        brokers: &str,
        properties: &BTreeMap<String, String>,
        topic: &str,
        partitions: i32,
    ) -> Result<(), String> {
        use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
        use rdkafka::client::DefaultClientContext;
        use rdkafka::types::RDKafkaErrorCode;
        let admin: AdminClient<DefaultClientContext> = super::client_config(brokers, properties)
            .create()
            .map_err(|e| e.to_string())?;
        let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
        let results = admin
            .create_topics([&new], &AdminOptions::new())
            .await
            .map_err(|e| e.to_string())?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((t, code)) => return Err(format!("creating topic {t}: {code}")),
            }
        }
        Ok(())
    }

    /// Sends one message and waits for the broker's acknowledgement.
    pub async fn send(
        &self,
        topic: &str,
        key: &str,
        message_id: &str,
        payload: &str,
    ) -> Result<(), String> {
        let headers = OwnedHeaders::new().insert(Header {
            key: MESSAGE_ID_HEADER,
            value: Some(message_id),
        });
        let record = FutureRecord::to(topic)
            .key(key)
            .payload(payload)
            .headers(headers);
        self.producer
            .send(record, Duration::from_secs(30))
            .await
            .map(|_| ())
            .map_err(|(e, _)| e.to_string())
    }
}

/// The message ids already in `topic` (the last `per_partition` messages of each partition):
/// what a crash may have sent without the store knowing. Blocking.
pub fn sent_ids(
    brokers: &str,
    properties: &BTreeMap<String, String>,
    topic: &str,
    per_partition: i64,
) -> KafkaResult<BTreeSet<String>> {
    {
        let mut config = super::client_config(brokers, properties);
        config
            .set(
                "group.id",
                format!("reconlight-outbox-scan-{}", std::process::id()),
            )
            .set("enable.auto.commit", "false");
        let consumer: BaseConsumer = config.create()?;
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        let mut tpl = TopicPartitionList::new();
        let mut ends = Vec::new();
        for t in metadata.topics() {
            for p in t.partitions() {
                let (low, high) =
                    consumer.fetch_watermarks(topic, p.id(), Duration::from_secs(10))?;
                if high > low {
                    tpl.add_partition_offset(
                        topic,
                        p.id(),
                        Offset::Offset((high - per_partition).max(low)),
                    )?;
                    ends.push((p.id(), high));
                }
            }
        }
        let mut ids = BTreeSet::new();
        if ends.is_empty() {
            return Ok(ids);
        }
        consumer.assign(&tpl)?;
        let mut remaining: BTreeMap<i32, i64> = ends.into_iter().collect();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !remaining.is_empty() && std::time::Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(500)) {
                Some(Ok(m)) => {
                    if let Some(h) = m.headers() {
                        for header in h.iter().filter(|h| h.key == MESSAGE_ID_HEADER) {
                            if let Some(v) = header.value {
                                ids.insert(String::from_utf8_lossy(v).into_owned());
                            }
                        }
                    }
                    if remaining
                        .get(&m.partition())
                        .is_some_and(|end| m.offset() + 1 >= *end)
                    {
                        remaining.remove(&m.partition());
                    }
                }
                Some(Err(e)) => tracing::warn!("kafka: scanning {topic}: {e}"),
                None => {}
            }
        }
        Ok(ids)
    }
}
