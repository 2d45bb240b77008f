//! From a line of the generated file back to the spec: the item that holds
//! the line (a type, a method) and the schema or operation it was
//! generated from, so a compile error of the generated crate names the
//! spec line that caused it.

use serde_json::Value;

use crate::lint::Lines;
use crate::operations::method_name;

/// Where a line of the generated file comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The generated item: `type CreateUserRequest`, `fn create_user_invite`.
    pub item: String,
    /// The spec node it was generated from, and that node's line, when
    /// found.
    pub spec: Option<(String, usize)>,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.spec {
            Some((pointer, line)) => write!(f, "{} (spec line {line}, {pointer})", self.item),
            None => f.write_str(&self.item),
        }
    }
}

/// The origin of 1-based `line` of `source` (the generated file), read
/// against `doc` (the translated document) and the spec's `text`.
pub fn locate(source: &str, line: usize, doc: &Value, text: &str) -> Option<Origin> {
    let lines: Vec<&str> = source.lines().collect();
    let upto = line.min(lines.len());
    let (kind, name) = lines[..upto].iter().rev().find_map(|l| item_of(l))?;
    let spec_lines = Lines::new(text);
    let spec = match kind {
        "type" => doc
            .pointer(&format!("/components/schemas/{name}"))
            .map(|_| format!("/components/schemas/{name}"))
            .or_else(|| schema_by_rust_name(doc, name)),
        _ => operation_pointer(doc, name),
    }
    .map(|pointer| {
        let line = spec_lines.line_of(&pointer);
        (pointer, line)
    });
    Some(Origin { item: format!("{kind} {name}"), spec })
}

/// `("type", Name)` for a struct or enum line, `("fn", name)` for a method.
fn item_of(line: &str) -> Option<(&'static str, &str)> {
    let line = line.trim_start();
    for (prefix, kind) in [("pub struct ", "type"), ("pub enum ", "type"), ("pub async fn ", "fn"), ("pub fn ", "fn")] {
        if let Some(rest) = line.strip_prefix(prefix) {
            let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
            if end > 0 {
                return Some((kind, &rest[..end]));
            }
        }
    }
    None
}

/// A schema whose name typify wrote differently (case, separators).
fn schema_by_rust_name(doc: &Value, name: &str) -> Option<String> {
    let schemas = doc.pointer("/components/schemas")?.as_object()?;
    let wanted: String = name.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_ascii_lowercase();
    schemas.keys().find_map(|key| {
        let plain: String = key.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_ascii_lowercase();
        (plain == wanted).then(|| format!("/components/schemas/{}", key.replace('~', "~0").replace('/', "~1")))
    })
}

/// The operation progenitor names `method`.
fn operation_pointer(doc: &Value, method: &str) -> Option<String> {
    let paths = doc.get("paths")?.as_object()?;
    for (path, item) in paths {
        for (verb, operation) in item.as_object()? {
            let id = operation.get("operationId").and_then(Value::as_str);
            if id.is_some_and(|id| method_name(id) == method) {
                return Some(format!("/paths/{}/{verb}", path.replace('~', "~0").replace('/', "~1")));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_traced_to_its_type_or_method_and_spec_line() {
        let text = "openapi: 3.0.3\npaths:\n  /u:\n    post:\n      operationId: createUser\ncomponents:\n  schemas:\n    Thing:\n      type: object\n";
        let doc: Value = serde_yaml_ng::from_str(text).unwrap();
        let source = "mod types {\n    pub struct Thing {\n        pub id: ::uuid::Uuid,\n    }\n}\nimpl Client {\n    pub async fn create_user(&self) {\n        let x = 1;\n    }\n}\n";
        let origin = locate(source, 3, &doc, text).unwrap();
        assert_eq!(origin.to_string(), "type Thing (spec line 8, /components/schemas/Thing)");
        let origin = locate(source, 8, &doc, text).unwrap();
        assert_eq!(origin.to_string(), "fn create_user (spec line 4, /paths/~1u/post)");
        assert_eq!(locate(source, 1, &doc, text), None);
    }
}
