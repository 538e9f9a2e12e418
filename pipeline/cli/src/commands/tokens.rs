//! API tokens: create (printed once, stored hashed), list, revoke.

use anyhow::bail;

use crate::args::TokensAction;

pub async fn run(action: TokensAction) -> anyhow::Result<()> {
    use reconlight_service::access::{Role, new_token};
    match action {
        TokensAction::Create { config, name, role } => {
            let role: Role = role.parse().map_err(anyhow::Error::msg)?;
            if name.trim().is_empty() {
                bail!("--name must name who uses the token");
            }
            let store = reconlight_service::store::Store::open(&config.load()?.store_url()).await?;
            let t = new_token().map_err(anyhow::Error::msg)?;
            store
                .add_api_token(&t.id, name.trim(), role, &t.hash, chrono::Utc::now())
                .await?;
            eprintln!(
                "token {} for {} ({}); it is shown once, keep it secret:",
                t.id,
                name.trim(),
                role.as_str()
            );
            println!("{}", t.token);
            Ok(())
        }
        TokensAction::List { config } => {
            let store = reconlight_service::store::Store::open(&config.load()?.store_url()).await?;
            for t in store.api_tokens().await? {
                println!(
                    "{}  {:<8} {:<20} created {}{}",
                    t.id,
                    t.role.as_str(),
                    t.name,
                    t.created_at,
                    t.revoked_at
                        .map(|r| format!(", revoked {r}"))
                        .unwrap_or_default()
                );
            }
            Ok(())
        }
        TokensAction::Revoke { config, id } => {
            let store = reconlight_service::store::Store::open(&config.load()?.store_url()).await?;
            if store.revoke_api_token(&id, chrono::Utc::now()).await? {
                println!("token {id} revoked");
                Ok(())
            } else {
                bail!("no active token `{id}` (reconlight tokens list)")
            }
        }
    }
}
