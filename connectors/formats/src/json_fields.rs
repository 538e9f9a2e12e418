//! Reading configured fields out of a JSON callback by JSON pointer: the e-signature
//! platforms' mappings (e签宝, 法大大, Acrobat Sign) all name their fields this way.

use crate::error::ValueError;
use serde_json::Value as Json;

use crate::model::{Currency, Money};
use crate::money::parse_amount;

/// The first pointer that names a non-empty string, trimmed.
pub fn first_text(doc: &Json, pointers: &[String]) -> Option<String> {
    pointers
        .iter()
        .filter_map(|p| doc.pointer(p))
        .filter_map(|v| {
            v.as_str()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        })
        .next()
}

/// The amount at `pointer` (a string or a number), in `currency`; `None` when the
/// pointer is unset or names nothing, an error when the value is not an amount.
pub fn amount_at(
    doc: &Json,
    pointer: Option<&str>,
    currency: Currency,
) -> Result<Option<Money>, ValueError> {
    pointer
        .and_then(|p| doc.pointer(p))
        .map(|v| {
            let text = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            parse_amount(&text).map(|a| Money::new(a, currency))
        })
        .transpose()
}
