//! MT940/MT942 details the public samples do not cover: structured `:86:` styles,
//! reversals, interim reports, and errors that say where.

use std::str::FromStr;

use reconlight_formats::model::Direction;
use reconlight_formats::mt940::decode;
use rust_decimal::Decimal;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

#[test]
fn german_and_sepa_structured_details() {
    let text = ":20:STARTUMS\n:25:10020030/1234567\n:28C:0\n:60F:C260930EUR1000,00\n\
:61:2610011001CR250,00N051NONREF//BANKREF123\n\
:86:166?00GUTSCHRIFT?20HT-2026-000123 1. Rate?21Vertrag?30DEUTDEFF?31DE89370400440532013000?32Muster GmbH?33Niederlassung Nord\n\
:61:2610011001D100,00N020NONREF\n\
:86:/TRTP/SEPA OVERBOEKING/IBAN/NL91ABNA0417164300/BIC/ABNANL2A/NAME/Acme B.V./REMI/USTD//Invoice 42 HT2026000124/EREF/E2E-9\n\
:61:2610021002RC50,00N051NONREF\n\
:86:return of an earlier credit\n\
:62F:C261002EUR1100,00\n-\n";
    let m = decode(text).unwrap();
    let txs: Vec<_> = m.transactions.into_iter().map(Result::unwrap).collect();
    assert_eq!(txs.len(), 3);
    assert_eq!(
        (txs[0].direction, txs[0].amount.amount),
        (Direction::Credit, d("250.00"))
    );
    assert_eq!(
        txs[0].counterparty_name.as_deref(),
        Some("Muster GmbHNiederlassung Nord")
    );
    assert_eq!(
        txs[0].counterparty_account.as_deref(),
        Some("DE89370400440532013000")
    );
    assert_eq!(txs[0].remittance, "HT-2026-000123 1. RateVertrag");
    assert_eq!(txs[1].counterparty_name.as_deref(), Some("Acme B.V."));
    assert_eq!(
        txs[1].counterparty_account.as_deref(),
        Some("NL91ABNA0417164300")
    );
    assert_eq!(txs[1].remittance, "Invoice 42 HT2026000124 | E2E-9");
    assert!(txs[2].reversal, "RC is a reversal of a credit");
    assert_eq!(txs[2].direction, Direction::Debit);
    // 1000 + 250 - 100 - 50 = 1100.
    assert_eq!(m.statements[0].balance_difference, Some(d("0")));
}

#[test]
fn interim_report() {
    let text = ":20:MT942REF\n:25:NL81ASNB9999999999\n:28C:1/1\n:34F:EURD0,\n:13D:2610011200+0100\n\
:61:261001C1500,00NTRFNONREF\n:86:Payment HT-2026-000777 installment 2\n:90C:1EUR1500,00\n";
    let m = decode(text).unwrap();
    assert_eq!(m.format, "mt942");
    let tx = m.transactions[0].as_ref().unwrap();
    assert_eq!(
        (tx.direction, tx.amount.amount, tx.amount.currency.as_str()),
        (Direction::Credit, d("1500.00"), "EUR")
    );
    assert_eq!(tx.remittance, "Payment HT-2026-000777 installment 2");
    assert_eq!(
        m.statements[0].balance_difference, None,
        "an interim report has no balances"
    );
}

#[test]
fn a_bad_line_is_an_error_with_its_position_the_rest_decodes() {
    let text = ":20:X\n:25:ACC\n:28C:1\n:60F:C261001CNY100,00\n:61:2610Q1C5,00NTRFNONREF\n:61:261001C5,00NTRFNONREF\n:62F:C261001CNY105,00\n";
    let m = decode(text).unwrap();
    let e = m.transactions[0].as_ref().unwrap_err();
    assert!(e.position.contains("line 5"), "{e}");
    assert!(e.reason.contains("YYMMDD"), "{e}");
    assert_eq!(m.transactions[1].as_ref().unwrap().amount.amount, d("5.00"));
    assert!(
        decode("hello")
            .unwrap_err()
            .reason
            .contains("no MT940/MT942 statement")
    );
}
