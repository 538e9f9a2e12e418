//! A start reads each live table a few thousand documents at a time: every row comes back
//! across the chunks' edges, on SQLite and on PostgreSQL, and a damaged document is named.

use reconlight_core::state::{Dirty, LiveState};
use reconlight_formats::model::Customer;
use reconlight_service::store::Store;

/// More customers than three chunks hold, with a key that sorts before every other.
fn customers() -> (LiveState, Dirty) {
    let (mut state, mut dirty) = (LiveState::default(), Dirty::default());
    let ids = (0..12_345)
        .map(|n| format!("K{n:05}"))
        .chain(["".to_string()]);
    for (n, id) in ids.enumerate() {
        let customer = Customer {
            customer_id: id.clone(),
            name: format!("Müller & Söhne {n} \"Nord\" GmbH, 北京"),
            bank_account_no: (n % 3 == 0).then(|| format!("DE{n:020}")),
            region: None,
        };
        state.customers.insert(id.clone(), customer);
        dirty.customers.insert(id);
    }
    (state, dirty)
}

async fn every_row_loads_and_a_damaged_one_is_named(url: &str) {
    let store = Store::open(url).await.unwrap();
    let (state, dirty) = customers();
    store.commit(&state, &dirty).await.unwrap();

    let loaded = store.load().await.unwrap();
    assert_eq!(loaded.customers.len(), 12_346);
    assert_eq!(loaded.customers, state.customers);

    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    sqlx::query("UPDATE crm_customers SET doc = $1 WHERE customer_id = $2")
        .bind(r#"{"customer_id": "K07777", "name": "#)
        .bind("K07777")
        .execute(&pool)
        .await
        .unwrap();
    let error = store.load().await.unwrap_err().to_string();
    assert!(
        error.contains("reading crm_customers row K07777"),
        "the error names the table and the row: {error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_reads_every_row_of_a_large_table_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    every_row_loads_and_a_damaged_one_is_named(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_reads_every_row_of_a_large_table_on_postgres() {
    let url = crate::common::postgres_database("reconlight_store_load");
    every_row_loads_and_a_damaged_one_is_named(&url).await;
}
