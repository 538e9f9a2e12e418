//! MT940/MT942: any text (non-ASCII `:86:` lines, cut files, odd balances) decodes or errs.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = reconlight_formats::mt940::decode(&String::from_utf8_lossy(data));
});
