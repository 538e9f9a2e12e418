//! Decoding errors: each names the format, the position in the input and what is wrong,
//! so a dead-letter record tells a user exactly where to look.

use std::fmt;

/// A record that could not be decoded into a canonical record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DecodeError {
    /// The wire format, e.g. `debezium`, `camt.053`.
    pub format: &'static str,
    /// Where in the input: `line 17`, `entry 3`, `row 12`.
    pub position: String,
    pub reason: String,
    /// The offending input, when the decoder can point at it (an entry, a row).
    pub raw: Option<String>,
}

impl DecodeError {
    pub fn new(
        format: &'static str,
        position: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        DecodeError {
            format,
            position: position.into(),
            reason: reason.into(),
            raw: None,
        }
    }

    /// Attaches the offending input.
    pub fn with_raw(mut self, raw: impl Into<String>) -> Self {
        self.raw = Some(raw.into());
        self
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.position.is_empty() {
            write!(f, "{}: {}", self.format, self.reason)
        } else {
            write!(f, "{} {}: {}", self.format, self.position, self.reason)
        }
    }
}

/// Why one value or record cannot be read exactly. A decoder reports it as a
/// `DecodeError` once it knows the format and the position (`ValueError::at`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Text that is not exactly an amount of money (never guessed, never read as a float).
    #[error("`{text}` is not an amount: {why}")]
    Amount { text: String, why: String },
    /// A field the record needs is absent, null or empty.
    #[error("{field} is missing or empty")]
    Missing { field: String },
    /// A field holds a value of the wrong kind or out of range.
    #[error("{field}: {why}")]
    Field { field: String, why: String },
    /// A name that is not one of the values the field takes (a currency, a status).
    #[error(transparent)]
    Unknown(#[from] UnknownName),
    /// The record's shape is wrong (not JSON, an unknown event, a line out of place).
    #[error("{0}")]
    Malformed(String),
}

impl ValueError {
    /// Names the field a value came from, when the error does not yet.
    pub fn in_field(self, field: impl Into<String>) -> Self {
        match self {
            ValueError::Malformed(why) => ValueError::Field {
                field: field.into(),
                why,
            },
            ValueError::Amount { .. } | ValueError::Unknown(_) => ValueError::Field {
                field: field.into(),
                why: self.to_string(),
            },
            other => other,
        }
    }

    /// The error as a user sees it: the format and where in the input.
    pub fn at(self, format: &'static str, position: impl Into<String>) -> DecodeError {
        DecodeError::new(format, position, self.to_string())
    }
}

impl From<String> for ValueError {
    fn from(why: String) -> Self {
        ValueError::Malformed(why)
    }
}

impl From<&str> for ValueError {
    fn from(why: &str) -> Self {
        ValueError::Malformed(why.to_string())
    }
}

/// A `ValueError::Malformed` with a formatted reason.
macro_rules! invalid {
    ($($arg:tt)*) => {
        $crate::error::ValueError::Malformed(format!($($arg)*))
    };
}
pub(crate) use invalid;

/// A name that is not one of the values it may take (a format, a status, a currency).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct UnknownName {
    /// What the name should have been: `format`, `contract status`.
    pub what: &'static str,
    pub text: String,
    /// The names it may take, or a description of them; empty when obvious.
    pub expected: String,
}

impl UnknownName {
    pub fn new(what: &'static str, text: impl Into<String>, expected: impl Into<String>) -> Self {
        UnknownName {
            what,
            text: text.into(),
            expected: expected.into(),
        }
    }

    fn describe(&self) -> String {
        if self.expected.is_empty() {
            format!("unknown {} `{}`", self.what, self.text)
        } else {
            format!("unknown {} `{}` ({})", self.what, self.text, self.expected)
        }
    }
}
