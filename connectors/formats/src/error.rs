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
