//! Ingest: file sources merged in event-time order, cut into micro-batches, each applied,
//! reconciled, evaluated and committed in one transaction.

pub mod kafka;
pub mod pipeline;
pub mod source;

pub use pipeline::{Pipeline, RunStats};
