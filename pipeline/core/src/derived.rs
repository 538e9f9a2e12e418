//! What reconciliation derives and the live state keeps: each contract's installments (its
//! expected receipts) and each credit's allocations, with the clerks' decisions that
//! outrank them. `reconcile` computes them; `state` holds them; the store writes them.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use reconlight_formats::model::Money;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The event an installment's due date counts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Anchor {
    Signed,
    Accepted,
    /// Delivery: the completion of the contract's `delivery` handoff ticket.
    Delivered,
}

impl Anchor {
    pub fn as_str(&self) -> &'static str {
        match self {
            Anchor::Signed => "signed",
            Anchor::Accepted => "accepted",
            Anchor::Delivered => "delivered",
        }
    }
}

/// An expected receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installment {
    pub contract_no: String,
    pub seq: u32,
    pub customer_id: String,
    pub amount: Money,
    pub anchor: Anchor,
    pub due_days: i64,
    /// Unknown until the anchor event (signing, acceptance) has happened.
    pub due_date: Option<NaiveDate>,
}

/// Which pass placed a credit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchRule {
    /// Contract number and installment in the text.
    InstallmentReference,
    /// Contract number in the text, and the amount equals one open installment.
    ContractReference,
    /// Contract number in the text, several installments paid together.
    ContractReferenceCombined,
    /// Contract number in the text, no installment of the amount: oldest due first.
    ContractReferenceAmountDiffers,
    /// Contract number in the text, and the amount of an installment already paid in full.
    ContractReferenceAlreadyPaid,
    /// A contract number that is no contract, one digit from one: a suggestion for a clerk.
    NearMissReference,
    /// The payer's account belongs to the customer, and the amount fits.
    PayerAccount,
    /// The payer's normalized company name is the customer's, and the amount fits.
    PayerName,
    /// The payer's name only resembles the customer's: a suggestion for a clerk.
    SimilarPayerName,
    /// A clerk matched it by hand.
    Manual,
}

impl MatchRule {
    pub fn as_str(&self) -> &'static str {
        match self {
            MatchRule::InstallmentReference => "installment_reference",
            MatchRule::ContractReference => "contract_reference",
            MatchRule::ContractReferenceCombined => "contract_reference_combined",
            MatchRule::ContractReferenceAmountDiffers => "contract_reference_amount_differs",
            MatchRule::ContractReferenceAlreadyPaid => "contract_reference_already_paid",
            MatchRule::NearMissReference => "near_miss_reference",
            MatchRule::PayerAccount => "payer_account",
            MatchRule::PayerName => "payer_name",
            MatchRule::SimilarPayerName => "similar_payer_name",
            MatchRule::Manual => "manual",
        }
    }
}

/// Part (or all) of a credit applied to one installment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub bank_ref: String,
    pub contract_no: String,
    pub seq: u32,
    pub amount: Decimal,
    pub rule: MatchRule,
    /// 0-100.
    pub confidence: u8,
    pub explanation: String,
    /// At or above the auto-confirm threshold (or confirmed by a clerk); suggestions are not.
    pub confirmed: bool,
    /// A second payment of an installment already paid in full.
    #[serde(default)]
    pub duplicate: bool,
}

/// A clerk's decisions about one credit; they outrank every automatic pass.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManualDecision {
    pub bank_ref: String,
    /// Allocations a clerk made or confirmed: the credit goes exactly there.
    pub allocations: Vec<ManualAllocation>,
    /// Installments a clerk said this credit does not pay.
    pub rejected: Vec<(String, u32)>,
    /// Counts the changes; a write succeeds only over the version it read.
    #[serde(default)]
    pub version: u64,
}

/// Part of a credit a clerk applied to an installment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManualAllocation {
    pub contract_no: String,
    pub seq: u32,
    pub amount: Decimal,
    pub by: String,
    pub at: chrono::DateTime<chrono::Utc>,
    pub note: String,
}

/// Every credit's allocations, by bank reference (credits with none are unmatched).
pub type Matches = BTreeMap<String, Vec<Allocation>>;
