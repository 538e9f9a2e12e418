//! The Kafka path on librdkafka's in-process mock cluster: a dataset read from its topics
//! gives the work items and alerts of the file run, a broker error and a restart mid-stream
//! change nothing, and the sinks carry every outbox message exactly once.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use reconlight_service::config::Config;
use reconlight_service::ingest::Pipeline;
use reconlight_service::metrics::Metrics;
use reconlight_service::notify::Notifier;
use reconlight_testkit::generate;

const CONTRACTS: usize = 300;
const SEED: u64 = 23;

/// A mock cluster with the dataset's topics (`partitions` each) and the sink topics; the
/// mock broker does not implement topic creation through the admin API.
fn cluster_for(
    dir: &std::path::Path,
    partitions: i32,
) -> MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    let cluster = MockCluster::new(1).unwrap();
    for t in reconlight_testkit::dataset_topics(dir) {
        cluster.create_topic(&t.topic, partitions, 1).unwrap();
    }
    for t in [
        "reconlight.alerts",
        "reconlight.work-items",
        "reconlight.dead-letters",
    ] {
        cluster.create_topic(t, 2, 1).unwrap();
    }
    cluster
}

async fn open_with(config: Config) -> Pipeline {
    Pipeline::open(config, Arc::new(Metrics::new()))
        .await
        .expect("pipeline opens")
}

/// Messages in a topic, over all partitions.
fn topic_count(brokers: &str, topic: &str) -> i64 {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "reconlight-test-count")
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| {
            let (low, high) = consumer
                .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
                .unwrap();
            high - low
        })
        .sum()
}

/// Every outbox message id of an outbox topic.
async fn outbox_ids(p: &Pipeline, topic: &str) -> BTreeSet<String> {
    p.store
        .outbox_pending(10_000_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.topic == topic)
        .map(|m| m.id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dataset_read_from_kafka_matches_the_file_run() {
    let files = tempfile::tempdir().unwrap();
    let (reference, _) = generate_and_run(files.path(), CONTRACTS, SEED).await;

    let dir = tempfile::tempdir().unwrap();
    generate(CONTRACTS, SEED, dir.path()).unwrap();
    let cluster = cluster_for(dir.path(), 3);
    let brokers = cluster.bootstrap_servers();
    let mut config = publish_dataset(dir.path(), &brokers, None).await;
    config.ingest.batch_size = 400;

    let mut p = open_with(config).await;
    let stats = p.run_until_idle(|_, _| {}).await.unwrap();
    assert!(stats.batches > 1, "read in several batches");
    let date = p.default_business_date();
    assert_eq!(date, reference.default_business_date());
    p.nightly(date).await.unwrap();

    assert_same(&open_subjects(&p), &open_subjects(&reference), "work items");
    assert!(!open_subjects(&p).is_empty());
    assert_same(
        &active_alerts(&p),
        &active_alerts(&reference),
        "active alerts",
    );
    assert_eq!(p.state.bank.len(), reference.state.bank.len());
    assert_eq!(p.state.contracts.len(), reference.state.contracts.len());
    assert_eq!(p.state.dead_letter_count, reference.state.dead_letter_count);
    // Every partition's position is stored under the source that read it.
    assert!(
        p.state
            .positions
            .keys()
            .any(|k| k.starts_with("crm-contracts:kafka:crm.crm.contracts/")),
        "{:?}",
        p.state.positions.keys().collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_error_and_a_restart_mid_stream_change_nothing() {
    let files = tempfile::tempdir().unwrap();
    let (reference, _) = generate_and_run(files.path(), CONTRACTS, SEED).await;

    let dir = tempfile::tempdir().unwrap();
    generate(CONTRACTS, SEED, dir.path()).unwrap();
    let cluster = cluster_for(dir.path(), 2);
    let brokers = cluster.bootstrap_servers();
    let mut config = publish_dataset(dir.path(), &brokers, None).await;
    config.ingest.batch_size = 300;
    // Rules evaluated after every batch's worth of records, so alerts go out before the crash.
    config.rules.evaluate_every = 300;

    // Two batches, then fetches and offset commits fail for a while.
    let mut first = open_with(config.clone()).await;
    first.kafka_budget = Some(Duration::ZERO);
    let mut applied = 0;
    while applied < 2 {
        applied += first.run_kafka().await.unwrap().batches;
    }
    cluster.request_errors(
        RDKafkaApiKey::Fetch,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION; 4],
    );
    cluster.request_errors(
        RDKafkaApiKey::OffsetCommit,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT; 3],
    );
    let mut more = 0;
    while more < 2 {
        more += first.run_kafka().await.unwrap().batches;
    }
    // What the first process would have sent before dying: some messages delivered and
    // recorded, a few sent with the record lost in the crash.
    let mut notifier = Notifier::new(
        first.store.clone(),
        Default::default(),
        first.metrics.clone(),
    )
    .with_kafka(config.kafka.as_ref())
    .unwrap();
    notifier.deliver(chrono::Utc::now()).await.unwrap();
    let delivered_before = topic_count(&brokers, "reconlight.alerts");
    assert!(delivered_before > 0, "alerts were sent before the crash");
    drop(notifier);
    drop(first);

    let mut second = open_with(config.clone()).await;
    second.run_until_idle(|_, _| {}).await.unwrap();
    let date = second.default_business_date();
    second.nightly(date).await.unwrap();
    assert_same(
        &open_subjects(&second),
        &open_subjects(&reference),
        "work items",
    );
    assert_same(
        &active_alerts(&second),
        &active_alerts(&reference),
        "active alerts",
    );
    assert_eq!(second.state.bank.len(), reference.state.bank.len());

    // A crash after sending and before recording: the same messages go out by hand.
    let output = reconlight_kafka::KafkaOutput::new(&brokers, &Default::default()).unwrap();
    let far = chrono::Utc::now() + chrono::Duration::days(1);
    let unrecorded = second
        .store
        .pending_deliveries("kafka", &["work_items".to_string()], far, 5)
        .await
        .unwrap();
    assert_eq!(unrecorded.len(), 5);
    for (m, _) in &unrecorded {
        output
            .send("reconlight.work-items", &m.key, &m.id, &m.payload)
            .await
            .unwrap();
    }
    let mut notifier = Notifier::new(
        second.store.clone(),
        Default::default(),
        second.metrics.clone(),
    )
    .with_kafka(config.kafka.as_ref())
    .unwrap();
    notifier.deliver(chrono::Utc::now()).await.unwrap();

    for (outbox_topic, kafka_topic) in [
        ("alerts", "reconlight.alerts"),
        ("work_items", "reconlight.work-items"),
    ] {
        let ids = outbox_ids(&second, outbox_topic).await;
        assert!(!ids.is_empty());
        assert_eq!(
            topic_count(&brokers, kafka_topic),
            ids.len() as i64,
            "{kafka_topic} holds each outbox message once"
        );
        let sent =
            reconlight_kafka::sent_ids(&brokers, &Default::default(), kafka_topic, i64::MAX / 4)
                .unwrap();
        assert_eq!(
            sent, ids,
            "{kafka_topic} holds exactly the outbox's messages"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_message_is_a_dead_letter_naming_topic_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    cluster.create_topic("crm.crm.customers", 1, 1).unwrap();
    cluster
        .create_topic("reconlight.dead-letters", 1, 1)
        .unwrap();
    let lines = [
        r#"{"before":null,"after":{"customer_id":"C1","name":"上海联影医疗科技股份有限公司","bank_account_no":"6222020200112233","region":"华东"},"source":{"connector":"postgresql","db":"crm","schema":"crm","table":"customers","ts_ms":1767225600000},"op":"c","ts_ms":1767225600000}"#,
        r#"{"before":null,"after":{"customer_id":"C2""#,
        "null",
    ];
    let file = dir.path().join("customers.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    reconlight_service::publish::produce(
        &reconlight_service::publish::ProduceOptions {
            brokers: brokers.clone(),
            properties: Default::default(),
            topic: "crm.crm.customers".into(),
            partitions: None,
            whole_file: false,
            key_pointers: vec!["/after/customer_id".into()],
        },
        &[file],
    )
    .await
    .unwrap();
    let config = Config::parse(
        &format!(
            r#"
[store]
url = "sqlite://reconlight.db"
[[sources]]
name = "crm"
format = "debezium"
topics = ["^crm\\.crm\\..*"]
[kafka]
brokers = "{brokers}"
[kafka.sinks]
dead_letters = "reconlight.dead-letters"
"#
        ),
        dir.path(),
    )
    .unwrap();
    let mut p = open_with(config.clone()).await;
    let stats = p.run_until_idle(|_, _| {}).await.unwrap();
    assert_eq!(stats.records, 3);
    assert_eq!(stats.applied, 1);
    assert_eq!(stats.dead_letters, 1);
    assert_eq!(stats.ignored.get("tombstone"), Some(&1));
    let letters = p.store.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].source, "crm");
    assert_eq!(letters[0].position, "kafka:crm.crm.customers/0 offset 1");
    assert!(
        letters[0].reason.contains("debezium offset 1"),
        "{}",
        letters[0].reason
    );
    assert_eq!(letters[0].raw, lines[1]);
    assert_eq!(
        p.state.positions.get("crm:kafka:crm.crm.customers/0"),
        Some(&3)
    );

    let mut notifier = Notifier::new(p.store.clone(), Default::default(), p.metrics.clone())
        .with_kafka(config.kafka.as_ref())
        .unwrap();
    let round = notifier.deliver(chrono::Utc::now()).await.unwrap();
    assert_eq!(round.delivered, 1);
    assert_eq!(topic_count(&brokers, "reconlight.dead-letters"), 1);

    // Reopened, nothing is read twice.
    drop(notifier);
    drop(p);
    let mut again = open_with(config).await;
    let stats = again.run_until_idle(|_, _| {}).await.unwrap();
    assert_eq!(stats.records, 0);
}
