//! A pipeline killed after any committed batch resumes from the stored positions and ends
//! with exactly the alerts and work items of an uninterrupted run.

use crate::common::*;
use reconlight_service::ingest::RunStats;
use reconlight_testkit::generate;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_stream_gives_the_same_result() {
    let whole = tempfile::tempdir().unwrap();
    let (reference, _) = generate_and_run(whole.path(), 400, 11).await;

    let dir = tempfile::tempdir().unwrap();
    generate(400, 11, dir.path()).unwrap();
    // Small batches, so the stop falls in the middle of the stream.
    let config_path = dir.path().join("reconlight.toml");
    let text = std::fs::read_to_string(&config_path)
        .unwrap()
        .replace("batch_size = 2000", "batch_size = 500");
    std::fs::write(&config_path, text).unwrap();
    let ref_dir = tempfile::tempdir().unwrap();
    generate(400, 11, ref_dir.path()).unwrap();
    std::fs::write(
        ref_dir.path().join("reconlight.toml"),
        std::fs::read_to_string(&config_path).unwrap(),
    )
    .unwrap();

    // Uninterrupted run with the same batch size.
    let mut uninterrupted = open(ref_dir.path()).await;
    uninterrupted.run_until_idle(|_, _| {}).await.unwrap();
    let date = uninterrupted.default_business_date();
    uninterrupted.nightly(date).await.unwrap();

    // Three batches, then the process "dies" (everything in memory is lost).
    let mut first = open(dir.path()).await;
    let mut stats = RunStats::default();
    let mut merged = first.pending_items(&mut stats).await.unwrap();
    let total = merged.remaining();
    for _ in 0..3 {
        let batch: Vec<_> = (0..500).filter_map(|_| merged.next_item()).collect();
        first.process_batch(batch, &mut stats).await.unwrap();
    }
    assert!(merged.remaining() > 0 && merged.remaining() < total);
    drop(first);

    let mut resumed = open(dir.path()).await;
    let rest = resumed.run_until_idle(|_, _| {}).await.unwrap();
    assert_eq!(
        rest.records as usize + 1500,
        total,
        "the resumed run reads exactly what was not committed"
    );
    let date = resumed.default_business_date();
    resumed.nightly(date).await.unwrap();

    assert_eq!(open_subjects(&resumed), open_subjects(&uninterrupted));
    assert_eq!(
        open_subjects(&resumed),
        open_subjects(&reference),
        "batch size does not change the work items"
    );
    // Every alert, resolved ones included (those live in the store only).
    async fn alerts(
        p: &reconlight_service::ingest::Pipeline,
    ) -> Vec<(
        String,
        reconlight_rules::AlertState,
        reconlight_rules::Level,
        Option<chrono::DateTime<chrono::Utc>>,
        Option<chrono::DateTime<chrono::Utc>>,
    )> {
        p.store
            .alerts()
            .await
            .unwrap()
            .into_iter()
            .map(|a| (a.id, a.state, a.level, a.fired_at, a.resolved_at))
            .collect()
    }
    for t in ["leads", "lead_interactions", "sales_targets"] {
        let x = resumed.state.extra.get(t);
        let y = uninterrupted.state.extra.get(t);
        if x != y {
            let (x, y) = (x.unwrap(), y.unwrap());
            println!("table {t} differs: {} vs {} rows", x.len(), y.len());
            for (k, v) in x {
                if y.get(k) != Some(v) {
                    println!("  {k}: resumed {v:?}\n     uninterrupted {:?}", y.get(k));
                    break;
                }
            }
        }
    }
    let (a, b) = (alerts(&resumed).await, alerts(&uninterrupted).await);
    if a != b {
        for (x, y) in a.iter().zip(b.iter()).filter(|(x, y)| x != y).take(5) {
            let rule = |p: &reconlight_service::ingest::Pipeline, id: &str| {
                p.state
                    .alerts
                    .get(id)
                    .map(|a| (a.rule_id.clone(), a.subject.clone()))
            };
            println!(
                "resumed {x:?} {:?}\nuninterrupted {y:?} {:?}",
                rule(&resumed, &x.0),
                rule(&uninterrupted, &y.0)
            );
        }
    }
    assert!(a == b, "alerts differ after a restart (see above)");
    let outbox_ids = |p: &reconlight_service::ingest::Pipeline| {
        let s = p.store.clone();
        async move {
            s.outbox_pending(1_000_000)
                .await
                .unwrap()
                .into_iter()
                .map(|m| m.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        outbox_ids(&resumed).await,
        outbox_ids(&uninterrupted).await,
        "no message is lost or duplicated"
    );
}
