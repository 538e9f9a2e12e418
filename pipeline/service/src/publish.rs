//! `reconlight kafka produce`: files into a topic, one message per line (JSON lines) or one
//! per file (statements), for users trying a mapping against their broker, and for the
//! end-to-end tests.

use std::collections::BTreeMap;
use std::path::PathBuf;

use reconlight_kafka::KafkaOutput;

use crate::error::{FileError, ServiceError};

/// What to send where.
pub struct ProduceOptions {
    pub brokers: String,
    pub properties: BTreeMap<String, String>,
    pub topic: String,
    /// Create the topic with this many partitions if it does not exist.
    pub partitions: Option<i32>,
    /// One message per file instead of one per line.
    pub whole_file: bool,
    /// JSON pointers tried in order for each line's key (`/payload/after/id`).
    pub key_pointers: Vec<String>,
}

/// Messages sent at once before waiting for their acknowledgements.
const IN_FLIGHT: usize = 2000;

/// The message size brokers and librdkafka accept by default (`message.max.bytes`,
/// `max.message.bytes`): a larger statement needs both raised.
const DEFAULT_MESSAGE_LIMIT: usize = 1_000_000;

/// Sends the files; returns how many messages went out.
pub async fn produce(options: &ProduceOptions, files: &[PathBuf]) -> crate::error::Result<u64> {
    // (where it comes from, key, value)
    let mut messages: Vec<(String, Option<String>, Option<Vec<u8>>)> = Vec::new();
    for file in files {
        let bytes = std::fs::read(file).map_err(FileError::io("read", file))?;
        if options.whole_file {
            let key = file.file_name().map(|n| n.to_string_lossy().into_owned());
            messages.push((file.display().to_string(), key, Some(bytes)));
            continue;
        }
        let text = String::from_utf8(bytes).map_err(|source| ServiceError::NotUtf8 {
            path: file.clone(),
            source,
        })?;
        let mut last_key = None;
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let origin = format!("{} line {}", file.display(), n + 1);
            // A `null` line after a delete is Debezium's tombstone: no value, the row's key.
            if line.trim() == "null" {
                messages.push((origin, last_key.clone(), None));
                continue;
            }
            last_key = key_of(line, &options.key_pointers);
            messages.push((origin, last_key.clone(), Some(line.as_bytes().to_vec())));
        }
    }
    // The largest message decides the limits a new topic and the producer need: a month of
    // camt.053 for a busy account is several megabytes.
    let largest = messages
        .iter()
        .filter_map(|(_, _, payload)| payload.as_ref().map(Vec::len))
        .max()
        .unwrap_or(0);
    let mut properties = options.properties.clone();
    let mut topic_config = Vec::new();
    if largest > DEFAULT_MESSAGE_LIMIT {
        let limit = (largest + 64 * 1024).to_string();
        topic_config.push(("max.message.bytes", limit.clone()));
        properties
            .entry("message.max.bytes".to_string())
            .or_insert(limit);
    }
    if let Some(n) = options.partitions {
        KafkaOutput::ensure_topic(
            &options.brokers,
            &properties,
            &options.topic,
            n,
            &topic_config,
        )
        .await
        .map_err(ServiceError::kafka(format!(
            "creating topic {} at {}",
            options.topic, options.brokers
        )))?;
    }
    let output = KafkaOutput::new(&options.brokers, &properties).map_err(ServiceError::kafka(
        format!("a producer for {}", options.brokers),
    ))?;
    let mut sent = 0u64;
    for chunk in messages.chunks(IN_FLIGHT) {
        let sends = chunk.iter().map(|(_, key, payload)| {
            output.send_raw(&options.topic, key.as_deref(), payload.as_deref())
        });
        let results = futures::future::join_all(sends).await;
        for ((origin, _, payload), result) in chunk.iter().zip(results) {
            result.map_err(|source| {
                let size = payload.as_ref().map_or(0, Vec::len);
                let hint = if source.rdkafka_error_code()
                    == Some(rdkafka::types::RDKafkaErrorCode::MessageSizeTooLarge)
                {
                    " (raise the topic's max.message.bytes and pass -X message.max.bytes=N, or split the statement)"
                } else {
                    ""
                };
                ServiceError::Kafka {
                    doing: format!("sending {origin} ({size} bytes) to {}", options.topic),
                    source,
                    hint,
                }
            })?;
            sent += 1;
        }
    }
    Ok(sent)
}

/// The first pointer that names a non-null value: strings as they are, the rest as JSON.
fn key_of(line: &str, pointers: &[String]) -> Option<String> {
    if pointers.is_empty() {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    pointers.iter().find_map(|p| match value.pointer(p)? {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::key_of;

    #[test]
    fn key_comes_from_the_first_pointer_that_resolves() {
        let pointers = vec![
            "/payload/after/id".to_string(),
            "/payload/before/id".to_string(),
        ];
        let delete = r#"{"payload":{"before":{"id":17},"after":null,"op":"d"}}"#;
        assert_eq!(key_of(delete, &pointers).as_deref(), Some("17"));
        let create = r#"{"payload":{"before":null,"after":{"id":"C-9"},"op":"c"}}"#;
        assert_eq!(key_of(create, &pointers).as_deref(), Some("C-9"));
        assert_eq!(key_of("not json", &pointers), None);
    }
}
