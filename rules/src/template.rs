//! Annotation templates: `{column}` is replaced by the breach row's value.

use std::collections::BTreeMap;

/// Renders a template against a row; unknown columns stay visible as `{name}`, `{{` is `{`.
pub fn render(template: &str, row: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        if let Some(stripped) = after.strip_prefix('{') {
            out.push('{');
            rest = stripped;
            continue;
        }
        match after.find('}') {
            Some(end) => {
                let key = after[..end].trim();
                match row.get(key) {
                    Some(v) => out.push_str(v),
                    None => {
                        out.push('{');
                        out.push_str(&after[..end]);
                        out.push('}');
                    }
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_columns() {
        let row = BTreeMap::from([("contract_no".to_string(), "HT-2026-000001".to_string())]);
        assert_eq!(
            render("Contract {contract_no} {{x}} {missing}", &row),
            "Contract HT-2026-000001 {x}} {missing}"
        );
    }
}
