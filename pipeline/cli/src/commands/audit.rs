//! The audit trail: verify it, show a contract's.

use crate::args::AuditAction;

pub async fn run(action: AuditAction) -> anyhow::Result<()> {
    match action {
        AuditAction::Verify { config } => {
            println!(
                "{}",
                reconlight_service::audit_trail::verify_audit(&config.load()?).await?
            );
            Ok(())
        }
        AuditAction::Show {
            config,
            contract_no,
        } => {
            let store = reconlight_service::store::Store::open(&config.load()?.store_url()).await?;
            let entries = store.audit_entries(Some(&contract_no)).await?;
            for e in &entries {
                println!(
                    "{}  {:<16} {} -> {}  by {} from {}  ({})",
                    e.source_time.to_rfc3339(),
                    e.field,
                    e.before.as_deref().unwrap_or("∅"),
                    e.after.as_deref().unwrap_or("∅"),
                    e.operator.as_deref().unwrap_or("?"),
                    e.ip.as_deref().unwrap_or("?"),
                    e.source_position
                );
            }
            println!("{} changes to {contract_no}", entries.len());
            Ok(())
        }
    }
}
