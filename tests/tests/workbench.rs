//! The finance workbench in headless Chromium, driven as a clerk drives it: sign in, filter
//! the queue, open an item, match a candidate credit, comment, resolve, lose a race to a
//! colleague and be told, acknowledge an alert, watch the queue update live, switch the
//! language, export the view. Every page passes axe-core (WCAG 2 A and AA) and every control
//! is reached with the Tab key. What the page did is checked through the API, as a second
//! clerk would see it. Screenshots go to target/workbench/ (the README's come from there).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reconlight_service_tests::browser::Browser;
use reconlight_service_tests::*;
use serde_json::{Value, json};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn api(port: u16, path: &str) -> Value {
    let (status, body) = http_get(port, path, Duration::from_secs(30));
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/workbench")
}

/// axe-core over the page: no WCAG 2 A/AA violation.
fn accessible(b: &mut Browser, page: &str) {
    let axe = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/axe-core/axe.min.js"),
    )
    .unwrap();
    b.eval(&format!("{axe}\n;true"));
    let violations = b.eval(
        "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})\
         .then(r => r.violations.map(v => ({id: v.id, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.html)})))",
    );
    assert_eq!(
        violations,
        json!([]),
        "axe-core finds WCAG violations on {page}"
    );
}

/// Every link, button and field of the page is reached by pressing Tab.
fn keyboard_reaches_everything(b: &mut Browser, page: &str) {
    let controls = b.eval(
        "(() => { let n = 0; document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea, summary')\
           .forEach(e => { if (e.offsetParent !== null || e.tagName === 'SUMMARY') { e.dataset.kb = String(n++); } }); return n; })()",
    );
    let total = controls.as_u64().unwrap();
    assert!(total > 0, "{page} has controls");
    b.eval("document.activeElement && document.activeElement.blur(); window.focus();");
    let mut reached = BTreeSet::new();
    for _ in 0..(total + 20) {
        b.press("Tab", false);
        if let Some(k) = b
            .eval("document.activeElement && document.activeElement.dataset.kb")
            .as_str()
        {
            reached.insert(k.to_string());
        }
        if reached.len() as u64 == total {
            break;
        }
    }
    let missed = b.eval(&format!(
        "Array.from(document.querySelectorAll('[data-kb]')).filter(e => !{:?}.includes(e.dataset.kb)).map(e => e.outerHTML.slice(0, 120))",
        reached.iter().cloned().collect::<Vec<_>>()
    ));
    assert_eq!(
        missed,
        json!([]),
        "controls on {page} the Tab key never reaches"
    );
}

#[test]
fn a_clerk_works_the_queue_in_the_browser() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let data_s = data.to_str().unwrap();
    reconlight(&[
        "demo",
        "--contracts",
        "300",
        "--seed",
        "7",
        "--data-dir",
        data_s,
        "--no-serve",
    ]);
    let config = data.join("reconlight.toml");
    let token = create_token(&config, "wang.fang", "clerk");
    let colleague = create_token(&config, "li.na", "clerk");
    let port = free_port();
    let _server = Server(
        Command::new(binary())
            .args(["serve", "--data-dir", data_s, "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(port, Duration::from_secs(30));
    let base = format!("http://127.0.0.1:{port}");
    let shots = screenshots();

    let mut b = Browser::launch("zh-CN,zh;q=0.9,en;q=0.5");

    eprintln!("workbench: Sign in with the token; the page names the clerk.");
    // Sign in with the token; the page names the clerk.
    b.goto(&format!("{base}/signin"));
    accessible(&mut b, "the sign-in page");
    b.fill("#token", "rl_wrong_token");
    b.click("form[action='/signin'] button");
    b.wait_until_loaded("document.querySelector('.error')");
    assert!(
        b.text(".error").contains("令牌无效"),
        "{}",
        b.text(".error")
    );
    b.fill("#token", &token);
    b.click("form[action='/signin'] button");
    b.wait_until_loaded("document.getElementById('who')");
    assert_eq!(b.text("#who"), "wang.fang");

    eprintln!("workbench: The queue, in Chinese for a browser that asks for it.");
    // The queue, in Chinese for a browser that asks for it.
    assert_eq!(b.text("h1"), "差异待办队列");
    let open = api(port, "/api/v1/work-items?state=active&limit=1");
    assert_eq!(b.text("#total"), open["total"].to_string());
    accessible(&mut b, "the queue");
    keyboard_reaches_everything(&mut b, "the queue");
    b.screenshot(&shots.join("queue-zh.png"));

    eprintln!(
        "workbench: Filter by kind: the page's count is the API's, and every row is that kind."
    );
    // Filter by kind: the page's count is the API's, and every row is that kind.
    b.eval("document.getElementById('kind').value = 'missing_payment'");
    b.click("#filters button[type=submit]");
    b.wait_until_loaded("location.search.includes('kind=missing_payment')");
    let missing = api(
        port,
        "/api/v1/work-items?state=active&kind=missing_payment&limit=1000",
    );
    assert_eq!(b.text("#total"), missing["total"].to_string());
    let kinds = b.eval(
        "Array.from(document.querySelectorAll('table.queue tbody tr td:nth-child(3)')).map(td => td.innerText)",
    );
    let kinds: BTreeSet<String> = serde_json::from_value(kinds).unwrap();
    assert_eq!(kinds, BTreeSet::from(["未回款".to_string()]));
    eprintln!("workbench: Sorted by money at stake, largest first.");
    // Sorted by money at stake, largest first.
    let first = &missing["items"][0];
    assert!(
        b.text("table.queue tbody tr td:nth-child(2)")
            .contains(first["id"].as_str().unwrap())
    );

    eprintln!("workbench: Full-text search by contract number.");
    // Full-text search by contract number.
    let contract = first["contract_no"].as_str().unwrap().to_string();
    b.goto(&format!("{base}/?q={contract}&state=any"));
    let rows = b.eval("document.querySelectorAll('table.queue tbody tr').length");
    let by_contract = api(
        port,
        &format!("/api/v1/work-items?contract_no={contract}&state=any"),
    );
    assert!(rows.as_u64().unwrap() >= by_contract["total"].as_u64().unwrap());
    assert!(rows.as_u64().unwrap() >= 1);

    eprintln!(
        "workbench: A missing payment whose candidate credit has its own open item: one click matches."
    );
    // A missing payment whose candidate credit has its own open item: one click matches.
    let items = api(port, "/api/v1/work-items?state=active&limit=1000");
    let items = items["items"].as_array().unwrap();
    // A credit's items carry its payer (the queue shows it where there is no customer).
    let receipt = items
        .iter()
        .find(|i| i["kind"] == "unmatched_receipt")
        .expect("the demo has an unmatched receipt");
    assert_eq!(receipt["payer"], receipt["details"]["credit"]["payer"]);
    let credit_item = |bank_ref: &str| {
        items.iter().find(|i| {
            i["bank_ref"] == bank_ref
                && (i["kind"] == "unmatched_receipt" || i["kind"] == "suggested_match")
        })
    };
    let (target, candidate, credit) = items
        .iter()
        .filter(|i| i["kind"] == "missing_payment" || i["kind"] == "partial_payment")
        .find_map(|i| {
            i["details"]["candidates"]
                .as_array()?
                .iter()
                .find_map(|c| credit_item(c["bank_ref"].as_str()?).map(|w| (i, c, w)))
        })
        .expect("the demo dataset has a missing payment with a candidate credit");
    let target_id = target["id"].as_str().unwrap();
    let credit_id = credit["id"].as_str().unwrap();
    let bank_ref = candidate["bank_ref"].as_str().unwrap();
    b.goto(&format!("{base}/items/{target_id}"));
    accessible(&mut b, "a work item");
    keyboard_reaches_everything(&mut b, "a work item");
    b.screenshot(&shots.join("item-zh.png"));
    b.click(&format!(
        "form[data-item='{credit_id}'][data-action='match'] button"
    ));
    b.wait_for(
        "document.getElementById('status').innerText.includes('已保存')",
        Duration::from_secs(15),
    );
    let matched = api(port, &format!("/api/v1/work-items/{credit_id}"));
    let last = matched["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["by"], "wang.fang");
    assert_eq!(last["action"], "matched");
    assert!(
        last["note"]
            .as_str()
            .unwrap()
            .contains(target["contract_no"].as_str().unwrap()),
        "{last}"
    );
    assert_eq!(
        api(port, &format!("/api/v1/credits/{bank_ref}"))["credit"]["tx"]["bank_ref"],
        bank_ref
    );

    eprintln!("workbench: Comment, then resolve, on the missing payment.");
    // Comment, then resolve, on the missing payment.
    b.fill("#comment-text", "客户说已于 11 月付款，待银行回单");
    b.click("form[data-action='comment'] button");
    b.wait_for(
        "document.querySelector('table.history').innerText.includes('待银行回单')",
        Duration::from_secs(15),
    );
    b.fill("#resolve-reason", "已人工匹配到银行收款");
    b.click("form[data-action='resolve'] button");
    b.wait_for(
        "document.querySelector('h1').innerText.includes('已解决') || document.querySelector('#live .badge.state-resolved')",
        Duration::from_secs(15),
    );
    let resolved = api(port, &format!("/api/v1/work-items/{target_id}"));
    assert_eq!(resolved["state"], "resolved");
    let notes: Vec<(String, String)> = resolved["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["action"].as_str().unwrap().to_string(),
                h["note"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(notes.contains(&(
        "commented".into(),
        "客户说已于 11 月付款，待银行回单".into()
    )));
    assert!(notes.contains(&("resolved".into(), "已人工匹配到银行收款".into())));

    eprintln!(
        "workbench: Two clerks at once: a colleague assigns the item this clerk is resolving; the page"
    );
    // Two clerks at once: a colleague assigns the item this clerk is resolving; the page
    eprintln!("workbench: keeps what the clerk typed and says plainly that someone acted first.");
    // keeps what the clerk typed and says plainly that someone acted first.
    let other = items
        .iter()
        .find(|i| i["kind"] == "missing_payment" && i["id"] != target["id"])
        .unwrap();
    let other_id = other["id"].as_str().unwrap();
    b.goto(&format!("{base}/items/{other_id}"));
    b.fill("#resolve-reason", "客户确认已付");
    let (status, body) = http_post_as(
        port,
        &format!("/api/v1/work-items/{other_id}/assign"),
        Some(&colleague),
        r#"{"assignee": "li.na"}"#,
    );
    assert_eq!(status, 200, "{body}");
    std::thread::sleep(Duration::from_secs(2));
    b.click("form[data-action='resolve'] button");
    b.wait_for(
        "document.getElementById('status').innerText.includes('另一位同事已先处理了此事项')",
        Duration::from_secs(15),
    );
    assert_eq!(
        api(port, &format!("/api/v1/work-items/{other_id}"))["state"],
        "assigned",
        "the colleague's action stands; the stale one did not land"
    );

    eprintln!("workbench: Live: the queue shows a colleague's assignment without a reload.");
    // Live: the queue shows a colleague's assignment without a reload.
    b.goto(&format!("{base}/?kind=missing_payment"));
    let on_page: Vec<String> = serde_json::from_value(b.eval(
        "Array.from(document.querySelectorAll('table.queue tbody tr')).map(tr => tr.dataset.id)",
    ))
    .unwrap();
    let mut unassigned = on_page.iter().filter(|id| {
        items
            .iter()
            .any(|i| &i["id"] == *id && i["assignee"].is_null() && i["id"] != other["id"])
    });
    let row_id = unassigned
        .next()
        .expect("an unassigned item on the page")
        .clone();
    b.eval("window.__notReloaded = true");
    let (status, body) = http_post_as(
        port,
        &format!("/api/v1/work-items/{row_id}/assign"),
        Some(&colleague),
        r#"{"assignee": "zhao.lei"}"#,
    );
    assert_eq!(status, 200, "{body}");
    b.wait_for(
        &format!(
            "document.querySelector(\"tr[data-id='{row_id}']\") && document.querySelector(\"tr[data-id='{row_id}']\").innerText.includes('zhao.lei')"
        ),
        Duration::from_secs(15),
    );
    assert_eq!(b.eval("window.__notReloaded"), json!(true));

    eprintln!("workbench: Bulk assign two items.");
    // Bulk assign two items.
    let picks: Vec<String> = unassigned.take(2).cloned().collect();
    assert_eq!(picks.len(), 2);
    for id in &picks {
        b.click(&format!("tr[data-id='{id}'] input.pick"));
    }
    b.fill("#bulk-assignee", "wang.fang");
    b.click("#bulk button[value=assign]");
    b.wait_for(
        "document.getElementById('status').innerText.startsWith('2/2')",
        Duration::from_secs(15),
    );
    for id in &picks {
        let w = api(port, &format!("/api/v1/work-items/{id}"));
        assert_eq!(
            (w["state"].as_str(), w["assignee"].as_str()),
            (Some("assigned"), Some("wang.fang"))
        );
    }

    eprintln!(
        "workbench: Export the view: CSV and Excel hold every item of the filter, largest first."
    );
    // Export the view: CSV and Excel hold every item of the filter, largest first.
    let view = api(
        port,
        "/api/v1/work-items?state=active&kind=missing_payment&limit=1",
    );
    let total = view["total"].as_u64().unwrap();
    let top = &view["items"][0];
    let (status, csv) = http_get(
        port,
        "/queue.csv?kind=missing_payment",
        Duration::from_secs(5),
    );
    assert_eq!(status, 200);
    let lines: Vec<&str> = csv.trim_end().split("\r\n").collect();
    assert_eq!(
        lines.len() as u64,
        total + 1,
        "a header and one line per item"
    );
    assert!(
        lines[0]
            .trim_start_matches('\u{feff}')
            .starts_with("item_id,kind,state,contract_no")
    );
    assert!(
        lines[1].starts_with(top["id"].as_str().unwrap()),
        "{}",
        lines[1]
    );
    let (status, xlsx) = http_get_bytes(port, "/queue.xlsx?kind=missing_payment");
    assert_eq!(status, 200);
    let path = dir.path().join("queue.xlsx");
    std::fs::write(&path, &xlsx).unwrap();
    // Python's zipfile checks every entry's CRC; the sheet's rows are read from its XML.
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, zipfile, xml.etree.ElementTree as ET\n\
             z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None\n\
             ns = {'s': 'http://schemas.openxmlformats.org/spreadsheetml/2006/main'}\n\
             rows = ET.fromstring(z.read('xl/worksheets/sheet1.xml')).findall('.//s:row', ns)\n\
             cells = {c.get('r'): ''.join(c.itertext()) for c in rows[1]}\n\
             print(len(rows), cells['A2'], cells['B2'], cells['M2'], cells['O2'])",
        )
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = read.split_whitespace().collect();
    assert_eq!(fields[0], (total + 1).to_string());
    assert_eq!(fields[1], top["id"].as_str().unwrap());
    assert_eq!(fields[2], "missing_payment");
    let expected = top["expected"].as_str().unwrap();
    let exact = if expected.contains('.') {
        expected.trim_end_matches('0').trim_end_matches('.')
    } else {
        expected
    };
    assert_eq!(fields[3], exact, "the expected amount, exact");
    assert_eq!(fields[4], exact, "nothing received: all of it at stake");

    eprintln!("workbench: A contract's story.");
    // A contract's story.
    let contract_no = target["contract_no"].as_str().unwrap();
    b.goto(&format!("{base}/contracts/{contract_no}"));
    assert!(b.text("h1").contains(contract_no));
    let audit = api(port, &format!("/api/v1/contracts/{contract_no}/audit"));
    let audit_rows = b.eval("document.querySelectorAll('table.audit tbody tr').length");
    assert_eq!(
        audit_rows.as_u64().unwrap() as usize,
        audit["entries"].as_array().unwrap().len()
    );
    assert!(b.text(".tracks").contains("CA 认证签署"));
    accessible(&mut b, "a contract");
    b.screenshot(&shots.join("contract-zh.png"));

    eprintln!("workbench: The lights: acknowledge a red alert with a reason.");
    // The lights: acknowledge a red alert with a reason.
    b.goto(&format!("{base}/lights"));
    accessible(&mut b, "the lights");
    keyboard_reaches_everything(&mut b, "the lights");
    let alert_id = b
        .eval("document.querySelector('form.ack').dataset.alert")
        .as_str()
        .unwrap()
        .to_string();
    b.fill(
        &format!("form.ack[data-alert='{alert_id}'] input"),
        "财务已在跟进",
    );
    b.click(&format!("form.ack[data-alert='{alert_id}'] button"));
    b.wait_for(
        &format!("!document.querySelector(\"form.ack[data-alert='{alert_id}']\")"),
        Duration::from_secs(15),
    );
    let alert = api(port, &format!("/api/v1/alerts/{alert_id}"));
    assert_eq!(alert["acknowledged"]["by"], "wang.fang");
    assert_eq!(alert["acknowledged"]["reason"], "财务已在跟进");
    b.screenshot(&shots.join("lights-zh.png"));

    eprintln!("workbench: English, remembered across pages.");
    // English, remembered across pages.
    b.click("a[hreflang=en]");
    b.wait_until_loaded("document.documentElement.lang === 'en'");
    assert_eq!(b.text("h1"), "Lights");
    b.screenshot(&shots.join("lights-en.png"));
    b.goto(&format!("{base}/"));
    assert_eq!(b.text("h1"), "Discrepancy queue");
    accessible(&mut b, "the queue in English");
    b.screenshot(&shots.join("queue-en.png"));
    b.goto(&format!("{base}/items/{target_id}"));
    assert!(b.text("h1").contains("Resolved"), "{}", b.text("h1"));
    b.screenshot(&shots.join("item-en.png"));

    eprintln!(
        "workbench: Signing out forgets the token: the browser is a viewer again and cannot act."
    );
    // Signing out forgets the token: the browser is a viewer again and cannot act.
    b.click("form[action='/signout'] button");
    b.wait_until_loaded("location.pathname === '/signin'");
    let status = b.eval(&format!(
        "fetch('/api/v1/work-items/{other_id}/comment', {{method: 'POST', headers: {{'Content-Type': 'application/json'}}, body: JSON.stringify({{text: 'x'}})}}).then(r => r.status)"
    ));
    assert_eq!(status, json!(403));
}
