//! Every shipped rule pack loads, plans, and passes its own test cases (at least five per
//! pack), as `reconlight rules test` runs them.

use std::collections::BTreeMap;
use std::path::Path;

use reconlight_service::alerts::RuleRunner;
use reconlight_service::config::Config;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pack_passes_its_tests() {
    let config = Config::parse("", Path::new(".")).unwrap();
    let runner = RuleRunner::load(&config).await;
    assert!(runner.broken.is_empty(), "{:#?}", runner.broken);
    let results = runner.test_packs(&config).await.unwrap();
    let mut per_pack: BTreeMap<String, usize> = BTreeMap::new();
    for r in &results {
        let pack = r
            .file
            .trim_start_matches("rules/packs/")
            .split('/')
            .next()
            .unwrap()
            .to_string();
        *per_pack.entry(pack).or_default() += 1;
        println!(
            "{} {} :: {}",
            if r.failures.is_empty() {
                "ok  "
            } else {
                "FAIL"
            },
            r.file,
            r.case
        );
        for f in &r.failures {
            println!("       {f}");
        }
    }
    let failed: Vec<_> = results.iter().filter(|r| !r.failures.is_empty()).collect();
    assert!(
        failed.is_empty(),
        "{} of {} cases failed",
        failed.len(),
        results.len()
    );
    for pack in ["finance", "handoffs", "targets", "leads", "insights"] {
        assert!(
            per_pack.get(pack).copied().unwrap_or(0) >= 5,
            "pack {pack} has {:?} cases",
            per_pack.get(pack)
        );
    }
}
