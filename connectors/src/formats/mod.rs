//! One module per wire format; each turns bytes into canonical records or positioned errors.

pub mod bank_csv;
pub mod camt;
pub mod debezium;
pub mod docusign;
