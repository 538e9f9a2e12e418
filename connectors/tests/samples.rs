//! Golden tests on real public samples (../shared/samples): every file decodes, with the
//! entries, amounts, references and balance verdicts below.

use std::path::PathBuf;
use std::str::FromStr;

use reconlight_connectors::formats::{camt, debezium};
use reconlight_connectors::model::{ChangeOp, Direction, Value};
use rust_decimal::Decimal;

fn samples() -> PathBuf {
    std::env::var_os("RECONLIGHT_SAMPLES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/samples"))
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn camt_file(name: &str) -> camt::CamtMessage {
    let path = samples().join("camt").join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    camt::decode_bytes(&bytes).unwrap()
}

#[test]
fn oca_camt053_v02() {
    let m = camt_file("oca-test-camt053.xml");
    assert_eq!(m.format, "camt.053.001.02");
    let txs: Vec<_> = m.transactions.into_iter().map(Result::unwrap).collect();
    let got: Vec<(&str, Direction, Decimal)> = txs
        .iter()
        .map(|t| {
            (
                t.counterparty_name.as_deref().unwrap_or(""),
                t.direction,
                t.amount.amount,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("INSURANCE COMPANY TESTX", Direction::Debit, d("754.25")),
            ("Test Customer", Direction::Debit, d("564.05")),
            ("Test Customer", Direction::Debit, d("100.00")),
            ("3rd party Media", Direction::Credit, d("1405.31")),
        ],
        "the second entry is a batch of two direct debits"
    );
    assert_eq!(
        txs[1].end_to_end_id.as_deref(),
        Some("TESTBANK/NL/20141229/01206408")
    );
    assert_eq!(
        txs[3].counterparty_account.as_deref(),
        Some("NL69ABNA0522123643")
    );
    assert!(txs[3].remittance.contains("CUSNO 90782"));
    assert_eq!(m.statements.len(), 1);
    let s = &m.statements[0];
    assert_eq!(s.account, "NL77ABNA0574908765");
    assert_eq!(
        s.balance_difference,
        Some(d("-434.16")),
        "this public sample does not balance"
    );
    assert!(s.unbalanced());
}

#[test]
fn viafintech_camt053_v08() {
    let m = camt_file("viafintech-053-v8.xml");
    assert_eq!(m.format, "camt.053.001.08");
    let txs: Vec<_> = m.transactions.into_iter().map(Result::unwrap).collect();
    assert_eq!(txs.len(), 3);
    assert_eq!(
        (
            txs[0].bank_ref.as_str(),
            txs[0].amount.amount,
            txs[0].direction
        ),
        ("9999171ZC0173078", d("474.4"), Direction::Credit)
    );
    assert_eq!(
        txs[0].counterparty_name.as_deref(),
        Some("Jon Doe"),
        "v08 debtor name under Dbtr/Pty/Nm"
    );
    assert!(txs[0].remittance.starts_with("INVOICE R77561"));
    assert_eq!(
        txs[1].remittance.split(" | ").next(),
        Some("RF38000000000000000000552"),
        "structured creditor reference"
    );
    assert_eq!(
        (
            txs[2].direction,
            txs[2].amount.currency.as_str(),
            txs[2].amount.amount
        ),
        (Direction::Debit, "EUR", d("20.97"))
    );
    assert_eq!(
        txs[2].counterparty_account.as_deref(),
        Some("CH2222222222222222222")
    );
    assert_eq!(m.statements[0].balance_difference, Some(d("1251.02")));
}

#[test]
fn viafintech_camt054() {
    let m = camt_file("viafintech-054.xml");
    assert!(m.format.starts_with("camt.054"), "{}", m.format);
    let txs: Vec<_> = m.transactions.into_iter().map(Result::unwrap).collect();
    let got: Vec<(&str, Direction, Decimal)> = txs
        .iter()
        .map(|t| (t.bank_ref.as_str(), t.direction, t.amount.amount))
        .collect();
    assert_eq!(
        got,
        [
            ("TST_201-2091644-9", Direction::Credit, d("15.00")),
            ("TST_201-2091644-8", Direction::Credit, d("9.00")),
            (
                "20160410375244000000000000000071",
                Direction::Credit,
                d("56.56")
            ),
            (
                "20160410375244000000000000000082",
                Direction::Debit,
                d("6.00")
            ),
            (
                "20160410375244000000000000000072",
                Direction::Debit,
                d("15.53")
            ),
        ]
    );
    assert_eq!(txs[0].counterparty_name.as_deref(), Some("Rutschmann Pia"));
    assert_eq!(
        m.statements[0].balance_difference, None,
        "notifications carry no balances"
    );
}

fn debezium_file(name: &str) -> Vec<reconlight_connectors::model::RowChange> {
    let text = std::fs::read_to_string(samples().join("debezium").join(name)).unwrap();
    text.lines()
        .map(
            |l| match debezium::decode(l, &Default::default()).unwrap() {
                debezium::DebeziumMessage::Change(c) => c,
                other => panic!("{other:?}"),
            },
        )
        .collect()
}

#[test]
fn flink_debezium_samples() {
    for name in [
        "flink-debezium-postgres-data-schema-exclude.txt",
        "flink-debezium-postgres-data-schema-include.txt",
        "flink-debezium-data-schema-include.txt",
    ] {
        let changes = debezium_file(name);
        assert_eq!(changes.len(), 16, "{name}");
        assert!(
            changes.iter().all(|c| c.table == "inventory.products"),
            "{name}"
        );
        let first = changes[0].after.as_ref().unwrap();
        assert_eq!(first["id"], Value::Int(101), "{name}");
        assert_eq!(first["name"], Value::Text("scooter".into()), "{name}");
        let ops: Vec<ChangeOp> = changes.iter().map(|c| c.op).collect();
        assert!(
            ops.contains(&ChangeOp::Update) && ops.contains(&ChangeOp::Delete),
            "{name}: {ops:?}"
        );
    }
    // The MySQL sample's snapshot carries source.ts_ms 0: the event time falls back to ts_ms.
    let mysql = debezium_file("flink-debezium-data-schema-include.txt");
    assert_eq!(mysql[0].source_time.timestamp_millis(), 1589355606100);
}
