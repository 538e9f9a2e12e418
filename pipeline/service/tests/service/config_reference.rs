//! docs/configuration.md against the configuration's types: every key the configuration
//! accepts is documented in its section, and every key a reference table documents is one
//! the configuration accepts.

use std::collections::{BTreeMap, BTreeSet};

use reconlight_service::config::Config;
use serde_json::Value;

/// Every key path the configuration accepts: `["sources", "[]", "csv", "columns", "value_date"]`.
fn key_paths() -> Vec<Vec<String>> {
    let schema = serde_json::to_value(schemars::schema_for!(Config)).unwrap();
    let defs = schema["$defs"].clone();
    let mut paths = Vec::new();
    walk(&schema, &defs, &mut Vec::new(), &mut paths, 0);
    paths
}

fn walk(s: &Value, defs: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>, depth: usize) {
    assert!(depth < 30, "the configuration nests too deep at {at:?}");
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/$defs/");
        return walk(&defs[name], defs, at, out, depth + 1);
    }
    for alt in ["anyOf", "oneOf", "allOf"] {
        for v in s.get(alt).and_then(Value::as_array).into_iter().flatten() {
            walk(v, defs, at, out, depth + 1);
        }
    }
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            at.push(k.clone());
            out.push(at.clone());
            walk(v, defs, at, out, depth + 1);
            at.pop();
        }
    }
    if let Some(v) = s.get("additionalProperties").filter(|v| v.is_object()) {
        at.push("<name>".into());
        walk(v, defs, at, out, depth + 1);
        at.pop();
    }
    if let Some(v) = s.get("items").filter(|v| v.is_object()) {
        at.push("[]".into());
        walk(v, defs, at, out, depth + 1);
        at.pop();
    }
}

/// The reference's sections by top-level table, each with its text.
fn doc_sections() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/configuration.md"
    ))
    .unwrap();
    let mut sections: BTreeMap<String, String> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            current = heading
                .split('`')
                .nth(1)
                .filter(|t| t.starts_with('['))
                .map(|t| {
                    t.trim_matches(|c| c == '[' || c == ']')
                        .split('.')
                        .next()
                        .unwrap()
                        .to_string()
                });
        }
        if let Some(c) = &current {
            let s = sections.entry(c.clone()).or_default();
            s.push_str(line);
            s.push('\n');
        }
    }
    sections
}

/// Names a section mentions as keys: backticked names (each part of a dotted one, with
/// brackets and `= value` stripped), TOML table headers and `name =` at the start of a
/// TOML line.
fn mentioned(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 1 {
            let part = part.split('=').next().unwrap().trim();
            for word in part
                .trim_matches(|c| c == '[' || c == ']')
                .split(['.', ' ', ','])
            {
                names.insert(word.trim().to_string());
            }
        }
    }
    for line in text.lines() {
        let line = line.trim_start_matches(['#', ' ']);
        if line.starts_with('[') {
            let table = line.split(']').next().unwrap().trim_start_matches('[');
            names.extend(table.split('.').map(str::to_string));
        } else if let Some((k, _)) = line.split_once('=') {
            names.insert(k.trim().trim_matches('"').to_string());
        }
    }
    names
}

/// The names in the first column of a section's reference tables.
fn table_keys(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(|k| k.trim_matches(|c| c == '[' || c == ']').to_string())
        .collect()
}

#[test]
fn every_configuration_key_is_documented_in_its_section() {
    let sections = doc_sections();
    let mut missing = Vec::new();
    for path in key_paths() {
        let top = &path[0];
        let Some(text) = sections.get(top) else {
            missing.push(format!("[{top}] has no section"));
            continue;
        };
        let names = mentioned(text);
        let key = path.last().unwrap();
        if !names.contains(key.as_str()) {
            missing.push(path.join("."));
        }
    }
    missing.dedup();
    assert!(
        missing.is_empty(),
        "docs/configuration.md does not document:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_documented_key_is_one_the_configuration_accepts() {
    let mut known: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in key_paths() {
        known
            .entry(path[0].clone())
            .or_default()
            .extend(path.iter().cloned());
    }
    let mut unknown = Vec::new();
    for (top, text) in doc_sections() {
        let Some(keys) = known.get(&top) else {
            unknown.push(format!("[{top}] is not a section of the configuration"));
            continue;
        };
        for key in table_keys(&text) {
            if !key.split('.').all(|part| keys.contains(part)) {
                unknown.push(format!("[{top}] {key}"));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "docs/configuration.md documents keys the configuration does not accept:\n{}",
        unknown.join("\n")
    );
}

#[test]
fn a_configuration_error_names_its_line_or_key() {
    use reconlight_service::config::ConfigProblem;
    let base = std::path::Path::new(".");
    let err = Config::parse(
        "[ingest]\nbatch_size = 10\nmax_future = \"1 fortnight\"\n",
        base,
    )
    .unwrap_err();
    match &err {
        ConfigProblem::Syntax { line, message } => {
            assert_eq!(*line, 3, "{err}");
            assert!(message.contains("1 fortnight"), "{err}");
        }
        other => panic!("a syntax problem, not {other:?}"),
    }
    let err = Config::parse(
        "[escalation.policies.handoff]\ntiers = [{ after = \"4h\", notify = [\"a\"] }, { after = \"1h\", notify = [\"b\"] }]\n",
        base,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "escalation.policies.handoff tier 2: delays must not decrease"
    );
    let twice = "[[sources]]\nname = \"bank\"\nformat = \"camt\"\npath = \"a\"\n";
    let err = Config::parse(&format!("{twice}{twice}"), base).unwrap_err();
    assert_eq!(err.to_string(), "sources: two sources are named `bank`");
    let err = Config::parse(
        "[notifiers.alertmanager]\nurl = \"alertmanager:9093\"\n",
        base,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("line 2:")
            && err.contains("`alertmanager:9093` is not an http:// or https:// URL with a host"),
        "{err}"
    );
    let err = Config::parse("[nightly]\nschedule = \"0 25 * * *\"\n", base).unwrap_err();
    assert!(
        err.to_string().starts_with("line 2:")
            && err.to_string().contains("hour: `25` is outside 0-23"),
        "{err}"
    );
    let err = Config::parse(
        "[notifiers.dingtalk.finance]\nurl = \"https://oapi.dingtalk.com/robot/send?access_token=t\"\n\n[escalation.policies.finance]\ntiers = [{ after = \"0s\", notify = [\"dingtalk:finance-group\"] }]\n",
        base,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "escalation.policies.finance tier 1 `dingtalk:finance-group`: names no [notifiers.dingtalk.finance-group]"
    );
    let err = Config::parse(
        "[escalation.policies.finance]\ntiers = [{ after = \"0s\", notify = [\"email:cfo@example.cn\"] }]\n",
        base,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "escalation.policies.finance tier 1 `email:cfo@example.cn`: needs [notifiers.email]"
    );
    let err = Config::parse("[reports]\nmonthly = \"0 8 32 * *\"\n", base).unwrap_err();
    assert!(err.to_string().starts_with("line 2:"), "{err}");
}

#[test]
fn the_deployment_configurations_load() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let compose = std::fs::read_to_string(root.join("deploy/compose/reconlight.toml")).unwrap();
    let c = Config::parse(&compose, &root).unwrap();
    assert_eq!(c.sources.len(), 3);
    // The ConfigMap's file, its secrets given as the Deployment's environment gives them.
    let manifest = std::fs::read_to_string(root.join("deploy/kubernetes/configmap.yaml")).unwrap();
    let (_, block) = manifest.split_once("reconlight.toml: |\n").unwrap();
    let text: String = block
        .lines()
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    let env = |name: &str| match name {
        "RECONLIGHT_PG_PASSWORD" => Some("p\"w".to_string()),
        other => Some(format!("secret-of-{other}")),
    };
    let expanded = reconlight_service::settings::expand_env(&text, env).unwrap();
    let c = Config::parse(&expanded, &root).unwrap();
    assert_eq!(
        c.store.url,
        "postgres://reconlight:p\"w@postgres:5432/reconlight"
    );
    let deployment =
        std::fs::read_to_string(root.join("deploy/kubernetes/deployment.yaml")).unwrap();
    for name in text
        .match_indices("${")
        .map(|(i, _)| text[i + 2..].split('}').next().unwrap().to_string())
    {
        assert!(
            deployment.contains(&format!("- name: {name}\n")),
            "the Deployment sets {name}"
        );
    }
}
