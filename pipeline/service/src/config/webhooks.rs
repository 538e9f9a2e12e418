//! `[webhooks]`: the e-signature platforms' callbacks and how each is verified.

use reconlight_formats::adobe_sign::AdobeSignOptions;
use reconlight_formats::docusign::DocusignOptions;
use reconlight_formats::esign_cn::EsignCnOptions;
use reconlight_formats::fadada::FadadaOptions;
use serde::Deserialize;

use super::ConfigDuration;

/// DocuSign Connect with HMAC: any of the keys may have signed (key rotation).
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocusignHook {
    pub keys: Vec<String>,
    #[serde(default)]
    pub options: DocusignOptions,
}

/// e签宝 v3: app id and secret of the open-platform application.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EsignCnHook {
    pub app_id: String,
    pub app_secret: String,
    /// A notification whose signed timestamp is further than this from the clock is
    /// refused: a captured request cannot be played again later.
    #[serde(default = "five_minutes")]
    pub replay_window: ConfigDuration,
    #[serde(default)]
    pub options: EsignCnOptions,
}

/// 法大大 FASC 5.1: app id and secret.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FadadaHook {
    pub app_id: String,
    pub app_secret: String,
    /// As for e签宝; 法大大 also refuses a nonce seen within ten minutes.
    #[serde(default = "five_minutes")]
    pub replay_window: ConfigDuration,
    #[serde(default)]
    pub options: FadadaOptions,
}

fn five_minutes() -> ConfigDuration {
    ConfigDuration(chrono::Duration::minutes(5))
}

/// Adobe Acrobat Sign, as its webhook documentation asks: every notification carries the
/// client id of an application of the account (echoed back in the reply), and, with
/// webhook OAuth enabled on the account, a bearer token from the company's authorization
/// server. (Two-way TLS and Adobe's address ranges belong to the proxy in front.)
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdobeSignHook {
    /// The application's client id (or several, while one is being replaced).
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_ids: Vec<String>,
    /// The authorization server whose bearer tokens Acrobat Sign sends.
    #[serde(default)]
    pub oauth: Option<crate::access::OidcConfig>,
    #[serde(default)]
    pub options: AdobeSignOptions,
}

impl AdobeSignHook {
    /// Whether `id` is one of the accepted client ids.
    pub fn accepts(&self, id: &str) -> bool {
        self.client_id.as_deref() == Some(id) || self.client_ids.iter().any(|c| c == id)
    }
}

/// The webhook receivers; a provider without a section is not received.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    pub docusign: Option<DocusignHook>,
    pub esign_cn: Option<EsignCnHook>,
    pub fadada: Option<FadadaHook>,
    pub adobe_sign: Option<AdobeSignHook>,
    /// Larger bodies are refused (413).
    pub max_body_bytes: usize,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            docusign: None,
            esign_cn: None,
            fadada: None,
            adobe_sign: None,
            max_body_bytes: 1 << 20,
        }
    }
}
