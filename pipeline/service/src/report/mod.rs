//! Reports: the nightly diff's (counts, amounts and the open queue) and the monthly one
//! (targets, handoffs, receivables), each as CSV and a self-contained HTML page.

pub mod monthly;
mod nightly;
mod svg;

pub use nightly::*;

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub(crate) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
