//! Amounts as written: whatever the text, an exact decimal or a refusal, and an accepted
//! amount prints back to the same value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use reconlight_formats::money::{parse_amount, parse_amount_with};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(d) = parse_amount(&text) {
        assert_eq!(parse_amount(&d.to_string()).ok(), Some(d), "{text}");
    }
    let _ = parse_amount_with(&text, ',', Some('.'));
});
