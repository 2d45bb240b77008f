//! `cargo xtask cycles`: fails when the files of a crate import each other
//! in a circle, so the floors ARCHITECTURE.md draws stay true.
//!
//! The graph is read with `syn` from the source (no build): one node per
//! module file, one edge per path a file names into another — `use` items
//! and paths in code alike (`crate::…`, `super::…`, `self::…`, or a child
//! module's name) — outside code that only exists under test (any item
//! whose `cfg` needs `test`: `cfg(test)`, `cfg(all(test, …))`). A module's
//! `pub use` of what its own descendants define makes it their facade, not
//! their dependant: those re-exports are the only edges that do not count.
//! Anything else a module names of its children (a private `use`, a path
//! in its code) is a dependency like any other, so a `mod.rs` that uses a
//! child which uses it back is a circle. Every circle is printed, each file
//! with the files of the circle it imports.

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
    /// What its `pub use` items (of any `pub` visibility) re-export.
    reexports: BTreeSet<Vec<String>>,
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
    let mut visitor = Paths {
        current: path.clone(),
        children: BTreeSet::new(),
        found: BTreeSet::new(),
        reexports: BTreeSet::new(),
        imports: BTreeMap::new(),
    };
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
    let module =
        Module { file: file.to_owned(), uses: visitor.found, reexports: visitor.reexports, imports: visitor.imports };
    modules.insert(path.clone(), module);
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

/// Whether the item exists only under test (tests may import anything):
/// a `cfg` that needs `test` to hold.
fn is_test(attrs: &[syn::Attribute]) -> bool {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("cfg"))
        .any(|a| a.parse_args::<syn::Meta>().is_ok_and(|predicate| needs_test(&predicate)))
}

/// Whether a `cfg` predicate can hold only under `test`: `test`, an
/// `all(…)` with such a member, an `any(…)` whose members all are.
fn needs_test(predicate: &syn::Meta) -> bool {
    let members = |list: &syn::MetaList| {
        list.parse_args_with(syn::punctuated::Punctuated::<syn::Meta, syn::Token![,]>::parse_terminated)
            .map(|members| members.into_iter().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    match predicate {
        syn::Meta::Path(path) => path.is_ident("test"),
        syn::Meta::List(list) if list.path.is_ident("all") => members(list).iter().any(needs_test),
        syn::Meta::List(list) if list.path.is_ident("any") => {
            let members = members(list);
            !members.is_empty() && members.iter().all(needs_test)
        }
        _ => false,
    }
}

/// Collects the module paths a file names.
struct Paths {
    current: Vec<String>,
    children: BTreeSet<String>,
    found: BTreeSet<Vec<String>>,
    reexports: BTreeSet<Vec<String>>,
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
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs = match item {
            syn::Item::Const(i) => &i.attrs,
            syn::Item::Enum(i) => &i.attrs,
            syn::Item::Fn(i) => &i.attrs,
            syn::Item::Impl(i) => &i.attrs,
            syn::Item::Macro(i) => &i.attrs,
            syn::Item::Mod(i) => &i.attrs,
            syn::Item::Static(i) => &i.attrs,
            syn::Item::Struct(i) => &i.attrs,
            syn::Item::Trait(i) => &i.attrs,
            syn::Item::Type(i) => &i.attrs,
            syn::Item::Use(i) => &i.attrs,
            _ => return syn::visit::visit_item(self, item),
        };
        if !is_test(attrs) {
            syn::visit::visit_item(self, item);
        }
    }

    /// An inline module's paths are relative to it (`super::` inside
    /// `mod system { … }` of `time.rs` is `time`).
    fn visit_item_mod(&mut self, module: &'ast syn::ItemMod) {
        if module.content.is_some() {
            self.current.push(module.ident.to_string());
            let children = std::mem::take(&mut self.children);
            syn::visit::visit_item_mod(self, module);
            self.children = children;
            self.current.pop();
        }
    }

    /// `pub(crate)`, `pub(super)`, `pub(in …)` name where an item is seen,
    /// not what it uses.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    fn visit_impl_item_fn(&mut self, function: &'ast syn::ImplItemFn) {
        if !is_test(&function.attrs) {
            syn::visit::visit_impl_item_fn(self, function);
        }
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        let mut paths = Vec::new();
        flatten(&item.tree, Vec::new(), &mut paths);
        let reexport = !matches!(item.vis, syn::Visibility::Inherited);
        for (path, name) in paths {
            let absolute = self.resolve(&path);
            if let (Some(name), Some(absolute)) = (name, &absolute) {
                self.imports.insert(name, absolute.clone());
            }
            match absolute {
                Some(absolute) if reexport => drop(self.reexports.insert(absolute)),
                _ => self.record(path),
            }
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

/// Module → the modules it depends on: where each named path is defined,
/// and every module whose `use` item the path passes on the way (a name
/// reached through a facade depends on the facade too: one spelling, the
/// defining module's path, depends on that module only). Never itself. A
/// module's `pub use` of its own descendants makes it their facade and is
/// no edge (except at the crate root, the front door, which depends on all
/// it re-exports); a `pub use` of another branch is one (the module's users
/// reach that branch through it).
fn edges(modules: &BTreeMap<Vec<String>, Module>) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    modules
        .iter()
        .map(|(path, module)| {
            let mut targets = BTreeSet::new();
            for used in &module.uses {
                targets.extend(passed_modules(modules, used.clone()));
            }
            for reexported in &module.reexports {
                let passed = passed_modules(modules, reexported.clone());
                // The crate root is the front door, on top: it depends on
                // what it re-exports, so a module that imports through it
                // closes a circle.
                targets.extend(passed.into_iter().filter(|target| path.is_empty() || !target.starts_with(path)));
            }
            targets.remove(path);
            (path.clone(), targets)
        })
        .collect()
}

/// The modules `path` depends on: the one that defines what it names and
/// every module whose imports lead there.
fn passed_modules(modules: &BTreeMap<Vec<String>, Module>, mut path: Vec<String>) -> Vec<Vec<String>> {
    let mut passed = Vec::new();
    for _ in 0..16 {
        let Some(n) = (0..=path.len()).rev().find(|n| modules.contains_key(&path[..*n])) else { break };
        let module = path[..n].to_vec();
        let next = path.get(n).and_then(|name| modules[&module].imports.get(name)).filter(|t| **t != path[..=n]);
        passed.push(module);
        let Some(target) = next else { break };
        let mut rest = target.clone();
        rest.extend(path[n + 1..].iter().cloned());
        path = rest;
    }
    passed
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
    fn a_module_root_that_uses_a_child_which_uses_it_back_is_a_circle() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                ("lib.rs", "mod provider;"),
                ("provider/mod.rs", "mod flight; use flight::Flight; pub struct Inner(Flight);"),
                ("provider/flight.rs", "pub struct Flight; fn f(_: &super::Inner) {}"),
            ],
        );
        let circles = circles_in(&dir.path().join("lib.rs")).unwrap();
        assert_eq!(circles.len(), 1, "{circles:?}");
        assert!(circles[0].contains("mod.rs -> provider::flight"), "{}", circles[0]);
        // Only a re-export: a facade, no circle.
        write(dir.path(), &[("provider/mod.rs", "mod flight; pub use flight::Flight; pub struct Inner;")]);
        assert!(circles_in(&dir.path().join("lib.rs")).unwrap().is_empty());
        // `pub(crate) use` is a re-export too.
        write(dir.path(), &[("provider/mod.rs", "mod flight; pub(crate) use flight::Flight; pub struct Inner;")]);
        assert!(circles_in(&dir.path().join("lib.rs")).unwrap().is_empty());
    }

    #[test]
    fn a_name_reached_through_the_crate_root_depends_on_the_root() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                ("lib.rs", "mod error; mod store; pub use error::Error; pub use store::Store;"),
                ("error.rs", "pub struct Error;"),
                ("store.rs", "pub struct Store(crate::Error);"),
            ],
        );
        let circles = circles_in(&dir.path().join("lib.rs")).unwrap();
        assert_eq!(circles.len(), 1, "{circles:?}");
        assert!(circles[0].contains("store.rs -> crate"), "{}", circles[0]);
        // The defining module's path: no circle.
        write(dir.path(), &[("store.rs", "pub struct Store(crate::error::Error);")]);
        assert!(circles_in(&dir.path().join("lib.rs")).unwrap().is_empty());
    }

    #[test]
    fn code_that_needs_test_is_test_code() {
        let dir = tempfile::tempdir().unwrap();
        let files = |cfg: &str| {
            vec![
                ("lib.rs".to_owned(), "mod a; mod b;".to_owned()),
                ("a.rs".to_owned(), "pub fn f() { crate::b::g() }".to_owned()),
                ("b.rs".to_owned(), format!("pub fn g() {{}} #[cfg({cfg})] fn t() {{ crate::a::f() }}")),
            ]
        };
        for (cfg, circle) in [
            ("test", false),
            ("all(test, feature = \"x\")", false),
            ("any(test, test)", false),
            ("any(test, fuzzing)", true),
            ("feature = \"test-util\"", true),
            ("not(test)", true),
        ] {
            for (name, text) in files(cfg) {
                write(dir.path(), &[(name.as_str(), text.as_str())]);
            }
            let circles = circles_in(&dir.path().join("lib.rs")).unwrap();
            assert_eq!(!circles.is_empty(), circle, "cfg({cfg}): {circles:?}");
        }
        // A test-only use item, and a test-only method in an impl.
        write(dir.path(), &[("b.rs", "pub fn g() {} #[cfg(all(test, unix))] use crate::a::f;")]);
        assert!(circles_in(&dir.path().join("lib.rs")).unwrap().is_empty());
        write(dir.path(), &[("b.rs", "pub fn g() {} struct S; impl S { #[cfg(test)] fn t() { crate::a::f() } }")]);
        assert!(circles_in(&dir.path().join("lib.rs")).unwrap().is_empty());
    }

    #[test]
    fn paths_in_an_inline_module_are_relative_to_it() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                ("lib.rs", "mod a; mod b; pub use a::A;"),
                ("a.rs", "pub struct A; mod inner { fn f(_: super::A) {} }"),
                ("b.rs", "fn g(_: crate::a::A) {}"),
            ],
        );
        assert!(circles_in(&dir.path().join("lib.rs")).unwrap().is_empty());
    }

    #[test]
    fn this_workspace_has_no_circle() {
        let root = crate::workspace::root();
        for entry in CRATES {
            let circles = circles_in(&root.join(entry)).unwrap();
            assert!(circles.is_empty(), "{entry}:\n{}", circles.join("\n"));
        }
    }
}
