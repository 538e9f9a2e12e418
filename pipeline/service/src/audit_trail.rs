//! Checking the audit trail as `reconlight audit verify` does: the chain with its key, the
//! columns against the entries, and the head against the store and the witness file.

use reconlight_core::audit::{AuditHead, AuditKey, HeadEvidence, verify_chain};

use crate::config::Config;
use crate::store::Store;

/// What the check found, in a sentence; an error naming the first break.
pub async fn verify_audit(config: &Config) -> crate::error::Result<String> {
    let store = Store::open(&config.store_url()).await?;
    let entries = store.audit_rows().await?;
    let stored = store.audit_head().await?;
    let key = AuditKey::load_or_create(&config.resolve(&config.audit.key_file))?;
    let witness_file = config.resolve(&config.audit.head_file);
    let witness: Option<AuditHead> = match std::fs::read_to_string(&witness_file) {
        Ok(text) => Some(serde_json::from_str(&text).map_err(|source| {
            crate::error::ServiceError::Witness {
                path: witness_file.clone(),
                source,
            }
        })?),
        Err(_) => None,
    };
    let evidence = HeadEvidence {
        stored: stored.as_ref(),
        witness: witness.as_ref(),
    };
    match verify_chain(&entries, Some(&key), evidence) {
        Ok(n) => {
            let keyed = entries.iter().filter(|e| e.entry.keyed).count();
            Ok(format!(
                "audit trail intact: {n} entries ({keyed} keyed), chain, columns and head verified{}",
                if witness.is_some() {
                    ", and the head witnessed outside the database"
                } else {
                    "; no head witness file was found"
                }
            ))
        }
        Err(e) => Err(e.into()),
    }
}
