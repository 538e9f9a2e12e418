//! Payment terms as people write them, in Chinese or English, parsed into the same
//! structure as the reference schema's JSON:
//!
//! - `签约后7日内支付30%，验收合格后30日内支付剩余70%`
//! - `预付款30%，发货前付60%，质保金10%于验收后一年内支付`
//! - `30% within 7 days of signing, balance net 30 after acceptance`
//! - `首付5万元，验收后支付余款`
//!
//! Each clause (split at `，,；;。`) that states a share (a percentage, an amount, or the
//! balance) is one installment; its anchor is the event it names (signing, acceptance,
//! delivery; an advance is due at signing) and its days the period it names (`7日内`,
//! `30 days`, `net 30`, `一年内` = 365, `3个月` = 90). A clause without a share is ignored;
//! text with no installment, or two balances, does not parse. Nothing is guessed.

use crate::error::TermsError;
use std::str::FromStr;

use regex::Regex;
use rust_decimal::Decimal;

use super::{Anchor, Share, Term};

/// Chinese numerals up to the thousands: `三十` = 30, `两` = 2, `十五` = 15, `一百` = 100.
pub fn chinese_number(s: &str) -> Option<u64> {
    if let Ok(n) = s.parse() {
        return Some(n);
    }
    let digit = |c: char| match c {
        '零' | '〇' => Some(0),
        '一' | '壹' => Some(1),
        '二' | '两' | '贰' => Some(2),
        '三' | '叁' => Some(3),
        '四' | '肆' => Some(4),
        '五' | '伍' => Some(5),
        '六' | '陆' => Some(6),
        '七' | '柒' => Some(7),
        '八' | '捌' => Some(8),
        '九' | '玖' => Some(9),
        _ => None,
    };
    let (mut total, mut current) = (0u64, None::<u64>);
    for c in s.chars() {
        let unit = match c {
            '十' | '拾' => 10,
            '百' | '佰' => 100,
            '千' | '仟' => 1000,
            _ => {
                current = Some(digit(c)?);
                continue;
            }
        };
        total += current.unwrap_or(1) * unit;
        current = None;
    }
    let n = total + current.unwrap_or(0);
    (!s.is_empty()).then_some(n)
}

struct Patterns {
    percent: Regex,
    percent_cn: Regex,
    amount: Regex,
    remainder: Regex,
    days: Regex,
    net: Regex,
    signed: Regex,
    accepted: Regex,
    delivered: Regex,
    advance: Regex,
}

fn patterns() -> &'static Patterns {
    static P: std::sync::OnceLock<Patterns> = std::sync::OnceLock::new();
    P.get_or_init(|| Patterns {
        percent: Regex::new(r"(\d+(?:\.\d+)?)\s*[%％]").expect("regex"),
        percent_cn: Regex::new(r"百分之([零〇一二两三四五六七八九十百]+)").expect("regex"),
        amount: Regex::new(
            r"(?i)(?:[¥￥]|RMB|CNY|人民币)\s*([\d,]+(?:\.\d+)?)\s*(万)?\s*元?|([\d,]+(?:\.\d+)?)\s*(万)?\s*元",
        )
        .expect("regex"),
        remainder: Regex::new(r"(?i)剩余|余款|尾款|余额|其余|balance|remainder|the rest|remaining").expect("regex"),
        days: Regex::new(
            r"(?i)(\d+|[零〇一二两三四五六七八九十百]+)\s*(?:个)?\s*(日历日|工作日|个工作日|日|天|周|星期|个月|月|年|days?|business days?|weeks?|months?|years?)",
        )
        .expect("regex"),
        net: Regex::new(r"(?i)\bnet\s*(\d+)").expect("regex"),
        signed: Regex::new(r"(?i)签约|签订|签署|签字|合同生效|sign").expect("regex"),
        accepted: Regex::new(r"(?i)验收|accept").expect("regex"),
        delivered: Regex::new(r"(?i)发货|交货|到货|交付|delivery|deliver|shipment|ship").expect("regex"),
        advance: Regex::new(r"(?i)预付|首付|定金|订金|advance|down\s*payment|upfront|deposit").expect("regex"),
    })
}

fn period_days(n: u64, unit: &str) -> u64 {
    let u = unit.to_ascii_lowercase();
    if u.starts_with("week") || u == "周" || u == "星期" {
        n * 7
    } else if u.starts_with("month") || u.contains('月') {
        n * 30
    } else if u.starts_with("year") || u == "年" {
        n * 365
    } else {
        n
    }
}

/// Splits at clause punctuation, keeping thousands separators (`100,000`) inside amounts.
fn clauses(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = vec![String::new()];
    for (i, &c) in chars.iter().enumerate() {
        let thousands = c == ','
            && i > 0
            && chars[i - 1].is_ascii_digit()
            && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
        if matches!(c, '，' | ',' | '；' | ';' | '。' | '\n') && !thousands {
            out.push(String::new());
        } else {
            out.last_mut().expect("non-empty").push(c);
        }
    }
    out
}

/// Parses free-text terms; `Err` says why they cannot be trusted.
pub fn parse_free_text(text: &str) -> Result<Vec<Term>, TermsError> {
    let p = patterns();
    let normalized = text.replace("半年", "6个月");
    let mut terms = Vec::new();
    let mut remainder_seen = false;
    for clause in clauses(&normalized)
        .iter()
        .map(|c| c.trim())
        .filter(|c| !c.is_empty())
    {
        let share = if let Some(c) = p.percent.captures(clause) {
            Share::Percent(Decimal::from_str(&c[1]).map_err(|e| format!("`{clause}`: {e}"))?)
        } else if let Some(c) = p.percent_cn.captures(clause) {
            Share::Percent(Decimal::from(
                chinese_number(&c[1])
                    .ok_or_else(|| format!("`{clause}`: cannot read the percentage"))?,
            ))
        } else if let Some(c) = p.amount.captures(clause) {
            let (digits, wan) = match c.get(1) {
                Some(d) => (d.as_str(), c.get(2).is_some()),
                None => (
                    c.get(3).map(|m| m.as_str()).unwrap_or(""),
                    c.get(4).is_some(),
                ),
            };
            let mut amount = Decimal::from_str(&digits.replace(',', ""))
                .map_err(|e| format!("`{clause}`: {e}"))?;
            if wan {
                amount *= Decimal::from(10_000);
            }
            Share::Fixed(amount)
        } else if p.remainder.is_match(clause) {
            if remainder_seen {
                return Err(TermsError(format!(
                    "two clauses claim the balance (`{clause}`)"
                )));
            }
            remainder_seen = true;
            Share::Remainder
        } else {
            continue;
        };
        let anchor_of = |re: &Regex| re.find(clause).map(|m| m.start());
        let mut anchors: Vec<(usize, Anchor)> = [
            (anchor_of(&p.signed), Anchor::Signed),
            (anchor_of(&p.accepted), Anchor::Accepted),
            (anchor_of(&p.delivered), Anchor::Delivered),
        ]
        .into_iter()
        .filter_map(|(at, a)| at.map(|at| (at, a)))
        .collect();
        anchors.sort_by_key(|a| a.0);
        let anchor = match anchors.first() {
            Some((_, a)) => *a,
            None if p.advance.is_match(clause) => Anchor::Signed,
            None if terms.is_empty() => Anchor::Signed,
            None => {
                return Err(TermsError(format!(
                    "`{clause}` does not say when it is due (signing, acceptance or delivery)"
                )));
            }
        };
        let due_days = if let Some(c) = p.net.captures(clause) {
            c[1].parse::<u64>()
                .map_err(|e| format!("`{clause}`: {e}"))?
        } else if let Some(c) = p.days.captures(clause) {
            let n = chinese_number(&c[1])
                .ok_or_else(|| format!("`{clause}`: cannot read `{}`", &c[1]))?;
            period_days(n, &c[2])
        } else {
            0
        };
        terms.push(Term {
            seq: terms.len() as u32 + 1,
            share,
            due_days: due_days as i64,
            anchor,
        });
    }
    if terms.is_empty() {
        return Err(TermsError(format!(
            "no installment can be read from the payment terms `{}`",
            text.trim()
        )));
    }
    if remainder_seen && !matches!(terms.last().map(|t| &t.share), Some(Share::Remainder)) {
        return Err("the balance must be the last installment".into());
    }
    Ok(terms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pct(p: i64) -> Share {
        Share::Percent(Decimal::from(p))
    }

    fn t(seq: u32, share: Share, due_days: i64, anchor: Anchor) -> Term {
        Term {
            seq,
            share,
            due_days,
            anchor,
        }
    }

    #[test]
    fn chinese_terms() {
        assert_eq!(
            parse_free_text("签约后7日内支付30%，验收合格后30日内支付剩余70%").unwrap(),
            [
                t(1, pct(30), 7, Anchor::Signed),
                t(2, pct(70), 30, Anchor::Accepted)
            ]
        );
        assert_eq!(
            parse_free_text("预付款30%，发货前付60%，质保金10%于验收后一年内支付").unwrap(),
            [
                t(1, pct(30), 0, Anchor::Signed),
                t(2, pct(60), 0, Anchor::Delivered),
                t(3, pct(10), 365, Anchor::Accepted)
            ]
        );
        assert_eq!(
            parse_free_text("合同签订后十五天内支付百分之五十；余款于验收后3个月内付清").unwrap(),
            [
                t(1, pct(50), 15, Anchor::Signed),
                t(2, Share::Remainder, 90, Anchor::Accepted)
            ]
        );
        assert_eq!(
            parse_free_text("首付5万元，验收后支付余款").unwrap(),
            [
                t(1, Share::Fixed(Decimal::from(50_000)), 0, Anchor::Signed),
                t(2, Share::Remainder, 0, Anchor::Accepted)
            ]
        );
    }

    #[test]
    fn english_terms() {
        assert_eq!(
            parse_free_text("30% within 7 days of signing, balance net 30 after acceptance")
                .unwrap(),
            [
                t(1, pct(30), 7, Anchor::Signed),
                t(2, Share::Remainder, 30, Anchor::Accepted)
            ]
        );
        assert_eq!(
            parse_free_text("签约后支付¥100,000.00元，验收后付清余款").unwrap(),
            [
                t(1, Share::Fixed(Decimal::from(100_000)), 0, Anchor::Signed),
                t(2, Share::Remainder, 0, Anchor::Accepted)
            ]
        );
        assert_eq!(
            parse_free_text(
                "Down payment RMB 20000 upon signature; 2 weeks after delivery the remainder"
            )
            .unwrap(),
            [
                t(1, Share::Fixed(Decimal::from(20_000)), 0, Anchor::Signed),
                t(2, Share::Remainder, 14, Anchor::Delivered)
            ]
        );
    }

    #[test]
    fn refuses_to_guess() {
        assert!(
            parse_free_text("按合同约定付款")
                .unwrap_err()
                .to_string()
                .contains("no installment")
        );
        assert!(
            parse_free_text("30% on signing, balance after acceptance, remainder on delivery")
                .unwrap_err()
                .to_string()
                .contains("two clauses claim the balance")
        );
        assert!(
            parse_free_text("30% on signing, 70% later")
                .unwrap_err()
                .to_string()
                .contains("does not say when it is due")
        );
        assert_eq!(chinese_number("三十"), Some(30));
        assert_eq!(chinese_number("十五"), Some(15));
        assert_eq!(chinese_number("两"), Some(2));
        assert_eq!(chinese_number("一百二十"), Some(120));
    }
}
