//! OIDC bearer tokens: JWTs signed by an identity provider's keys (its JWKS), checked for
//! issuer, audience and expiry; the caller's name and role come from configured claims.
//! Only asymmetric algorithms are accepted, so nobody can sign a token with a shared or
//! empty secret.

use super::auth::AuthError;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use tokio::sync::RwLock;

use crate::access::{Caller, OidcConfig};

/// How long fetched keys are trusted before they are fetched again.
const KEYS_FRESH: Duration = Duration::from_secs(600);

/// Checks OIDC tokens against the provider's keys.
pub struct Verifier {
    config: OidcConfig,
    keys: RwLock<Option<(JwkSet, Instant)>>,
}

impl Verifier {
    pub fn new(config: OidcConfig) -> Verifier {
        Verifier {
            config,
            keys: RwLock::new(None),
        }
    }

    async fn fetch_keys(&self) -> Result<JwkSet, AuthError> {
        let text = match (&self.config.jwks_file, &self.config.jwks_url) {
            (Some(file), _) => std::fs::read_to_string(file).map_err(|e| {
                AuthError::Keys(format!("cannot read the JWKS {}: {e}", file.display()))
            })?,
            (None, Some(url)) => {
                let url = url.clone();
                tokio::task::spawn_blocking(move || {
                    ureq::get(url.as_str())
                        .call()
                        .and_then(|mut r| r.body_mut().read_to_string())
                        .map_err(|e| {
                            AuthError::Keys(format!("cannot fetch the JWKS from {url}: {e}"))
                        })
                })
                .await
                .map_err(|e| AuthError::Keys(format!("fetching the JWKS: {e}")))??
            }
            (None, None) => {
                return Err(AuthError::Keys(
                    "[auth.oidc] names neither jwks_url nor jwks_file".into(),
                ));
            }
        };
        serde_json::from_str(&text)
            .map_err(|e| AuthError::Keys(format!("the JWKS is not a key set: {e}")))
    }

    /// The key with id `kid`, fetching the key set again when it is stale or lacks it (the
    /// provider rotated its keys).
    async fn key(&self, kid: Option<&str>) -> Result<DecodingKey, AuthError> {
        let pick = |set: &JwkSet| match kid {
            Some(k) => set.find(k).cloned(),
            None if set.keys.len() == 1 => set.keys.first().cloned(),
            None => None,
        };
        if let Some((set, at)) = self.keys.read().await.as_ref()
            && at.elapsed() < KEYS_FRESH
            && let Some(jwk) = pick(set)
        {
            return DecodingKey::from_jwk(&jwk)
                .map_err(|e| AuthError::Keys(format!("unusable key: {e}")));
        }
        let set = self.fetch_keys().await?;
        let jwk = pick(&set).ok_or_else(|| {
            AuthError::Keys(format!(
                "the provider publishes no key {}",
                kid.unwrap_or("(the token names none)")
            ))
        })?;
        *self.keys.write().await = Some((set, Instant::now()));
        DecodingKey::from_jwk(&jwk).map_err(|e| AuthError::Keys(format!("unusable key: {e}")))
    }

    /// The caller a token names, if the provider signed it for this server and it is valid now.
    pub async fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let header = decode_header(token).map_err(AuthError::NotAJwt)?;
        if !matches!(
            header.alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
                | Algorithm::ES256
                | Algorithm::ES384
                | Algorithm::EdDSA
        ) {
            return Err(AuthError::Algorithm(header.alg));
        }
        let key = self.key(header.kid.as_deref()).await?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = decode::<serde_json::Value>(token, &key, &validation)
            .map_err(AuthError::TokenRefused)?;
        let claims = data.claims;
        let name = claims
            .get(&self.config.name_claim)
            .or_else(|| claims.get("sub"))
            .and_then(|v| v.as_str())
            .ok_or(AuthError::Nobody)?
            .to_string();
        let values: Vec<String> = match claims.get(&self.config.roles_claim) {
            Some(serde_json::Value::String(s)) => vec![s.clone()],
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        let role = values
            .iter()
            .filter_map(|v| self.config.roles.get(v))
            .max()
            .copied()
            .ok_or_else(|| AuthError::NoRole {
                name: name.clone(),
                roles: self.config.roles.keys().cloned().collect(),
                claim: self.config.roles_claim.clone(),
            })?;
        Ok(Caller { name, role })
    }
}
