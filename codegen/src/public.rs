//! The generated file's public items: the one walk that the surface listing
//! (`surface.rs`) and the SemVer verdict (`semver.rs`) both read, so they
//! can never disagree about what is public.

use syn::{Item, Visibility};

/// `pub` (not `pub(crate)` or private).
pub(crate) fn is_public(vis: &Visibility) -> bool {
    matches!(vis, Visibility::Public(_))
}

/// Calls `visit` with every item of `items` and of the public inline
/// modules among them, each with its module's path prefix (`types::`; empty
/// at the root). Modules themselves are not visited; private ones are not
/// entered.
pub(crate) fn walk<'a>(items: &'a [Item], prefix: &str, visit: &mut impl FnMut(&'a Item, &str)) {
    for item in items {
        match item {
            Item::Mod(module) => {
                if is_public(&module.vis)
                    && let Some((_, inner)) = &module.content
                {
                    walk(inner, &format!("{prefix}{}::", module.ident), visit);
                }
            }
            other => visit(other, prefix),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn walks_public_modules_only_with_their_prefix() {
        let file: syn::File = syn::parse_str(
            "pub struct A; pub mod types { pub struct B; pub mod deep { pub struct C; } } mod hidden { pub struct D; }",
        )
        .unwrap();
        let mut seen = Vec::new();
        super::walk(&file.items, "", &mut |item, prefix| {
            if let syn::Item::Struct(s) = item {
                seen.push(format!("{prefix}{}", s.ident));
            }
        });
        assert_eq!(seen, ["A", "types::B", "types::deep::C"]);
    }
}
