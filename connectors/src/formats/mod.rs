//! One module per wire format; each turns bytes into canonical records or positioned errors.

pub mod adobe_sign;
pub mod bank_csv;
pub mod camt;
pub mod debezium;
pub mod docusign;
pub mod esign_cn;
pub mod fadada;
pub mod json_fields;
pub mod mt940;
pub mod statement;
