//! Kafka helpers: produce files to a topic, publish a generated dataset.

use std::time::Instant;

use crate::args::KafkaAction;

pub async fn run(action: KafkaAction) -> anyhow::Result<()> {
    match action {
        KafkaAction::Produce {
            brokers,
            topic,
            partitions,
            whole_file,
            key_pointers,
            properties,
            files,
        } => {
            let options = reconlight_service::publish::ProduceOptions {
                brokers,
                properties: parse_properties(properties)?,
                topic,
                partitions,
                whole_file,
                key_pointers,
            };
            let started = Instant::now();
            let n = reconlight_service::publish::produce(&options, &files).await?;
            println!(
                "sent {n} messages to {} in {:.1}s",
                options.topic,
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        #[cfg(feature = "testkit")]
        KafkaAction::PublishDataset {
            brokers,
            partitions,
            properties,
            dir,
        } => {
            let properties = parse_properties(properties)?;
            if !reconlight_testkit::dataset_exists(&dir) {
                anyhow::bail!("{} holds no generated dataset", dir.display());
            }
            let started = Instant::now();
            for t in reconlight_testkit::dataset_topics(&dir) {
                let options = reconlight_service::publish::ProduceOptions {
                    brokers: brokers.clone(),
                    properties: properties.clone(),
                    topic: t.topic.clone(),
                    partitions: Some(partitions),
                    whole_file: t.whole_file,
                    key_pointers: t.key_pointers.clone(),
                };
                let n = reconlight_service::publish::produce(&options, &t.files).await?;
                println!("  {:<32} {n:>7} messages", t.topic);
            }
            let config = dir.join("reconlight-kafka.toml");
            std::fs::write(
                &config,
                reconlight_testkit::dataset_kafka_config(&dir, &brokers),
            )?;
            println!(
                "published in {:.1}s; run it with `reconlight run --config {}`",
                started.elapsed().as_secs_f64(),
                config.display()
            );
            Ok(())
        }
    }
}

/// `-X name=value` options as librdkafka properties.
fn parse_properties(
    properties: Vec<String>,
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    properties
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| anyhow::anyhow!("-X {p}: expected name=value"))
        })
        .collect()
}
