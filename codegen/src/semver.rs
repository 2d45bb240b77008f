//! What a spec change does to the generated crate's users, by Rust's SemVer
//! rules: the public items of the committed and the new `generated.rs`,
//! compared item by item, grouped as added / removed / changed, with a
//! verdict.
//!
//! The rules are the Cargo book's "SemVer Compatibility" chapter, as
//! cargo-semver-checks lints them:
//!
//! | change | verdict |
//! |---|---|
//! | new item (operation, type, constant) | additive |
//! | item removed or renamed (a rename is a removal plus an addition) | breaking: code that names it stops compiling |
//! | new field in a struct users can build (all fields public, not `#[non_exhaustive]`: the request types) | breaking: struct literals must name it |
//! | new field in a `#[non_exhaustive]` struct (the response types, see `non_exhaustive.rs`) | additive |
//! | field removed, or its type changed (made required: `Option<T>` → `T`, or optional) | breaking |
//! | new variant in an exhaustive enum | breaking: `match`es without a wildcard arm stop compiling |
//! | a method's signature changed | breaking |
//! | a derive removed / added | breaking / additive |
//! | a constant's value changed, same type (an operation's path) | not a compile break; listed as a behaviour change |

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use quote::ToTokens;
use syn::{Fields, ImplItem, Item};

use crate::public::is_public;

/// Whether a change can break users' code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Impact {
    /// Compiles as before (a minor release).
    Additive,
    /// Code that compiled may not (a major release; while the crate is
    /// 0.x, the minor number). The reason says which code.
    Breaking(String),
}

/// One change to one public item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The item, e.g. `struct types::TokenResponse`, `fn Client::get_userinfo`.
    pub item: String,
    /// What changed.
    pub detail: String,
    /// Its verdict.
    pub impact: Impact,
}

/// The public-surface change between two versions of the generated file.
///
/// ```
/// let old = "pub mod types { pub struct Answer { pub a: String } }";
/// let new = "pub mod types { pub struct Answer { pub a: String, pub b: Option<String> } }";
/// let diff = filevine_identity_codegen::surface_diff(old, new).unwrap();
/// assert!(diff.is_breaking(), "Answer can be built with a struct literal");
/// assert!(diff.to_string().contains("new field `b: Option<String>`"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SurfaceDiff {
    /// Items only the new file has.
    pub added: Vec<Change>,
    /// Items only the old file has.
    pub removed: Vec<Change>,
    /// Items both have, changed.
    pub changed: Vec<Change>,
}

impl SurfaceDiff {
    /// Whether anything changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    /// Whether any change is breaking.
    pub fn is_breaking(&self) -> bool {
        self.all().any(|c| matches!(c.impact, Impact::Breaking(_)))
    }

    fn all(&self) -> impl Iterator<Item = &Change> {
        self.added.iter().chain(&self.removed).chain(&self.changed)
    }

    /// One line: the counts and the verdict.
    pub fn verdict(&self) -> String {
        let counts =
            format!("{} added, {} removed, {} changed", self.added.len(), self.removed.len(), self.changed.len());
        let verdict = if self.is_empty() {
            "no change to the public surface"
        } else if self.is_breaking() {
            "BREAKING (a major release; while the crate is 0.x, the minor number)"
        } else {
            "additive (a minor release)"
        };
        format!("public surface: {counts}: {verdict}")
    }
}

impl fmt::Display for SurfaceDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.verdict())?;
        for (title, mark, changes) in
            [("added", '+', &self.added), ("removed", '-', &self.removed), ("changed", '~', &self.changed)]
        {
            if changes.is_empty() {
                continue;
            }
            writeln!(f, "  {title}:")?;
            for change in changes {
                let impact = match &change.impact {
                    Impact::Additive => "additive".to_owned(),
                    Impact::Breaking(why) => format!("BREAKING: {why}"),
                };
                if change.detail.is_empty() {
                    writeln!(f, "    {mark} {} [{impact}]", change.item)?;
                } else {
                    writeln!(f, "    {mark} {}: {} [{impact}]", change.item, change.detail)?;
                }
            }
        }
        Ok(())
    }
}

/// Compares the public surface of two generated files (their Rust text).
///
/// # Errors
/// When either is not valid Rust.
pub fn surface_diff(old: &str, new: &str) -> Result<SurfaceDiff, syn::Error> {
    let old = shapes(&syn::parse_file(old)?);
    let new = shapes(&syn::parse_file(new)?);
    let mut diff = SurfaceDiff::default();
    for (key, shape) in &new {
        if !old.contains_key(key) {
            diff.added.push(Change { item: key.clone(), detail: shape.summary(), impact: Impact::Additive });
        }
    }
    for (key, shape) in &old {
        match new.get(key) {
            None => diff.removed.push(Change {
                item: key.clone(),
                detail: shape.summary(),
                impact: Impact::Breaking("code that names it stops compiling".into()),
            }),
            Some(now) => diff.changed.extend(compare(key, shape, now)),
        }
    }
    Ok(diff)
}

/// A public item as far as SemVer is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    /// A struct with public fields (name → type).
    Struct { exhaustive: bool, derives: BTreeSet<String>, fields: BTreeMap<String, String> },
    /// An enum (variant → its fields).
    Enum { exhaustive: bool, derives: BTreeSet<String>, variants: BTreeMap<String, String> },
    /// A function or method: its signature.
    Fn(String),
    /// A constant: type and value.
    Const { ty: String, value: String },
    /// Anything else (trait impls, re-exports): present or not.
    Other,
}

impl Shape {
    fn summary(&self) -> String {
        match self {
            Shape::Struct { fields, .. } => format!("{} field(s)", fields.len()),
            Shape::Enum { variants, .. } => format!("{} variant(s)", variants.len()),
            Shape::Fn(signature) => signature.clone(),
            Shape::Const { value, .. } => value.clone(),
            Shape::Other => String::new(),
        }
    }
}

/// Token-level text (formatting differences are not changes), written the
/// way a person reads it: `Option<String>`.
fn text(tokens: impl ToTokens) -> String {
    crate::surface::compact(tokens.to_token_stream())
}

fn attrs(attrs: &[syn::Attribute]) -> (bool, BTreeSet<String>) {
    let exhaustive = !attrs.iter().any(|a| a.path().is_ident("non_exhaustive"));
    let mut derives = BTreeSet::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("derive")) {
        let _ = attr.parse_nested_meta(|meta| {
            derives.insert(text(&meta.path).replace(' ', ""));
            Ok(())
        });
    }
    (exhaustive, derives)
}

fn shapes(file: &syn::File) -> BTreeMap<String, Shape> {
    let mut out = BTreeMap::new();
    collect(&file.items, "", &mut out);
    out
}

fn collect(items: &[Item], prefix: &str, out: &mut BTreeMap<String, Shape>) {
    crate::public::walk(items, prefix, &mut |item, prefix| collect_item(item, prefix, out));
}

fn collect_item(item: &Item, prefix: &str, out: &mut BTreeMap<String, Shape>) {
    match item {
        Item::Struct(s) if is_public(&s.vis) => {
            let (exhaustive, derives) = attrs(&s.attrs);
            let fields = match &s.fields {
                Fields::Named(named) => named
                    .named
                    .iter()
                    .filter(|f| is_public(&f.vis))
                    .map(|f| (f.ident.as_ref().map(ToString::to_string).unwrap_or_default(), text(&f.ty)))
                    .collect(),
                Fields::Unnamed(unnamed) => unnamed
                    .unnamed
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| is_public(&f.vis))
                    .map(|(i, f)| (i.to_string(), text(&f.ty)))
                    .collect(),
                Fields::Unit => BTreeMap::new(),
            };
            // A struct with a private field cannot be built outside
            // the crate either.
            let all_public = s.fields.iter().all(|f| is_public(&f.vis));
            out.insert(
                format!("struct {prefix}{}", s.ident),
                Shape::Struct { exhaustive: exhaustive && all_public, derives, fields },
            );
        }
        Item::Enum(e) if is_public(&e.vis) => {
            let (exhaustive, derives) = attrs(&e.attrs);
            let variants = e.variants.iter().map(|v| (v.ident.to_string(), text(&v.fields))).collect();
            out.insert(format!("enum {prefix}{}", e.ident), Shape::Enum { exhaustive, derives, variants });
        }
        Item::Const(c) if is_public(&c.vis) => {
            out.insert(format!("const {prefix}{}", c.ident), Shape::Const { ty: text(&c.ty), value: text(&c.expr) });
        }
        Item::Fn(f) if is_public(&f.vis) => {
            out.insert(format!("fn {prefix}{}", f.sig.ident), Shape::Fn(text(&f.sig)));
        }
        Item::Impl(block) if block.trait_.is_none() => {
            let owner = text(&block.self_ty);
            for member in &block.items {
                if let ImplItem::Fn(method) = member
                    && is_public(&method.vis)
                {
                    out.insert(format!("fn {prefix}{owner}::{}", method.sig.ident), Shape::Fn(text(&method.sig)));
                }
            }
        }
        Item::Impl(block) => {
            let header = format!("impl {} for {}", text(block.trait_.as_ref().map(|t| &t.0)), text(&block.self_ty));
            out.insert(format!("{header}{}", scope(prefix)), Shape::Other);
        }
        Item::Use(u) if is_public(&u.vis) => {
            // One entry per name brought in: a name added to a `use` list
            // is an addition, not the removal of the old list.
            let mut paths = Vec::new();
            use_paths(&u.tree, String::new(), &mut paths);
            for path in paths {
                out.insert(format!("use {path}{}", scope(prefix)), Shape::Other);
            }
        }
        Item::Type(t) if is_public(&t.vis) => {
            out.insert(format!("type {prefix}{}", t.ident), Shape::Fn(text(&t.ty)));
        }
        _ => {}
    }
}

/// Every path a `use` tree brings in: `crate::{A, b::C}` → `crate::A`,
/// `crate::b::C`.
fn use_paths(tree: &syn::UseTree, prefix: String, out: &mut Vec<String>) {
    match tree {
        syn::UseTree::Path(path) => use_paths(&path.tree, format!("{prefix}{}::", path.ident), out),
        syn::UseTree::Name(name) => out.push(format!("{prefix}{}", name.ident)),
        syn::UseTree::Rename(rename) => out.push(format!("{prefix}{} as {}", rename.ident, rename.rename)),
        syn::UseTree::Glob(_) => out.push(format!("{prefix}*")),
        syn::UseTree::Group(group) => {
            for item in &group.items {
                use_paths(item, prefix.clone(), out);
            }
        }
    }
}

/// ` (in types)` for an item of a module, nothing at the root.
fn scope(prefix: &str) -> String {
    let module = prefix.trim_end_matches("::");
    if module.is_empty() { String::new() } else { format!(" (in {module})") }
}

fn breaking(why: &str) -> Impact {
    Impact::Breaking(why.to_owned())
}

fn change(item: &str, detail: String, impact: Impact) -> Change {
    Change { item: item.to_owned(), detail, impact }
}

/// The changes between two shapes of one item.
fn compare(key: &str, old: &Shape, new: &Shape) -> Vec<Change> {
    if old == new {
        return Vec::new();
    }
    match (old, new) {
        (
            Shape::Struct { exhaustive: was, derives: old_derives, fields: old_fields },
            Shape::Struct { exhaustive: is, derives: new_derives, fields: new_fields },
        ) => {
            let mut out = members(key, "field", old_fields, new_fields, |name| {
                if *was {
                    breaking(&format!(
                        "`{name}` must now be named in struct literals outside the crate \
                         (the struct is not #[non_exhaustive]: users build it, e.g. a request)"
                    ))
                } else {
                    Impact::Additive
                }
            });
            if *was && !*is {
                out.push(change(
                    key,
                    "now #[non_exhaustive]".into(),
                    breaking("struct literals outside the crate stop compiling"),
                ));
            }
            if !*was && *is {
                out.push(change(key, "no longer #[non_exhaustive]".into(), Impact::Additive));
            }
            out.extend(derive_changes(key, old_derives, new_derives));
            out
        }
        (
            Shape::Enum { exhaustive: was, derives: old_derives, variants: old_variants },
            Shape::Enum { exhaustive: is, derives: new_derives, variants: new_variants },
        ) => {
            let mut out = members(key, "variant", old_variants, new_variants, |_| {
                if *was {
                    breaking("`match`es without a wildcard arm stop compiling (the enum is exhaustive)")
                } else {
                    Impact::Additive
                }
            });
            if *was && !*is {
                out.push(change(key, "now #[non_exhaustive]".into(), breaking("exhaustive `match`es stop compiling")));
            }
            out.extend(derive_changes(key, old_derives, new_derives));
            out
        }
        (Shape::Fn(a), Shape::Fn(b)) => {
            vec![change(key, format!("signature `{a}` → `{b}`"), breaking("callers written for the old signature"))]
        }
        (Shape::Const { ty: old_ty, value: a }, Shape::Const { ty: new_ty, value: b }) if old_ty == new_ty => {
            vec![change(
                key,
                format!("value `{a}` → `{b}` (a behaviour change, not a compile break)"),
                Impact::Additive,
            )]
        }
        _ => vec![change(key, "its kind or type changed".into(), breaking("code that uses it as before"))],
    }
}

/// Added, removed and retyped fields or variants.
fn members(
    key: &str,
    what: &str,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
    on_add: impl Fn(&str) -> Impact,
) -> Vec<Change> {
    let mut out = Vec::new();
    for (name, ty) in new {
        match old.get(name) {
            None => out.push(change(key, format!("new {what} `{name}: {ty}`"), on_add(name))),
            Some(was) if was != ty => {
                let optional = |t: &str| t.starts_with("Option<");
                let detail = match (optional(was), optional(ty)) {
                    (true, false) => format!("{what} `{name}` made required: `{was}` → `{ty}`"),
                    (false, true) => format!("{what} `{name}` made optional: `{was}` → `{ty}`"),
                    _ => format!("{what} `{name}` retyped: `{was}` → `{ty}`"),
                };
                out.push(change(key, detail, breaking("code that builds or reads it with the old type")));
            }
            Some(_) => {}
        }
    }
    for name in old.keys().filter(|name| !new.contains_key(*name)) {
        out.push(change(key, format!("{what} `{name}` removed"), breaking("code that names it stops compiling")));
    }
    out
}

fn derive_changes(key: &str, old: &BTreeSet<String>, new: &BTreeSet<String>) -> Vec<Change> {
    let mut out = Vec::new();
    for gone in old.difference(new) {
        out.push(change(key, format!("no longer derives {gone}"), breaking("code that relies on the trait")));
    }
    for added in new.difference(old) {
        out.push(change(key, format!("now derives {added}"), Impact::Additive));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_added_to_a_use_list_is_only_an_addition() {
        let old = "pub mod operations { pub use crate::{Operation, Scheme}; }";
        let new = "pub mod operations { pub use crate::{Host, Operation, Scheme}; }";
        let diff = surface_diff(old, new).unwrap();
        assert!(diff.removed.is_empty(), "{diff}");
        assert_eq!(diff.added.len(), 1, "{diff}");
        assert!(diff.added[0].item.contains("use crate::Host"), "{diff}");
    }
}
