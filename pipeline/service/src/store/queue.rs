//! What clerks work on: work items, a credit's allocations, decisions and history, installments, dead letters and nightly reports.

use super::*;

impl Store {
    /// Every work item, by id.
    pub async fn work_items(
        &self,
    ) -> Result<Vec<reconlight_core::workitems::WorkItem>, StoreError> {
        self.docs("work_items", "item_id").await
    }

    /// One work item.
    pub async fn work_item(
        &self,
        id: &str,
    ) -> Result<Option<reconlight_core::workitems::WorkItem>, StoreError> {
        self.doc("work_items", "item_id", id).await
    }

    /// One bank transaction.
    pub async fn bank_row(
        &self,
        bank_ref: &str,
    ) -> Result<Option<reconlight_core::state::BankRow>, StoreError> {
        self.doc("bank_transactions", "bank_ref", bank_ref).await
    }

    /// A credit's current allocations (empty when it is unmatched).
    pub async fn allocations_of(
        &self,
        bank_ref: &str,
    ) -> Result<Vec<reconlight_core::reconcile::matching::Allocation>, StoreError> {
        Ok(self
            .doc("matches", "bank_ref", bank_ref)
            .await?
            .unwrap_or_default())
    }

    /// How a credit's allocation moved over time, oldest first.
    pub async fn match_history(
        &self,
        bank_ref: &str,
    ) -> Result<Vec<reconlight_core::state::MatchChange>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT doc FROM match_history WHERE bank_ref = $1 ORDER BY recorded_at, change_id",
        )
        .bind(bank_ref.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(ctx("reading a credit's match history"))?;
        rows.into_iter()
            .map(|(doc,)| from_json("match_history", bank_ref, &doc))
            .collect()
    }

    /// A contract's installments (empty when it has none).
    pub async fn installments_of(
        &self,
        contract_no: &str,
    ) -> Result<Vec<reconlight_core::reconcile::terms::Installment>, StoreError> {
        Ok(self
            .doc::<InstallmentsDoc>("installments", "contract_no", contract_no)
            .await?
            .map(|d| d.installments)
            .unwrap_or_default())
    }

    /// Clerks' match decisions, by bank reference.
    pub async fn manual_decisions(
        &self,
    ) -> Result<
        std::collections::BTreeMap<String, reconlight_core::reconcile::matching::ManualDecision>,
        StoreError,
    > {
        Ok(self
            .docs::<reconlight_core::reconcile::matching::ManualDecision>(
                "manual_decisions",
                "bank_ref",
            )
            .await?
            .into_iter()
            .map(|d| (d.bank_ref.clone(), d))
            .collect())
    }

    /// The decisions about one credit so far (empty when there are none).
    pub async fn manual_decision_of(
        &self,
        bank_ref: &str,
    ) -> Result<reconlight_core::reconcile::matching::ManualDecision, StoreError> {
        Ok(self
            .doc("manual_decisions", "bank_ref", bank_ref)
            .await?
            .unwrap_or_else(|| reconlight_core::reconcile::matching::ManualDecision {
                bank_ref: bank_ref.to_string(),
                ..Default::default()
            }))
    }

    /// Writes a clerk's action: the work item, the match decision it made, and its message.
    /// Writes a clerk's action only if nobody changed the item (or the credit's decisions)
    /// since it was read: `item.version` and `decision.version` are the new versions, one
    /// past what was read. A lost race is a conflict error (`is_conflict`).
    pub async fn save_action(
        &self,
        item: &reconlight_core::workitems::WorkItem,
        decision: Option<&reconlight_core::reconcile::matching::ManualDecision>,
        message: &reconlight_core::outbox::OutboxMessage,
    ) -> Result<(), StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(ctx("starting a transaction"))?;
        if !write_work_item_if(&mut tx, item, item.version.checked_sub(1)).await? {
            return Err(StoreError::conflict(
                "saving a clerk's action",
                format!("work item {}", item.id),
            ));
        }
        // What an action changes of the queue's index; the contract's context stays.
        sqlx::query(
            "UPDATE work_queue SET state = $2, active = $3, assignee = $4 WHERE item_id = $1",
        )
        .bind(item.id.clone())
        .bind(item.state.as_str())
        .bind(item.state.is_active() as i64)
        .bind(item.assignee.clone())
        .execute(&mut *tx)
        .await
        .map_err(ctx("saving a clerk's action"))?;
        if let Some(d) = decision {
            let doc = to_json(d);
            let written = match d.version.checked_sub(1) {
                Some(0) | None => sqlx::query(
                    "INSERT INTO manual_decisions (bank_ref, doc, version) VALUES ($1, $2, $3) ON CONFLICT (bank_ref) DO NOTHING",
                )
                .bind(d.bank_ref.clone())
                .bind(doc.clone())
                .bind(d.version as i64)
                .execute(&mut *tx)
                .await
                .map_err(ctx("saving a match decision"))?
                .rows_affected(),
                _ => 0,
            };
            let written = if written == 1 {
                1
            } else {
                sqlx::query(
                    "UPDATE manual_decisions SET doc = $1, version = $2 WHERE bank_ref = $3 AND version = $4",
                )
                .bind(doc)
                .bind(d.version as i64)
                .bind(d.bank_ref.clone())
                .bind(d.version.saturating_sub(1) as i64)
                .execute(&mut *tx)
                .await
                .map_err(ctx("saving a match decision"))?
                .rows_affected()
            };
            if written != 1 {
                return Err(StoreError::conflict(
                    "saving a clerk's action",
                    format!("the decisions about credit {}", d.bank_ref),
                ));
            }
            log_change(&mut tx, self.backend, ChangeKind::Decision, &d.bank_ref).await?;
        }
        write_outbox(
            &mut tx,
            [message],
            &deliveries::written_at(chrono::Utc::now()),
        )
        .await?;
        super::write::mark_change(&mut tx).await?;
        tx.commit().await.map_err(ctx("committing the action"))?;
        Ok(())
    }

    /// Dead letters, newest first.
    pub async fn dead_letters(&self, limit: i64) -> Result<Vec<DeadLetter>, StoreError> {
        let rows: Vec<AnyRow> = sqlx::query("SELECT source, source_position, reason, raw, recorded_at FROM dead_letters ORDER BY recorded_at DESC, letter_id LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(ctx("reading dead letters"))?;
        rows.iter()
            .map(|r| {
                let at: String = r.try_get(4).map_err(ctx("reading dead letters"))?;
                Ok(DeadLetter {
                    source: r.try_get(0).map_err(ctx("reading dead letters"))?,
                    position: r.try_get(1).map_err(ctx("reading dead letters"))?,
                    reason: r.try_get(2).map_err(ctx("reading dead letters"))?,
                    raw: r.try_get(3).map_err(ctx("reading dead letters"))?,
                    recorded_at: chrono::DateTime::parse_from_rfc3339(&at)
                        .map(|t| t.to_utc())
                        .unwrap_or_default(),
                })
            })
            .collect()
    }

    /// The latest nightly run's outcome, if there was one.
    pub async fn latest_nightly(
        &self,
    ) -> Result<Option<reconlight_core::reconcile::diff::NightlyOutcome>, StoreError> {
        let row: Option<AnyRow> = sqlx::query(
            "SELECT business_date, doc FROM nightly_reports ORDER BY business_date DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(ctx("reading the latest nightly report"))?;
        row.map(|r| {
            let date: String = r
                .try_get(0)
                .map_err(ctx("reading the latest nightly report"))?;
            let doc: String = r
                .try_get(1)
                .map_err(ctx("reading the latest nightly report"))?;
            from_json("nightly_reports", &date, &doc)
        })
        .transpose()
    }

    /// The stored nightly reports, newest first.
    pub async fn nightly_reports(&self) -> Result<Vec<serde_json::Value>, StoreError> {
        let rows: Vec<AnyRow> =
            sqlx::query("SELECT doc FROM nightly_reports ORDER BY business_date DESC")
                .fetch_all(&self.pool)
                .await
                .map_err(ctx("reading nightly reports"))?;
        rows.iter()
            .map(|r| {
                let doc: String = r.try_get(0).map_err(ctx("reading nightly reports"))?;
                from_json("nightly_reports", "", &doc)
            })
            .collect()
    }

    /// The stored monthly reports' figures, newest month first.
    pub async fn monthly_reports(
        &self,
    ) -> Result<Vec<reconlight_core::monthly::MonthlyFigures>, StoreError> {
        let rows: Vec<AnyRow> = sqlx::query(
            "SELECT name, value FROM meta WHERE name LIKE 'monthly_report:%' ORDER BY name DESC",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(ctx("reading monthly reports"))?;
        rows.iter()
            .map(|r| {
                let name: String = r.try_get(0).map_err(ctx("reading monthly reports"))?;
                let doc: String = r.try_get(1).map_err(ctx("reading monthly reports"))?;
                from_json("meta", &name, &doc)
            })
            .collect()
    }

    /// One month's report figures, if it was made.
    pub async fn monthly_report(
        &self,
        month: reconlight_core::monthly::Month,
    ) -> Result<Option<reconlight_core::monthly::MonthlyFigures>, StoreError> {
        let name = monthly_report_key(month);
        self.meta(&name)
            .await?
            .map(|doc| from_json("meta", &name, &doc))
            .transpose()
    }
}

/// Where a month's report figures are kept in `meta`.
pub fn monthly_report_key(month: reconlight_core::monthly::Month) -> String {
    format!("monthly_report:{month}")
}
