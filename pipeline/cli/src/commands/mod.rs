//! What each command does; `run` carries out a parsed command line.

mod audit;
mod data;
mod decode;
mod kafka;
mod queue;
mod rules;
mod tokens;

use crate::args::{Cli, Command};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        #[cfg(feature = "testkit")]
        Command::Demo {
            contracts,
            seed,
            data_dir,
            no_serve,
            listen,
        } => data::demo(contracts, seed, &data_dir, no_serve, &listen).await,
        #[cfg(feature = "testkit")]
        Command::Generate {
            contracts,
            seed,
            out,
        } => data::generate(contracts, seed, &out),
        Command::Run { config, until_idle } => data::run(config, until_idle).await,
        Command::Nightly { config, date } => data::nightly(config, date).await,
        Command::Monthly { config, month } => data::monthly(config, month).await,
        Command::Serve { config, listen } => data::serve(config, listen).await,
        Command::Kafka { action } => kafka::run(action).await,
        Command::Workitems { action } => queue::work_items(action).await,
        Command::Alerts { action } => queue::alerts(action).await,
        Command::Deadletters { action } => queue::dead_letters(action).await,
        Command::Audit { action } => audit::run(action).await,
        Command::Rules { action } => rules::run(action).await,
        Command::Decode {
            format,
            csv_mapping,
            file,
        } => decode::run(format, csv_mapping.as_deref(), &file),
        Command::Tokens { action } => tokens::run(action).await,
    }
}
