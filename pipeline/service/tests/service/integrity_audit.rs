//! The audit trail against someone who can write the database: deleting its end (one
//! entry, five hundred, all of them), moving an entry to another contract, replacing a
//! hash, or appending entries chained without the key is caught by `audit verify`.

use crate::common::*;
use reconlight_service::audit_trail::verify_audit;
use sqlx::Connection;

async fn db(dir: &std::path::Path) -> sqlx::SqliteConnection {
    sqlx::SqliteConnection::connect(&format!("sqlite://{}", dir.join("reconlight.db").display()))
        .await
        .unwrap()
}

async fn exec(c: &mut sqlx::SqliteConnection, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut *c)
        .await
        .unwrap();
}

/// Puts the trail and its head back as they were saved.
async fn restore(c: &mut sqlx::SqliteConnection) {
    exec(c, "DELETE FROM audit_entries").await;
    exec(c, "INSERT INTO audit_entries SELECT * FROM saved").await;
    exec(c, "DELETE FROM meta").await;
    exec(c, "INSERT INTO meta SELECT * FROM saved_meta").await;
}

async fn broken(dir: &std::path::Path) -> String {
    let config = reconlight_service::config::Config::load(&dir.join("reconlight.toml")).unwrap();
    verify_audit(&config).await.unwrap_err().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_with_the_audit_trail_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let (p, _) = generate_and_run(dir.path(), 300, 9).await;
    let config = p.config.clone();
    drop(p);
    let intact = verify_audit(&config).await.unwrap();
    assert!(
        intact.contains("audit trail intact") && intact.contains("witnessed outside the database"),
        "{intact}"
    );
    let mut c = db(dir.path()).await;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_entries")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert!(n > 600, "{n} entries");
    exec(&mut c, "CREATE TABLE saved AS SELECT * FROM audit_entries").await;
    exec(&mut c, "CREATE TABLE saved_meta AS SELECT * FROM meta").await;
    // The last entry deleted.
    exec(
        &mut c,
        "DELETE FROM audit_entries WHERE seq = (SELECT MAX(seq) FROM audit_entries)",
    )
    .await;
    assert!(broken(dir.path()).await.contains("entries were removed"));
    restore(&mut c).await;
    assert!(verify_audit(&config).await.is_ok());

    // The last 500 deleted, and the stored head moved back to the new end.
    exec(
        &mut c,
        &format!("DELETE FROM audit_entries WHERE seq >= {}", n - 500),
    )
    .await;
    let last: String =
        sqlx::query_scalar("SELECT hash FROM audit_entries ORDER BY seq DESC LIMIT 1")
            .fetch_one(&mut c)
            .await
            .unwrap();
    exec(
        &mut c,
        &format!(
            "UPDATE meta SET value = '{{\"next_seq\":{},\"last_hash\":\"{last}\"}}' WHERE name = 'audit_head'",
            n - 500
        ),
    )
    .await;
    let why = broken(dir.path()).await;
    assert!(why.contains("head does not carry a valid MAC"), "{why}");
    restore(&mut c).await;

    // All of them.
    exec(&mut c, "DELETE FROM audit_entries").await;
    assert!(broken(dir.path()).await.contains("entries were removed"));
    restore(&mut c).await;

    // An entry moved to another contract (so `audit show` no longer lists it): the
    // contract is part of what its hash covers.
    exec(
        &mut c,
        "UPDATE audit_entries SET contract_no = 'HT-2026-999999' WHERE seq = 5",
    )
    .await;
    let why = broken(dir.path()).await;
    assert!(
        why.contains("entry 5: its content does not match its hash (altered)"),
        "{why}"
    );
    restore(&mut c).await;

    // An entry's hash replaced by another's: the next entry no longer follows it.
    exec(
        &mut c,
        "UPDATE audit_entries SET hash = (SELECT hash FROM audit_entries WHERE seq = 3) WHERE seq = 9",
    )
    .await;
    let why = broken(dir.path()).await;
    assert!(
        why.contains("entry 9: its content does not match its hash (altered)"),
        "{why}"
    );
    restore(&mut c).await;

    // An entry's content rewritten, its hash recomputed the unkeyed way.
    let store = reconlight_service::store::Store::open(&config.store_url())
        .await
        .unwrap();
    let mut entry = store
        .audit_rows()
        .await
        .unwrap()
        .into_iter()
        .nth(7)
        .unwrap()
        .entry;
    drop(store);
    assert_eq!(entry.seq, 7);
    entry.after = Some("1.00".into());
    entry.keyed = false;
    entry.hash = entry.compute_hash(None).unwrap();
    exec(
        &mut c,
        &format!(
            "UPDATE audit_entries SET doc = '{}', hash = '{}' WHERE seq = 7",
            entry.stored_doc().replace('\'', "''"),
            entry.hash
        ),
    )
    .await;
    let why = broken(dir.path()).await;
    assert!(
        why.contains("entry 7: unkeyed after keyed entries"),
        "{why}"
    );
    restore(&mut c).await;
    assert!(verify_audit(&config).await.is_ok());
}
