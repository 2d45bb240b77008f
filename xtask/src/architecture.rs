//! `cargo xtask architecture`: ARCHITECTURE.md names only what exists.
//!
//! Every word in backticks that looks like a file or folder (it has a `/`
//! or ends in `.rs`, `.md`, `.yaml`, `.toml`, `.mjs`) must exist: a path
//! with a `/` inside from the workspace root or from one of the crates'
//! `src/`, a bare name (`engine.rs`, `support/`, said of the folder the
//! sentence is about) somewhere in the workspace. Every word that looks
//! like a Rust path (`a::b`, `f()`, or an UpperCamelCase name) must name
//! items the workspace's source defines: each segment a module, type,
//! trait, function, method, constant, variant, field or macro of some
//! file (crate names and `crate`/`self`/`super`/`std` pass). The map can
//! then be coarse and still never drift.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use syn::visit::Visit;

/// Where a relative path in the document may start.
const BASES: &[&str] =
    &["", "filevine-identity-ext/src", "filevine-identity/src", "filevine-auth/src", "codegen/src", "xtask/src"];

/// The source trees whose items the document may name.
const SOURCES: &[&str] =
    &["filevine-identity-ext/src", "filevine-identity/src", "filevine-auth/src", "codegen/src", "xtask/src"];

/// First segments that are not this workspace's items.
const EXTERNAL: &[&str] = &[
    "crate",
    "self",
    "super",
    "std",
    "core",
    "alloc",
    "tokio",
    "reqwest",
    "serde",
    "serde_json",
    "syn",
    "sqlx",
    "redis",
    "progenitor",
    "typify",
    "jsonwebtoken",
    "rustls",
    "axum",
    "tracing",
    "insta",
    "divan",
    "openapiv3",
    "progenitor_client",
    "filevine_identity",
    "filevine_identity_ext",
    "filevine_identity_codegen",
    "filevine_auth",
];

pub fn run(root: &Path) -> ExitCode {
    match problems(root, &root.join("ARCHITECTURE.md")) {
        Ok(problems) if problems.is_empty() => {
            println!("ARCHITECTURE.md: every path and name it mentions exists");
            ExitCode::SUCCESS
        }
        Ok(problems) => {
            eprintln!("ARCHITECTURE.md names {} thing(s) that do not exist:", problems.len());
            for problem in problems {
                eprintln!("  {problem}");
            }
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("ARCHITECTURE.md: {error}");
            ExitCode::FAILURE
        }
    }
}

/// What `document` mentions that does not exist under `root`, one line
/// each (`line N: `name`: why`).
pub fn problems(root: &Path, document: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(document).map_err(|e| format!("{}: {e}", document.display()))?;
    let names = defined_names(root)?;
    let entries = entry_names(root);
    let mut problems = Vec::new();
    let mut fenced = false;
    for (number, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        for word in backticked(line) {
            if let Some(why) = check(root, &names, &entries, word) {
                problems.push(format!("line {}: `{word}`: {why}", number + 1));
            }
        }
    }
    Ok(problems)
}

/// The words in backticks on `line`.
fn backticked(line: &str) -> Vec<&str> {
    line.split('`').skip(1).step_by(2).filter(|word| !word.is_empty()).collect()
}

/// Why `word` names nothing, if it looks like a path or a Rust name.
fn check(root: &Path, names: &BTreeSet<String>, entries: &BTreeSet<String>, word: &str) -> Option<String> {
    let word = word.trim();
    if looks_like_file(word) {
        let clean = word.trim_end_matches('/');
        let exists = if clean.contains('/') {
            BASES.iter().any(|base| root.join(base).join(clean).exists())
        } else {
            entries.contains(clean)
        };
        return (!exists).then(|| "no such file or folder".to_owned());
    }
    let path = word.strip_suffix("()").unwrap_or(word);
    if !looks_like_rust(word, path) {
        return None;
    }
    let segments: Vec<&str> = path.split("::").collect();
    let first = segments[0];
    let to_check: &[&str] = if EXTERNAL.contains(&first) { &segments[1..] } else { &segments };
    if EXTERNAL.contains(&first) && first != "crate" && first != "self" && first != "super" {
        // Another crate's item: not ours to check, unless it is one of
        // this workspace's crates.
        if !first.starts_with("filevine_") {
            return None;
        }
    }
    let missing: Vec<&str> = to_check.iter().copied().filter(|segment| !names.contains(*segment)).collect();
    (!missing.is_empty()).then(|| format!("nothing in the source is named {}", missing.join(", ")))
}

fn looks_like_file(word: &str) -> bool {
    if word.contains(' ') || word.contains("::") || word.starts_with('-') || word.contains('{') {
        return false;
    }
    let extensions = [".rs", ".md", ".yaml", ".toml", ".mjs", ".json", ".snap", ".sh"];
    (word.contains('/') && !word.contains("://") && !word.starts_with('/'))
        || extensions.iter().any(|e| word.ends_with(e))
}

/// `a::b`, `f()`, or one UpperCamelCase word (a type's name).
fn looks_like_rust(word: &str, path: &str) -> bool {
    let is_ident = |s: &str| {
        let mut chars = s.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if !path.split("::").all(is_ident) {
        return false;
    }
    let camel = |s: &str| {
        s.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && s.chars().any(|c| c.is_ascii_lowercase())
            && !s.contains('_')
    };
    path.contains("::") || word.ends_with("()") || camel(path)
}

/// Every name the workspace's source defines: module files and inline
/// modules, items, methods and associated items, variants, fields, macros.
fn defined_names(root: &Path) -> Result<BTreeSet<String>, String> {
    let mut names = BTreeSet::new();
    for source in SOURCES {
        for file in rust_files(&root.join(source)) {
            let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let syntax = syn::parse_file(&text).map_err(|e| format!("{}: {e}", file.display()))?;
            if let Some(stem) = file.file_stem().and_then(|s| s.to_str())
                && !matches!(stem, "mod" | "lib" | "main")
            {
                names.insert(stem.to_owned());
            }
            if let Some(dir) = file.parent().and_then(|d| d.file_name()).and_then(|d| d.to_str()) {
                names.insert(dir.to_owned());
            }
            let mut collector = Names(&mut names);
            collector.visit_file(&syntax);
        }
    }
    Ok(names)
}

/// The names of every file and folder of the workspace (not the build's,
/// Git's or npm's).
fn entry_names(root: &Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if matches!(name.as_str(), "target" | ".git" | "node_modules") {
                continue;
            }
            if entry.path().is_dir() {
                pending.push(entry.path());
            }
            names.insert(name);
        }
    }
    names
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return files };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

struct Names<'a>(&'a mut BTreeSet<String>);

impl<'ast> Visit<'ast> for Names<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let ident = match item {
            syn::Item::Const(i) => Some(&i.ident),
            syn::Item::Enum(i) => Some(&i.ident),
            syn::Item::Fn(i) => Some(&i.sig.ident),
            syn::Item::Macro(i) => i.ident.as_ref(),
            syn::Item::Mod(i) => Some(&i.ident),
            syn::Item::Static(i) => Some(&i.ident),
            syn::Item::Struct(i) => Some(&i.ident),
            syn::Item::Trait(i) => Some(&i.ident),
            syn::Item::Type(i) => Some(&i.ident),
            syn::Item::Union(i) => Some(&i.ident),
            _ => None,
        };
        if let Some(ident) = ident {
            self.0.insert(ident.to_string());
        }
        if let syn::Item::Use(item) = item {
            collect_renames(&item.tree, self.0);
        }
        syn::visit::visit_item(self, item);
    }

    fn visit_impl_item(&mut self, item: &'ast syn::ImplItem) {
        match item {
            syn::ImplItem::Fn(f) => drop(self.0.insert(f.sig.ident.to_string())),
            syn::ImplItem::Const(c) => drop(self.0.insert(c.ident.to_string())),
            syn::ImplItem::Type(t) => drop(self.0.insert(t.ident.to_string())),
            _ => {}
        }
        syn::visit::visit_impl_item(self, item);
    }

    fn visit_trait_item(&mut self, item: &'ast syn::TraitItem) {
        match item {
            syn::TraitItem::Fn(f) => drop(self.0.insert(f.sig.ident.to_string())),
            syn::TraitItem::Const(c) => drop(self.0.insert(c.ident.to_string())),
            syn::TraitItem::Type(t) => drop(self.0.insert(t.ident.to_string())),
            _ => {}
        }
        syn::visit::visit_trait_item(self, item);
    }

    fn visit_variant(&mut self, variant: &'ast syn::Variant) {
        self.0.insert(variant.ident.to_string());
        syn::visit::visit_variant(self, variant);
    }

    fn visit_field(&mut self, field: &'ast syn::Field) {
        if let Some(ident) = &field.ident {
            self.0.insert(ident.to_string());
        }
        syn::visit::visit_field(self, field);
    }
}

/// `use a::b as c;` defines `c`.
fn collect_renames(tree: &syn::UseTree, names: &mut BTreeSet<String>) {
    match tree {
        syn::UseTree::Path(p) => collect_renames(&p.tree, names),
        syn::UseTree::Rename(r) => drop(names.insert(r.rename.to_string())),
        syn::UseTree::Group(g) => g.items.iter().for_each(|t| collect_renames(t, names)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_names_that_do_not_exist_are_named_with_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("filevine-identity-ext/src/provider")).unwrap();
        std::fs::write(
            root.join("filevine-identity-ext/src/provider/engine.rs"),
            "pub struct Inner { pub flight: u8 } impl Inner { pub fn discard(&self) {} } pub enum E { Signed }",
        )
        .unwrap();
        let doc = root.join("ARCHITECTURE.md");
        std::fs::write(
            &doc,
            "# Map\n\
             - `provider/engine.rs` holds `Inner` (`Inner::discard`, `engine::Inner`, `E::Signed`, `discard()`, `engine.rs`).\n\
             - `provider/flight.rs`, `flight.rs` and `Flight`, `Inner::install`; not names: `Bearer token`, `x-fv-orgid`, `none`.\n\
             - Others' items pass: `tokio::spawn`, `std::sync::Mutex`; ours must exist: `crate::provider::Gone`.\n",
        )
        .unwrap();
        let found = problems(root, &doc).unwrap();
        assert_eq!(
            found,
            [
                "line 3: `provider/flight.rs`: no such file or folder",
                "line 3: `flight.rs`: no such file or folder",
                "line 3: `Flight`: nothing in the source is named Flight",
                "line 3: `Inner::install`: nothing in the source is named install",
                "line 4: `crate::provider::Gone`: nothing in the source is named Gone",
            ],
            "{found:#?}"
        );
    }

    #[test]
    fn this_workspace_architecture_is_true() {
        let root = crate::workspace::root();
        let found = problems(&root, &root.join("ARCHITECTURE.md")).unwrap();
        assert!(found.is_empty(), "{}", found.join("\n"));
    }
}
