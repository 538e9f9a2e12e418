//! API tokens: only their hashes are kept.

use super::*;

/// An API token as stored: its secret only as a hash.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    pub role: crate::access::Role,
    #[serde(skip)]
    pub hash: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

fn api_token_of(r: &AnyRow) -> Result<ApiToken, StoreError> {
    let get = |i: usize| -> Result<String, StoreError> {
        r.try_get(i).map_err(ctx("reading an API token"))
    };
    let role: String = get(2)?;
    Ok(ApiToken {
        id: get(0)?,
        name: get(1)?,
        role: role.parse().map_err(ctx("reading an API token"))?,
        hash: get(3)?,
        created_at: get(4)?,
        revoked_at: r.try_get(5).map_err(ctx("reading an API token"))?,
    })
}

impl Store {
    /// The audit trail, of one contract or (with `None`) all of it, in sequence order.
    /// An API token by its id.
    pub async fn api_token(&self, id: &str) -> Result<Option<ApiToken>, StoreError> {
        let row = sqlx::query(
            "SELECT token_id, name, role, hash, created_at, revoked_at FROM api_tokens WHERE token_id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(ctx("reading an API token"))?;
        row.as_ref().map(api_token_of).transpose()
    }

    /// Every API token (without secrets), newest first.
    pub async fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        let rows = sqlx::query(
            "SELECT token_id, name, role, hash, created_at, revoked_at FROM api_tokens ORDER BY created_at DESC, token_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(ctx("reading the API tokens"))?;
        rows.iter().map(api_token_of).collect()
    }

    /// Stores a new token's hash.
    pub async fn add_api_token(
        &self,
        id: &str,
        name: &str,
        role: crate::access::Role,
        hash: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_tokens (token_id, name, role, hash, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id.to_string())
        .bind(name.to_string())
        .bind(role.as_str())
        .bind(hash.to_string())
        .bind(now.to_rfc3339())
        .execute(&self.pool)
        .await
        .map_err(ctx("storing an API token"))?;
        Ok(())
    }

    /// Revokes a token; false when there is no such token.
    pub async fn revoke_api_token(
        &self,
        id: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE token_id = $2 AND revoked_at IS NULL",
        )
        .bind(now.to_rfc3339())
        .bind(id.to_string())
        .execute(&self.pool)
        .await
        .map_err(ctx("revoking an API token"))?
        .rows_affected();
        Ok(n == 1)
    }
}
