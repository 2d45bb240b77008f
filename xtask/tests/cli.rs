//! `cargo xtask codegen` as a maintainer runs it: the real binary, real files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask")).args(args).output().expect("xtask runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A copy of the committed generated file in a temp dir.
fn committed_copy(dir: &Path) -> PathBuf {
    let out = dir.join("generated.rs");
    std::fs::copy(root().join("filevine-identity/src/generated.rs"), &out).unwrap();
    out
}

#[test]
fn check_passes_on_the_committed_file() {
    let output = xtask(&["codegen", "--check"]);
    assert!(output.status.success(), "{}{}", text(&output.stdout), text(&output.stderr));
    assert!(text(&output.stdout).contains("is up to date"), "{}", text(&output.stdout));
}

#[test]
fn check_prints_a_diff_and_fails_on_a_stale_file_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let out = committed_copy(dir.path());
    let stale = std::fs::read_to_string(&out).unwrap().replace("pub token_type:", "pub token_kind:");
    std::fs::write(&out, &stale).unwrap();

    let output = xtask(&["codegen", "--check", "--out", out.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("(committed)\n+++ "), "{stdout}");
    assert!(stdout.contains("-        pub token_kind:"), "{stdout}");
    assert!(stdout.contains("+        pub token_type:"), "{stdout}");
    assert!(text(&output.stderr).contains("is stale: run `cargo xtask codegen --accept`"));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), stale, "--check must not write");
}

#[test]
fn codegen_rewrites_a_stale_file_and_a_second_run_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = committed_copy(dir.path());
    std::fs::write(&out, "// stale\n").unwrap();
    let out_arg = out.to_str().unwrap();

    let first = xtask(&["codegen", "--out", out_arg]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let stdout = text(&first.stdout);
    assert!(stdout.starts_with("wrote "), "{stdout}");
    assert!(stdout.contains(" lines, generated in ") && stdout.contains(" ms)"), "{stdout}");
    let written = std::fs::read(&out).unwrap();
    assert_eq!(written, std::fs::read(root().join("filevine-identity/src/generated.rs")).unwrap());

    let second = xtask(&["codegen", "--out", out_arg]);
    assert!(second.status.success());
    assert!(text(&second.stdout).contains("unchanged"), "{}", text(&second.stdout));
    assert_eq!(std::fs::read(&out).unwrap(), written, "a second run changes nothing");
}

/// Each bad spec: exit 1, one clear error naming the file (and where there
/// is one, the location), and the output file untouched.
#[test]
fn bad_specs_fail_clearly_and_leave_the_file_untouched() {
    let fixtures = root().join("codegen/tests/fixtures/bad");
    let missing = fixtures.join("does-not-exist.yaml");
    let cases: [(PathBuf, &str); 4] = [
        (missing, "cannot read the spec"),
        (fixtures.join("invalid-yaml.yaml"), "invalid YAML"),
        (fixtures.join("untranslatable.yaml"), "at /components/schemas/Pair/prefixItems"),
        (fixtures.join("progenitor-panic.yaml"), "progenitor panicked"),
    ];
    for (spec, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let out = committed_copy(dir.path());
        let before = std::fs::read(&out).unwrap();
        for check in [false, true] {
            let mut args = vec!["codegen", "--spec", spec.to_str().unwrap(), "--out", out.to_str().unwrap()];
            if check {
                args.push("--check");
            }
            let output = xtask(&args);
            let stderr = text(&output.stderr);
            assert_eq!(output.status.code(), Some(1), "{}: {stderr}", spec.display());
            let first_line = stderr.lines().next().unwrap_or_default();
            assert!(first_line.starts_with("error: "), "{stderr}");
            assert!(first_line.contains(spec.file_name().unwrap().to_str().unwrap()), "names the file: {stderr}");
            assert!(first_line.contains(expected), "{expected:?} in {stderr}");
            assert!(!stderr.contains("panicked at"), "no raw panic output: {stderr}");
            assert_eq!(std::fs::read(&out).unwrap(), before, "left untouched");
        }
    }
}

#[test]
fn invalid_yaml_error_names_the_line() {
    let spec = root().join("codegen/tests/fixtures/bad/invalid-yaml.yaml");
    let output = xtask(&["codegen", "--check", "--spec", spec.to_str().unwrap()]);
    let stderr = text(&output.stderr);
    assert!(stderr.contains("invalid-yaml.yaml:6:") || stderr.contains("invalid-yaml.yaml:7:"), "{stderr}");
}

#[test]
fn usage_errors_exit_2() {
    let output = xtask(&["codegen", "--bogus"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("unexpected argument '--bogus'"), "{}", text(&output.stderr));
    let output = xtask(&["--help"]);
    assert!(output.status.success());
    assert!(text(&output.stdout).contains("Usage: cargo xtask"), "{}", text(&output.stdout));
}

#[test]
fn check_fails_on_an_unaccepted_warning_and_names_each() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("generated.rs");
    let spec = "codegen/tests/fixtures/warnings.yaml";
    let out_arg = out.to_str().unwrap();
    // Writing still works, and says what will be ignored.
    let write = xtask(&["codegen", "--spec", spec, "--out", out_arg]);
    assert!(write.status.success(), "{}", text(&write.stderr));
    // --check: the file is up to date, but the warnings fail it.
    let check = xtask(&["codegen", "--check", "--spec", spec, "--out", out_arg]);
    assert_eq!(check.status.code(), Some(1));
    assert!(text(&check.stdout).contains("is up to date"), "{}", text(&check.stdout));
    let stderr = text(&check.stderr);
    for expected in [
        "warning: codegen/tests/fixtures/warnings.yaml:32: /components/schemas/Pet/tag: `tag` is not a schema keyword",
        "warning: codegen/tests/fixtures/warnings.yaml:37: /components/schemas/Animal/discriminator: typify ignores",
        "warning: codegen/tests/fixtures/warnings.yaml:9: /paths/~1pets/get/callbacks (operation `listPets`)",
        "error: 3 warning(s)",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }
    assert!(text(&check.stdout).contains("1 construct(s) the client ignores are accepted"));
}

#[test]
fn several_problems_are_one_run_and_the_file_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let out = committed_copy(dir.path());
    let before = std::fs::read_to_string(&out).unwrap();
    let output = xtask(&[
        "codegen",
        "--spec",
        "codegen/tests/fixtures/bad/several-problems.yaml",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("3 problem(s) the generator cannot handle"), "{stderr}");
    assert_eq!(stderr.matches("\n  codegen/tests/fixtures/bad/several-problems.yaml:").count(), 3, "{stderr}");
    assert!(stderr.contains("(operation `createThing`)"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), before);
}

/// A spec whose formats need crates the generated crate lacks: one error
/// per use, with the spec line and the line to add, and nothing written.
#[test]
fn formats_whose_crate_is_missing_are_reported_against_the_spec_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("Cargo.toml"), "[package]\nname = \"scratch\"\n\n[dependencies]\nserde = \"1\"\n")
        .unwrap();
    let out = dir.path().join("src/generated.rs");
    std::fs::write(&out, "// before\n").unwrap();
    let spec = "codegen/tests/fixtures/bad/uuid-and-date-time.yaml";
    let output = xtask(&["codegen", "--spec", spec, "--out", out.to_str().unwrap()]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 3, "{stderr}");
    assert!(
        errors[0]
            .starts_with(&format!("error: {spec}:10: /components/schemas/Invite/properties/tenantId: `format: uuid`")),
        "{stderr}"
    );
    assert!(stderr.contains("add `uuid = { version = \"1\", features = [\"serde\"] }` to [dependencies]"), "{stderr}");
    assert!(stderr.contains(&format!("{spec}:13: /components/schemas/Invite/properties/sentAt")), "{stderr}");
    assert!(stderr.contains("was left untouched"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "// before\n");
}
