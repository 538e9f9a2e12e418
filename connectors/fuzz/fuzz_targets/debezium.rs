//! Debezium JSON change events, with and without schemas (dates, times and decimals out of
//! every range).
#![no_main]
use libfuzzer_sys::fuzz_target;
use reconlight_formats::debezium::{DebeziumOptions, decode};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = decode(&text, &DebeziumOptions::default());
});
