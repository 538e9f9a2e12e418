//! Durations as rule authors write them: `0s`, `90s`, `30m`, `24h`, `2d`, `1h30m`.

use chrono::Duration;

/// A duration that cannot be read, with the text and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}`: {why} (write durations like 90s, 30m, 24h, 2d, 1h30m; units w, d, h, m, s, ms)")]
pub struct DurationError {
    pub text: String,
    pub why: String,
}

/// Parses `1d2h30m15s`-style durations (units d, h, m, s; `ms` for milliseconds).
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let refuse = |why: String| DurationError {
        text: text.trim().to_string(),
        why,
    };
    let t = text.trim();
    if t.is_empty() {
        return Err(refuse("empty".into()));
    }
    if t == "0" {
        return Ok(Duration::zero());
    }
    let mut total = Duration::zero();
    let mut digits = String::new();
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: i64 = digits
            .parse()
            .map_err(|_| refuse(format!("`{c}` where a number should be")))?;
        digits.clear();
        let unit = match c {
            'd' => Duration::days(n),
            'h' => Duration::hours(n),
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                Duration::milliseconds(n)
            }
            'm' => Duration::minutes(n),
            's' => Duration::seconds(n),
            'w' => Duration::weeks(n),
            _ => return Err(refuse(format!("unknown unit `{c}`"))),
        };
        total += unit;
    }
    if !digits.is_empty() {
        return Err(refuse(format!("the number {digits} has no unit")));
    }
    Ok(total)
}

/// Formats a duration the way it is parsed, for messages and annotations.
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.num_seconds();
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_compound_durations() {
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::minutes(90));
        assert_eq!(parse_duration("2d").unwrap(), Duration::hours(48));
        assert_eq!(parse_duration("0s").unwrap(), Duration::zero());
        assert_eq!(
            parse_duration("250ms").unwrap(),
            Duration::milliseconds(250)
        );
        assert_eq!(format_duration(Duration::minutes(90)), "1h30m");
        assert!(
            parse_duration("12")
                .unwrap_err()
                .to_string()
                .contains("no unit")
        );
        assert!(
            parse_duration("3y")
                .unwrap_err()
                .to_string()
                .contains("unknown unit")
        );
    }
}
