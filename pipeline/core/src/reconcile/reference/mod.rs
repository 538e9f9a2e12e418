//! Finding what a payment refers to in the free text people type into a bank transfer:
//! contract numbers in any common spelling, installment hints, and normalized payer names.

mod hints;
mod names;
#[cfg(test)]
mod tests;

use regex::Regex;

use hints::{chinese_installments, english_installments};
pub use names::normalize_company_name;

/// Extracts contract numbers from remittance text and spells them the CRM's way. A clone
/// has its own regex caches: give each thread one.
#[derive(Clone)]
pub struct ContractRefFinder {
    pattern: Regex,
    template: Vec<TemplatePart>,
    english_anchor: Regex,
}

impl ContractRefFinder {
    /// `pattern` is a regex whose capture groups `template` reassembles (`HT-${1}-${2}`).
    pub fn new(pattern: &str, template: &str) -> Result<Self, regex::Error> {
        Ok(ContractRefFinder {
            pattern: Regex::new(pattern)?,
            template: parse_template(template),
            // An anchor only: the scanner behind it reads the words properly.
            english_anchor: Regex::new(
                r"(?i)inst|phase|period|stage|\d(st|nd|rd|th)|first|second|third|fourth|fifth|sixth",
            )
            .expect("valid regex"),
        })
    }

    /// The contract numbers a text names and the installments it names, read once: what
    /// the matcher needs of every remittance.
    pub fn read(&self, text: &str) -> (Vec<String>, Vec<u32>) {
        let text = half_width(text);
        let mut hints = Vec::new();
        let contracts = self.contract_numbers_in(&text, &mut hints);
        hints.extend(self.installments_in(&text));
        hints.sort_unstable();
        hints.dedup();
        (contracts, hints)
    }

    /// Every contract number in the text, normalized, in order of appearance, without repeats.
    pub fn contract_numbers(&self, text: &str) -> Vec<String> {
        self.contract_numbers_in(&half_width(text), &mut Vec::new())
    }

    /// The contract numbers, and the installments only when exactly one contract is named
    /// (the exact-reference pass: most texts stop after the first regex).
    pub fn read_single(&self, text: &str) -> Option<(String, Vec<u32>)> {
        let text = half_width(text);
        let mut hints = Vec::new();
        let mut contracts = self.contract_numbers_in(&text, &mut hints);
        if contracts.len() != 1 {
            return None;
        }
        hints.extend(self.installments_in(&text));
        hints.sort_unstable();
        hints.dedup();
        contracts.pop().map(|c| (c, hints))
    }

    /// Installment numbers the text names (`第2期`, `第1-2期`, `2/3期`, `HT-2026-000100/2`,
    /// `installment 3`, `2nd installment`), if any.
    pub fn installments(&self, text: &str) -> Vec<u32> {
        self.read(text).1
    }

    /// Contract numbers in an already half-width text; an installment written right after
    /// one (`HT-2026-000100/2`, `HT-2026-000100-2期`) goes to `hints`.
    fn contract_numbers_in(&self, text: &str, hints: &mut Vec<u32>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut locations = self.pattern.capture_locations();
        let mut at = 0;
        while at <= text.len() {
            let Some(whole) = self.pattern.captures_read_at(&mut locations, text, at) else {
                break;
            };
            at = if whole.end() > whole.start() {
                whole.end()
            } else {
                whole.end() + 1
            };
            let after = &text[whole.end()..];
            // A longer run of digits is some other number that merely contains the pattern.
            if after.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                continue;
            }
            if let Some(seq) = installment_suffix(after) {
                hints.push(seq);
            }
            let mut spelled = String::with_capacity(16);
            for part in &self.template {
                match part {
                    TemplatePart::Text(t) => spelled.push_str(t),
                    TemplatePart::Group(g) => {
                        if let Some((s, e)) = locations.get(*g) {
                            spelled.push_str(&text[s..e]);
                        }
                    }
                }
            }
            spelled.make_ascii_uppercase();
            if !out.contains(&spelled) {
                out.push(spelled);
            }
        }
        out
    }

    fn installments_in(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        // Most texts name no installment: look for each reader's anchor before running it.
        let chinese = text.contains('期');
        let english = self.english_anchor.is_match(text);
        let mut ranges: Vec<(Option<u32>, Option<u32>)> = Vec::new();
        if chinese {
            ranges.extend(chinese_installments(text));
        }
        if english {
            ranges.extend(english_installments(text));
        }
        for range in ranges {
            match range {
                (Some(a), Some(b)) if b >= a && b - a < 12 => out.extend(a..=b),
                (Some(a), Some(b)) => out.extend([a, b]),
                (Some(a), None) => out.push(a),
                _ => {}
            }
        }
        out
    }
}

/// Full-width letters, digits and punctuation (as Chinese input methods type them) and the
/// Unicode dashes, as ASCII; other text unchanged. Borrowed when there is nothing to change.
pub fn half_width(text: &str) -> std::borrow::Cow<'_, str> {
    let wide = |c: char| matches!(c, '\u{ff01}'..='\u{ff5e}' | '\u{3000}' | '\u{2010}'..='\u{2015}' | '\u{2212}');
    if text.is_ascii() || !text.chars().any(wide) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| match c {
                '\u{ff01}'..='\u{ff5e}' => char::from_u32(c as u32 - 0xfee0).unwrap_or(c),
                '\u{3000}' => ' ',
                '\u{2010}'..='\u{2015}' | '\u{2212}' => '-',
                _ => c,
            })
            .collect(),
    )
}

/// The installment written right after a contract number: `/2`, `/02`, `-2期`, `#2`.
fn installment_suffix(after: &str) -> Option<u32> {
    let bytes = after.as_bytes();
    let sep = *bytes.first()?;
    if !matches!(sep, b'/' | b'-' | b'#') {
        return None;
    }
    let digits = bytes[1..].iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 2 {
        return None;
    }
    let rest = &after[1 + digits..];
    // `/2` stands alone; `-2` only with 期 (a bare `-2` may be part of another number).
    let standalone = rest
        .chars()
        .next()
        .is_none_or(|c| !c.is_ascii_alphanumeric());
    let ok = match sep {
        b'/' | b'#' => standalone && !rest.starts_with(['/', '.', ',']),
        _ => rest.trim_start().starts_with('期'),
    };
    let seq: u32 = after[1..1 + digits].parse().ok()?;
    (ok && seq > 0).then_some(seq)
}

/// A piece of the contract-number template: literal text or a capture group (`${1}`).
#[derive(Clone)]
enum TemplatePart {
    Text(String),
    Group(usize),
}

fn parse_template(template: &str) -> Vec<TemplatePart> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        let (text, after) = rest.split_at(i);
        if !text.is_empty() {
            parts.push(TemplatePart::Text(text.to_string()));
        }
        let after = &after[1..];
        let (digits, tail) = match after.strip_prefix('{') {
            Some(braced) => match braced.find('}') {
                Some(close) => (&braced[..close], &braced[close + 1..]),
                None => (braced, ""),
            },
            None => {
                let n = after.chars().take_while(char::is_ascii_digit).count();
                (&after[..n], &after[n..])
            }
        };
        match digits.parse() {
            Ok(g) => parts.push(TemplatePart::Group(g)),
            Err(_) => parts.push(TemplatePart::Text(format!("${digits}"))),
        }
        rest = tail;
    }
    if !rest.is_empty() {
        parts.push(TemplatePart::Text(rest.to_string()));
    }
    parts
}
