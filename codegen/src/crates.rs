//! The crates generated code names for a schema `format`: progenitor (via
//! typify) turns `format: uuid` into `::uuid::Uuid` and `date-time` /
//! `date` into `chrono` types, so the generated crate must depend on them.
//! A missing dependency is reported against the spec lines that use the
//! format, with the line to add, instead of as a compile error far away.

use serde_json::Value;

use crate::lint::Finding;

/// A format typify maps to another crate's type, that crate, and the
/// dependency line that gives it (with the serde support the generated
/// structs derive).
const FORMAT_CRATES: &[(&str, &str, &str)] = &[
    ("uuid", "uuid", r#"uuid = { version = "1", features = ["serde"] }"#),
    ("date-time", "chrono", r#"chrono = { version = "0.4", default-features = false, features = ["serde", "std"] }"#),
    ("date", "chrono", r#"chrono = { version = "0.4", default-features = false, features = ["serde", "std"] }"#),
];

/// A crate the generated code names, and where the spec asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrateUse {
    /// The crate's name.
    pub name: &'static str,
    /// The `[dependencies]` line that provides it.
    pub dependency: &'static str,
    /// Each schema whose `format` maps to it: pointer, line, operation
    /// (empty `fix`: [`missing`] fills it).
    pub uses: Vec<Finding>,
}

/// The crates `source` (the generated file) names for a format, with the
/// schemas of `doc` (the translated document) that use each; `line_of`
/// gives a pointer's line in the spec text.
pub(crate) fn used(source: &str, doc: &Value, line_of: &dyn Fn(&str) -> usize) -> Vec<CrateUse> {
    let mut out: Vec<CrateUse> = Vec::new();
    let mut formats = Vec::new();
    formats_in(doc, "", &mut formats);
    for (format, krate, dependency) in FORMAT_CRATES {
        if !source.contains(&format!("::{krate}::")) {
            continue;
        }
        let uses = formats.iter().filter(|(_, f)| f == format).map(|(pointer, _)| Finding {
            pointer: pointer.clone(),
            line: line_of(pointer),
            operation: None,
            message: format!("`format: {format}` becomes a `{krate}` type"),
            fix: String::new(),
        });
        match out.iter_mut().find(|c| c.name == *krate) {
            Some(existing) => existing.uses.extend(uses),
            None => out.push(CrateUse { name: krate, dependency, uses: uses.collect() }),
        }
    }
    out
}

/// Every `(pointer, format)` of a string schema in `node`.
fn formats_in(node: &Value, pointer: &str, out: &mut Vec<(String, String)>) {
    match node {
        Value::Object(map) => {
            if let Some(format) = map.get("format").and_then(Value::as_str) {
                out.push((pointer.to_owned(), format.to_owned()));
            }
            for (key, value) in map {
                formats_in(value, &format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1")), out);
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                formats_in(item, &format!("{pointer}/{index}"), out);
            }
        }
        _ => {}
    }
}

/// The uses of crates that `manifest` (the generated crate's `Cargo.toml`)
/// does not depend on, each with the fix.
pub fn missing(crates: &[CrateUse], manifest: &str, manifest_label: &str) -> Vec<Finding> {
    crates
        .iter()
        .filter(|c| !depends_on(manifest, c.name))
        .flat_map(|c| {
            c.uses.iter().map(move |use_| Finding {
                fix: format!(
                    "add `{}` to [dependencies] of {manifest_label}, or drop the `format` (the field becomes a String)",
                    c.dependency
                ),
                message: format!("{}, and {manifest_label} does not depend on `{}`", use_.message, c.name),
                ..use_.clone()
            })
        })
        .collect()
}

/// Whether `[dependencies]` of `manifest` names `krate` (`krate = …`,
/// `krate.workspace = true`).
fn depends_on(manifest: &str, krate: &str) -> bool {
    let mut in_dependencies = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_dependencies = line == "[dependencies]";
            continue;
        }
        if in_dependencies
            && let Some(rest) = line.strip_prefix(krate)
            && (rest.trim_start().starts_with('=') || rest.starts_with('.'))
        {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_format_without_its_crate_is_named_with_its_place_and_fix() {
        let doc = serde_json::json!({
            "components": {"schemas": {"A": {"properties": {"id": {"type": "string", "format": "uuid"},
                                                            "at": {"type": "string", "format": "date-time"}}}}}
        });
        let source = "pub id: ::uuid::Uuid, pub at: ::chrono::DateTime<::chrono::offset::Utc>";
        let crates = used(source, &doc, &|_| 7);
        assert_eq!(crates.iter().map(|c| c.name).collect::<Vec<_>>(), ["uuid", "chrono"]);
        let manifest = "[package]\nname = \"x\"\n\n[dependencies]\nserde.workspace = true\nuuid = \"1\"\n\n[dev-dependencies]\nchrono = \"0.4\"\n";
        let missing = missing(&crates, manifest, "x/Cargo.toml");
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert_eq!(missing[0].pointer, "/components/schemas/A/properties/at");
        assert_eq!(
            missing[0].to_string(),
            "7: /components/schemas/A/properties/at: `format: date-time` becomes a `chrono` type, and x/Cargo.toml \
             does not depend on `chrono`; fix: add `chrono = { version = \"0.4\", default-features = false, features = \
             [\"serde\", \"std\"] }` to [dependencies] of x/Cargo.toml, or drop the `format` (the field becomes a String)"
        );
        assert!(depends_on("[dependencies]\nuuid.workspace = true\n", "uuid"));
        assert!(!depends_on("[dependencies]\nuuid-ext = \"1\"\n", "uuid"));
    }
}
