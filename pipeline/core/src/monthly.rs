//! The monthly figures managers read: sales target attainment per team and rep, handoff
//! health per department, and receivables (the month's difference rate and the money still
//! at stake in the queue by age). Pure over the live state, in business dates.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use reconlight_formats::model::{ContractStatus, Value};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::reconcile::terms::business_date;
use crate::state::LiveState;

/// A calendar month, `2026-09`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Month {
    pub year: i32,
    pub month: u32,
}

/// Text that is not a `YYYY-MM` month.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a month (YYYY-MM)")]
pub struct NotAMonth(pub String);

impl std::str::FromStr for Month {
    type Err = NotAMonth;
    fn from_str(s: &str) -> Result<Self, NotAMonth> {
        let bad = || NotAMonth(s.to_string());
        let (y, m) = s.trim().split_once('-').ok_or_else(bad)?;
        let month = Month {
            year: y.parse().map_err(|_| bad())?,
            month: m.parse().map_err(|_| bad())?,
        };
        NaiveDate::from_ymd_opt(month.year, month.month, 1)
            .filter(|d| (1900..=9000).contains(&d.year()))
            .ok_or_else(bad)?;
        Ok(month)
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl Month {
    pub fn of(date: NaiveDate) -> Month {
        Month {
            year: date.year(),
            month: date.month(),
        }
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("a checked month")
    }

    pub fn last_day(self) -> NaiveDate {
        self.next().first_day() - Duration::days(1)
    }

    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    pub fn previous(self) -> Month {
        if self.month == 1 {
            Month {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Month {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    pub fn contains(self, date: NaiveDate) -> bool {
        Month::of(date) == self
    }
}

/// One salesperson's targets that began in the month and what they signed in those periods.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepAttainment {
    /// The target's region: the team.
    pub team: String,
    pub owner_id: String,
    pub periods: usize,
    pub target: Decimal,
    pub achieved: Decimal,
    /// `achieved / target` in percent, one decimal; none when the target is zero.
    pub attainment_percent: Option<Decimal>,
    /// Periods under 60% (the attainment rule's line).
    pub periods_under_60: usize,
}

/// A team's sums over its reps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamAttainment {
    pub team: String,
    pub reps: usize,
    pub target: Decimal,
    pub achieved: Decimal,
    pub attainment_percent: Option<Decimal>,
}

/// How a department handled the work orders created in the month.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepartmentHealth {
    pub department: String,
    pub tickets: usize,
    pub acknowledged: usize,
    /// Acknowledged within the SLA (24 hours after the contract was signed).
    pub within_sla: usize,
    pub within_sla_percent: Option<Decimal>,
    /// Not acknowledged, and past the SLA at the month's end.
    pub overdue_open: usize,
    /// Median hours from the work order's creation to its acknowledgement.
    pub median_hours_to_acknowledge: Option<Decimal>,
    /// Median hours from acknowledgement to completion.
    pub median_hours_to_complete: Option<Decimal>,
}

/// Open work items by how long ago they were first found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgeBucket {
    pub label: String,
    pub items: usize,
    pub at_stake: Decimal,
}

/// The month's receivables.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receivables {
    /// Installments of signed contracts due in the month.
    pub installments_due: usize,
    pub expected: Decimal,
    /// Confirmed allocations to them.
    pub received: Decimal,
    /// Sum of |expected - received| over them.
    pub difference: Decimal,
    pub difference_rate_percent: Option<Decimal>,
    /// Work items open when the report is made, by their age at the month's end (from the
    /// installment's due date, the credit's booking date, or when the item was found);
    /// items whose age starts after the month are not in it.
    pub open_by_age: Vec<AgeBucket>,
}

/// Everything the monthly report shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthlyFigures {
    pub month: Month,
    pub reps: Vec<RepAttainment>,
    pub teams: Vec<TeamAttainment>,
    pub departments: Vec<DepartmentHealth>,
    pub receivables: Receivables,
}

/// The handoff SLA: a work order is acknowledged within this long after signing.
pub const HANDOFF_SLA_HOURS: i64 = 24;

fn percent(part: Decimal, whole: Decimal) -> Option<Decimal> {
    (!whole.is_zero()).then(|| (part * Decimal::from(100) / whole).round_dp(1))
}

fn text(row: &BTreeMap<String, Value>, column: &str) -> Option<String> {
    match row.get(column)? {
        Value::Text(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(format!("{other:?}")),
    }
}

fn date(row: &BTreeMap<String, Value>, column: &str) -> Option<NaiveDate> {
    match row.get(column)? {
        Value::Date(d) => Some(*d),
        Value::Timestamp(t) => Some(t.date_naive()),
        _ => None,
    }
}

fn decimal(row: &BTreeMap<String, Value>, column: &str) -> Option<Decimal> {
    match row.get(column)? {
        Value::Decimal(d) => Some(*d),
        Value::Int(i) => Some(Decimal::from(*i)),
        _ => None,
    }
}

fn median_hours(mut minutes: Vec<i64>) -> Option<Decimal> {
    if minutes.is_empty() {
        return None;
    }
    minutes.sort_unstable();
    let n = minutes.len();
    let mid = if n % 2 == 1 {
        Decimal::from(minutes[n / 2])
    } else {
        Decimal::from(minutes[n / 2 - 1] + minutes[n / 2]) / Decimal::from(2)
    };
    Some((mid / Decimal::from(60)).round_dp(1))
}

/// The figures for `month`.
pub fn monthly_figures(state: &LiveState, month: Month, tz: Tz) -> MonthlyFigures {
    let (reps, teams) = attainment(state, month, tz);
    MonthlyFigures {
        month,
        reps,
        teams,
        departments: handoffs(state, month, tz),
        receivables: receivables(state, month),
    }
}

/// Targets whose period began in the month; achieved is what the rep signed within each
/// period (contracts signed in the CRM, by business date), as the attainment rule counts it.
fn attainment(
    state: &LiveState,
    month: Month,
    tz: Tz,
) -> (Vec<RepAttainment>, Vec<TeamAttainment>) {
    let mut signed: BTreeMap<&str, Vec<(NaiveDate, Decimal)>> = BTreeMap::new();
    for c in state.contracts.values() {
        if let (ContractStatus::Signed, Some(owner), Some(at)) =
            (c.status, c.owner_id.as_deref(), c.signed_at)
        {
            signed
                .entry(owner)
                .or_default()
                .push((business_date(at, tz), c.amount.amount));
        }
    }
    let mut reps: BTreeMap<(String, String), RepAttainment> = BTreeMap::new();
    let empty = BTreeMap::new();
    for row in state.extra.get("sales_targets").unwrap_or(&empty).values() {
        let (Some(owner), Some(start), Some(end), Some(target)) = (
            text(row, "owner_id"),
            date(row, "period_start"),
            date(row, "period_end"),
            decimal(row, "target_amount"),
        ) else {
            continue;
        };
        if !month.contains(start) {
            continue;
        }
        let achieved: Decimal = signed
            .get(owner.as_str())
            .into_iter()
            .flatten()
            .filter(|(d, _)| *d >= start && *d <= end)
            .map(|(_, a)| *a)
            .sum();
        let team = text(row, "region").unwrap_or_else(|| "-".into());
        let rep = reps
            .entry((team.clone(), owner.clone()))
            .or_insert(RepAttainment {
                team,
                owner_id: owner,
                periods: 0,
                target: Decimal::ZERO,
                achieved: Decimal::ZERO,
                attainment_percent: None,
                periods_under_60: 0,
            });
        rep.periods += 1;
        rep.target += target;
        rep.achieved += achieved;
        if percent(achieved, target).is_some_and(|p| p < Decimal::from(60)) {
            rep.periods_under_60 += 1;
        }
    }
    let mut teams: BTreeMap<String, TeamAttainment> = BTreeMap::new();
    let reps: Vec<RepAttainment> = reps
        .into_values()
        .map(|mut r| {
            r.attainment_percent = percent(r.achieved, r.target);
            let t = teams.entry(r.team.clone()).or_insert(TeamAttainment {
                team: r.team.clone(),
                reps: 0,
                target: Decimal::ZERO,
                achieved: Decimal::ZERO,
                attainment_percent: None,
            });
            t.reps += 1;
            t.target += r.target;
            t.achieved += r.achieved;
            r
        })
        .collect();
    let teams = teams
        .into_values()
        .map(|mut t| {
            t.attainment_percent = percent(t.achieved, t.target);
            t
        })
        .collect();
    (reps, teams)
}

/// Work orders created in the month, per department.
fn handoffs(state: &LiveState, month: Month, tz: Tz) -> Vec<DepartmentHealth> {
    let month_end: DateTime<Utc> = month
        .next()
        .first_day()
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_local_timezone(tz)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| {
            month
                .last_day()
                .and_hms_opt(23, 59, 59)
                .expect("valid")
                .and_utc()
        });
    let mut by_department: BTreeMap<&str, (DepartmentHealth, Vec<i64>, Vec<i64>)> = BTreeMap::new();
    for t in state.tickets.values() {
        if !month.contains(business_date(t.created_at, tz)) {
            continue;
        }
        let signed = state
            .contracts
            .get(&t.contract_no)
            .and_then(|c| c.signed_at)
            .unwrap_or(t.created_at);
        let deadline = signed + Duration::hours(HANDOFF_SLA_HOURS);
        let (d, to_ack, to_complete) =
            by_department
                .entry(t.department.as_str())
                .or_insert_with(|| {
                    (
                        DepartmentHealth {
                            department: t.department.clone(),
                            tickets: 0,
                            acknowledged: 0,
                            within_sla: 0,
                            within_sla_percent: None,
                            overdue_open: 0,
                            median_hours_to_acknowledge: None,
                            median_hours_to_complete: None,
                        },
                        Vec::new(),
                        Vec::new(),
                    )
                });
        d.tickets += 1;
        match t.acknowledged_at {
            Some(ack) => {
                d.acknowledged += 1;
                if ack <= deadline {
                    d.within_sla += 1;
                }
                to_ack.push((ack - t.created_at).num_minutes());
                if let Some(done) = t.completed_at {
                    to_complete.push((done - ack).num_minutes());
                }
            }
            None if deadline < month_end => d.overdue_open += 1,
            None => {}
        }
    }
    by_department
        .into_values()
        .map(|(mut d, to_ack, to_complete)| {
            d.within_sla_percent = percent(Decimal::from(d.within_sla), Decimal::from(d.tickets));
            d.median_hours_to_acknowledge = median_hours(to_ack);
            d.median_hours_to_complete = median_hours(to_complete);
            d
        })
        .collect()
}

/// The age buckets of open work items, in days at the month's end.
pub const AGE_BUCKETS: [(&str, i64, i64); 4] = [
    ("0-30", 0, 30),
    ("31-60", 31, 60),
    ("61-90", 61, 90),
    ("90+", 91, i64::MAX),
];

/// Where an open item's age counts from, as receivables are aged: the installment's due
/// date, else the bank credit's booking date, else the day the item was first found.
pub fn age_basis(state: &LiveState, item: &crate::workitems::WorkItem) -> NaiveDate {
    let f = &item.finding;
    let due = f
        .contract_no
        .as_ref()
        .zip(f.installment)
        .and_then(|(no, seq)| state.installments.get(&(no.clone(), seq)))
        .and_then(|i| i.due_date);
    let booked = f
        .bank_ref
        .as_ref()
        .and_then(|r| state.bank.get(r))
        .map(|b| b.tx.booking_date);
    due.or(booked).unwrap_or(item.first_found)
}

fn receivables(state: &LiveState, month: Month) -> Receivables {
    let mut received: BTreeMap<(&str, u32), Decimal> = BTreeMap::new();
    for a in state.matches.values().flatten().filter(|a| a.confirmed) {
        *received.entry((a.contract_no.as_str(), a.seq)).or_default() += a.amount;
    }
    let mut r = Receivables {
        installments_due: 0,
        expected: Decimal::ZERO,
        received: Decimal::ZERO,
        difference: Decimal::ZERO,
        difference_rate_percent: None,
        open_by_age: Vec::new(),
    };
    for ((no, seq), inst) in &state.installments {
        let signed = state
            .contracts
            .get(no)
            .is_some_and(|c| c.status == ContractStatus::Signed);
        if !signed || !inst.due_date.is_some_and(|d| month.contains(d)) {
            continue;
        }
        let got = received
            .get(&(no.as_str(), *seq))
            .copied()
            .unwrap_or_default();
        r.installments_due += 1;
        r.expected += inst.amount.amount;
        r.received += got;
        r.difference += (inst.amount.amount - got).abs();
    }
    r.difference_rate_percent = percent(r.difference, r.expected);
    let end = month.last_day();
    let open: Vec<(i64, Decimal)> = state
        .work_items
        .values()
        .filter(|w| w.state.is_active())
        .filter_map(|w| {
            let since = age_basis(state, w);
            (since <= end).then(|| ((end - since).num_days(), w.finding.amount_at_stake()))
        })
        .collect();
    r.open_by_age = AGE_BUCKETS
        .iter()
        .map(|(label, from, to)| {
            let inside: Vec<&(i64, Decimal)> = open
                .iter()
                .filter(|(age, _)| age >= from && age <= to)
                .collect();
            AgeBucket {
                label: label.to_string(),
                items: inside.len(),
                at_stake: inside.iter().map(|(_, a)| *a).sum(),
            }
        })
        .collect();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_parse_and_step() {
        let m: Month = "2026-12".parse().unwrap();
        assert_eq!(m.next().to_string(), "2027-01");
        assert_eq!(m.previous().to_string(), "2026-11");
        assert_eq!(m.last_day(), NaiveDate::from_ymd_opt(2026, 12, 31).unwrap());
        assert_eq!(
            "2026-13".parse::<Month>().unwrap_err().to_string(),
            "`2026-13` is not a month (YYYY-MM)"
        );
        assert!("9999-01".parse::<Month>().is_err());
    }

    #[test]
    fn medians_in_hours() {
        assert_eq!(median_hours(vec![60, 180, 120]), Some(Decimal::from(2)));
        assert_eq!(median_hours(vec![60, 96]), Some(Decimal::new(13, 1)));
        assert_eq!(median_hours(vec![]), None);
    }
}
