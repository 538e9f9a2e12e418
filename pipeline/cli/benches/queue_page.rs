//! The workbench's queue with 100,000 open work items in a SQLite store: how long a
//! browser waits for the first page, sorted and filtered, over a real HTTP connection.
//!
//!     cargo bench -p reconlight --bench queue_page [-- ITEMS RUNS]
//!
//! Prints the median and the slowest of RUNS requests for each view.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, TimeZone, Utc};
use reconlight_core::state::{Dirty, LiveState};
use reconlight_core::workitems::{Finding, HistoryEntry, WorkItem, WorkItemKind, WorkItemState};
use reconlight_formats::model::{Contract, ContractStatus, Currency, Customer, Money};
use reconlight_service::access::{AuthConfig, Role};
use reconlight_service::metrics::Metrics;
use reconlight_service::server::ServerOptions;
use reconlight_service::store::Store;
use rust_decimal::Decimal;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A queue of `n` open items over 5,000 customers and 20,000 contracts.
fn state(n: usize) -> (LiveState, Dirty) {
    let mut s = LiveState::default();
    let mut d = Dirty::default();
    let day0 = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
    for c in 0..5_000 {
        let id = format!("C{c:05}");
        s.customers.insert(
            id.clone(),
            Customer {
                customer_id: id,
                name: format!("客户{c}号科技有限公司"),
                bank_account_no: None,
                region: Some(["华东", "华北", "华南", "西南"][c % 4].into()),
            },
        );
    }
    for k in 0..20_000 {
        let no = format!("HT-2026-{k:06}");
        s.contracts.insert(
            no.clone(),
            Contract {
                contract_no: no,
                customer_id: format!("C{:05}", k % 5_000),
                owner_id: Some(format!("S{:03}", k % 40)),
                region: None,
                amount: Money::new(Decimal::new(10_000_000, 2), Currency::CNY),
                status: ContractStatus::Signed,
                signed_at: None,
                signature_method: None,
                accepted_at: None,
                payment_terms: String::new(),
                updated_at: None,
                updated_by: None,
                updated_ip: None,
            },
        );
    }
    let kinds = [
        WorkItemKind::MissingPayment,
        WorkItemKind::PartialPayment,
        WorkItemKind::UnmatchedReceipt,
        WorkItemKind::SuggestedMatch,
        WorkItemKind::Overpayment,
    ];
    let at = Utc.with_ymd_and_hms(2026, 10, 31, 15, 59, 0).unwrap();
    for i in 0..n {
        let kind = kinds[i % kinds.len()];
        let no = format!("HT-2026-{:06}", (i * 7) % 20_000);
        let expected = Decimal::new(((i * 7919) % 5_000_000) as i64 * 100 + 100_000, 2);
        let finding = Finding {
            kind,
            contract_no: Some(no.clone()),
            installment: Some((i % 4) as u32 + 1),
            bank_ref: Some(format!("CR{i:08}")),
            customer_id: Some(format!("C{:05}", ((i * 7) % 20_000) % 5_000)),
            currency: Some("CNY".into()),
            expected: Some(expected),
            received: Some(expected / Decimal::from(3)),
            summary: format!("{no} installment {}: expected CNY {expected}", i % 4 + 1),
            details: serde_json::json!({"due_date": "2026-09-01"}),
        };
        let first = day0 + chrono::Duration::days((i % 150) as i64);
        let w = WorkItem {
            id: finding.id(),
            state: if i % 10 == 0 {
                WorkItemState::Assigned
            } else {
                WorkItemState::Open
            },
            finding,
            first_found: first,
            last_found: first,
            sla_due: first + chrono::Duration::days((i % 9) as i64),
            assignee: (i % 10 == 0).then(|| "wang.fang".to_string()),
            resolution: None,
            history: vec![HistoryEntry {
                at,
                by: "nightly".into(),
                action: "opened".into(),
                note: "found by the nightly diff".into(),
            }],
            updated_at: at,
            version: 1,
        };
        d.work_items.insert(w.id.clone());
        s.work_items.insert(w.id.clone(), w);
    }
    (s, d)
}

/// One GET over a fresh connection: the status, the body's size and the time to its end.
fn get(port: u16, path: &str) -> (u16, usize, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Language: zh-CN\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let took = started.elapsed();
    let status = String::from_utf8_lossy(&raw[..12.min(raw.len())])
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, raw.len(), took)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let runs: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(21);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("queue.db").display());
    let (s, d) = state(n);
    let store = rt.block_on(async {
        let store = Store::open(&url).await.unwrap();
        let started = Instant::now();
        store.commit(&s, &d).await.unwrap();
        println!(
            "wrote {n} open work items in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        store
    });
    drop((s, d));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let options = ServerOptions {
        access: Arc::new(AuthConfig {
            anonymous: Some(Role::Viewer),
            ..Default::default()
        }),
        ..Default::default()
    };
    rt.spawn(reconlight_service::server::serve(
        Box::leak(format!("127.0.0.1:{port}").into_boxed_str()),
        store,
        Arc::new(Metrics::new()),
        options,
    ));
    std::thread::sleep(Duration::from_millis(500));
    println!(
        "{:<58} {:>9} {:>9} {:>9}",
        "view", "median", "slowest", "bytes"
    );
    for (name, path) in [
        ("first page, most money at stake first", "/"),
        ("first page, nearest SLA first", "/?sort=sla"),
        ("page 1000, oldest first", "/?sort=age&page=1000"),
        (
            "missing payments over 1,000,000, overdue",
            "/?kind=missing_payment&min=1000000&sla=overdue",
        ),
        (
            "search a customer's name",
            "/?q=%E5%AE%A2%E6%88%B74321%E5%8F%B7",
        ),
        (
            "assignee and region",
            "/?assignee=wang.fang&region=%E5%8D%8E%E4%B8%9C",
        ),
        (
            "the JSON API's first 50",
            "/api/v1/work-items?state=active&limit=50",
        ),
    ] {
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..runs {
            let (status, size, took) = get(port, path);
            assert_eq!(status, 200, "{path}");
            bytes = size;
            times.push(took);
        }
        times.sort();
        println!(
            "{name:<58} {:>7.1}ms {:>7.1}ms {bytes:>9}",
            times[times.len() / 2].as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3,
        );
    }
}
