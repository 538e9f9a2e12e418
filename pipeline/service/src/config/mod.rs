//! reconlight's configuration: one TOML file, every field with a default, unknown keys
//! rejected. Relative paths are read from the configuration file's directory.

pub mod notifiers;
pub mod webhooks;

pub use crate::settings::{
    ConfigDuration, ConfigProblem, ConfigRegex, HttpUrl, NotAnHttpUrl, problem,
};

use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use reconlight_formats::bank_csv::CsvOptions;
use reconlight_formats::crm::CrmMapping;
use reconlight_formats::debezium::DebeziumOptions;
use reconlight_formats::docusign::DocusignOptions;
use reconlight_formats::{Format, FormatOptions};
use rust_decimal::Decimal;
use serde::Deserialize;

/// The whole configuration.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub business: BusinessConfig,
    #[serde(default)]
    pub rules: RulesConfig,
    #[serde(default)]
    pub crm: CrmMapping,
    #[serde(default)]
    pub ingest: IngestConfig,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub nightly: NightlyConfig,
    #[serde(default)]
    pub reports: ReportsConfig,
    #[serde(default)]
    pub workitems: WorkItemsConfig,
    #[serde(default)]
    pub escalation: crate::escalation::EscalationConfig,
    #[serde(default)]
    pub notifiers: notifiers::NotifiersConfig,
    #[serde(default)]
    pub webhooks: webhooks::WebhooksConfig,
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    #[serde(default)]
    pub audit: AuditConfig,
    /// Who may use the API and the page, and as what.
    #[serde(default)]
    pub auth: crate::access::AuthConfig,
    /// The Kafka cluster sources with `topics` read from and the sinks write to.
    #[serde(default)]
    pub kafka: Option<KafkaConfig>,
    /// The directory relative paths are read from (the config file's own directory).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// The audit trail's key and witness, kept outside the database.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// The HMAC key the trail is chained with (hex), created on first use; the environment
    /// variable `RECONLIGHT_AUDIT_KEY` (hex) takes precedence. Keep it out of the
    /// database's backups: whoever holds both can rewrite history.
    pub key_file: PathBuf,
    /// Where the trail's head is witnessed after each commit, so that deleting the trail's
    /// end and moving its head back in the database shows.
    pub head_file: PathBuf,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            key_file: PathBuf::from("audit.key"),
            head_file: PathBuf::from("audit.head"),
        }
    }
}

/// Where state lives.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://reconlight.db` (relative to the config file) or `postgres://user@host/db`.
    pub url: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: "sqlite://reconlight.db".into(),
        }
    }
}

/// The business calendar and money rules.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BusinessConfig {
    /// Time zone of business dates (due dates, the nightly diff, reports).
    #[schemars(with = "String")]
    pub time_zone: Tz,
    /// A received amount within this of the expected one counts as paid in full.
    pub amount_tolerance: Decimal,
    /// Matches at or above this confidence (0-100) are confirmed without a clerk.
    pub auto_confirm_confidence: u8,
    /// How contract numbers look in remittance text: a regex whose capture groups are
    /// re-assembled by `contract_no_template` into the CRM's spelling.
    pub contract_no_pattern: ConfigRegex,
    pub contract_no_template: String,
}

impl Default for BusinessConfig {
    fn default() -> Self {
        BusinessConfig {
            time_zone: chrono_tz::Asia::Shanghai,
            amount_tolerance: Decimal::new(100, 2),
            auto_confirm_confidence: 90,
            contract_no_pattern: ConfigRegex::new(r"(?i)HT[\s\-_/]*([0-9]{4})[\s\-_/]*([0-9]{6})")
                .expect("the default contract number pattern compiles"),
            contract_no_template: "HT-${1}-${2}".into(),
        }
    }
}

/// Which rule packs to load, and how often they are evaluated in full.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// A packs directory (`<dir>/<pack>/*.toml`); unset means the packs shipped in the binary.
    pub dir: Option<PathBuf>,
    /// How often every rule is evaluated over every row. Between full evaluations a batch
    /// evaluates the rules that are partitioned by contract or credit for the subjects it
    /// changed only; rules over everything (a company-wide rate) and what the clock alone
    /// changes (an installment falling due) wait for the next one. On the wall clock this
    /// is wall time; on event time, pipeline time (a full evaluation whenever the clock
    /// crosses a multiple of it, so replays stay identical): a replay of a long history is
    /// faster with `1d`. `0s` evaluates every rule in full after every batch.
    pub full_every: ConfigDuration,
    /// On event time, the rules are evaluated after every this many records of the merged
    /// input (and at its end), whatever `[ingest] batch_size` is, so a replay gives the
    /// same alerts with any batch size. `0` evaluates after every batch. Ignored on the
    /// wall clock, where every batch is evaluated.
    pub evaluate_every: u64,
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            dir: None,
            full_every: ConfigDuration(chrono::Duration::minutes(1)),
            evaluate_every: 2000,
        }
    }
}

/// Micro-batching.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Records per micro-batch (one database transaction each).
    pub batch_size: usize,
    /// What `now()` is: the event-time watermark (replays give identical results) or the
    /// wall clock (production, so time-based rules fire while nothing arrives).
    pub clock: ClockMode,
    /// A record dated further than this past the wall clock is a dead letter: one row dated
    /// 9999 (or a timestamp in the wrong unit) must not drag the pipeline's clock away.
    pub max_future: ConfigDuration,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            batch_size: 2000,
            clock: ClockMode::Wall,
            max_future: ConfigDuration(chrono::Duration::days(1)),
        }
    }
}

fn default_settle() -> ConfigDuration {
    ConfigDuration(chrono::Duration::seconds(5))
}

/// Where the pipeline's "now" comes from.
#[derive(schemars::JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockMode {
    EventTime,
    Wall,
}

/// The HTTP server (API, metrics, web page).
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: String,
    /// `/readyz` answers 503 while the Kafka consumer is further behind than this many
    /// messages over all its partitions.
    pub ready_max_lag: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            ready_max_lag: 100_000,
        }
    }
}

/// The nightly diff.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NightlyConfig {
    /// When `reconlight run` runs the diff for the previous business date: a cron
    /// expression in the business time zone.
    pub schedule: crate::schedule::Schedule,
    /// Where each run's CSV and HTML reports are written.
    pub report_dir: PathBuf,
}

impl Default for NightlyConfig {
    fn default() -> Self {
        NightlyConfig {
            schedule: crate::schedule::Schedule::parse("0 2 * * *").expect("a valid schedule"),
            report_dir: PathBuf::from("reports"),
        }
    }
}

/// The monthly report.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportsConfig {
    /// When `reconlight run` makes the report for the month before: a cron expression in
    /// the business time zone. Written beside the nightly reports (`[nightly] report_dir`).
    pub monthly: crate::schedule::Schedule,
    /// The language of the page and the mail.
    pub language: notifiers::Language,
    /// Addresses the report is mailed to through `[notifiers.email]`.
    pub email: Vec<String>,
}

impl Default for ReportsConfig {
    fn default() -> Self {
        ReportsConfig {
            monthly: crate::schedule::Schedule::parse("0 8 1 * *").expect("a valid schedule"),
            language: notifiers::Language::Zh,
            email: Vec::new(),
        }
    }
}

/// The work-item queue.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkItemsConfig {
    /// Days to act by money at stake: `[[min_amount, days], ...]`, the first tier whose
    /// minimum the amount reaches applies.
    pub sla_days: Vec<(rust_decimal::Decimal, i64)>,
}

impl Default for WorkItemsConfig {
    fn default() -> Self {
        WorkItemsConfig {
            sla_days: reconlight_core::workitems::SlaTiers::default().0,
        }
    }
}

/// The Kafka cluster: one consumer group over every source's topics, and the sink topics.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// `host:port[,host:port...]`.
    pub brokers: String,
    #[serde(default = "default_group_id")]
    pub group_id: String,
    /// Any librdkafka property, for consumer and producer alike (`security.protocol`,
    /// `sasl.mechanism`, `ssl.ca.location`, ...).
    #[serde(default)]
    pub properties: std::collections::BTreeMap<String, String>,
    /// Properties for the consumer only, over `properties` (`group.instance.id`,
    /// `session.timeout.ms`, `isolation.level`, ...).
    #[serde(default)]
    pub consumer_properties: std::collections::BTreeMap<String, String>,
    /// Properties for the sinks' producer only, over `properties` (`linger.ms`,
    /// `compression.type`, ...).
    #[serde(default)]
    pub producer_properties: std::collections::BTreeMap<String, String>,
    /// Outbox topics -> Kafka topics: `alerts`, `work_items`, `dead_letters`, `actions`.
    #[serde(default)]
    pub sinks: std::collections::BTreeMap<String, String>,
    /// Stop fetching while more than this many outbox messages wait for the sinks.
    #[serde(default = "default_max_backlog")]
    pub max_outbox_backlog: u64,
}

impl KafkaConfig {
    /// What the consumer group member is configured with.
    pub fn consumer_config(&self) -> std::collections::BTreeMap<String, String> {
        let mut all = self.properties.clone();
        all.extend(self.consumer_properties.clone());
        all
    }

    /// What the sinks' producer is configured with.
    pub fn producer_config(&self) -> std::collections::BTreeMap<String, String> {
        let mut all = self.properties.clone();
        all.extend(self.producer_properties.clone());
        all
    }
}

fn default_group_id() -> String {
    "reconlight".into()
}

fn default_max_backlog() -> u64 {
    50_000
}

/// The outbox topics a Kafka sink can carry.
pub const OUTBOX_TOPICS: [&str; 4] = ["alerts", "work_items", "dead_letters", "actions"];

/// One input: a file, a directory of files or Kafka topics, in one format.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub name: String,
    pub format: Format,
    /// A file, or a directory whose files are read in name order.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Kafka topics (needs `[kafka]`); an entry starting with `^` is a regular expression.
    /// A message is one record for line formats (Debezium, e-signature callbacks) and one
    /// document for statement formats (camt, MT940, CSV).
    #[serde(default)]
    pub topics: Vec<String>,
    /// `path` is a drop folder (as banks deliver over SFTP): a file fully applied moves to
    /// `processed/`, one that cannot be read at all to `failed/`.
    #[serde(default)]
    pub drop_folder: bool,
    /// A drop-folder file is read only once it has not changed for this long (a bank still
    /// uploading it would otherwise be read half-written). Names ending in `.part`, `.tmp`,
    /// `.partial`, `.filepart` or `.crdownload` are never read: uploads renamed when done
    /// are taken at once.
    #[serde(default = "default_settle")]
    pub settle: ConfigDuration,
    #[serde(default)]
    pub debezium: DebeziumOptions,
    #[serde(default)]
    pub docusign: DocusignOptions,
    #[serde(default)]
    pub esign_cn: reconlight_formats::esign_cn::EsignCnOptions,
    #[serde(default)]
    pub fadada: reconlight_formats::fadada::FadadaOptions,
    #[serde(default)]
    pub adobe_sign: reconlight_formats::adobe_sign::AdobeSignOptions,
    #[serde(default)]
    pub csv: Option<CsvOptions>,
}

impl SourceConfig {
    /// The options its format's decoder reads.
    pub fn format_options(&self) -> FormatOptions<'_> {
        FormatOptions {
            debezium: &self.debezium,
            docusign: &self.docusign,
            esign_cn: &self.esign_cn,
            fadada: &self.fadada,
            adobe_sign: &self.adobe_sign,
            csv: self.csv.as_ref(),
        }
    }

    /// A source for webhook bodies of `format`, with the provider's options.
    pub fn webhook(format: Format, webhooks: &webhooks::WebhooksConfig) -> SourceConfig {
        let mut s = SourceConfig {
            name: format!("webhook:{}", format.as_str()),
            format,
            path: None,
            topics: Vec::new(),
            drop_folder: false,
            settle: default_settle(),
            debezium: DebeziumOptions::default(),
            docusign: DocusignOptions::default(),
            esign_cn: Default::default(),
            fadada: Default::default(),
            adobe_sign: Default::default(),
            csv: None,
        };
        if let Some(h) = &webhooks.docusign {
            s.docusign = h.options.clone();
        }
        if let Some(h) = &webhooks.esign_cn {
            s.esign_cn = h.options.clone();
        }
        if let Some(h) = &webhooks.fadada {
            s.fadada = h.options.clone();
        }
        if let Some(h) = &webhooks.adobe_sign {
            s.adobe_sign = h.options.clone();
        }
        s
    }
}

/// A configuration problem, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {problem}")]
    Invalid {
        path: String,
        problem: ConfigProblem,
    },
}

impl Config {
    /// Reads a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Config::parse(&text, &base).map_err(|problem| ConfigError::Invalid {
            path: path.display().to_string(),
            problem,
        })
    }

    /// Parses configuration text; relative paths resolve against `base_dir`.
    pub fn parse(text: &str, base_dir: &Path) -> Result<Config, ConfigProblem> {
        let text = &crate::settings::expand_env(text, |name| std::env::var(name).ok())?;
        let mut config: Config = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
                .unwrap_or(0);
            ConfigProblem::Syntax {
                line,
                message: e.message().to_string(),
            }
        })?;
        config.base_dir = base_dir.to_path_buf();
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigProblem> {
        let mut names = std::collections::BTreeSet::new();
        for s in &self.sources {
            if !names.insert(&s.name) {
                return Err(problem(
                    "sources",
                    format!("two sources are named `{}`", s.name),
                ));
            }
            match (&s.path, s.topics.is_empty()) {
                (Some(_), false) => {
                    return Err(problem(
                        format!("source `{}`", s.name),
                        "has both a path and topics: give one",
                    ));
                }
                (None, true) => {
                    return Err(problem(
                        format!("source `{}`", s.name),
                        "needs a path or topics",
                    ));
                }
                (None, false) if self.kafka.is_none() => {
                    return Err(problem(
                        format!("source `{}`", s.name),
                        "reads Kafka topics but there is no [kafka] section",
                    ));
                }
                (None, false) if s.drop_folder => {
                    return Err(problem(
                        format!("source `{}`", s.name),
                        "a drop folder needs a path, not topics",
                    ));
                }
                _ => {}
            }
            for t in s.topics.iter().filter(|t| t.starts_with('^')) {
                regex::Regex::new(t).map_err(|e| {
                    problem(
                        format!("source `{}` topics", s.name),
                        format!("pattern {t}: {e}"),
                    )
                })?;
            }
            if s.format == Format::Csv && s.csv.is_none() {
                return Err(problem(
                    format!("source `{}`", s.name),
                    "is CSV but has no [sources.csv] column mapping",
                ));
            }
        }
        if let Some(k) = &self.kafka {
            for name in k.sinks.keys() {
                if !OUTBOX_TOPICS.contains(&name.as_str()) {
                    return Err(problem(
                        format!("kafka.sinks.{name}"),
                        format!(
                            "unknown outbox topic (expected one of {})",
                            OUTBOX_TOPICS.join(", ")
                        ),
                    ));
                }
            }
        }
        self.escalation.validate()?;
        self.notifiers.validate()?;
        self.notifiers.check_tier_targets(&self.escalation)?;
        if !self.reports.email.is_empty() && self.notifiers.email.is_none() {
            return Err(problem(
                "reports.email",
                "mails the report through [notifiers.email], which is not configured",
            ));
        }
        for address in &self.reports.email {
            if address.parse::<lettre::Address>().is_err() {
                return Err(problem(
                    "reports.email",
                    format!("`{address}` is not an email address"),
                ));
            }
        }
        if self.workitems.sla_days.is_empty() {
            return Err(problem("workitems.sla_days", "needs at least one tier"));
        }
        if self.business.auto_confirm_confidence > 100 {
            return Err(problem("business.auto_confirm_confidence", "must be 0-100"));
        }
        Ok(())
    }

    /// A path from the configuration, resolved against the config file's directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    /// The store URL with a relative SQLite path resolved.
    pub fn store_url(&self) -> String {
        let url = &self.store.url;
        match url.strip_prefix("sqlite://") {
            Some(rest) if !rest.starts_with('/') && !rest.starts_with(":memory:") => {
                let (file, query) = rest.split_once('?').unwrap_or((rest, ""));
                let path = self.resolve(Path::new(file));
                if query.is_empty() {
                    format!("sqlite://{}", path.display())
                } else {
                    format!("sqlite://{}?{query}", path.display())
                }
            }
            _ => url.clone(),
        }
    }
}
