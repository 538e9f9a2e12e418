//! The ingest lease on PostgreSQL: one holder at a time, released when its connection dies,
//! and a commit by an instance that lost it refused (the fencing epoch).

use std::time::{Duration, Instant};

use reconlight_core::state::{Dirty, LiveState};
use reconlight_service::store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_ingests_and_one_that_lost_the_lease_cannot_commit() {
    let url = crate::common::postgres_database("reconlight_lease");
    let (first, second) = (
        Store::open(&url).await.unwrap(),
        Store::open(&url).await.unwrap(),
    );
    let state = LiveState::default();
    let dirty = Dirty::default();

    let lease = first
        .try_ingest_lease()
        .await
        .unwrap()
        .expect("nobody holds it");
    first.fence_by(&lease);
    let held = lease.epoch;
    assert!(
        second.try_ingest_lease().await.unwrap().is_none(),
        "one holder at a time"
    );
    first.commit(&state, &dirty).await.unwrap();

    // The holder's connection goes away, as when its process is killed.
    drop(lease);
    let started = Instant::now();
    let taken = loop {
        if let Some(l) = second.try_ingest_lease().await.unwrap() {
            break l;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the lock is released"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    second.fence_by(&taken);
    assert_eq!(taken.epoch, held + 1);

    let err = first.commit(&state, &dirty).await.unwrap_err();
    assert!(err.is_lease_lost(), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "store: committing a batch: another instance took over ingesting (lease epoch {}, this instance held {held})",
            held + 1
        )
    );
    second.commit(&state, &dirty).await.unwrap();
    let mut taken = taken;
    taken.renew().await.unwrap();
}
