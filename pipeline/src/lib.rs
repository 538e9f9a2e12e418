//! reconlight: a streaming business-to-finance reconciliation and alerting pipeline.
//!
//! CRM change events, e-signature events and bank transactions come in through
//! `reconlight_connectors`; `state` keeps the live tables; `reconcile` derives installments,
//! matches credits and runs the nightly diff; `alerts` evaluates the SQL rule packs of
//! `reconlight_rules`; `store` commits each micro-batch in one transaction.

pub mod alerts;
pub mod audit;
pub mod cli;
pub mod config;
pub mod escalation;
pub mod generate;
pub mod ingest;
pub mod metrics;
pub mod notify;
pub mod outbox;
pub mod publish;
pub mod reconcile;
pub mod report;
pub mod schedule;
pub mod server;
pub mod shutdown;
pub mod state;
pub mod store;
pub mod tables;
pub mod workitems;
