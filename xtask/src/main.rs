//! `cargo xtask` — the one entry point for maintenance tasks.
//!
//! ```text
//! cargo xtask codegen            regenerate filevine-identity/src/generated.rs from the spec
//! cargo xtask codegen --check    write nothing; exit 1 with a diff if the committed file is stale
//! cargo xtask test [ARGS]        install the test OpenID provider (npm ci), then cargo test --workspace [ARGS]
//! ```
//!
//! `--spec PATH` and `--out PATH` point at another spec or output file
//! (relative to the workspace root); tests use them, maintainers rarely need
//! them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use filevine_identity_codegen::{GENERATED_PATH, SPEC_PATH, Spec, diff, generate};

const USAGE: &str = "\
usage: cargo xtask codegen [--check] [--spec PATH] [--out PATH]
       cargo xtask test [CARGO TEST ARGS]

  codegen            regenerate the client from the spec
    --check          write nothing; exit 1 and print a diff if the committed file is stale
    --spec PATH      spec to read (default: spec/filevine-identity.yaml)
    --out PATH       file to write or check (default: filevine-identity/src/generated.rs)

  test               the whole test suite: installs the OpenID provider the sign-in
                     tests run against (npm ci in filevine-identity-ext/tests/oidc-provider,
                     from its committed lock file), then runs cargo test --workspace
";

/// Where the test OpenID provider's package.json and lock file live.
const OIDC_PROVIDER_DIR: &str = "filevine-identity-ext/tests/oidc-provider";

#[derive(Debug)]
struct Codegen {
    check: bool,
    spec: PathBuf,
    out: PathBuf,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("test") {
        return test(&args[1..]);
    }
    match parse_args(&args) {
        Ok(Some(codegen)) => run(&codegen),
        Ok(None) => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// The workspace root: xtask lives one level below it.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// `Ok(None)` means "print help".
fn parse_args(args: &[String]) -> Result<Option<Codegen>, String> {
    let mut args = args.iter();
    match args.next().map(String::as_str) {
        None | Some("help" | "-h" | "--help") => return Ok(None),
        Some("codegen") => {}
        Some(other) => return Err(format!("unknown task {other:?}")),
    }
    let mut codegen = Codegen { check: false, spec: PathBuf::from(SPEC_PATH), out: PathBuf::from(GENERATED_PATH) };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--check" => codegen.check = true,
            "--spec" => codegen.spec = args.next().ok_or("--spec needs a path")?.into(),
            "--out" => codegen.out = args.next().ok_or("--out needs a path")?.into(),
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(codegen))
}

fn run(codegen: &Codegen) -> ExitCode {
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
                println!("{out_label} is up to date ({} lines, generated in {elapsed_ms:.0} ms)", generated.lines());
                ExitCode::SUCCESS
            }
            Some(diff) => {
                print!("{diff}");
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
    println!("next: `cargo insta review` to read the snapshot changes, then commit");
    ExitCode::SUCCESS
}

/// `cargo xtask test`: `npm ci` for the test OpenID provider, then the
/// workspace's tests. Both steps stream their output; the first failure
/// ends the task with its exit code.
fn test(cargo_args: &[String]) -> ExitCode {
    let root = workspace_root();
    println!("==> npm ci --prefix {OIDC_PROVIDER_DIR}");
    let npm = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--prefix", OIDC_PROVIDER_DIR])
        .current_dir(&root)
        .status();
    match npm {
        Ok(status) if status.success() => {}
        Ok(status) => {
            eprintln!("error: npm ci failed ({status}); the sign-in tests need Node.js 20+ and npm");
            return ExitCode::FAILURE;
        }
        Err(error) => {
            eprintln!("error: cannot run npm ({error}); the sign-in tests need Node.js 20+ and npm");
            return ExitCode::FAILURE;
        }
    }
    println!("==> cargo test --workspace {}", cargo_args.join(" "));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    match std::process::Command::new(cargo).arg("test").arg("--workspace").args(cargo_args).current_dir(&root).status()
    {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => ExitCode::from(u8::try_from(status.code().unwrap_or(1)).unwrap_or(1)),
        Err(error) => {
            eprintln!("error: cannot run cargo: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_codegen_and_flags() {
        let c = parse_args(&args(&["codegen"])).unwrap().unwrap();
        assert!(!c.check);
        assert_eq!(c.spec, PathBuf::from(SPEC_PATH));
        let c = parse_args(&args(&["codegen", "--check", "--spec", "a.yaml", "--out", "b.rs"])).unwrap().unwrap();
        assert!(c.check);
        assert_eq!((c.spec, c.out), (PathBuf::from("a.yaml"), PathBuf::from("b.rs")));
    }

    #[test]
    fn rejects_unknown_tasks_and_arguments() {
        assert!(parse_args(&args(&["build"])).unwrap_err().contains("\"build\""));
        assert!(parse_args(&args(&["codegen", "--chek"])).unwrap_err().contains("--chek"));
        assert!(parse_args(&args(&["codegen", "--spec"])).unwrap_err().contains("needs a path"));
        assert!(parse_args(&args(&[])).unwrap().is_none());
    }
}
