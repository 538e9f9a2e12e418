//! The sales side of the CRM the rule packs watch: weekly targets per salesperson (with
//! the reasons numbers changed), corrective actions, leads and their interactions, and
//! marketing spend per region.

use chrono::{Datelike, Duration};
use rust_decimal::Decimal;
use serde_json::json;

use super::names::*;
use super::writers::CdcTable;
use super::*;

const LEAD_CHANNELS: &[&str] = &["call", "visit", "wechat", "email"];
const LEAD_SOURCES: &[&str] = &["展会", "官网", "招标网", "转介绍", "电话营销"];
const ACTIONS: &[&str] = &[
    "陪访重点客户",
    "调整拜访计划",
    "补充报价方案",
    "区域经理一对一辅导",
    "重新分配线索",
];

/// Adds the sales tables' change events to the world.
pub(super) fn sales(g: &mut Gen, w: &mut World) {
    let mut reps: Vec<String> = w
        .final_contracts
        .iter()
        .filter_map(|(c, _)| c.owner_id.clone())
        .collect();
    reps.sort();
    reps.dedup();
    let first_monday = {
        let d = g.start;
        d - Duration::days(d.weekday().num_days_from_monday() as i64)
    };

    // Weekly targets, set each Monday morning; a few are revised with a reason.
    for rep in &reps {
        let base = Decimal::from(g.rng.range(8, 30) * 100_000);
        let mut monday = first_monday;
        while monday + Duration::days(6) <= g.end {
            let id = format!("TG-{rep}-{}", monday.format("%Y%m%d"));
            let mut row = json!({
                "target_id": id, "owner_id": rep, "region": g.rng.pick(REGIONS).to_string(),
                "period_start": monday.to_string(), "period_end": (monday + Duration::days(6)).to_string(),
                "target_amount": base.to_string(), "currency": "CNY", "change_reason": "季度目标分解",
                "updated_by": "M01", "updated_at": g.local(monday, 9 * 60).to_rfc3339(),
            });
            let at = g.local(monday, 9 * 60);
            w.cdc.push((
                at,
                CdcTable::Extra("sales_targets"),
                "c".into(),
                None,
                Some(row.clone()),
            ));
            if g.rng.chance(0.05) {
                let before = row.clone();
                let revised = (base * Decimal::new(g.rng.range(90, 105), 2)).round_dp(0);
                let at = at + Duration::hours(g.rng.range(2, 48));
                row["target_amount"] = json!(revised.to_string());
                row["change_reason"] = json!("城市经理调整：重点客户延期签约");
                row["updated_by"] = json!("M02");
                row["updated_at"] = json!(at.to_rfc3339());
                w.cdc.push((
                    at,
                    CdcTable::Extra("sales_targets"),
                    "u".into(),
                    Some(before),
                    Some(row),
                ));
            }
            monday += Duration::days(7);
        }
        // Some managers record what they do about a weak fortnight.
        for _ in 0..g.rng.range(0, 2) {
            let day = g.start + Duration::days(g.rng.range(14, (g.end - g.start).num_days()));
            let at = g.work_time(day);
            let id = format!("CA-{rep}-{}", day.format("%Y%m%d"));
            let row = json!({"action_id": id, "owner_id": rep, "created_at": at.to_rfc3339(), "created_by": "M01", "description": g.rng.pick(ACTIONS).to_string()});
            w.cdc.push((
                at,
                CdcTable::Extra("corrective_actions"),
                "c".into(),
                None,
                Some(row),
            ));
        }
    }

    // Leads and how quickly they were followed up.
    let n_leads = (w.final_contracts.len() / 2).max(10);
    for i in 0..n_leads {
        let day = g.start + Duration::days(g.rng.range(0, (g.end - g.start).num_days()));
        let created = g.work_time(day);
        let grade = match g.rng.range(0, 99) {
            0..=4 => "A+",
            5..=24 => "A",
            25..=69 => "B",
            _ => "C",
        };
        let owner = g.rng.pick(&reps).clone();
        let id = format!("LD-{:06}", i + 1);
        let mut lead = json!({
            "lead_id": id, "owner_id": owner, "grade": grade, "region": g.rng.pick(REGIONS).to_string(),
            "source": g.rng.pick(LEAD_SOURCES).to_string(), "status": "open", "created_at": created.to_rfc3339(),
        });
        w.cdc.push((
            created,
            CdcTable::Extra("leads"),
            "c".into(),
            None,
            Some(lead.clone()),
        ));
        let first_delay_minutes = if grade == "A+" && g.rng.chance(0.85) {
            g.rng.range(10, 220)
        } else {
            g.rng.range(30, 100 * 60)
        };
        let mut at = created + Duration::minutes(first_delay_minutes);
        let touches = g.rng.range(0, 5);
        for k in 0..touches {
            if g.date_of(at) >= g.end {
                break;
            }
            let row = json!({
                "interaction_id": format!("{id}-{}", k + 1), "lead_id": id, "at": at.to_rfc3339(),
                "channel": g.rng.pick(LEAD_CHANNELS).to_string(), "effective": g.rng.chance(0.6), "note": "",
            });
            w.cdc.push((
                at,
                CdcTable::Extra("lead_interactions"),
                "c".into(),
                None,
                Some(row),
            ));
            at += Duration::hours(g.rng.range(6, 120));
        }
        if touches > 0 && g.rng.chance(0.7) && g.date_of(at) < g.end {
            let before = lead.clone();
            lead["status"] = json!(if g.rng.chance(0.4) { "won" } else { "lost" });
            w.cdc.push((
                at,
                CdcTable::Extra("leads"),
                "u".into(),
                Some(before),
                Some(lead),
            ));
        }
    }

    // Marketing spend per region and week; one region's spend climbs at the end.
    let climbing = *g.rng.pick(REGIONS);
    let mut monday = first_monday;
    let mut week = 0i64;
    let weeks = (g.end - first_monday).num_days() / 7;
    while monday + Duration::days(6) <= g.end {
        for region in REGIONS {
            let mut amount = Decimal::from(g.rng.range(150, 300) * 1000);
            if *region == climbing && week >= weeks - 3 {
                amount *= Decimal::new(100 + 30 * (week - weeks + 4), 2);
            }
            let at = g.local(monday + Duration::days(6), 20 * 60);
            let row = json!({
                "spend_id": format!("MS-{region}-{}", monday.format("%Y%m%d")), "region": region.to_string(),
                "week_start": monday.to_string(), "amount": amount.round_dp(2).to_string(), "currency": "CNY",
            });
            w.cdc.push((
                at,
                CdcTable::Extra("marketing_spend"),
                "c".into(),
                None,
                Some(row),
            ));
        }
        monday += Duration::days(7);
        week += 1;
    }
}
