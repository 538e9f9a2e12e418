//! Who is calling and what they may do. Callers present an API token (created with
//! `reconlight tokens create`, stored only as a hash) or, when configured, an OIDC bearer
//! token; each carries a role, viewer < clerk < admin. Every route names the role it needs
//! (`required_role`), and actions are recorded under the caller's name, never a name the
//! request body offers.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::access::hash_secret;
#[cfg(test)]
use crate::access::new_token;
pub use crate::access::{AuthConfig, Caller, Role};
use crate::store::Store;

/// The role a route needs; `None` for routes that authenticate themselves (webhooks check
/// their provider's signature) or are public.
pub fn required_role(method: &Method, path: &str, config: &AuthConfig) -> Option<Role> {
    if path.starts_with("/webhooks/")
        || path == "/healthz"
        || path == "/readyz"
        || super::workbench::is_public(path)
    {
        return None;
    }
    if path == "/metrics" && config.public_metrics {
        return None;
    }
    if method == Method::GET || method == Method::HEAD {
        return Some(Role::Viewer);
    }
    if path.starts_with("/api/v1/work-items/") || path.starts_with("/api/v1/alerts/") {
        return Some(Role::Clerk);
    }
    // Everything else that changes something (rule reloads, and routes yet to come).
    Some(Role::Admin)
}

/// Error responses of the access check.
fn refuse(status: StatusCode, why: &str) -> Response {
    let mut r = (status, axum::Json(serde_json::json!({ "error": why }))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"reconlight\""),
        );
    }
    r
}

/// What the access check needs.
#[derive(Clone)]
pub struct Gate {
    pub store: Store,
    pub config: Arc<AuthConfig>,
    pub oidc: Option<Arc<super::oidc::Verifier>>,
}

/// Why a request's credentials are refused (answered with 401 and this text).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("unknown token")]
    UnknownToken,
    #[error("the token of {0} was revoked")]
    Revoked(String),
    #[error("not an API token, and no OIDC issuer is configured")]
    NoIssuer,
    #[error("cannot check the token: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("not a JWT: {0}")]
    NotAJwt(#[source] jsonwebtoken::errors::Error),
    #[error("tokens signed with {0:?} are not accepted")]
    Algorithm(jsonwebtoken::Algorithm),
    #[error("token refused: {0}")]
    TokenRefused(#[source] jsonwebtoken::errors::Error),
    #[error("the token names nobody")]
    Nobody,
    #[error("{name} holds none of the roles {roles:?} in `{claim}`")]
    NoRole {
        name: String,
        roles: Vec<String>,
        claim: String,
    },
    /// The identity provider's keys cannot be had.
    #[error("{0}")]
    Keys(String),
    #[error("no bearer token (webhook OAuth is configured)")]
    NoBearer,
}

impl Gate {
    /// Who the bearer token belongs to.
    pub(super) async fn caller(&self, bearer: &str) -> Result<Caller, AuthError> {
        if let Some(rest) = bearer.strip_prefix("rl_") {
            let (id, secret) = rest.split_once('_').ok_or(AuthError::UnknownToken)?;
            let found = self.store.api_token(id).await?;
            let Some(t) = found else {
                return Err(AuthError::UnknownToken);
            };
            if t.revoked_at.is_some() {
                return Err(AuthError::Revoked(t.name));
            }
            let given = hash_secret(secret);
            // Compare in constant time: the hash is no secret, but leak nothing anyway.
            let same = given.len() == t.hash.len()
                && given
                    .bytes()
                    .zip(t.hash.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0;
            if !same {
                return Err(AuthError::UnknownToken);
            }
            return Ok(Caller {
                name: t.name,
                role: t.role,
            });
        }
        match &self.oidc {
            Some(v) => v.verify(bearer).await,
            None => Err(AuthError::NoIssuer),
        }
    }
}

/// The access check in front of every route: puts the `Caller` in the request.
pub async fn check(State(gate): State<Gate>, mut req: Request, next: Next) -> Response {
    let Some(need) = required_role(req.method(), req.uri().path(), &gate.config) else {
        // Public, or authenticated by its own scheme (a webhook's signature or token).
        return next.run(req).await;
    };
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_string())
        .or_else(|| session_token(&req));
    let caller = match bearer {
        Some(token) => match gate.caller(&token).await {
            Ok(c) => Some(c),
            Err(why) => return refuse(StatusCode::UNAUTHORIZED, &why.to_string()),
        },
        None => gate.config.anonymous.map(|role| Caller {
            name: "anonymous".into(),
            role,
        }),
    };
    match caller {
        // A browser opening a page goes to the sign-in page, and comes back after.
        None if req.method() == Method::GET && super::workbench::is_page(req.uri().path()) => {
            let back = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let next = serde_urlencoded::to_string([("next", back)]).unwrap_or_default();
            axum::response::Redirect::to(&format!("/signin?{next}")).into_response()
        }
        None => refuse(
            StatusCode::UNAUTHORIZED,
            "sign in: send `Authorization: Bearer <token>` (reconlight tokens create)",
        ),
        Some(c) if c.role < need => refuse(
            StatusCode::FORBIDDEN,
            &format!(
                "{} is {}; this needs {}",
                c.name,
                c.role.with_article(),
                need.with_article()
            ),
        ),
        Some(c) => {
            req.extensions_mut().insert(c);
            next.run(req).await
        }
    }
}

/// A token kept in the browser's session cookie (`reconlight_token`).
fn session_token(req: &Request) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            kv.trim()
                .strip_prefix("reconlight_token=")
                .map(str::to_string)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_names_its_role() {
        let c = AuthConfig::default();
        assert_eq!(
            required_role(&Method::GET, "/api/v1/work-items", &c),
            Some(Role::Viewer)
        );
        assert_eq!(
            required_role(&Method::POST, "/api/v1/work-items/abc/resolve", &c),
            Some(Role::Clerk)
        );
        assert_eq!(
            required_role(&Method::POST, "/api/v1/rules/reload", &c),
            Some(Role::Admin)
        );
        assert_eq!(required_role(&Method::POST, "/webhooks/docusign", &c), None);
        assert_eq!(required_role(&Method::GET, "/metrics", &c), None);
        assert_eq!(
            required_role(&Method::DELETE, "/api/v1/anything-new", &c),
            Some(Role::Admin),
            "what no rule names needs the highest role"
        );
        let t = new_token().unwrap();
        assert!(t.token.starts_with(&format!("rl_{}_", t.id)));
        assert_eq!(t.hash, hash_secret(t.token.rsplit('_').next().unwrap()));
    }
}
