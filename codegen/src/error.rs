//! The one error type of code generation. Every variant names the spec file;
//! where there is a location it names that too (line and column for syntax,
//! a JSON pointer for structure).

use crate::translate::TranslateError;

/// Why code generation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The spec file could not be read.
    #[error("{path}: cannot read the spec: {source}")]
    Read {
        /// The spec file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The spec is not valid YAML or JSON.
    #[error("{path}:{line}:{column}: invalid {format}: {message}")]
    Syntax {
        /// The spec file.
        path: String,
        /// 1-based line (0 when the parser gave none).
        line: usize,
        /// 1-based column (0 when the parser gave none).
        column: usize,
        /// `"YAML"` or `"JSON"`.
        format: &'static str,
        /// The parser's message.
        message: String,
    },
    /// Constructs progenitor cannot generate, found before it runs: all of
    /// them, each with its operation, JSON pointer, line and fix.
    #[error("{}", render_problems(path, problems))]
    Spec {
        /// The spec file.
        path: String,
        /// Every problem found.
        problems: Vec<crate::lint::Finding>,
    },
    /// A Swagger 2.0 (OpenAPI 2) document: the generator reads OpenAPI 3.
    #[error(
        "{path}: this is a Swagger 2.0 document (`swagger: \"{version}\"`); the generator reads OpenAPI 3.0 and 3.1. \
         Convert it first, e.g. with the npm package swagger2openapi: \
         `npx swagger2openapi --yaml --outfile openapi.yaml {path}`, then generate from openapi.yaml \
         (and fix what the generator then reports)"
    )]
    Swagger2 {
        /// The spec file.
        path: String,
        /// The `swagger` field's value.
        version: String,
    },
    /// A construct the generator does not support.
    #[error("{path}: at {pointer}: {reason}")]
    Unsupported {
        /// The spec file.
        path: String,
        /// JSON pointer of the construct.
        pointer: String,
        /// What is wrong.
        reason: String,
    },
    /// A 3.1 construct that cannot be translated to 3.0 faithfully.
    #[error("{path}: cannot translate OpenAPI 3.1 to 3.0: {source}")]
    Translate {
        /// The spec file.
        path: String,
        /// Where and why.
        #[source]
        source: TranslateError,
    },
    /// The (translated) document is not a valid OpenAPI 3.0 document.
    #[error("{path}: not a valid OpenAPI document: at {pointer}: {message}")]
    OpenApi {
        /// The spec file.
        path: String,
        /// JSON pointer of the offending node.
        pointer: String,
        /// The deserializer's message.
        message: String,
    },
    /// progenitor returned an error.
    #[error("{path}: progenitor could not generate the client: {message}")]
    Progenitor {
        /// The spec file.
        path: String,
        /// progenitor's message.
        message: String,
    },
    /// progenitor panicked (it asserts on constructs it does not support)
    /// on a construct the checks before it (`lint.rs`) do not know. The
    /// codegen generates each operation alone to find the ones that cause
    /// it.
    #[error("{}", render_panic(path, message, culprits))]
    ProgenitorPanic {
        /// The spec file.
        path: String,
        /// The panic message and location.
        message: String,
        /// The operations that panic when generated alone: `line: pointer
        /// (operation `id`): panic message`. Empty when none does alone
        /// (the panic comes from operations together, or from the schemas).
        culprits: Vec<String>,
    },
    /// The generated tokens are not a valid Rust file (a generator bug).
    #[error("{path}: the generated code is not valid Rust: {message}")]
    InvalidRust {
        /// The spec file.
        path: String,
        /// syn's message.
        message: String,
    },
}

fn render_panic(path: &str, message: &str, culprits: &[String]) -> String {
    let mut out = format!("{path}: progenitor panicked while generating the client: {message}");
    if culprits.is_empty() {
        out.push_str(
            "\nnote: no operation panics when generated alone: the cause is in the schemas or in operations together",
        );
    } else {
        out.push_str(&format!("\n{} operation(s) panic when generated alone:", culprits.len()));
        for culprit in culprits {
            out.push_str(&format!("\n  {path}:{culprit}"));
        }
    }
    out.push_str(
        "\nnote: the codegen's checks do not know this construct yet; fix it there, then add a check that names it \
         to codegen/src/lint.rs",
    );
    out
}

fn render_problems(path: &str, problems: &[crate::lint::Finding]) -> String {
    let mut out = format!("{path}: {} problem(s) the generator cannot handle:", problems.len());
    for problem in problems {
        out.push_str(&format!("\n  {path}:{problem}"));
    }
    out
}
