//! A generated dataset as Kafka topics: what `reconlight kafka publish-dataset` sends and
//! the configuration that reads it back, for trying reconlight against a real broker.

use std::path::{Path, PathBuf};

use super::dataset_config;

/// One Kafka topic of a generated dataset: which files it carries, and how.
#[derive(Clone, Debug)]
pub struct DatasetTopic {
    pub topic: String,
    /// The dataset source it stands in for.
    pub source: String,
    pub files: Vec<PathBuf>,
    /// One message per file (statements) rather than per line.
    pub whole_file: bool,
    /// Where each line's key is (the row's primary key), so a row's changes stay in order.
    pub key_pointers: Vec<String>,
}

/// The Kafka topics a dataset maps to: CDC topics named as Debezium names them
/// (`<prefix>.<schema>.<table>`), one e-signature topic and one topic per bank account.
pub fn dataset_topics(dir: &Path) -> Vec<DatasetTopic> {
    let mut keys: Vec<(String, String)> = vec![
        ("customers".into(), "customer_id".into()),
        ("contracts".into(), "contract_no".into()),
        ("handoff_tickets".into(), "ticket_id".into()),
    ];
    for (name, table) in reconlight_formats::crm::extra::reference_extra_tables() {
        keys.push((name, table.key[0].clone()));
    }
    let mut topics: Vec<DatasetTopic> = keys
        .into_iter()
        .map(|(table, key)| DatasetTopic {
            topic: format!("crm.crm.{table}"),
            source: format!("crm-{}", table.replace('_', "-")),
            files: vec![dir.join("crm").join(format!("{table}.jsonl"))],
            whole_file: false,
            key_pointers: ["/payload/after/", "/payload/before/", "/after/", "/before/"]
                .iter()
                .map(|p| format!("{p}{key}"))
                .collect(),
        })
        .collect();
    topics.push(DatasetTopic {
        topic: "esign.docusign".into(),
        source: "docusign".into(),
        files: vec![dir.join("esign/docusign.jsonl")],
        whole_file: false,
        key_pointers: vec!["/envelopeId".into(), "/data/envelopeId".into()],
    });
    let listed = |sub: &str| -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(sub))
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.is_file())
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    };
    topics.push(DatasetTopic {
        topic: "bank.icbc.camt053".into(),
        source: "bank-icbc".into(),
        files: listed("bank/camt053"),
        whole_file: true,
        key_pointers: Vec::new(),
    });
    topics.push(DatasetTopic {
        topic: "bank.cmb.csv".into(),
        source: "bank-cmb".into(),
        files: listed("bank/csv"),
        whole_file: true,
        key_pointers: Vec::new(),
    });
    topics.retain(|t| t.files.iter().any(|f| f.is_file()));
    topics
}

/// The dataset's configuration reading Kafka at `brokers` instead of the files; sinks
/// write alerts, work items and dead letters to `reconlight.*` topics.
pub fn dataset_kafka_config(dir: &Path, brokers: &str) -> String {
    // Its own store: the same data read again from Kafka is not mistaken for a replay of
    // what the file run applied.
    let mut text = dataset_config().replace(
        "url = \"sqlite://reconlight.db\"",
        "url = \"sqlite://reconlight-kafka.db\"",
    );
    for t in dataset_topics(dir) {
        let Some(first) = t.files.first() else {
            continue;
        };
        let path = if t.whole_file {
            first
                .parent()
                .unwrap_or(first)
                .strip_prefix(dir)
                .unwrap_or(first)
                .to_path_buf()
        } else {
            first.strip_prefix(dir).unwrap_or(first).to_path_buf()
        };
        text = text.replace(
            &format!("path = \"{}\"", path.display()),
            &format!("topics = [\"{}\"]", t.topic),
        );
    }
    text.push_str(&format!(
        r#"
[kafka]
brokers = "{brokers}"
group_id = "reconlight"

[kafka.sinks]
alerts = "reconlight.alerts"
work_items = "reconlight.work-items"
dead_letters = "reconlight.dead-letters"
"#
    ));
    text
}
