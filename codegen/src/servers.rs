//! The `servers` module of the generated crate: progenitor does not emit
//! the spec's `servers`, and the hand-written crates need them (the region
//! defaults come from the spec instead of being typed twice).

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use serde_json::Value;

use crate::error::Error;

/// progenitor does not emit the spec's `servers`; the hand-written crates
/// need them (region defaults), so emit one constant per server that carries
/// an `x-region` name, plus the full list.
pub(crate) fn servers_module(label: &str, doc: &Value) -> Result<TokenStream, Error> {
    let unsupported = |pointer: String, reason: String| Error::Unsupported { path: label.to_owned(), pointer, reason };
    let servers = match doc.get("servers") {
        None => &Vec::new(),
        Some(Value::Array(servers)) => servers,
        Some(_) => return Err(unsupported("/servers".into(), "`servers` must be an array".into())),
    };
    let mut constants = Vec::new();
    let mut all = Vec::new();
    let mut seen = Vec::new();
    for (index, server) in servers.iter().enumerate() {
        let url = server
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| unsupported(format!("/servers/{index}/url"), "a server needs a `url` string".into()))?;
        if url.contains('{') {
            return Err(unsupported(
                format!("/servers/{index}/url"),
                "server variables are not supported; list one server per URL".into(),
            ));
        }
        let description = server.get("description").and_then(Value::as_str).unwrap_or(url);
        all.push(quote! { Server { url: #url, description: #description } });
        let Some(region) = server.get("x-region") else { continue };
        let region = region
            .as_str()
            .filter(|r| {
                r.starts_with(|c: char| c.is_ascii_lowercase())
                    && r.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            })
            .ok_or_else(|| {
                unsupported(
                    format!("/servers/{index}/x-region"),
                    format!("`x-region` must be a lowercase identifier, found {region}"),
                )
            })?;
        if seen.contains(&region) {
            return Err(unsupported(
                format!("/servers/{index}/x-region"),
                format!("region {region:?} is listed twice"),
            ));
        }
        seen.push(region);
        let name = format_ident!("{}", region.to_ascii_uppercase());
        let doc = format!(" {description}: `{url}`.");
        constants.push(quote! {
            #[doc = #doc]
            pub const #name: &str = #url;
        });
    }
    Ok(quote! {
        /// The servers listed in the spec. Each server with an `x-region`
        /// name is a constant named after it.
        pub mod servers {
            /// A server from the spec's `servers` list.
            #[derive(Debug, Clone, Copy, PartialEq, Eq)]
            pub struct Server {
                /// The server's base URL.
                pub url: &'static str,
                /// The spec's description of the server.
                pub description: &'static str,
            }

            #(#constants)*

            /// Every server, in the spec's order.
            pub const ALL: &[Server] = &[#(#all),*];
        }
    })
}
