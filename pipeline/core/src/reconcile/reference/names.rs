//! Company names as payers write them, normalized for comparison: full width, brackets,
//! legal forms, and branch or department notes with or without brackets.

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
