//! Code generation for the Filevine Identity SDK.
//!
//! The pipeline, one module per step:
//!
//! 1. **load** — the spec file (YAML or JSON) becomes a `serde_json::Value`.
//! 2. **[`translate`]** — OpenAPI 3.1 is brought to 3.0.3 on that raw value,
//!    because progenitor reads documents through `openapiv3`, which only
//!    models 3.0 and silently drops 3.1 keywords.
//! 3. **[`generate`]** — progenitor turns the document into tokens (under
//!    `catch_unwind`: it panics on constructs it does not support), the
//!    `operations` and `servers` tables are added, structs only responses
//!    carry are marked `#[non_exhaustive]`, prettyplease formats them, and
//!    a do-not-edit header naming the spec and its SHA-256 is prepended.
//! 4. **[`surface_listing`]** — a compact listing of the public surface, for
//!    reviewers and for the insta snapshot.
//! 5. **[`diff`]** — the unified diff `cargo xtask codegen --check` prints.
//! 6. **[`surface_diff`]** — what the change does to users by Rust's SemVer
//!    rules: added / removed / changed public items and a verdict.
//!
//! Maintainers do not call this crate directly; they run `cargo xtask
//! codegen`. See `ARCHITECTURE.md` at the workspace root.
//!
//! ```
//! use filevine_identity_codegen::{Spec, generate, diff};
//!
//! let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
//! let spec = Spec::read(&std::path::Path::new(root).join("spec/filevine-identity.yaml"),
//!                       "spec/filevine-identity.yaml").unwrap();
//! let generated = generate(&spec).unwrap();
//! let committed = std::fs::read_to_string(
//!     std::path::Path::new(root).join("filevine-identity/src/generated.rs")).unwrap();
//! // `None`: the committed file is up to date.
//! assert_eq!(diff("committed", "generated", &committed, &generated.source), None);
//! ```

#![cfg_attr(not(test), warn(clippy::unwrap_used))]
#![warn(missing_docs)]

mod api_version;
mod client_crate;
mod crates;
mod diff;
mod error;
pub mod gateway;
mod generate;
mod lint;
mod load;
mod locate;
mod non_exhaustive;
mod operations;
mod public;
mod semver;
mod servers;
mod surface;
mod swagger2;
pub mod translate;
mod translate_error;
mod walk;

pub use client_crate::{ClientCrate, CrateOptions, SdkSource, gateway_crate};
pub use crates::{CrateUse, missing as missing_crates};
pub use diff::diff;
pub use error::Error;
pub use generate::{
    COMMAND, GATEWAY_COMMAND, GATEWAY_INNER_TYPE, GATEWAY_SECRET_TYPE, GENERATED_PATH, Generated, INNER_TYPE,
    PROGENITOR_VERSION, SECRET_TYPE, SPEC_PATH, Spec, Target, generate, generate_for,
};
pub use lint::{Finding, Findings};
pub use locate::{Origin, locate};
pub use semver::{Change, Impact, SurfaceDiff, surface_diff};
pub use surface::surface_listing;
