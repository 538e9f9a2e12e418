//! Headless Chromium driven over the DevTools protocol, the way a clerk uses the workbench:
//! open a page, fill a field, press a button, read what the page shows, take a screenshot.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// One browser with one tab; killed when dropped.
pub struct Browser {
    child: Child,
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

/// The Chromium binary: `$RECONLIGHT_TEST_CHROMIUM`, else `chromium` (Debian's package,
/// which scripts/test.sh installs).
fn chromium() -> String {
    std::env::var("RECONLIGHT_TEST_CHROMIUM").unwrap_or_else(|_| "chromium".into())
}

impl Browser {
    /// Starts Chromium with a fresh profile, a 1400x1000 window, and `accept_language` as
    /// the language the browser asks pages for.
    pub fn launch(accept_language: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
                "--window-size=1400,1000",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e} (scripts/test.sh installs Debian's chromium)",
                    chromium()
                )
            });
        // Chromium says where its DevTools endpoint is on stderr; keep draining it after.
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.split("DevTools listening on ").nth(1) {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let browser_url = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("Chromium prints its DevTools address within a minute");
        let port: u16 = browser_url
            .trim_start_matches("ws://")
            .split(['/', ':'])
            .nth(1)
            .and_then(|p| p.parse().ok())
            .expect("a port in the DevTools address");
        let targets = devtools_targets(port);
        let page = targets
            .as_array()
            .and_then(|t| t.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("a page target")
            .to_string();
        let (ws, _) = tungstenite::connect(page.as_str()).expect("the page's DevTools socket");
        // A command that never answers fails the test instead of hanging it.
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_secs(90))).unwrap();
        }
        let mut b = Browser {
            child,
            ws,
            next_id: 0,
            _profile: profile,
        };
        let version = b.call("Browser.getVersion", json!({}));
        let agent = version["userAgent"].as_str().unwrap_or("").to_string();
        b.call(
            "Emulation.setUserAgentOverride",
            json!({"userAgent": agent, "acceptLanguage": accept_language}),
        );
        b.call("Page.enable", json!({}));
        b
    }

    /// One DevTools command and its result; a protocol error fails the test.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws.send(Message::Text(msg.into())).unwrap();
        loop {
            let read = self.ws.read();
            let text =
                match read.unwrap_or_else(|e| panic!("{method}: no answer from Chromium: {e}")) {
                    Message::Text(t) => t.to_string(),
                    _ => continue,
                };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["id"] == id {
                if let Some(e) = v.get("error") {
                    panic!("{method} failed: {e}");
                }
                return v["result"].clone();
            }
        }
    }

    /// Runs JavaScript in the page (awaiting a promise) and returns its value; an
    /// exception fails the test with its text.
    pub fn eval(&mut self, script: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": script, "awaitPromise": true, "returnByValue": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("the page threw running {script}: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Waits until `condition` (JavaScript) is true, up to `wait`. A condition that throws
    /// is not true yet: mid-navigation the page may have no document at all.
    pub fn wait_for(&mut self, condition: &str, wait: Duration) {
        let deadline = Instant::now() + wait;
        let check = format!(
            "(() => {{ try {{ return !!({condition}); }} catch (e) {{ return false; }} }})()"
        );
        loop {
            if self.eval(&check) == json!(true) {
                return;
            }
            if Instant::now() >= deadline {
                let page = self.eval("location.href");
                let status =
                    self.eval("(document.getElementById('status') || {innerText: ''}).innerText");
                panic!("waited {wait:?} for `{condition}` on {page} (status line: {status})");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Opens `url` and waits until the page and its script are ready.
    pub fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
        self.wait_until_loaded(&format!("location.href.startsWith({})", json!(url)));
    }

    /// Waits for a page that `condition` recognizes to finish loading (after a click that
    /// navigates).
    pub fn wait_until_loaded(&mut self, condition: &str) {
        self.wait_for(
            &format!(
                "({condition}) && document.readyState === 'complete' && document.body && document.body.dataset.ready === '1'"
            ),
            Duration::from_secs(30),
        );
    }

    /// The text of the first element `selector` picks ("" when there is none).
    pub fn text(&mut self, selector: &str) -> String {
        self.eval(&format!(
            "(document.querySelector({}) || {{innerText: ''}}).innerText",
            json!(selector)
        ))
        .as_str()
        .unwrap_or("")
        .trim()
        .to_string()
    }

    /// Types `value` into the field `selector` as a user would (focus, then the keys' text).
    pub fn fill(&mut self, selector: &str, value: &str) {
        self.eval(&format!(
            "(() => {{ const e = document.querySelector({s}); if (!e) throw new Error('no ' + {s}); e.focus(); e.value = ''; }})()",
            s = json!(selector)
        ));
        self.call("Input.insertText", json!({"text": value}));
    }

    /// Clicks the element `selector` picks.
    pub fn click(&mut self, selector: &str) {
        self.eval(&format!(
            "(() => {{ const e = document.querySelector({s}); if (!e) throw new Error('nothing to click at ' + {s}); e.click(); }})()",
            s = json!(selector)
        ));
    }

    /// Presses a key (`Tab`, `Enter`) on the focused element.
    pub fn press(&mut self, key: &str, shift: bool) {
        let code = match key {
            "Tab" => 9,
            "Enter" => 13,
            _ => 0,
        };
        for kind in ["rawKeyDown", "keyUp"] {
            self.call(
                "Input.dispatchKeyEvent",
                json!({"type": kind, "key": key, "code": key, "windowsVirtualKeyCode": code,
                       "modifiers": if shift { 8 } else { 0 }}),
            );
        }
    }

    /// A PNG of the top of the page as a reader first sees it (nothing focused).
    pub fn screenshot(&mut self, path: &Path) {
        self.eval(
            "document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); true",
        );
        let r = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": false}),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("screenshot data"))
            .unwrap();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }
}

/// The DevTools HTTP endpoint's target list (it keeps connections open, so the body is
/// read by its Content-Length).
fn devtools_targets(port: u16) -> Value {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("the DevTools endpoint");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // The Host header is where the target list says the sockets are.
    stream
        .write_all(format!("GET /json/list HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes())
        .unwrap();
    let mut reader = BufReader::new(stream);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    serde_json::from_slice(&body).expect("the DevTools target list")
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
