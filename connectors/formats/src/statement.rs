//! What a bank statement says about itself, whatever its format: the account, the balances
//! and whether opening + credits - debits equals closing.

use rust_decimal::Decimal;
use serde::Serialize;

use crate::model::Currency;

/// Why a statement's balance could not be checked when its amounts add up beyond range.
const TOTALS_OVERFLOW: &str = "the statement's amounts add up beyond 79,228,162,514,264,337,593,543,950,335: its balance cannot be checked";

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
    /// Adds an entry's amount to the statement's totals. Totals beyond what a decimal holds
    /// (no real statement reaches 10^28) end the balance check with a problem, never a panic.
    pub fn book(&mut self, direction: crate::model::Direction, amount: Decimal) {
        let total = match direction {
            crate::model::Direction::Credit => &mut self.booked_credits,
            crate::model::Direction::Debit => &mut self.booked_debits,
        };
        match total.checked_add(amount) {
            Some(t) => *total = t,
            None => self.overflowed(),
        }
    }

    /// Sets `balance_difference` from both balances and the totals, when all are known.
    pub fn check_balance(&mut self) {
        let (Some(o), Some(c)) = (self.opening_balance, self.closing_balance) else {
            return;
        };
        let difference = o
            .checked_add(self.booked_credits)
            .and_then(|x| x.checked_sub(self.booked_debits))
            .and_then(|x| c.checked_sub(x));
        match difference {
            Some(d) if !self.problems.iter().any(|p| p == TOTALS_OVERFLOW) => {
                self.balance_difference = Some(d)
            }
            Some(_) => {}
            None => self.overflowed(),
        }
    }

    fn overflowed(&mut self) {
        if !self.problems.iter().any(|p| p == TOTALS_OVERFLOW) {
            self.problems.push(TOTALS_OVERFLOW.to_string());
        }
    }

    /// True when the statement carries both balances and they do not reconcile.
    pub fn unbalanced(&self) -> bool {
        self.balance_difference.is_some_and(|d| !d.is_zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Direction;

    #[test]
    fn totals_beyond_a_decimal_end_the_balance_check_with_a_problem() {
        let mut s = StatementSummary {
            id: "s".into(),
            account: "a".into(),
            currency: None,
            opening_balance: Some(Decimal::ZERO),
            closing_balance: Some(Decimal::ONE),
            booked_credits: Decimal::ZERO,
            booked_debits: Decimal::ZERO,
            entries: 2,
            balance_difference: None,
            problems: Vec::new(),
        };
        s.book(Direction::Credit, Decimal::MAX);
        s.book(Direction::Credit, Decimal::MAX);
        s.check_balance();
        assert_eq!(s.balance_difference, None);
        assert_eq!(s.problems, [TOTALS_OVERFLOW]);
    }
}
