//! Bad input goes to the dead-letter table with its file, position and reason; the run
//! goes on and everything else is applied.

use std::io::Write;

use crate::common::*;
use reconlight_testkit::generate;

fn append(path: &std::path::Path, text: &str) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_records_are_dead_lettered_and_the_run_continues() {
    let dir = tempfile::tempdir().unwrap();
    generate(200, 5, dir.path()).unwrap();
    let contracts = dir.path().join("crm/contracts.jsonl");
    let lines = std::fs::read_to_string(&contracts).unwrap().lines().count();
    // A truncated line, and a contract with a negative amount (base64 of -100.00 at scale 2).
    append(&contracts, "{\"payload\": {\"op\": \"c\", \"after\": \n");
    append(
        &contracts,
        "{\"before\":null,\"after\":{\"contract_no\":\"HT-2026-999999\",\"customer_id\":\"C00001\",\"amount\":\"-100.00\",\"currency\":\"CNY\",\"status\":\"draft\",\"payment_terms\":\"[]\"},\"source\":{\"ts_ms\":1790000000000,\"schema\":\"crm\",\"table\":\"contracts\"},\"op\":\"c\",\"ts_ms\":1790000000000}\n",
    );
    // A camt file with an entry that has no amount, next to a good one.
    std::fs::write(
        dir.path().join("bank/camt053/2026-11-bad.xml"),
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt><GrpHdr><MsgId>BAD1</MsgId></GrpHdr>
<Stmt><Id>BAD1-1</Id><Acct><Id><Othr><Id>128905678810201</Id></Othr></Id></Acct>
<Ntry><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>2026-10-30</Dt></BookgDt><AcctSvcrRef>NOAMT1</AcctSvcrRef></Ntry>
<Ntry><Amt Ccy="CNY">12.34</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>2026-10-30</Dt></BookgDt><AcctSvcrRef>GOOD1</AcctSvcrRef>
<NtryDtls><TxDtls><RmtInf><Ustrd>利息</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>
</Stmt></BkToCstmrStmt></Document>"#,
    )
    .unwrap();
    // A file that is not XML at all.
    std::fs::write(
        dir.path().join("bank/camt053/2026-11-garbage.xml"),
        "this is not a statement",
    )
    .unwrap();

    let mut p = open(dir.path()).await;
    let stats = p.run_until_idle(|_, _| {}).await.unwrap();
    assert_eq!(stats.dead_letters, 4, "{stats:?}");
    let letters = p.store.dead_letters(100).await.unwrap();
    let find = |needle: &str| {
        letters
            .iter()
            .find(|l| l.position.contains(needle))
            .unwrap_or_else(|| panic!("no dead letter at {needle}: {letters:#?}"))
    };

    let truncated = find(&format!("crm/contracts.jsonl line {}", lines + 1));
    assert_eq!(truncated.source, "crm-contracts");
    assert!(
        truncated.reason.contains("not JSON"),
        "{}",
        truncated.reason
    );
    assert!(truncated.raw.starts_with("{\"payload\""));

    let negative = find(&format!("crm/contracts.jsonl line {}", lines + 2));
    assert!(
        negative.reason.contains("negative contract amount -100.00"),
        "{}",
        negative.reason
    );

    let no_amount = find("2026-11-bad.xml statement BAD1-1 entry 1");
    assert!(
        no_amount.reason.contains("entry has no Amt"),
        "{}",
        no_amount.reason
    );
    assert!(
        no_amount.raw.contains("NOAMT1"),
        "the raw entry is kept: {}",
        no_amount.raw
    );

    let garbage = find("2026-11-garbage.xml");
    assert!(
        garbage.reason.contains("not well-formed XML"),
        "{}",
        garbage.reason
    );

    // The good entry beside the bad one, and everything else, went in.
    assert!(p.state.bank.contains_key("GOOD1"));
    assert!(!p.state.contracts.contains_key("HT-2026-999999"));
    assert_eq!(p.state.dead_letter_count, 4);
}
