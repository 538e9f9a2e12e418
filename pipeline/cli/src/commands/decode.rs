//! `reconlight decode`: what a file decodes to, as JSON lines, and whether its statements
//! balance, through the same registry of formats every source uses.

use std::path::Path;

use anyhow::{Context, bail};
use reconlight_formats::bank_csv::CsvOptions;
use reconlight_formats::{Format, FormatOptions, Outcome};

pub fn run(format: Format, csv_mapping: Option<&Path>, file: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let csv: Option<CsvOptions> = match (format, csv_mapping) {
        (Format::Csv, None) => bail!("--format csv needs --csv-mapping FILE"),
        (_, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Some(toml::from_str(&text).with_context(|| format!("reading {}", path.display()))?)
        }
        (_, None) => None,
    };
    let defaults = Defaults::default();
    let options = FormatOptions {
        debezium: &defaults.debezium,
        docusign: &defaults.docusign,
        esign_cn: &defaults.esign_cn,
        fadada: &defaults.fadada,
        adobe_sign: &defaults.adobe_sign,
        csv: csv.as_ref(),
    };
    let decoded = format.decode_file(&bytes, &options);
    for s in &decoded.statements {
        eprintln!(
            "statement {} account {}: {} entries, balance check: {}",
            s.id,
            s.account,
            s.entries,
            match s.balance_difference {
                None => "no opening/closing balances".to_string(),
                Some(d) if d.is_zero() => "balances".to_string(),
                Some(d) => format!("DOES NOT BALANCE (difference {d})"),
            }
        );
        for p in &s.problems {
            eprintln!("  {p}");
        }
    }
    let mut errors = 0;
    for item in decoded.items {
        match item.outcome {
            Outcome::Record(r) => println!("{}", serde_json::json!(r)),
            Outcome::Skip(why) => println!("{}", serde_json::json!({ "skipped": why })),
            Outcome::Error(e) => {
                errors += 1;
                eprintln!("{}: {e}", file.display());
            }
        }
    }
    if errors > 0 {
        bail!("{errors} records did not decode");
    }
    Ok(())
}

/// Each format's default options.
#[derive(Default)]
struct Defaults {
    debezium: reconlight_formats::debezium::DebeziumOptions,
    docusign: reconlight_formats::docusign::DocusignOptions,
    esign_cn: reconlight_formats::esign_cn::EsignCnOptions,
    fadada: reconlight_formats::fadada::FadadaOptions,
    adobe_sign: reconlight_formats::adobe_sign::AdobeSignOptions,
}
