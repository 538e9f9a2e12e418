//! What the commands print: progress while ingesting, run and nightly summaries.

use indicatif::{ProgressBar, ProgressStyle};
use reconlight_service::ingest::Pipeline;

pub async fn run_with_progress(
    p: &mut Pipeline,
) -> anyhow::Result<reconlight_service::ingest::RunStats> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg:<10} [{bar:40}] {pos}/{len} records ({per_sec}, eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_message("ingest");
    let stats = p
        .run_until_idle(|done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })
        .await;
    bar.finish_and_clear();
    Ok(stats?)
}

pub fn print_run(stats: &reconlight_service::ingest::RunStats) {
    println!(
        "ingested {} records in {} batches: {} applied, {} ignored, {} dead letters",
        stats.records,
        stats.batches,
        stats.applied,
        stats.ignored.values().sum::<u64>(),
        stats.dead_letters
    );
    for note in &stats.unbalanced_statements {
        println!("  warning: {note}");
    }
}

pub fn print_nightly(o: &reconlight_core::reconcile::diff::NightlyOutcome) {
    let s = &o.summary;
    println!(
        "nightly diff for {}: {} findings; queue: {} opened, {} reopened, {} updated, {} auto-resolved, {} open",
        s.date,
        s.findings_by_kind.values().sum::<usize>(),
        o.opened,
        o.reopened,
        o.updated,
        o.auto_resolved,
        o.open_items
    );
    for (kind, n) in &s.findings_by_kind {
        println!(
            "  {kind:<24} {n:>6}   CNY {:>16}",
            s.amount_by_kind.get(kind).copied().unwrap_or_default()
        );
    }
    println!(
        "  CRM-vs-bank difference rate: {}% of {} due; credits matched: {}/{} ({} of {})",
        s.difference_rate_percent,
        s.expected_due,
        s.credits_matched,
        s.credits,
        s.credit_amount_matched,
        s.credit_amount
    );
}
