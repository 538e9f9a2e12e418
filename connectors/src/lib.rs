//! reconlight's boundary: wire formats decoded into canonical records, and the mapping of
//! a CRM's tables onto the reference schema.

pub mod crm;
pub mod error;
pub mod formats;
pub mod kafka;
pub mod model;
pub mod money;

pub use error::DecodeError;
