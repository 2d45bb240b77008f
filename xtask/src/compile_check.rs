//! The generated crate must compile, and a spec that makes it not compile
//! is reported against the spec: first the crates a schema `format` needs
//! (before anything is written), then `cargo check` of the generated crate
//! alone, each error in the generated file traced to the type or method
//! that holds it and the spec node that made it.

use std::path::Path;

use filevine_identity_codegen::{Generated, locate, missing_crates};

/// The generated crate's manifest: `<crate>/src/<file>` → `<crate>/Cargo.toml`;
/// `None` for a file that is not in a crate's `src` (a scratch output: no
/// crate to check).
pub(crate) fn manifest(out_path: &Path) -> Option<std::path::PathBuf> {
    let src = out_path.parent()?;
    let manifest = src.parent()?.join("Cargo.toml");
    (src.file_name()? == "src" && manifest.is_file()).then_some(manifest)
}

/// Reports the crates a `format` needs that the generated crate's manifest
/// lacks; whether there were none.
pub(crate) fn crates_present(spec_label: &str, out_path: &Path, root: &Path, generated: &Generated) -> bool {
    let Some(manifest) = manifest(out_path) else { return true };
    let label = manifest.strip_prefix(root).unwrap_or(&manifest).to_string_lossy().replace('\\', "/");
    let text = std::fs::read_to_string(&manifest).unwrap_or_default();
    let missing = missing_crates(&generated.crates, &text, &label);
    for finding in &missing {
        eprintln!("error: {spec_label}:{finding}");
    }
    missing.is_empty()
}

/// `cargo check` of the crate the generated file belongs to; each error
/// located in the generated file is printed with its spec origin. Whether
/// it compiled.
pub(crate) fn compiles(root: &Path, out_path: &Path, out_label: &str, generated: &Generated, spec_text: &str) -> bool {
    let Some(manifest) = manifest(out_path) else { return true };
    let started = std::time::Instant::now();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command.args(["check", "--quiet", "--message-format=json", "--manifest-path"]).arg(&manifest).current_dir(root);
    // A scratch copy of the workspace (the CI's maintainer loop) checks in
    // the workspace's target directory: the dependencies are built there
    // already, and `cargo check` builds no binary it could replace.
    if let Some(dir) = std::env::var_os("FV_COMPILE_CHECK_TARGET_DIR") {
        command.arg("--target-dir").arg(dir);
    }
    let output = command.output();
    let output = match output {
        Ok(output) => output,
        Err(error) => {
            eprintln!("error: cannot run cargo check: {error}");
            return false;
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    if output.status.success() {
        println!("{out_label} compiles (cargo check of its crate: {seconds:.1} s)");
        return true;
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let errors = errors(&stdout, out_label, generated, spec_text);
    for error in &errors {
        eprintln!("error: {error}");
    }
    let reported = errors.len();
    if reported == 0 {
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
    }
    eprintln!("error: {out_label} does not compile ({reported} error(s)); fix the spec where each error points");
    false
}

/// The errors of cargo's JSON messages `stdout`, those in the generated
/// file `out_label` traced to their spec origin.
fn errors(stdout: &str, out_label: &str, generated: &Generated, spec_text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for message in stdout.lines().filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok()) {
        let Some(diagnostic) = message.get("message").filter(|_| message["reason"] == "compiler-message") else {
            continue;
        };
        if diagnostic["level"] != "error" {
            continue;
        }
        let text = diagnostic["message"].as_str().unwrap_or("error");
        let spans = diagnostic["spans"].as_array().cloned().unwrap_or_default();
        let primary = spans.iter().find(|s| s["is_primary"] == true).or(spans.first());
        let place = primary.and_then(|span| Some((span["file_name"].as_str()?, span["line_start"].as_u64()?)));
        out.push(match place {
            Some((file, line)) if file.ends_with(out_label) || out_label.ends_with(file) => {
                let line = usize::try_from(line).unwrap_or(0);
                let origin = locate(&generated.source, line, &generated.translated, spec_text)
                    .map(|origin| format!(" in {origin}"))
                    .unwrap_or_default();
                format!("{out_label}:{line}{origin}: {text}")
            }
            Some((file, line)) => format!("{file}:{line}: {text}"),
            None => text.to_owned(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A compile error in the generated file names the type that holds it
    /// and the spec line it came from.
    #[test]
    fn a_compile_error_is_traced_to_the_spec() {
        let text = "openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths: {}\ncomponents:\n  schemas:\n    Thing:\n      type: object\n      properties:\n        id: {type: string, format: uuid}\n";
        let spec = filevine_identity_codegen::Spec { label: "spec/t.yaml".into(), text: text.into() };
        let generated = filevine_identity_codegen::generate(&spec).unwrap();
        let line = generated.source.lines().position(|l| l.contains("::uuid::Uuid")).unwrap() + 1;
        let message = serde_json::json!({
            "reason": "compiler-message",
            "message": {
                "level": "error",
                "message": "cannot find `uuid` in the crate root",
                "spans": [{"file_name": "src/generated.rs", "line_start": line, "is_primary": true}],
            },
        });
        let stdout = format!("{message}\n{{\"reason\":\"build-finished\",\"success\":false}}\n");
        let errors = errors(&stdout, "x/src/generated.rs", &generated, text);
        assert_eq!(
            errors,
            [format!(
                "x/src/generated.rs:{line} in type Thing (spec line 6, /components/schemas/Thing): cannot find `uuid` in the crate root"
            )]
        );
    }
}
