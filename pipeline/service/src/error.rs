//! What can stop the service, each naming what to look at. Errors of a single record never
//! come here: they become dead letters and the pipeline goes on.

use std::path::PathBuf;

use rdkafka::error::KafkaError;
use reconlight_core::error::{AuditKeyError, ChainBroken};

use crate::config::ConfigError;
use crate::store::StoreError;

/// A file or directory the service could not use.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot {doing} {}: {source}", path.display())]
    Io {
        doing: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot move {} to {}: {source}", from.display(), to.display())]
    Move {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("source `{name}`: {} is neither a file nor a directory", path.display())]
    NotAFileOrDirectory { name: String, path: PathBuf },
}

impl FileError {
    /// An I/O error on `path` while doing `doing` ("read", "create", ...).
    pub fn io(
        doing: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| FileError::Io {
            doing,
            path,
            source,
        }
    }
}

/// Why the service stopped (or a command failed).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    AuditKey(#[from] AuditKeyError),
    #[error("audit trail broken: {0}")]
    AuditBroken(#[from] ChainBroken),
    #[error("audit head witness {}: {source}", path.display())]
    Witness {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("kafka: {doing}: {source}{hint}")]
    Kafka {
        doing: String,
        #[source]
        source: KafkaError,
        /// What to change when the error has a known remedy.
        hint: &'static str,
    },
    #[error(
        "kafka: no partitions assigned after {waited_s}s: are the brokers at {brokers} reachable?"
    )]
    KafkaUnassigned { brokers: String, waited_s: u64 },
    #[error("{} is not UTF-8: {source}", path.display())]
    NotUtf8 {
        path: PathBuf,
        #[source]
        source: std::string::FromUtf8Error,
    },
    #[error(
        "another reconlight instance is running the nightly diff (it holds the PostgreSQL advisory lock)"
    )]
    NightlyLocked,
    #[error(transparent)]
    UnknownName(#[from] reconlight_formats::UnknownName),
    #[error("[business] contract_no_pattern: {0}")]
    ContractPattern(#[from] regex::Error),
    #[error(transparent)]
    Email(#[from] crate::notify::EmailSetupError),
    #[error("cannot listen for signals: {0}")]
    Signal(#[source] std::io::Error),
    #[error("the HTTP server stopped: {0}")]
    Serve(#[source] std::io::Error),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} stopped: {source}")]
    Task {
        what: String,
        #[source]
        source: tokio::task::JoinError,
    },
    /// An incremental result differs from a full recomputation (checked in tests and on
    /// request; never expected in production).
    #[error("{0}")]
    Diverged(String),
}

impl ServiceError {
    /// A Kafka error while doing `doing`.
    pub fn kafka(doing: impl Into<String>) -> impl FnOnce(KafkaError) -> Self {
        let doing = doing.into();
        move |source| ServiceError::Kafka {
            doing,
            source,
            hint: "",
        }
    }
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;
