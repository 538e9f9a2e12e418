//! The `reconlight` binary end to end: the demo, the listing commands, the audit trail and
//! the HTTP server, as a user runs them.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reconlight_service_tests::*;

#[test]
fn demo_then_the_commands_a_clerk_uses() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let data_s = data.to_str().unwrap();
    let out = reconlight(&[
        "demo",
        "--contracts",
        "300",
        "--seed",
        "5",
        "--data-dir",
        data_s,
        "--no-serve",
    ]);
    assert!(
        out.contains(
            "generating a company's CRM, e-signature and bank data (300 contracts, seed 5)"
        ),
        "{out}"
    );
    assert!(out.contains("nightly diff for 2026-10-31"), "{out}");
    assert!(out.contains("CRM-vs-bank difference rate"), "{out}");
    assert!(out.contains("dead letters: 0"), "{out}");

    let truth = std::fs::read_to_string(data.join("truth.jsonl")).unwrap();
    let items = reconlight(&[
        "workitems",
        "list",
        "--data-dir",
        data_s,
        "--format",
        "json",
        "--state",
        "open",
    ]);
    assert_eq!(
        items.lines().count(),
        truth.lines().count(),
        "one open work item per injected problem"
    );
    for line in truth.lines() {
        let t: serde_json::Value = serde_json::from_str(line).unwrap();
        let found = items.lines().any(|l| {
            let w: serde_json::Value = serde_json::from_str(l).unwrap();
            w["kind"] == t["kind"]
                && w["contract_no"] == t["contract_no"]
                && w["installment"] == t["installment"]
                && w["bank_ref"] == t["bank_ref"]
        });
        assert!(found, "no work item for {line}");
    }

    // A second demo run adds nothing.
    let again = reconlight(&[
        "demo",
        "--contracts",
        "300",
        "--seed",
        "5",
        "--data-dir",
        data_s,
        "--no-serve",
    ]);
    assert!(again.contains("ingested 0 records"), "{again}");
    assert!(
        again.contains("0 opened, 0 reopened, 0 updated, 0 auto-resolved"),
        "{again}"
    );

    let table = reconlight(&["alerts", "list", "--data-dir", data_s, "--state", "firing"]);
    assert!(
        table.contains("finance.duplicate_payment")
            || table.contains("finance.installment_overdue"),
        "{table}"
    );
    assert!(
        reconlight(&["audit", "verify", "--data-dir", data_s]).starts_with("audit trail intact")
    );
    let trail = reconlight(&["audit", "show", "--data-dir", data_s, "HT-2026-000002"]);
    assert!(
        trail.contains("status") && trail.contains("crm/contracts.jsonl line"),
        "{trail}"
    );

    // The server: the page, the API and the metrics.
    let port = free_port();
    let mut server = Command::new(binary())
        .args([
            "serve",
            "--data-dir",
            data_s,
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (status, page) = http_get(port, "/?lang=en", Duration::from_secs(20));
    let (_, api) = http_get(
        port,
        "/api/v1/work-items?state=open&limit=1",
        Duration::from_secs(5),
    );
    let (_, metrics) = http_get(port, "/metrics", Duration::from_secs(5));
    server.kill().unwrap();
    let _ = server.wait();
    assert_eq!(status, 200);
    assert!(page.contains("Discrepancy queue"), "{page}");
    let v: serde_json::Value = serde_json::from_str(&api).unwrap();
    assert_eq!(v["total"], truth.lines().count());
    assert!(
        metrics.contains("reconlight_work_items_open{kind=\"missing_payment\"}"),
        "{metrics}"
    );
}

#[test]
fn errors_name_the_input() {
    let out = run(&[
        "run",
        "--config",
        "/nonexistent/reconlight.toml",
        "--until-idle",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/reconlight.toml"),
        "{}",
        describe(&[], &out)
    );

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "[business]\ntime_zone = \"Asia/Shanghai\"\ncolour = \"red\"\n",
    )
    .unwrap();
    let out = run(&["run", "--config", cfg.to_str().unwrap(), "--until-idle"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 3") && err.contains("unknown field `colour`"),
        "{err}"
    );
}

/// A process manager stops the service with SIGTERM, a person with Ctrl-C (SIGINT), also
/// while it sleeps between polls: either way it ends cleanly and promptly, and a restart
/// finds everything committed.
#[test]
fn sigterm_and_sigint_stop_the_service_cleanly() {
    for signal in ["TERM", "INT"] {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let cfg = dataset(
            dir.path(),
            "100",
            "6",
            &format!("[server]\nlisten = \"127.0.0.1:{port}\"\n"),
        );
        let cfg_s = cfg.to_str().unwrap();
        let mut service = Command::new(binary())
            .args(["run", "--config", cfg_s])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_port(port, Duration::from_secs(120));
        // Into the poll sleep.
        std::thread::sleep(Duration::from_millis(1500));
        let sent = Instant::now();
        Command::new("kill")
            .args([&format!("-{signal}"), &service.id().to_string()])
            .status()
            .unwrap();
        let status = loop {
            if let Some(s) = service.try_wait().unwrap() {
                break s;
            }
            assert!(
                sent.elapsed() < Duration::from_secs(20),
                "SIG{signal}: still running after 20 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let out = service.wait_with_output().unwrap();
        assert!(
            status.success(),
            "SIG{signal}: {status}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(&format!("SIG{signal}: stopping")),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let again = reconlight(&["run", "--config", cfg_s, "--until-idle"]);
        assert!(
            again.contains("ingested 0 records"),
            "nothing left unapplied: {again}"
        );
    }
}
