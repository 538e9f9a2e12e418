//! The command line's words: every command, its arguments and their help.

use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::{Args, Parser, Subcommand, ValueEnum};

use reconlight_service::config::Config;

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
    pub fn path(&self) -> anyhow::Result<PathBuf> {
        match (&self.config, &self.data_dir) {
            (Some(c), _) => Ok(c.clone()),
            (None, Some(d)) => Ok(d.join("reconlight.toml")),
            (None, None) if Path::new("reconlight.toml").is_file() => {
                Ok(PathBuf::from("reconlight.toml"))
            }
            (None, None) => bail!("no configuration: pass --config FILE or --data-dir DIR"),
        }
    }

    pub fn load(&self) -> anyhow::Result<Config> {
        Ok(Config::load(&self.path()?)?)
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Generate a dataset (if none), run the whole pipeline on it, run the nightly diff,
    /// print a summary and serve the queue, the lights and the metrics.
    #[cfg(feature = "testkit")]
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
    #[cfg(feature = "testkit")]
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
    /// Make the monthly report (targets, handoffs, receivables) for a month and mail it to
    /// `[reports] email`.
    Monthly {
        #[command(flatten)]
        config: ConfigArgs,
        /// YYYY-MM; default: the month before the clock's business date.
        #[arg(long)]
        month: Option<reconlight_core::monthly::Month>,
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
        /// debezium, docusign, esign_cn, fadada, adobe_sign, camt, mt940 or csv.
        #[arg(long)]
        format: reconlight_formats::Format,
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
    #[cfg(feature = "testkit")]
    PublishDataset {
        #[arg(long)]
        brokers: String,
        /// Partitions of each topic created.
        #[arg(long, default_value_t = 3)]
        partitions: i32,
        /// A librdkafka property for the producer, `name=value`; repeat for several.
        /// Topics are created with room for the largest statement either way.
        #[arg(long = "property", short = 'X')]
        properties: Vec<String>,
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
