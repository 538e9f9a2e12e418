//! The e-signature providers' notifications: DocuSign Connect, e签宝, 法大大, Acrobat Sign.
#![no_main]
use libfuzzer_sys::fuzz_target;
use reconlight_formats::{adobe_sign, docusign, esign_cn, fadada};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = docusign::decode(&text, &Default::default());
    let _ = esign_cn::decode(&text, &Default::default());
    let _ = fadada::decode(&text, &Default::default());
    let _ = adobe_sign::decode(&text, &Default::default());
});
