//! The walk over an OpenAPI document that translation and verification
//! share: every schema (with its subschemas) and every Reference Object
//! outside a schema, each with its JSON pointer, handed to a [`Visitor`].

use serde_json::{Map, Value};

use crate::translate_error::TranslateError;

type Result<T = ()> = std::result::Result<T, TranslateError>;

/// What [`walk_document`] does at each schema and each non-schema reference.
pub(crate) trait Visitor {
    /// Called on every schema before its subschemas are walked, so a
    /// translation that creates subschemas (`$ref` → `allOf`) has them walked.
    fn schema(&mut self, pointer: &str, schema: &mut Value) -> Result;
    /// Called on a Reference Object outside a schema (a `$ref` in place of a
    /// parameter, response, …).
    fn reference(&mut self, pointer: &str, reference: &mut Map<String, Value>) -> Result;
}

/// HTTP methods of a Path Item Object.
const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// Appends one reference token to a JSON pointer (RFC 6901 escaping).
pub(crate) fn child(pointer: &str, token: &str) -> String {
    let escaped = token.replace('~', "~0").replace('/', "~1");
    format!("{pointer}/{escaped}")
}

/// Applies `f` to every value of the object at `key`, if there is one.
fn each_entry(
    parent: &mut Map<String, Value>,
    pointer: &str,
    key: &str,
    visitor: &mut dyn Visitor,
    f: fn(&str, &mut Value, &mut dyn Visitor) -> Result,
) -> Result {
    if let Some(Value::Object(entries)) = parent.get_mut(key) {
        let base = child(pointer, key);
        for (name, value) in entries.iter_mut() {
            f(&child(&base, name), value, visitor)?;
        }
    }
    Ok(())
}

/// Applies `f` to every element of the array at `key`, if there is one.
fn each_element(
    parent: &mut Map<String, Value>,
    pointer: &str,
    key: &str,
    visitor: &mut dyn Visitor,
    f: fn(&str, &mut Value, &mut dyn Visitor) -> Result,
) -> Result {
    if let Some(Value::Array(items)) = parent.get_mut(key) {
        let base = child(pointer, key);
        for (index, value) in items.iter_mut().enumerate() {
            f(&child(&base, &index.to_string()), value, visitor)?;
        }
    }
    Ok(())
}

/// Walks the OpenAPI object structure and hands every schema and every
/// non-schema reference to the visitor.
pub(crate) fn walk_document(root: &mut Map<String, Value>, visitor: &mut dyn Visitor) -> Result {
    each_entry(root, "", "paths", visitor, walk_path_item)?;
    if let Some(Value::Object(components)) = root.get_mut("components") {
        let base = "/components";
        each_entry(components, base, "schemas", visitor, walk_schema)?;
        each_entry(components, base, "responses", visitor, walk_response)?;
        each_entry(components, base, "parameters", visitor, walk_parameter)?;
        each_entry(components, base, "requestBodies", visitor, walk_request_body)?;
        each_entry(components, base, "headers", visitor, walk_parameter)?;
        each_entry(components, base, "callbacks", visitor, walk_callback)?;
    }
    Ok(())
}

/// If `value` is a Reference Object, visits it and returns `true`.
fn visit_if_reference(pointer: &str, value: &mut Value, visitor: &mut dyn Visitor) -> Result<bool> {
    match value {
        Value::Object(map) if map.contains_key("$ref") => {
            visitor.reference(pointer, map)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

fn walk_path_item(pointer: &str, value: &mut Value, visitor: &mut dyn Visitor) -> Result {
    let Value::Object(item) = value else { return Ok(()) };
    // A path item's `$ref` may have siblings in 3.0 too; walk both.
    each_element(item, pointer, "parameters", visitor, walk_parameter)?;
    for method in METHODS {
        if let Some(Value::Object(operation)) = item.get_mut(*method) {
            let op_pointer = child(pointer, method);
            each_element(operation, &op_pointer, "parameters", visitor, walk_parameter)?;
            if let Some(body) = operation.get_mut("requestBody") {
                walk_request_body(&child(&op_pointer, "requestBody"), body, visitor)?;
            }
            each_entry(operation, &op_pointer, "responses", visitor, walk_response)?;
            each_entry(operation, &op_pointer, "callbacks", visitor, walk_callback)?;
        }
    }
    Ok(())
}

fn walk_callback(pointer: &str, value: &mut Value, visitor: &mut dyn Visitor) -> Result {
    if visit_if_reference(pointer, value, visitor)? {
        return Ok(());
    }
    if let Value::Object(expressions) = value {
        for (expression, item) in expressions.iter_mut() {
            walk_path_item(&child(pointer, expression), item, visitor)?;
        }
    }
    Ok(())
}

/// Parameter Object or Header Object: both have `schema` or `content`.
fn walk_parameter(pointer: &str, value: &mut Value, visitor: &mut dyn Visitor) -> Result {
    if visit_if_reference(pointer, value, visitor)? {
        return Ok(());
    }
    let Value::Object(parameter) = value else { return Ok(()) };
    if let Some(schema) = parameter.get_mut("schema") {
        walk_schema(&child(pointer, "schema"), schema, visitor)?;
    }
    each_entry(parameter, pointer, "content", visitor, walk_media_type)
}

fn walk_request_body(pointer: &str, value: &mut Value, visitor: &mut dyn Visitor) -> Result {
    if visit_if_reference(pointer, value, visitor)? {
        return Ok(());
    }
    let Value::Object(body) = value else { return Ok(()) };
    each_entry(body, pointer, "content", visitor, walk_media_type)
}

fn walk_response(pointer: &str, value: &mut Value, visitor: &mut dyn Visitor) -> Result {
    if visit_if_reference(pointer, value, visitor)? {
        return Ok(());
    }
    let Value::Object(response) = value else { return Ok(()) };
    each_entry(response, pointer, "headers", visitor, walk_parameter)?;
    each_entry(response, pointer, "content", visitor, walk_media_type)
}

fn walk_media_type(pointer: &str, value: &mut Value, visitor: &mut dyn Visitor) -> Result {
    let Value::Object(media) = value else { return Ok(()) };
    // Note: `examples` here is the Media Type Object's map of Example
    // Objects, valid in 3.0 too. Only schema `examples` are translated.
    if let Some(schema) = media.get_mut("schema") {
        walk_schema(&child(pointer, "schema"), schema, visitor)?;
    }
    if let Some(Value::Object(encodings)) = media.get_mut("encoding") {
        let base = child(pointer, "encoding");
        for (name, encoding) in encodings.iter_mut() {
            if let Value::Object(encoding) = encoding {
                each_entry(encoding, &child(&base, name), "headers", visitor, walk_parameter)?;
            }
        }
    }
    Ok(())
}

/// Visits a schema, then walks its subschemas.
fn walk_schema(pointer: &str, value: &mut Value, visitor: &mut dyn Visitor) -> Result {
    visitor.schema(pointer, value)?;
    let Value::Object(schema) = value else { return Ok(()) };
    each_entry(schema, pointer, "properties", visitor, walk_schema)?;
    for key in ["allOf", "oneOf", "anyOf"] {
        each_element(schema, pointer, key, visitor, walk_schema)?;
    }
    for key in ["items", "not"] {
        if let Some(sub) = schema.get_mut(key) {
            walk_schema(&child(pointer, key), sub, visitor)?;
        }
    }
    // `additionalProperties: true/false` is valid 3.0; only objects are schemas.
    if let Some(sub @ Value::Object(_)) = schema.get_mut("additionalProperties") {
        walk_schema(&child(pointer, "additionalProperties"), sub, visitor)?;
    }
    Ok(())
}
