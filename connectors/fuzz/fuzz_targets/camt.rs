//! camt.052/053/054: any bytes give a message or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = reconlight_formats::camt::decode_bytes(data);
});
