//! Secondary indexes from one key to a set of others (a contract to its credits, a customer
//! to its contracts), as the matcher and the rules' subject index keep them.

use std::collections::{BTreeSet, HashMap};

/// A key to the set of values filed under it; a key without values is removed.
pub type MultiMap = HashMap<String, BTreeSet<String>>;

/// Files `value` under `key`. The texts are copied only when new: a start files every row
/// of the history, most of them under keys seen before.
pub fn add(map: &mut MultiMap, key: &str, value: &str) {
    match map.get_mut(key) {
        Some(set) => {
            if !set.contains(value) {
                set.insert(value.to_string());
            }
        }
        None => {
            map.insert(key.to_string(), BTreeSet::from([value.to_string()]));
        }
    }
}

/// Takes `value` out from under `key`, and the key when nothing is left under it.
pub fn remove(map: &mut MultiMap, key: &str, value: &str) {
    if let Some(set) = map.get_mut(key) {
        set.remove(value);
        if set.is_empty() {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_lives_as_long_as_something_is_filed_under_it() {
        let mut map = MultiMap::new();
        add(&mut map, "RC-1", "B2");
        add(&mut map, "RC-1", "B1");
        add(&mut map, "RC-1", "B1");
        let filed: Vec<&str> = map["RC-1"].iter().map(String::as_str).collect();
        assert_eq!(filed, ["B1", "B2"]);
        remove(&mut map, "RC-1", "B1");
        remove(&mut map, "RC-9", "B1");
        assert_eq!(map["RC-1"].len(), 1);
        remove(&mut map, "RC-1", "B2");
        assert!(map.is_empty());
    }
}
