//! Against a real Kafka-protocol broker (tansu): a generated dataset produced into its
//! topics gives the same work items and alerts as the file run of the same dataset, and a
//! pipeline killed with SIGKILL mid-stream and restarted still does, with no duplicate work
//! item, alert or output message.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use reconlight_service_tests::*;

const CONTRACTS: &str = "1000";
const SEED: &str = "23";

/// One sink message: key, `reconlight-message-id` header, JSON value.
struct SinkMessage {
    key: String,
    id: String,
    value: serde_json::Value,
}

/// Every message in `topic`, partition by partition in offset order, up to the end the
/// fetches report (tansu answers ListOffsets with the base offset of the last batch).
fn read_topic(brokers: &str, topic: &str) -> Vec<SinkMessage> {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "reconlight-service-test-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    let mut remaining = BTreeSet::new();
    for p in metadata.topics()[0].partitions() {
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
            .unwrap();
        remaining.insert(p.id());
    }
    assert!(!remaining.is_empty(), "{topic} has no partitions");
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !remaining.is_empty() {
        assert!(Instant::now() < deadline, "{topic}: {remaining:?} unread");
        let m = match consumer.poll(Duration::from_millis(500)) {
            None => continue,
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                remaining.remove(&p);
                continue;
            }
            Some(m) => m.unwrap(),
        };
        let id = m
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == "reconlight-message-id"))
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_else(|| panic!("{topic} offset {}: no message id header", m.offset()));
        out.push(SinkMessage {
            key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
            id,
            value: serde_json::from_slice(m.payload().unwrap_or_default()).unwrap(),
        });
    }
    out
}

fn generate(dir: &Path) {
    reconlight(&[
        "generate",
        "--contracts",
        CONTRACTS,
        "--seed",
        SEED,
        "--out",
        dir.to_str().unwrap(),
    ]);
}

#[test]
fn a_dataset_read_from_a_real_broker_survives_sigkill_and_matches_the_file_run() {
    let broker = Broker::start();
    let root = tempfile::tempdir().unwrap();
    let (files, kafka) = (root.path().join("files"), root.path().join("kafka"));
    generate(&files);
    generate(&kafka);

    // The reference: the same dataset read from its files.
    let file_config = files.join("reconlight.toml");
    let file_config = file_config.to_str().unwrap();
    let records = file_run_reference(file_config);

    let published = reconlight(&[
        "kafka",
        "publish-dataset",
        "--brokers",
        &broker.address,
        kafka.to_str().unwrap(),
    ]);
    assert!(published.contains("crm.crm.contracts"), "{published}");
    let port = free_port();
    let config = kafka.join("reconlight-kafka.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    // tansu holds a JoinGroup for half the session timeout, so keep that short; a static
    // member id lets the restarted pipeline take the killed one's place in the group.
    text.push_str(&format!(
        "\n[kafka.consumer_properties]\n\"session.timeout.ms\" = \"6000\"\n\"group.instance.id\" = \"reconlight-1\"\n\n[server]\nlisten = \"127.0.0.1:{port}\"\n"
    ));
    std::fs::write(&config, text).unwrap();
    let config = config.to_str().unwrap();

    // The service, killed with SIGKILL once it has applied part of the stream.
    let mut service = Command::new(binary())
        .args(["run", "--config", config])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    let at_kill = loop {
        assert!(
            Instant::now() < deadline,
            "the service applied nothing in 3 minutes"
        );
        std::thread::sleep(Duration::from_millis(200));
        if let Some(n) = events_applied(port).filter(|n| *n >= records / 4) {
            break n;
        }
    };
    service.kill().unwrap();
    service.wait().unwrap();
    assert!(
        at_kill < records,
        "killed mid-stream: {at_kill} of {records} records applied"
    );

    // Restarted: it picks up from the stored positions and reads to the end.
    let out = reconlight(&["run", "--config", config, "--until-idle"]);
    assert!(out.contains("0 dead letters"), "{out}");
    reconlight(&["nightly", "--config", config]);
    // Delivers what the nightly diff queued to the sink topics.
    let out = reconlight(&["run", "--config", config, "--until-idle"]);
    assert!(out.contains("0 to retry, 0 refused"), "{out}");

    let (items, reference) = (work_items(config), work_items(file_config));
    assert!(items.len() > 50, "the dataset's problems: {}", items.len());
    assert_eq!(
        work_item_summary(&items),
        work_item_summary(&reference),
        "the same work items"
    );
    let kinds_subjects: BTreeSet<String> = items
        .values()
        .map(|w| {
            format!(
                "{} {} {} {}",
                w["kind"], w["contract_no"], w["installment"], w["bank_ref"]
            )
        })
        .collect();
    assert_eq!(kinds_subjects.len(), items.len(), "no duplicate work item");
    let alerts = active_alerts(config);
    assert!(!alerts.is_empty());
    let reference = active_alerts(file_config);
    let extra: Vec<_> = alerts.difference(&reference).collect();
    let missing: Vec<_> = reference.difference(&alerts).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "the same active alerts: unexpected {extra:#?}, missing {missing:#?}"
    );

    // The sink topics: every message once, every work item and active alert there, each
    // key's last message telling its current state.
    let brokers = broker.address.as_str();
    for topic in ["reconlight.alerts", "reconlight.work-items"] {
        let messages = read_topic(brokers, topic);
        let ids: BTreeSet<&str> = messages.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(
            ids.len(),
            messages.len(),
            "{topic}: {} messages sent twice",
            messages.len() - ids.len()
        );
    }
    let mut last_state: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for m in read_topic(brokers, "reconlight.work-items") {
        last_state.insert(m.key, m.value["state"].clone());
    }
    let listed: BTreeMap<String, serde_json::Value> = items
        .iter()
        .map(|(id, w)| (id.clone(), w["state"].clone()))
        .collect();
    let differing: Vec<String> = listed
        .iter()
        .filter(|(id, state)| last_state.get(*id) != Some(state))
        .map(|(id, state)| {
            format!(
                "{id} ({} {state}): {:?} in the topic",
                items[id]["kind"],
                last_state.get(id)
            )
        })
        .collect();
    assert!(
        differing.is_empty() && last_state.len() == listed.len(),
        "reconlight.work-items ends in every item's state: {} differ: {differing:#?}",
        differing.len()
    );
    let mut last_alert: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for m in read_topic(brokers, "reconlight.alerts") {
        assert_eq!(m.value["alert"]["id"].as_str(), Some(m.key.as_str()));
        last_alert.insert(m.key, m.value["alert"].clone());
    }
    let firing: BTreeSet<String> = json_lines(&reconlight(&[
        "alerts", "list", "--config", config, "--state", "firing", "--format", "json",
    ]))
    .into_iter()
    .map(|a| a["id"].as_str().unwrap().to_string())
    .collect();
    assert!(!firing.is_empty());
    for id in &firing {
        let sent = last_alert
            .get(id)
            .unwrap_or_else(|| panic!("firing alert {id} never reached reconlight.alerts"));
        assert_eq!(sent["state"], "firing", "{id}: {sent}");
    }
}
