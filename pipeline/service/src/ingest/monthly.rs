//! The monthly report: its figures over the live state, kept in the store for the page,
//! written beside the nightly reports, and mailed through the outbox.

use super::pipeline::*;

use reconlight_core::monthly::{Month, MonthlyFigures, monthly_figures};
use reconlight_core::outbox::OutboxMessage;
use reconlight_core::state::Dirty;

use crate::report::monthly;

/// The files a monthly report was written to.
pub struct MonthlyFiles {
    pub figures: MonthlyFigures,
    pub csv: std::path::PathBuf,
    pub html: std::path::PathBuf,
}

impl Pipeline {
    /// Makes the report for `month`: stored (the page and the API read it), written as CSV
    /// and HTML, and mailed to `[reports] email` at least once.
    pub async fn monthly_report(&mut self, month: Month) -> crate::error::Result<MonthlyFiles> {
        let tz = self.config.business.time_zone;
        let figures = monthly_figures(&self.state, month, tz);
        let language = self.config.reports.language;
        let now = self.now();
        let mut dirty = Dirty::default();
        dirty.meta.push((
            crate::store::monthly_report_key(month),
            serde_json::to_string(&figures).expect("figures serialize"),
        ));
        if !self.config.reports.email.is_empty() {
            let subject = match language {
                crate::config::notifiers::Language::Zh => format!("reconlight 月度报告 {month}"),
                crate::config::notifiers::Language::En => {
                    format!("reconlight monthly report {month}")
                }
            };
            dirty.outbox.push(OutboxMessage::new(
                "reports",
                &format!("monthly-{month}"),
                &serde_json::json!({
                    "kind": "monthly",
                    "month": month.to_string(),
                    "to": self.config.reports.email,
                    "subject": subject,
                    "language": crate::notify::people::lang_tag(language),
                    "html": monthly::html(&figures, language),
                    "csv": monthly::csv(&figures),
                }),
                now,
            ));
        }
        self.commit(&dirty, None).await?;
        let dir = self.config.resolve(&self.config.nightly.report_dir);
        let (csv, html) = monthly::write_files(&dir, &figures, language).map_err(
            crate::error::FileError::io("write the monthly report to", &dir),
        )?;
        Ok(MonthlyFiles { figures, csv, html })
    }
}
