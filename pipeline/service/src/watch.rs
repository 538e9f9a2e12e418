//! The running service after its first catch-up: it serves the API and the page, reads the
//! sources as they grow (Kafka continuously, files every few seconds), ticks the rules,
//! delivers notifications, runs the nightly diff and the monthly report on their schedules
//! and reloads the rules on
//! SIGHUP or request, until SIGINT or SIGTERM. `reconlight run` is this loop.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono_tz::Tz;

use crate::ingest::{Pipeline, RunStats};
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::schedule::Schedule;
use crate::server::RuleReload;
use crate::shutdown::Shutdown;
use reconlight_core::reconcile::diff::NightlyOutcome;

/// What the service tells whoever runs it.
pub enum Event<'a> {
    Watching { schedule: &'a Schedule, tz: Tz },
    Ran(&'a RunStats),
    RulesReloaded { rules: usize, why: &'static str },
    Nightly(&'a NightlyOutcome),
    Monthly(&'a crate::ingest::MonthlyFiles),
}

/// How often the ingest lease is checked.
const LEASE_RENEWAL: Duration = Duration::from_secs(5);

/// Files are looked at this often; a Kafka stream is read as it comes.
const FILES_EVERY: Duration = Duration::from_secs(5);

/// How often messages every notifier is done with are pruned from the outbox.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Messages pruned per step (about a second's work on SQLite): a backlog goes in steps,
/// one per round of the loop, with the batches between them.
const PRUNE_STEP: u64 = 50_000;

/// Deletes what `[notifiers] keep_delivered` no longer keeps, one step of it; says whether
/// there is more. A failure is logged and tried again at the next prune.
async fn prune_outbox(p: &Pipeline) -> bool {
    let Some(keep) = p.config.notifiers.keep_delivered() else {
        return false;
    };
    let notifiers = crate::notify::configured_subscribers(&p.config);
    let before = chrono::Utc::now() - keep;
    let started = Instant::now();
    match p.store.prune_outbox(&notifiers, before, PRUNE_STEP).await {
        Ok((0, _)) => false,
        Ok((n, more)) => {
            tracing::info!(
                "outbox: {n} messages written before {before} and sent pruned in {:.1}s{}",
                started.elapsed().as_secs_f64(),
                if more { "; more next round" } else { "" }
            );
            more
        }
        Err(e) => {
            tracing::warn!("outbox not pruned: {e:#}");
            false
        }
    }
}

/// Runs the service until a stop is asked for.
pub async fn watch(
    p: &mut Pipeline,
    metrics: Arc<Metrics>,
    mut notifier: Option<Notifier>,
    mut lease: crate::store::IngestLease,
    reload: Arc<RuleReload>,
    shutdown: &Shutdown,
    mut tell: impl FnMut(Event),
) -> crate::error::Result<()> {
    let server = tokio::spawn(crate::server::serve_owned(
        p.config.server.listen.clone(),
        p.store.clone(),
        metrics,
        reload.clone(),
    ));
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(crate::error::ServiceError::Signal)?;
    let schedule = p.config.nightly.schedule.clone();
    let monthly = p.config.reports.monthly.clone();
    let tz = p.config.business.time_zone;
    let mut checked = chrono::Utc::now();
    tell(Event::Watching {
        schedule: &schedule,
        tz,
    });
    let mut last_files = Instant::now();
    let mut last_prune: Option<Instant> = None;
    let mut last_renewal = Instant::now();
    let interval = if p.config.kafka.is_some() {
        Duration::from_millis(200)
    } else {
        FILES_EVERY
    };
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            _ = hangup.recv() => {
                let rules = p.reload_rules().await?;
                tell(Event::RulesReloaded { rules, why: "SIGHUP" });
            }
            _ = tokio::time::sleep(interval) => {
                if last_renewal.elapsed() >= LEASE_RENEWAL {
                    // Lost (the database went away, or another instance took over): stop;
                    // a restarted process stands by until it can take the lease again.
                    lease.renew().await?;
                    last_renewal = Instant::now();
                }
                let files_due = last_files.elapsed() >= FILES_EVERY;
                let stats = if files_due {
                    last_files = Instant::now();
                    p.run_until_idle(|_, _| {}).await?
                } else {
                    p.run_kafka().await?
                };
                if stats.records > 0 {
                    tell(Event::Ran(&stats));
                }
                if reload.requested.swap(false, Ordering::SeqCst) {
                    let rules = p.reload_rules().await?;
                    tell(Event::RulesReloaded { rules, why: "on request" });
                }
                if (!files_due && stats.records == 0) || shutdown.requested() {
                    continue;
                }
                p.tick().await?;
                if let Some(n) = notifier.as_mut()
                    && let Err(e) = n.deliver(chrono::Utc::now()).await
                {
                    tracing::warn!("notifications: {e:#}");
                }
                if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                    // A backlog left over is taken up again at the next round.
                    last_prune = (!prune_outbox(p).await).then(Instant::now);
                }
                let now = chrono::Utc::now();
                if let Some(at) = schedule.last_between(checked, now, tz) {
                    let date = reconlight_core::reconcile::terms::business_date(at, tz)
                        - chrono::Duration::days(1);
                    match p.nightly(date).await {
                        Ok(outcome) => tell(Event::Nightly(&outcome)),
                        // Another instance holds the lock: it runs the diff, this one goes on.
                        Err(e) => tracing::warn!("nightly diff for {date} not run here: {e:#}"),
                    }
                }
                if let Some(at) = monthly.last_between(checked, now, tz) {
                    let month = reconlight_core::monthly::Month::of(
                        reconlight_core::reconcile::terms::business_date(at, tz),
                    )
                    .previous();
                    match p.monthly_report(month).await {
                        Ok(files) => tell(Event::Monthly(&files)),
                        Err(e) => tracing::warn!("monthly report for {month} not made: {e:#}"),
                    }
                }
                checked = now;
            }
        }
    }
    server.abort();
    Ok(())
}
