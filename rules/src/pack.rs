//! Rule packs: every `*.toml` under `packs/<pack>/` (except `tests/`) is a rule.

use std::path::{Path, PathBuf};

use crate::rule::{Rule, RuleError};

include!(concat!(env!("OUT_DIR"), "/embedded_packs.rs"));

/// The rules that loaded, and the files that did not (each skipped, never fatal).
#[derive(Debug, Default)]
pub struct LoadedRules {
    pub rules: Vec<Rule>,
    pub errors: Vec<RuleError>,
}

impl LoadedRules {
    fn add(&mut self, origin: &str, text: &str) {
        match Rule::parse(origin, text) {
            Ok(rule) => {
                if let Some(dup) = self.rules.iter().find(|r| r.id == rule.id) {
                    self.errors.push(RuleError {
                        file: origin.to_string(),
                        line: 1,
                        message: format!(
                            "rule id `{}` is already defined in {}",
                            rule.id, dup.origin
                        ),
                    });
                } else {
                    self.rules.push(rule);
                }
            }
            Err(e) => self.errors.push(e),
        }
    }
}

fn is_rule_file(rel: &str) -> bool {
    rel.ends_with(".toml") && !rel.split('/').any(|part| part == "tests")
}

/// The packs shipped inside the binary.
pub fn load_embedded() -> LoadedRules {
    let mut loaded = LoadedRules::default();
    for (rel, text) in EMBEDDED_PACKS {
        if is_rule_file(rel) {
            loaded.add(&format!("rules/packs/{rel}"), text);
        }
    }
    loaded
}

/// The shipped rule-test files: (path under packs/, contents).
pub fn embedded_test_files() -> Vec<(&'static str, &'static str)> {
    EMBEDDED_PACKS
        .iter()
        .filter(|(rel, _)| rel.split('/').any(|p| p == "tests"))
        .copied()
        .collect()
}

/// Every rule under a packs directory (`<dir>/<pack>/*.toml`), in path order.
pub fn load_dir(dir: &Path) -> LoadedRules {
    let mut loaded = LoadedRules::default();
    let mut files = Vec::new();
    walk(dir, &mut files);
    files.sort();
    for path in files {
        let rel = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        if !is_rule_file(&rel) {
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(text) => loaded.add(&path.display().to_string(), &text),
            Err(e) => loaded.errors.push(RuleError {
                file: path.display().to_string(),
                line: 0,
                message: format!("cannot read: {e}"),
            }),
        }
    }
    loaded
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}
