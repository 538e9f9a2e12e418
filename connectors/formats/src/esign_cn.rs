//! e签宝 (esign.cn) open platform v3 callbacks: `SIGN_MISSON_COMPLETE` (one signer done; the
//! spelling is the platform's) and `SIGN_FLOW_COMPLETE` (the whole flow), with `signFlowId`.
//! The contract number travels in a business field the integrator sets (`customBizNum` by
//! default); e签宝 signs with CA certificates, so a completed flow counts as CA certified
//! unless configured otherwise.

use crate::error::{ValueError, invalid};
use chrono::DateTime;
use serde::Deserialize;
use serde_json::Value as Json;

use crate::debezium::parse_timestamp;
use crate::json_fields::{amount_at, first_text};
use crate::model::{Currency, SignatureEvent, SignatureStatus};

/// Where the contract's data is in an e签宝 callback.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EsignCnOptions {
    /// JSON pointers tried in order for the contract number.
    pub contract_no: Vec<String>,
    /// JSON pointer of the contract amount, if the integrator sends one.
    pub contract_amount: Option<String>,
    pub currency: Currency,
    /// Whether a completed flow is a CA-certified signature (e签宝 signs with CA certificates).
    pub ca_certified: bool,
}

impl Default for EsignCnOptions {
    fn default() -> Self {
        EsignCnOptions {
            contract_no: vec![
                "/customBizNum".into(),
                "/bizNo".into(),
                "/signFlowTitle".into(),
            ],
            contract_amount: Some("/contractAmount".into()),
            currency: Currency::CNY,
            ca_certified: true,
        }
    }
}

/// Reads a time given as epoch milliseconds or as text.
pub(crate) fn time_of(v: &Json) -> Option<chrono::DateTime<chrono::Utc>> {
    match v {
        Json::Number(n) => n.as_i64().and_then(|ms| {
            if ms > 100_000_000_000 {
                DateTime::from_timestamp_millis(ms)
            } else {
                DateTime::from_timestamp(ms, 0)
            }
        }),
        Json::String(s) => s
            .parse::<i64>()
            .ok()
            .and_then(|ms| time_of(&Json::from(ms)))
            .or_else(|| parse_timestamp(s).ok()),
        _ => None,
    }
}

/// Decodes one callback body.
pub fn decode(text: &str, options: &EsignCnOptions) -> Result<SignatureEvent, ValueError> {
    let doc: Json = serde_json::from_str(text.trim()).map_err(|e| invalid!("not JSON: {e}"))?;
    let action = doc
        .get("action")
        .and_then(Json::as_str)
        .ok_or("missing `action`")?
        .to_string();
    let flow = doc
        .get("signFlowId")
        .and_then(Json::as_str)
        .ok_or("missing `signFlowId`")?
        .to_string();
    let status = match action.as_str() {
        "SIGN_FLOW_COMPLETE" | "SIGN_FLOW_FINISH" => match doc.get("signFlowStatus").and_then(|s| {
            s.as_str()
                .map(str::to_string)
                .or_else(|| s.as_i64().map(|n| n.to_string()))
        }) {
            // 2 done, 3 revoked, 5 expired, 7 refused.
            Some(s) if s == "3" || s == "5" => SignatureStatus::Voided,
            Some(s) if s == "7" => SignatureStatus::Declined,
            _ => SignatureStatus::Completed,
        },
        "SIGN_MISSON_COMPLETE" | "SIGN_MISSION_COMPLETE" => SignatureStatus::RecipientSigned,
        "SIGN_FLOW_START" | "SIGN_FLOW_INITIATED" => SignatureStatus::Sent,
        "SIGN_FLOW_REVOKE" | "SIGN_FLOW_EXPIRE" => SignatureStatus::Voided,
        "SIGN_FLOW_REFUSE" | "SIGN_MISSON_REFUSE" => SignatureStatus::Declined,
        _ => SignatureStatus::Other,
    };
    let contract_no = first_text(&doc, &options.contract_no);
    let amount = amount_at(&doc, options.contract_amount.as_deref(), options.currency)?;
    let occurred_at = ["/signFlowFinishTime", "/operateTime", "/timestamp"]
        .iter()
        .filter_map(|p| doc.pointer(p))
        .find_map(time_of)
        .ok_or("missing a time (`signFlowFinishTime`, `operateTime` or `timestamp`)")?;
    let signer = doc
        .pointer("/operator/psnAccount/accountName")
        .or_else(|| doc.pointer("/operator/psnName"))
        .or_else(|| doc.pointer("/signerName"))
        .and_then(Json::as_str)
        .map(str::to_string);
    let who = doc
        .pointer("/operator/psnId")
        .and_then(Json::as_str)
        .unwrap_or("-");
    Ok(SignatureEvent {
        event_id: format!("esign.cn:{flow}:{action}:{who}"),
        provider: "esign.cn".into(),
        envelope_id: flow,
        event: action,
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
