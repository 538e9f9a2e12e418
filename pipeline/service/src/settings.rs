//! The configuration's building blocks, shared by every module that owns a section of it:
//! values written as text and parsed when the configuration loads (so a typo is reported
//! with the key and line that hold it, not when the value is first used), and the problems
//! a configuration can have.

use serde::Deserialize;

/// A duration written like `30m`, `24h` or `2d`, read when the configuration loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigDuration(pub chrono::Duration);

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        reconlight_rules::duration::parse_duration(&text)
            .map(ConfigDuration)
            .map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for ConfigDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&reconlight_rules::duration::format_duration(self.0))
    }
}

/// A regular expression, compiled when the configuration loads so that a typo is reported
/// with the key that holds it rather than when the first statement arrives.
#[derive(Clone, Debug)]
pub struct ConfigRegex(regex::Regex);

impl ConfigRegex {
    pub fn new(pattern: &str) -> Result<Self, regex::Error> {
        regex::Regex::new(pattern).map(ConfigRegex)
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl<'de> Deserialize<'de> for ConfigRegex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        ConfigRegex::new(&text).map_err(serde::de::Error::custom)
    }
}

/// Values written as text in the configuration and parsed at load.
macro_rules! text_schema {
    ($($ty:ty: $what:literal),* $(,)?) => {$(
        impl schemars::JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($ty).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({"type": "string", "description": $what})
            }
        }
    )*};
}

text_schema!(
    ConfigDuration: "a duration: 30s, 15m, 24h, 2d",
    ConfigRegex: "a regular expression",
    crate::schedule::Schedule: "a cron expression in the business time zone",
    HttpUrl: "an http:// or https:// URL",
);

/// An `http://` or `https://` URL with a host, checked when the configuration loads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl(String);

/// Text that is not an `http://` or `https://` URL with a host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an http:// or https:// URL with a host")]
pub struct NotAnHttpUrl(pub String);

impl HttpUrl {
    pub fn parse(text: &str) -> Result<Self, NotAnHttpUrl> {
        let uri: axum::http::Uri = text.parse().map_err(|_| NotAnHttpUrl(text.to_string()))?;
        match (uri.scheme_str(), uri.host()) {
            (Some("http" | "https"), Some(h)) if !h.is_empty() => Ok(HttpUrl(text.to_string())),
            _ => Err(NotAnHttpUrl(text.to_string())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        HttpUrl::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// What is wrong inside a configuration, naming the line or the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigProblem {
    /// Not TOML, an unknown key, or a value of the wrong type.
    #[error("line {line}: {message}")]
    Syntax { line: usize, message: String },
    /// Well formed, but the values do not fit together.
    #[error("{key}: {why}")]
    Key { key: String, why: String },
}

/// A problem with the value under `key`.
pub fn problem(key: impl Into<String>, why: impl Into<String>) -> ConfigProblem {
    ConfigProblem::Key {
        key: key.into(),
        why: why.into(),
    }
}
