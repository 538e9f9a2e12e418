//! The diff on small, hand-built states.

use std::str::FromStr;

use chrono::NaiveDate;
use reconlight_formats::model::{
    BankTransaction, Contract, ContractStatus, Currency, Customer, Direction, Money,
};
use rust_decimal::Decimal;

use super::nightly_diff;
use crate::reconcile::matching::MatchSettings;
use crate::reconcile::reference::ContractRefFinder;
use crate::reconcile::terms::{Anchor, Installment};
use crate::state::{BankRow, LiveState};
use crate::workitems::WorkItemKind;

fn money(text: &str) -> Money {
    Money::new(Decimal::from_str(text).unwrap(), Currency::CNY)
}

fn credit(s: &mut LiveState, bank_ref: &str, amount: &str, account: &str, day: u32) {
    s.bank.insert(
        bank_ref.into(),
        BankRow {
            tx: BankTransaction {
                bank_ref: bank_ref.into(),
                account: "128905678810201".into(),
                direction: Direction::Credit,
                amount: money(amount),
                reversal: false,
                booking_date: NaiveDate::from_ymd_opt(2026, 10, day).unwrap(),
                value_date: None,
                counterparty_name: None,
                counterparty_account: Some(account.into()),
                remittance: "货款".into(),
                end_to_end_id: None,
                format: "test".into(),
            },
            reversed_by: None,
            reverses: None,
            source: String::new(),
            position: String::new(),
        },
    );
}

#[test]
fn a_missing_payment_lists_the_open_credits_that_could_be_it() {
    let mut s = LiveState::default();
    s.customers.insert(
        "C1".into(),
        Customer {
            customer_id: "C1".into(),
            name: "杭州云帆科技有限公司".into(),
            bank_account_no: Some("6222 0000 1111".into()),
            region: None,
        },
    );
    let no = "HT-2026-000001".to_string();
    s.contracts.insert(
        no.clone(),
        Contract {
            contract_no: no.clone(),
            customer_id: "C1".into(),
            owner_id: None,
            region: None,
            amount: money("100000.00"),
            status: ContractStatus::Signed,
            signed_at: None,
            signature_method: Some("e_sign".into()),
            accepted_at: None,
            payment_terms: String::new(),
            updated_at: None,
            updated_by: None,
            updated_ip: None,
        },
    );
    s.installments.insert(
        (no.clone(), 1),
        Installment {
            contract_no: no.clone(),
            seq: 1,
            customer_id: "C1".into(),
            amount: money("100000.00"),
            anchor: Anchor::Signed,
            due_days: 7,
            due_date: NaiveDate::from_ymd_opt(2026, 10, 1),
        },
    );
    // The customer paid something else; a stranger paid the exact amount; another
    // stranger's credit is neither.
    credit(&mut s, "B-CUSTOMER", "40000.00", "622200001111", 5);
    credit(&mut s, "B-AMOUNT", "99999.50", "6217000099998888", 20);
    credit(&mut s, "B-OTHER", "5000.00", "6217000077776666", 3);
    let finder = ContractRefFinder::new(
        r"(?i)HT[\s\-_/]*([0-9]{4})[\s\-_/]*([0-9]{6})",
        "HT-${1}-${2}",
    )
    .unwrap();
    let settings = MatchSettings {
        tolerance: Decimal::from_str("1.00").unwrap(),
        auto_confirm: 90,
        finder: &finder,
    };
    let date = NaiveDate::from_ymd_opt(2026, 10, 31).unwrap();
    let (_, findings, _) = nightly_diff(&s, &settings, chrono_tz::Asia::Shanghai, date);
    let missing = findings
        .iter()
        .find(|f| f.kind == WorkItemKind::MissingPayment)
        .expect("a missing payment");
    let candidates = missing.details["candidates"].as_array().unwrap();
    let refs: Vec<&str> = candidates
        .iter()
        .map(|c| c["bank_ref"].as_str().unwrap())
        .collect();
    assert_eq!(refs, ["B-CUSTOMER", "B-AMOUNT"]);
    assert_eq!(
        candidates[0]["why"],
        "paid by this customer, matched to nothing"
    );
    assert_eq!(candidates[0]["payer_customer"], "C1");
    assert_eq!(candidates[0]["amount"], "40000.00");
    assert_eq!(
        candidates[1]["why"],
        "the amount missing, from a payer not known as this customer"
    );
    // The credits nobody took are still unmatched receipts of their own.
    let unmatched = findings
        .iter()
        .filter(|f| f.kind == WorkItemKind::UnmatchedReceipt)
        .count();
    assert_eq!(unmatched, 3);
}
