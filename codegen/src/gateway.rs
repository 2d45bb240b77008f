//! What a description of the Filevine API gateway needs before progenitor
//! sees it, and what the generator says it did (never a silent change):
//!
//! - an `apiKey` scheme in the `Authorization` header is the bearer scheme
//!   (its tokens are sent as `Bearer <token>`): it becomes `http`/`bearer`;
//! - the `x-fv-orgid` and `x-fv-userid` header parameters are the client's
//!   user (a `FilevineUser`), sent on every call by the SDK's hooks: they
//!   leave the methods' arguments;
//! - a path template that spells a parameter in another case than its
//!   declaration (`{projectID}` for `projectId`, as the gateway's own
//!   description does) is written with the declared spelling;
//! - an operation that answers both 204 (no body) and 207 (a body) gets one
//!   result type: the 207's body, optional. The 204 leaves the description
//!   (progenitor takes one body shape per operation) and the generated
//!   crate's hook reads a 204 of such an operation as `null`, so it is
//!   `None` ([`Adjustment::no_content_as_null`]).

use serde_json::{Map, Value};

/// The user headers the client's `FilevineUser` supplies.
pub const USER_HEADERS: [&str; 2] = ["x-fv-orgid", "x-fv-userid"];

/// One change the gateway preparation made, for the generated crate's
/// README and the command's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjustment {
    /// Where, as a JSON pointer into the description.
    pub pointer: String,
    /// What was done, in words.
    pub what: String,
    /// The generated method (progenitor's name for the operation) whose 204
    /// answer is read as `null`, for a 204/207 operation.
    pub no_content_as_null: Option<String>,
    /// A path the preparation renamed, `(from, to)`: the lint finds its
    /// lines under the old spelling.
    pub renamed_path: Option<(String, String)>,
}

/// Prepares a gateway description (OpenAPI 3.x, as loaded) in place; the
/// changes it made.
pub fn prepare(document: &mut Value) -> Vec<Adjustment> {
    let mut done = Vec::new();
    bearer_schemes(document, &mut done);
    let parameters = document.pointer("/components/parameters").cloned().unwrap_or(Value::Null);
    template_case(document, &parameters, &mut done);
    if let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else { continue };
            let base = format!("/paths/{}", escape(path));
            drop_user_headers(item, &parameters, &base, &mut done);
            for (method, operation) in item.iter_mut() {
                if !is_method(method) {
                    continue;
                }
                let Some(operation) = operation.as_object_mut() else { continue };
                let at = format!("{base}/{method}");
                drop_user_headers(operation, &parameters, &at, &mut done);
                multi_status(operation, &at, &mut done);
            }
        }
    }
    done
}

fn is_method(key: &str) -> bool {
    matches!(key, "get" | "put" | "post" | "delete" | "options" | "head" | "patch" | "trace")
}

/// RFC 6901 escaping of one pointer segment.
fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Path templates spelled in another case than their declared parameters
/// are written with the declared spelling.
fn template_case(document: &mut Value, components: &Value, done: &mut Vec<Adjustment>) {
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else { return };
    let mut renamed = Vec::new();
    for (path, item) in paths.iter() {
        let mut declared = Vec::new();
        let mut collect = |list: Option<&Value>| {
            for parameter in list.and_then(Value::as_array).into_iter().flatten() {
                let resolved = resolve(parameter, components);
                if let Some(resolved) = resolved.filter(|p| p.get("in").and_then(Value::as_str) == Some("path"))
                    && let Some(name) = resolved.get("name").and_then(Value::as_str)
                {
                    declared.push(name.to_owned());
                }
            }
        };
        collect(item.get("parameters"));
        for (method, operation) in item.as_object().into_iter().flatten() {
            if is_method(method) {
                collect(operation.get("parameters"));
            }
        }
        let mut fixed = path.clone();
        for segment in path.split('{').skip(1).filter_map(|s| s.split('}').next()) {
            if declared.iter().any(|d| d == segment) {
                continue;
            }
            if let Some(spelled) = declared.iter().find(|d| d.eq_ignore_ascii_case(segment)) {
                fixed = fixed.replace(&format!("{{{segment}}}"), &format!("{{{spelled}}}"));
            }
        }
        if fixed != *path {
            renamed.push((path.clone(), fixed));
        }
    }
    for (old, new) in renamed {
        if let Some(item) = paths.remove(&old) {
            done.push(Adjustment {
                pointer: format!("/paths/{}", escape(&old)),
                what: format!("the path template is written `{new}`, as its parameters are declared"),
                no_content_as_null: None,
                renamed_path: Some((old.clone(), new.clone())),
            });
            paths.insert(new, item);
        }
    }
}

/// A parameter, or the one of `components/parameters` its `$ref` names
/// (`None` for a reference elsewhere, or to nothing).
fn resolve(parameter: &Value, components: &Value) -> Option<Value> {
    match parameter.get("$ref").and_then(Value::as_str) {
        Some(reference) => components.get(reference.strip_prefix("#/components/parameters/")?).cloned(),
        None => Some(parameter.clone()),
    }
}

/// `apiKey` in the `Authorization` header → `http` / `bearer`.
fn bearer_schemes(document: &mut Value, done: &mut Vec<Adjustment>) {
    let Some(schemes) = document.pointer_mut("/components/securitySchemes").and_then(Value::as_object_mut) else {
        return;
    };
    for (name, scheme) in schemes.iter_mut() {
        let is_api_key = scheme.get("type").and_then(Value::as_str) == Some("apiKey");
        let in_header = scheme.get("in").and_then(Value::as_str) == Some("header");
        let authorization =
            scheme.get("name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case("authorization"));
        if is_api_key && in_header && authorization {
            let mut bearer = Map::new();
            bearer.insert("type".into(), "http".into());
            bearer.insert("scheme".into(), "bearer".into());
            if let Some(description) = scheme.get("description") {
                bearer.insert("description".into(), description.clone());
            }
            *scheme = Value::Object(bearer);
            done.push(Adjustment {
                pointer: format!("/components/securitySchemes/{}", escape(name)),
                what: "an `apiKey` in the `Authorization` header: the bearer scheme (the SDK sends `Bearer <token>`, or a DPoP-bound token with its proof)".into(),
                no_content_as_null: None,
                renamed_path: None,
            });
        }
    }
}

/// Removes the user header parameters of `owner` (an operation or a path
/// item), directly or through a `$ref` to `components/parameters`.
fn drop_user_headers(owner: &mut Map<String, Value>, components: &Value, at: &str, done: &mut Vec<Adjustment>) {
    let Some(list) = owner.get_mut("parameters").and_then(Value::as_array_mut) else { return };
    let before = list.len();
    let mut dropped = Vec::new();
    list.retain(|parameter| {
        let Some(resolved) = resolve(parameter, components) else { return true };
        let header = resolved.get("in").and_then(Value::as_str) == Some("header");
        let name = resolved.get("name").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
        let user = header && USER_HEADERS.contains(&name.as_str());
        if user {
            dropped.push(name);
        }
        !user
    });
    if list.len() != before {
        done.push(Adjustment {
            pointer: format!("{at}/parameters"),
            what: format!(
                "{}: from the client's `FilevineUser` (`with_user`), not an argument",
                dropped.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(" and ")
            ),
            no_content_as_null: None,
            renamed_path: None,
        });
    }
}

/// 204 and 207 with a body: one result type, the 207's body made nullable;
/// the 204 leaves the description and the hook reads it as `null`.
fn multi_status(operation: &mut Map<String, Value>, at: &str, done: &mut Vec<Adjustment>) {
    let method = operation.get("operationId").and_then(Value::as_str).map(heck::ToSnakeCase::to_snake_case);
    let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else { return };
    let (Some(no_content), Some(multi)) = (responses.get("204"), responses.get("207")) else { return };
    if no_content.get("content").is_some() || multi.get("content").is_none() {
        return;
    }
    let Some(method) = method else { return };
    responses.remove("204");
    let Some(content) = responses.get_mut("207").and_then(|r| r.get_mut("content")).and_then(Value::as_object_mut)
    else {
        return;
    };
    for media in content.values_mut() {
        if let Some(schema) = media.get_mut("schema") {
            let inner = schema.take();
            *schema = if inner.get("$ref").is_some() {
                serde_json::json!({ "allOf": [inner], "nullable": true })
            } else {
                let mut inline = inner;
                if let Some(object) = inline.as_object_mut() {
                    object.insert("nullable".into(), true.into());
                }
                inline
            };
        }
    }
    done.push(Adjustment {
        pointer: format!("{at}/responses"),
        what: format!(
            "204 (no body) and 207 (a body): one result, `Option` of the 207's body (`{method}` reads a 204 as `None`)"
        ),
        no_content_as_null: Some(method),
        renamed_path: None,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_in_another_case_takes_the_declared_spelling() {
        let mut document = serde_json::json!({"paths": {
            "/fv-app/v2/Projects/{projectID}/Notes/{noteId}": {
                "parameters": [{"name": "projectId", "in": "path", "required": true, "schema": {"type": "integer"}}],
                "get": {"parameters": [{"name": "noteId", "in": "path", "required": true, "schema": {"type": "string"}}],
                        "responses": {"200": {"description": "OK"}}}
            },
            "/fv-app/v2/Orphans/{thingId}": {"get": {"responses": {"200": {"description": "OK"}}}}
        }});
        let done = prepare(&mut document);
        let paths = document["paths"].as_object().unwrap();
        assert!(paths.contains_key("/fv-app/v2/Projects/{projectId}/Notes/{noteId}"), "{paths:?}");
        assert!(paths.contains_key("/fv-app/v2/Orphans/{thingId}"), "an undeclared one is the lint's to report");
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].pointer, "/paths/~1fv-app~1v2~1Projects~1{projectID}~1Notes~1{noteId}");
    }

    #[test]
    fn bearer_user_headers_and_multi_status_are_prepared_and_said() {
        let mut document = serde_json::json!({
            "openapi": "3.0.3",
            "components": {
                "securitySchemes": {"Bearer": {"type": "apiKey", "in": "header", "name": "Authorization"}},
                "parameters": {"org": {"name": "x-fv-orgid", "in": "header", "required": true, "schema": {"type": "integer"}}}
            },
            "paths": {"/fv-app/v2/Tags/bulk": {"post": {
                "operationId": "tagItemsBulk",
                "parameters": [
                    {"$ref": "#/components/parameters/org"},
                    {"name": "x-fv-userid", "in": "header", "required": true, "schema": {"type": "integer"}},
                    {"name": "dryRun", "in": "query", "schema": {"type": "boolean"}}
                ],
                "responses": {
                    "204": {"description": "all applied"},
                    "207": {"description": "some failed", "content": {"application/json": {"schema": {"type": "array", "items": {"type": "string"}}}}}
                }
            }}}
        });
        let done = prepare(&mut document);
        assert_eq!(document["components"]["securitySchemes"]["Bearer"]["scheme"], "bearer");
        let parameters = document["paths"]["/fv-app/v2/Tags/bulk"]["post"]["parameters"].as_array().unwrap();
        assert_eq!(parameters.len(), 1, "only dryRun is left");
        let responses = &document["paths"]["/fv-app/v2/Tags/bulk"]["post"]["responses"];
        assert!(responses.get("204").is_none(), "read as null by the hook");
        assert_eq!(responses["207"]["content"]["application/json"]["schema"]["nullable"], true);
        assert_eq!(done[2].no_content_as_null.as_deref(), Some("tag_items_bulk"));
        let pointers: Vec<&str> = done.iter().map(|d| d.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/components/securitySchemes/Bearer",
                "/paths/~1fv-app~1v2~1Tags~1bulk/post/parameters",
                "/paths/~1fv-app~1v2~1Tags~1bulk/post/responses"
            ]
        );
        assert!(done[1].what.contains("`x-fv-orgid` and `x-fv-userid`"), "{}", done[1].what);
    }
}
