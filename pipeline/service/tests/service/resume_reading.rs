//! What a restart reads again of the files it has read: a statement consumed to its end is
//! not decoded again until its bytes change; a line file resumes at the byte offset of its
//! position, and only where that offset can be trusted.

use sqlx::Connection;

use crate::integrity_inputs::{MT940_SOURCE, mt940, pipeline};

/// Sets stored positions whose keys are `LIKE` each pattern, as an edited or older store has.
async fn set_positions(dir: &std::path::Path, values: &[(&str, i64)]) {
    let url = format!("sqlite://{}", dir.join("r.db").display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    for (pattern, value) in values {
        sqlx::query("UPDATE source_positions SET consumed = $1 WHERE position_key LIKE $2")
            .bind(value)
            .bind(pattern)
            .execute(&mut db)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_read_to_its_end_is_not_decoded_again_until_its_bytes_change() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("bank")).unwrap();
    let line = |r: &str| format!(":61:2610301030C10,00NTRFNONREF//{r}\r\n:86:/REMI/USTD//HT-1\r\n");
    // Opening 100 + 20 is not 999: every decode of this file reports it.
    let two = mt940(
        &format!("{}{}", line("S1"), line("S2")),
        ":62F:C261030EUR999,00\r\n",
    );
    std::fs::write(dir.path().join("bank/s.sta"), &two).unwrap();
    let run = |dir: std::path::PathBuf| async move {
        let mut p = pipeline(&dir, MT940_SOURCE).await;
        let stats = p.run_until_idle(|_, _| {}).await.unwrap();
        (p.state.bank.len(), stats)
    };
    let (credits, stats) = run(dir.path().into()).await;
    assert_eq!((credits, stats.records), (2, 2));
    assert_eq!(stats.unbalanced_statements.len(), 1, "{stats:?}");

    // A restart reads the same bytes: nothing to apply, nothing decoded, nothing reported.
    let (credits, stats) = run(dir.path().into()).await;
    assert_eq!((credits, stats.records), (2, 0));
    assert!(stats.unbalanced_statements.is_empty(), "{stats:?}");

    // The bank sends the file again with one more transaction: decoded, the new one applied.
    let three = mt940(
        &format!("{}{}{}", line("S1"), line("S2"), line("S3")),
        ":62F:C261030EUR130,00\r\n",
    );
    std::fs::write(dir.path().join("bank/s.sta"), &three).unwrap();
    let (credits, stats) = run(dir.path().into()).await;
    assert_eq!((credits, stats.records), (3, 1));
    assert!(stats.unbalanced_statements.is_empty(), "{stats:?}");

    // A store from before documents were marked: decoded once more, marked, then skipped.
    let mut db =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}", dir.path().join("r.db").display()))
            .await
            .unwrap();
    let removed = sqlx::query("DELETE FROM source_positions WHERE position_key LIKE '%consumed'")
        .execute(&mut db)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(removed, 1);
    drop(db);
    std::fs::write(dir.path().join("bank/s.sta"), &two).unwrap();
    let (_, stats) = run(dir.path().into()).await;
    assert_eq!((stats.records, stats.unbalanced_statements.len()), (0, 1));
    let (_, stats) = run(dir.path().into()).await;
    assert_eq!((stats.records, stats.unbalanced_statements.len()), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_file_resumes_at_the_byte_offset_of_its_position_and_checks_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("customers.jsonl");
    let event = |id: &str, ms: u64| {
        format!(
            "{{\"before\":null,\"after\":{{\"customer_id\":\"{id}\",\"name\":\"成都华康医院 {id}\"}},\"source\":{{\"ts_ms\":{ms},\"schema\":\"crm\",\"table\":\"customers\"}},\"op\":\"c\",\"ts_ms\":{ms}}}"
        )
    };
    let append = |text: String| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    };
    let sources =
        "[[sources]]\nname = \"crm\"\nformat = \"debezium\"\npath = \"customers.jsonl\"\n";
    let run = |dir: std::path::PathBuf| async move {
        let mut p = pipeline(&dir, sources).await;
        let stats = p.run_until_idle(|_, _| {}).await.unwrap();
        let mut ids: Vec<String> = p.state.customers.keys().cloned().collect();
        ids.sort();
        (ids, stats.records, stats.dead_letters)
    };
    let offsets = |dir: std::path::PathBuf| async move {
        let url = format!("sqlite://{}", dir.join("r.db").display());
        let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT position_key, consumed FROM source_positions WHERE position_key LIKE 'crm:%' ORDER BY position_key",
        )
        .fetch_all(&mut db)
        .await
        .unwrap();
        rows
    };
    // Two lines, one ending in CRLF.
    append(format!(
        "{}\r\n{}\n",
        event("C1", 1790000000000),
        event("C2", 1790000001000)
    ));
    let (ids, records, letters) = run(dir.path().into()).await;
    assert_eq!(
        (ids, records, letters),
        (vec!["C1".into(), "C2".into()], 2, 0)
    );
    let len = std::fs::metadata(&path).unwrap().len() as i64;
    assert_eq!(
        offsets(dir.path().into()).await,
        vec![
            ("crm:customers.jsonl".to_string(), 2),
            ("crm:customers.jsonl\u{1f}offset".to_string(), len),
            ("crm:customers.jsonl\u{1f}offset line".to_string(), 2),
        ]
    );

    // Appended: a restart reads the new line only; with nothing new, nothing.
    append(format!("{}\n", event("C3", 1790000002000)));
    let (ids, records, _) = run(dir.path().into()).await;
    assert_eq!((ids.len(), records), (3, 1));
    let (ids, records, _) = run(dir.path().into()).await;
    assert_eq!((ids.len(), records), (3, 0));

    // An offset that does not fall at a line's end (the file was edited) is not trusted:
    // the lines are counted from the start instead.
    set_positions(dir.path(), &[("%offset", 7)]).await;
    append(format!("{}\n", event("C4", 1790000003000)));
    let (ids, records, letters) = run(dir.path().into()).await;
    assert_eq!((ids.len(), records, letters), (4, 1, 0));

    // An offset stored for another position (a reconlight that kept no offsets moved the
    // position on since) is not used either: here the end of line 1, while 4 lines are in.
    let first_line = event("C1", 1790000000000).len() as i64 + 2;
    set_positions(dir.path(), &[("%offset", first_line), ("%offset line", 1)]).await;
    append(format!("{}\n", event("C5", 1790000004000)));
    let (ids, records, letters) = run(dir.path().into()).await;
    assert_eq!((ids.len(), records, letters), (5, 1, 0));
    let len = std::fs::metadata(&path).unwrap().len() as i64;
    assert_eq!(offsets(dir.path().into()).await[1].1, len);
}
