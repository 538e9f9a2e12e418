//! What can go wrong in the core, one type per kind of failure, each naming what to look at.

use std::path::PathBuf;

use reconlight_formats::ValueError;

/// A record the live state refuses; it becomes a dead letter with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// A value in the record cannot be read (a CRM column, a key).
    #[error(transparent)]
    Value(#[from] ValueError),
    /// The record contradicts what the state holds to be true (a negative credit, an
    /// envelope naming no contract).
    #[error("{0}")]
    Refused(String),
}

/// Payment terms that cannot be turned into installments: the reason names the clause or
/// the item at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TermsError(pub String);

impl From<&str> for TermsError {
    fn from(why: &str) -> Self {
        TermsError(why.to_string())
    }
}

impl From<String> for TermsError {
    fn from(why: String) -> Self {
        TermsError(why)
    }
}

/// The audit trail's key or its witness file cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum AuditKeyError {
    #[error("{0}")]
    Invalid(String),
    #[error("cannot {doing} {}: {source}", path.display())]
    Io {
        doing: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where and how the audit trail stops holding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBroken {
    /// An entry is missing, moved, altered or written without the key.
    #[error("entry {seq}: {why}")]
    Entry { seq: u64, why: String },
    /// The end of the trail disagrees with its head or its witness.
    #[error("{0}")]
    End(String),
}
