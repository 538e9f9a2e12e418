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

/// Replaces `${NAME}` with the environment variable NAME, so secrets (the store's password,
/// webhook and robot secrets, SMTP passwords) can stay out of the file: a Kubernetes Secret
/// or a compose `environment`. `$${` is a literal `${`; lines that are comments are left as
/// they are; a variable that is not set is an error naming it and its line. The value is
/// escaped for a TOML string (`"` and `\`).
pub fn expand_env(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, ConfigProblem> {
    let mut out = String::with_capacity(text.len());
    for (n, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') || !line.contains("${") {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find("${") {
            if rest[..i].ends_with('$') {
                out.push_str(&rest[..i - 1]);
                out.push_str("${");
                rest = &rest[i + 2..];
                continue;
            }
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            let name_end = after.find('}');
            let name = name_end.map(|e| &after[..e]);
            match name {
                Some(name)
                    if !name.is_empty()
                        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
                {
                    let value = lookup(name).ok_or_else(|| ConfigProblem::Syntax {
                        line: n + 1,
                        message: format!("the environment variable `{name}` is not set"),
                    })?;
                    out.push_str(&value.replace('\\', "\\\\").replace('"', "\\\""));
                    rest = &after[name.len() + 1..];
                }
                // `${1}` (a regex replacement in a template) and the like stay as written.
                _ => {
                    out.push_str("${");
                    rest = after;
                }
            }
        }
        out.push_str(rest);
    }
    Ok(out)
}

/// A problem with the value under `key`.
pub fn problem(key: impl Into<String>, why: impl Into<String>) -> ConfigProblem {
    ConfigProblem::Key {
        key: key.into(),
        why: why.into(),
    }
}

#[cfg(test)]
mod env_tests {
    use super::*;

    #[test]
    fn environment_variables_fill_values() {
        let env = |name: &str| match name {
            "PG_PASSWORD" => Some("s3\"cr\\et".to_string()),
            _ => None,
        };
        let text = "# ${UNSET} in a comment\nurl = \"postgres://u:${PG_PASSWORD}@db/x\"\nt = \"HT-${1}-$${KEEP}\"\n";
        assert_eq!(
            expand_env(text, env).unwrap(),
            "# ${UNSET} in a comment\nurl = \"postgres://u:s3\\\"cr\\\\et@db/x\"\nt = \"HT-${1}-${KEEP}\"\n"
        );
        let err = expand_env("a = 1\nb = \"${MISSING}\"\n", env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2: the environment variable `MISSING` is not set"
        );
    }
}
