//! `cargo xtask codegen [--check]`: regenerate
//! `filevine-identity/src/generated.rs` from the spec, or check that the
//! committed file is what the spec generates.

use std::path::PathBuf;
use std::process::ExitCode;

use filevine_identity_codegen::{GENERATED_PATH, SPEC_PATH, Spec, diff, generate, surface_diff};

use crate::workspace_root;

/// Regenerate the client from the spec.
#[derive(Debug, clap::Args)]
pub(crate) struct Codegen {
    /// Write nothing; exit 1 and print a diff if the committed file is stale.
    #[arg(long)]
    pub(crate) check: bool,
    /// Spec to read, relative to the workspace root.
    #[arg(long, value_name = "PATH", default_value = SPEC_PATH)]
    pub(crate) spec: PathBuf,
    /// File to write or check, relative to the workspace root.
    #[arg(long, value_name = "PATH", default_value = GENERATED_PATH)]
    pub(crate) out: PathBuf,
}

impl Codegen {
    pub(crate) fn run(&self) -> ExitCode {
        let codegen = self;
        let root = workspace_root();
        // Labels are the paths as given (workspace-relative by default), so the
        // header does not depend on where the workspace is checked out.
        let spec_label = codegen.spec.to_string_lossy().replace('\\', "/");
        let out_label = codegen.out.to_string_lossy().replace('\\', "/");
        let generated = match Spec::read(&root.join(&codegen.spec), spec_label).and_then(|spec| generate(&spec)) {
            Ok(generated) => generated,
            Err(error) => {
                eprintln!("error: {error}");
                eprintln!("note: {out_label} was left untouched");
                return ExitCode::FAILURE;
            }
        };
        let out_path = root.join(&codegen.out);
        let committed = std::fs::read_to_string(&out_path).unwrap_or_default();
        let elapsed_ms = generated.elapsed.as_secs_f64() * 1000.0;

        if codegen.check {
            return match diff(
                &format!("{out_label} (committed)"),
                &format!("{out_label} (generated)"),
                &committed,
                &generated.source,
            ) {
                None => {
                    println!(
                        "{out_label} is up to date ({} lines, generated in {elapsed_ms:.0} ms)",
                        generated.lines()
                    );
                    ExitCode::SUCCESS
                }
                Some(diff) => {
                    print!("{diff}");
                    print_surface_change(&committed, &generated.source);
                    eprintln!("error: {out_label} is stale: run `cargo xtask codegen` and commit the result");
                    ExitCode::FAILURE
                }
            };
        }

        if committed == generated.source {
            println!("{out_label} unchanged ({} lines, generated in {elapsed_ms:.0} ms)", generated.lines());
            return ExitCode::SUCCESS;
        }
        if let Err(error) = std::fs::write(&out_path, &generated.source) {
            eprintln!("error: {out_label}: cannot write: {error}");
            return ExitCode::FAILURE;
        }
        println!("wrote {out_label} ({} lines, generated in {elapsed_ms:.0} ms)", generated.lines());
        print_surface_change(&committed, &generated.source);
        println!("next: `cargo insta review` to read the snapshot changes, then commit");
        ExitCode::SUCCESS
    }
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
