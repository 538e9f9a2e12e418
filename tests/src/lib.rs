//! Service tests live in tests/.
