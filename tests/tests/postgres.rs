//! The whole demo dataset with PostgreSQL as the store gives the same work items and alerts
//! as with SQLite, and a re-run on PostgreSQL changes nothing.

use reconlight_service_tests::*;

fn work_items(data: &str) -> Vec<serde_json::Value> {
    let out = reconlight(&["workitems", "list", "--data-dir", data, "--format", "json"]);
    let mut items: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    items.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    items
}

fn alerts(data: &str) -> Vec<serde_json::Value> {
    let out = reconlight(&["alerts", "list", "--data-dir", data, "--format", "json"]);
    let mut items: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    items.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    items
}

#[test]
fn postgres_store_gives_the_same_result_as_sqlite() {
    let url = postgres_database("reconlight_demo");
    let dir = tempfile::tempdir().unwrap();
    let sqlite = dir.path().join("sqlite");
    let pg = dir.path().join("postgres");
    for d in [&sqlite, &pg] {
        reconlight(&[
            "generate",
            "--contracts",
            "2000",
            "--seed",
            "42",
            "--out",
            d.to_str().unwrap(),
        ]);
    }
    let config = pg.join("reconlight.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "url = \"sqlite://reconlight.db\"",
        &format!("url = \"{url}\""),
    );
    std::fs::write(&config, text).unwrap();

    for d in [&sqlite, &pg] {
        let d = d.to_str().unwrap();
        reconlight(&["run", "--data-dir", d, "--until-idle"]);
        reconlight(&["nightly", "--data-dir", d]);
    }
    let (s, p) = (sqlite.to_str().unwrap(), pg.to_str().unwrap());
    let items = work_items(p);
    assert!(
        items.len() > 200,
        "the demo dataset has its injected problems: {}",
        items.len()
    );
    assert_eq!(
        items,
        work_items(s),
        "identical work items, field for field"
    );
    assert_eq!(alerts(p), alerts(s));

    let again = reconlight(&["run", "--data-dir", p, "--until-idle"]);
    assert!(again.contains("ingested 0 records"), "{again}");
    let nightly = reconlight(&["nightly", "--data-dir", p]);
    assert!(
        nightly.contains("0 opened, 0 reopened, 0 updated, 0 auto-resolved"),
        "{nightly}"
    );
    assert_eq!(work_items(p), work_items(s));
    assert!(reconlight(&["audit", "verify", "--data-dir", p]).starts_with("audit trail intact"));

    // Only one instance runs the nightly diff: while another holds the lock, it refuses.
    let server = postgres_server();
    let (host, port) = server.split_once(':').unwrap();
    let mut holder = std::process::Command::new("psql")
        .args([
            "-h",
            host,
            "-p",
            port,
            "-U",
            "postgres",
            "-d",
            "reconlight_demo",
            "-c",
        ])
        .arg("BEGIN; SELECT pg_advisory_xact_lock(1380270927); SELECT pg_sleep(15); COMMIT;")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let out = run(&["nightly", "--data-dir", p]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(!out.status.success(), "{}", describe(&["nightly"], &out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("another reconlight instance is running the nightly diff"),
        "{}",
        describe(&["nightly"], &out)
    );
}
