//! OpenAPI 3.1 → 3.0.3 translation, on the raw JSON value.
//!
//! progenitor reads documents through `openapiv3` 2.2, which models OpenAPI
//! 3.0 only. Handed a 3.1 document it does not fail loudly: it *silently
//! drops* `const`, `examples` and the siblings of `$ref`, and it rejects type
//! arrays such as `[string, "null"]`. So this module rewrites the document
//! while it is still a `serde_json::Value`, before `openapiv3` ever sees it:
//!
//! | 3.1                                          | 3.0.3                                        |
//! |----------------------------------------------|----------------------------------------------|
//! | `type: [T, "null"]`                          | `type: T`, `nullable: true`                  |
//! | `const: v` (also `false`, `0`, `""`, `null`) | `enum: [v]`                                  |
//! | `examples: [a, …]` (in a schema)             | `example: a`                                 |
//! | `exclusiveMinimum: n` (a number)             | `minimum: n`, `exclusiveMinimum: true`       |
//! | `$ref` with sibling keywords                 | `allOf: [{$ref}]` plus the siblings          |
//! | `true` / `false` as a schema                 | `{}` / `{not: {}}`                           |
//! | `contentEncoding: base64`                    | `format: byte`                               |
//! | `$schema`, `$comment`, `contentMediaType`, `webhooks`, `jsonSchemaDialect`, `info.summary`, `license.identifier`, `summary`/`description` beside a non-schema `$ref` | removed: they change nothing for a client |
//!
//! Anything that cannot be translated faithfully (several non-null types,
//! `prefixItems`, `if`/`then`/`else`, `unevaluatedProperties`, …) is a
//! [`TranslateError`] naming the JSON pointer of the offending node. After
//! translation, [`verify_openapi_30`] walks the result again and fails if any
//! 3.1-only construct is left, so a gap in the rules above cannot slip
//! through silently.
//!
//! A 3.0 document is returned unchanged.

use serde_json::{Map, Value};

pub use crate::translate_error::TranslateError;
use crate::walk::{Visitor, child, walk_document};

/// The OpenAPI version a translated document declares.
pub const TRANSLATED_VERSION: &str = "3.0.3";

type Result<T = ()> = std::result::Result<T, TranslateError>;

/// JSON Schema keywords that exist in OpenAPI 3.1 (JSON Schema 2020-12) and
/// have no faithful OpenAPI 3.0 form. Finding one is an error.
pub(crate) const UNTRANSLATABLE_KEYWORDS: &[&str] = &[
    "$id",
    "$anchor",
    "$defs",
    "$dynamicRef",
    "$dynamicAnchor",
    "$vocabulary",
    "prefixItems",
    "unevaluatedItems",
    "unevaluatedProperties",
    "if",
    "then",
    "else",
    "dependentRequired",
    "dependentSchemas",
    "patternProperties",
    "propertyNames",
    "contains",
    "minContains",
    "maxContains",
    "contentSchema",
];

/// 3.1-only schema keywords that are annotations: removing them changes
/// nothing about the requests a client sends or the responses it accepts.
pub(crate) const REMOVED_KEYWORDS: &[&str] = &["$schema", "$comment", "contentMediaType"];

/// Every keyword that must not remain in a schema after translation.
const FORBIDDEN_AFTER_TRANSLATION: &[&str] = &["const", "examples", "contentEncoding"];

/// Which major.minor line a document declares in its `openapi` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecVersion {
    /// OpenAPI 3.0.x.
    V3_0,
    /// OpenAPI 3.1.x.
    V3_1,
}

/// Reads the `openapi` field.
///
/// # Errors
/// When the field is missing, not a string, or names a version other than
/// 3.0.x or 3.1.x.
pub fn spec_version(doc: &Value) -> Result<SpecVersion> {
    let version = doc
        .get("openapi")
        .ok_or_else(|| {
            TranslateError::new("/openapi", "missing `openapi` version field (is this an OpenAPI 3 document?)")
        })?
        .as_str()
        .ok_or_else(|| TranslateError::new("/openapi", "`openapi` must be a string such as \"3.1.0\""))?;
    if version.starts_with("3.0.") {
        Ok(SpecVersion::V3_0)
    } else if version.starts_with("3.1.") {
        Ok(SpecVersion::V3_1)
    } else {
        Err(TranslateError::new(
            "/openapi",
            format!("unsupported OpenAPI version {version:?}; accepted: 3.0.x and 3.1.x"),
        ))
    }
}

/// Brings an OpenAPI 3.0.x or 3.1.x document to OpenAPI 3.0.3.
///
/// A 3.0 document is returned unchanged; a 3.1 document is rewritten by the
/// rules in the [module docs](self) and then checked by
/// [`verify_openapi_30`].
///
/// # Errors
/// A [`TranslateError`] naming the JSON pointer of the first construct that
/// cannot be translated faithfully.
///
/// # Example
/// ```
/// use serde_json::json;
/// let doc = json!({
///     "openapi": "3.1.0",
///     "info": {"title": "t", "version": "1"},
///     "paths": {},
///     "components": {"schemas": {"Name": {"type": ["string", "null"]}}}
/// });
/// let out = filevine_identity_codegen::translate::translate(doc).unwrap();
/// assert_eq!(out["openapi"], "3.0.3");
/// assert_eq!(out["components"]["schemas"]["Name"], json!({"type": "string", "nullable": true}));
/// ```
pub fn translate(mut doc: Value) -> Result<Value> {
    match spec_version(&doc)? {
        SpecVersion::V3_0 => return Ok(doc),
        SpecVersion::V3_1 => {}
    }
    let root = doc.as_object_mut().ok_or_else(|| TranslateError::new("", "an OpenAPI document must be an object"))?;
    translate_document_fields(root)?;
    walk_document(root, &mut Translator)?;
    verify_openapi_30(&doc)?;
    Ok(doc)
}

/// Checks that no OpenAPI 3.1 construct is left in a document that declares
/// 3.0: no type arrays, `const`, schema `examples`, numeric exclusive bounds,
/// `$ref` siblings, 3.1-only keywords or document fields.
///
/// [`translate`] runs this on its own output; it is public so a test (or a
/// maintainer) can run it on any document.
///
/// # Errors
/// A [`TranslateError`] naming the JSON pointer of the first leftover.
pub fn verify_openapi_30(doc: &Value) -> Result {
    if spec_version(doc)? != SpecVersion::V3_0 {
        return Err(TranslateError::new("/openapi", "document does not declare OpenAPI 3.0.x"));
    }
    let root = doc.as_object().ok_or_else(|| TranslateError::new("", "an OpenAPI document must be an object"))?;
    for field in ["webhooks", "jsonSchemaDialect"] {
        if root.contains_key(field) {
            return Err(TranslateError::new(&format!("/{field}"), "3.1-only document field left after translation"));
        }
    }
    if root.get("info").and_then(|info| info.get("summary")).is_some() {
        return Err(TranslateError::new("/info/summary", "3.1-only field left after translation"));
    }
    if root.get("info").and_then(|info| info.get("license")).and_then(|license| license.get("identifier")).is_some() {
        return Err(TranslateError::new("/info/license/identifier", "3.1-only field left after translation"));
    }
    if root.get("components").and_then(|c| c.get("pathItems")).is_some() {
        return Err(TranslateError::new("/components/pathItems", "3.1-only field left after translation"));
    }
    // The walker takes `&mut`; verification never writes, so walk a copy.
    let mut copy = root.clone();
    walk_document(&mut copy, &mut Verifier)
}

/// Document-level 3.1 fields (outside any schema).
fn translate_document_fields(root: &mut Map<String, Value>) -> Result {
    root.insert("openapi".to_owned(), Value::String(TRANSLATED_VERSION.to_owned()));
    // Webhooks are requests the *server* sends; a client never calls them.
    root.remove("webhooks");
    root.remove("jsonSchemaDialect");
    if let Some(info) = root.get_mut("info").and_then(Value::as_object_mut) {
        info.remove("summary");
        if let Some(license) = info.get_mut("license").and_then(Value::as_object_mut) {
            license.remove("identifier");
        }
    }
    // 3.1 makes `paths` optional; 3.0 requires it.
    root.entry("paths").or_insert_with(|| Value::Object(Map::new()));
    if let Some(components) = root.get_mut("components").and_then(Value::as_object_mut)
        && let Some(path_items) = components.remove("pathItems")
        && path_items.as_object().is_some_and(|m| !m.is_empty())
    {
        return Err(TranslateError::new(
            "/components/pathItems",
            "reusable path items are OpenAPI 3.1 only; inline them under `paths`",
        ));
    }
    Ok(())
}

struct Translator;
struct Verifier;

impl Visitor for Translator {
    fn schema(&mut self, pointer: &str, schema: &mut Value) -> Result {
        translate_schema(pointer, schema)
    }

    fn reference(&mut self, _pointer: &str, reference: &mut Map<String, Value>) -> Result {
        // 3.1 lets a Reference Object override the target's summary and
        // description; 3.0 ignores siblings of `$ref`. Documentation only.
        reference.remove("summary");
        reference.remove("description");
        Ok(())
    }
}

impl Visitor for Verifier {
    fn schema(&mut self, pointer: &str, schema: &mut Value) -> Result {
        verify_schema(pointer, schema)
    }

    fn reference(&mut self, pointer: &str, reference: &mut Map<String, Value>) -> Result {
        if let Some(key) = reference.keys().find(|k| *k == "summary" || *k == "description") {
            return Err(TranslateError::new(pointer, format!("`{key}` beside `$ref` is OpenAPI 3.1 only")));
        }
        Ok(())
    }
}

fn translate_schema(pointer: &str, value: &mut Value) -> Result {
    match value {
        // JSON Schema boolean schemas: `true` accepts anything, `false` nothing.
        Value::Bool(true) => {
            *value = Value::Object(Map::new());
            return Ok(());
        }
        Value::Bool(false) => {
            *value = serde_json::json!({ "not": {} });
            return Ok(());
        }
        Value::Object(_) => {}
        _ => return Err(TranslateError::new(pointer, "a schema must be an object or a boolean")),
    }
    let Value::Object(schema) = value else { return Ok(()) };

    if let Some(keyword) = UNTRANSLATABLE_KEYWORDS.iter().find(|k| schema.contains_key(**k)) {
        return Err(TranslateError::new(
            &child(pointer, keyword),
            format!("`{keyword}` (JSON Schema 2020-12) has no OpenAPI 3.0 equivalent; rewrite the schema without it"),
        ));
    }
    for keyword in REMOVED_KEYWORDS {
        schema.remove(*keyword);
    }
    translate_content_encoding(pointer, schema)?;
    translate_ref_siblings(schema);
    translate_type(pointer, schema)?;
    translate_const(pointer, schema)?;
    translate_examples(pointer, schema)?;
    translate_exclusive_bound(pointer, schema, "exclusiveMinimum", "minimum", |exclusive, inclusive| {
        exclusive >= inclusive
    })?;
    translate_exclusive_bound(pointer, schema, "exclusiveMaximum", "maximum", |exclusive, inclusive| {
        exclusive <= inclusive
    })?;
    Ok(())
}

/// `contentEncoding: base64` is 3.0's `format: byte`.
fn translate_content_encoding(pointer: &str, schema: &mut Map<String, Value>) -> Result {
    let Some(encoding) = schema.remove("contentEncoding") else { return Ok(()) };
    match encoding.as_str() {
        Some(e) if e.eq_ignore_ascii_case("base64") => {
            schema.entry("format").or_insert_with(|| Value::String("byte".to_owned()));
            Ok(())
        }
        _ => Err(TranslateError::new(
            &child(pointer, "contentEncoding"),
            format!("contentEncoding {encoding} has no OpenAPI 3.0 equivalent (only base64 → format: byte)"),
        )),
    }
}

/// `{$ref, …siblings}` → `{…siblings, allOf: [{$ref}]}`: in 3.0 the siblings
/// of `$ref` are ignored, in 3.1 they apply alongside the reference.
fn translate_ref_siblings(schema: &mut Map<String, Value>) {
    if !schema.contains_key("$ref") || schema.len() == 1 {
        return;
    }
    let Some(reference) = schema.remove("$ref") else { return };
    let ref_schema = Value::Object(Map::from_iter([("$ref".to_owned(), reference)]));
    match schema.get_mut("allOf") {
        Some(Value::Array(all_of)) => all_of.insert(0, ref_schema),
        _ => {
            schema.insert("allOf".to_owned(), Value::Array(vec![ref_schema]));
        }
    }
}

/// `type: [T, "null"]` → `type: T, nullable: true`.
fn translate_type(pointer: &str, schema: &mut Map<String, Value>) -> Result {
    let type_pointer = child(pointer, "type");
    match schema.get("type") {
        None => Ok(()),
        Some(Value::String(t)) if t == "null" => Err(TranslateError::new(
            &type_pointer,
            "`type: null` alone has no OpenAPI 3.0 equivalent; make the property optional instead",
        )),
        Some(Value::String(_)) => Ok(()),
        Some(Value::Array(types)) => {
            let mut nullable = false;
            let mut others: Vec<&str> = Vec::new();
            for t in types {
                match t.as_str() {
                    Some("null") => nullable = true,
                    Some(name) if !others.contains(&name) => others.push(name),
                    Some(_) => {}
                    None => return Err(TranslateError::new(&type_pointer, "type array entries must be strings")),
                }
            }
            let single = match others.as_slice() {
                [single] => Value::String((*single).to_owned()),
                [] => {
                    return Err(TranslateError::new(
                        &type_pointer,
                        "a type array with only `null` has no OpenAPI 3.0 equivalent",
                    ));
                }
                several => {
                    return Err(TranslateError::new(
                        &type_pointer,
                        format!(
                            "type array {several:?} names several non-null types; OpenAPI 3.0 has one type per schema, use `oneOf` with one schema per type"
                        ),
                    ));
                }
            };
            schema.insert("type".to_owned(), single);
            if nullable {
                schema.insert("nullable".to_owned(), Value::Bool(true));
            }
            Ok(())
        }
        Some(other) => {
            Err(TranslateError::new(&type_pointer, format!("`type` must be a string or an array, found {other}")))
        }
    }
}

/// `const: v` → `enum: [v]`. Any JSON value, including `false`, `0`, `""`
/// and `null`, is a constant.
fn translate_const(pointer: &str, schema: &mut Map<String, Value>) -> Result {
    let Some(constant) = schema.remove("const") else { return Ok(()) };
    if let Some(existing) = schema.get("enum") {
        let allowed = existing.as_array().is_some_and(|values| values.contains(&constant));
        if !allowed {
            return Err(TranslateError::new(
                &child(pointer, "const"),
                format!("`const: {constant}` is not among the schema's `enum` values, so no value is valid"),
            ));
        }
    }
    if constant.is_null() {
        schema.insert("nullable".to_owned(), Value::Bool(true));
    }
    schema.insert("enum".to_owned(), Value::Array(vec![constant]));
    Ok(())
}

/// Schema `examples: [a, …]` → `example: a` (3.0 has room for one).
fn translate_examples(pointer: &str, schema: &mut Map<String, Value>) -> Result {
    let Some(examples) = schema.remove("examples") else { return Ok(()) };
    let Value::Array(examples) = examples else {
        return Err(TranslateError::new(&child(pointer, "examples"), "schema `examples` must be an array"));
    };
    if !schema.contains_key("example")
        && let Some(first) = examples.into_iter().next()
    {
        schema.insert("example".to_owned(), first);
    }
    Ok(())
}

/// Numeric `exclusiveMinimum: n` → `minimum: n, exclusiveMinimum: true`
/// (and the same for maximum). When the schema has both an inclusive and an
/// exclusive bound, the stricter one wins, as it does in 3.1.
fn translate_exclusive_bound(
    pointer: &str,
    schema: &mut Map<String, Value>,
    exclusive_key: &str,
    inclusive_key: &str,
    exclusive_is_stricter: fn(f64, f64) -> bool,
) -> Result {
    let Some(exclusive) = schema.get(exclusive_key) else { return Ok(()) };
    let exclusive_pointer = child(pointer, exclusive_key);
    if exclusive.is_boolean() {
        return Err(TranslateError::new(
            &exclusive_pointer,
            format!("boolean `{exclusive_key}` is OpenAPI 3.0 syntax; in 3.1 it is the bound itself (a number)"),
        ));
    }
    let exclusive = exclusive.clone();
    let Some(exclusive_value) = exclusive.as_f64() else {
        return Err(TranslateError::new(&exclusive_pointer, format!("`{exclusive_key}` must be a number")));
    };
    let keep_exclusive = match schema.get(inclusive_key) {
        None => true,
        Some(inclusive) => {
            let inclusive = inclusive.as_f64().ok_or_else(|| {
                TranslateError::new(&child(pointer, inclusive_key), format!("`{inclusive_key}` must be a number"))
            })?;
            exclusive_is_stricter(exclusive_value, inclusive)
        }
    };
    if keep_exclusive {
        schema.insert(inclusive_key.to_owned(), exclusive);
        schema.insert(exclusive_key.to_owned(), Value::Bool(true));
    } else {
        schema.remove(exclusive_key);
    }
    Ok(())
}

fn verify_schema(pointer: &str, value: &Value) -> Result {
    let Value::Object(schema) = value else {
        return Err(TranslateError::new(pointer, "boolean schemas are OpenAPI 3.1 only"));
    };
    let leftover = UNTRANSLATABLE_KEYWORDS
        .iter()
        .chain(REMOVED_KEYWORDS)
        .chain(FORBIDDEN_AFTER_TRANSLATION)
        .find(|k| schema.contains_key(**k));
    if let Some(keyword) = leftover {
        return Err(TranslateError::new(
            &child(pointer, keyword),
            format!("3.1-only keyword `{keyword}` left after translation"),
        ));
    }
    if schema.contains_key("$ref") && schema.len() > 1 {
        return Err(TranslateError::new(pointer, "`$ref` with sibling keywords left after translation"));
    }
    match schema.get("type") {
        None => {}
        Some(Value::String(t)) if t != "null" => {}
        Some(_) => {
            return Err(TranslateError::new(
                &child(pointer, "type"),
                "3.1 type (array or `null`) left after translation",
            ));
        }
    }
    for key in ["exclusiveMinimum", "exclusiveMaximum"] {
        if schema.get(key).is_some_and(|v| !v.is_boolean()) {
            return Err(TranslateError::new(&child(pointer, key), format!("numeric `{key}` left after translation")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A minimal 3.1 document with one component schema.
    fn doc_with_schema(schema: Value) -> Value {
        json!({
            "openapi": "3.1.0",
            "info": {"title": "t", "version": "1"},
            "paths": {},
            "components": {"schemas": {"S": schema}}
        })
    }

    fn translated_schema(schema: Value) -> Value {
        let out = translate(doc_with_schema(schema)).expect("translates");
        out["components"]["schemas"]["S"].clone()
    }

    fn translate_error(schema: Value) -> TranslateError {
        translate(doc_with_schema(schema)).expect_err("must not translate")
    }

    #[test]
    fn version_becomes_3_0_3() {
        let out = translate(doc_with_schema(json!({"type": "string"}))).unwrap();
        assert_eq!(out["openapi"], "3.0.3");
    }

    #[test]
    fn openapi_3_0_passes_through_unchanged() {
        // Deliberately contains things the 3.1 rules would rewrite
        // (`examples` on a media type is valid 3.0 and must survive).
        let doc = json!({
            "openapi": "3.0.3",
            "info": {"title": "t", "version": "1", "summary": "kept as is"},
            "paths": {"/x": {"get": {"responses": {"200": {"description": "ok",
                "content": {"application/json": {
                    "schema": {"type": "string", "nullable": true},
                    "examples": {"one": {"value": "a"}}
                }}}}}}}
        });
        assert_eq!(translate(doc.clone()).unwrap(), doc);
    }

    #[test]
    fn unsupported_versions_are_rejected() {
        for version in [json!("2.0"), json!("3.2.0"), json!(3.1)] {
            let err = translate(json!({"openapi": version, "info": {}})).unwrap_err();
            assert_eq!(err.pointer, "/openapi");
        }
        let err = translate(json!({"swagger": "2.0"})).unwrap_err();
        assert!(err.reason.contains("missing `openapi`"), "{err}");
    }

    #[test]
    fn type_array_with_null_becomes_nullable() {
        assert_eq!(
            translated_schema(json!({"type": ["string", "null"], "format": "password"})),
            json!({"type": "string", "nullable": true, "format": "password"})
        );
        // Order does not matter, and a single-type array is just that type.
        assert_eq!(
            translated_schema(json!({"type": ["null", "integer"]})),
            json!({"type": "integer", "nullable": true})
        );
        assert_eq!(translated_schema(json!({"type": ["boolean"]})), json!({"type": "boolean"}));
    }

    #[test]
    fn type_arrays_without_a_3_0_form_are_errors() {
        let err = translate_error(json!({"type": ["string", "integer"]}));
        assert_eq!(err.pointer, "/components/schemas/S/type");
        assert!(err.reason.contains("several non-null types"), "{err}");
        let err = translate_error(json!({"properties": {"n": {"type": ["null"]}}}));
        assert_eq!(err.pointer, "/components/schemas/S/properties/n/type");
        let err = translate_error(json!({"type": "null"}));
        assert!(err.reason.contains("`type: null`"), "{err}");
    }

    #[test]
    fn const_becomes_a_one_value_enum_including_falsy_values() {
        for constant in [json!("x"), json!(false), json!(0), json!(""), json!([]), json!({})] {
            assert_eq!(translated_schema(json!({"const": constant})), json!({"enum": [constant]}), "const {constant}");
        }
        assert_eq!(translated_schema(json!({"const": null})), json!({"enum": [null], "nullable": true}));
        // A const that agrees with an existing enum narrows it.
        assert_eq!(translated_schema(json!({"enum": ["a", "b"], "const": "a"})), json!({"enum": ["a"]}));
        let err = translate_error(json!({"enum": ["a"], "const": "z"}));
        assert_eq!(err.pointer, "/components/schemas/S/const");
    }

    #[test]
    fn examples_becomes_example() {
        assert_eq!(
            translated_schema(json!({"type": "integer", "examples": [1200, 60]})),
            json!({"type": "integer", "example": 1200})
        );
        // An explicit `example` wins; an empty list adds nothing.
        assert_eq!(translated_schema(json!({"example": 1, "examples": [2]})), json!({"example": 1}));
        assert_eq!(translated_schema(json!({"examples": []})), json!({}));
        // A falsy first example is still an example.
        assert_eq!(translated_schema(json!({"examples": [false]})), json!({"example": false}));
        let err = translate_error(json!({"examples": {"a": 1}}));
        assert_eq!(err.pointer, "/components/schemas/S/examples");
    }

    #[test]
    fn numeric_exclusive_bounds_become_boolean_form() {
        assert_eq!(
            translated_schema(json!({"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 10})),
            json!({"type": "integer", "minimum": 0, "exclusiveMinimum": true, "maximum": 10, "exclusiveMaximum": true})
        );
        // Both bounds present: the stricter one wins.
        assert_eq!(
            translated_schema(json!({"minimum": 3, "exclusiveMinimum": 5})),
            json!({"minimum": 5, "exclusiveMinimum": true})
        );
        assert_eq!(translated_schema(json!({"minimum": 7, "exclusiveMinimum": 5})), json!({"minimum": 7}));
        assert_eq!(
            translated_schema(json!({"maximum": 9.5, "exclusiveMaximum": 9.5})),
            json!({"maximum": 9.5, "exclusiveMaximum": true})
        );
        let err = translate_error(json!({"exclusiveMinimum": true, "minimum": 1}));
        assert!(err.reason.contains("OpenAPI 3.0 syntax"), "{err}");
    }

    #[test]
    fn ref_with_siblings_becomes_all_of() {
        assert_eq!(
            translated_schema(json!({"$ref": "#/components/schemas/T", "description": "why", "nullable": true})),
            json!({"description": "why", "nullable": true, "allOf": [{"$ref": "#/components/schemas/T"}]})
        );
        // A bare $ref is untouched.
        assert_eq!(
            translated_schema(json!({"$ref": "#/components/schemas/T"})),
            json!({"$ref": "#/components/schemas/T"})
        );
        // An existing allOf keeps its members after the reference.
        assert_eq!(
            translated_schema(json!({"$ref": "#/a", "allOf": [{"$ref": "#/b"}]})),
            json!({"allOf": [{"$ref": "#/a"}, {"$ref": "#/b"}]})
        );
    }

    #[test]
    fn annotation_keywords_and_document_fields_are_removed() {
        let doc = json!({
            "openapi": "3.1.1",
            "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
            "info": {"title": "t", "version": "1", "summary": "s",
                     "license": {"name": "MIT", "identifier": "MIT"}},
            "webhooks": {"ping": {"post": {"responses": {"200": {"description": "ok"}}}}},
            "components": {"schemas": {"S": {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "$comment": "note", "type": "string", "contentMediaType": "text/plain"
            }}}
        });
        let out = translate(doc).unwrap();
        assert_eq!(
            out,
            json!({
                "openapi": "3.0.3",
                "info": {"title": "t", "version": "1", "license": {"name": "MIT"}},
                "paths": {},
                "components": {"schemas": {"S": {"type": "string"}}}
            })
        );
    }

    #[test]
    fn base64_content_encoding_becomes_format_byte() {
        assert_eq!(
            translated_schema(json!({"type": "string", "contentEncoding": "base64"})),
            json!({"type": "string", "format": "byte"})
        );
        let err = translate_error(json!({"type": "string", "contentEncoding": "quoted-printable"}));
        assert_eq!(err.pointer, "/components/schemas/S/contentEncoding");
    }

    #[test]
    fn boolean_schemas_become_objects() {
        assert_eq!(
            translated_schema(json!({"properties": {"any": true, "none": false}})),
            json!({"properties": {"any": {}, "none": {"not": {}}}})
        );
        // additionalProperties: bool is valid 3.0 and stays.
        assert_eq!(translated_schema(json!({"additionalProperties": false})), json!({"additionalProperties": false}));
    }

    #[test]
    fn untranslatable_keywords_are_errors_naming_the_pointer() {
        let err = translate_error(
            json!({"type": "array", "items": {"type": "object", "properties": {"p": {"prefixItems": [{}]}}}}),
        );
        assert_eq!(err.pointer, "/components/schemas/S/items/properties/p/prefixItems");
        assert!(err.to_string().starts_with("at /components/schemas/S/items/properties/p/prefixItems: "), "{err}");
        for keyword in UNTRANSLATABLE_KEYWORDS {
            let err = translate_error(json!({ *keyword: {} }));
            assert_eq!(err.pointer, format!("/components/schemas/S/{}", child("", keyword).trim_start_matches('/')));
        }
        let err =
            translate(json!({"openapi": "3.1.0", "info": {}, "components": {"pathItems": {"p": {}}}})).unwrap_err();
        assert_eq!(err.pointer, "/components/pathItems");
    }

    #[test]
    fn schemas_everywhere_in_the_document_are_translated() {
        let s = json!({"type": ["string", "null"]});
        let doc = json!({
            "openapi": "3.1.0",
            "info": {"title": "t", "version": "1"},
            "paths": {"/a/{id}": {
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": s}],
                "post": {
                    "parameters": [{"$ref": "#/components/parameters/P", "description": "override"}],
                    "requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {"x": s}}}}},
                    "responses": {"200": {"description": "ok",
                        "headers": {"X-Rate": {"schema": s}},
                        "content": {"application/json": {"schema": {"type": "array", "items": s}}}}},
                    "callbacks": {"cb": {"{$request.body#/url}": {"post": {"responses": {"200": {"description": "ok",
                        "content": {"text/plain": {"schema": s}}}}}}}}
                }
            }},
            "components": {
                "parameters": {"P": {"name": "q", "in": "query", "schema": s}},
                "responses": {"R": {"description": "r", "content": {"application/json": {"schema": {"additionalProperties": s}}}}},
                "requestBodies": {"B": {"content": {"application/json": {"schema": {"oneOf": [s, {"not": s}]}}}}},
                "headers": {"H": {"schema": s}}
            }
        });
        let out = translate(doc).unwrap();
        let text = out.to_string();
        assert!(!text.contains("[\"string\",\"null\"]"), "a type array survived: {text}");
        assert_eq!(text.matches("\"nullable\":true").count(), 10, "{text}");
        // The non-schema reference lost its 3.1 description override.
        assert_eq!(out["paths"]["/a/{id}"]["post"]["parameters"][0], json!({"$ref": "#/components/parameters/P"}));
    }

    #[test]
    fn json_pointer_tokens_are_escaped() {
        let doc = json!({
            "openapi": "3.1.0", "info": {},
            "paths": {"/a/b~c": {"get": {"responses": {"200": {"description": "ok",
                "content": {"application/json": {"schema": {"if": {}}}}}}}}}
        });
        let err = translate(doc).unwrap_err();
        assert_eq!(err.pointer, "/paths/~1a~1b~0c/get/responses/200/content/application~1json/schema/if");
    }

    #[test]
    fn verifier_finds_every_kind_of_leftover() {
        let cases = [
            (json!({"type": ["string", "null"]}), "/components/schemas/S/type"),
            (json!({"const": 1}), "/components/schemas/S/const"),
            (json!({"examples": [1]}), "/components/schemas/S/examples"),
            (json!({"exclusiveMinimum": 1}), "/components/schemas/S/exclusiveMinimum"),
            (json!({"$ref": "#/x", "description": "d"}), "/components/schemas/S"),
            (json!({"$comment": "c"}), "/components/schemas/S/$comment"),
            (json!({"properties": {"p": {"prefixItems": []}}}), "/components/schemas/S/properties/p/prefixItems"),
            (json!({"properties": {"p": true}}), "/components/schemas/S/properties/p"),
        ];
        for (schema, pointer) in cases {
            let mut doc = doc_with_schema(schema.clone());
            doc["openapi"] = json!("3.0.3");
            let err = verify_openapi_30(&doc).expect_err(&format!("{schema} must be reported"));
            assert_eq!(err.pointer, pointer, "{schema}");
        }
        let mut doc = doc_with_schema(json!({"type": "string"}));
        doc["openapi"] = json!("3.0.3");
        doc["webhooks"] = json!({});
        assert_eq!(verify_openapi_30(&doc).unwrap_err().pointer, "/webhooks");
        // A clean 3.0 document passes.
        doc.as_object_mut().unwrap().remove("webhooks");
        verify_openapi_30(&doc).unwrap();
        // And a document still declaring 3.1 does not.
        assert_eq!(verify_openapi_30(&doc_with_schema(json!({}))).unwrap_err().pointer, "/openapi");
    }
}
