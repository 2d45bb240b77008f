//! Swagger 2.0 → OpenAPI 3.0.3, for the gateway command: Filevine publishes
//! its gateway's description as Swagger 2.0, and progenitor reads 3.0.
//!
//! What it converts (the subset a REST description uses): `host`,
//! `basePath` and `schemes` → `servers`; `definitions`, `parameters`,
//! `responses` and `securityDefinitions` → `components`; `$ref`s to them
//! rewritten; a non-body parameter's `type`/`format`/`items`/`enum`/… →
//! its `schema`, `collectionFormat` → `style`/`explode`; an `in: body`
//! parameter → `requestBody`, `in: formData` ones → a form `requestBody`;
//! a response's `schema` → `content` for each media type it `produces`;
//! `x-nullable` → `nullable`, `type: file` → binary string. Anything else
//! it cannot place is an error naming it, never dropped.

use serde_json::{Map, Value, json};

/// Why a Swagger 2.0 document could not be converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unconvertible {
    /// Where (a JSON pointer into the Swagger document).
    pub pointer: String,
    /// What it is.
    pub reason: String,
}

/// Keys of a non-body parameter that describe its value: they move into
/// its `schema`.
const SCHEMA_KEYS: &[&str] = &[
    "type",
    "format",
    "items",
    "enum",
    "default",
    "maximum",
    "minimum",
    "exclusiveMaximum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "multipleOf",
];

/// Converts a Swagger 2.0 document.
///
/// # Errors
/// The first construct it cannot place.
pub fn convert(swagger: &Value) -> Result<Value, Unconvertible> {
    // OpenAPI 3 has no tab-separated style.
    if let Some(pointer) = find(swagger, "collectionFormat", "tsv", String::new()) {
        return Err(Unconvertible { pointer, reason: "`collectionFormat: tsv` (OpenAPI 3 has no such style)".into() });
    }
    let document = rewrite_refs(swagger);
    let consumes = media_types(document.get("consumes"));
    let produces = media_types(document.get("produces"));
    let mut out = Map::new();
    out.insert("openapi".into(), "3.0.3".into());
    for key in ["info", "tags", "security", "externalDocs"] {
        if let Some(value) = document.get(key) {
            out.insert(key.into(), value.clone());
        }
    }
    if let Some(host) = document.get("host").and_then(Value::as_str) {
        let scheme = document.pointer("/schemes/0").and_then(Value::as_str).unwrap_or("https");
        let base = document.get("basePath").and_then(Value::as_str).unwrap_or("");
        out.insert("servers".into(), json!([{ "url": format!("{scheme}://{host}{}", base.trim_end_matches('/')) }]));
    }
    let mut components = Map::new();
    if let Some(definitions) = document.get("definitions") {
        components.insert("schemas".into(), schemas(definitions));
    }
    if let Some(parameters) = document.get("parameters").and_then(Value::as_object) {
        let mut converted = Map::new();
        for (name, parameter) in parameters {
            if matches!(parameter.get("in").and_then(Value::as_str), Some("body" | "formData")) {
                return Err(Unconvertible {
                    pointer: format!("/parameters/{name}"),
                    reason: "a shared body or form parameter (convert it with `npx swagger2openapi`)".into(),
                });
            }
            converted.insert(name.clone(), parameter_3(parameter));
        }
        components.insert("parameters".into(), Value::Object(converted));
    }
    if let Some(responses) = document.get("responses").and_then(Value::as_object) {
        let converted = responses.iter().map(|(name, r)| (name.clone(), response_3(r, &produces))).collect();
        components.insert("responses".into(), Value::Object(converted));
    }
    if let Some(schemes) = document.get("securityDefinitions").and_then(Value::as_object) {
        let mut converted = Map::new();
        for (name, scheme) in schemes {
            converted.insert(name.clone(), security_scheme(scheme, &format!("/securityDefinitions/{name}"))?);
        }
        components.insert("securitySchemes".into(), Value::Object(converted));
    }
    let mut paths = Map::new();
    for (path, item) in document.get("paths").and_then(Value::as_object).into_iter().flatten() {
        let at = format!("/paths/{}", path.replace('~', "~0").replace('/', "~1"));
        paths.insert(path.clone(), path_item(item, &consumes, &produces, &at)?);
    }
    out.insert("paths".into(), Value::Object(paths));
    if !components.is_empty() {
        out.insert("components".into(), Value::Object(components));
    }
    Ok(Value::Object(out))
}

/// The pointer of the first object whose `key` is `value`.
fn find(document: &Value, key: &str, value: &str, at: String) -> Option<String> {
    match document {
        Value::Object(map) => {
            if map.get(key).and_then(Value::as_str) == Some(value) {
                return Some(if at.is_empty() { "/".to_owned() } else { at });
            }
            map.iter()
                .find_map(|(k, v)| find(v, key, value, format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"))))
        }
        Value::Array(items) => items.iter().enumerate().find_map(|(i, v)| find(v, key, value, format!("{at}/{i}"))),
        _ => None,
    }
}

/// `#/definitions/…` and the other 2.0 locations → their `components` places.
fn rewrite_refs(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| match (key.as_str(), value.as_str()) {
                    ("$ref", Some(reference)) => (key.clone(), Value::String(component_ref(reference))),
                    _ => (key.clone(), rewrite_refs(value)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(rewrite_refs).collect()),
        other => other.clone(),
    }
}

fn component_ref(reference: &str) -> String {
    for (from, to) in [
        ("#/definitions/", "#/components/schemas/"),
        ("#/parameters/", "#/components/parameters/"),
        ("#/responses/", "#/components/responses/"),
    ] {
        if let Some(name) = reference.strip_prefix(from) {
            return format!("{to}{name}");
        }
    }
    reference.to_owned()
}

fn media_types(list: Option<&Value>) -> Vec<String> {
    let types: Vec<String> =
        list.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect();
    if types.is_empty() { vec!["application/json".to_owned()] } else { types }
}

/// A 2.0 schema as 3.0: `x-nullable`, `type: file`, a string discriminator.
fn schema(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, value) in map {
                match key.as_str() {
                    "x-nullable" => drop(out.insert("nullable".into(), value.clone())),
                    "discriminator" if value.is_string() => {
                        out.insert("discriminator".into(), json!({ "propertyName": value }));
                    }
                    "type" if value == "file" => {
                        out.insert("type".into(), "string".into());
                        out.insert("format".into(), "binary".into());
                    }
                    "properties" | "definitions" => {
                        let converted =
                            value.as_object().into_iter().flatten().map(|(k, v)| (k.clone(), schema(v))).collect();
                        out.insert(key.clone(), Value::Object(converted));
                    }
                    "items" | "additionalProperties" | "not" => drop(out.insert(key.clone(), schema(value))),
                    "allOf" | "anyOf" | "oneOf" => {
                        let converted = value.as_array().into_iter().flatten().map(schema).collect();
                        out.insert(key.clone(), Value::Array(converted));
                    }
                    _ => drop(out.insert(key.clone(), value.clone())),
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn schemas(definitions: &Value) -> Value {
    Value::Object(definitions.as_object().into_iter().flatten().map(|(k, v)| (k.clone(), schema(v))).collect())
}

/// A non-body parameter: its value keys into `schema`, `collectionFormat`
/// into `style`/`explode`.
fn parameter_3(parameter: &Value) -> Value {
    let Some(map) = parameter.as_object() else { return parameter.clone() };
    if map.contains_key("$ref") {
        return parameter.clone();
    }
    let mut out = Map::new();
    let mut value_schema = Map::new();
    for (key, value) in map {
        if SCHEMA_KEYS.contains(&key.as_str()) {
            value_schema.insert(key.clone(), if key == "items" { schema(value) } else { value.clone() });
        } else if key != "collectionFormat" {
            out.insert(key.clone(), value.clone());
        }
    }
    if !value_schema.is_empty() {
        out.insert("schema".into(), schema(&Value::Object(value_schema)));
    }
    let location = map.get("in").and_then(Value::as_str).unwrap_or_default();
    match map.get("collectionFormat").and_then(Value::as_str) {
        Some("multi") => {
            out.insert("style".into(), "form".into());
            out.insert("explode".into(), true.into());
        }
        Some("csv") | None if map.get("type").and_then(Value::as_str) == Some("array") => {
            let style = if location == "query" { "form" } else { "simple" };
            out.insert("style".into(), style.into());
            out.insert("explode".into(), false.into());
        }
        Some("ssv") => drop(out.insert("style".into(), "spaceDelimited".into())),
        Some("pipes") => drop(out.insert("style".into(), "pipeDelimited".into())),
        _ => {}
    }
    Value::Object(out)
}

fn response_3(response: &Value, produces: &[String]) -> Value {
    let Some(map) = response.as_object() else { return response.clone() };
    if map.contains_key("$ref") {
        return response.clone();
    }
    let mut out = Map::new();
    out.insert("description".into(), map.get("description").cloned().unwrap_or_else(|| "".into()));
    if let Some(body) = map.get("schema") {
        let content: Map<String, Value> =
            produces.iter().map(|media| (media.clone(), json!({ "schema": schema(body) }))).collect();
        out.insert("content".into(), Value::Object(content));
    }
    if let Some(headers) = map.get("headers").and_then(Value::as_object) {
        let converted = headers
            .iter()
            .map(|(name, header)| {
                let mut header_3 = parameter_3(header);
                if let Some(h) = header_3.as_object_mut() {
                    h.remove("in");
                    h.remove("name");
                }
                (name.clone(), header_3)
            })
            .collect();
        out.insert("headers".into(), Value::Object(converted));
    }
    Value::Object(out)
}

fn security_scheme(scheme: &Value, at: &str) -> Result<Value, Unconvertible> {
    match scheme.get("type").and_then(Value::as_str) {
        Some("basic") => Ok(json!({ "type": "http", "scheme": "basic", "description": scheme.get("description") })),
        Some("apiKey") => Ok(scheme.clone()),
        Some("oauth2") => {
            let flow = match scheme.get("flow").and_then(Value::as_str) {
                Some("implicit") => "implicit",
                Some("password") => "password",
                Some("application") => "clientCredentials",
                Some("accessCode") => "authorizationCode",
                other => {
                    return Err(Unconvertible { pointer: at.to_owned(), reason: format!("an oauth2 flow {other:?}") });
                }
            };
            let mut details = Map::new();
            for (from, to) in [("authorizationUrl", "authorizationUrl"), ("tokenUrl", "tokenUrl"), ("scopes", "scopes")]
            {
                if let Some(value) = scheme.get(from) {
                    details.insert(to.into(), value.clone());
                }
            }
            Ok(json!({ "type": "oauth2", "flows": { flow: details } }))
        }
        other => Err(Unconvertible { pointer: at.to_owned(), reason: format!("a security scheme of type {other:?}") }),
    }
}

fn path_item(item: &Value, consumes: &[String], produces: &[String], at: &str) -> Result<Value, Unconvertible> {
    let mut out = Map::new();
    for (key, value) in item.as_object().into_iter().flatten() {
        match key.as_str() {
            "parameters" => {
                let (parameters, body) = split_parameters(value, consumes, &format!("{at}/parameters"))?;
                if body.is_some() {
                    return Err(Unconvertible {
                        pointer: format!("{at}/parameters"),
                        reason: "a body parameter on the path item (put it on each operation)".into(),
                    });
                }
                out.insert(key.clone(), parameters);
            }
            "get" | "put" | "post" | "delete" | "options" | "head" | "patch" => {
                out.insert(key.clone(), operation(value, consumes, produces, &format!("{at}/{key}"))?);
            }
            _ => drop(out.insert(key.clone(), value.clone())),
        }
    }
    Ok(Value::Object(out))
}

fn operation(op: &Value, consumes: &[String], produces: &[String], at: &str) -> Result<Value, Unconvertible> {
    let consumes = op.get("consumes").map_or_else(|| consumes.to_vec(), |c| media_types(Some(c)));
    let produces = op.get("produces").map_or_else(|| produces.to_vec(), |p| media_types(Some(p)));
    let mut out = Map::new();
    for (key, value) in op.as_object().into_iter().flatten() {
        match key.as_str() {
            "consumes" | "produces" | "schemes" => {}
            "parameters" => {
                let (parameters, body) = split_parameters(value, &consumes, &format!("{at}/parameters"))?;
                out.insert(key.clone(), parameters);
                if let Some(body) = body {
                    out.insert("requestBody".into(), body);
                }
            }
            "responses" => {
                let converted = value
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(code, response)| (code.clone(), response_3(response, &produces)))
                    .collect();
                out.insert(key.clone(), Value::Object(converted));
            }
            _ => drop(out.insert(key.clone(), value.clone())),
        }
    }
    Ok(Value::Object(out))
}

/// The non-body parameters, converted, and the request body the body or
/// form parameters make.
fn split_parameters(list: &Value, consumes: &[String], at: &str) -> Result<(Value, Option<Value>), Unconvertible> {
    let mut parameters = Vec::new();
    let mut body = None;
    let mut form = Map::new();
    let mut form_required = Vec::new();
    for (index, parameter) in list.as_array().into_iter().flatten().enumerate() {
        match parameter.get("in").and_then(Value::as_str) {
            Some("body") => {
                let schema = parameter.get("schema").map(schema).ok_or_else(|| Unconvertible {
                    pointer: format!("{at}/{index}"),
                    reason: "a body parameter without a schema".into(),
                })?;
                let content: Map<String, Value> =
                    consumes.iter().map(|media| (media.clone(), json!({ "schema": schema }))).collect();
                let required = parameter.get("required").and_then(Value::as_bool).unwrap_or(false);
                let mut request = json!({ "required": required, "content": content });
                if let Some(description) = parameter.get("description") {
                    request["description"] = description.clone();
                }
                body = Some(request);
            }
            Some("formData") => {
                let name = parameter.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
                if parameter.get("required").and_then(Value::as_bool) == Some(true) {
                    form_required.push(Value::String(name.clone()));
                }
                let converted = parameter_3(parameter);
                form.insert(name, converted.get("schema").cloned().unwrap_or_else(|| json!({})));
            }
            _ => parameters.push(parameter_3(parameter)),
        }
    }
    if !form.is_empty() {
        let multipart = form.values().any(|s| s.get("format").and_then(Value::as_str) == Some("binary"))
            || consumes.iter().any(|c| c == "multipart/form-data");
        let media = if multipart { "multipart/form-data" } else { "application/x-www-form-urlencoded" };
        let schema = json!({ "type": "object", "properties": form, "required": form_required });
        body = Some(json!({ "required": true, "content": { media: { "schema": schema } } }));
    }
    Ok((Value::Array(parameters), body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gateway_shaped_swagger_document_becomes_openapi_3() {
        let swagger = json!({
            "swagger": "2.0",
            "info": {"title": "Gateway", "version": "2.0.0"},
            "host": "api.example.invalid",
            "basePath": "/",
            "schemes": ["https"],
            "produces": ["application/json"],
            "securityDefinitions": {"Bearer": {"type": "apiKey", "name": "Authorization", "in": "header"}},
            "security": [{"Bearer": []}],
            "paths": {"/fv-app/v2/Projects/{projectId}/Tags": {"post": {
                "operationId": "tagProject",
                "parameters": [
                    {"name": "projectId", "in": "path", "required": true, "type": "integer", "format": "int64"},
                    {"name": "x-fv-orgid", "in": "header", "required": true, "type": "integer"},
                    {"name": "ids", "in": "query", "type": "array", "items": {"type": "string", "format": "uuid"}, "collectionFormat": "multi"},
                    {"name": "body", "in": "body", "required": true, "schema": {"$ref": "#/definitions/Tag"}}
                ],
                "responses": {"200": {"description": "OK", "schema": {"$ref": "#/definitions/Tag"}}, "204": {"description": "none"}}
            }}},
            "definitions": {"Tag": {"type": "object", "properties": {"name": {"type": "string", "x-nullable": true}}}}
        });
        let openapi = convert(&swagger).unwrap();
        assert_eq!(openapi["openapi"], "3.0.3");
        assert_eq!(openapi["servers"][0]["url"], "https://api.example.invalid");
        let op = &openapi["paths"]["/fv-app/v2/Projects/{projectId}/Tags"]["post"];
        assert_eq!(op["parameters"][0]["schema"], json!({"type": "integer", "format": "int64"}));
        assert_eq!(
            (op["parameters"][2]["style"].as_str(), op["parameters"][2]["explode"].as_bool()),
            (Some("form"), Some(true))
        );
        assert_eq!(op["requestBody"]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Tag");
        assert_eq!(op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Tag");
        assert!(op["responses"]["204"].get("content").is_none());
        assert_eq!(openapi["components"]["schemas"]["Tag"]["properties"]["name"]["nullable"], true);
        assert_eq!(openapi["components"]["securitySchemes"]["Bearer"]["type"], "apiKey");
    }

    #[test]
    fn what_cannot_be_placed_is_named() {
        let swagger = json!({"swagger": "2.0", "info": {"title": "t", "version": "1"}, "paths": {},
            "securityDefinitions": {"odd": {"type": "mutualTLS"}}});
        let err = convert(&swagger).unwrap_err();
        assert_eq!(err.pointer, "/securityDefinitions/odd");
        let swagger = json!({"swagger": "2.0", "info": {"title": "t", "version": "1"},
            "paths": {"/a": {"post": {"parameters": [{"name": "b", "in": "body"}], "responses": {}}}}});
        let err = convert(&swagger).unwrap_err();
        assert_eq!(
            (err.pointer.as_str(), err.reason.as_str()),
            ("/paths/~1a/post/parameters/0", "a body parameter without a schema")
        );
        let swagger = json!({"swagger": "2.0", "info": {"title": "t", "version": "1"}, "paths": {"/a": {"get": {
            "parameters": [{"name": "b", "in": "query", "type": "array", "items": {"type": "string"}, "collectionFormat": "tsv"}],
            "responses": {}}}}});
        assert_eq!(convert(&swagger).unwrap_err().pointer, "/paths/~1a/get/parameters/0");
    }
}
