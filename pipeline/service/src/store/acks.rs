//! Alerts as stored, and the acknowledgements people give them.

use super::*;

/// Why an acknowledgement was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum AckError {
    #[error("no alert `{0}`")]
    NoAlert(String),
    #[error("alert {id} is {state}; only firing alerts can be acknowledged")]
    NotFiring { id: String, state: &'static str },
    #[error("alert {id} was already acknowledged by {by} at {}", at.to_rfc3339())]
    Already {
        id: String,
        by: String,
        at: chrono::DateTime<chrono::Utc>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// Acknowledgements by alert id.
    pub async fn alert_acks(
        &self,
    ) -> Result<std::collections::BTreeMap<String, reconlight_rules::Acknowledgement>, StoreError>
    {
        let rows: Vec<AnyRow> = sqlx::query("SELECT alert_id, doc FROM alert_acks")
            .fetch_all(&self.pool)
            .await
            .map_err(ctx("reading alert acknowledgements"))?;
        rows.iter()
            .map(|r| {
                let id: String = r
                    .try_get(0)
                    .map_err(ctx("reading alert acknowledgements"))?;
                let doc: String = r
                    .try_get(1)
                    .map_err(ctx("reading alert acknowledgements"))?;
                Ok((id.clone(), from_json("alert_acks", &id, &doc)?))
            })
            .collect()
    }

    /// Acknowledges a firing alert: the ack and its message, in one transaction.
    pub async fn acknowledge_alert(
        &self,
        alert_id: &str,
        by: &str,
        reason: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<reconlight_rules::Alert, AckError> {
        let Some(mut alert) = self
            .doc::<reconlight_rules::Alert>("alerts", "alert_id", alert_id)
            .await?
        else {
            return Err(AckError::NoAlert(alert_id.to_string()));
        };
        if alert.state != reconlight_rules::AlertState::Firing {
            return Err(AckError::NotFiring {
                id: alert_id.to_string(),
                state: alert.state.as_str(),
            });
        }
        // The pipeline copies an ack onto the alert at its next batch: look at both.
        let stored: Option<reconlight_rules::Acknowledgement> =
            self.doc("alert_acks", "alert_id", alert_id).await?;
        if let Some(a) = alert
            .acknowledged
            .as_ref()
            .or(stored.as_ref())
            .filter(|a| a.fired_at == alert.fired_at)
        {
            return Err(AckError::Already {
                id: alert_id.to_string(),
                by: a.by.clone(),
                at: a.at,
            });
        }
        let ack = reconlight_rules::Acknowledgement {
            by: by.to_string(),
            at: now,
            reason: reason.to_string(),
            fired_at: alert.fired_at,
        };
        alert.acknowledged = Some(ack.clone());
        let message = reconlight_core::outbox::OutboxMessage::new(
            "alerts",
            &alert.id,
            &reconlight_core::alerts::AlertMessage {
                transition: "acknowledged",
                alert: &alert,
            },
            now,
        );
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(ctx("starting a transaction"))?;
        upsert(
            &mut tx,
            "alert_acks",
            &["alert_id", "doc"],
            vec![Some(alert_id.to_string()), Some(to_json(&ack))],
        )
        .await?;
        log_change(&mut tx, self.backend, ChangeKind::Acknowledgement, alert_id).await?;
        write_outbox(
            &mut tx,
            [&message],
            &deliveries::written_at(chrono::Utc::now()),
        )
        .await?;
        super::write::mark_change(&mut tx).await?;
        tx.commit()
            .await
            .map_err(ctx("committing the acknowledgement"))?;
        Ok(alert)
    }

    /// Every alert, by id.
    ///
    /// An acknowledgement given since the pipeline's last batch is shown on its alert
    /// already (the pipeline copies it over at that batch), so a second clerk sees it.
    pub async fn alerts(&self) -> Result<Vec<reconlight_rules::Alert>, StoreError> {
        let alerts = self.docs("alerts", "alert_id").await?;
        self.with_acks(alerts).await
    }

    /// The alerts that are not resolved (pending and firing), by id, as `alerts` shows them:
    /// what the lights and Alertmanager need, without the resolved history.
    pub async fn open_alerts(&self) -> Result<Vec<reconlight_rules::Alert>, StoreError> {
        let alerts = self
            .docs_filtered("alerts", "alert_id", "state <> 'resolved'")
            .await?;
        self.with_acks(alerts).await
    }

    async fn with_acks(
        &self,
        mut alerts: Vec<reconlight_rules::Alert>,
    ) -> Result<Vec<reconlight_rules::Alert>, StoreError> {
        let mut acks = self.alert_acks().await?;
        for a in alerts.iter_mut().filter(|a| a.acknowledged.is_none()) {
            if let Some(ack) = acks.remove(&a.id).filter(|k| k.fired_at == a.fired_at)
                && a.state == reconlight_rules::AlertState::Firing
            {
                a.acknowledged = Some(ack);
            }
        }
        Ok(alerts)
    }
}
