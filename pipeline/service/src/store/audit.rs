//! The audit trail as stored: each entry's columns (what it is found by, and its hash) and a
//! document with the rest of its content; the previous hash is the entry before's column.

use reconlight_core::audit::{AuditColumns, StoredEntry};

use super::*;

/// Entries (`a`) with their columns, their document and the previous entry's hash, in
/// this order.
const ENTRIES: &str = "SELECT a.seq, a.contract_no, a.table_name, a.row_key, a.field, a.hash, a.doc, p.hash \
     FROM audit_entries a LEFT JOIN audit_entries p ON p.seq = a.seq - 1";

/// Reads the entries an `ENTRIES` query found.
fn stored_entries(rows: &[AnyRow], doing: &str) -> Result<Vec<StoredEntry>, StoreError> {
    rows.iter()
        .map(|r| {
            let columns = AuditColumns {
                seq: r.try_get(0).map_err(ctx(doing))?,
                contract_no: r.try_get(1).map_err(ctx(doing))?,
                table: r.try_get(2).map_err(ctx(doing))?,
                key: r.try_get(3).map_err(ctx(doing))?,
                field: r.try_get(4).map_err(ctx(doing))?,
                hash: r.try_get(5).map_err(ctx(doing))?,
            };
            let doc: String = r.try_get(6).map_err(ctx(doing))?;
            let prev: Option<String> = r.try_get(7).map_err(ctx(doing))?;
            let seq = columns.seq;
            StoredEntry::read(columns, prev.as_deref().unwrap_or(""), &doc)
                .map_err(ctx(format!("reading audit entry {seq}")))
        })
        .collect()
}

impl Store {
    /// The entries `condition` (on `a`, with `$1` bound to `bind` if given) selects, in order.
    async fn entries_where(
        &self,
        condition: &str,
        bind: Option<&str>,
        doing: &str,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        let sql = format!("{ENTRIES} WHERE {condition} ORDER BY a.seq");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(value) = bind {
            query = query.bind(value.to_string());
        }
        let rows: Vec<AnyRow> = query.fetch_all(&self.pool).await.map_err(ctx(doing))?;
        stored_entries(&rows, doing)
    }

    /// The whole trail as stored: each entry with the columns it is found by.
    pub async fn audit_rows(&self) -> Result<Vec<StoredEntry>, StoreError> {
        self.entries_where("1 = 1", None, "reading the audit trail")
            .await
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

    /// The trail's entries, or one contract's.
    pub async fn audit_entries(
        &self,
        contract_no: Option<&str>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let condition = match contract_no {
            Some(_) => "a.contract_no = $1",
            None => "1 = 1",
        };
        let entries = self
            .entries_where(condition, contract_no, "reading the audit trail")
            .await?;
        Ok(entries.into_iter().map(|s| s.entry).collect())
    }

    /// The contracts' amount and currency changes (the terms look back at them), through
    /// their partial index.
    pub(super) async fn amount_changes(&self) -> Result<Vec<AuditEntry>, StoreError> {
        let entries = self
            .entries_where(
                "a.table_name = 'contracts' AND a.field IN ('amount', 'currency')",
                None,
                "reading contract amount changes",
            )
            .await?;
        Ok(entries.into_iter().map(|s| s.entry).collect())
    }
}
