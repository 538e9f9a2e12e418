//! Golden tests on real public samples (tests/fixtures, origins in its SOURCES.md): every file decodes, with the
//! entries, amounts, references and balance verdicts below.

use std::path::PathBuf;
use std::str::FromStr;

use reconlight_formats::model::{ChangeOp, Direction, Value};
use reconlight_formats::{camt, debezium};
use rust_decimal::Decimal;

/// The public sample files, kept in the repository with their origins and licences.
fn samples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
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

fn debezium_file(name: &str) -> Vec<reconlight_formats::model::RowChange> {
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

fn mt940_file(name: &str) -> reconlight_formats::mt940::Mt940Message {
    let path = samples().join("mt940").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    reconlight_formats::mt940::decode(&text).unwrap()
}

#[test]
fn abnamro_mt940_two_statements() {
    let m = mt940_file("wolph-abnamro.sta");
    assert_eq!(m.format, "mt940");
    assert_eq!(m.statements.len(), 2);
    let txs: Vec<_> = m.transactions.into_iter().map(Result::unwrap).collect();
    assert_eq!(txs.len(), 10);
    assert!(
        txs.iter()
            .all(|t| t.direction == Direction::Debit && t.amount.currency.as_str() == "EUR")
    );
    assert_eq!(txs[0].amount.amount, d("9"), "`9,` is nine euros");
    assert_eq!(txs[1].amount.amount, d("11.59"));
    assert_eq!(txs[0].booking_date.to_string(), "2011-05-24");
    assert!(
        txs[0].remittance.contains("KPN - DIGITENNE"),
        "{}",
        txs[0].remittance
    );
    assert!(
        txs[0].remittance.contains("INCL. 1,44 BTW"),
        "continuation lines belong to :86:"
    );
    assert_eq!(m.statements[0].account, "517852257");
    assert_eq!(m.statements[0].opening_balance, Some(d("3236.28")));
    assert_eq!(
        m.statements[0].balance_difference,
        Some(d("-2038.00")),
        "this public sample does not balance"
    );
    assert_eq!(m.statements[1].balance_difference, Some(d("-1002.60")));
}

#[test]
fn rabobank_mt940_with_names_on_the_statement_line() {
    let m = mt940_file("wolph-rabobank.sta");
    assert_eq!(m.statements.len(), 4);
    let txs: Vec<_> = m.transactions.into_iter().map(Result::unwrap).collect();
    assert_eq!(txs.len(), 5);
    assert_eq!(txs[0].amount.amount, d("1213.28"));
    assert_eq!(txs[0].counterparty_name.as_deref(), Some("W.P. Jansen"));
    assert!(
        txs[0].remittance.contains("NIET AKKOORD MET AFSCHRIJVING"),
        "{}",
        txs[0].remittance
    );
    assert_eq!(
        txs[1].counterparty_name.as_deref(),
        Some("T-MOBILE NETHERLANDS BV")
    );
    let verdicts: Vec<Option<Decimal>> =
        m.statements.iter().map(|s| s.balance_difference).collect();
    assert_eq!(
        verdicts,
        [
            Some(d("1135.93")),
            Some(d("0")),
            Some(d("236.56")),
            Some(d("0"))
        ]
    );
}

#[test]
fn danskebank_mt940_balances() {
    let m = mt940_file("mt940rs-danskebank-fi.sta");
    let txs: Vec<_> = m.transactions.into_iter().map(Result::unwrap).collect();
    let got: Vec<(Direction, Decimal)> =
        txs.iter().map(|t| (t.direction, t.amount.amount)).collect();
    assert_eq!(
        got,
        [
            (Direction::Credit, d("0.23")),
            (Direction::Debit, d("583.92")),
            (Direction::Debit, d("390.40")),
            (Direction::Debit, d("265.41")),
            (Direction::Debit, d("62.60")),
            (Direction::Debit, d("55.00")),
        ]
    );
    assert_eq!(
        txs[0].booking_date.to_string(),
        "2009-09-30",
        "the entry date, not the value date"
    );
    assert_eq!(txs[0].value_date.unwrap().to_string(), "2009-10-01");
    assert!(
        txs[1].bank_ref.contains("1234"),
        "the bank reference after //: {}",
        txs[1].bank_ref
    );
    assert_eq!(
        m.statements[0].balance_difference,
        Some(d("0")),
        "this one balances"
    );
}

#[test]
fn mt940_dedup_keys_are_unique_per_entry() {
    for name in [
        "wolph-abnamro.sta",
        "wolph-rabobank.sta",
        "mt940rs-danskebank-fi.sta",
    ] {
        let m = mt940_file(name);
        let refs: std::collections::BTreeSet<String> = m
            .transactions
            .iter()
            .map(|t| t.as_ref().unwrap().bank_ref.clone())
            .collect();
        assert_eq!(refs.len(), m.transactions.len(), "{name}: {refs:?}");
    }
}
