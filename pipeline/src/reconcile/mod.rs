//! Reconciliation: payment terms to expected receipts, bank credits to installments, and
//! the nightly diff that turns every difference into a finding.

pub mod diff;
pub mod matching;
pub mod reference;
pub mod terms;
