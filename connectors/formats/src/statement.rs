//! What a bank statement says about itself, whatever its format: the account, the balances
//! and whether opening + credits - debits equals closing.

use rust_decimal::Decimal;
use serde::Serialize;

use crate::model::Currency;

/// One statement (or notification), with its balance check.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StatementSummary {
    pub id: String,
    pub account: String,
    pub currency: Option<Currency>,
    pub opening_balance: Option<Decimal>,
    pub closing_balance: Option<Decimal>,
    pub booked_credits: Decimal,
    pub booked_debits: Decimal,
    pub entries: usize,
    /// closing - (opening + credits - debits), when both balances are present.
    pub balance_difference: Option<Decimal>,
    /// Why the balance check could not be made: an unreadable or missing balance (a file
    /// cut short). Each is a dead letter, so nobody mistakes silence for a balanced statement.
    pub problems: Vec<String>,
}

impl StatementSummary {
    /// True when the statement carries both balances and they do not reconcile.
    pub fn unbalanced(&self) -> bool {
        self.balance_difference.is_some_and(|d| !d.is_zero())
    }
}
