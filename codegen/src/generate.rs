//! spec text → translated document → progenitor tokens → formatted Rust.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;
use std::time::{Duration, Instant};

use proc_macro2::TokenStream;
use progenitor::{GenerationSettings, Generator, HooksMode, InterfaceStyle, TagStyle, TypeImpl};
use quote::quote;
use schemars::schema::{InstanceType, SchemaObject};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::operations::operations_module;
use crate::servers::servers_module;
use crate::{load, surface, translate};

/// The exact progenitor version the workspace pins. It is written into the
/// header of the generated file; a test checks it against `Cargo.toml`.
pub const PROGENITOR_VERSION: &str = "0.15.1";

/// The command that regenerates the client, as written in the header.
pub const COMMAND: &str = "cargo xtask codegen";

/// Path of the spec, relative to the workspace root.
pub const SPEC_PATH: &str = "spec/filevine-identity.yaml";

/// Path of the generated file, relative to the workspace root.
pub const GENERATED_PATH: &str = "filevine-identity/src/generated.rs";

/// The type that secret-bearing fields (`format: password`) become. It is
/// hand-written beside the generated file, in `filevine-identity/src/secret.rs`.
pub const SECRET_TYPE: &str = "crate::SecretString";

/// progenitor's inner type of the client: the per-client settings its hooks
/// apply (discovered endpoint URLs, credentials for the operations whose
/// `security` asks for them). Hand-written in
/// `filevine-identity/src/options.rs`.
pub const INNER_TYPE: &str = "crate::ClientOptions";

/// The command that writes a gateway client crate.
pub const GATEWAY_COMMAND: &str = "filevine-codegen gateway";

/// The inner type of a gateway client: the SDK's bearer (or DPoP)
/// authorization with the user headers and the 401 → refresh → retry.
pub const GATEWAY_INNER_TYPE: &str = "filevine_identity_ext::api::BearerAuth";

/// The type of a gateway client's `format: password` fields.
pub const GATEWAY_SECRET_TYPE: &str = "filevine_identity_ext::filevine_identity::SecretString";

/// A spec to generate from: its text and the label that names it in the
/// header and in errors (a workspace-relative path, so the output does not
/// depend on where the workspace is checked out).
#[derive(Debug, Clone)]
pub struct Spec {
    /// Names the spec in errors and in the generated header.
    pub label: String,
    /// The YAML or JSON text.
    pub text: String,
}

impl Spec {
    /// Reads a spec file; `label` names it in errors and in the header.
    ///
    /// # Errors
    /// [`Error::Read`] when the file cannot be read.
    pub fn read(path: &std::path::Path, label: impl Into<String>) -> Result<Self, Error> {
        let label = label.into();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read { path: label.clone(), source })?;
        Ok(Self { label, text })
    }

    /// Lowercase hex SHA-256 of the spec text, as written in the header.
    pub fn sha256(&self) -> String {
        Sha256::digest(self.text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// What one generation produced.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The complete generated file, header included.
    pub source: String,
    /// The compact public-surface listing of `source` (see [`crate::surface::surface_listing`]).
    pub surface: String,
    /// The spec after 3.1 → 3.0 translation, as handed to progenitor.
    pub translated: Value,
    /// Time spent in translation, progenitor and prettyplease.
    pub elapsed: Duration,
    /// What the generated client ignores and the spec does not accept
    /// (`x-codegen-accept`); `cargo xtask codegen --check` fails on them.
    pub warnings: Vec<crate::lint::Finding>,
    /// Warnings the spec accepts: JSON pointer and the spec's reason.
    pub accepted: Vec<(String, String)>,
    /// The crates the generated code names for a schema `format` (the
    /// generated crate must depend on them: [`crate::crates::missing`]).
    pub crates: Vec<crate::crates::CrateUse>,
    /// What the gateway preparation changed in the description (empty for
    /// the identity crate).
    pub adjustments: Vec<crate::gateway::Adjustment>,
}

impl Generated {
    /// Number of lines in the generated file.
    pub fn lines(&self) -> usize {
        self.source.lines().count()
    }
}

/// Generates the client from a spec, in memory. Writes nothing.
///
/// # Errors
/// Every failure is an [`Error`] that names the spec and, where there is one,
/// the location: invalid YAML, an untranslatable 3.1 construct, an invalid
/// OpenAPI document, or progenitor failing or panicking.
///
/// # Example
/// ```
/// let spec = filevine_identity_codegen::Spec {
///     label: "spec/mini.yaml".into(),
///     text: r#"
/// openapi: 3.1.0
/// info: {title: Mini, version: '1'}
/// paths:
///   /ping:
///     get:
///       operationId: ping
///       responses:
///         '200':
///           description: ok
///           content:
///             application/json:
///               schema: {type: [string, 'null']}
/// "#.into(),
/// };
/// let generated = filevine_identity_codegen::generate(&spec).unwrap();
/// assert!(generated.source.starts_with("// @generated by `cargo xtask codegen`. DO NOT EDIT."));
/// assert!(generated.surface.contains("fn ping"));
/// ```
pub fn generate(spec: &Spec) -> Result<Generated, Error> {
    generate_for(spec, Target::Identity)
}

/// What a generated client is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// This workspace's `filevine-identity` crate: the operations and
    /// servers tables, `ClientOptions` as the inner type.
    Identity,
    /// An integrator's client of the Filevine API gateway: the SDK's
    /// `BearerAuth` as the inner type, the description prepared for the
    /// gateway's own shapes (see [`crate::gateway`]), and no tables.
    Gateway,
}

/// [`generate`] for `target`.
///
/// # Errors
/// As [`generate`].
pub fn generate_for(spec: &Spec, target: Target) -> Result<Generated, Error> {
    let started = Instant::now();
    let mut raw = load::parse(&spec.label, &spec.text)?;
    let mut adjustments = Vec::new();
    if let Some(version) = raw.get("swagger") {
        let version = version.as_str().map_or_else(|| version.to_string(), str::to_owned);
        // The gateway's description is published as Swagger 2.0: the
        // gateway command converts it; the identity spec is 3.1 by rule.
        if target == Target::Identity || version != "2.0" {
            return Err(Error::Swagger2 { path: spec.label.clone(), version });
        }
        raw = crate::swagger2::convert(&raw).map_err(|e| Error::Unsupported {
            path: spec.label.clone(),
            pointer: e.pointer,
            reason: format!("{} cannot be converted from Swagger 2.0", e.reason),
        })?;
        adjustments.push(crate::gateway::Adjustment {
            pointer: "/swagger".into(),
            what: "Swagger 2.0, converted to OpenAPI 3.0.3 (definitions, parameters, responses and security \
                   definitions to components; body and form parameters to request bodies)"
                .into(),
            no_content_as_null: None,
            renamed_path: None,
        });
    }
    if target == Target::Gateway {
        adjustments.extend(crate::gateway::prepare(&mut raw));
    }
    // The lint places problems by looking their pointers up in the text: a
    // path the preparation renamed is looked up under its new spelling.
    let mut text = std::borrow::Cow::Borrowed(spec.text.as_str());
    for (from, to) in adjustments.iter().filter_map(|a| a.renamed_path.as_ref()) {
        text = std::borrow::Cow::Owned(text.replace(from.as_str(), to));
    }
    let findings = crate::lint::check(&text, &raw);
    if !findings.problems.is_empty() {
        // In the order of the file: the way a maintainer walks through it.
        let mut problems = findings.problems;
        problems.sort_by(|a, b| (a.line, &a.pointer).cmp(&(b.line, &b.pointer)));
        return Err(Error::Spec { path: spec.label.clone(), problems });
    }
    let translated =
        translate::translate(raw).map_err(|source| Error::Translate { path: spec.label.clone(), source })?;
    let openapi = to_openapiv3(&spec.label, &translated)?;
    let (servers, operations) = match target {
        Target::Identity => (servers_module(&spec.label, &translated)?, operations_module(&spec.label, &translated)?),
        Target::Gateway => (TokenStream::new(), TokenStream::new()),
    };
    let client = match run_progenitor(&spec.label, &openapi, target) {
        Err(Error::ProgenitorPanic { path, message, .. }) => {
            let culprits = panicking_operations(&spec.text, &translated, target);
            return Err(Error::ProgenitorPanic { path, message, culprits });
        }
        other => other?,
    };

    let tokens = quote! {
        #client
        #operations
        #servers
    };
    let mut file: syn::File =
        syn::parse2(tokens).map_err(|e| Error::InvalidRust { path: spec.label.clone(), message: e.to_string() })?;
    crate::non_exhaustive::mark_response_structs(&mut file);
    crate::api_version::drop_api_version(&mut file);
    let body = prettyplease::unparse(&file);
    let source = format!("{}{body}", header(spec, target));
    let lines = crate::lint::Lines::new(&spec.text);
    let crates = crate::crates::used(&source, &translated, &|pointer| lines.line_of(pointer));
    let elapsed = started.elapsed();
    Ok(Generated {
        crates,
        surface: surface::surface_listing(&file),
        source,
        translated,
        elapsed,
        warnings: findings.warnings,
        accepted: findings.accepted,
        adjustments,
    })
}

/// The do-not-edit header. Deterministic: no timestamps, no absolute paths.
fn header(spec: &Spec, target: Target) -> String {
    let command = match target {
        Target::Identity => COMMAND,
        Target::Gateway => GATEWAY_COMMAND,
    };
    format!(
        "// @generated by `{command}`. DO NOT EDIT.\n\
         //\n\
         // Source:    {label}\n\
         // SHA-256:   {sha}\n\
         // Generator: progenitor {PROGENITOR_VERSION} (positional interface), formatted by prettyplease\n\
         //\n\
         // To change this file, edit the spec and run `{command}`; see ARCHITECTURE.md.\n\n",
        label = spec.label,
        sha = spec.sha256(),
    )
}

/// Deserializes the translated value into `openapiv3`, naming the JSON
/// pointer of the first field it rejects.
fn to_openapiv3(label: &str, translated: &Value) -> Result<openapiv3::OpenAPI, Error> {
    serde_path_to_error::deserialize(translated).map_err(|e| {
        let pointer: String = e
            .path()
            .iter()
            .filter_map(|segment| match segment {
                serde_path_to_error::Segment::Seq { index } => Some(format!("/{index}")),
                serde_path_to_error::Segment::Map { key } => {
                    Some(format!("/{}", key.replace('~', "~0").replace('/', "~1")))
                }
                serde_path_to_error::Segment::Enum { .. } | serde_path_to_error::Segment::Unknown => None,
            })
            .collect();
        Error::OpenApi {
            path: label.to_owned(),
            pointer: if pointer.is_empty() { "/".to_owned() } else { pointer },
            message: e.inner().to_string(),
        }
    })
}

/// The progenitor settings. Each one is explained in ARCHITECTURE.md.
fn settings(target: Target) -> GenerationSettings {
    let secret_schema = SchemaObject {
        instance_type: Some(InstanceType::String.into()),
        format: Some("password".to_owned()),
        ..SchemaObject::default()
    };
    let (inner, secret) = match target {
        Target::Identity => (INNER_TYPE, SECRET_TYPE),
        Target::Gateway => (GATEWAY_INNER_TYPE, GATEWAY_SECRET_TYPE),
    };
    let inner_type: TokenStream = inner.parse().unwrap_or_default();
    let mut settings = GenerationSettings::new();
    settings
        .with_interface(InterfaceStyle::Positional)
        .with_tag(TagStyle::Merged)
        .with_derive("PartialEq")
        .with_inner_type(inner_type)
        // filevine-identity/src/hooks.rs implements ClientHooks: `pre`
        // applies the operation's security and endpoint, `exec` bounds every
        // response body. Expected makes a missing impl a compile error
        // instead of a silent fallback to progenitor's defaults.
        .with_hooks(HooksMode::Expected)
        .with_conversion(secret_schema, secret, [TypeImpl::Display, TypeImpl::FromStr].into_iter());
    settings
}

thread_local! {
    /// Set while this thread runs progenitor; the panic hook records the
    /// message here instead of printing it.
    static CAPTURED_PANIC: RefCell<Option<Option<String>>> = const { RefCell::new(None) };
}

/// Installs (once per process) a panic hook that captures panics raised on a
/// thread that is running progenitor, and defers to the previous hook for
/// every other panic.
fn install_panic_capture() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let captured = CAPTURED_PANIC.with(|slot| {
                let mut slot = slot.borrow_mut();
                match slot.as_mut() {
                    Some(message) => {
                        let payload = info
                            .payload()
                            .downcast_ref::<&str>()
                            .map(|s| (*s).to_owned())
                            .or_else(|| info.payload().downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "unknown panic payload".to_owned());
                        let location = info
                            .location()
                            .map(|l| format!(" (at {}:{})", crate_relative(l.file()), l.line()))
                            .unwrap_or_default();
                        *message = Some(format!("{payload}{location}"));
                        true
                    }
                    None => false,
                }
            });
            if !captured {
                previous(info);
            }
        }));
    });
}

/// The operations of `doc` that make progenitor panic when each is
/// generated alone (with every schema): `line: pointer (operation `id`):
/// panic message`. A maintainer never bisects a spec by hand.
fn panicking_operations(text: &str, doc: &Value, target: Target) -> Vec<String> {
    let lines = crate::lint::Lines::new(text);
    let mut culprits = Vec::new();
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else { return culprits };
    for (path, item) in paths {
        let Some(item) = item.as_object() else { continue };
        for (method, operation) in item {
            if !operation.is_object() || matches!(method.as_str(), "parameters" | "servers" | "summary" | "description")
            {
                continue;
            }
            // The path with this operation only (its shared parameters kept).
            let mut alone = item.clone();
            alone.retain(|key, _| key == method || !crate::lint::is_method(key));
            let mut single = doc.clone();
            single["paths"] = serde_json::json!({ path: Value::Object(alone) });
            let Ok(openapi) = serde_json::from_value::<openapiv3::OpenAPI>(single) else { continue };
            if let Err(Error::ProgenitorPanic { message, .. }) = run_progenitor("", &openapi, target) {
                let pointer = format!("/paths/{}/{method}", path.replace('~', "~0").replace('/', "~1"));
                let id = operation.get("operationId").and_then(Value::as_str).unwrap_or("?");
                culprits.push(format!("{}: {pointer} (operation `{id}`): {message}", lines.line_of(&pointer)));
            }
        }
    }
    culprits
}

/// A source path in cargo's registry from the crate's directory on
/// (`progenitor-impl-0.15.1/src/method.rs`): the same on every machine.
fn crate_relative(file: &str) -> &str {
    match file.find("/registry/src/") {
        Some(at) => {
            let rest = &file[at + "/registry/src/".len()..];
            rest.split_once('/').map_or(rest, |(_, in_crate)| in_crate)
        }
        None => file,
    }
}

/// Runs progenitor under `catch_unwind`: it panics (asserts, `todo!`) on
/// constructs it does not support, and that must be a readable error.
fn run_progenitor(label: &str, openapi: &openapiv3::OpenAPI, target: Target) -> Result<TokenStream, Error> {
    install_panic_capture();
    CAPTURED_PANIC.with(|slot| *slot.borrow_mut() = Some(None));
    let result = panic::catch_unwind(AssertUnwindSafe(|| Generator::new(&settings(target)).generate_tokens(openapi)));
    let captured = CAPTURED_PANIC.with(|slot| slot.borrow_mut().take()).flatten();
    match result {
        Ok(Ok(tokens)) => Ok(tokens),
        Ok(Err(e)) => Err(Error::Progenitor { path: label.to_owned(), message: e.to_string() }),
        Err(_) => Err(Error::ProgenitorPanic {
            path: label.to_owned(),
            message: captured.unwrap_or_else(|| "no message".to_owned()),
            culprits: Vec::new(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_spec_hash_command_and_version() {
        let spec = Spec { label: "spec/a.yaml".into(), text: "abc".into() };
        let header = header(&spec, Target::Identity);
        assert!(header.contains("DO NOT EDIT"));
        assert!(header.contains("Source:    spec/a.yaml"));
        // SHA-256("abc")
        assert!(header.contains("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
        assert!(header.contains("`cargo xtask codegen`"));
        assert!(header.contains(&format!("progenitor {PROGENITOR_VERSION}")));
    }

    #[test]
    fn pinned_version_matches_the_workspace_manifest() {
        let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml")).unwrap();
        let pin = format!("progenitor = {{ version = \"={PROGENITOR_VERSION}\"");
        assert!(manifest.contains(&pin), "Cargo.toml must pin {pin}");
    }

    #[test]
    fn inner_type_path_parses() {
        assert!(!INNER_TYPE.parse::<TokenStream>().unwrap().is_empty());
    }
}
