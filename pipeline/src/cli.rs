//! The `reconlight` command line.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Config;
use crate::ingest::Pipeline;
use crate::metrics::Metrics;

/// Streaming business-to-finance reconciliation and alerting.
#[derive(Parser, Debug)]
#[command(name = "reconlight", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Where the configuration comes from.
#[derive(Args, Debug, Clone, Default)]
pub struct ConfigArgs {
    /// The configuration file.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// A demo or generated dataset directory (reads DIR/reconlight.toml).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
}

impl ConfigArgs {
    fn path(&self) -> anyhow::Result<PathBuf> {
        match (&self.config, &self.data_dir) {
            (Some(c), _) => Ok(c.clone()),
            (None, Some(d)) => Ok(d.join("reconlight.toml")),
            (None, None) if Path::new("reconlight.toml").is_file() => {
                Ok(PathBuf::from("reconlight.toml"))
            }
            (None, None) => bail!("no configuration: pass --config FILE or --data-dir DIR"),
        }
    }

    fn load(&self) -> anyhow::Result<Config> {
        Ok(Config::load(&self.path()?)?)
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Generate a dataset (if none), run the whole pipeline on it, run the nightly diff,
    /// print a summary and serve the queue, the lights and the metrics.
    Demo {
        #[arg(long, default_value_t = 2000)]
        contracts: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long, default_value = "demo-data")]
        data_dir: PathBuf,
        /// Exit after the summary instead of serving.
        #[arg(long)]
        no_serve: bool,
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
    },
    /// Write a deterministic dataset with injected problems and its truth.jsonl.
    Generate {
        #[arg(long, default_value_t = 2000)]
        contracts: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
    },
    /// Run the pipeline over the configured sources.
    Run {
        #[command(flatten)]
        config: ConfigArgs,
        /// Stop once every source is consumed, instead of watching for more.
        #[arg(long)]
        until_idle: bool,
    },
    /// Run the nightly diff for a business date and update the work-item queue.
    Nightly {
        #[command(flatten)]
        config: ConfigArgs,
        /// YYYY-MM-DD; default: the clock's business date (event time) or yesterday (wall).
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
    },
    /// The discrepancy queue: list, show, and the clerk's actions.
    Workitems {
        #[command(subcommand)]
        action: WorkItemsAction,
    },
    /// The lights: list them, or acknowledge one (stops its escalation).
    Alerts {
        #[command(subcommand)]
        action: AlertsAction,
    },
    /// Records that could not be used, with position and reason.
    Deadletters {
        #[command(subcommand)]
        action: ListAction,
    },
    /// The per-contract audit trail.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// API tokens for the HTTP API and the page: create (printed once), list, revoke.
    Tokens {
        #[command(subcommand)]
        action: TokensAction,
    },
    /// Rule packs.
    Rules {
        #[command(subcommand)]
        action: RulesAction,
    },
    /// Print the canonical records of an input file as JSON lines.
    Decode {
        #[arg(long, value_enum)]
        format: DecodeFormat,
        /// A TOML file with the CSV mapping ([columns] etc.), for --format csv.
        #[arg(long)]
        csv_mapping: Option<PathBuf>,
        file: PathBuf,
    },
    /// Kafka helpers.
    Kafka {
        #[command(subcommand)]
        action: KafkaAction,
    },
    /// Serve the API, the page and /metrics over a store.
    Serve {
        #[command(flatten)]
        config: ConfigArgs,
        #[arg(long)]
        listen: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum KafkaAction {
    /// Send files to a topic: one message per line (JSON lines, `null` lines become
    /// tombstones) or one per file (`--whole-file`, for statements).
    Produce {
        #[arg(long)]
        brokers: String,
        #[arg(long)]
        topic: String,
        /// Create the topic with this many partitions if it does not exist.
        #[arg(long)]
        partitions: Option<i32>,
        #[arg(long)]
        whole_file: bool,
        /// JSON pointer to each line's key, e.g. /payload/after/id; repeat to try several.
        #[arg(long = "key-pointer")]
        key_pointers: Vec<String>,
        /// A librdkafka property, `name=value`; repeat for several.
        #[arg(long = "property", short = 'X')]
        properties: Vec<String>,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Send a `generate`d dataset to its topics (CDC topics `crm.crm.<table>`, an
    /// e-signature and a topic per bank account) and write `reconlight-kafka.toml` beside it.
    PublishDataset {
        #[arg(long)]
        brokers: String,
        /// Partitions of each topic created.
        #[arg(long, default_value_t = 3)]
        partitions: i32,
        dir: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum ListAction {
    List {
        #[command(flatten)]
        config: ConfigArgs,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        /// Only this kind (work items) or rule (alerts).
        #[arg(long)]
        kind: Option<String>,
        /// Only this state (open, assigned, resolved, dismissed / pending, firing, resolved).
        #[arg(long)]
        state: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum WorkItemsAction {
    #[command(flatten)]
    List(ListAction),
    /// One work item with its evidence and history, as JSON.
    Show {
        #[command(flatten)]
        config: ConfigArgs,
        id: String,
    },
    /// Assign to a clerk.
    Assign {
        #[command(flatten)]
        config: ConfigArgs,
        id: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        by: String,
    },
    /// Add a comment.
    Comment {
        #[command(flatten)]
        config: ConfigArgs,
        id: String,
        #[arg(long)]
        text: String,
        #[arg(long)]
        by: String,
    },
    /// Mark resolved, with what was done.
    Resolve {
        #[command(flatten)]
        config: ConfigArgs,
        id: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        by: String,
    },
    /// Dismiss as not a problem, with why.
    Dismiss {
        #[command(flatten)]
        config: ConfigArgs,
        id: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        by: String,
    },
    /// Apply the item's bank credit to an installment by hand.
    Match {
        #[command(flatten)]
        config: ConfigArgs,
        id: String,
        #[arg(long)]
        contract: String,
        #[arg(long)]
        installment: u32,
        /// Part of the credit (default: all of it).
        #[arg(long)]
        amount: Option<rust_decimal::Decimal>,
        #[arg(long)]
        by: String,
    },
    /// Accept a suggested match.
    Confirm {
        #[command(flatten)]
        config: ConfigArgs,
        id: String,
        #[arg(long)]
        by: String,
    },
    /// Refuse a suggested match.
    Reject {
        #[command(flatten)]
        config: ConfigArgs,
        id: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        by: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AlertsAction {
    #[command(flatten)]
    List(ListAction),
    /// Take a firing alert: its escalation stops, PagerDuty is told.
    Ack {
        #[command(flatten)]
        config: ConfigArgs,
        id: String,
        #[arg(long)]
        by: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditAction {
    /// Check the hash chain of the whole trail.
    Verify {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// One contract's trail.
    Show {
        #[command(flatten)]
        config: ConfigArgs,
        contract_no: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokensAction {
    /// Create a token for a person or a system; it is printed once and stored only hashed.
    Create {
        #[command(flatten)]
        config: ConfigArgs,
        /// Who uses it: the name actions are recorded under.
        #[arg(long)]
        name: String,
        /// viewer, clerk or admin.
        #[arg(long)]
        role: String,
    },
    /// Every token, without its secret.
    List {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Revoke a token by its id (from `list`).
    Revoke {
        #[command(flatten)]
        config: ConfigArgs,
        id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum RulesAction {
    /// Load and plan every rule; report broken ones with file and line.
    Check {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Run every pack's test cases (rows at given times, alerts expected after each step).
    Test {
        #[command(flatten)]
        config: ConfigArgs,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    Json,
    Table,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum DecodeFormat {
    Debezium,
    Docusign,
    EsignCn,
    Fadada,
    AdobeSign,
    Camt,
    Mt940,
    Csv,
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo {
            contracts,
            seed,
            data_dir,
            no_serve,
            listen,
        } => demo(contracts, seed, &data_dir, no_serve, &listen).await,
        Command::Generate {
            contracts,
            seed,
            out,
        } => {
            let started = Instant::now();
            let s = crate::generate::generate(contracts, seed, &out)?;
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
        Command::Run { config, until_idle } => {
            let cfg = config.load()?;
            let metrics = Arc::new(Metrics::new());
            let mut p = Pipeline::open(cfg, metrics.clone()).await?;
            if !until_idle {
                // A service keeps going while the brokers are away; `--until-idle` waits for
                // every partition's end.
                p.kafka_budget = Some(std::time::Duration::from_secs(2));
            }
            let shutdown = crate::shutdown::Shutdown::install()?;
            p.stop = shutdown.flag();
            let stats = run_with_progress(&mut p).await?;
            print_run(&stats);
            let mut notifier = Some(
                crate::notify::Notifier::new(
                    p.store.clone(),
                    p.config.notifiers.clone(),
                    metrics.clone(),
                )
                .with_kafka(p.config.kafka.as_ref())?,
            )
            .filter(|n| !n.is_empty());
            if let Some(n) = notifier.as_mut() {
                let round = n.deliver(chrono::Utc::now()).await?;
                println!(
                    "notifications: {} delivered, {} skipped, {} to retry, {} refused",
                    round.delivered, round.skipped, round.retried, round.failed
                );
            }
            if until_idle {
                return Ok(());
            }
            let listen = p.config.server.listen.clone();
            let reload = Arc::new(crate::server::RuleReload {
                config: p.config.clone(),
                requested: std::sync::atomic::AtomicBool::new(false),
            });
            let server = tokio::spawn(crate::server::serve_owned(
                listen,
                p.store.clone(),
                metrics,
                reload.clone(),
            ));
            let mut hangup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
            if shutdown.requested() {
                server.abort();
                return Ok(());
            }
            let schedule = crate::schedule::Schedule::parse(&p.config.nightly.schedule)
                .map_err(anyhow::Error::msg)?;
            let tz = p.config.business.time_zone;
            let mut checked = chrono::Utc::now();
            println!("watching the sources; the nightly diff runs at `{schedule}` ({tz})");
            // A stream is read as it comes; files are looked at every few seconds.
            let mut last_files = Instant::now();
            let interval = if p.config.kafka.is_some() {
                std::time::Duration::from_millis(200)
            } else {
                std::time::Duration::from_secs(5)
            };
            loop {
                tokio::select! {
                    _ = shutdown.wait() => break,
                    _ = hangup.recv() => {
                        let n = p.reload_rules().await?;
                        println!("SIGHUP: reloaded {n} rules");
                    }
                    _ = tokio::time::sleep(interval) => {
                        let files_due = last_files.elapsed() >= std::time::Duration::from_secs(5);
                        let stats = if files_due {
                            last_files = Instant::now();
                            p.run_until_idle(|_, _| {}).await?
                        } else {
                            p.run_kafka().await?
                        };
                        if stats.records > 0 {
                            print_run(&stats);
                        }
                        if reload.requested.swap(false, std::sync::atomic::Ordering::SeqCst) {
                            let n = p.reload_rules().await?;
                            println!("reloaded {n} rules on request");
                        }
                        if !files_due && stats.records == 0 {
                            continue;
                        }
                        if shutdown.requested() {
                            break;
                        }
                        p.tick().await?;
                        if let Some(n) = notifier.as_mut()
                            && let Err(e) = n.deliver(chrono::Utc::now()).await
                        {
                            tracing::warn!("notifications: {e:#}");
                        }
                        let now = chrono::Utc::now();
                        if let Some(at) = schedule.last_between(checked, now, tz) {
                            let date = crate::reconcile::terms::business_date(at, tz) - chrono::Duration::days(1);
                            match p.nightly(date).await {
                                Ok(outcome) => print_nightly(&outcome),
                                // Another instance holds the lock: it runs the diff, this one goes on.
                                Err(e) => tracing::warn!("nightly diff for {date} not run here: {e:#}"),
                            }
                        }
                        checked = now;
                    }
                }
            }
            server.abort();
            Ok(())
        }
        Command::Kafka {
            action:
                KafkaAction::Produce {
                    brokers,
                    topic,
                    partitions,
                    whole_file,
                    key_pointers,
                    properties,
                    files,
                },
        } => {
            let mut props = std::collections::BTreeMap::new();
            for p in properties {
                let (k, v) = p
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--property {p}: expected name=value"))?;
                props.insert(k.to_string(), v.to_string());
            }
            let options = crate::publish::ProduceOptions {
                brokers,
                properties: props,
                topic,
                partitions,
                whole_file,
                key_pointers,
            };
            let started = Instant::now();
            let n = crate::publish::produce(&options, &files).await?;
            println!(
                "sent {n} messages to {} in {:.1}s",
                options.topic,
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Kafka {
            action:
                KafkaAction::PublishDataset {
                    brokers,
                    partitions,
                    dir,
                },
        } => {
            if !crate::generate::dataset_exists(&dir) {
                anyhow::bail!("{} holds no generated dataset", dir.display());
            }
            let started = Instant::now();
            for t in crate::generate::dataset_topics(&dir) {
                let options = crate::publish::ProduceOptions {
                    brokers: brokers.clone(),
                    properties: Default::default(),
                    topic: t.topic.clone(),
                    partitions: Some(partitions),
                    whole_file: t.whole_file,
                    key_pointers: t.key_pointers.clone(),
                };
                let n = crate::publish::produce(&options, &t.files).await?;
                println!("  {:<32} {n:>7} messages", t.topic);
            }
            let config = dir.join("reconlight-kafka.toml");
            std::fs::write(
                &config,
                crate::generate::dataset_kafka_config(&dir, &brokers),
            )?;
            println!(
                "published in {:.1}s; run it with `reconlight run --config {}`",
                started.elapsed().as_secs_f64(),
                config.display()
            );
            Ok(())
        }
        Command::Nightly { config, date } => {
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
        Command::Workitems {
            action:
                WorkItemsAction::List(ListAction::List {
                    config,
                    format,
                    kind,
                    state,
                }),
        } => {
            let store = crate::store::Store::open(&config.load()?.store_url()).await?;
            let items: Vec<_> = store
                .work_items()
                .await?
                .into_iter()
                .filter(|w| kind.as_deref().is_none_or(|k| w.finding.kind.as_str() == k))
                .filter(|w| state.as_deref().is_none_or(|s| w.state.as_str() == s))
                .collect();
            match format {
                OutputFormat::Json => {
                    for w in &items {
                        println!("{}", serde_json::to_string(w)?);
                    }
                }
                OutputFormat::Table => {
                    println!(
                        "{:<20} {:<24} {:<9} {:<16} {:>4} {:<22} {:>14} {:>14}",
                        "ID",
                        "KIND",
                        "STATE",
                        "CONTRACT",
                        "INST",
                        "BANK REF",
                        "EXPECTED",
                        "RECEIVED"
                    );
                    for w in &items {
                        let f = &w.finding;
                        println!(
                            "{:<20} {:<24} {:<9} {:<16} {:>4} {:<22} {:>14} {:>14}",
                            w.id,
                            f.kind.as_str(),
                            w.state.as_str(),
                            f.contract_no.as_deref().unwrap_or("-"),
                            f.installment
                                .map(|i| i.to_string())
                                .unwrap_or_else(|| "-".into()),
                            f.bank_ref.as_deref().unwrap_or("-"),
                            f.expected
                                .map(|d| d.to_string())
                                .unwrap_or_else(|| "-".into()),
                            f.received
                                .map(|d| d.to_string())
                                .unwrap_or_else(|| "-".into()),
                        );
                    }
                    println!("{} work items", items.len());
                }
            }
            Ok(())
        }
        Command::Workitems { action } => work_item_action(action).await,
        Command::Alerts {
            action:
                AlertsAction::Ack {
                    config,
                    id,
                    by,
                    reason,
                },
        } => {
            let store = crate::store::Store::open(&config.load()?.store_url()).await?;
            match store
                .acknowledge_alert(&id, &by, &reason, chrono::Utc::now())
                .await?
            {
                Ok(alert) => {
                    println!(
                        "{}: acknowledged by {by} ({} {} {})",
                        alert.id,
                        alert.rule_id,
                        alert.subject,
                        alert.level.as_str()
                    );
                    Ok(())
                }
                Err(m) => bail!(m),
            }
        }
        Command::Alerts {
            action:
                AlertsAction::List(ListAction::List {
                    config,
                    format,
                    kind,
                    state,
                }),
        } => {
            let store = crate::store::Store::open(&config.load()?.store_url()).await?;
            let alerts: Vec<_> = store
                .alerts()
                .await?
                .into_iter()
                .filter(|a| kind.as_deref().is_none_or(|k| a.rule_id == k))
                .filter(|a| state.as_deref().is_none_or(|s| a.state.as_str() == s))
                .collect();
            match format {
                OutputFormat::Json => {
                    for a in &alerts {
                        println!("{}", serde_json::to_string(a)?);
                    }
                }
                OutputFormat::Table => {
                    println!(
                        "{:<20} {:<36} {:<26} {:<7} {:<9} SUMMARY",
                        "ID", "RULE", "SUBJECT", "LEVEL", "STATE"
                    );
                    for a in &alerts {
                        println!(
                            "{:<20} {:<36} {:<26} {:<7} {:<9} {}",
                            a.id,
                            a.rule_id,
                            a.subject,
                            a.level.as_str(),
                            a.state.as_str(),
                            a.annotations
                                .get("summary")
                                .map(String::as_str)
                                .unwrap_or("")
                        );
                    }
                    println!("{} alerts", alerts.len());
                }
            }
            Ok(())
        }
        Command::Deadletters {
            action: ListAction::List { config, format, .. },
        } => {
            let store = crate::store::Store::open(&config.load()?.store_url()).await?;
            let letters = store.dead_letters(10_000).await?;
            for l in &letters {
                match format {
                    OutputFormat::Json => println!("{}", serde_json::to_string(l)?),
                    OutputFormat::Table => println!("{}  {}  {}", l.source, l.position, l.reason),
                }
            }
            if format == OutputFormat::Table {
                println!("{} dead letters", letters.len());
            }
            Ok(())
        }
        Command::Audit { action } => match action {
            AuditAction::Verify { config } => {
                println!("{}", verify_audit(&config.load()?).await?);
                Ok(())
            }
            AuditAction::Show {
                config,
                contract_no,
            } => {
                let store = crate::store::Store::open(&config.load()?.store_url()).await?;
                let entries = store.audit_entries(Some(&contract_no)).await?;
                for e in &entries {
                    println!(
                        "{}  {:<16} {} -> {}  by {} from {}  ({})",
                        e.source_time.to_rfc3339(),
                        e.field,
                        e.before.as_deref().unwrap_or("∅"),
                        e.after.as_deref().unwrap_or("∅"),
                        e.operator.as_deref().unwrap_or("?"),
                        e.ip.as_deref().unwrap_or("?"),
                        e.source_position
                    );
                }
                println!("{} changes to {contract_no}", entries.len());
                Ok(())
            }
        },
        Command::Rules {
            action: RulesAction::Check { config },
        } => {
            let cfg = if config.config.is_some() || config.data_dir.is_some() {
                config.load()?
            } else {
                Config::parse("", Path::new(".")).map_err(anyhow::Error::msg)?
            };
            let runner = crate::alerts::RuleRunner::load(&cfg).await;
            for r in &runner.rules {
                println!("ok      {:<40} {}", r.id, r.origin);
            }
            for e in runner.broken.values() {
                println!("BROKEN  {e}");
            }
            if runner.broken.is_empty() {
                println!("{} rules, all valid", runner.rules.len());
                Ok(())
            } else {
                bail!(
                    "{} of {} rules are broken",
                    runner.broken.len(),
                    runner.rules.len() + runner.broken.len()
                )
            }
        }
        Command::Rules {
            action: RulesAction::Test { config },
        } => {
            let cfg = if config.config.is_some() || config.data_dir.is_some() {
                config.load()?
            } else {
                Config::parse("", Path::new(".")).map_err(anyhow::Error::msg)?
            };
            let runner = crate::alerts::RuleRunner::load(&cfg).await;
            for e in runner.broken.values() {
                println!("BROKEN  {e}");
            }
            let results = runner.test_packs(&cfg).await?;
            let failed = results.iter().filter(|r| !r.failures.is_empty()).count();
            for r in &results {
                if r.failures.is_empty() {
                    println!("ok      {} :: {}", r.file, r.case);
                } else {
                    println!("FAIL    {} :: {}", r.file, r.case);
                    for f in &r.failures {
                        println!("          {f}");
                    }
                }
            }
            println!("{} cases, {} failed", results.len(), failed);
            if failed > 0 || !runner.broken.is_empty() {
                bail!("rule tests failed");
            }
            Ok(())
        }
        Command::Decode {
            format,
            csv_mapping,
            file,
        } => decode(format, csv_mapping.as_deref(), &file),
        Command::Tokens { action } => tokens(action).await,
        Command::Serve { config, listen } => {
            let cfg = config.load()?;
            let store = crate::store::Store::open(&cfg.store_url()).await?;
            let metrics = Arc::new(Metrics::new());
            metrics.observe_state(&store.load().await?);
            let listen = listen.unwrap_or(cfg.server.listen.clone());
            println!("serving http://{listen}/");
            let hooks = Arc::new(cfg.webhooks.clone());
            let access = Arc::new(cfg.auth.clone());
            crate::server::serve_with(&listen, store, metrics, Some(hooks), access).await
        }
    }
}

/// Checks the audit trail with its key and witness: what `reconlight audit verify` prints.
pub async fn verify_audit(config: &Config) -> anyhow::Result<String> {
    let store = crate::store::Store::open(&config.store_url()).await?;
    let entries = store.audit_rows().await?;
    let stored = store.audit_head().await?;
    let key = crate::audit::AuditKey::load_or_create(&config.resolve(&config.audit.key_file))
        .map_err(anyhow::Error::msg)?;
    let witness_file = config.resolve(&config.audit.head_file);
    let witness: Option<crate::audit::AuditHead> =
        match std::fs::read_to_string(&witness_file) {
            Ok(text) => Some(serde_json::from_str(&text).map_err(|e| {
                anyhow::anyhow!("audit head witness {}: {e}", witness_file.display())
            })?),
            Err(_) => None,
        };
    let evidence = crate::audit::HeadEvidence {
        stored: stored.as_ref(),
        witness: witness.as_ref(),
    };
    match crate::audit::verify_chain(&entries, Some(&key), evidence) {
        Ok(n) => {
            let keyed = entries.iter().filter(|e| e.entry.keyed).count();
            Ok(format!(
                "audit trail intact: {n} entries ({keyed} keyed), chain, columns and head verified{}",
                if witness.is_some() {
                    ", and the head witnessed outside the database"
                } else {
                    "; no head witness file was found"
                }
            ))
        }
        Err(e) => bail!("audit trail broken: {e}"),
    }
}

async fn tokens(action: TokensAction) -> anyhow::Result<()> {
    use crate::server::auth::{Role, new_token};
    match action {
        TokensAction::Create { config, name, role } => {
            let role: Role = role.parse().map_err(anyhow::Error::msg)?;
            if name.trim().is_empty() {
                bail!("--name must name who uses the token");
            }
            let store = crate::store::Store::open(&config.load()?.store_url()).await?;
            let t = new_token().map_err(anyhow::Error::msg)?;
            store
                .add_api_token(&t.id, name.trim(), role, &t.hash, chrono::Utc::now())
                .await?;
            eprintln!(
                "token {} for {} ({}); it is shown once, keep it secret:",
                t.id,
                name.trim(),
                role.as_str()
            );
            println!("{}", t.token);
            Ok(())
        }
        TokensAction::List { config } => {
            let store = crate::store::Store::open(&config.load()?.store_url()).await?;
            for t in store.api_tokens().await? {
                println!(
                    "{}  {:<8} {:<20} created {}{}",
                    t.id,
                    t.role.as_str(),
                    t.name,
                    t.created_at,
                    t.revoked_at
                        .map(|r| format!(", revoked {r}"))
                        .unwrap_or_default()
                );
            }
            Ok(())
        }
        TokensAction::Revoke { config, id } => {
            let store = crate::store::Store::open(&config.load()?.store_url()).await?;
            if store.revoke_api_token(&id, chrono::Utc::now()).await? {
                println!("token {id} revoked");
                Ok(())
            } else {
                bail!("no active token `{id}` (reconlight tokens list)")
            }
        }
    }
}

async fn work_item_action(action: WorkItemsAction) -> anyhow::Result<()> {
    use crate::workitems::actions::{Action, perform};
    let (config, id, by, action) = match action {
        WorkItemsAction::List(_) => unreachable!("listed above"),
        WorkItemsAction::Show { config, id } => {
            let store = crate::store::Store::open(&config.load()?.store_url()).await?;
            let item = store
                .work_item(&id)
                .await?
                .with_context(|| format!("no work item `{id}`"))?;
            println!("{}", serde_json::to_string_pretty(&item)?);
            return Ok(());
        }
        WorkItemsAction::Assign { config, id, to, by } => {
            (config, id, by, Action::Assign { assignee: to })
        }
        WorkItemsAction::Comment {
            config,
            id,
            text,
            by,
        } => (config, id, by, Action::Comment { text }),
        WorkItemsAction::Resolve {
            config,
            id,
            reason,
            by,
        } => (config, id, by, Action::Resolve { reason }),
        WorkItemsAction::Dismiss {
            config,
            id,
            reason,
            by,
        } => (config, id, by, Action::Dismiss { reason }),
        WorkItemsAction::Match {
            config,
            id,
            contract,
            installment,
            amount,
            by,
        } => (
            config,
            id,
            by,
            Action::Match {
                contract_no: contract,
                installment,
                amount,
            },
        ),
        WorkItemsAction::Confirm { config, id, by } => (config, id, by, Action::Confirm),
        WorkItemsAction::Reject {
            config,
            id,
            reason,
            by,
        } => (config, id, by, Action::Reject { reason }),
    };
    let store = crate::store::Store::open(&config.load()?.store_url()).await?;
    let item = perform(&store, &id, &by, action, chrono::Utc::now(), None).await?;
    let last = item.history.last().expect("the action was recorded");
    println!(
        "{}: {} ({}) by {}: {}",
        item.id,
        item.state.as_str(),
        last.action,
        last.by,
        last.note
    );
    Ok(())
}

async fn run_with_progress(p: &mut Pipeline) -> anyhow::Result<crate::ingest::RunStats> {
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
    stats
}

fn print_run(stats: &crate::ingest::RunStats) {
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

fn print_nightly(o: &crate::ingest::pipeline::NightlyOutcome) {
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

async fn demo(
    contracts: usize,
    seed: u64,
    data_dir: &Path,
    no_serve: bool,
    listen: &str,
) -> anyhow::Result<()> {
    let started = Instant::now();
    if crate::generate::dataset_exists(data_dir) {
        println!("using the dataset in {}", data_dir.display());
    } else {
        println!(
            "generating a company's CRM, e-signature and bank data ({contracts} contracts, seed {seed}) into {}",
            data_dir.display()
        );
        let s = crate::generate::generate(contracts, seed, data_dir)
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
        .filter(|a| a.state == reconlight_rules::AlertState::Firing)
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
    let access = Arc::new(p.config.auth.clone());
    crate::server::serve(listen, p.store.clone(), metrics, access).await
}

fn decode(format: DecodeFormat, csv_mapping: Option<&Path>, file: &Path) -> anyhow::Result<()> {
    use reconlight_connectors::formats::statement::StatementSummary;
    use reconlight_connectors::formats::{bank_csv, camt, mt940};
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let mut errors = 0;
    let mut print = |r: Result<serde_json::Value, String>| match r {
        Ok(v) => println!("{v}"),
        Err(e) => {
            errors += 1;
            eprintln!("{}: {e}", file.display());
        }
    };
    let summaries = |kind: &str, statements: &[StatementSummary]| {
        for s in statements {
            eprintln!(
                "{kind} statement {} account {}: {} entries, balance check: {}",
                s.id,
                s.account,
                s.entries,
                match s.balance_difference {
                    None => "no opening/closing balances".to_string(),
                    Some(d) if d.is_zero() => "balances".to_string(),
                    Some(d) => format!("DOES NOT BALANCE (difference {d})"),
                }
            );
        }
    };
    let line_format = match format {
        DecodeFormat::Debezium => Some(crate::config::SourceFormat::Debezium),
        DecodeFormat::Docusign => Some(crate::config::SourceFormat::Docusign),
        DecodeFormat::EsignCn => Some(crate::config::SourceFormat::EsignCn),
        DecodeFormat::Fadada => Some(crate::config::SourceFormat::Fadada),
        DecodeFormat::AdobeSign => Some(crate::config::SourceFormat::AdobeSign),
        _ => None,
    };
    if let Some(f) = line_format {
        let source: crate::config::SourceConfig = toml::from_str(&format!(
            "name = \"decode\"\nformat = \"{}\"\npath = \".\"\n",
            f.as_str()
        ))?;
        for (i, line) in String::from_utf8_lossy(&bytes).lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let r = crate::ingest::source::decode_line(&source, line).map(|r| match r {
                Ok(record) => serde_json::json!(record),
                Err(why) => serde_json::json!({"skipped": why}),
            });
            print(r.map_err(|e| format!("line {}: {e}", i + 1)));
        }
    } else {
        match format {
            DecodeFormat::Camt => {
                let msg = camt::decode_bytes(&bytes)?;
                summaries(&msg.format, &msg.statements);
                for t in msg.transactions {
                    print(t.map(|t| serde_json::json!(t)).map_err(|e| e.to_string()));
                }
            }
            DecodeFormat::Mt940 => {
                let msg = mt940::decode(&String::from_utf8_lossy(&bytes))?;
                summaries(&msg.format, &msg.statements);
                for t in msg.transactions {
                    print(t.map(|t| serde_json::json!(t)).map_err(|e| e.to_string()));
                }
            }
            _ => {
                let path = csv_mapping.context("--format csv needs --csv-mapping FILE")?;
                let text = std::fs::read_to_string(path)?;
                let options: bank_csv::CsvOptions =
                    toml::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
                for r in bank_csv::decode(&bytes, &options)? {
                    print(r.map(|t| serde_json::json!(t)).map_err(|e| e.to_string()));
                }
            }
        }
    }
    if errors > 0 {
        bail!("{errors} records did not decode");
    }
    Ok(())
}
