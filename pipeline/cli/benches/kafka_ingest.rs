//! Ingest throughput: Debezium decoding alone, and the whole path from Kafka topics to
//! committed state (decode, apply, installments, matching, rules, one store transaction per
//! micro-batch), beside the same dataset read from its files:
//!
//!     cargo bench -p reconlight --bench kafka_ingest [-- CONTRACTS RUNS]
//!
//! (1000 contracts by default: a month's camt.053 file of a larger dataset is over the
//! 1 MB a broker accepts per message by default.)
//!
//! The topics live on librdkafka's in-process mock cluster unless
//! `RECONLIGHT_BENCH_BROKERS=host:port` names a real broker. Prints medians in events per
//! second.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reconlight_formats::debezium::{self, DebeziumMessage, DebeziumOptions};
use reconlight_service::config::Config;
use reconlight_service::ingest::Pipeline;
use reconlight_service::metrics::Metrics;
use reconlight_service::publish::{ProduceOptions, produce};
use reconlight_testkit::{dataset_kafka_config, dataset_topics, generate};

// As the binary does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Every Debezium line the dataset holds.
fn debezium_lines(dir: &std::path::Path) -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("crm"))
        .expect("crm directory")
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn bench_decode(lines: &[String], runs: usize) -> f64 {
    let options = DebeziumOptions::default();
    let mut rates = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let mut changes = 0usize;
        // Enough repetitions for a measurable interval.
        for _ in 0..5 {
            for line in lines {
                if let Ok(DebeziumMessage::Change(c)) = debezium::decode(line, &options) {
                    changes += 1;
                    std::hint::black_box(c);
                }
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        assert!(changes > 0, "the dataset's CRM events decode");
        rates.push((lines.len() * 5) as f64 / elapsed);
    }
    median(rates)
}

/// One run into a fresh store.
struct Run {
    events: u64,
    /// From opening the pipeline to every event committed.
    seconds: f64,
    /// Events per second after the first batch was committed (for Kafka: past the group
    /// join and the first fetch of every partition).
    steady: f64,
}

async fn run_once(mut config: Config, store: &std::path::Path) -> Run {
    config.store.url = format!("sqlite://{}", store.display());
    let started = Instant::now();
    let mut p = Pipeline::open(config, Arc::new(Metrics::new()))
        .await
        .expect("pipeline opens");
    let mut first: Option<(Instant, u64)> = None;
    let mut last = (Instant::now(), 0);
    let stats = p
        .run_until_idle(|done, _| {
            if done > 0 {
                let now = Instant::now();
                first.get_or_insert((now, done));
                last = (now, done);
            }
        })
        .await
        .expect("run");
    let steady = match first {
        Some((t0, n0)) if last.1 > n0 => {
            (last.1 - n0) as f64 / last.0.duration_since(t0).as_secs_f64()
        }
        _ => f64::NAN,
    };
    Run {
        events: stats.records,
        seconds: started.elapsed().as_secs_f64(),
        steady,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("RECONLIGHT_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let contracts: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let runs: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(3);
    let work = tempfile::tempdir().expect("temporary directory");
    let dir = work.path().join("data");
    generate(contracts, 31, &dir).expect("generate");

    let lines = debezium_lines(&dir);
    let decode = bench_decode(&lines, runs.max(3));
    println!(
        "Debezium decode alone: {:.0} events/s (median of {}, {} events per run)",
        decode,
        runs.max(3),
        lines.len() * 5
    );

    let file_config = Config::load(&dir.join("reconlight.toml")).expect("file configuration");
    let mut file_rates = Vec::new();
    let mut file_events = 0;
    for run in 0..runs {
        let r = run_once(
            file_config.clone(),
            &work.path().join(format!("files-{run}.db")),
        )
        .await;
        file_rates.push(r.events as f64 / r.seconds);
        file_events = r.events;
        eprintln!(
            "  files run {run}: {} events in {:.2}s",
            r.events, r.seconds
        );
    }

    // The mock broker keeps about 5 MiB per partition: spread the CRM events thin.
    const PARTITIONS: i32 = 16;
    let mock;
    let (brokers, create) = match std::env::var("RECONLIGHT_BENCH_BROKERS") {
        Ok(b) => (b, Some(PARTITIONS)),
        Err(_) => {
            mock = rdkafka::mocking::MockCluster::new(1).expect("mock cluster");
            for t in dataset_topics(&dir) {
                mock.create_topic(&t.topic, PARTITIONS, 1).expect("topic");
            }
            (mock.bootstrap_servers(), None)
        }
    };
    for t in dataset_topics(&dir) {
        let options = ProduceOptions {
            brokers: brokers.clone(),
            properties: Default::default(),
            topic: t.topic.clone(),
            partitions: create,
            whole_file: t.whole_file,
            key_pointers: t.key_pointers.clone(),
        };
        produce(&options, &t.files).await.expect("produce");
    }
    let mut kafka_rates = Vec::new();
    let mut kafka_steady = Vec::new();
    for run in 0..runs {
        // A group of its own per run: each starts from the beginning, as a new store does.
        let text = dataset_kafka_config(&dir, &brokers).replace(
            "group_id = \"reconlight\"",
            &format!(
                "group_id = \"reconlight-bench-{}-{run}\"",
                std::process::id()
            ),
        );
        let config = Config::parse(&text, &dir).expect("kafka configuration");
        let r = run_once(config, &work.path().join(format!("kafka-{run}.db"))).await;
        assert_eq!(
            r.events, file_events,
            "every event of the dataset read from the topics"
        );
        kafka_rates.push(r.events as f64 / r.seconds);
        kafka_steady.push(r.steady);
        eprintln!(
            "  kafka run {run}: {} events in {:.2}s, {:.0} events/s after the first batch",
            r.events, r.seconds, r.steady
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "Kafka topics -> committed state: {:.0} events/s end to end, joining the group included; {:.0} events/s after the first batch (medians of {runs}, {contracts} contracts, {file_events} events)",
        median(kafka_rates),
        median(kafka_steady)
    );
    println!(
        "files -> committed state:        {:.0} events/s (median of {runs})",
        median(file_rates)
    );
}
