//! Inputs the fuzzer (scripts/fuzz.sh) found crashing a decoder, kept as regression tests:
//! each now gives a positioned error or a decoded statement, never a panic.

use reconlight_formats::{camt, mt940};

fn finding(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fuzz_findings/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn camt_with_an_encoding_declaration_quoted_by_a_non_ascii_character() {
    // `encoding=` followed by bytes that are not UTF-8: the quote was taken as one byte.
    let err = camt::decode_bytes(&finding("camt-encoding-quote-not-ascii.bin"))
        .expect_err("not a camt document");
    assert!(err.to_string().starts_with("camt"), "{err}");

    let declared = "<?xml version=\"1.0\" encoding=\u{201c}GBK\u{201d}?><Document/>";
    let err = camt::decode_bytes(declared.as_bytes()).expect_err("typographic quotes are not XML");
    assert!(err.to_string().contains("not well-formed XML"), "{err}");
}

#[test]
fn mt940_structured_details_whose_field_code_is_not_ascii() {
    // A `?` in :86: followed by a multi-byte character: the two-byte field code was cut
    // inside it.
    let text = String::from_utf8_lossy(&finding("mt940-field-code-not-ascii.bin")).into_owned();
    let _ = mt940::decode(&text);

    let statement = ":20:REF\n:25:DE89370400440532013000\n:28C:1/1\n:60F:C260301EUR100,00\n:61:2603010301C25,00NTRFNONREF\n:86:166?00GUTSCHRIFT?20合同HT-2026-000100?é1?32重庆某某科技有限公司\n:62F:C260301EUR125,00\n-";
    let decoded = mt940::decode(statement).unwrap();
    let entries: Vec<_> = decoded
        .transactions
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].remittance, "合同HT-2026-000100");
    assert_eq!(
        entries[0].counterparty_name.as_deref(),
        Some("重庆某某科技有限公司")
    );
}

#[test]
fn mt940_whose_amounts_add_up_beyond_what_a_decimal_holds() {
    // 28-digit amounts: their sum overflowed the statement's totals.
    let text = String::from_utf8_lossy(&finding("mt940-totals-overflow.bin")).into_owned();
    let _ = mt940::decode(&text);

    let statement = ":20:REF\n:25:DE89370400440532013000\n:28C:1/1\n:60F:C260301EUR0,00\n:61:2603010301C1000000000000000,00NTRFNONREF\n:86:too much\n:61:2603010301C25,00NTRFNONREF\n:86:fine\n:62F:C260301EUR25,00\n-";
    let decoded = mt940::decode(statement).unwrap();
    let (ok, refused): (Vec<_>, Vec<_>) = decoded.transactions.into_iter().partition(Result::is_ok);
    assert_eq!(ok.len(), 1);
    let why = refused[0].as_ref().unwrap_err().to_string();
    assert!(
        why.contains("`1000000000000000,00` is not an amount: larger than 999,999,999,999,999.99"),
        "{why}"
    );
}
