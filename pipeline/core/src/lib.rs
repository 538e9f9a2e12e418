//! reconlight's core: what the pipeline knows and decides, without any database, network or
//! Kafka. `state` keeps the live tables and folds canonical records in; `reconcile` derives
//! installments from payment terms, allocates credits by evidence and runs the nightly diff;
//! `workitems` keeps finance's queue; `alerts` holds the lights as data; `audit` chains every
//! CRM change; `outbox` is what goes out, once committed.

pub mod alerts;
pub mod audit;
pub mod derived;
pub mod error;
pub mod monthly;
pub mod multimap;
pub mod outbox;
pub mod reconcile;
pub mod state;
pub mod workitems;
