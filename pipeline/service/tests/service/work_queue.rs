//! The work queue's filters, order and pages on SQLite and PostgreSQL, each compared with
//! the same question answered by a plain filter over the items written here.

use chrono::{NaiveDate, TimeZone, Utc};
use reconlight_core::state::{Dirty, LiveState};
use reconlight_core::workitems::{Finding, WorkItem, WorkItemKind, WorkItemState};
use reconlight_formats::model::{Contract, ContractStatus, Currency, Customer, Money};
use reconlight_service::store::{QueueFilter, QueueSort, SlaState, Store};
use rust_decimal::Decimal;

const TODAY: (i32, u32, u32) = (2026, 10, 31);

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(TODAY.0, TODAY.1, TODAY.2).unwrap()
}

/// 240 items over 12 customers (names with `%` and `_` in two of them), three owners and
/// two regions.
fn queue() -> (LiveState, Dirty) {
    let mut s = LiveState::default();
    let mut d = Dirty::default();
    let names = [
        "上海甲科技有限公司",
        "北京乙医疗有限公司",
        "100%_Trading Ltd",
        "深圳丙电子有限公司",
    ];
    for c in 0..12 {
        let id = format!("C{c:03}");
        s.customers.insert(
            id.clone(),
            Customer {
                customer_id: id,
                name: format!("{}{c}", names[c % names.len()]),
                bank_account_no: None,
                region: Some(if c % 2 == 0 { "华东" } else { "华南" }.into()),
            },
        );
        let no = format!("HT-2026-{c:06}");
        s.contracts.insert(
            no.clone(),
            Contract {
                contract_no: no,
                customer_id: format!("C{c:03}"),
                owner_id: Some(format!("S{:02}", c % 3)),
                region: None,
                amount: Money::new(Decimal::new(1_000_000, 0), Currency::CNY),
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
    let at = Utc.with_ymd_and_hms(2026, 10, 31, 15, 59, 0).unwrap();
    for i in 0..240usize {
        let kind = WorkItemKind::ALL[i % 4];
        let c = i % 12;
        let expected = Decimal::new((i as i64 * 7_919 % 100_000) * 100 + 5, 2);
        let finding = Finding {
            kind,
            contract_no: Some(format!("HT-2026-{c:06}")),
            installment: Some((i / 12) as u32 + 1),
            bank_ref: None,
            customer_id: Some(format!("C{c:03}")),
            currency: Some(if i % 5 == 0 { "USD" } else { "CNY" }.into()),
            expected: Some(expected),
            received: Some(Decimal::ZERO),
            summary: format!("item {i} of HT-2026-{c:06}"),
            details: serde_json::json!({}),
        };
        let first = today() - chrono::Duration::days((i % 40) as i64);
        let w = WorkItem {
            id: finding.id(),
            state: WorkItemState::ALL[i % 4],
            finding,
            first_found: first,
            last_found: first,
            sla_due: today() + chrono::Duration::days((i % 9) as i64 - 4),
            assignee: (i % 4 == 1).then(|| format!("clerk{}", i % 3)),
            resolution: None,
            history: vec![],
            updated_at: at,
            version: 1,
        };
        d.work_items.insert(w.id.clone());
        s.work_items.insert(w.id.clone(), w);
    }
    (s, d)
}

/// The reference answer: the items passing `keep`, in the order `sort` means.
fn expected(s: &LiveState, keep: impl Fn(&WorkItem) -> bool, sort: QueueSort) -> Vec<String> {
    let mut items: Vec<&WorkItem> = s.work_items.values().filter(|w| keep(w)).collect();
    let cents = |w: &WorkItem| (w.finding.amount_at_stake() * Decimal::ONE_HUNDRED).trunc();
    items.sort_by(|a, b| match sort {
        QueueSort::Money => cents(b)
            .cmp(&cents(a))
            .then(a.sla_due.cmp(&b.sla_due))
            .then(a.id.cmp(&b.id)),
        QueueSort::Sla => a
            .sla_due
            .cmp(&b.sla_due)
            .then(cents(b).cmp(&cents(a)))
            .then(a.id.cmp(&b.id)),
        QueueSort::Age => a
            .first_found
            .cmp(&b.first_found)
            .then(cents(b).cmp(&cents(a)))
            .then(a.id.cmp(&b.id)),
    });
    items.into_iter().map(|w| w.id.clone()).collect()
}

async fn check(url: &str) {
    let store = Store::open(url).await.unwrap();
    let (s, d) = queue();
    store.commit(&s, &d).await.unwrap();
    let customer_of = |w: &WorkItem| w.finding.customer_id.clone().unwrap();
    let contract_of = |w: &WorkItem| &s.contracts[w.finding.contract_no.as_ref().unwrap()];
    let active = |w: &WorkItem| w.state.is_active();
    type Keep<'a> = Box<dyn Fn(&WorkItem) -> bool + 'a>;
    let cases: Vec<(&str, QueueFilter, Keep)> = vec![
        (
            "active, no other filter",
            QueueFilter {
                states: vec![WorkItemState::Open, WorkItemState::Assigned],
                ..Default::default()
            },
            Box::new(active),
        ),
        ("everything", QueueFilter::default(), Box::new(|_| true)),
        (
            "a kind and an assignee",
            QueueFilter {
                kind: Some(WorkItemKind::PartialPayment),
                assignee: Some("clerk1".into()),
                ..Default::default()
            },
            Box::new(|w| {
                w.finding.kind == WorkItemKind::PartialPayment
                    && w.assignee.as_deref() == Some("clerk1")
            }),
        ),
        (
            "a customer by part of the name, with LIKE's wildcards in it",
            QueueFilter {
                customer: Some("100%_Trading".into()),
                ..Default::default()
            },
            Box::new(|w| s.customers[&customer_of(w)].name.contains("100%_Trading")),
        ),
        (
            "a customer by id",
            QueueFilter {
                customer: Some("C007".into()),
                ..Default::default()
            },
            Box::new(|w| customer_of(w) == "C007"),
        ),
        (
            "owner and region",
            QueueFilter {
                owner: Some("S01".into()),
                region: Some("华东".into()),
                ..Default::default()
            },
            Box::new(|w| {
                contract_of(w).owner_id.as_deref() == Some("S01")
                    && s.customers[&customer_of(w)].region.as_deref() == Some("华东")
            }),
        ),
        (
            "an amount range",
            QueueFilter {
                min_amount: Some(Decimal::new(2_000_005, 2)),
                max_amount: Some(Decimal::new(60_000, 0)),
                ..Default::default()
            },
            Box::new(|w| {
                let a = w.finding.amount_at_stake();
                a >= Decimal::new(2_000_005, 2) && a <= Decimal::new(60_000, 0)
            }),
        ),
        (
            "at least 30 days old, overdue",
            QueueFilter {
                min_age_days: Some(30),
                sla: Some(SlaState::Overdue),
                ..Default::default()
            },
            Box::new(|w| (today() - w.first_found).num_days() >= 30 && w.sla_due < today()),
        ),
        (
            "due soon",
            QueueFilter {
                sla: Some(SlaState::DueSoon),
                ..Default::default()
            },
            Box::new(|w| w.sla_due >= today() && w.sla_due <= today() + chrono::Duration::days(2)),
        ),
        (
            "words of a Chinese name and a contract number",
            QueueFilter {
                text: Some("医疗 HT-2026-000005".into()),
                ..Default::default()
            },
            Box::new(|w| {
                s.customers[&customer_of(w)].name.contains("医疗")
                    && w.finding.contract_no.as_deref() == Some("HT-2026-000005")
            }),
        ),
    ];
    for (what, mut filter, keep) in cases {
        filter.today = Some(today());
        for sort in QueueSort::ALL {
            let want = expected(&s, &keep, sort);
            let page = store.queue_page(&filter, sort, 0, 1_000).await.unwrap();
            let got: Vec<String> = page.items.iter().map(|e| e.item.id.clone()).collect();
            assert_eq!(got, want, "{what}, sorted by {}", sort.as_str());
            assert_eq!(page.total as usize, want.len(), "{what}");
            // Pages of 7 put together are the whole list.
            let mut paged = Vec::new();
            for n in 0..want.len().div_ceil(7) {
                let p = store
                    .queue_page(&filter, sort, (n * 7) as u64, 7)
                    .await
                    .unwrap();
                paged.extend(p.items.into_iter().map(|e| e.item.id));
            }
            assert_eq!(paged, want, "{what}, in pages of 7");
        }
        let sums = store
            .queue_page(&filter, QueueSort::Money, 0, 1)
            .await
            .unwrap()
            .at_stake;
        for (ccy, sum) in sums {
            let want: Decimal = s
                .work_items
                .values()
                .filter(|w| keep(w) && w.finding.currency.as_deref() == Some(ccy.as_str()))
                .map(|w| w.finding.amount_at_stake())
                .sum();
            assert_eq!(sum, want, "{what}: money at stake in {ccy}");
        }
    }
    let entry = store
        .queue_page(
            &QueueFilter {
                customer: Some("C002".into()),
                ..Default::default()
            },
            QueueSort::Money,
            0,
            1,
        )
        .await
        .unwrap()
        .items
        .remove(0);
    assert_eq!(entry.customer.as_deref(), Some("100%_Trading Ltd2"));
    assert_eq!(entry.owner.as_deref(), Some("S02"));
    assert_eq!(entry.region.as_deref(), Some("华东"));
}

#[tokio::test]
async fn the_queue_filters_sorts_and_pages_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    check(&format!("sqlite://{}", dir.path().join("q.db").display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_filters_sorts_and_pages_on_postgres() {
    check(&crate::common::postgres_database("reconlight_queue")).await;
}
