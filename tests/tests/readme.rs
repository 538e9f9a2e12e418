//! The README's tours, run as written: every command of "A five-minute tour" and of "Kafka",
//! taken from README.md itself, with `/tmp/acme` in a temporary directory and the broker
//! scripts/test.sh provides in place of `127.0.0.1:9092`. A command that fails fails the
//! test; the ones that keep running (`serve`, `run` without `--until-idle`) are started,
//! checked over HTTP and stopped.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reconlight_service_tests::*;

/// The commands of the first ```sh block under `## {heading}`, comments removed.
fn commands(readme: &str, heading: &str) -> Vec<String> {
    let section = readme
        .split(&format!("\n## {heading}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("README.md has no `## {heading}`"));
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .unwrap_or_else(|| panic!("`## {heading}` has no sh block"));
    block
        .lines()
        .map(|l| match l.find("  #") {
            Some(i) => l[..i].trim().to_string(),
            None => l.trim().to_string(),
        })
        .filter(|l| !l.is_empty())
        .collect()
}

/// Runs one tour line in a shell from the repository's root, `$B` the binary under test.
fn shell(line: &str, root: &Path) -> std::process::Output {
    Command::new("sh")
        .args(["-c", line])
        .env("B", binary())
        .current_dir(root)
        .output()
        .unwrap()
}

fn set_listen(config: &Path, port: u16) {
    let mut text = std::fs::read_to_string(config).unwrap();
    text.push_str(&format!("\n[server]\nlisten = \"127.0.0.1:{port}\"\n"));
    std::fs::write(config, text).unwrap();
}

/// Starts a long-running tour command, waits until `ready` says it did its work, stops it.
fn long_running(line: &str, root: &Path, port: u16, ready: impl Fn(u16) -> bool) {
    let mut child = Command::new("sh")
        .args(["-c", &format!("exec {line}")])
        .env("B", binary())
        .current_dir(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !ready(port) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("`{line}` stopped: {status}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "`{line}`: not done in 4 minutes"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert!(
        status.success() || status.signal() == Some(15),
        "`{line}` did not stop on SIGTERM: {status}"
    );
}

#[test]
fn the_readme_tours_run_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let acme = dir.path().join("acme");
    let acme = acme.to_str().unwrap();
    let broker = Broker::start();
    let port = free_port();

    let tour = commands(&readme, "A five-minute tour");
    let kafka = commands(&readme, "Kafka");
    assert!(tour.len() >= 10 && kafka.len() == 2, "{tour:#?} {kafka:#?}");
    let mut records = 0u64;
    for line in tour.iter().chain(&kafka) {
        if line.starts_with("B=") {
            continue; // the binary under test is $B already
        }
        let line = line
            .replace("/tmp/acme", acme)
            .replace("127.0.0.1:9092", &broker.address);
        if line.starts_with("$B serve ") {
            set_listen(&Path::new(acme).join("reconlight.toml"), port);
            long_running(&line, &root, port, |port| {
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                    && http_get(port, "/api/v1/work-items", Duration::from_secs(2)).0 == 200
            });
            continue;
        }
        if line.starts_with("$B run ") && !line.contains("--until-idle") {
            let config = Path::new(acme).join("reconlight-kafka.toml");
            set_listen(&config, port);
            long_running(&line, &root, port, |port| {
                events_applied(port).is_some_and(|n| n >= records)
            });
            continue;
        }
        let out = shell(&line, &root);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "`{line}` failed: {}\n{text}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        if line.contains(" run ") && line.contains("--until-idle") {
            // "ingested N records in B batches: A applied, ...": the Kafka run applies the same.
            records = text
                .split(" applied")
                .next()
                .and_then(|s| s.rsplit(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("an applied count in: {text}"));
        }
        if line.contains("audit verify") {
            assert!(!text.contains("broken"), "{text}");
        }
    }
    assert!(
        records > 10_000,
        "the tour's dataset: {records} records applied"
    );
}
