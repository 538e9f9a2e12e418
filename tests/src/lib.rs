//! Helpers for end-to-end tests of the `reconlight` binary: where it is, how to run it,
//! and failures that show what was run and what came back.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod browser;

/// The binary under test: `$RECONLIGHT_BIN`, else the workspace's debug build.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("RECONLIGHT_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("debug/reconlight");
    assert!(
        bin.is_file(),
        "{} is missing: build it with `cargo build -p reconlight` (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// Runs `reconlight ARGS`, panicking with the command line and both outputs if it fails.
pub fn reconlight(args: &[&str]) -> String {
    let out = run(args);
    assert!(out.status.success(), "{}", describe(args, &out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `reconlight ARGS` and returns whatever happened.
pub fn run(args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .output()
        .expect("the binary starts")
}

/// The command and its outputs, for a failure message.
pub fn describe(args: &[&str], out: &Output) -> String {
    format!(
        "ran: {} {}\nstatus: {}\n--- stdout\n{}\n--- stderr\n{}",
        binary().display(),
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plain HTTP/1.1 GET; waits up to `wait` for the server to come up. Returns (status, body).
pub fn http_get(port: u16, path: &str, wait: Duration) -> (u16, String) {
    let deadline = Instant::now() + wait;
    let stream = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("nothing listens on 127.0.0.1:{port}: {e}"),
        }
    };
    exchange(
        stream,
        &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
    )
}

/// A GET whose body is bytes (a download): (status, body).
pub fn http_get_bytes(port: u16, path: &str) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("server listens");
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, raw[end + 4..].to_vec())
}

/// Sends a whole request and reads the answer to the end: (status, body).
fn exchange(mut stream: TcpStream, request: &str) -> (u16, String) {
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The PostgreSQL server scripts/test.sh started (`host:port`, user `postgres`, trust auth).
pub fn postgres_server() -> String {
    std::env::var("RECONLIGHT_TEST_PG").unwrap_or_else(|_| {
        panic!("RECONLIGHT_TEST_PG is not set: run scripts/test.sh, which starts a PostgreSQL server for this test")
    })
}

/// Creates a fresh database on the test server and returns its URL.
pub fn postgres_database(name: &str) -> String {
    let server = postgres_server();
    let (host, port) = server.split_once(':').expect("host:port");
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        let out = Command::new("psql")
            .args([
                "-h",
                host,
                "-p",
                port,
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                &sql,
            ])
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    format!("postgres://postgres@{server}/{name}")
}

/// The Alertmanager scripts/test.sh started (`http://127.0.0.1:PORT`).
pub fn alertmanager_url() -> String {
    std::env::var("RECONLIGHT_TEST_ALERTMANAGER").unwrap_or_else(|_| {
        panic!("RECONLIGHT_TEST_ALERTMANAGER is not set: run scripts/test.sh, which starts Alertmanager for this test")
    })
}

/// The tansu broker binary scripts/test.sh fetched (`$RECONLIGHT_TEST_TANSU`).
pub fn tansu_binary() -> PathBuf {
    std::env::var_os("RECONLIGHT_TEST_TANSU")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!("RECONLIGHT_TEST_TANSU is not set: run scripts/test.sh, which fetches the tansu broker for this test")
        })
}

/// Waits until something accepts connections on 127.0.0.1:`port`.
pub fn wait_for_port(port: u16, wait: Duration) {
    let deadline = Instant::now() + wait;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens on 127.0.0.1:{port} after {wait:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Writes a small generated dataset into `dir` and returns its configuration's path, with
/// `extra` TOML put before the sources.
pub fn dataset(dir: &Path, contracts: &str, seed: &str, extra: &str) -> PathBuf {
    reconlight(&[
        "generate",
        "--contracts",
        contracts,
        "--seed",
        seed,
        "--out",
        dir.to_str().unwrap(),
    ]);
    let cfg = dir.join("reconlight.toml");
    let text = std::fs::read_to_string(&cfg).unwrap().replacen(
        "[[sources]]",
        &format!("{extra}\n[[sources]]"),
        1,
    );
    std::fs::write(&cfg, text).unwrap();
    cfg
}

/// A plain HTTP/1.1 POST of a JSON body. Returns (status, body).
pub fn http_post(port: u16, path: &str, body: &str) -> (u16, String) {
    http_post_as(port, path, None, body)
}

/// A POST with `Authorization: Bearer TOKEN`.
pub fn http_post_as(port: u16, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("server listens");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    exchange(
        stream,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// A token made with `reconlight tokens create`.
pub fn create_token(config: &Path, name: &str, role: &str) -> String {
    let out = reconlight(&[
        "tokens",
        "create",
        "--config",
        config.to_str().unwrap(),
        "--name",
        name,
        "--role",
        role,
    ]);
    out.trim().to_string()
}

/// A tansu broker on a free port, storing in memory; stopped when dropped.
pub struct Broker {
    child: Child,
    pub address: String,
}

impl Broker {
    pub fn start() -> Broker {
        let port = free_port();
        let address = format!("127.0.0.1:{port}");
        let url = format!("tcp://{address}");
        let child = Command::new(tansu_binary())
            .args([
                "broker",
                "--storage-engine",
                "memory://tansu/",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tansu starts");
        wait_for_port(port, Duration::from_secs(30));
        Broker { child, address }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Work items by id, as the CLI lists them.
pub fn work_items(config: &str) -> BTreeMap<String, serde_json::Value> {
    json_lines(&reconlight(&[
        "workitems",
        "list",
        "--config",
        config,
        "--format",
        "json",
    ]))
    .into_iter()
    .map(|w| (w["id"].as_str().unwrap().to_string(), w))
    .collect()
}

/// The alerts whose condition holds at the end: (rule, subject, level). Whether one is still
/// pending or already firing depends on where micro-batch boundaries fell (rules are
/// evaluated once per batch), and the Kafka run's batches are not the file run's.
pub fn active_alerts(config: &str) -> BTreeSet<(String, String, String)> {
    json_lines(&reconlight(&[
        "alerts", "list", "--config", config, "--format", "json",
    ]))
    .into_iter()
    .filter(|a| (a["state"] == "pending" || a["state"] == "firing") && a["cleared_at"].is_null())
    .map(|a| {
        let field = |k: &str| a[k].as_str().unwrap().to_string();
        (field("rule_id"), field("subject"), field("level"))
    })
    .collect()
}

/// Sum of `reconlight_events_total` on a running pipeline's /metrics, if it answers.
pub fn events_applied(port: u16) -> Option<u64> {
    std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    let (status, body) = http_get(port, "/metrics", Duration::from_secs(1));
    (status == 200).then(|| {
        body.lines()
            .filter(|l| l.starts_with("reconlight_events_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    })
}

/// What identifies a work item and its outcome, one line each, for comparing two runs.
pub fn work_item_summary(items: &BTreeMap<String, serde_json::Value>) -> BTreeSet<String> {
    items
        .values()
        .map(|w| {
            format!(
                "{} {} {} {} {} {} {}",
                w["id"],
                w["kind"],
                w["contract_no"],
                w["installment"],
                w["bank_ref"],
                w["expected"],
                w["state"]
            )
        })
        .collect()
}

/// One unlabelled metric's value on an instance's /metrics, if it answers.
pub fn metric(port: u16, name: &str) -> Option<f64> {
    TcpStream::connect(("127.0.0.1", port)).ok()?;
    let (status, body) = http_get(port, "/metrics", Duration::from_secs(2));
    (status == 200).then_some(())?;
    body.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// The reference a Kafka run is compared with: the dataset read from its files with
/// `run --until-idle`, then its nightly diff. Returns how many records it ingested.
pub fn file_run_reference(config: &str) -> u64 {
    let out = reconlight(&["run", "--config", config, "--until-idle"]);
    let records = out
        .split("ingested ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a record count in: {out}"));
    reconlight(&["nightly", "--config", config]);
    records
}
