//! Reading which installments a remittance names, in Chinese (`第2期`, `第二期`, `2/3期`,
//! `-2期`) and English (`installment 2`, `inst. 2`, `2nd installment`), by hand-written
//! scanners: they run on every bank line, several times faster than Unicode regexes.

/// `第2期`, `第 1-2 期`, `第一、二期`, `第三期`: the installment numbers between 第 and 期,
/// read by hand (this runs on every bank line, and a scanner is several times faster than a
/// Unicode regex).
pub(super) fn chinese_installments(text: &str) -> Vec<(Option<u32>, Option<u32>)> {
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
pub(super) fn english_installments(text: &str) -> Vec<(Option<u32>, Option<u32>)> {
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
