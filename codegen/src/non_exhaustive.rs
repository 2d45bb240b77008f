//! `#[non_exhaustive]` on the structs that only responses carry.
//!
//! typify emits every schema as a struct with public fields, so users can
//! build any of them with a struct literal, and adding a field to any of
//! them is a breaking change by Rust's rules (the Cargo book's SemVer
//! chapter: "adding a public field to a struct with all public fields").
//! Users never need to build a response: the client parses it. So the
//! structs reachable only from responses (`TokenResponse`, `UserInfo`,
//! `OpenIdConfiguration`, …) are marked `#[non_exhaustive]`: outside the
//! crate they can be read, matched with `..` and deserialized, not built
//! with a literal, and a provider's new optional field becomes an additive
//! change. Structs a request reaches (the token request variants, the
//! revocation and introspection forms) stay constructible; a new field
//! there is breaking, and the surface summary says so.

use std::collections::{BTreeMap, BTreeSet};

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::{FnArg, ImplItem, Item, ReturnType};

/// Marks the structs of `mod types` that only responses reach; returns
/// their names.
pub(crate) fn mark_response_structs(file: &mut syn::File) -> BTreeSet<String> {
    let (response_roots, request_roots) = roots(&file.items);
    let Some(types) = types_module(&mut file.items) else { return BTreeSet::new() };
    let graph: BTreeMap<String, BTreeSet<String>> = types
        .iter()
        .filter_map(|item| match item {
            Item::Struct(s) => Some((s.ident.to_string(), idents(s.fields.to_token_stream()))),
            Item::Enum(e) => Some((e.ident.to_string(), idents(e.variants.to_token_stream()))),
            _ => None,
        })
        .collect();
    let reached_by_requests = reach(&graph, request_roots);
    let response_only: BTreeSet<String> =
        reach(&graph, response_roots).difference(&reached_by_requests).cloned().collect();
    let mut marked = BTreeSet::new();
    for item in types.iter_mut() {
        if let Item::Struct(s) = item
            && response_only.contains(&s.ident.to_string())
        {
            s.attrs.push(syn::parse_quote!(#[non_exhaustive]));
            marked.insert(s.ident.to_string());
        }
    }
    marked
}

fn types_module(items: &mut [Item]) -> Option<&mut Vec<Item>> {
    items.iter_mut().find_map(|item| match item {
        Item::Mod(m) if m.ident == "types" => m.content.as_mut().map(|(_, items)| items),
        _ => None,
    })
}

/// The identifiers in the client methods' return types (responses, error
/// bodies) and in their parameters (request bodies).
fn roots(items: &[Item]) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut responses = BTreeSet::new();
    let mut requests = BTreeSet::new();
    for item in items {
        let Item::Impl(block) = item else { continue };
        if block.trait_.is_some() {
            continue;
        }
        for member in &block.items {
            let ImplItem::Fn(method) = member else { continue };
            if let ReturnType::Type(_, ty) = &method.sig.output {
                responses.extend(idents(ty.to_token_stream()));
            }
            for input in &method.sig.inputs {
                if let FnArg::Typed(arg) = input {
                    requests.extend(idents(arg.ty.to_token_stream()));
                }
            }
        }
    }
    (responses, requests)
}

fn reach(graph: &BTreeMap<String, BTreeSet<String>>, roots: BTreeSet<String>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut queue: Vec<String> = roots.into_iter().filter(|name| graph.contains_key(name)).collect();
    while let Some(name) = queue.pop() {
        if seen.insert(name.clone()) {
            queue
                .extend(graph[&name].iter().filter(|next| graph.contains_key(*next) && !seen.contains(*next)).cloned());
        }
    }
    seen
}

fn idents(tokens: TokenStream) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for token in tokens {
        match token {
            TokenTree::Ident(ident) => {
                out.insert(ident.to_string());
            }
            TokenTree::Group(group) => out.extend(idents(group.stream())),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_structs_that_requests_do_not_reach_are_marked() {
        let mut file: syn::File = syn::parse_quote! {
            pub mod types {
                pub struct Answer { pub meta: Meta, pub shared: Shared }
                pub struct Meta { pub n: i64 }
                pub struct Shared { pub s: String }
                pub struct Form { pub shared: Shared }
                pub enum Kind { A, B }
            }
            pub struct Client;
            impl Client {
                pub async fn op<'a>(&'a self, body: &'a types::Form) -> Result<ResponseValue<types::Answer>, Error<types::Kind>> {
                    todo!()
                }
            }
        };
        let marked = mark_response_structs(&mut file);
        assert_eq!(marked, BTreeSet::from(["Answer".to_owned(), "Meta".to_owned()]));
        let text = file.to_token_stream().to_string();
        assert_eq!(text.matches("non_exhaustive").count(), 2, "enums and request structs stay as they are");
    }
}
