//! The lights reach a real Alertmanager, and a running pipeline reloads its rule packs on
//! request and on SIGHUP, reporting a broken rule without stopping.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reconlight_service_tests::*;

fn get_json(url: &str) -> serde_json::Value {
    let (host_port, path) = url
        .trim_start_matches("http://")
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap();
    let port: u16 = host_port.rsplit(':').next().unwrap().parse().unwrap();
    let (status, body) = http_get(port, &path, Duration::from_secs(10));
    assert_eq!(status, 200, "{url}: {body}");
    // Alertmanager may answer chunked; the JSON array is what lies between the brackets.
    let start = body.find(['[', '{']).unwrap();
    let end = body.rfind([']', '}']).unwrap();
    serde_json::from_str(&body[start..=end]).unwrap()
}

#[test]
fn alertmanager_receives_every_firing_alert() {
    let am = alertmanager_url();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dataset(
        dir.path(),
        "300",
        "12",
        &format!("[notifiers.alertmanager]\nurl = \"{am}\"\nresend_interval = \"1m\"\n"),
    );
    let cfg = cfg.to_str().unwrap();
    let out = reconlight(&["run", "--config", cfg, "--until-idle"]);
    assert!(out.contains("notifications: "), "{out}");
    let firing = reconlight(&[
        "alerts", "list", "--config", cfg, "--state", "firing", "--format", "json",
    ]);
    let ours: std::collections::BTreeSet<String> = firing
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(!ours.is_empty());
    let theirs = get_json(&format!("{am}/api/v2/alerts"));
    let received: std::collections::BTreeSet<String> = theirs
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["status"]["state"] == "active")
        .map(|a| a["labels"]["alert_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        received, ours,
        "Alertmanager holds exactly the firing alerts"
    );
    let one = &theirs.as_array().unwrap()[0];
    assert!(
        one["labels"]["alertname"].as_str().unwrap().contains('.'),
        "{one}"
    );
    assert!(["critical", "warning"].contains(&one["labels"]["severity"].as_str().unwrap()));
}

#[test]
fn a_running_pipeline_reloads_its_rules() {
    let dir = tempfile::tempdir().unwrap();
    let packs = dir.path().join("packs");
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/packs");
    copy_dir(&shipped, &packs);
    let port = free_port();
    let cfg = dataset(
        dir.path(),
        "120",
        "3",
        &format!(
            "[rules]\ndir = \"{}\"\n\n[server]\nlisten = \"127.0.0.1:{port}\"\n",
            packs.display()
        ),
    );
    let admin = create_token(&cfg, "ops.lead", "admin");
    let run = Command::new(binary())
        .args(["run", "--config", cfg.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (status, _) = http_get(port, "/api/v1/alerts", Duration::from_secs(60));
    assert_eq!(status, 200);

    // A new rule and a broken one appear in the packs.
    std::fs::write(
        packs.join("finance/big_contract.toml"),
        "id = \"finance.big_contract\"\ntitle = \"Contract over 1,990,000\"\nsubject = [\"contract_no\"]\nsql = \"SELECT contract_no, 'yellow' AS level FROM contracts WHERE amount > 1990000\"\n",
    )
    .unwrap();
    std::fs::write(
        packs.join("finance/broken.toml"),
        "id = \"finance.broken\"\ntitle = \"Broken\"\nsubject = [\"x\"]\nsql = \"SELECT x, 'red' AS level FROM no_such_table\"\n",
    )
    .unwrap();
    let (status, body) = http_post(port, "/api/v1/rules/reload", "{}");
    assert_eq!(
        status, 403,
        "reading is open on 127.0.0.1, reloading rules needs an admin: {body}"
    );
    let (status, body) = http_post_as(port, "/api/v1/rules/reload", Some(&admin), "{}");
    assert_eq!(status, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        report["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "finance.big_contract"),
        "{report}"
    );
    let broken = report["broken"].as_array().unwrap();
    assert_eq!(broken.len(), 1, "{report}");
    assert!(
        broken[0].as_str().unwrap().contains("broken.toml:4"),
        "file and line: {report}"
    );

    // Within a tick the pipeline runs the new rule and lights the broken one red.
    let deadline = Instant::now() + Duration::from_secs(40);
    let (mut new_rule, mut meta) = (false, false);
    while Instant::now() < deadline && !(new_rule && meta) {
        std::thread::sleep(Duration::from_secs(1));
        let (_, body) = http_get(port, "/api/v1/alerts?state=firing", Duration::from_secs(5));
        new_rule = body.contains("finance.big_contract");
        meta = body.contains("reconlight.rule_broken") && body.contains("finance.broken");
    }
    // And SIGHUP reloads too.
    Command::new("kill")
        .args(["-HUP", &run.id().to_string()])
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let _ = Command::new("kill")
        .args(["-INT", &run.id().to_string()])
        .status();
    let out = run.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(new_rule, "the new rule fires after the reload");
    assert!(meta, "the broken rule raises the red meta-alert");
    assert!(
        stdout.contains("reloaded") && stdout.contains("SIGHUP: reloaded"),
        "{stdout}"
    );
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let path = entry.path();
        let target = to.join(entry.file_name());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}
