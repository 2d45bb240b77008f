//! Warnings a store logs once per process and URL (an application opens a
//! handful of stores, and a warning at every open would bury the rest).

use std::collections::HashSet;
use std::sync::Mutex;

/// How many (kind, URL) pairs are remembered: past that, nothing more is
/// said (an application that opens thousands of stores is told about the
/// first ones).
const REMEMBERED: usize = 64;

/// Whether this is the first time `kind` is warned about for `url` in this
/// process.
pub(crate) fn first(kind: &'static str, url: &str) -> bool {
    static WARNED: Mutex<Option<HashSet<(&'static str, String)>>> = Mutex::new(None);
    let mut warned = WARNED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let warned = warned.get_or_insert_with(HashSet::new);
    if warned.len() >= REMEMBERED {
        return false;
    }
    warned.insert((kind, url.to_owned()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_kind_and_url_once() {
        assert!(super::first("test a", "redis://h"));
        assert!(!super::first("test a", "redis://h"));
        assert!(super::first("test b", "redis://h"));
        assert!(super::first("test a", "redis://other"));
    }
}
