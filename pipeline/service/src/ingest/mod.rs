//! Ingest: file sources merged in event-time order, cut into micro-batches, each applied,
//! reconciled, evaluated and committed in one transaction.

mod batch;
pub mod kafka;
mod lines;
mod monthly;
mod nightly;
pub mod pipeline;
mod read;
pub mod source;

pub use monthly::MonthlyFiles;
pub use pipeline::{Pipeline, RunStats};
