//! The audit trail as stored: entries with the columns they are found by, and the head.

use super::*;

impl Store {
    /// The whole trail as stored: each entry with the columns it is found by.
    pub async fn audit_rows(&self) -> Result<Vec<reconlight_core::audit::StoredEntry>, StoreError> {
        let rows: Vec<AnyRow> = sqlx::query(
            "SELECT seq, contract_no, table_name, row_key, field, hash, doc FROM audit_entries ORDER BY seq",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(ctx("reading the audit trail"))?;
        rows.iter()
            .map(|r| {
                let get = ctx("reading the audit trail");
                let doc: String = r.try_get(6).map_err(get)?;
                Ok(reconlight_core::audit::StoredEntry {
                    seq: r.try_get(0).map_err(ctx("reading the audit trail"))?,
                    contract_no: r.try_get(1).map_err(ctx("reading the audit trail"))?,
                    table: r.try_get(2).map_err(ctx("reading the audit trail"))?,
                    key: r.try_get(3).map_err(ctx("reading the audit trail"))?,
                    field: r.try_get(4).map_err(ctx("reading the audit trail"))?,
                    hash: r.try_get(5).map_err(ctx("reading the audit trail"))?,
                    entry: from_json("audit_entries", "", &doc)?,
                })
            })
            .collect()
    }

    /// The trail's head as stored.
    pub async fn audit_head(
        &self,
    ) -> Result<Option<reconlight_core::audit::AuditHead>, StoreError> {
        match self.meta("audit_head").await? {
            Some(doc) => from_json("meta", "audit_head", &doc).map(Some),
            None => Ok(None),
        }
    }

    pub async fn audit_entries(
        &self,
        contract_no: Option<&str>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows: Vec<AnyRow> = match contract_no {
            Some(no) => {
                sqlx::query("SELECT doc FROM audit_entries WHERE contract_no = $1 ORDER BY seq")
                    .bind(no)
                    .fetch_all(&self.pool)
                    .await
            }
            None => {
                sqlx::query("SELECT doc FROM audit_entries ORDER BY seq")
                    .fetch_all(&self.pool)
                    .await
            }
        }
        .map_err(ctx("reading the audit trail"))?;
        rows.iter()
            .map(|r| {
                let doc: String = r.try_get(0).map_err(ctx("reading the audit trail"))?;
                from_json("audit_entries", "", &doc)
            })
            .collect()
    }
}
