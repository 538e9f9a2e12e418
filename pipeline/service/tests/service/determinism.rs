//! The same input gives the same alerts and work items whatever the batch size: on event
//! time the rules are evaluated at fixed points of the merged input (`[rules]
//! evaluate_every`), not at batch ends.

use std::path::Path;

use crate::common::*;
use reconlight_testkit::generate;

/// Everything a user sees of an alert and of a work item.
type Seen = (Vec<String>, Vec<String>);

async fn run(dir: &Path, batch_size: usize) -> Seen {
    generate(150, 17, dir).unwrap();
    let config = dir.join("reconlight.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("batch_size = 2000", &format!("batch_size = {batch_size}"));
    assert!(
        text.contains("clock = \"event_time\""),
        "a replay runs on event time"
    );
    std::fs::write(&config, format!("{text}\n[rules]\nevaluate_every = 150\n")).unwrap();
    let mut p = open(dir).await;
    let stats = p.run_until_idle(|_, _| {}).await.unwrap();
    assert!(
        stats.batches as usize >= stats.records as usize / batch_size,
        "{stats:?}"
    );
    let date = p.default_business_date();
    p.nightly(date).await.unwrap();
    // Resolved alerts live in the store only.
    let alerts = p
        .store
        .alerts()
        .await
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{} {} {} {} {} since {} fired {:?} resolved {:?} tier {} updated {}",
                a.id,
                a.rule_id,
                a.subject,
                a.state.as_str(),
                a.level.as_str(),
                a.active_since,
                a.fired_at,
                a.resolved_at,
                a.tier,
                a.updated_at
            )
        })
        .collect();
    let items = p
        .state
        .work_items
        .values()
        .map(|w| {
            format!(
                "{} {} {:?} expected {:?} received {:?}: {}",
                w.id,
                w.finding.kind.as_str(),
                w.state,
                w.finding.expected,
                w.finding.received,
                w.finding.summary
            )
        })
        .collect();
    (alerts, items)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_input_gives_the_same_alerts_and_work_items_for_batches_of_1_200_and_2000() {
    let mut seen = Vec::new();
    for batch_size in [2000, 200, 1] {
        let dir = tempfile::tempdir().unwrap();
        seen.push((batch_size, run(dir.path(), batch_size).await));
    }
    let (_, (alerts, items)) = &seen[0];
    println!(
        "{} alerts ({} resolved at some point), {} work items",
        alerts.len(),
        alerts
            .iter()
            .filter(|a| !a.contains("resolved None"))
            .count(),
        items.len()
    );
    assert!(alerts.len() > 10, "the dataset raises alerts");
    assert!(
        alerts.iter().any(|a| !a.contains("resolved None")),
        "some alert fired and resolved during the replay"
    );
    assert!(items.len() > 10, "the nightly diff finds problems");
    for (batch_size, (a, i)) in &seen[1..] {
        let differ: Vec<_> = a
            .iter()
            .zip(alerts)
            .filter(|(x, y)| x != y)
            .take(5)
            .collect();
        assert_eq!(a.len(), alerts.len(), "alerts with batches of {batch_size}");
        assert!(differ.is_empty(), "batches of {batch_size}: {differ:#?}");
        assert_eq!(i, items, "work items with batches of {batch_size}");
    }
}
