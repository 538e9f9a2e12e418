//! Integrity of what comes in, each test named after what a careless bank uploader, a
//! misconfigured connector or a typo did to an earlier version: nothing is lost, nothing is
//! silently altered, a record that cannot be read exactly is a dead letter with the reason,
//! and no single record can move the pipeline's clock away.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reconlight_core::state::DeadLetter;
use reconlight_service::config::Config;
use reconlight_service::ingest::{Pipeline, RunStats};
use reconlight_service::metrics::Metrics;
use rust_decimal::Decimal;

const CONFIG: &str = r#"
[store]
url = "sqlite://r.db"
[ingest]
clock = "event_time"
"#;

fn camt(msg: &str, entries: &[(&str, &str)]) -> String {
    let mut x = format!(
        "<?xml version=\"1.0\"?><Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.02\"><BkToCstmrStmt><GrpHdr><MsgId>{msg}</MsgId></GrpHdr><Stmt><Id>{msg}</Id><Acct><Id><Othr><Id>128905678810201</Id></Othr></Id></Acct>"
    );
    for (r, amt) in entries {
        x.push_str(&format!(
            "<Ntry><Amt Ccy=\"CNY\">{amt}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>2026-10-30</Dt></BookgDt><AcctSvcrRef>{r}</AcctSvcrRef><NtryDtls><TxDtls><RmtInf><Ustrd>HT-2026-000001 货款</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>"
        ));
    }
    x + "</Stmt></BkToCstmrStmt></Document>"
}

pub(crate) async fn pipeline(dir: &Path, sources: &str) -> Pipeline {
    let config = Config::parse(&format!("{CONFIG}{sources}"), dir).unwrap();
    Pipeline::open(config, Arc::new(Metrics::new()))
        .await
        .unwrap()
}

async fn letters(p: &Pipeline) -> Vec<DeadLetter> {
    p.store.dead_letters(100).await.unwrap()
}

fn listed(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

const DROP: &str = r#"
[[sources]]
name = "icbc"
format = "camt"
path = "sftp"
drop_folder = true
settle = "1s"
"#;

async fn settled_run(p: &mut Pipeline) -> RunStats {
    tokio::time::sleep(Duration::from_millis(1100)).await;
    p.run_until_idle(|_, _| {}).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_folder_a_file_moved_back_from_failed_is_read_from_its_first_entry() {
    let dir = tempfile::tempdir().unwrap();
    let drop = dir.path().join("sftp");
    std::fs::create_dir_all(&drop).unwrap();
    let mut p = pipeline(dir.path(), DROP).await;
    // The bank's first try is cut off: nothing can be read, it goes to failed/.
    std::fs::write(drop.join("d.xml"), &camt("D", &[("R1", "40768.00")])[..200]).unwrap();
    let stats = settled_run(&mut p).await;
    assert_eq!((stats.applied, stats.dead_letters), (0, 1));
    assert_eq!(listed(&drop.join("failed")), ["d.xml"]);
    // Someone moves it back unchanged: it fails again, and is filed again.
    std::fs::rename(drop.join("failed/d.xml"), drop.join("d.xml")).unwrap();
    let stats = settled_run(&mut p).await;
    assert_eq!(stats.dead_letters, 1, "{stats:?}");
    assert_eq!(
        listed(&drop.join("failed")),
        ["d.xml"],
        "{:?}",
        listed(&drop)
    );
    // The bank sends the whole file under the same name: every entry is read, the first too.
    std::fs::write(
        drop.join("d.xml"),
        camt("D", &[("R1", "40768.00"), ("R2", "5.00")]),
    )
    .unwrap();
    let stats = settled_run(&mut p).await;
    assert_eq!(stats.applied, 2, "{stats:?}");
    assert_eq!(
        p.state.bank["R1"].tx.amount.amount,
        Decimal::new(4076800, 2),
        "the first entry is not skipped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_folder_a_new_file_under_a_processed_name_is_read_whole_and_both_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let drop = dir.path().join("sftp");
    std::fs::create_dir_all(&drop).unwrap();
    let mut p = pipeline(dir.path(), DROP).await;
    let first: Vec<(String, String)> = (0..85)
        .map(|i| (format!("A{i:03}"), "100.00".to_string()))
        .collect();
    fn refs(v: &[(String, String)]) -> Vec<(&str, &str)> {
        v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
    }
    std::fs::write(drop.join("day.xml"), camt("A", &refs(&first))).unwrap();
    assert_eq!(settled_run(&mut p).await.applied, 85);
    let second: Vec<(String, String)> = (0..210)
        .map(|i| (format!("B{i:03}"), "200.00".to_string()))
        .collect();
    std::fs::write(drop.join("day.xml"), camt("B", &refs(&second))).unwrap();
    let stats = settled_run(&mut p).await;
    assert_eq!(
        stats.applied, 210,
        "none of the new file's entries is skipped"
    );
    assert_eq!(listed(&drop.join("processed")), ["day.2.xml", "day.xml"]);
    assert!(
        std::fs::read_to_string(drop.join("processed/day.xml"))
            .unwrap()
            .contains("<MsgId>A</MsgId>"),
        "the first file archived is not overwritten"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_folder_half_written_files_and_uploads_in_progress_wait() {
    let dir = tempfile::tempdir().unwrap();
    let drop = dir.path().join("sftp");
    std::fs::create_dir_all(&drop).unwrap();
    let config = format!(
        "{DROP}\n[[sources]]\nname = \"cmb\"\nformat = \"csv\"\npath = \"csv\"\ndrop_folder = true\nsettle = \"1s\"\n[sources.csv]\ndate_formats = [\"%Y%m%d\"]\n[sources.csv.columns]\nbooking_date = \"date\"\ncredit = \"credit\"\ndebit = \"debit\"\nreference = \"ref\"\nremittance = [\"memo\"]\n"
    );
    std::fs::create_dir_all(dir.path().join("csv")).unwrap();
    let mut p = pipeline(dir.path(), &config).await;
    // A CSV written in two steps: the first half alone ends mid-row.
    let rows: String = (0..70)
        .map(|i| format!("20261030,397249.50,,CMB{i:03},货款\n"))
        .collect();
    let whole = format!("date,credit,debit,ref,memo\n{rows}");
    let cut = whole.len() / 2 + 3;
    std::fs::write(dir.path().join("csv/cmb.csv"), &whole[..cut]).unwrap();
    // An upload still named .part, and a camt file written in two steps.
    std::fs::write(drop.join("x.xml.part"), camt("X", &[("X1", "1.00")])).unwrap();
    let stats = p.run_until_idle(|_, _| {}).await.unwrap();
    assert_eq!(
        stats.records, 0,
        "nothing is read before it settles: {stats:?}"
    );
    std::fs::write(dir.path().join("csv/cmb.csv"), &whole).unwrap();
    let stats = p.run_until_idle(|_, _| {}).await.unwrap();
    assert_eq!(stats.records, 0, "just written again: still settling");
    let stats = settled_run(&mut p).await;
    assert_eq!(stats.applied, 70, "every row, none cut: {stats:?}");
    assert!(
        p.state
            .bank
            .values()
            .all(|b| b.tx.amount.amount == Decimal::new(39724950, 2))
    );
    assert!(
        drop.join("x.xml.part").exists(),
        "an upload in progress is left alone"
    );
    std::fs::rename(drop.join("x.xml.part"), drop.join("x.xml")).unwrap();
    let stats = settled_run(&mut p).await;
    assert_eq!(stats.applied, 1);
    assert_eq!(listed(&drop.join("processed")), ["x.xml"]);
}

const CSV_SOURCE: &str = r#"
[[sources]]
name = "cmb"
format = "csv"
path = "bank.csv"
[sources.csv]
date_formats = ["%Y%m%d"]
[sources.csv.columns]
booking_date = "date"
credit = "credit"
debit = "debit"
reference = "ref"
remittance = ["memo"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_dated_far_in_the_future_is_a_dead_letter_and_leaves_the_clock_alone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bank.csv"),
        "date,credit,debit,ref,memo\n20261030,100.00,,G1,货款\n99991231,200.00,,F1,货款\n20261031,300.00,,G2,货款\n",
    )
    .unwrap();
    // A Debezium event whose ts_ms is in microseconds: the year 58,000.
    std::fs::write(
        dir.path().join("customers.jsonl"),
        "{\"before\":null,\"after\":{\"customer_id\":\"C1\",\"name\":\"成都华康医院\"},\"source\":{\"ts_ms\":1790000000000000,\"schema\":\"crm\",\"table\":\"customers\"},\"op\":\"c\",\"ts_ms\":1790000000000000}\n",
    )
    .unwrap();
    let sources = format!(
        "{CSV_SOURCE}\n[[sources]]\nname = \"crm\"\nformat = \"debezium\"\npath = \"customers.jsonl\"\n"
    );
    let mut p = pipeline(dir.path(), &sources).await;
    let stats = p.run_until_idle(|_, _| {}).await.unwrap();
    assert_eq!((stats.applied, stats.dead_letters), (2, 2), "{stats:?}");
    let letters = letters(&p).await;
    for l in &letters {
        assert!(
            l.reason.contains("more than 1d past the clock"),
            "{}",
            l.reason
        );
    }
    assert!(letters.iter().any(|l| l.reason.contains("9999-12-31")));
    assert!(p.state.customers.is_empty());
    assert_eq!(
        p.default_business_date().to_string(),
        "2026-10-31",
        "the clock stays with the real records"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amounts_that_cannot_be_read_exactly_are_dead_letters_never_guesses() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bank.csv"),
        "date,credit,debit,ref,memo\n\
         20261030,1e400,,E1,货款\n\
         20261030,1.5e3,,E2,货款\n\
         20261030,12-34,,E3,货款\n\
         20261030,-500.00,,E4,退款\n\
         20261030,\"397,249.50\",,OK1,货款\n",
    )
    .unwrap();
    let mut p = pipeline(dir.path(), CSV_SOURCE).await;
    let stats = p.run_until_idle(|_, _| {}).await.unwrap();
    assert_eq!((stats.applied, stats.dead_letters), (1, 4), "{stats:?}");
    assert_eq!(
        p.state.bank["OK1"].tx.amount.amount,
        Decimal::new(39724950, 2)
    );
    let letters = letters(&p).await;
    let reason = |row: &str| {
        letters
            .iter()
            .find(|l| l.position.contains(row))
            .map(|l| l.reason.clone())
            .unwrap_or_else(|| panic!("no dead letter for {row}: {letters:#?}"))
    };
    assert!(reason("line 2").contains("exponents are not amounts"));
    assert!(reason("line 3").contains("exponents are not amounts"));
    assert!(reason("line 4").contains("a sign inside the number"));
    assert!(reason("line 5").contains("`credit` holds the negative amount -500.00"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debezium_decimals_sent_as_json_numbers_keep_every_digit() {
    let dir = tempfile::tempdir().unwrap();
    let line = |no: &str, amount: &str| {
        format!(
            "{{\"before\":null,\"after\":{{\"contract_no\":\"{no}\",\"customer_id\":\"C1\",\"amount\":{amount},\"currency\":\"CNY\",\"status\":\"draft\",\"payment_terms\":\"[]\",\"updated_at\":\"2026-10-01T00:00:00Z\"}},\"source\":{{\"ts_ms\":1790000000000,\"schema\":\"crm\",\"table\":\"contracts\"}},\"op\":\"c\",\"ts_ms\":1790000000000}}\n"
        )
    };
    std::fs::write(
        dir.path().join("contracts.jsonl"),
        [
            line("HT-2026-000001", "123456789012345.67"),
            line("HT-2026-000002", "99999999999999.99"),
            line("HT-2026-000003", "123456789012345678901234567890123"),
        ]
        .concat(),
    )
    .unwrap();
    let sources = "[[sources]]\nname = \"crm\"\nformat = \"debezium\"\npath = \"contracts.jsonl\"\n[sources.debezium.decimal_columns]\n\"crm.contracts.amount\" = 2\n";
    let mut p = pipeline(dir.path(), sources).await;
    let stats = p.run_until_idle(|_, _| {}).await.unwrap();
    assert_eq!((stats.applied, stats.dead_letters), (2, 1), "{stats:?}");
    assert_eq!(
        p.state.contracts["HT-2026-000001"]
            .amount
            .amount
            .to_string(),
        "123456789012345.67"
    );
    assert_eq!(
        p.state.contracts["HT-2026-000002"]
            .amount
            .amount
            .to_string(),
        "99999999999999.99"
    );
    let letters = letters(&p).await;
    assert!(
        letters[0]
            .reason
            .contains("33 significant digits (28 at most)"),
        "{}",
        letters[0].reason
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debezium_dates_and_times_out_of_range_are_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let schema = r#"{"type":"struct","fields":[{"type":"struct","optional":true,"field":"after","fields":[{"type":"string","optional":false,"field":"lead_id"},{"type":"int32","optional":true,"name":"io.debezium.time.Date","field":"due"},{"type":"int64","optional":true,"name":"io.debezium.time.MicroTime","field":"at"}]},{"type":"string","optional":false,"field":"op"}]}"#;
    let event = |due: &str, at: &str| {
        format!(
            "{{\"schema\":{schema},\"payload\":{{\"before\":null,\"after\":{{\"lead_id\":\"L1\",\"due\":{due},\"at\":{at}}},\"source\":{{\"ts_ms\":1790000000000,\"schema\":\"crm\",\"table\":\"leads\"}},\"op\":\"c\",\"ts_ms\":1790000000000}}}}\n"
        )
    };
    std::fs::write(
        dir.path().join("leads.jsonl"),
        [
            event("4294987296", "1000"),
            event("20000", "9223372036854775807"),
        ]
        .concat(),
    )
    .unwrap();
    let sources = "[[sources]]\nname = \"crm\"\nformat = \"debezium\"\npath = \"leads.jsonl\"\n";
    let mut p = pipeline(dir.path(), sources).await;
    let stats = p.run_until_idle(|_, _| {}).await.unwrap();
    assert_eq!(stats.dead_letters, 2, "{stats:?}");
    let letters = letters(&p).await;
    assert!(
        letters.iter().any(|l| l
            .reason
            .contains("date 4294987296 days from the epoch is out of range")),
        "{letters:#?}"
    );
    assert!(
        letters.iter().any(|l| l
            .reason
            .contains("time of day 9223372036854775807 is out of range")),
        "{letters:#?}"
    );
}

pub(crate) const MT940_SOURCE: &str =
    "[[sources]]\nname = \"bank\"\nformat = \"mt940\"\npath = \"bank\"\n";

pub(crate) fn mt940(lines61: &str, closing: &str) -> String {
    format!(
        ":20:STMT1\r\n:25:NL91ABNA0417164300\r\n:28C:1/1\r\n:60F:C261030EUR100,00\r\n{lines61}{closing}-\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mt940_statements_are_read_whatever_a_bank_does_to_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("bank")).unwrap();
    let line = |r: &str, amount: &str| {
        format!(
            ":61:2610301030C{amount}NTRFNONREF//{r}\r\n:86:/NAME/成都华康医院/REMI/USTD//合同HT-2026-000001第1期货款，谢谢\r\n"
        )
    };
    // Chinese in :86: (byte slicing used to panic), an unreadable closing balance.
    std::fs::write(
        dir.path().join("bank/a-unreadable.sta"),
        mt940(&line("A1", "10,00"), ":62F:C261030EUR6,0O\r\n"),
    )
    .unwrap();
    // A file ending in the DOS end-of-file byte, balanced.
    std::fs::write(
        dir.path().join("bank/b-eof.sta"),
        mt940(&line("B1", "10,00"), ":62F:C261030EUR110,00\r\n") + "\u{1a}",
    )
    .unwrap();
    // Cut short: no closing balance.
    std::fs::write(
        dir.path().join("bank/c-cut.sta"),
        mt940(&line("C1", "10,00"), ""),
    )
    .unwrap();
    // The amount wrapped onto the next line.
    std::fs::write(
        dir.path().join("bank/d-wrapped.sta"),
        mt940(
            ":61:2610301030C1234\r\n,56NTRFNONREF//D1\r\n:86:/NAME/X/REMI/USTD//HT-2026-000001\r\n",
            ":62F:C261030EUR1334,56\r\n",
        ),
    )
    .unwrap();
    let mut p = pipeline(dir.path(), MT940_SOURCE).await;
    let stats = p.run_until_idle(|_, _| {}).await.unwrap();
    assert_eq!(stats.applied, 4, "{stats:?}");
    let d1 = p
        .state
        .bank
        .values()
        .find(|b| b.tx.bank_ref.contains("/D1/"))
        .unwrap();
    assert_eq!(d1.tx.amount.amount, Decimal::new(123456, 2));
    let a1 = p
        .state
        .bank
        .values()
        .find(|b| b.tx.bank_ref.contains("/A1/"))
        .unwrap();
    assert!(
        a1.tx.remittance.contains("第1期货款"),
        "{}",
        a1.tx.remittance
    );
    assert!(stats.unbalanced_statements.is_empty(), "{stats:?}");
    let letters = letters(&p).await;
    assert_eq!(letters.len(), 2, "{letters:#?}");
    assert!(
        letters
            .iter()
            .any(|l| l.position.contains("a-unreadable.sta")
                && l.reason.contains("closing balance (:62F:) is unreadable"))
    );
    assert!(letters.iter().any(|l| {
        l.position.contains("c-cut.sta")
            && l.reason
                .contains("no closing balance (:62F:): the file may be cut short")
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camt_closing_balance_that_cannot_be_read_is_a_dead_letter() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("bank")).unwrap();
    std::fs::write(
        dir.path().join("bank/s.xml"),
        r#"<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt><GrpHdr><MsgId>M</MsgId></GrpHdr><Stmt><Id>S1</Id><Acct><Id><Othr><Id>1</Id></Othr></Id></Acct>
<Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy="CNY">17.00</Amt><CdtDbtInd>CRDT</CdtDbtInd></Bal>
<Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="CNY">27.0O</Amt><CdtDbtInd>CRDT</CdtDbtInd></Bal>
<Ntry><Amt Ccy="CNY">10.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>2026-10-30</Dt></BookgDt><AcctSvcrRef>R1</AcctSvcrRef></Ntry>
</Stmt></BkToCstmrStmt></Document>"#,
    )
    .unwrap();
    let sources = "[[sources]]\nname = \"bank\"\nformat = \"camt\"\npath = \"bank\"\n";
    let mut p = pipeline(dir.path(), sources).await;
    let stats = p.run_until_idle(|_, _| {}).await.unwrap();
    assert_eq!((stats.applied, stats.dead_letters), (1, 1), "{stats:?}");
    let letters = letters(&p).await;
    assert!(
        letters[0]
            .reason
            .contains("the CLBD balance `27.0O` is unreadable"),
        "{}",
        letters[0].reason
    );
}
