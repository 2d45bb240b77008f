//! No `api-version` header.
//!
//! progenitor gives every operation a header map that starts with
//! `api-version: <info.version>`. The identity endpoints are standard
//! OAuth 2.0 / OpenID Connect endpoints that do not ask for it, and a
//! strict server may refuse an unknown header. Removed here, at generation,
//! the header is never built: no request pays for a header map made,
//! merged into the request and searched again to take the header out (the
//! hooks did that before each request). An operation with header
//! parameters of its own keeps its map, without the version.

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::{Expr, ImplItem, Item, Stmt};

/// The map progenitor builds the headers in.
const MAP: &str = "header_map";

/// Drops the `api-version` header from every client method of `file`;
/// returns how many methods had it.
pub(crate) fn drop_api_version(file: &mut syn::File) -> usize {
    let mut changed = 0;
    for item in &mut file.items {
        let Item::Impl(block) = item else { continue };
        if block.trait_.is_some() {
            continue;
        }
        for member in &mut block.items {
            let ImplItem::Fn(method) = member else { continue };
            let stmts = &mut method.block.stmts;
            let before = stmts.len();
            stmts.retain(|stmt| !is_api_version_append(stmt));
            if stmts.len() == before {
                continue;
            }
            changed += 1;
            // Nothing else goes in the map: no map at all.
            let uses: usize = stmts.iter().map(|stmt| count_ident(stmt.to_token_stream(), MAP)).sum();
            if uses == 2 && stmts.iter_mut().any(unchain_headers) {
                stmts.retain(|stmt| !declares_map(stmt));
            }
        }
    }
    changed
}

/// `header_map.append(HeaderName::from_static("api-version"), …);`
fn is_api_version_append(stmt: &Stmt) -> bool {
    let Stmt::Expr(Expr::MethodCall(call), Some(_)) = stmt else { return false };
    call.method == "append"
        && is_map(&call.receiver)
        && call.args.first().is_some_and(|name| name.to_token_stream().to_string().contains("\"api-version\""))
}

/// `let mut header_map = …;`
fn declares_map(stmt: &Stmt) -> bool {
    let Stmt::Local(local) = stmt else { return false };
    count_ident(local.pat.to_token_stream(), MAP) == 1
}

/// Takes `.headers(header_map)` out of the request builder chain of `stmt`
/// (`let mut request = self.client.post(url)….headers(header_map).build()?;`).
fn unchain_headers(stmt: &mut Stmt) -> bool {
    let Stmt::Local(local) = stmt else { return false };
    let Some(init) = &mut local.init else { return false };
    unchain(&mut init.expr)
}

fn unchain(expr: &mut Expr) -> bool {
    match expr {
        Expr::MethodCall(call) if call.method == "headers" && call.args.len() == 1 && is_map(&call.args[0]) => {
            let receiver = std::mem::replace(&mut *call.receiver, Expr::Verbatim(TokenStream::new()));
            *expr = receiver;
            true
        }
        Expr::MethodCall(call) => unchain(&mut call.receiver),
        Expr::Try(try_expr) => unchain(&mut try_expr.expr),
        _ => false,
    }
}

fn is_map(expr: &Expr) -> bool {
    matches!(expr, Expr::Path(path) if path.path.is_ident(MAP))
}

fn count_ident(tokens: TokenStream, name: &str) -> usize {
    tokens
        .into_iter()
        .map(|token| match token {
            TokenTree::Ident(ident) => usize::from(ident == name),
            TokenTree::Group(group) => count_ident(group.stream(), name),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_goes_and_a_map_left_empty_goes_with_it() {
        let mut file: syn::File = syn::parse_quote! {
            impl Client {
                pub async fn plain<'a>(&'a self) -> Result<(), Error> {
                    let url = format!("{}/ping", self.baseurl);
                    let mut header_map = ::reqwest::header::HeaderMap::with_capacity(1usize);
                    header_map.append(
                        ::reqwest::header::HeaderName::from_static("api-version"),
                        ::reqwest::header::HeaderValue::from_static(Self::api_version()),
                    );
                    let mut request = self.client.get(url).header(ACCEPT, "application/json").headers(header_map).build()?;
                    self.exec(request).await
                }
                pub async fn with_header<'a>(&'a self, trace: &'a str) -> Result<(), Error> {
                    let mut header_map = ::reqwest::header::HeaderMap::with_capacity(2usize);
                    header_map.append(
                        ::reqwest::header::HeaderName::from_static("api-version"),
                        ::reqwest::header::HeaderValue::from_static(Self::api_version()),
                    );
                    header_map.append("x-trace", trace.to_string().try_into()?);
                    let mut request = self.client.get(url).headers(header_map).build()?;
                    self.exec(request).await
                }
            }
        };
        assert_eq!(drop_api_version(&mut file), 2);
        let text = file.to_token_stream().to_string();
        assert!(!text.contains("api-version"), "{text}");
        let (plain, with_header) = text.split_once("with_header").unwrap();
        assert!(!plain.contains("header_map"), "an empty map is not built: {plain}");
        assert!(plain.contains(". header (ACCEPT , \"application/json\") . build ()"), "{plain}");
        assert!(with_header.contains("x-trace") && with_header.contains(". headers (header_map)"), "{with_header}");
    }

    #[test]
    fn a_method_without_the_header_is_left_alone() {
        let mut file: syn::File = syn::parse_quote! {
            impl Client {
                pub fn baseurl(&self) -> &String { &self.baseurl }
            }
        };
        let before = file.to_token_stream().to_string();
        assert_eq!(drop_api_version(&mut file), 0);
        assert_eq!(file.to_token_stream().to_string(), before);
    }
}
