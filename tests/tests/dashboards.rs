//! The Grafana dashboards, proven against a real Prometheus: a pipeline reads a generated
//! dataset from Kafka (with one record it cannot read), delivers to Alertmanager and runs
//! its nightly diff while Prometheus scrapes it; then every panel's query goes through
//! Prometheus' HTTP API and must answer with at least one series.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reconlight_service_tests::*;

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Percent-encodes a query parameter.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// An instant query; HTTP/1.0 so the answer is never chunked.
fn query(port: u16, expr: &str) -> serde_json::Value {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET /api/v1/query?query={} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
        encode(expr)
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{expr}: {e}: {raw}"))
}

#[test]
fn every_dashboard_panel_answers_from_a_real_prometheus() {
    let prometheus = std::env::var("RECONLIGHT_TEST_PROMETHEUS").unwrap_or_else(|_| {
        panic!("RECONLIGHT_TEST_PROMETHEUS is not set: run scripts/test.sh, which installs Prometheus for this test")
    });
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    reconlight(&[
        "generate",
        "--contracts",
        "300",
        "--seed",
        "5",
        "--out",
        data.to_str().unwrap(),
    ]);
    // One change event the CRM's connector mangled: a dead letter.
    let contracts = data.join("crm/contracts.jsonl");
    let mut text = std::fs::read_to_string(&contracts).unwrap();
    text.push_str("{\"payload\": {\"op\": \"u\", \"after\": \n");
    std::fs::write(&contracts, text).unwrap();
    reconlight(&[
        "kafka",
        "publish-dataset",
        "--brokers",
        &broker.address,
        data.to_str().unwrap(),
    ]);
    let port = free_port();
    let config = data.join("reconlight-kafka.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[kafka.consumer_properties]\n\"session.timeout.ms\" = \"6000\"\n\n[server]\nlisten = \"127.0.0.1:{port}\"\n\n[nightly]\nschedule = \"* * * * *\"\n\n[notifiers.alertmanager]\nurl = \"{}\"\nresend_interval = \"5s\"\n",
        alertmanager_url()
    ));
    std::fs::write(&config, text).unwrap();
    let _pipeline = Process(
        Command::new(binary())
            .args(["run", "--config", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let prom_port = free_port();
    let prom_dir = dir.path().join("prometheus");
    std::fs::create_dir_all(&prom_dir).unwrap();
    std::fs::write(
        prom_dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: reconlight\n    static_configs:\n      - targets: [\"127.0.0.1:{port}\"]\n"
        ),
    )
    .unwrap();
    let _prometheus = Process(
        Command::new(prometheus)
            .arg(format!(
                "--config.file={}",
                prom_dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                prom_dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(prom_port, Duration::from_secs(30));

    // The pipeline reads the whole stream and runs its nightly diff (every minute here).
    let started = Instant::now();
    loop {
        let done = metric(port, "reconlight_kafka_consumer_lag_total") == Some(0.0)
            && metric(port, "reconlight_kafka_assigned_partitions").is_some_and(|n| n > 0.0)
            && metric(port, "reconlight_nightly_business_date_seconds").is_some_and(|d| d > 0.0);
        if done {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "the pipeline did not read the stream and run its nightly diff in 4 minutes"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Enough scrapes for rate() over the run.
    std::thread::sleep(Duration::from_secs(8));
    let up = query(prom_port, "up{job=\"reconlight\"}");
    assert_eq!(up["data"]["result"][0]["value"][1], "1", "{up}");

    let dashboards = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../dashboards");
    let mut names: Vec<_> = std::fs::read_dir(&dashboards)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "reconciliation, pipeline health, handoffs");
    let mut failures = Vec::new();
    let mut checked = 0;
    for path in &names {
        let d: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        for p in d["panels"].as_array().unwrap() {
            for t in p["targets"].as_array().unwrap() {
                let expr = t["expr"].as_str().unwrap();
                checked += 1;
                let answer = query(prom_port, expr);
                let series = answer["data"]["result"].as_array().map_or(0, Vec::len);
                if answer["status"] != "success" || series == 0 {
                    failures.push(format!(
                        "{} / {}: `{expr}`: {}",
                        path.file_name().unwrap().to_string_lossy(),
                        p["title"].as_str().unwrap(),
                        if answer["status"] == "success" {
                            "no series".to_string()
                        } else {
                            answer["error"].to_string()
                        }
                    ));
                }
            }
        }
    }
    println!("{checked} panel queries answered by Prometheus");
    assert!(
        failures.is_empty(),
        "panel queries that error or return nothing:\n{}",
        failures.join("\n")
    );
    let letters = query(
        prom_port,
        "sum(reconlight_dead_letters_total{reason=\"decode\"})",
    );
    assert_eq!(
        letters["data"]["result"][0]["value"][1], "1",
        "the mangled event is counted: {letters}"
    );
}
