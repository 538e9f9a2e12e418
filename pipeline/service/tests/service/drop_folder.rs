//! A statement drop folder: files are applied, then moved to processed/ (or failed/ when
//! they cannot be read at all), and an entry delivered twice in two files is imported once.

use std::sync::Arc;

use reconlight_service::config::Config;
use reconlight_service::ingest::Pipeline;
use reconlight_service::metrics::Metrics;

fn camt(msg: &str, entries: &[(&str, &str)]) -> String {
    let mut x = format!(
        "<?xml version=\"1.0\"?><Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.02\"><BkToCstmrStmt><GrpHdr><MsgId>{msg}</MsgId></GrpHdr><Stmt><Id>{msg}</Id><Acct><Id><Othr><Id>128905678810201</Id></Othr></Id></Acct>"
    );
    for (r, amt) in entries {
        x.push_str(&format!(
            "<Ntry><Amt Ccy=\"CNY\">{amt}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>2026-10-30</Dt></BookgDt><AcctSvcrRef>{r}</AcctSvcrRef><NtryDtls><TxDtls><RmtInf><Ustrd>往来款</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>"
        ));
    }
    x + "</Stmt></BkToCstmrStmt></Document>"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_dropped_over_sftp_are_applied_once_and_filed() {
    let dir = tempfile::tempdir().unwrap();
    let drop = dir.path().join("sftp/icbc");
    std::fs::create_dir_all(&drop).unwrap();
    std::fs::write(
        drop.join("2026-10-30-a.xml"),
        camt("A", &[("R1", "100.00"), ("R2", "200.00")]),
    )
    .unwrap();
    // The bank sends the day again, with one more entry.
    std::fs::write(
        drop.join("2026-10-30-b.xml"),
        camt("B", &[("R2", "200.00"), ("R3", "300.00")]),
    )
    .unwrap();
    std::fs::write(drop.join("2026-10-30-c.xml"), "<not a statement").unwrap();
    let config = Config::parse(
        "[store]\nurl = \"sqlite://r.db\"\n[ingest]\nclock = \"event_time\"\n[[sources]]\nname = \"icbc\"\nformat = \"camt\"\npath = \"sftp/icbc\"\ndrop_folder = true\nsettle = \"0s\"\n",
        dir.path(),
    )
    .unwrap();
    let mut p = Pipeline::open(config.clone(), Arc::new(Metrics::new()))
        .await
        .unwrap();
    let stats = p.run_until_idle(|_, _| {}).await.unwrap();
    assert_eq!(stats.dead_letters, 1, "{stats:?}");
    assert_eq!(
        stats.ignored.get("bank entry already imported"),
        Some(&1),
        "{stats:?}"
    );
    let refs: Vec<&String> = p.state.bank.keys().collect();
    assert_eq!(refs, ["R1", "R2", "R3"]);
    let listed = |sub: &str| {
        let mut names: Vec<String> = std::fs::read_dir(drop.join(sub))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    assert_eq!(
        listed("processed"),
        ["2026-10-30-a.xml", "2026-10-30-b.xml"]
    );
    assert_eq!(listed("failed"), ["2026-10-30-c.xml"]);
    assert!(
        std::fs::read_dir(&drop)
            .unwrap()
            .flatten()
            .all(|e| e.path().is_dir()),
        "nothing left to read"
    );

    // A new delivery later is picked up the same way.
    std::fs::write(drop.join("2026-10-31.xml"), camt("C", &[("R4", "400.00")])).unwrap();
    let stats = p.run_until_idle(|_, _| {}).await.unwrap();
    assert_eq!((stats.records, stats.applied), (1, 1));
    assert_eq!(listed("processed").len(), 3);
}
