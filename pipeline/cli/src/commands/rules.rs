//! Rule packs: plan every rule, run every pack's test cases.

use std::path::Path;

use anyhow::bail;
use reconlight_service::config::Config;

use crate::args::RulesAction;

pub async fn run(action: RulesAction) -> anyhow::Result<()> {
    match action {
        RulesAction::Check { config } => {
            let cfg = if config.config.is_some() || config.data_dir.is_some() {
                config.load()?
            } else {
                Config::parse("", Path::new("."))?
            };
            let runner = reconlight_service::alerts::RuleRunner::load(&cfg).await;
            for r in &runner.rules {
                println!("ok      {:<40} {}", r.id, r.origin);
                if let Some(a) = runner.analyses.get(&r.id) {
                    println!("        {}", a.describe());
                }
            }
            for e in runner.broken.values() {
                println!("BROKEN  {e}");
            }
            if runner.broken.is_empty() {
                println!("{} rules, all valid", runner.rules.len());
                Ok(())
            } else {
                bail!(
                    "{} of {} rules are broken",
                    runner.broken.len(),
                    runner.rules.len() + runner.broken.len()
                )
            }
        }
        RulesAction::Test { config } => {
            let cfg = if config.config.is_some() || config.data_dir.is_some() {
                config.load()?
            } else {
                Config::parse("", Path::new("."))?
            };
            let runner = reconlight_service::alerts::RuleRunner::load(&cfg).await;
            for e in runner.broken.values() {
                println!("BROKEN  {e}");
            }
            let results = runner.test_packs(&cfg).await?;
            let failed = results.iter().filter(|r| !r.failures.is_empty()).count();
            for r in &results {
                if r.failures.is_empty() {
                    println!("ok      {} :: {}", r.file, r.case);
                } else {
                    println!("FAIL    {} :: {}", r.file, r.case);
                    for f in &r.failures {
                        println!("          {f}");
                    }
                }
            }
            println!("{} cases, {} failed", results.len(), failed);
            if failed > 0 || !runner.broken.is_empty() {
                bail!("rule tests failed");
            }
            Ok(())
        }
    }
}
