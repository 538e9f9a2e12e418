//! Reading amounts as people and banks write them, exactly or not at all: a currency sign or
//! code around the number, a sign in front (or behind, or brackets), digits grouped by a
//! thousands separator, one decimal separator. Anything else (an exponent, a sign in the
//! middle, a second decimal point, more than 28 significant digits) is refused with the
//! reason, never guessed and never read through a float.

use std::str::FromStr;

use rust_decimal::Decimal;

use crate::error::ValueError;

/// The largest amount of money one record may carry: 999,999,999,999,999.99 in any currency
/// (`numeric(17,2)`). Larger ones are typing mistakes or units mixed up; refusing them keeps
/// every sum exact and every table column in range.
pub fn max_amount() -> Decimal {
    Decimal::new(99_999_999_999_999_999, 2)
}

/// `d`, read from `text`, if it is within `max_amount` either way.
pub fn within_range(text: &str, d: Decimal) -> Result<Decimal, ValueError> {
    if d.abs() > max_amount() {
        return Err(ValueError::Amount {
            text: text.trim().to_string(),
            why: "larger than 999,999,999,999,999.99".into(),
        });
    }
    Ok(d)
}

/// Parses an amount such as `480000.00`, `¥480,000.00`, `CNY 1 234.56` or `-12.5`.
pub fn parse_amount(text: &str) -> Result<Decimal, ValueError> {
    parse_amount_with(text, '.', None)
}

/// Parses an amount with an explicit decimal separator and optional thousands separator
/// (without one, `,`, spaces, `'` and `_` group digits when they are not the decimal
/// separator).
pub fn parse_amount_with(
    text: &str,
    decimal_sep: char,
    thousands_sep: Option<char>,
) -> Result<Decimal, ValueError> {
    let refuse = |why: &str| {
        Err(ValueError::Amount {
            text: text.to_string(),
            why: why.to_string(),
        })
    };
    let mut body = text.trim();
    // A currency around the number: a symbol, 元, or a three-letter code.
    for _ in 0..2 {
        body = body
            .trim_start_matches(['¥', '￥', '$', '€', '£'])
            .trim_end_matches('元')
            .trim();
        let letters = body.chars().take_while(char::is_ascii_uppercase).count();
        if letters == 3 {
            body = body[3..].trim_start();
        }
        let trailing = body
            .chars()
            .rev()
            .take_while(char::is_ascii_uppercase)
            .count();
        if trailing == 3 {
            body = body[..body.len() - 3].trim_end();
        }
    }
    let mut negative = false;
    if let Some(inner) = body.strip_prefix('(').and_then(|b| b.strip_suffix(')')) {
        negative = true;
        body = inner.trim();
    }
    if let Some(rest) = body.strip_prefix(['-', '−']) {
        negative = !negative;
        body = rest.trim_start();
    } else if let Some(rest) = body.strip_prefix('+') {
        body = rest.trim_start();
    } else if let Some(rest) = body.strip_suffix(['-', '−']) {
        // `500.00-`, as some banks print a debit.
        negative = !negative;
        body = rest.trim_end();
    }
    // Currency symbols may also sit between the sign and the digits: `-¥12.50`.
    body = body
        .trim_start_matches(['¥', '￥', '$', '€', '£'])
        .trim_start();
    if body.is_empty() {
        return refuse("no digits");
    }
    let grouping = |c: char| match thousands_sep {
        Some(t) => c == t,
        None => c != decimal_sep && matches!(c, ',' | ' ' | '\u{a0}' | '\'' | '_'),
    };
    let mut digits = String::with_capacity(body.len());
    let mut seen_decimal = false;
    let mut last: Option<char> = None;
    for c in body.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else if c == decimal_sep {
            if seen_decimal {
                return refuse("two decimal separators");
            }
            seen_decimal = true;
            digits.push('.');
        } else if grouping(c) {
            // A group separator stands between digits of the whole part.
            if seen_decimal || !last.is_some_and(|l| l.is_ascii_digit()) {
                return refuse(&format!("`{c}` where a digit should be"));
            }
        } else if c == 'e' || c == 'E' {
            return refuse("exponents are not amounts");
        } else if c == '-' || c == '+' || c == '−' {
            return refuse("a sign inside the number");
        } else {
            return refuse(&format!("unexpected `{c}`"));
        }
        last = Some(c);
    }
    if last.is_some_and(grouping) {
        return refuse("ends in a group separator");
    }
    if !digits.chars().any(|c| c.is_ascii_digit()) {
        return refuse("no digits");
    }
    let significant = digits
        .trim_start_matches(['0', '.'])
        .chars()
        .filter(char::is_ascii_digit)
        .count();
    if significant > 28 {
        return refuse(&format!("{significant} significant digits (28 at most)"));
    }
    let d = Decimal::from_str(digits.trim_end_matches('.')).or_else(|_| refuse("out of range"))?;
    within_range(text, if negative { -d } else { d })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn reads_amounts_as_written() {
        assert_eq!(parse_amount("¥480,000.00").unwrap(), d("480000.00"));
        assert_eq!(parse_amount("CNY 1,234.5").unwrap(), d("1234.5"));
        assert_eq!(parse_amount("1 234.50 CNY").unwrap(), d("1234.50"));
        assert_eq!(parse_amount("-12.50").unwrap(), d("-12.50"));
        assert_eq!(parse_amount("(12.50)").unwrap(), d("-12.50"));
        assert_eq!(parse_amount("500.00-").unwrap(), d("-500.00"));
        assert_eq!(parse_amount("-¥12.50").unwrap(), d("-12.50"));
        assert_eq!(parse_amount("480000元").unwrap(), d("480000"));
        assert_eq!(
            parse_amount_with("1.234,56", ',', Some('.')).unwrap(),
            d("1234.56")
        );
    }

    #[test]
    fn refuses_what_it_cannot_read_exactly() {
        for (text, why) in [
            ("twelve", "unexpected"),
            ("12abc", "unexpected"),
            ("1.2.3", "two decimal separators"),
            ("1e400", "exponents"),
            ("1.5e3", "exponents"),
            ("12-34", "a sign inside"),
            ("1,,000", "where a digit should be"),
            ("1,000,", "ends in a group separator"),
            ("", "no digits"),
            ("CNY", "no digits"),
            ("123456789012345678901234567890123", "significant digits"),
        ] {
            let e = parse_amount(text).unwrap_err();
            assert!(e.to_string().contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn keeps_every_digit() {
        assert_eq!(
            parse_amount("123456789012345.67").unwrap().to_string(),
            "123456789012345.67"
        );
        assert_eq!(
            parse_amount("99999999999999.99").unwrap().to_string(),
            "99999999999999.99"
        );
    }
}
