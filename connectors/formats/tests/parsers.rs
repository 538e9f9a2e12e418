//! Property tests of the amount and date readers every decoder shares: an amount written any
//! common way reads back to exactly the same decimal; text that is not an amount is refused,
//! never guessed; a statement date reads back to the same day.

use std::str::FromStr;

use proptest::prelude::*;
use reconlight_formats::ValueError;
use reconlight_formats::money::{parse_amount, parse_amount_with};
use reconlight_formats::mt940;
use rust_decimal::Decimal;

/// `1234567.5` with `,` every three digits: `1,234,567.5`.
fn grouped(whole: &str, sep: char) -> String {
    let mut out = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn amounts_read_back_exactly(
        cents in 0i64..10_000_000_000_000,
        negative in any::<bool>(),
        style in 0usize..6,
    ) {
        let d = Decimal::new(if negative { -cents } else { cents }, 2);
        let abs = d.abs().to_string();
        let (whole, frac) = abs.split_once('.').unwrap_or((&abs, ""));
        let sign = if negative { "-" } else { "" };
        let text = match style {
            0 => format!("{sign}{abs}"),
            1 => format!("{sign}¥{}.{frac}", grouped(whole, ',')),
            2 => format!("CNY {sign}{}.{frac}", grouped(whole, ' ')),
            3 => format!("{}.{frac}{}", grouped(whole, ','), if negative { "-" } else { "" }),
            4 => if negative { format!("({abs})") } else { format!("+{abs}") },
            _ => format!("{sign}{abs}元"),
        };
        prop_assert_eq!(parse_amount(&text), Ok(d), "{}", text);
        // The same with a decimal comma and a point for thousands.
        let european = format!("{sign}{},{frac}", grouped(whole, '.'));
        prop_assert_eq!(parse_amount_with(&european, ',', Some('.')), Ok(d), "{}", european);
    }

    #[test]
    fn exponents_and_inner_signs_are_refused(a in 1u32..100_000, b in 0u32..500, sep in prop::sample::select(vec!["e", "E", "-", "+"])) {
        let text = format!("{a}{sep}{b}");
        prop_assert!(parse_amount(&text).is_err(), "{} read as {:?}", text, parse_amount(&text));
    }

    #[test]
    fn any_text_is_an_amount_or_a_reason(text in ".{0,40}") {
        match parse_amount(&text) {
            // Whatever was accepted prints back to the same value.
            Ok(d) => prop_assert_eq!(Decimal::from_str(&d.to_string()).ok(), Some(d)),
            Err(why) => {
                let is_amount = matches!(why, ValueError::Amount { .. });
                prop_assert!(is_amount && why.to_string().contains("is not an amount"))
            }
        }
    }

    #[test]
    fn statement_dates_read_back(days in 0i64..36_500) {
        let day = chrono::NaiveDate::from_ymd_opt(1990, 1, 1).unwrap() + chrono::Duration::days(days);
        let yymmdd = day.format("%y%m%d").to_string();
        let text = format!(
            ":20:S\n:25:ACC\n:28C:1\n:60F:C{yymmdd}EUR0,\n:61:{yymmdd}C12,50NTRFNONREF//B1\n:86:X\n:62F:C{yymmdd}EUR12,50\n-\n"
        );
        let msg = mt940::decode(&text).unwrap();
        let tx = msg.transactions[0].as_ref().unwrap();
        // Two-digit years: the SWIFT window puts 90-99 in the 1900s and the rest after 2000.
        let expected_year = chrono::Datelike::year(&day);
        prop_assert_eq!(chrono::Datelike::year(&tx.booking_date) % 100, expected_year % 100);
        prop_assert_eq!(tx.amount.amount, Decimal::new(1250, 2));
        prop_assert!(msg.statements[0].problems.is_empty(), "{:?}", msg.statements[0].problems);
    }
}
