//! Finding what a payment refers to in the free text people type into a bank transfer:
//! contract numbers in any common spelling, installment hints, and normalized payer names.

use regex::Regex;

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
            english_anchor: Regex::new(r"(?i)inst|phase|period|stage").expect("valid regex"),
        })
    }

    /// Every contract number in the text, normalized, in order of appearance, without repeats.
    pub fn contract_numbers(&self, text: &str) -> Vec<String> {
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
            // A longer run of digits is some other number that merely contains the pattern.
            if text[whole.end()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
            {
                continue;
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

    /// Installment numbers the text names (`第2期`, `第1-2期`, `installment 3`), if any.
    pub fn installments(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        // Most texts name no installment: look for each regex's anchor before running it.
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
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// `第2期`, `第 1-2 期`, `第一、二期`, `第三期`: the installment numbers between 第 and 期,
/// read by hand (this runs on every bank line, and a scanner is several times faster than a
/// Unicode regex).
fn chinese_installments(text: &str) -> Vec<(Option<u32>, Option<u32>)> {
    const NUMERAL: &str = "0123456789一二三四五六七八九十";
    const JOINERS: &str = "-~～至到、,，和及";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('第') {
        rest = &rest[i + '第'.len_utf8()..];
        let mut chars = rest.char_indices().peekable();
        let skip_space = |chars: &mut std::iter::Peekable<std::str::CharIndices>| {
            while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        };
        let number = |chars: &mut std::iter::Peekable<std::str::CharIndices>| {
            let start = chars.peek().map(|(i, _)| *i)?;
            let mut end = start;
            while let Some((i, c)) = chars.next_if(|(_, c)| NUMERAL.contains(*c)) {
                end = i + c.len_utf8();
            }
            (end > start)
                .then(|| chinese_number(&rest[start..end]))
                .flatten()
        };
        skip_space(&mut chars);
        let Some(from) = number(&mut chars) else {
            continue;
        };
        skip_space(&mut chars);
        let mut to = None;
        if chars.next_if(|(_, c)| JOINERS.contains(*c)).is_some() {
            skip_space(&mut chars);
            to = number(&mut chars);
            skip_space(&mut chars);
        }
        if chars.next_if(|(_, c)| *c == '期').is_some() {
            out.push((Some(from), to));
        }
    }
    out
}

/// `installment 2`, `Inst. 3`, `phase #1-2`, `stage 1 and 2`: the numbers after an English
/// installment word, read by hand like `chinese_installments`.
fn english_installments(text: &str) -> Vec<(Option<u32>, Option<u32>)> {
    const WORDS: [&str; 6] = [
        "installment",
        "instalment",
        "inst",
        "phase",
        "period",
        "stage",
    ];
    const JOINERS: [&[u8]; 5] = [b"-", b"to", b"&", b"and", b","];
    let bytes = text.as_bytes();
    let starts_with = |at: usize, s: &[u8]| {
        bytes.len() - at >= s.len() && bytes[at..at + s.len()].eq_ignore_ascii_case(s)
    };
    let skip = |j: &mut usize| {
        while *j < bytes.len() && matches!(bytes[*j], b' ' | b'#' | b'\t') {
            *j += 1;
        }
    };
    let number = |j: &mut usize| {
        let start = *j;
        while *j < bytes.len() && bytes[*j].is_ascii_digit() {
            *j += 1;
        }
        text[start..*j].parse::<u32>().ok()
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let at_word_start = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        let Some(word) = WORDS
            .iter()
            .find(|w| at_word_start && starts_with(i, w.as_bytes()))
        else {
            i += 1;
            continue;
        };
        let mut j = i + word.len();
        if *word == "inst" && bytes.get(j) == Some(&b'.') {
            j += 1;
        }
        skip(&mut j);
        let from = number(&mut j);
        if from.is_some() {
            let mut to = None;
            let mut k = j;
            skip(&mut k);
            if let Some(s) = JOINERS.iter().find(|s| starts_with(k, s)) {
                k += s.len();
                skip(&mut k);
                to = number(&mut k);
                if to.is_some() {
                    j = k;
                }
            }
            out.push((from, to));
        }
        i = j.max(i + 1);
    }
    out
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

/// `3`, `三`, `十二` -> 3, 3, 12.
fn chinese_number(s: &str) -> Option<u32> {
    if let Ok(n) = s.parse() {
        return Some(n);
    }
    let digit = |c: char| {
        "零一二三四五六七八九"
            .chars()
            .position(|d| d == c)
            .map(|p| p as u32)
    };
    let chars: Vec<char> = s.chars().collect();
    match chars.as_slice() {
        [c] if *c == '十' => Some(10),
        [c] => digit(*c),
        ['十', u] => Some(10 + digit(*u)?),
        [t, '十'] => Some(digit(*t)? * 10),
        [t, '十', u] => Some(digit(*t)? * 10 + digit(*u)?),
        _ => None,
    }
}

/// Normalizes a company name for comparison: full-width to half-width, brackets and
/// punctuation dropped, legal-form suffixes and branch annotations removed, case folded.
pub fn normalize_company_name(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| match c {
            '\u{3000}' => ' ',
            '\u{ff01}'..='\u{ff5e}' => char::from_u32(c as u32 - 0xfee0).unwrap_or(c),
            _ => c,
        })
        .collect::<String>()
        .to_lowercase();
    // Branch and department annotations: "(北京分公司)", "财务部".
    for (open, close) in [('(', ')'), ('[', ']'), ('【', '】'), ('〔', '〕')] {
        while let (Some(a), Some(b)) = (s.find(open), s.find(close)) {
            if b <= a {
                break;
            }
            let inner = &s[a + open.len_utf8()..b];
            if inner.contains("分公司")
                || inner.contains("分行")
                || inner.contains("部")
                || inner.contains("branch")
                || inner.contains("办事处")
            {
                s.replace_range(a..b + close.len_utf8(), "");
            } else {
                s.replace_range(b..b + close.len_utf8(), "");
                s.replace_range(a..a + open.len_utf8(), "");
            }
        }
    }
    for suffix in [
        "股份有限公司",
        "有限责任公司",
        "有限公司",
        "集团公司",
        "公司",
        " co., ltd.",
        " co.,ltd.",
        " co. ltd.",
        " co ltd",
        " company limited",
        " limited",
        " ltd.",
        " ltd",
        " inc.",
        " inc",
        " llc",
        " gmbh",
    ] {
        if let Some(stripped) = s.strip_suffix(suffix) {
            s = stripped.to_string();
            break;
        }
    }
    s.retain(|c| c.is_alphanumeric());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finder() -> ContractRefFinder {
        ContractRefFinder::new(
            r"(?i)HT[\s\-_/]*([0-9]{4})[\s\-_/]*([0-9]{6})",
            "HT-${1}-${2}",
        )
        .unwrap()
    }

    #[test]
    fn finds_contract_numbers_in_any_common_spelling() {
        let f = finder();
        for text in [
            "HT-2026-000123",
            "ht2026000123",
            "合同号HT2026000123第1期",
            "货款 合同号:ht-2026-000123 第2期款",
            "HT 2026 000123 首付款",
        ] {
            assert_eq!(f.contract_numbers(text), ["HT-2026-000123"], "{text}");
        }
        assert!(f.contract_numbers("HT-2026-0001234").is_empty());
        assert!(f.contract_numbers("货款").is_empty());
    }

    #[test]
    fn reads_installment_hints() {
        let f = finder();
        assert_eq!(f.installments("HT-2026-000123 第2期"), [2]);
        assert_eq!(f.installments("第1-2期款"), [1, 2]);
        assert_eq!(f.installments("第三期"), [3]);
        assert_eq!(
            f.installments("合同HT2026000001 第 2 期 和 第一、二期"),
            [1, 2]
        );
        assert_eq!(f.installments("第十二期尾款"), [12]);
        assert!(
            f.installments("第二批货").is_empty(),
            "a 第 without 期 is no installment"
        );
        assert_eq!(f.installments("installment 3"), [3]);
        assert_eq!(f.installments("Payment ht-2025-000123 Inst. 2"), [2]);
        assert_eq!(f.installments("phase #1-2"), [1, 2]);
        assert_eq!(f.installments("stage 3 and 4"), [3, 4]);
        assert!(f.installments("reinstall 5 units").is_empty());
        assert!(f.installments("首付款").is_empty());
    }

    #[test]
    fn normalizes_company_names() {
        assert_eq!(
            normalize_company_name("成都某医院（北京分公司）"),
            normalize_company_name("成都某医院")
        );
        assert_eq!(
            normalize_company_name("上海联影医疗科技股份有限公司"),
            "上海联影医疗科技"
        );
        assert_eq!(
            normalize_company_name("ＡＢＣ　Trading Co., Ltd."),
            "abctrading"
        );
    }
}
