//! 法大大 (FASC open platform 5.1) callbacks: the event name comes in the `X-FASC-Event`
//! header and the data as `bizContent` JSON (`signTaskId`, `signTaskStatus`,
//! `transReferenceId`, the business reference that carries the contract number). In files
//! and on Kafka each line is `{"event": ..., "bizContent": {...}}`.

use crate::error::{ValueError, invalid};
use serde::Deserialize;
use serde_json::Value as Json;

use crate::esign_cn::time_of;
use crate::json_fields::{amount_at, first_text};
use crate::model::{Currency, SignatureEvent, SignatureStatus};

/// Where the contract's data is in a 法大大 callback.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FadadaOptions {
    /// JSON pointers into `bizContent` tried in order for the contract number.
    pub contract_no: Vec<String>,
    pub contract_amount: Option<String>,
    pub currency: Currency,
    /// Whether a finished task is a CA-certified signature (法大大 signs with CA certificates).
    pub ca_certified: bool,
}

impl Default for FadadaOptions {
    fn default() -> Self {
        FadadaOptions {
            contract_no: vec![
                "/transReferenceId".into(),
                "/businessId".into(),
                "/signTaskSubject".into(),
            ],
            contract_amount: Some("/contractAmount".into()),
            currency: Currency::CNY,
            ca_certified: true,
        }
    }
}

/// Decodes a callback from its event name and `bizContent` JSON text.
pub fn decode_parts(
    event: &str,
    biz_content: &str,
    options: &FadadaOptions,
) -> Result<SignatureEvent, ValueError> {
    let doc: Json = serde_json::from_str(biz_content.trim())
        .map_err(|e| invalid!("bizContent is not JSON: {e}"))?;
    let task = doc
        .get("signTaskId")
        .and_then(Json::as_str)
        .ok_or("bizContent has no `signTaskId`")?
        .to_string();
    let task_status = doc
        .get("signTaskStatus")
        .and_then(Json::as_str)
        .unwrap_or("");
    let status = match (event, task_status) {
        ("sign-task-finished", _) | (_, "task_finished") => SignatureStatus::Completed,
        ("sign-task-signed", _) => SignatureStatus::RecipientSigned,
        ("sign-task-sent", _) | ("sign-task-started", _) => SignatureStatus::Sent,
        ("sign-task-canceled", _)
        | ("sign-task-revoked", _)
        | ("sign-task-expired", _)
        | (_, "task_terminated") => SignatureStatus::Voided,
        ("sign-task-sign-rejected", _) | ("sign-task-rejected", _) => SignatureStatus::Declined,
        _ => SignatureStatus::Other,
    };
    let contract_no = first_text(&doc, &options.contract_no);
    let amount = amount_at(&doc, options.contract_amount.as_deref(), options.currency)?;
    let occurred_at = ["/eventTime", "/finishTime", "/signTime", "/timestamp"]
        .iter()
        .filter_map(|p| doc.pointer(p))
        .find_map(time_of)
        .ok_or("bizContent has no time (`eventTime`, `finishTime` or `signTime`)")?;
    let signer = doc
        .pointer("/actorName")
        .or_else(|| doc.pointer("/signerName"))
        .and_then(Json::as_str)
        .map(str::to_string);
    let actor = doc
        .pointer("/actorId")
        .and_then(Json::as_str)
        .unwrap_or("-");
    Ok(SignatureEvent {
        event_id: format!("fadada:{task}:{event}:{actor}"),
        provider: "fadada".into(),
        envelope_id: task,
        event: event.to_string(),
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

/// Decodes one line: `{"event": "sign-task-finished", "bizContent": {...} or "..."}`.
pub fn decode(text: &str, options: &FadadaOptions) -> Result<SignatureEvent, ValueError> {
    let doc: Json = serde_json::from_str(text.trim()).map_err(|e| invalid!("not JSON: {e}"))?;
    let event = doc
        .get("event")
        .and_then(Json::as_str)
        .ok_or("missing `event` (the X-FASC-Event name)")?;
    let biz = match doc.get("bizContent") {
        Some(Json::String(s)) => s.clone(),
        Some(v @ Json::Object(_)) => v.to_string(),
        _ => return Err("missing `bizContent`".into()),
    };
    decode_parts(event, &biz, options)
}
