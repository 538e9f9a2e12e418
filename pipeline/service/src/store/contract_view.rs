//! Everything the store knows about one contract, read on demand for the workbench's
//! contract page: the CRM's rows, the e-signature events, the installments and the credits
//! allocated to them, the handoff tickets.

use serde::Serialize;
use sqlx::Row;

use super::*;
use reconlight_core::reconcile::matching::Allocation;
use reconlight_core::state::BankRow;
use reconlight_formats::model::{Contract, Customer, HandoffTicket, SignatureEvent};

/// One contract's story, as stored.
#[derive(Clone, Debug, Serialize)]
pub struct ContractView {
    pub contract: Contract,
    pub customer: Option<Customer>,
    pub installments: Vec<reconlight_core::reconcile::terms::Installment>,
    pub terms_error: Option<String>,
    pub signatures: Vec<SignatureEvent>,
    pub tickets: Vec<HandoffTicket>,
    /// Credits with at least one allocation to this contract, and all their allocations.
    pub credits: Vec<(BankRow, Vec<Allocation>)>,
}

impl Store {
    /// The contract `no` and what belongs to it; `None` when the CRM never sent it.
    pub async fn contract_view(&self, no: &str) -> Result<Option<ContractView>, StoreError> {
        let Some(contract) = self
            .doc::<Contract>("crm_contracts", "contract_no", no)
            .await?
        else {
            return Ok(None);
        };
        let customer = self
            .doc::<Customer>("crm_customers", "customer_id", &contract.customer_id)
            .await?;
        let (installments, terms_error) = self
            .doc::<InstallmentsDoc>("installments", "contract_no", no)
            .await?
            .map(|d| (d.installments, d.terms_error))
            .unwrap_or_default();
        let signatures = self
            .docs_where::<SignatureEvent>("signature_events", "contract_no", no)
            .await?;
        let tickets = self
            .docs_where::<HandoffTicket>("crm_handoff_tickets", "contract_no", no)
            .await?;
        // Allocations are stored per credit; their JSON names the contract, so a substring
        // narrows the scan to the credits that can belong here before each is checked.
        let needle = format!("%\"contract_no\":{}%", serde_json::json!(no));
        let rows = sqlx::query("SELECT bank_ref, doc FROM matches WHERE doc LIKE $1")
            .bind(needle)
            .fetch_all(&self.pool)
            .await
            .map_err(ctx("reading a contract's credits"))?;
        let mut credits = Vec::new();
        for r in &rows {
            let bank_ref: String = r.try_get(0).map_err(ctx("reading matches"))?;
            let doc: String = r.try_get(1).map_err(ctx("reading matches"))?;
            let allocations: Vec<Allocation> = from_json("matches", &bank_ref, &doc)?;
            if !allocations.iter().any(|a| a.contract_no == no) {
                continue;
            }
            if let Some(row) = self.bank_row(&bank_ref).await? {
                credits.push((row, allocations));
            }
        }
        credits.sort_by(|a, b| {
            (a.0.tx.booking_date, &a.0.tx.bank_ref).cmp(&(b.0.tx.booking_date, &b.0.tx.bank_ref))
        });
        Ok(Some(ContractView {
            contract,
            customer,
            installments,
            terms_error,
            signatures,
            tickets,
            credits,
        }))
    }

    async fn docs_where<T: serde::de::DeserializeOwned>(
        &self,
        table: &str,
        column: &str,
        value: &str,
    ) -> Result<Vec<T>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT doc FROM {table} WHERE {column} = $1"
        )))
        .bind(value.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(ctx(format!("reading {table}")))?;
        rows.iter()
            .map(|r| {
                let doc: String = r.try_get(0).map_err(ctx(format!("reading {table}")))?;
                from_json(table, value, &doc)
            })
            .collect()
    }
}
