//! `cargo xtask codegen [--check | --accept]`: regenerate
//! `filevine-identity/src/generated.rs` from the spec, check that the
//! committed file is what the spec generates, or regenerate and refresh the
//! snapshots in one go.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use filevine_identity_codegen::{GENERATED_PATH, Generated, SPEC_PATH, Spec, diff, generate, surface_diff};

use crate::compile_check;
use crate::workspace::root as workspace_root;

/// Where the codegen snapshots live, relative to the workspace root.
const SNAPSHOTS: &str = "codegen/tests/snapshots";

/// Regenerate the client from the spec.
#[derive(Debug, clap::Args)]
pub(crate) struct Codegen {
    /// Write nothing; exit 1 with a diff if the committed file is stale, or
    /// if the spec has a warning it does not accept.
    #[arg(long, conflicts_with = "accept")]
    pub(crate) check: bool,
    /// Regenerate, then run the codegen tests with the snapshots updated
    /// (insta's INSTA_UPDATE=always; no extra tool) and list the snapshots
    /// that changed, to read before committing.
    #[arg(long)]
    pub(crate) accept: bool,
    /// Spec to read, relative to the workspace root.
    #[arg(long, value_name = "PATH", default_value = SPEC_PATH)]
    pub(crate) spec: PathBuf,
    /// File to write or check, relative to the workspace root.
    #[arg(long, value_name = "PATH", default_value = GENERATED_PATH)]
    pub(crate) out: PathBuf,
}

impl Codegen {
    pub(crate) fn run(&self) -> ExitCode {
        let root = workspace_root();
        // Labels are the paths as given (workspace-relative by default), so the
        // header does not depend on where the workspace is checked out.
        let spec_label = self.spec.to_string_lossy().replace('\\', "/");
        let out_label = self.out.to_string_lossy().replace('\\', "/");
        let spec = Spec::read(&root.join(&self.spec), spec_label.clone());
        let spec_text = spec.as_ref().map(|spec| spec.text.clone()).unwrap_or_default();
        let generated = match spec.and_then(|spec| generate(&spec)) {
            Ok(generated) => generated,
            Err(error) => {
                eprintln!("error: {error}");
                eprintln!("note: {out_label} was left untouched");
                return ExitCode::FAILURE;
            }
        };
        let warned = print_warnings(&spec_label, &generated);
        let out_path = root.join(&self.out);
        let committed = std::fs::read_to_string(&out_path).unwrap_or_default();
        if !compile_check::crates_present(&spec_label, &out_path, &root, &generated) {
            eprintln!("note: {out_label} was left untouched");
            return ExitCode::FAILURE;
        }
        if self.check {
            let status = check(&out_label, &committed, &generated, warned);
            print_accepted(&generated);
            // The committed file is the generated one: it must compile.
            if status == ExitCode::SUCCESS
                && !compile_check::compiles(&root, &out_path, &out_label, &generated, &spec_text)
            {
                return ExitCode::FAILURE;
            }
            return status;
        }
        let status = write(&out_label, &out_path, &committed, &generated);
        print_accepted(&generated);
        if status != ExitCode::SUCCESS {
            return status;
        }
        if !compile_check::compiles(&root, &out_path, &out_label, &generated, &spec_text) {
            return ExitCode::FAILURE;
        }
        if self.accept {
            return accept(&root);
        }
        if committed != generated.source {
            println!(
                "next: `cargo xtask codegen --accept` refreshes the snapshots and lists the ones to read \
                 (or run the tests and `cargo insta review`, if you have cargo-insta)"
            );
        }
        ExitCode::SUCCESS
    }
}

/// Prints the spec's unaccepted warnings; returns how many there were.
fn print_warnings(spec_label: &str, generated: &Generated) -> usize {
    for warning in &generated.warnings {
        eprintln!("warning: {spec_label}:{warning}");
    }
    generated.warnings.len()
}

/// A count of the ignored constructs the spec accepts (`x-codegen-accept`).
fn print_accepted(generated: &Generated) {
    if !generated.accepted.is_empty() {
        println!(
            "{} construct(s) the client ignores are accepted by the spec (x-codegen-accept)",
            generated.accepted.len()
        );
    }
}

fn check(out_label: &str, committed: &str, generated: &Generated, warned: usize) -> ExitCode {
    let elapsed_ms = generated.elapsed.as_secs_f64() * 1000.0;
    let stale =
        diff(&format!("{out_label} (committed)"), &format!("{out_label} (generated)"), committed, &generated.source);
    if let Some(diff) = &stale {
        print!("{diff}");
        print_surface_change(committed, &generated.source);
        eprintln!("error: {out_label} is stale: run `cargo xtask codegen --accept` and commit the result");
    } else {
        println!("{out_label} is up to date ({} lines, generated in {elapsed_ms:.0} ms)", generated.lines());
    }
    if warned > 0 {
        eprintln!(
            "error: {warned} warning(s): the generated client would ignore what they name; fix the spec, or accept \
             each with `x-codegen-accept: {{<keyword>: <why>}}` on the node that holds it"
        );
    }
    if stale.is_some() || warned > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

fn write(out_label: &str, out_path: &Path, committed: &str, generated: &Generated) -> ExitCode {
    let elapsed_ms = generated.elapsed.as_secs_f64() * 1000.0;
    if committed == generated.source {
        println!("{out_label} unchanged ({} lines, generated in {elapsed_ms:.0} ms)", generated.lines());
        return ExitCode::SUCCESS;
    }
    if let Err(error) = std::fs::write(out_path, &generated.source) {
        eprintln!("error: {out_label}: cannot write: {error}");
        return ExitCode::FAILURE;
    }
    println!("wrote {out_label} ({} lines, generated in {elapsed_ms:.0} ms)", generated.lines());
    print_surface_change(committed, &generated.source);
    ExitCode::SUCCESS
}

/// Runs the codegen snapshot tests with insta told to write what they
/// produce, then lists the snapshot files that changed.
fn accept(root: &Path) -> ExitCode {
    let before = snapshots(root);
    println!("==> cargo test -p filevine-identity-codegen --test codegen (INSTA_UPDATE=always)");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["test", "-q", "-p", "filevine-identity-codegen", "--test", "codegen"])
        .env("INSTA_UPDATE", "always")
        .current_dir(root)
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => {
            eprintln!("error: the codegen tests failed ({status}) for a reason other than a snapshot; see above");
            return ExitCode::FAILURE;
        }
        Err(error) => {
            eprintln!("error: cannot run cargo: {error}");
            return ExitCode::FAILURE;
        }
    }
    let after = snapshots(root);
    let changed: Vec<&String> =
        after.iter().filter(|(name, text)| before.get(*name) != Some(text)).map(|(name, _)| name).collect();
    if changed.is_empty() {
        println!("snapshots: none changed");
    } else {
        println!("snapshots updated; read each diff before committing:");
        for name in &changed {
            println!("  {SNAPSHOTS}/{name}");
        }
        println!("review: git diff -- {SNAPSHOTS}");
    }
    ExitCode::SUCCESS
}

/// Every snapshot file's name and text.
fn snapshots(root: &Path) -> BTreeMap<String, String> {
    let Ok(entries) = std::fs::read_dir(root.join(SNAPSHOTS)) else { return BTreeMap::new() };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".snap"))
        .filter_map(|e| Some((e.file_name().to_string_lossy().into_owned(), std::fs::read_to_string(e.path()).ok()?)))
        .collect()
}

/// What the change does to users of the generated crate, by SemVer rules.
fn print_surface_change(committed: &str, generated: &str) {
    if committed.is_empty() {
        println!("public surface: no committed file to compare with");
        return;
    }
    match surface_diff(committed, generated) {
        Ok(change) => print!("{change}"),
        // The committed file is what someone edited by hand, or a merge
        // conflict: say so, the diff above still shows everything.
        Err(error) => println!("public surface: the committed file is not valid Rust ({error}); no summary"),
    }
}
