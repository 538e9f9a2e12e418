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
    out.extend(unprefixed_installments(text));
    out
}

/// `2/3期` (the second of three) and `-2期` written without 第; a bare `3期` is not read,
/// since `分3期付款` means "in three installments".
fn unprefixed_installments(text: &str) -> Vec<(Option<u32>, Option<u32>)> {
    const NUMERAL: &str = "0123456789一二三四五六七八九十";
    let mut out = Vec::new();
    for (at, _) in text.match_indices('期') {
        let before = text[..at].trim_end();
        let tail: String = before
            .chars()
            .rev()
            .take_while(|c| NUMERAL.contains(*c))
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        if tail.is_empty() {
            continue;
        }
        let head = &before[..before.len() - tail.len()];
        let numeral_before = |h: &str| h.chars().next_back().is_some_and(|c| NUMERAL.contains(c));
        if let Some(first) = head.strip_suffix('/') {
            // `N/M期` (also `第N/M期`): the Nth of M.
            let n: String = first
                .chars()
                .rev()
                .take_while(|c| NUMERAL.contains(*c))
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            if let (Some(n), Some(m)) = (chinese_number(&n), chinese_number(&tail))
                && n >= 1
                && n <= m
            {
                out.push((Some(n), None));
            }
        } else if let Some(rest) = head.strip_suffix('-')
            && !numeral_before(rest)
            && let Some(n) = chinese_number(&tail)
        {
            // `-2期`; `1-2期` is a range the 第 reader handles when it has its 第.
            out.push((Some(n), None));
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
        // After a digit counts too: statement lines joined back together lose the space
        // (`HT2026000351inst. 2`).
        let at_word_start = i == 0 || !bytes[i - 1].is_ascii_alphabetic();
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
        } else if bytes.get(j).is_some_and(|b| b.eq_ignore_ascii_case(&b's')) {
            // `installments 3-4`, `stages 1 and 2`.
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
        } else if let Some(n) = ordinal_before(&text[..i]) {
            // `2nd installment`, `second instalment`.
            out.push((Some(n), None));
        }
        i = j.max(i + 1);
    }
    out
}

/// The ordinal that ends `before` (`2nd `, `third `), if any.
fn ordinal_before(before: &str) -> Option<u32> {
    const WORDS: [&str; 12] = [
        "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
        "tenth", "eleventh", "twelfth",
    ];
    let trimmed = before.trim_end();
    if trimmed.len() == before.len() {
        return None;
    }
    let word_start = trimmed
        .rfind(|c: char| !c.is_ascii_alphanumeric())
        .map_or(0, |i| i + 1);
    let word = trimmed[word_start..].to_ascii_lowercase();
    if let Some(n) = WORDS.iter().position(|w| *w == word) {
        return Some(n as u32 + 1);
    }
    let digits = word.bytes().take_while(u8::is_ascii_digit).count();
    let suffix = &word[digits..];
    if digits == 0 || !matches!(suffix, "st" | "nd" | "rd" | "th") {
        return None;
    }
    word[..digits].parse().ok()
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

/// Chinese legal forms a company name ends with, longest first.
const LEGAL_FORMS: [&str; 5] = [
    "股份有限公司",
    "有限责任公司",
    "有限公司",
    "集团公司",
    "公司",
];

/// A note naming a branch, office or department rather than the company itself.
fn is_branch_or_department(note: &str) -> bool {
    const MARKS: [&str; 14] = [
        "分公司",
        "分行",
        "支行",
        "分院",
        "分厂",
        "办事处",
        "营业部",
        "部",
        "科",
        "处",
        "室",
        "branch",
        "dept",
        "office",
    ];
    MARKS.iter().any(|m| note.contains(m))
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
            if is_branch_or_department(inner) {
                s.replace_range(a..b + close.len_utf8(), "");
            } else {
                s.replace_range(b..b + close.len_utf8(), "");
                s.replace_range(a..a + open.len_utf8(), "");
            }
        }
    }
    // A branch or department written after the legal form without brackets:
    // `…有限公司重庆分公司`, `…有限公司财务部`.
    for form in LEGAL_FORMS {
        if let Some(at) = s.find(form) {
            let tail = &s[at + form.len()..];
            if !tail.is_empty() && tail.chars().count() <= 12 && is_branch_or_department(tail) {
                s.truncate(at + form.len());
            }
            break;
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
        assert_eq!(
            f.contract_numbers("货款ＨＴ－２０２６－０００１２３"),
            ["HT-2026-000123"],
            "full width, as Chinese input methods type it"
        );
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
        assert_eq!(
            f.installments("Payment HT-2026-000154 installments 3-4"),
            [3, 4]
        );
        assert_eq!(
            f.installments("HT2026000351inst. 2"),
            [2],
            "a wrapped line joined"
        );
        assert!(f.installments("reinstall 5 units").is_empty());
        // Every common way of writing an installment.
        for (text, seq) in [
            ("HT-2026-000100 第2期", 2),
            ("合同号HT-2026-000100第二期款", 2),
            ("HT-2026-000100 2/3期", 2),
            ("HT-2026-000100/2", 2),
            ("HT-2026-000100-2期", 2),
            ("HT-2026-000100 installment 2", 2),
            ("HT2026000100 inst. 2", 2),
            ("HT-2026-000100 2nd installment", 2),
            ("second instalment HT-2026-000100", 2),
            ("ＨＴ－２０２６－０００１００／２", 2),
        ] {
            assert_eq!(
                f.read(text),
                (vec!["HT-2026-000100".to_string()], vec![seq]),
                "{text}"
            );
        }
        assert!(
            f.installments("分3期付款 HT-2026-000100").is_empty(),
            "a count, not a hint"
        );
        assert!(f.installments("HT-2026-000100/2026").is_empty());
        assert!(
            f.installments("invoice 2/3 HT-2026-000100 2nd shipment")
                .is_empty()
        );
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
        let company = normalize_company_name("重庆瑞康医疗器械有限公司");
        for variant in [
            "重庆瑞康医疗器械有限公司重庆分公司",
            "重庆瑞康医疗器械有限公司（财务科）",
            "重庆瑞康医疗器械有限公司财务部",
            "重庆瑞康医疗器械有限公司(北京办事处)",
        ] {
            assert_eq!(normalize_company_name(variant), company, "{variant}");
        }
    }
}
