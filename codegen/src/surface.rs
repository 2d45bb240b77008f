//! A compact, stable listing of the generated public surface.
//!
//! The generated file is thousands of lines of serde plumbing; a reviewer of
//! a spec change wants to see which types, fields and methods changed. This
//! listing is rendered from the syn tree (not from text), one line per item:
//!
//! ```text
//! struct types::TokenResponse  derive(Clone, Debug, Deserialize, PartialEq, Serialize)
//!     access_token: crate::SecretString
//!     expires_in: Option<TokenResponseExpiresIn>  serde(default, skip_serializing_if = "Option::is_none")
//! enum types::TokenRequest  serde(tag = "grant_type")
//!     PersonalAccessToken(PersonalAccessTokenRequest)  serde(rename = "personal_access_token")
//! impl Client
//!     fn get_access_token<'a>(&'a self, body: &'a types::TokenRequest) -> Result<…>
//! ```

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use quote::ToTokens;
use syn::{Attribute, Fields, ImplItem, Item, Visibility};

use crate::public::is_public;

/// Renders the public surface of a generated file.
///
/// # Example
/// ```
/// let file: syn::File = syn::parse_str(r#"
///     pub mod types {
///         #[derive(Debug, serde::Serialize)]
///         pub struct Pet { #[serde(rename = "petName")] pub name: Option<String> }
///     }
///     pub struct Client;
///     impl Client { pub async fn get_pet<'a>(&'a self, id: u64) -> Result<types::Pet, ()> { todo!() } }
/// "#).unwrap();
/// let listing = filevine_identity_codegen::surface_listing(&file);
/// assert_eq!(listing, "\
/// struct types::Pet  derive(Debug, serde::Serialize)
///     name: Option<String>  serde(rename = \"petName\")
/// struct Client
/// impl Client
///     async fn get_pet<'a>(&'a self, id: u64) -> Result<types::Pet, ()>
/// ");
/// ```
pub fn surface_listing(file: &syn::File) -> String {
    let mut out = String::new();
    list_items(&file.items, "", &mut out);
    out
}

fn list_items(items: &[Item], prefix: &str, out: &mut String) {
    crate::public::walk(items, prefix, &mut |item, prefix| list_item(item, prefix, out));
}

fn list_item(item: &Item, prefix: &str, out: &mut String) {
    match item {
        Item::Use(u) if is_public(&u.vis) => {
            let scope =
                if prefix.is_empty() { String::new() } else { format!("  (in {})", prefix.trim_end_matches("::")) };
            out.push_str(&format!("use {}{scope}\n", compact(u.tree.to_token_stream())));
        }
        Item::Const(c) if is_public(&c.vis) => {
            out.push_str(&format!(
                "const {prefix}{}: {} = {}\n",
                c.ident,
                compact(c.ty.to_token_stream()),
                compact(c.expr.to_token_stream())
            ));
        }
        Item::Type(t) if is_public(&t.vis) => {
            out.push_str(&format!("type {prefix}{} = {}\n", t.ident, compact(t.ty.to_token_stream())));
        }
        Item::Struct(s) if is_public(&s.vis) => {
            out.push_str(&format!(
                "struct {prefix}{}{}{}\n",
                s.ident,
                compact(s.generics.to_token_stream()),
                attrs(&s.attrs)
            ));
            list_fields(&s.fields, "    ", out);
        }
        Item::Enum(e) if is_public(&e.vis) => {
            out.push_str(&format!(
                "enum {prefix}{}{}{}\n",
                e.ident,
                compact(e.generics.to_token_stream()),
                attrs(&e.attrs)
            ));
            for variant in &e.variants {
                let shape = match &variant.fields {
                    Fields::Unit => String::new(),
                    Fields::Unnamed(f) => format!(
                        "({})",
                        f.unnamed.iter().map(|f| compact(f.ty.to_token_stream())).collect::<Vec<_>>().join(", ")
                    ),
                    Fields::Named(_) => " { .. }".to_owned(),
                };
                out.push_str(&format!("    {}{shape}{}\n", variant.ident, attrs(&variant.attrs)));
                if let Fields::Named(_) = &variant.fields {
                    list_fields(&variant.fields, "        ", out);
                }
            }
        }
        Item::Fn(f) if is_public(&f.vis) => {
            out.push_str(&format!("{}\n", signature(&f.sig, prefix)));
        }
        Item::Impl(i) => list_impl(i, prefix, out),
        _ => {}
    }
}

/// Inherent impls list their public functions; trait impls are one line.
fn list_impl(item: &syn::ItemImpl, prefix: &str, out: &mut String) {
    let self_ty = compact(item.self_ty.to_token_stream());
    let generics = compact(item.generics.to_token_stream());
    match &item.trait_ {
        Some((path, _)) => {
            let scope =
                if prefix.is_empty() { String::new() } else { format!("  (in {})", prefix.trim_end_matches("::")) };
            out.push_str(&format!("impl{generics} {} for {self_ty}{scope}\n", compact(path.to_token_stream())));
        }
        None => {
            let functions: Vec<String> = item
                .items
                .iter()
                .filter_map(|member| match member {
                    ImplItem::Fn(f) if is_public(&f.vis) => Some(format!("    {}\n", signature(&f.sig, ""))),
                    _ => None,
                })
                .collect();
            if !functions.is_empty() {
                out.push_str(&format!("impl{generics} {prefix}{self_ty}\n"));
                functions.iter().for_each(|f| out.push_str(f));
            }
        }
    }
}

fn list_fields(fields: &Fields, indent: &str, out: &mut String) {
    for (index, field) in fields.iter().enumerate() {
        if !is_public(&field.vis) && !matches!(field.vis, Visibility::Inherited) {
            continue;
        }
        let name = field.ident.as_ref().map_or_else(|| index.to_string(), ToString::to_string);
        let private = if is_public(&field.vis) { "" } else { "(private) " };
        out.push_str(&format!(
            "{indent}{private}{name}: {}{}\n",
            compact(field.ty.to_token_stream()),
            attrs(&field.attrs)
        ));
    }
}

fn signature(sig: &syn::Signature, prefix: &str) -> String {
    let asyncness = if sig.asyncness.is_some() { "async " } else { "" };
    let inputs = sig.inputs.iter().map(|arg| compact(arg.to_token_stream())).collect::<Vec<_>>().join(", ");
    let output = match &sig.output {
        syn::ReturnType::Default => String::new(),
        syn::ReturnType::Type(_, ty) => format!(" -> {}", compact(ty.to_token_stream())),
    };
    let where_clause =
        sig.generics.where_clause.as_ref().map(|w| format!(" {}", compact(w.to_token_stream()))).unwrap_or_default();
    format!(
        "{asyncness}fn {prefix}{}{}({inputs}){output}{where_clause}",
        sig.ident,
        compact(sig.generics.to_token_stream())
    )
}

/// The attributes that shape the wire format or the trait surface: derives,
/// serde attributes and `non_exhaustive`. Doc comments and lint attributes
/// are left out.
fn attrs(attrs: &[Attribute]) -> String {
    let shown: Vec<String> = attrs
        .iter()
        .filter(|a| ["derive", "serde", "non_exhaustive"].iter().any(|name| a.path().is_ident(name)))
        .map(|a| compact(a.meta.to_token_stream()))
        .collect();
    if shown.is_empty() { String::new() } else { format!("  {}", shown.join(" ")) }
}

/// Renders tokens the way a person writes them: `Option<Vec<String>>`, not
/// `Option < Vec < String > >`.
pub(crate) fn compact(tokens: TokenStream) -> String {
    let mut out = String::new();
    write_compact(tokens, &mut out);
    PRELUDE_PATHS.iter().fold(out, |text, (long, short)| text.replace(long, short))
}

/// Fully qualified paths the generator writes for hygiene, and the names a
/// reader knows them by.
const PRELUDE_PATHS: &[(&str, &str)] = &[
    ("::std::option::Option", "Option"),
    ("::std::string::String", "String"),
    ("::std::vec::Vec", "Vec"),
    ("::std::boxed::Box", "Box"),
    ("::std::result::Result", "Result"),
    ("::std::convert::From", "From"),
    ("::std::convert::TryFrom", "TryFrom"),
    ("::std::str::FromStr", "FromStr"),
    ("::std::fmt::Display", "Display"),
    ("::std::fmt::Debug", "Debug"),
    ("::std::default::Default", "Default"),
    ("::serde::", "serde::"),
];

fn write_compact(tokens: TokenStream, out: &mut String) {
    let mut previous_word = false;
    for token in tokens {
        match token {
            TokenTree::Ident(ident) => {
                if previous_word {
                    out.push(' ');
                }
                out.push_str(&ident.to_string());
                previous_word = true;
            }
            TokenTree::Literal(literal) => {
                if previous_word {
                    out.push(' ');
                }
                out.push_str(&literal.to_string());
                previous_word = true;
            }
            TokenTree::Punct(punct) => {
                let c = punct.as_char();
                match c {
                    ',' => out.push_str(", "),
                    ':' if punct.spacing() == proc_macro2::Spacing::Alone && !out.ends_with(':') => out.push_str(": "),
                    '=' if punct.spacing() == proc_macro2::Spacing::Alone && !out.ends_with(['=', '!', '<', '>']) => {
                        out.push_str(" = ");
                    }
                    '>' if out.ends_with(", ") => {
                        out.truncate(out.len() - 2);
                        out.push('>');
                    }
                    '>' if out.ends_with('-') => {
                        out.pop();
                        out.push_str(" -> ");
                    }
                    _ => out.push(c),
                }
                previous_word = false;
            }
            TokenTree::Group(group) => {
                let (open, close) = match group.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::Brace => ("{ ", " }"),
                    Delimiter::None => ("", ""),
                };
                if previous_word && matches!(group.delimiter(), Delimiter::Brace) {
                    out.push(' ');
                }
                out.push_str(open);
                write_compact(group.stream(), out);
                // A trailing comma reads as noise in a one-line listing.
                if out.ends_with(", ") {
                    out.truncate(out.len() - 2);
                }
                out.push_str(close);
                previous_word = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_types_read_like_source() {
        let ty: syn::Type = syn::parse_str("::std::option::Option<::std::vec::Vec<(u8, &'a str)>>").unwrap();
        assert_eq!(compact(ty.to_token_stream()), "Option<Vec<(u8, &'a str)>>");
        let ty: syn::Type = syn::parse_str("Box<dyn Fn(u8) -> u8 + Send>").unwrap();
        assert_eq!(compact(ty.to_token_stream()), "Box<dyn Fn(u8) -> u8+Send>");
    }

    #[test]
    fn private_items_and_docs_are_left_out() {
        let file: syn::File = syn::parse_str(
            r#"
            /// doc
            struct Hidden;
            pub(crate) fn internal() {}
            pub struct Shown { pub a: u8, pub(crate) b: u8, c: u8 }
            pub enum E { #[serde(rename = "x")] A, B(u8), C { f: u8 } }
            impl Shown { fn private(&self) {} }
            impl From<u8> for Shown { fn from(_: u8) -> Self { todo!() } }
            "#,
        )
        .unwrap();
        assert_eq!(
            surface_listing(&file),
            "struct Shown\n    a: u8\n    (private) c: u8\nenum E\n    A  serde(rename = \"x\")\n    B(u8)\n    C { .. }\n        (private) f: u8\nimpl From<u8> for Shown\n"
        );
    }
}
