//! `cargo xtask cycles`: fails when the files of a crate import each other
//! in a circle, so the floors ARCHITECTURE.md draws stay true.
//!
//! The graph is read with `syn` from the source (no build): one node per
//! module file, one edge per path a file names into another — `use` items
//! and paths in code alike (`crate::…`, `super::…`, `self::…`, or a child
//! module's name) — outside `#[cfg(test)]` modules. A module that names its
//! own descendants (a `mod.rs` re-exporting what its children define) is
//! their facade, not a dependency: those edges do not count. Every circle
//! that is left is printed, each file with the files of the circle it
//! imports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use syn::visit::Visit;

/// The crates whose files must form floors.
pub const CRATES: &[&str] =
    &["filevine-identity-ext/src/lib.rs", "filevine-auth/src/main.rs", "codegen/src/lib.rs", "xtask/src/main.rs"];

pub fn run(root: &Path) -> ExitCode {
    let mut failed = false;
    for entry in CRATES {
        match circles_in(&root.join(entry)) {
            Ok(circles) if circles.is_empty() => println!("{entry}: no import circle"),
            Ok(circles) => {
                failed = true;
                eprintln!("{entry}: {} import circle(s):", circles.len());
                for circle in circles {
                    eprintln!("{circle}");
                }
            }
            Err(error) => {
                failed = true;
                eprintln!("{entry}: {error}");
            }
        }
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

/// One module file: its module path, the paths it names, and the names its
/// `use` items bring into scope (which other modules may name through it).
struct Module {
    file: PathBuf,
    uses: BTreeSet<Vec<String>>,
    imports: BTreeMap<String, Vec<String>>,
}

/// The circles among the files of the crate rooted at `entry`, rendered.
pub fn circles_in(entry: &Path) -> Result<Vec<String>, String> {
    let mut modules = BTreeMap::new();
    load(entry, Vec::new(), &mut modules)?;
    let edges = edges(&modules);
    let mut circles = Vec::new();
    for component in strongly_connected(&edges) {
        let mut text = String::new();
        for node in &component {
            let targets: Vec<String> = edges[node].iter().filter(|t| component.contains(t)).map(|t| name(t)).collect();
            text.push_str(&format!("  {} -> {}\n", modules[node].file.display(), targets.join(", ")));
        }
        circles.push(text.trim_end().to_owned());
    }
    Ok(circles)
}

fn name(path: &[String]) -> String {
    if path.is_empty() { "crate".to_owned() } else { path.join("::") }
}

/// Parses `file` as module `path`, then its out-of-line child modules.
fn load(file: &Path, path: Vec<String>, modules: &mut BTreeMap<Vec<String>, Module>) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let syntax = syn::parse_file(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut visitor =
        Paths { current: path.clone(), children: BTreeSet::new(), found: BTreeSet::new(), imports: BTreeMap::new() };
    let children: Vec<String> = syntax
        .items
        .iter()
        .filter_map(|item| match item {
            syn::Item::Mod(m) if m.content.is_none() && !is_test(&m.attrs) => Some(m.ident.to_string()),
            _ => None,
        })
        .collect();
    visitor.children = children.iter().cloned().collect();
    visitor.visit_file(&syntax);
    modules.insert(path.clone(), Module { file: file.to_owned(), uses: visitor.found, imports: visitor.imports });
    // `foo.rs` and `foo/mod.rs` keep children in `foo/`; `lib.rs`,
    // `main.rs` and `mod.rs` in their own directory.
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    let dir = match stem {
        "lib" | "main" | "mod" => file.parent().map(Path::to_path_buf).unwrap_or_default(),
        _ => file.with_extension(""),
    };
    for child in children {
        let flat = dir.join(format!("{child}.rs"));
        let nested = dir.join(&child).join("mod.rs");
        let child_file = if flat.is_file() { flat } else { nested };
        let mut child_path = path.clone();
        child_path.push(child);
        load(&child_file, child_path, modules)?;
    }
    Ok(())
}

/// `#[cfg(test)]` (tests may import anything).
fn is_test(attrs: &[syn::Attribute]) -> bool {
    attrs
        .iter()
        .any(|a| a.path().is_ident("cfg") && a.meta.require_list().is_ok_and(|list| list.tokens.to_string() == "test"))
}

/// Collects the module paths a file names.
struct Paths {
    current: Vec<String>,
    children: BTreeSet<String>,
    found: BTreeSet<Vec<String>>,
    imports: BTreeMap<String, Vec<String>>,
}

impl Paths {
    /// The absolute path `segments` names from the current module, if it
    /// names something of this crate.
    fn resolve(&self, segments: &[String]) -> Option<Vec<String>> {
        let first = segments.first()?;
        let mut base = match first.as_str() {
            "crate" => Vec::new(),
            "self" | "super" => self.current.clone(),
            child if self.children.contains(child) => self.current.clone(),
            _ => return None,
        };
        let mut rest = segments;
        if first == "crate" || first == "self" {
            rest = &segments[1..];
        }
        while let Some(("super", tail)) = rest.split_first().map(|(h, t)| (h.as_str(), t)) {
            base.pop();
            rest = tail;
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    fn record(&mut self, segments: Vec<String>) {
        if let Some(path) = self.resolve(&segments) {
            self.found.insert(path);
        }
    }
}

impl<'ast> Visit<'ast> for Paths {
    fn visit_item_mod(&mut self, module: &'ast syn::ItemMod) {
        if !is_test(&module.attrs) {
            syn::visit::visit_item_mod(self, module);
        }
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        let mut paths = Vec::new();
        flatten(&item.tree, Vec::new(), &mut paths);
        for (path, name) in paths {
            if let (Some(name), Some(absolute)) = (name, self.resolve(&path)) {
                self.imports.insert(name, absolute);
            }
            self.record(path);
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        self.record(path.segments.iter().map(|s| s.ident.to_string()).collect());
        syn::visit::visit_path(self, path);
    }
}

/// Every path of a `use` tree (`a::{b, c::d}` → `a::b`, `a::c::d`), with
/// the name it binds (none for a glob).
fn flatten(tree: &syn::UseTree, prefix: Vec<String>, out: &mut Vec<(Vec<String>, Option<String>)>) {
    let extend = |name: String| {
        let mut path = prefix.clone();
        path.push(name);
        path
    };
    match tree {
        syn::UseTree::Path(p) => flatten(&p.tree, extend(p.ident.to_string()), out),
        syn::UseTree::Name(n) if n.ident == "self" => {
            let name = prefix.last().cloned();
            out.push((prefix, name));
        }
        syn::UseTree::Name(n) => out.push((extend(n.ident.to_string()), Some(n.ident.to_string()))),
        syn::UseTree::Rename(r) => out.push((extend(r.ident.to_string()), Some(r.rename.to_string()))),
        syn::UseTree::Glob(_) => out.push((prefix, None)),
        syn::UseTree::Group(g) => g.items.iter().for_each(|t| flatten(t, prefix.clone(), out)),
    }
}

/// Module → the modules it depends on: where each named path is defined
/// (through the `use` items of the modules it passes: a name re-exported
/// by a facade leads to the file that defines it), without itself and
/// without its own descendants.
fn edges(modules: &BTreeMap<Vec<String>, Module>) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    modules
        .iter()
        .map(|(path, module)| {
            let targets = module
                .uses
                .iter()
                .filter_map(|used| defining_module(modules, used.clone(), 0))
                .filter(|target| !target.starts_with(path))
                .collect();
            (path.clone(), targets)
        })
        .collect()
}

/// The module that defines what `path` names: the deepest module on the
/// path, or, when the next segment is a name that module imports, where
/// that import leads.
fn defining_module(modules: &BTreeMap<Vec<String>, Module>, path: Vec<String>, depth: usize) -> Option<Vec<String>> {
    let n = (0..=path.len()).rev().find(|n| modules.contains_key(&path[..*n]))?;
    let module = path[..n].to_vec();
    if depth < 16
        && let Some(name) = path.get(n)
        && let Some(target) = modules[&module].imports.get(name)
        && *target != path[..=n]
    {
        let mut next = target.clone();
        next.extend(path[n + 1..].iter().cloned());
        return defining_module(modules, next, depth + 1).or(Some(module));
    }
    Some(module)
}

/// The strongly connected components with more than one module (Tarjan).
fn strongly_connected(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<Vec<String>>> {
    struct State<'a> {
        edges: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        on_stack: BTreeSet<&'a Vec<String>>,
        out: Vec<Vec<Vec<String>>>,
    }
    fn visit<'a>(state: &mut State<'a>, node: &'a Vec<String>) {
        let next = state.index.len();
        state.index.insert(node, next);
        state.low.insert(node, next);
        state.stack.push(node);
        state.on_stack.insert(node);
        let edges = state.edges;
        for target in &edges[node] {
            if !state.index.contains_key(target) {
                visit(state, target);
                let low = state.low[node].min(state.low[target]);
                state.low.insert(node, low);
            } else if state.on_stack.contains(target) {
                let low = state.low[node].min(state.index[target]);
                state.low.insert(node, low);
            }
        }
        if state.low[node] == state.index[node] {
            let mut component = Vec::new();
            while let Some(top) = state.stack.pop() {
                state.on_stack.remove(top);
                component.push(top.clone());
                if top == node {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                state.out.push(component);
            }
        }
    }
    let mut state = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for node in edges.keys() {
        if !state.index.contains_key(node) {
            visit(&mut state, node);
        }
    }
    state.out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
    }

    #[test]
    fn a_circle_between_two_files_is_found_and_a_facade_is_not_one() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                ("lib.rs", "mod error; mod store; pub use store::Store;"),
                ("error.rs", "use crate::store::Key; pub struct Error(Key);"),
                (
                    "store/mod.rs",
                    "mod key; pub use key::Key; pub struct Store; #[cfg(test)] mod tests { use crate::error::Error; }",
                ),
                ("store/key.rs", "pub struct Key; fn f() -> crate::error::Error { todo!() } use super::Store;"),
            ],
        );
        let circles = circles_in(&dir.path().join("lib.rs")).unwrap();
        assert_eq!(circles.len(), 1, "{circles:?}");
        assert!(
            circles[0].contains("error.rs -> store::key") && circles[0].contains("key.rs -> error"),
            "{}",
            circles[0]
        );

        // The error no longer names the store: no circle (store/mod.rs
        // re-exporting its child, which names its parent, is a facade).
        write(dir.path(), &[("error.rs", "pub struct Error;")]);
        assert!(circles_in(&dir.path().join("lib.rs")).unwrap().is_empty());
    }

    #[test]
    fn paths_in_code_count_as_well_as_use_items() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                ("lib.rs", "mod a; mod b;"),
                ("a.rs", "pub fn f() { super::b::g() }"),
                ("b.rs", "pub fn g() { crate::a::f() }"),
            ],
        );
        assert_eq!(circles_in(&dir.path().join("lib.rs")).unwrap().len(), 1);
    }

    #[test]
    fn this_workspace_has_no_circle() {
        let root = crate::workspace_root();
        for entry in CRATES {
            let circles = circles_in(&root.join(entry)).unwrap();
            assert!(circles.is_empty(), "{entry}:\n{}", circles.join("\n"));
        }
    }
}
