//! A real SMTP server for the email tests: aiosmtpd (from the Python scripts/test.sh
//! installs) on 127.0.0.1, writing what it receives to a Maildir, with STARTTLS from a
//! certificate authority made with openssl; and an independent MIME reader.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command};

use serde_json::Value;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A certificate authority and a certificate for 127.0.0.1 it signed, made with openssl.
pub fn certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=reconlight test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "smtp.key",
        "-out",
        "smtp.csr",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "smtp.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "smtp.pem",
    ]);
}

pub struct Smtpd(Child);

impl Drop for Smtpd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// aiosmtpd on 127.0.0.1 (with STARTTLS required when `tls`, from `certificates`),
/// writing what it receives to `dir/maildir`.
pub fn start_smtpd(dir: &Path, port: u16, tls: bool) -> Smtpd {
    let python = std::env::var("RECONLIGHT_TEST_SMTPD_PYTHON").unwrap_or_else(|_| {
        panic!("RECONLIGHT_TEST_SMTPD_PYTHON is not set: run scripts/test.sh, which installs aiosmtpd for this test")
    });
    let smtpd = Smtpd(
        Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(if tls {
                &["--tlscert", "smtp.pem", "--tlskey", "smtp.key"][..]
            } else {
                &[][..]
            })
            .args(["-c", "aiosmtpd.handlers.Mailbox", "maildir"])
            .current_dir(dir)
            .spawn()
            .expect("aiosmtpd starts"),
    );
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return smtpd;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("aiosmtpd does not listen on {port}");
}

pub struct MailParts {
    pub subject: String,
    pub plain: String,
    pub html: String,
    /// Attachments: file name and text.
    pub attachments: Vec<(String, String)>,
}

/// The decoded subject and text parts of a mail, with Python's email package (the same
/// interpreter as the SMTP server): an independent MIME reader.
pub fn mail_parts(raw: &str) -> MailParts {
    let python = std::env::var("RECONLIGHT_TEST_SMTPD_PYTHON").unwrap();
    let script = r#"
import email, email.policy, json, sys
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
out = {"subject": str(m["subject"]), "plain": "", "html": "", "attachments": []}
for part in m.walk():
    if part.get_filename():
        out["attachments"].append([part.get_filename(), part.get_content()])
    elif part.get_content_type() == "text/plain": out["plain"] = part.get_content()
    elif part.get_content_type() == "text/html": out["html"] = part.get_content()
print(json.dumps(out))
"#;
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(raw.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    MailParts {
        subject: v["subject"].as_str().unwrap().to_string(),
        plain: v["plain"].as_str().unwrap().to_string(),
        html: v["html"].as_str().unwrap().to_string(),
        attachments: v["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a[0].as_str().unwrap().to_string(),
                    a[1].as_str().unwrap().to_string(),
                )
            })
            .collect(),
    }
}

/// Every mail the server received, raw.
pub fn received(dir: &Path) -> Vec<String> {
    let maildir = dir.join("maildir").join("new");
    match std::fs::read_dir(&maildir) {
        Ok(entries) => entries
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect(),
        Err(_) => Vec::new(),
    }
}
