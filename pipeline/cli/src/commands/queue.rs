//! The queue and the lights from the command line: list, show, and what a clerk does.

use anyhow::Context;

use crate::args::{AlertsAction, ListAction, OutputFormat, WorkItemsAction};

pub async fn work_items(action: WorkItemsAction) -> anyhow::Result<()> {
    match action {
        WorkItemsAction::List(ListAction::List {
            config,
            format,
            kind,
            state,
        }) => {
            let store = reconlight_service::store::Store::open(&config.load()?.store_url()).await?;
            let items: Vec<_> = store
                .work_items()
                .await?
                .into_iter()
                .filter(|w| kind.as_deref().is_none_or(|k| w.finding.kind.as_str() == k))
                .filter(|w| state.as_deref().is_none_or(|s| w.state.as_str() == s))
                .collect();
            match format {
                OutputFormat::Json => {
                    for w in &items {
                        println!("{}", serde_json::to_string(w)?);
                    }
                }
                OutputFormat::Table => {
                    println!(
                        "{:<20} {:<24} {:<9} {:<16} {:>4} {:<22} {:>14} {:>14}",
                        "ID",
                        "KIND",
                        "STATE",
                        "CONTRACT",
                        "INST",
                        "BANK REF",
                        "EXPECTED",
                        "RECEIVED"
                    );
                    for w in &items {
                        let f = &w.finding;
                        println!(
                            "{:<20} {:<24} {:<9} {:<16} {:>4} {:<22} {:>14} {:>14}",
                            w.id,
                            f.kind.as_str(),
                            w.state.as_str(),
                            f.contract_no.as_deref().unwrap_or("-"),
                            f.installment
                                .map(|i| i.to_string())
                                .unwrap_or_else(|| "-".into()),
                            f.bank_ref.as_deref().unwrap_or("-"),
                            f.expected
                                .map(|d| d.to_string())
                                .unwrap_or_else(|| "-".into()),
                            f.received
                                .map(|d| d.to_string())
                                .unwrap_or_else(|| "-".into()),
                        );
                    }
                    println!("{} work items", items.len());
                }
            }
            Ok(())
        }
        other => act(other).await,
    }
}

pub async fn alerts(action: AlertsAction) -> anyhow::Result<()> {
    match action {
        AlertsAction::Ack {
            config,
            id,
            by,
            reason,
        } => {
            let store = reconlight_service::store::Store::open(&config.load()?.store_url()).await?;
            match store
                .acknowledge_alert(&id, &by, &reason, chrono::Utc::now())
                .await
            {
                Ok(alert) => {
                    println!(
                        "{}: acknowledged by {by} ({} {} {})",
                        alert.id,
                        alert.rule_id,
                        alert.subject,
                        alert.level.as_str()
                    );
                    Ok(())
                }
                Err(e) => Err(e.into()),
            }
        }
        AlertsAction::List(ListAction::List {
            config,
            format,
            kind,
            state,
        }) => {
            let store = reconlight_service::store::Store::open(&config.load()?.store_url()).await?;
            let alerts: Vec<_> = store
                .alerts()
                .await?
                .into_iter()
                .filter(|a| kind.as_deref().is_none_or(|k| a.rule_id == k))
                .filter(|a| state.as_deref().is_none_or(|s| a.state.as_str() == s))
                .collect();
            match format {
                OutputFormat::Json => {
                    for a in &alerts {
                        println!("{}", serde_json::to_string(a)?);
                    }
                }
                OutputFormat::Table => {
                    println!(
                        "{:<20} {:<36} {:<26} {:<7} {:<9} SUMMARY",
                        "ID", "RULE", "SUBJECT", "LEVEL", "STATE"
                    );
                    for a in &alerts {
                        println!(
                            "{:<20} {:<36} {:<26} {:<7} {:<9} {}",
                            a.id,
                            a.rule_id,
                            a.subject,
                            a.level.as_str(),
                            a.state.as_str(),
                            a.annotations
                                .get("summary")
                                .map(String::as_str)
                                .unwrap_or("")
                        );
                    }
                    println!("{} alerts", alerts.len());
                }
            }
            Ok(())
        }
    }
}

pub async fn dead_letters(action: ListAction) -> anyhow::Result<()> {
    let ListAction::List { config, format, .. } = action;
    let store = reconlight_service::store::Store::open(&config.load()?.store_url()).await?;
    let letters = store.dead_letters(10_000).await?;
    for l in &letters {
        match format {
            OutputFormat::Json => println!("{}", serde_json::to_string(l)?),
            OutputFormat::Table => println!("{}  {}  {}", l.source, l.position, l.reason),
        }
    }
    if format == OutputFormat::Table {
        println!("{} dead letters", letters.len());
    }
    Ok(())
}

async fn act(action: WorkItemsAction) -> anyhow::Result<()> {
    use reconlight_service::actions::{Action, perform};
    let (config, id, by, action) = match action {
        WorkItemsAction::List(_) => unreachable!("listed above"),
        WorkItemsAction::Show { config, id } => {
            let store = reconlight_service::store::Store::open(&config.load()?.store_url()).await?;
            let item = store
                .work_item(&id)
                .await?
                .with_context(|| format!("no work item `{id}`"))?;
            println!("{}", serde_json::to_string_pretty(&item)?);
            return Ok(());
        }
        WorkItemsAction::Assign { config, id, to, by } => {
            (config, id, by, Action::Assign { assignee: to })
        }
        WorkItemsAction::Comment {
            config,
            id,
            text,
            by,
        } => (config, id, by, Action::Comment { text }),
        WorkItemsAction::Resolve {
            config,
            id,
            reason,
            by,
        } => (config, id, by, Action::Resolve { reason }),
        WorkItemsAction::Dismiss {
            config,
            id,
            reason,
            by,
        } => (config, id, by, Action::Dismiss { reason }),
        WorkItemsAction::Match {
            config,
            id,
            contract,
            installment,
            amount,
            by,
        } => (
            config,
            id,
            by,
            Action::Match {
                contract_no: contract,
                installment,
                amount,
            },
        ),
        WorkItemsAction::Confirm { config, id, by } => (config, id, by, Action::Confirm),
        WorkItemsAction::Reject {
            config,
            id,
            reason,
            by,
        } => (config, id, by, Action::Reject { reason }),
    };
    let store = reconlight_service::store::Store::open(&config.load()?.store_url()).await?;
    let item = perform(&store, &id, &by, action, chrono::Utc::now(), None).await?;
    let last = item.history.last().expect("the action was recorded");
    println!(
        "{}: {} ({}) by {}: {}",
        item.id,
        item.state.as_str(),
        last.action,
        last.by,
        last.note
    );
    Ok(())
}
