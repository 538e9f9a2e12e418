//! reconlight's running service. `config` reads the configuration; `ingest` reads the
//! sources (files, drop folders, Kafka, webhook inbox) and drives micro-batches over the core
//! (`reconlight-core`); `alerts` evaluates the rule packs (`reconlight-rules`) on the live
//! tables (`tables`); `store` commits each batch in one transaction; `notify` drains the
//! outbox; `server` serves the API, the page, webhooks and `/metrics` (`metrics`).

pub mod access;
pub mod actions;
pub mod alerts;
pub mod audit_trail;
pub mod config;
pub mod error;
pub mod escalation;
pub mod ingest;
pub mod metrics;
pub mod notify;
pub mod publish;
pub mod report;
pub mod schedule;
pub mod server;
pub mod settings;
pub mod shutdown;
pub mod store;
pub mod tables;
pub mod watch;
