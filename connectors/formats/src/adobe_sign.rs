//! Adobe Acrobat Sign webhook notifications: `event` (`AGREEMENT_WORKFLOW_COMPLETED`,
//! `AGREEMENT_ACTION_COMPLETED`, `AGREEMENT_RECALLED`...) about an `agreement{id, name,
//! status}`. The contract number is read from configurable places (the agreement's
//! external id by default). Acrobat Sign's e-signatures carry no CA certificate unless the
//! account uses certificate-based digital signatures: configure which.

use crate::error::{ValueError, invalid};
use serde::Deserialize;
use serde_json::Value as Json;

use crate::debezium::parse_timestamp;
use crate::json_fields::{amount_at, first_text};
use crate::model::{Currency, SignatureEvent, SignatureStatus};

/// Where the contract's data is in an Acrobat Sign notification.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdobeSignOptions {
    /// JSON pointers tried in order for the contract number.
    pub contract_no: Vec<String>,
    pub contract_amount: Option<String>,
    pub currency: Currency,
    /// Whether a completed agreement is a CA-certified (digital-ID) signature.
    pub ca_certified: bool,
}

impl Default for AdobeSignOptions {
    fn default() -> Self {
        AdobeSignOptions {
            contract_no: vec!["/agreement/externalId/id".into(), "/agreement/name".into()],
            contract_amount: None,
            currency: Currency::CNY,
            ca_certified: false,
        }
    }
}

/// Decodes one notification body.
pub fn decode(text: &str, options: &AdobeSignOptions) -> Result<SignatureEvent, ValueError> {
    let doc: Json = serde_json::from_str(text.trim()).map_err(|e| invalid!("not JSON: {e}"))?;
    let event = doc
        .get("event")
        .and_then(Json::as_str)
        .ok_or("missing `event`")?
        .to_string();
    let agreement = doc.get("agreement").ok_or("missing `agreement`")?;
    let id = agreement
        .get("id")
        .and_then(Json::as_str)
        .ok_or("missing `agreement.id`")?
        .to_string();
    let status = match event.as_str() {
        "AGREEMENT_WORKFLOW_COMPLETED" => SignatureStatus::Completed,
        "AGREEMENT_ACTION_COMPLETED" => SignatureStatus::RecipientSigned,
        "AGREEMENT_CREATED" | "AGREEMENT_ACTION_REQUESTED" => SignatureStatus::Sent,
        "AGREEMENT_RECALLED" | "AGREEMENT_EXPIRED" => SignatureStatus::Voided,
        "AGREEMENT_REJECTED" => SignatureStatus::Declined,
        _ => SignatureStatus::Other,
    };
    let contract_no = first_text(&doc, &options.contract_no);
    let amount = amount_at(&doc, options.contract_amount.as_deref(), options.currency)?;
    let when = doc
        .get("eventDate")
        .and_then(Json::as_str)
        .ok_or("missing `eventDate`")?;
    let occurred_at = parse_timestamp(when)?;
    let signer = doc
        .pointer("/participantUserEmail")
        .or_else(|| doc.pointer("/actingUserEmail"))
        .and_then(Json::as_str)
        .map(str::to_string);
    let webhook = doc
        .get("webhookNotificationId")
        .and_then(Json::as_str)
        .unwrap_or("-");
    Ok(SignatureEvent {
        event_id: format!("adobe-sign:{id}:{event}:{webhook}"),
        provider: "adobe-sign".into(),
        envelope_id: id,
        event,
        ca_certified: status == SignatureStatus::Completed && options.ca_certified,
        status,
        contract_no,
        amount,
        signature_type: Some(
            if options.ca_certified {
                "ca_digital"
            } else {
                "electronic"
            }
            .into(),
        ),
        signer,
        occurred_at,
    })
}
