//! Lenient reading of amounts as people and banks write them.

use std::str::FromStr;

use rust_decimal::Decimal;

/// Parses an amount such as `480000.00`, `¥480,000.00`, `CNY 1 234,56` (with `decimal_comma`)
/// or `-12.5`, without ever going through a float.
pub fn parse_amount(text: &str) -> Result<Decimal, String> {
    parse_amount_with(text, '.', None)
}

/// Parses an amount with an explicit decimal separator and optional thousands separator.
pub fn parse_amount_with(
    text: &str,
    decimal_sep: char,
    thousands_sep: Option<char>,
) -> Result<Decimal, String> {
    let mut s = String::with_capacity(text.len());
    let mut negative = false;
    for c in text.trim().chars() {
        match c {
            '0'..='9' => s.push(c),
            '-' | '−' => negative = true,
            '(' if s.is_empty() => negative = true,
            c if c == decimal_sep => s.push('.'),
            c if Some(c) == thousands_sep => {}
            ',' | ' ' | '\u{a0}' | '\'' | '_' if thousands_sep.is_none() && decimal_sep != c => {}
            '+' | ')' | '¥' | '￥' | '$' | '€' | '£' => {}
            c if c.is_ascii_alphabetic() || c == '元' => {}
            _ => return Err(format!("`{text}` is not an amount")),
        }
    }
    if s.is_empty() || s == "." {
        return Err(format!("`{text}` is not an amount"));
    }
    let d = Decimal::from_str(&s).map_err(|e| format!("`{text}` is not an amount: {e}"))?;
    Ok(if negative { -d } else { d })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_amounts_as_written() {
        assert_eq!(
            parse_amount("¥480,000.00").unwrap(),
            Decimal::new(48000000, 2)
        );
        assert_eq!(parse_amount("CNY 1,234.5").unwrap(), Decimal::new(12345, 1));
        assert_eq!(parse_amount("-12.50").unwrap(), Decimal::new(-1250, 2));
        assert_eq!(
            parse_amount_with("1.234,56", ',', Some('.')).unwrap(),
            Decimal::new(123456, 2)
        );
        assert!(parse_amount("twelve").is_err());
        assert!(parse_amount("1.2.3").is_err());
    }
}
