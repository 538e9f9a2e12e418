//! Payment terms -> installments (the expected receipts). Expected dates are derived from
//! the contract's terms and its anchor dates, never typed by hand. Terms are the reference
//! schema's JSON or free text (`freetext`).

pub mod freetext;

pub use crate::derived::{Anchor, Installment};

use std::str::FromStr;

use crate::error::TermsError;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use reconlight_formats::model::{Contract, Currency, Money};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// One installment of a contract's payment terms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Term {
    pub seq: u32,
    pub share: Share,
    pub due_days: i64,
    pub anchor: Anchor,
}

/// An installment's size: a percentage of the contract amount, or a fixed amount.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Share {
    Percent(Decimal),
    Fixed(Decimal),
    /// Whatever the other installments leave (the balance).
    Remainder,
}

/// Decimal places of a currency's minor unit.
pub fn minor_units(currency: Currency) -> u32 {
    match currency.as_str() {
        "JPY" | "KRW" | "VND" | "CLP" | "ISK" | "UGX" | "XAF" | "XOF" => 0,
        "BHD" | "KWD" | "OMR" | "JOD" | "TND" | "LYD" | "IQD" => 3,
        _ => 2,
    }
}

/// Parses the structured terms of the reference schema:
/// `[{"seq":1,"percent":"30","due_days":7,"anchor":"signed"}, ...]` (`amount` instead of
/// `percent` for a fixed sum).
pub fn parse_terms(text: &str) -> Result<Vec<Term>, TermsError> {
    let t = text.trim();
    if t.is_empty() {
        return Err("the contract has no payment terms".into());
    }
    let Ok(doc) = serde_json::from_str::<Json>(t) else {
        return freetext::parse_free_text(t);
    };
    let items = doc.as_array().ok_or("payment terms must be a JSON array")?;
    if items.is_empty() {
        return Err("payment terms list no installment".into());
    }
    let mut terms = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("installment {}", i + 1);
        let dec = |key: &str| -> Result<Option<Decimal>, TermsError> {
            match item.get(key) {
                None | Some(Json::Null) => Ok(None),
                Some(Json::String(s)) => Decimal::from_str(s.trim().trim_end_matches('%'))
                    .map(Some)
                    .map_err(|_| TermsError(format!("{at}: `{key}` `{s}` is not a number"))),
                Some(n @ Json::Number(_)) => Decimal::from_str(&n.to_string())
                    .map(Some)
                    .map_err(|_| TermsError(format!("{at}: `{key}` {n} is not a number"))),
                Some(other) => Err(TermsError(format!("{at}: `{key}` {other} is not a number"))),
            }
        };
        let seq = item
            .get("seq")
            .and_then(Json::as_u64)
            .map(|s| s as u32)
            .unwrap_or(i as u32 + 1);
        let share = match (dec("percent")?, dec("amount")?) {
            (Some(p), None) if p > Decimal::ZERO && p <= Decimal::ONE_HUNDRED => Share::Percent(p),
            (Some(p), None) => {
                return Err(TermsError(format!(
                    "{at}: percent {p} is not between 0 and 100"
                )));
            }
            (None, Some(a)) if a > Decimal::ZERO => Share::Fixed(a),
            (None, Some(a)) => return Err(TermsError(format!("{at}: amount {a} is not positive"))),
            (Some(_), Some(_)) => {
                return Err(TermsError(format!("{at}: both `percent` and `amount`")));
            }
            (None, None) => {
                return Err(TermsError(format!("{at}: neither `percent` nor `amount`")));
            }
        };
        let due_days = match item.get("due_days") {
            Some(Json::Number(n)) => n
                .as_i64()
                .ok_or_else(|| format!("{at}: due_days {n} is not a whole number"))?,
            Some(Json::String(s)) => s
                .trim()
                .parse()
                .map_err(|_| format!("{at}: due_days `{s}` is not a whole number"))?,
            None | Some(Json::Null) => 0,
            Some(other) => {
                return Err(TermsError(format!(
                    "{at}: due_days {other} is not a whole number"
                )));
            }
        };
        if due_days < 0 {
            return Err(TermsError(format!("{at}: due_days {due_days} is negative")));
        }
        let anchor = match item
            .get("anchor")
            .and_then(Json::as_str)
            .map(|a| a.trim().to_ascii_lowercase())
        {
            None => Anchor::Signed,
            Some(a) if a == "signed" || a == "signing" || a == "sign" => Anchor::Signed,
            Some(a) if a == "accepted" || a == "acceptance" => Anchor::Accepted,
            Some(a) if a == "delivered" || a == "delivery" => Anchor::Delivered,
            Some(a) => {
                return Err(TermsError(format!(
                    "{at}: anchor `{a}` is not `signed`, `accepted` or `delivered`"
                )));
            }
        };
        terms.push(Term {
            seq,
            share,
            due_days,
            anchor,
        });
    }
    let mut seqs: Vec<u32> = terms.iter().map(|t| t.seq).collect();
    seqs.sort_unstable();
    seqs.dedup();
    if seqs.len() != terms.len() {
        return Err("two installments share a `seq`".into());
    }
    terms.sort_by_key(|t| t.seq);
    Ok(terms)
}

/// The contract's installments: amounts that sum exactly to the contract amount (the
/// rounding remainder goes to the last one) and due dates from the anchors, in `tz`.
/// `delivered_at` is when the contract's delivery was completed, if it has been.
pub fn installments(
    contract: &Contract,
    delivered_at: Option<DateTime<Utc>>,
    tz: Tz,
) -> Result<Vec<Installment>, TermsError> {
    let terms = parse_terms(&contract.payment_terms)?;
    let total = contract.amount.amount;
    let currency = contract.amount.currency;
    let dp = minor_units(currency);
    let remainders = terms.iter().filter(|t| t.share == Share::Remainder).count();
    if remainders > 1 {
        return Err("two installments claim the balance".into());
    }
    let has_percent = terms.iter().any(|t| matches!(t.share, Share::Percent(_)));
    let has_fixed = terms.iter().any(|t| matches!(t.share, Share::Fixed(_)));
    if has_percent && has_fixed {
        return Err("the terms mix percentages and fixed amounts".into());
    }
    let mut amounts: Vec<Decimal> = Vec::with_capacity(terms.len());
    if has_percent || !has_fixed {
        let named: Decimal = terms
            .iter()
            .filter_map(|t| match t.share {
                Share::Percent(p) => Some(p),
                _ => None,
            })
            .sum();
        let balance = Decimal::ONE_HUNDRED - named;
        if remainders == 0 && named != Decimal::ONE_HUNDRED {
            return Err(TermsError(format!(
                "the installment percentages sum to {named}%, not 100%"
            )));
        }
        if remainders == 1 && balance <= Decimal::ZERO {
            return Err(TermsError(format!(
                "the percentages already sum to {named}%, leaving no balance"
            )));
        }
        let mut allotted = Decimal::ZERO;
        for (i, t) in terms.iter().enumerate() {
            let p = match t.share {
                Share::Percent(p) => p,
                _ => balance,
            };
            let a = if i + 1 == terms.len() {
                total - allotted
            } else {
                (total * p / Decimal::ONE_HUNDRED)
                    .round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero)
            };
            allotted += a;
            amounts.push(a);
        }
    } else {
        let named: Decimal = terms
            .iter()
            .filter_map(|t| match t.share {
                Share::Fixed(a) => Some(a),
                _ => None,
            })
            .sum();
        let balance = total - named;
        if remainders == 0 && named != total {
            return Err(TermsError(format!(
                "the fixed installments sum to {named}, but the contract amount is {total}"
            )));
        }
        if remainders == 1 && balance <= Decimal::ZERO {
            return Err(TermsError(format!(
                "the fixed installments sum to {named}, leaving no balance of the contract amount {total}"
            )));
        }
        amounts.extend(terms.iter().map(|t| match t.share {
            Share::Fixed(a) => a,
            _ => balance,
        }));
    }
    Ok(terms
        .iter()
        .zip(amounts)
        .map(|(t, amount)| {
            let anchor_time = match t.anchor {
                Anchor::Signed => contract.signed_at,
                Anchor::Accepted => contract.accepted_at,
                Anchor::Delivered => delivered_at,
            };
            Installment {
                contract_no: contract.contract_no.clone(),
                seq: t.seq,
                customer_id: contract.customer_id.clone(),
                amount: Money::new(amount, currency),
                anchor: t.anchor,
                due_days: t.due_days,
                due_date: anchor_time.map(|at| business_date(at, tz) + Duration::days(t.due_days)),
            }
        })
        .collect())
}

/// The calendar date of an instant in the business time zone.
pub fn business_date(at: DateTime<Utc>, tz: Tz) -> NaiveDate {
    at.with_timezone(&tz).date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reconlight_formats::model::ContractStatus;

    fn contract(amount: &str, terms: &str) -> Contract {
        Contract {
            contract_no: "HT-2026-000001".into(),
            customer_id: "C1".into(),
            owner_id: None,
            region: None,
            amount: Money::new(Decimal::from_str(amount).unwrap(), Currency::CNY),
            status: ContractStatus::Signed,
            // 2026-03-01 20:00 UTC is already 2026-03-02 in Shanghai.
            signed_at: Some("2026-03-01T20:00:00Z".parse().unwrap()),
            signature_method: None,
            accepted_at: None,
            payment_terms: terms.into(),
            updated_at: None,
            updated_by: None,
            updated_ip: None,
        }
    }

    #[test]
    fn splits_the_amount_exactly_with_the_remainder_last() {
        let c = contract(
            "100000.01",
            r#"[{"seq":1,"percent":"33.33","due_days":7,"anchor":"signed"},{"seq":2,"percent":"33.33","due_days":30},{"seq":3,"percent":"33.34","due_days":30,"anchor":"accepted"}]"#,
        );
        let inst = installments(&c, None, chrono_tz::Asia::Shanghai).unwrap();
        let amounts: Vec<String> = inst.iter().map(|i| i.amount.amount.to_string()).collect();
        assert_eq!(amounts, ["33330.00", "33330.00", "33340.01"]);
        assert_eq!(inst[0].due_date, NaiveDate::from_ymd_opt(2026, 3, 9));
        assert_eq!(inst[2].due_date, None, "not accepted yet");
    }

    #[test]
    fn refuses_terms_that_do_not_add_up() {
        let c = contract(
            "1000",
            r#"[{"seq":1,"percent":"30"},{"seq":2,"percent":"60"}]"#,
        );
        let e = installments(&c, None, chrono_tz::Asia::Shanghai).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the installment percentages sum to 90%, not 100%"
        );
        let c = contract("1000", "按合同约定付款");
        assert!(
            installments(&c, None, chrono_tz::Asia::Shanghai)
                .unwrap_err()
                .to_string()
                .contains("no installment can be read")
        );
        let c = contract("1000", "首付2000元，验收后付清余款");
        assert!(
            installments(&c, None, chrono_tz::Asia::Shanghai)
                .unwrap_err()
                .to_string()
                .contains("leaving no balance")
        );
    }

    #[test]
    fn free_text_terms_give_the_same_installments() {
        let c = contract("500000", "签约后7日内支付30%，验收合格后30日内支付剩余70%");
        let inst = installments(&c, None, chrono_tz::Asia::Shanghai).unwrap();
        let amounts: Vec<String> = inst.iter().map(|i| i.amount.amount.to_string()).collect();
        assert_eq!(amounts, ["150000", "350000"]);
        assert_eq!(inst[0].due_date, NaiveDate::from_ymd_opt(2026, 3, 9));
        let c = contract(
            "88000.50",
            "预付款30%，发货前付60%，质保金10%于验收后一年内支付",
        );
        let delivered = Some("2026-04-10T02:00:00Z".parse().unwrap());
        let inst = installments(&c, delivered, chrono_tz::Asia::Shanghai).unwrap();
        let amounts: Vec<String> = inst.iter().map(|i| i.amount.amount.to_string()).collect();
        assert_eq!(amounts, ["26400.15", "52800.30", "8800.05"]);
        assert_eq!(
            inst[1].due_date,
            NaiveDate::from_ymd_opt(2026, 4, 10),
            "due on delivery"
        );
        assert_eq!(inst[2].due_date, None, "not accepted yet");
    }
}
