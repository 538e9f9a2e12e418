//! Who may do what: roles (viewer < clerk < admin), the callers they belong to, API tokens
//! (made here, stored only as hashes) and the `[auth]` settings, OIDC included. The server
//! checks them on every route; the store keeps the tokens.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a caller may do.
#[derive(
    schemars::JsonSchema,
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads the queue, the lights, reports and the audit trail.
    Viewer,
    /// Works the queue (assign, comment, resolve, dismiss, match) and acknowledges alerts.
    Clerk,
    /// Reloads rules; everything a clerk does.
    Admin,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Clerk => "clerk",
            Role::Admin => "admin",
        }
    }

    /// For messages: `a viewer`, `an admin`.
    pub fn with_article(&self) -> &'static str {
        match self {
            Role::Viewer => "a viewer",
            Role::Clerk => "a clerk",
            Role::Admin => "an admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = reconlight_formats::UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "viewer" => Ok(Role::Viewer),
            "clerk" => Ok(Role::Clerk),
            "admin" => Ok(Role::Admin),
            other => Err(reconlight_formats::UnknownName::new(
                "role",
                other,
                "viewer, clerk, admin",
            )),
        }
    }
}

/// The server's access settings (`[auth]`).
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// The role of a request without a token: `none` (refused), `viewer`, `clerk` or
    /// `admin`. Only for a server nobody else can reach.
    pub anonymous: Option<Role>,
    /// `/metrics` without a token, for Prometheus (it carries counts and sums, no rows).
    pub public_metrics: bool,
    /// OIDC bearer tokens (JWTs) as well as API tokens.
    pub oidc: Option<OidcConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            anonymous: None,
            public_metrics: true,
            oidc: None,
        }
    }
}

/// Who made a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

/// An API token as `reconlight tokens create` prints it: `rl_<id>_<secret>`.
pub struct NewToken {
    pub id: String,
    pub token: String,
    pub hash: String,
}

/// Bytes from the operating system's random source.
pub(crate) fn random_bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    use std::io::Read;
    let mut bytes = [0u8; N];
    std::fs::File::open("/dev/urandom").and_then(|mut r| r.read_exact(&mut bytes))?;
    Ok(bytes)
}

/// A new random token; only its hash is stored.
pub fn new_token() -> Result<NewToken, std::io::Error> {
    let bytes: [u8; 30] = random_bytes()?;
    let id = hex::encode(&bytes[..6]);
    let secret = hex::encode(&bytes[6..]);
    Ok(NewToken {
        token: format!("rl_{id}_{secret}"),
        hash: hash_secret(&secret),
        id,
    })
}

/// `[auth.oidc]`.
#[derive(schemars::JsonSchema, Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The `iss` the tokens must carry.
    pub issuer: String,
    /// The `aud` the tokens must carry (this server's client id).
    pub audience: String,
    /// Where the provider publishes its signing keys (JWKS).
    pub jwks_url: Option<crate::settings::HttpUrl>,
    /// The same keys from a file, for providers the server cannot reach.
    pub jwks_file: Option<PathBuf>,
    /// The claim that names the caller.
    #[serde(default = "default_name_claim")]
    pub name_claim: String,
    /// The claim holding the caller's groups or roles (a string or a list).
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// Claim values and the role each gives; the highest one wins.
    #[serde(default = "default_roles")]
    pub roles: BTreeMap<String, Role>,
}

fn default_name_claim() -> String {
    "preferred_username".into()
}

fn default_roles_claim() -> String {
    "roles".into()
}

fn default_roles() -> BTreeMap<String, Role> {
    [
        ("reconlight-viewer", Role::Viewer),
        ("reconlight-clerk", Role::Clerk),
        ("reconlight-admin", Role::Admin),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The SHA-256 of a token's secret, as stored.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}
