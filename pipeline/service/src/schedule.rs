//! Cron schedules in the business time zone, for the nightly diff: five fields (minute,
//! hour, day of month, month, day of week; `*`, numbers, lists `1,15`, ranges `1-5` and
//! steps `*/15`). Sunday is 0 (7 also works).

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, Timelike, Utc};
use chrono_tz::Tz;

/// A parsed cron expression (read from the configuration as its text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    text: String,
    minutes: Vec<bool>,
    hours: Vec<bool>,
    days: Vec<bool>,
    months: Vec<bool>,
    weekdays: Vec<bool>,
}

/// A cron expression that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("`{0}` needs five fields: minute hour day-of-month month day-of-week")]
    FieldCount(String),
    #[error("{field}: {why}")]
    Field { field: &'static str, why: String },
}

fn field(text: &str, name: &'static str, lo: u32, hi: u32) -> Result<Vec<bool>, ScheduleError> {
    let bad = |why: String| ScheduleError::Field { field: name, why };
    let mut allowed = vec![false; hi as usize + 1];
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .map_err(|_| bad(format!("bad step `{s}`")))?,
            ),
            None => (part, 1),
        };
        if step == 0 {
            return Err(bad("a step of 0".into()));
        }
        let (from, to) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            let a = a
                .parse()
                .map_err(|_| bad(format!("`{a}` is not a number")))?;
            let b = b
                .parse()
                .map_err(|_| bad(format!("`{b}` is not a number")))?;
            (a, b)
        } else {
            let n = range
                .parse()
                .map_err(|_| bad(format!("`{range}` is not a number")))?;
            (n, if part.contains('/') { hi } else { n })
        };
        if from < lo || to > hi || from > to {
            return Err(bad(format!("`{part}` is outside {lo}-{hi}")));
        }
        for v in (from..=to).step_by(step as usize) {
            allowed[v as usize] = true;
        }
    }
    Ok(allowed)
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        let [m, h, dom, mon, dow] = parts[..] else {
            return Err(ScheduleError::FieldCount(text.to_string()));
        };
        let mut weekdays = field(dow, "day of week", 0, 7)?;
        if weekdays[7] {
            weekdays[0] = true;
        }
        Ok(Schedule {
            text: text.to_string(),
            minutes: field(m, "minute", 0, 59)?,
            hours: field(h, "hour", 0, 23)?,
            days: field(dom, "day of month", 1, 31)?,
            months: field(mon, "month", 1, 12)?,
            weekdays,
        })
    }

    fn matches(&self, t: NaiveDateTime) -> bool {
        self.minutes[t.minute() as usize]
            && self.hours[t.hour() as usize]
            && self.days[t.day() as usize]
            && self.months[t.month() as usize]
            && self.weekdays[t.weekday().num_days_from_sunday() as usize]
    }

    /// The last scheduled minute in `(after, until]`, in the time zone `tz`, if any.
    pub fn last_between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        tz: Tz,
    ) -> Option<DateTime<Utc>> {
        let start = after.max(until - Duration::days(2));
        let mut t = until
            .with_timezone(&tz)
            .naive_local()
            .with_second(0)?
            .with_nanosecond(0)?;
        let floor = start.with_timezone(&tz).naive_local();
        while t > floor {
            if self.matches(t) {
                return t
                    .and_local_timezone(tz)
                    .earliest()
                    .map(|x| x.with_timezone(&Utc));
            }
            t -= Duration::minutes(1);
        }
        None
    }
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for Schedule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Schedule::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_02_00_run_in_shanghai() {
        let s = Schedule::parse("0 2 * * *").unwrap();
        let tz = chrono_tz::Asia::Shanghai;
        // 2026-10-31T18:00Z is 02:00 on 1 November in Shanghai.
        let after: DateTime<Utc> = "2026-10-31T17:00:00Z".parse().unwrap();
        let until: DateTime<Utc> = "2026-10-31T18:30:00Z".parse().unwrap();
        assert_eq!(
            s.last_between(after, until, tz),
            Some("2026-10-31T18:00:00Z".parse().unwrap())
        );
        assert_eq!(s.last_between(until, until + Duration::hours(1), tz), None);
        assert!(
            Schedule::parse("0 2 * *")
                .unwrap_err()
                .to_string()
                .contains("five fields")
        );
        assert!(
            Schedule::parse("61 2 * * *")
                .unwrap_err()
                .to_string()
                .contains("minute")
        );
        let weekdays = Schedule::parse("30 1 * * 1-5").unwrap();
        // Sunday 1 November 2026, 01:30 Shanghai.
        let sunday: DateTime<Utc> = "2026-10-31T17:30:00Z".parse().unwrap();
        assert_eq!(
            weekdays.last_between(sunday - Duration::minutes(1), sunday, tz),
            None
        );
    }
}
