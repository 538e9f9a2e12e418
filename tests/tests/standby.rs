//! Two instances of `reconlight run` over one PostgreSQL store and one Kafka stream: the
//! first takes the ingest lease and ingests, the second serves the API and waits. The first
//! is killed with SIGKILL mid-stream; the second takes over within 30 s, resumes from the
//! stored positions and finishes with the work items and alerts of an uninterrupted run of
//! the same dataset, nothing lost or duplicated.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reconlight_service_tests::*;

const CONTRACTS: &str = "600";
const SEED: &str = "31";

/// Where an instance's output goes: beside its configuration.
fn log(config: &Path, stream: &str) -> Stdio {
    Stdio::from(std::fs::File::create(config.with_extension(stream)).unwrap())
}

struct Instance {
    child: Child,
    port: u16,
}

impl Instance {
    fn start(config: &Path, port: u16) -> Instance {
        let child = Command::new(binary())
            .args(["run", "--config", config.to_str().unwrap()])
            .stdout(log(config, "out"))
            .stderr(log(config, "err"))
            .spawn()
            .unwrap();
        Instance { child, port }
    }

    fn active(&self) -> Option<bool> {
        metric(self.port, "reconlight_ingest_active").map(|v| v == 1.0)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    started.elapsed()
}

#[test]
fn a_standby_takes_over_a_killed_instance_and_finishes_the_stream() {
    let broker = Broker::start();
    let root = tempfile::tempdir().unwrap();
    let (files, kafka) = (root.path().join("files"), root.path().join("kafka"));
    for dir in [&files, &kafka] {
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

    // The reference: one uninterrupted run of the dataset's files.
    let file_config = files.join("reconlight.toml");
    let file_config = file_config.to_str().unwrap();
    let records = file_run_reference(file_config) as f64;

    reconlight(&[
        "kafka",
        "publish-dataset",
        "--brokers",
        &broker.address,
        kafka.to_str().unwrap(),
    ]);
    let store = postgres_database("reconlight_standby");
    let base = std::fs::read_to_string(kafka.join("reconlight-kafka.toml"))
        .unwrap()
        .replace(
            "url = \"sqlite://reconlight-kafka.db\"",
            &format!("url = \"{store}\""),
        );
    assert!(base.contains(&store), "the store is PostgreSQL");
    let configs: Vec<(std::path::PathBuf, u16)> = ["a", "b"]
        .iter()
        .map(|name| {
            let port = free_port();
            let path = kafka.join(format!("reconlight-{name}.toml"));
            std::fs::write(
                &path,
                format!(
                    // One static member id for the deployment: the instance that takes over
                    // takes the dead one's place in the group at once.
                    "{base}\n[kafka.consumer_properties]\n\"session.timeout.ms\" = \"6000\"\n\"group.instance.id\" = \"reconlight\"\n\n[server]\nlisten = \"127.0.0.1:{port}\"\n"
                ),
            )
            .unwrap();
            (path, port)
        })
        .collect();

    let a = Instance::start(&configs[0].0, configs[0].1);
    wait_until(
        "the first instance ingests",
        Duration::from_secs(120),
        || a.active() == Some(true),
    );
    let b = Instance::start(&configs[1].0, configs[1].1);
    wait_until(
        "the second instance stands by",
        Duration::from_secs(60),
        || b.active() == Some(false),
    );
    // The standby serves the API from the store meanwhile.
    let (status, _) = http_get(b.port, "/api/v1/work-items", Duration::from_secs(5));
    assert_eq!(status, 200);

    wait_until(
        "the first instance applies a quarter of the stream",
        Duration::from_secs(180),
        || events_applied(a.port).is_some_and(|n| n as f64 >= records / 4.0),
    );
    let mut a = a;
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let at_kill = Instant::now();

    let took_over = wait_until("the standby takes over", Duration::from_secs(30), || {
        b.active() == Some(true)
    });
    println!("the standby took over {took_over:?} after the kill");

    // It reads to the end of the stream: nothing more applied for 10 seconds. (Whether it
    // read everything is what the comparison below decides.)
    let (mut last, mut since) = (None, Instant::now());
    wait_until(
        "the standby reads to the end",
        Duration::from_secs(300),
        || {
            let now = events_applied(b.port);
            if now != last || now.is_none_or(|n| n == 0) {
                (last, since) = (now, Instant::now());
            }
            since.elapsed() >= Duration::from_secs(10)
        },
    );
    let out = std::fs::read_to_string(configs[1].0.with_extension("out")).unwrap();
    assert!(out.contains("took over ingesting"), "{out}");
    println!("finished {:?} after the kill", at_kill.elapsed());
    let mut b = b;
    let _ = Command::new("kill")
        .args(["-TERM", &b.child.id().to_string()])
        .status();
    b.child.wait().unwrap();

    let config = configs[1].0.to_str().unwrap();
    reconlight(&["nightly", "--config", config]);
    let (items, reference) = (work_items(config), work_items(file_config));
    assert!(items.len() > 30, "the dataset's problems: {}", items.len());
    assert_eq!(
        work_item_summary(&items),
        work_item_summary(&reference),
        "the same work items"
    );
    let alerts = active_alerts(config);
    assert!(!alerts.is_empty());
    assert_eq!(alerts, active_alerts(file_config), "the same active alerts");
    // Nothing lost or read twice shows in the work items and alerts above; the records
    // that could not be used are the same too.
    let letters = |config: &str| {
        json_lines(&reconlight(&[
            "deadletters",
            "list",
            "--config",
            config,
            "--format",
            "json",
        ]))
        .len()
    };
    assert_eq!(
        letters(config),
        letters(file_config),
        "the same dead letters"
    );
}
