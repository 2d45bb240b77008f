//! Reading a spec file into a `serde_json::Value`.
//!
//! The spec is parsed as YAML (JSON is read as JSON, for exact error
//! positions) into a generic value first, because the 3.1 → 3.0 translation
//! works on the raw document before `openapiv3` sees it.

use serde_json::{Map, Number, Value};

use crate::error::Error;

/// Parses spec text. `label` names the file in errors.
pub(crate) fn parse(label: &str, text: &str) -> Result<Value, Error> {
    if label.ends_with(".json") {
        return serde_json::from_str(text).map_err(|e| Error::Syntax {
            path: label.to_owned(),
            line: e.line(),
            column: e.column(),
            format: "JSON",
            message: e.to_string(),
        });
    }
    let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(|e| {
        let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
        Error::Syntax { path: label.to_owned(), line, column, format: "YAML", message: e.to_string() }
    })?;
    yaml_to_json(yaml, "").map_err(|(pointer, reason)| Error::Unsupported { path: label.to_owned(), pointer, reason })
}

/// Converts YAML to JSON. Map keys become strings, because YAML authors write
/// response codes unquoted (`200:`) and JSON object keys are strings.
fn yaml_to_json(yaml: serde_yaml_ng::Value, pointer: &str) -> Result<Value, (String, String)> {
    use serde_yaml_ng::Value as Y;
    Ok(match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Number(i.into())
            } else if let Some(u) = n.as_u64() {
                Value::Number(u.into())
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                Value::Number(
                    Number::from_f64(f)
                        .ok_or_else(|| (pointer.to_owned(), format!("the number {n} has no JSON representation")))?,
                )
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| yaml_to_json(item, &format!("{pointer}/{i}")))
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(entries) => {
            let mut map = Map::with_capacity(entries.len());
            for (key, value) in entries {
                let key = match key {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    other => {
                        return Err((pointer.to_owned(), format!("mapping key {other:?} is not a string")));
                    }
                };
                let child = format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"));
                let value = yaml_to_json(value, &child)?;
                map.insert(key, value);
            }
            Value::Object(map)
        }
        // Custom tags (`!foo bar`) mean nothing to OpenAPI; keep the value.
        Y::Tagged(tagged) => yaml_to_json(tagged.value, pointer)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unquoted_numeric_keys_become_strings() {
        let value = parse("x.yaml", "responses:\n  200:\n    description: ok\n").unwrap();
        assert_eq!(value, json!({"responses": {"200": {"description": "ok"}}}));
    }

    #[test]
    fn yaml_errors_name_file_line_and_column() {
        let err = parse("spec/x.yaml", "a: 1\nb: [unclosed\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("spec/x.yaml:"), "{text}");
        assert!(matches!(err, Error::Syntax { line, .. } if line >= 2), "{text}");
        assert!(text.contains("invalid YAML"), "{text}");
    }

    #[test]
    fn json_is_read_as_json() {
        assert_eq!(parse("x.json", r#"{"a": [1, 2.5]}"#).unwrap(), json!({"a": [1, 2.5]}));
        let err = parse("x.json", "{\n  \"a\": ,\n}").unwrap_err();
        assert!(matches!(err, Error::Syntax { line: 2, format: "JSON", .. }), "{err}");
    }

    #[test]
    fn non_finite_numbers_and_complex_keys_are_errors() {
        let err = parse("x.yaml", "a:\n  b: .nan\n").unwrap_err();
        assert!(matches!(&err, Error::Unsupported { pointer, .. } if pointer == "/a/b"), "{err}");
        let err = parse("x.yaml", "? [1, 2]\n: v\n").unwrap_err();
        assert!(err.to_string().contains("not a string"), "{err}");
    }
}
