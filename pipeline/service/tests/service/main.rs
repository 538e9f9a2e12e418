//! The service's integration tests, one module per concern, linked into one test binary:
//! the pipeline links DataFusion, so every extra binary costs a link and a quarter gigabyte.

mod api;
mod chat_and_email;
mod common;
mod config_reference;
mod dead_letters;
mod determinism;
mod drop_folder;
mod health;
mod incremental;
mod integrity_audit;
mod integrity_clerks;
mod integrity_inputs;
mod kafka;
mod lease;
mod monthly_report;
mod notify;
mod order_independence;
mod outbox;
mod restart;
mod resume_reading;
mod rule_packs;
mod scenarios;
mod smtp;
mod snapshot;
mod store_load;
mod store_schema;
mod truth;
mod webhooks;
mod work_queue;
