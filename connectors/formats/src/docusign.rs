//! DocuSign Connect events in the JSON SIM format (REST v2.1).
//!
//! The contract's data travels in the envelope's text custom fields, read by configurable
//! names. Only a completed envelope whose signature type is a CA-certified one counts as
//! signed for finance.

use crate::error::{ValueError, invalid};
use std::str::FromStr;

use serde::Deserialize;
use serde_json::Value as Json;

use crate::debezium::parse_timestamp;
use crate::model::{Currency, Money, SignatureEvent, SignatureStatus};
use crate::money::parse_amount;

/// Names of the envelope custom fields that carry the contract's data.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DocusignFields {
    pub contract_no: String,
    pub contract_amount: String,
    pub currency: String,
    pub signature_type: String,
}

impl Default for DocusignFields {
    fn default() -> Self {
        DocusignFields {
            contract_no: "contract_no".into(),
            contract_amount: "contract_amount".into(),
            currency: "currency".into(),
            signature_type: "signature_type".into(),
        }
    }
}

/// How DocuSign events map onto reconlight's signature events.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DocusignOptions {
    pub fields: DocusignFields,
    /// Signature types that carry a CA certificate.
    pub ca_signature_types: Vec<String>,
    /// Currency of `contract_amount` when the envelope names none.
    pub default_currency: Currency,
}

impl Default for DocusignOptions {
    fn default() -> Self {
        DocusignOptions {
            fields: DocusignFields::default(),
            ca_signature_types: vec!["ca_digital".into()],
            default_currency: Currency::CNY,
        }
    }
}

/// Decodes one Connect notification into a signature event.
pub fn decode(text: &str, options: &DocusignOptions) -> Result<SignatureEvent, ValueError> {
    let doc: Json = serde_json::from_str(text.trim()).map_err(|e| invalid!("not JSON: {e}"))?;
    let event = doc
        .get("event")
        .and_then(Json::as_str)
        .ok_or("missing `event` (is this a JSON SIM Connect message?)")?
        .to_string();
    let data = doc.get("data").ok_or("missing `data`")?;
    let envelope_id = data
        .get("envelopeId")
        .and_then(Json::as_str)
        .ok_or("missing `data.envelopeId`")?
        .to_string();
    let summary = data.get("envelopeSummary");
    let status = match event.as_str() {
        "envelope-sent" | "envelope-resent" | "envelope-created" => SignatureStatus::Sent,
        "envelope-delivered" => SignatureStatus::Delivered,
        "envelope-completed" => SignatureStatus::Completed,
        "envelope-declined" | "recipient-declined" => SignatureStatus::Declined,
        "envelope-voided" | "envelope-deleted" | "envelope-purge" => SignatureStatus::Voided,
        "recipient-completed" => SignatureStatus::RecipientSigned,
        _ => SignatureStatus::Other,
    };

    let custom = |name: &str| -> Option<String> {
        let fields = summary?.get("customFields")?;
        ["textCustomFields", "listCustomFields"]
            .iter()
            .filter_map(|k| fields.get(*k).and_then(Json::as_array))
            .flatten()
            .find(|f| f.get("name").and_then(Json::as_str) == Some(name))
            .and_then(|f| f.get("value").and_then(Json::as_str))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let f = &options.fields;
    let contract_no = custom(&f.contract_no);
    let currency = match custom(&f.currency) {
        Some(c) => {
            Currency::from_str(&c).map_err(|e| invalid!("custom field `{}`: {e}", f.currency))?
        }
        None => options.default_currency,
    };
    let amount = custom(&f.contract_amount)
        .map(|a| {
            parse_amount(&a)
                .map(|d| Money::new(d, currency))
                .map_err(|e| invalid!("custom field `{}`: {e}", f.contract_amount))
        })
        .transpose()?;
    let signature_type = custom(&f.signature_type);
    let ca_certified = status == SignatureStatus::Completed
        && signature_type.as_deref().is_some_and(|t| {
            options
                .ca_signature_types
                .iter()
                .any(|c| c.eq_ignore_ascii_case(t))
        });

    let time_field = match status {
        SignatureStatus::Completed => "completedDateTime",
        SignatureStatus::Declined => "declinedDateTime",
        SignatureStatus::Voided => "voidedDateTime",
        SignatureStatus::Sent => "sentDateTime",
        SignatureStatus::Delivered => "deliveredDateTime",
        _ => "",
    };
    let when = summary
        .and_then(|s| s.get(time_field))
        .and_then(Json::as_str)
        .or_else(|| doc.get("generatedDateTime").and_then(Json::as_str))
        .ok_or("missing `generatedDateTime`")?;
    let occurred_at = parse_timestamp(when)?;

    let signer = summary
        .and_then(|s| s.pointer("/recipients/signers"))
        .and_then(Json::as_array)
        .and_then(|signers| {
            let wanted = data.get("recipientId").and_then(Json::as_str);
            signers
                .iter()
                .find(|s| wanted.is_none() || s.get("recipientId").and_then(Json::as_str) == wanted)
                .and_then(|s| s.get("name").and_then(Json::as_str))
        })
        .map(str::to_string);
    let recipient = data
        .get("recipientId")
        .and_then(Json::as_str)
        .unwrap_or("-");

    Ok(SignatureEvent {
        event_id: format!("docusign:{envelope_id}:{event}:{recipient}"),
        provider: "docusign".into(),
        envelope_id,
        event,
        status,
        contract_no,
        amount,
        signature_type,
        ca_certified,
        signer,
        occurred_at,
    })
}
