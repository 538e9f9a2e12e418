//! reconlight's wire formats: the canonical model (`model`), money read exactly (`money`),
//! the mapping of a CRM's tables onto the reference schema (`crm`), and one module per
//! format, each turning bytes into canonical records or positioned errors. Every source
//! (files, drop folders, Kafka, webhooks) and `reconlight decode` reach the decoders through
//! one registry (`registry`): a new format is a module here and one entry there. No I/O, no
//! async.

pub mod crm;
pub mod error;
pub mod model;
pub mod money;
pub mod registry;

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

pub use error::{DecodeError, UnknownName, ValueError};
pub use registry::{Decoded, DecodedItem, Format, FormatOptions, Outcome};
