//! Running the pipeline: the demo, generating a dataset, `run` (once or as a service),
//! the nightly diff and serving the page and API.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use reconlight_service::config::Config;
use reconlight_service::ingest::Pipeline;
use reconlight_service::metrics::Metrics;
use reconlight_service::watch::{Event, watch};

use crate::args::ConfigArgs;
use crate::output::{print_nightly, print_run, run_with_progress};

#[cfg(feature = "testkit")]
pub fn generate(contracts: usize, seed: u64, out: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let s = reconlight_testkit::generate(contracts, seed, out)?;
    println!(
        "generated {} customers, {} contracts, {} CRM events, {} signature events, {} bank lines into {} in {:.1}s",
        s.customers,
        s.contracts,
        s.crm_events,
        s.signature_events,
        s.bank_lines,
        out.display(),
        started.elapsed().as_secs_f64()
    );
    for (kind, n) in &s.problems {
        println!("  injected {kind}: {n}");
    }
    println!("business date of the data: {}", s.business_date);
    Ok(())
}

pub async fn run(config: ConfigArgs, until_idle: bool) -> anyhow::Result<()> {
    let cfg = config.load()?;
    let metrics = Arc::new(Metrics::new());
    let shutdown = reconlight_service::shutdown::Shutdown::install()?;
    // Asked for over the API, done by the pipeline at its next tick.
    let reload = Arc::new(reconlight_service::server::RuleReload {
        config: cfg.clone(),
        requested: std::sync::atomic::AtomicBool::new(false),
    });
    let Some((lease, standby_server)) =
        take_ingest_lease(&cfg, &metrics, &reload, &shutdown, until_idle).await?
    else {
        return Ok(());
    };
    metrics.ingest_active.set(1);
    // While the state loads and the sources are caught up, the API, the page and /metrics
    // are served from the store (a standby's server keeps going); the service's own server
    // replaces it when watching starts.
    let catch_up_server = match standby_server {
        Some(server) => Some(server),
        None if !until_idle => Some(store_server(&cfg, &metrics, &reload).await?),
        None => None,
    };
    let mut p = Pipeline::open(cfg, metrics.clone()).await?;
    p.store.fence_by(&lease);
    if !until_idle {
        // A service keeps going while the brokers are away; `--until-idle` waits for every
        // partition's end.
        p.kafka_budget = Some(std::time::Duration::from_secs(2));
    }
    p.stop = shutdown.flag();
    let stats = run_with_progress(&mut p).await?;
    print_run(&stats);
    let mut notifier = reconlight_service::notify::Notifier::configured(
        p.store.clone(),
        &p.config,
        metrics.clone(),
    )?;
    if let Some(n) = notifier.as_mut() {
        let round = n.deliver(chrono::Utc::now()).await?;
        println!(
            "notifications: {} delivered, {} skipped, {} to retry, {} refused",
            round.delivered, round.skipped, round.retried, round.failed
        );
    }
    if let Some(server) = catch_up_server {
        server.abort();
        let _ = server.await;
    }
    if until_idle || shutdown.requested() {
        p.save_snapshot().await;
        p.leave();
        return Ok(());
    }
    let watched = watch(
        &mut p,
        metrics,
        notifier,
        lease,
        reload,
        &shutdown,
        |event| match event {
            Event::Watching { schedule, tz } => {
                println!("watching the sources; the nightly diff runs at `{schedule}` ({tz})")
            }
            Event::Ran(stats) => print_run(stats),
            Event::RulesReloaded { rules, why } => println!("{why}: reloaded {rules} rules"),
            Event::Nightly(outcome) => print_nightly(outcome),
            Event::Monthly(files) => println!(
                "monthly report for {}: {} and {}",
                files.figures.month,
                files.html.display(),
                files.csv.display()
            ),
        },
    )
    .await;
    // A stop asked for: the next start reads the snapshot. After a failure (the lease
    // lost to another instance, say) the store may have moved on without this process.
    if watched.is_ok() {
        p.save_snapshot().await;
    }
    watched.map_err(Into::into)
}

/// How often a standby tries to take the ingest lease.
const STANDBY_POLL: std::time::Duration = std::time::Duration::from_secs(5);

type ServerTask = tokio::task::JoinHandle<reconlight_service::error::Result<()>>;

/// Serves the API, the page, /metrics and the webhooks (into the store's inbox) from the
/// store, while no pipeline in this process is watching.
async fn store_server(
    cfg: &Config,
    metrics: &Arc<Metrics>,
    reload: &Arc<reconlight_service::server::RuleReload>,
) -> anyhow::Result<ServerTask> {
    let store = reconlight_service::store::Store::open(&cfg.store_url()).await?;
    Ok(tokio::spawn(reconlight_service::server::serve_owned(
        cfg.server.listen.clone(),
        store,
        metrics.clone(),
        reload.clone(),
    )))
}

/// The right to ingest into the store. With PostgreSQL, another instance may hold it: this
/// one then serves the API, the page and /metrics from the store and takes over when the
/// other stops, returning its server still running (`None` if asked to stop first).
/// `--until-idle` does not wait.
async fn take_ingest_lease(
    cfg: &Config,
    metrics: &Arc<Metrics>,
    reload: &Arc<reconlight_service::server::RuleReload>,
    shutdown: &reconlight_service::shutdown::Shutdown,
    until_idle: bool,
) -> anyhow::Result<Option<(reconlight_service::store::IngestLease, Option<ServerTask>)>> {
    let store = reconlight_service::store::Store::open(&cfg.store_url()).await?;
    if let Some(lease) = store.try_ingest_lease().await? {
        return Ok(Some((lease, None)));
    }
    if until_idle {
        anyhow::bail!(
            "another instance is ingesting into this store (it holds the ingest lease); stop it, or let it do the work"
        );
    }
    println!(
        "standby: another instance is ingesting into this store; serving http://{}/ and taking over when it stops",
        cfg.server.listen
    );
    metrics.ingest_active.set(0);
    metrics.observe_store(&store.load().await?, &store).await?;
    let server = store_server(cfg, metrics, reload).await?;
    let lease = loop {
        tokio::select! {
            _ = shutdown.wait() => {
                server.abort();
                return Ok(None);
            }
            _ = tokio::time::sleep(STANDBY_POLL) => {}
        }
        if server.is_finished() {
            server.await??;
            anyhow::bail!("the standby's server stopped");
        }
        match store.try_ingest_lease().await {
            Ok(Some(lease)) => break lease,
            Ok(None) => {}
            Err(e) => tracing::warn!("standby: {e}"),
        }
    };
    println!("took over ingesting (lease epoch {})", lease.epoch);
    Ok(Some((lease, Some(server))))
}

/// Makes the monthly report for a month (default: the one before the clock's business date).
pub async fn monthly(
    config: ConfigArgs,
    month: Option<reconlight_core::monthly::Month>,
) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());
    let mut p = Pipeline::open(config.load()?, metrics.clone()).await?;
    let month = month.unwrap_or_else(|| {
        reconlight_core::monthly::Month::of(p.default_business_date()).previous()
    });
    let files = p.monthly_report(month).await?;
    let f = &files.figures;
    println!(
        "monthly report for {month}: {} teams, {} reps, {} departments, difference rate {}",
        f.teams.len(),
        f.reps.len(),
        f.departments.len(),
        f.receivables
            .difference_rate_percent
            .map(|d| format!("{d}%"))
            .unwrap_or_else(|| "-".into())
    );
    println!("  {}\n  {}", files.html.display(), files.csv.display());
    if !p.config.reports.email.is_empty()
        && let Some(mut n) =
            reconlight_service::notify::Notifier::configured(p.store.clone(), &p.config, metrics)?
    {
        let round = n.deliver(chrono::Utc::now()).await?;
        println!(
            "  mail to {}: {} delivered, {} to retry (`reconlight run` retries), {} refused",
            p.config.reports.email.join(", "),
            round.delivered,
            round.retried,
            round.failed
        );
    }
    Ok(())
}

pub async fn nightly(config: ConfigArgs, date: Option<chrono::NaiveDate>) -> anyhow::Result<()> {
    let mut p = Pipeline::open(config.load()?, Arc::new(Metrics::new())).await?;
    let date = date.unwrap_or_else(|| p.default_business_date());
    let outcome = p.nightly(date).await?;
    print_nightly(&outcome);
    let dir = p.config.resolve(&p.config.nightly.report_dir);
    println!(
        "  reports: {}",
        dir.join(format!("nightly-{date}.html")).display()
    );
    Ok(())
}

pub async fn serve(config: ConfigArgs, listen: Option<String>) -> anyhow::Result<()> {
    let cfg = config.load()?;
    let store = reconlight_service::store::Store::open(&cfg.store_url()).await?;
    let metrics = Arc::new(Metrics::new());
    metrics.observe_store(&store.load().await?, &store).await?;
    let listen = listen.unwrap_or(cfg.server.listen.clone());
    println!("serving http://{listen}/");
    let options = reconlight_service::server::ServerOptions::from_config(&cfg);
    Ok(reconlight_service::server::serve(&listen, store, metrics, options).await?)
}

#[cfg(feature = "testkit")]
pub async fn demo(
    contracts: usize,
    seed: u64,
    data_dir: &Path,
    no_serve: bool,
    listen: &str,
) -> anyhow::Result<()> {
    let started = Instant::now();
    if reconlight_testkit::dataset_exists(data_dir) {
        println!("using the dataset in {}", data_dir.display());
    } else {
        println!(
            "generating a company's CRM, e-signature and bank data ({contracts} contracts, seed {seed}) into {}",
            data_dir.display()
        );
        let s = reconlight_testkit::generate(contracts, seed, data_dir)
            .context("generating the demo dataset")?;
        println!(
            "  {} customers, {} contracts, {} CRM events, {} signature events, {} bank lines",
            s.customers, s.contracts, s.crm_events, s.signature_events, s.bank_lines
        );
    }
    let cfg = Config::load(&data_dir.join("reconlight.toml"))?;
    let metrics = Arc::new(Metrics::new());
    let mut p = Pipeline::open(cfg, metrics.clone()).await?;
    let stats = run_with_progress(&mut p).await?;
    print_run(&stats);
    let date = p.default_business_date();
    let outcome = p.nightly(date).await?;
    print_nightly(&outcome);

    let mut by_rule: std::collections::BTreeMap<(String, &str), usize> = Default::default();
    for a in p
        .state
        .alerts
        .values()
        .filter(|a| a.state == reconlight_core::alerts::AlertState::Firing)
    {
        *by_rule
            .entry((a.rule_id.clone(), a.level.as_str()))
            .or_default() += 1;
    }
    println!("lights firing:");
    for ((rule, level), n) in &by_rule {
        println!("  {rule:<40} {level:<7} {n:>6}");
    }
    println!("dead letters: {}", p.state.dead_letter_count);
    println!("done in {:.1}s", started.elapsed().as_secs_f64());
    if no_serve {
        return Ok(());
    }
    println!("serving the queue, the lights and the metrics on http://{listen}/ (Ctrl-C to stop)");
    let options = reconlight_service::server::ServerOptions::from_config(&p.config);
    Ok(reconlight_service::server::serve(listen, p.store.clone(), metrics, options).await?)
}
