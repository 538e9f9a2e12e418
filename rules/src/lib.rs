//! reconlight's rule engine: rules are files of SQL evaluated with DataFusion over the
//! pipeline's live tables; their results drive an alert lifecycle with `for`,
//! `keep_firing_for` and hysteresis.

pub mod clock;
pub mod duration;
pub mod engine;
pub mod lifecycle;
pub mod pack;
pub mod rule;
pub mod scope;
pub mod template;
pub mod testing;

pub use engine::{Breach, Engine, Evaluation};
pub use lifecycle::{Acknowledgement, Alert, AlertState, Transition};
pub use rule::{Level, Rule, RuleError};
