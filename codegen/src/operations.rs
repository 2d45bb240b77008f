//! The `operations` module of the generated crate: one constant per
//! operation with its method, path and security requirements.
//!
//! progenitor reads `security` and `securitySchemes` and then ignores them:
//! a generated method sends no credentials. The hand-written hooks of the
//! generated crate (`filevine-identity/src/hooks.rs`) apply them instead,
//! per operation, from this table: the bearer token only to an operation
//! that asks for it, Basic client credentials (or a client assertion) only
//! to one that accepts them, a DPoP proof to one marked `x-dpop-proof` or
//! secured with the `DPoP` scheme. The table also lets a client point an operation at a URL from a
//! discovery document whose path differs from the spec's.

use heck::ToSnakeCase;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use serde_json::{Map, Value};

use crate::error::Error;

/// HTTP methods an OpenAPI path item can hold, in the spec's order.
const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// The Rust names of the security scheme kinds the hooks can apply.
enum Scheme {
    Bearer,
    Basic,
    Dpop,
}

impl Scheme {
    fn tokens(&self) -> TokenStream {
        match self {
            Scheme::Bearer => quote! { crate::Scheme::Bearer },
            Scheme::Basic => quote! { crate::Scheme::Basic },
            Scheme::Dpop => quote! { crate::Scheme::Dpop },
        }
    }
}

/// progenitor's method name for an operation id (its `sanitize` with snake
/// case), which is also the `operation_id` its hooks receive.
pub(crate) fn method_name(operation_id: &str) -> String {
    let cleaned = operation_id.replace('\'', "").replace(|c: char| !(c.is_alphanumeric() || c == '_'), "-");
    cleaned.to_snake_case()
}

/// Emits `pub mod operations` for the (translated) document.
pub(crate) fn operations_module(label: &str, doc: &Value) -> Result<TokenStream, Error> {
    let unsupported = |pointer: String, reason: String| Error::Unsupported { path: label.to_owned(), pointer, reason };
    let schemes = security_schemes(doc, &unsupported)?;
    let default_security = doc.get("security");
    let empty = Map::new();
    let paths = doc.get("paths").and_then(Value::as_object).unwrap_or(&empty);
    let mut constants = Vec::new();
    let mut all = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            let Some(operation) = item.get(*method) else { continue };
            let pointer = format!("/paths/{}/{method}", path.replace('~', "~0").replace('/', "~1"));
            let Some(id) = operation.get("operationId").and_then(Value::as_str) else {
                return Err(unsupported(pointer, "every operation needs an `operationId`".into()));
            };
            let security = match operation.get("security").or(default_security) {
                None => Vec::new(),
                Some(Value::Array(alternatives)) => alternatives
                    .iter()
                    .enumerate()
                    .map(|(index, alternative)| {
                        requirement(&schemes, alternative, &format!("{pointer}/security/{index}"))
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|(pointer, reason)| unsupported(pointer, reason))?,
                Some(_) => {
                    return Err(unsupported(format!("{pointer}/security"), "`security` must be an array".into()));
                }
            };
            let dpop_proof = match operation.get("x-dpop-proof") {
                None => false,
                Some(Value::Bool(flag)) => *flag,
                Some(_) => {
                    return Err(unsupported(
                        format!("{pointer}/x-dpop-proof"),
                        "`x-dpop-proof` must be a boolean".into(),
                    ));
                }
            };
            let host = match host(operation.get("servers").or_else(|| item.get("servers"))) {
                Some("gateway") => quote! { crate::Host::Gateway },
                _ => quote! { crate::Host::Identity },
            };
            let name = method_name(id);
            let constant = format_ident!("{}", name.to_ascii_uppercase());
            let http_method = method.to_ascii_uppercase();
            let doc = format!(" `{http_method} {path}` (`{id}`).");
            let alternatives = security.iter().map(|schemes| quote! { &[#(#schemes),*] });
            constants.push(quote! {
                #[doc = #doc]
                pub const #constant: Operation = Operation {
                    id: #name,
                    method: #http_method,
                    path: #path,
                    security: &[#(#alternatives),*],
                    dpop_proof: #dpop_proof,
                    host: #host,
                };
            });
            all.push(quote! { #constant });
        }
    }
    Ok(quote! {
        /// The operations of the spec, with their security requirements. The
        /// client's hooks read this table: each method of [`Client`](crate::Client)
        /// sends only the credentials its operation's `security` names.
        pub mod operations {
            pub use crate::{Host, Operation, Scheme};

            #(#constants)*

            /// Every operation, sorted by path.
            pub const ALL: &[Operation] = &[#(#all),*];
        }
    })
}

/// The host an operation's (or its path's) own `servers` name, by their
/// `x-fv-host` (the lint made sure each has one, and one for all).
fn host(servers: Option<&Value>) -> Option<&str> {
    servers?.as_array()?.first()?.get(crate::lint::HOST_MARK)?.as_str()
}

/// The spec's security schemes, as the hooks can apply them.
fn security_schemes(
    doc: &Value,
    unsupported: &impl Fn(String, String) -> Error,
) -> Result<Vec<(String, Scheme)>, Error> {
    let empty = Map::new();
    let declared = doc.pointer("/components/securitySchemes").and_then(Value::as_object).unwrap_or(&empty);
    declared
        .iter()
        .map(|(name, scheme)| {
            let pointer = format!("/components/securitySchemes/{name}");
            let kind = scheme.get("type").and_then(Value::as_str).unwrap_or_default();
            let http = scheme.get("scheme").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
            match (kind, http.as_str()) {
                ("http", "bearer") => Ok((name.clone(), Scheme::Bearer)),
                ("http", "basic") => Ok((name.clone(), Scheme::Basic)),
                // RFC 9449 §7.1 registers the `DPoP` authentication scheme.
                ("http", "dpop") => Ok((name.clone(), Scheme::Dpop)),
                _ => Err(unsupported(
                    pointer,
                    format!(
                        "the client's hooks apply `type: http` with `scheme: bearer`, `basic` or `dpop` only, found type \
                         {kind:?} scheme {http:?}; add the kind to Scheme in filevine-identity/src/operation.rs"
                    ),
                )),
            }
        })
        .collect()
}

/// One security requirement object: the schemes that must all be present.
fn requirement(
    schemes: &[(String, Scheme)],
    alternative: &Value,
    pointer: &str,
) -> Result<Vec<TokenStream>, (String, String)> {
    let Some(names) = alternative.as_object() else {
        return Err((pointer.to_owned(), "a security requirement must be an object".into()));
    };
    names
        .keys()
        .map(|name| {
            schemes.iter().find(|(declared, _)| declared == name).map(|(_, scheme)| scheme.tokens()).ok_or_else(|| {
                (
                    format!("{pointer}/{name}"),
                    format!("security scheme {name:?} is not declared in /components/securitySchemes"),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names_follow_progenitor() {
        assert_eq!(method_name("getAccessToken"), "get_access_token");
        assert_eq!(method_name("getOpenidConfiguration"), "get_openid_configuration");
        assert_eq!(method_name("revoke-token"), "revoke_token");
    }

    #[test]
    fn unknown_schemes_and_kinds_are_named() {
        let doc = serde_json::json!({
            "components": {"securitySchemes": {"key": {"type": "apiKey", "in": "header", "name": "x"}}},
            "paths": {}
        });
        let error = operations_module("s.yaml", &doc).unwrap_err().to_string();
        assert!(error.contains("/components/securitySchemes/key") && error.contains("apiKey"), "{error}");

        let doc = serde_json::json!({
            "paths": {"/a": {"get": {"operationId": "a", "security": [{"nope": []}], "responses": {}}}}
        });
        let error = operations_module("s.yaml", &doc).unwrap_err().to_string();
        assert!(error.contains("/paths/~1a/get/security/0/nope") && error.contains("not declared"), "{error}");
    }

    #[test]
    fn dpop_scheme_and_proof_marker_reach_the_table() {
        let doc = serde_json::json!({
            "components": {"securitySchemes": {"d": {"type": "http", "scheme": "DPoP"}}},
            "paths": {
                "/t": {"post": {"operationId": "t", "x-dpop-proof": true, "responses": {}}},
                "/u": {"get": {"operationId": "u", "security": [{"d": []}], "responses": {}}}
            }
        });
        let module = operations_module("s.yaml", &doc).unwrap().to_string();
        assert!(module.contains("dpop_proof : true"), "{module}");
        assert!(module.contains("crate :: Scheme :: Dpop"), "{module}");

        let doc = serde_json::json!({
            "paths": {"/t": {"post": {"operationId": "t", "x-dpop-proof": "yes", "responses": {}}}}
        });
        let error = operations_module("s.yaml", &doc).unwrap_err().to_string();
        assert!(error.contains("/paths/~1t/post/x-dpop-proof") && error.contains("boolean"), "{error}");
    }
}
