//! Comparing the committed file with a fresh generation.

use similar::TextDiff;

/// A unified diff from `old` to `new`, or `None` when they are identical.
///
/// The labels head the diff (`--- old_label`, `+++ new_label`).
///
/// # Example
/// ```
/// use filevine_identity_codegen::diff;
/// assert_eq!(diff("a", "b", "x\n", "x\n"), None);
/// let d = diff("committed", "generated", "x\ny\n", "x\nz\n").unwrap();
/// assert!(d.contains("--- committed\n+++ generated\n"));
/// assert!(d.contains("-y\n+z\n"));
/// ```
pub fn diff(old_label: &str, new_label: &str, old: &str, new: &str) -> Option<String> {
    if old == new {
        return None;
    }
    Some(TextDiff::from_lines(old, new).unified_diff().context_radius(3).header(old_label, new_label).to_string())
}
