//! The producer: idempotent, every message keyed by a stable id with the outbox message id
//! in a header, so receivers (and a restarted reconlight) can tell what was already sent.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
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
    ) -> Result<(), KafkaError> {
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
            .map_err(|(e, _)| e)
    }

    /// Creates `topic` with `partitions` partitions and the topic configuration `config`
    /// (`max.message.bytes`, ...) unless it exists.
    pub async fn ensure_topic(
        brokers: &str,
        properties: &BTreeMap<String, String>,
        topic: &str,
        partitions: i32,
        config: &[(&str, String)],
    ) -> Result<(), KafkaError> {
        use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
        use rdkafka::client::DefaultClientContext;
        let admin: AdminClient<DefaultClientContext> =
            super::client_config(brokers, properties).create()?;
        let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
        for (name, value) in config {
            new = new.set(name, value);
        }
        let results = admin.create_topics([&new], &AdminOptions::new()).await?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => return Err(KafkaError::AdminOp(code)),
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
    ) -> Result<(), KafkaError> {
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
            .map_err(|(e, _)| e)
    }
}

/// The message ids already in `topic` (the last `per_partition` messages of each partition):
/// what a crash may have sent without the store knowing. Each partition is read to the end
/// its fetches report, not to the end a ListOffsets answer gives: some brokers answer that
/// with the base offset of the last batch. Blocking.
pub fn sent_ids(
    brokers: &str,
    properties: &BTreeMap<String, String>,
    topic: &str,
    per_partition: i64,
) -> KafkaResult<BTreeSet<String>> {
    let mut config = super::client_config(brokers, properties);
    config
        .set(
            "group.id",
            format!("reconlight-outbox-scan-{}", std::process::id()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true");
    let consumer: BaseConsumer<ScanContext> = config.create_with_context(ScanContext)?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut tpl = TopicPartitionList::new();
    let mut remaining = BTreeSet::new();
    for t in metadata.topics() {
        for p in t.partitions() {
            tpl.add_partition_offset(topic, p.id(), Offset::OffsetTail(per_partition))?;
            remaining.insert(p.id());
        }
    }
    let mut ids = BTreeSet::new();
    if remaining.is_empty() {
        return Ok(ids);
    }
    consumer.assign(&tpl)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !remaining.is_empty() {
        if std::time::Instant::now() >= deadline {
            return Err(rdkafka::error::KafkaError::MessageConsumption(
                RDKafkaErrorCode::OperationTimedOut,
            ));
        }
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                if let Some(h) = m.headers() {
                    for header in h.iter().filter(|h| h.key == MESSAGE_ID_HEADER) {
                        if let Some(v) = header.value {
                            ids.insert(String::from_utf8_lossy(v).into_owned());
                        }
                    }
                }
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                remaining.remove(&p);
            }
            Some(Err(e)) => tracing::warn!("kafka: scanning {topic}: {e}"),
            None => {}
        }
    }
    Ok(ids)
}

/// Reports client errors except reaching a partition's end, which the scan waits for.
struct ScanContext;

impl rdkafka::ClientContext for ScanContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        if !matches!(error, rdkafka::error::KafkaError::PartitionEOF(_)) {
            tracing::warn!("kafka: {error}: {reason}");
        }
    }
}

impl rdkafka::consumer::ConsumerContext for ScanContext {}
