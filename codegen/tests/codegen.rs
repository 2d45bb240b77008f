//! Snapshot and behaviour tests of code generation from real spec files.
//!
//! Snapshots live in `codegen/tests/snapshots/`. After a spec change:
//! `cargo xtask codegen`, then `cargo insta review`, read every diff, accept.

use std::path::{Path, PathBuf};

use filevine_identity_codegen::{Error, GENERATED_PATH, SPEC_PATH, Spec, diff, generate, translate};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn real_spec() -> Spec {
    Spec::read(&root().join(SPEC_PATH), SPEC_PATH).expect("the real spec is readable")
}

fn fixture(name: &str) -> Spec {
    let label = format!("codegen/tests/fixtures/{name}");
    Spec::read(&root().join(&label), label).expect("fixture is readable")
}

fn yaml(value: &serde_json::Value) -> String {
    serde_yaml_ng::to_string(value).expect("JSON values serialize as YAML")
}

#[test]
fn generated_source() {
    let generated = generate(&real_spec()).unwrap();
    insta::assert_snapshot!("generated_source", generated.source);
}

#[test]
fn public_surface() {
    let generated = generate(&real_spec()).unwrap();
    insta::assert_snapshot!("public_surface", generated.surface);
}

#[test]
fn real_spec_translated_to_3_0() {
    let generated = generate(&real_spec()).unwrap();
    // The real spec exercises the 3.1 path: nothing 3.1 is left, and the
    // constructs it uses were rewritten.
    translate::verify_openapi_30(&generated.translated).unwrap();
    let schemas = &generated.translated["components"]["schemas"];
    assert_eq!(schemas["TokenResponse"]["properties"]["refresh_token"]["nullable"], true);
    assert_eq!(
        schemas["PersonalAccessTokenRequest"]["properties"]["grant_type"]["enum"],
        serde_json::json!(["personal_access_token"])
    );
    insta::assert_snapshot!("real_spec_translated", yaml(&generated.translated));
}

#[test]
fn fixture_3_1_rules_translated() {
    let spec = fixture("openapi-3.1-rules.yaml");
    let generated = generate(&spec).unwrap();
    insta::assert_snapshot!("fixture_3_1_rules_translated", yaml(&generated.translated));
    insta::assert_snapshot!("fixture_3_1_rules_surface", generated.surface);
}

#[test]
fn fixture_3_0_passes_through_unchanged() {
    let spec = fixture("openapi-3.0.yaml");
    let original: serde_json::Value = serde_yaml_ng::from_str::<serde_json::Value>(
        // The loader stringifies the unquoted `200:` key; do the same here.
        &spec.text.replace("        200:", "        '200':"),
    )
    .unwrap();
    let generated = generate(&spec).unwrap();
    assert_eq!(generated.translated, original);
    insta::assert_snapshot!("fixture_3_0_translated", yaml(&generated.translated));
}

#[test]
fn committed_generated_file_is_up_to_date() {
    let generated = generate(&real_spec()).unwrap();
    let committed = std::fs::read_to_string(root().join(GENERATED_PATH)).unwrap();
    if let Some(diff) = diff("committed", "generated", &committed, &generated.source) {
        panic!("{GENERATED_PATH} is stale; run `cargo xtask codegen`:\n{diff}");
    }
}

#[test]
fn generation_is_deterministic() {
    let first = generate(&real_spec()).unwrap();
    let second = generate(&real_spec()).unwrap();
    assert_eq!(first.source, second.source);
    assert_eq!(first.surface, second.surface);
}

#[test]
fn header_names_spec_hash_command_and_progenitor() {
    let spec = real_spec();
    let generated = generate(&spec).unwrap();
    let header: String = generated.source.lines().take(7).collect::<Vec<_>>().join("\n");
    assert!(header.contains("DO NOT EDIT"), "{header}");
    assert!(header.contains(SPEC_PATH), "{header}");
    assert!(header.contains(&spec.sha256()), "{header}");
    assert!(header.contains("cargo xtask codegen"), "{header}");
    assert!(header.contains("progenitor 0.15.1"), "{header}");
}

/// The maintainer loop: a spec change makes the committed file stale and
/// shows up in the surface listing a reviewer reads.
#[test]
fn adding_a_response_field_makes_check_fail_and_changes_the_surface() {
    let spec = real_spec();
    let marker = "    TokenResponse:\n";
    let at = spec.text.find(marker).expect("TokenResponse schema");
    let properties =
        at + spec.text[at..].find("      properties:\n").expect("properties") + "      properties:\n".len();
    let mut changed = spec.text.clone();
    changed.insert_str(
        properties,
        "        session_state:\n          type: string\n          description: Added in a test.\n",
    );
    let changed = Spec { label: spec.label.clone(), text: changed };

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("spec.yaml"), &changed.text).unwrap();
    let reread = Spec::read(&dir.path().join("spec.yaml"), SPEC_PATH).unwrap();

    let before = generate(&spec).unwrap();
    let after = generate(&reread).unwrap();
    let committed = std::fs::read_to_string(root().join(GENERATED_PATH)).unwrap();

    let stale = diff("committed", "generated", &committed, &after.source).expect("check must report the change");
    assert!(stale.contains("+        pub session_state:"), "{stale}");
    assert!(stale.contains(&format!("+// SHA-256:   {}", reread.sha256())), "{stale}");

    let surface = diff("before", "after", &before.surface, &after.surface).expect("surface must change");
    assert!(surface.contains("+    session_state: Option<String>"), "{surface}");
}

#[test]
fn invalid_yaml_names_file_and_line() {
    let err = generate(&fixture("bad/invalid-yaml.yaml")).unwrap_err();
    assert!(matches!(err, Error::Syntax { line: 6.., .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.starts_with("codegen/tests/fixtures/bad/invalid-yaml.yaml:"), "{text}");
    assert!(text.contains("invalid YAML"), "{text}");
}

#[test]
fn untranslatable_construct_names_the_pointer() {
    let err = generate(&fixture("bad/untranslatable.yaml")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "codegen/tests/fixtures/bad/untranslatable.yaml: cannot translate OpenAPI 3.1 to 3.0: \
         at /components/schemas/Pair/prefixItems: `prefixItems` (JSON Schema 2020-12) has no OpenAPI 3.0 \
         equivalent; rewrite the schema without it"
    );
}

#[test]
fn invalid_openapi_names_the_pointer() {
    let err = generate(&fixture("bad/not-openapi.yaml")).unwrap_err();
    let text = err.to_string();
    assert!(matches!(&err, Error::OpenApi { pointer, .. } if pointer == "/info"), "{text}");
    assert!(text.contains("missing field `version`"), "{text}");
}

#[test]
fn progenitor_panic_becomes_an_error() {
    let err = generate(&fixture("bad/progenitor-panic.yaml")).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::ProgenitorPanic { .. }), "{text}");
    assert!(text.starts_with("codegen/tests/fixtures/bad/progenitor-panic.yaml: progenitor panicked"), "{text}");
    assert!(text.contains("media type encoding not empty"), "{text}");
    // Generation still works afterwards: the panic hook is scoped.
    generate(&real_spec()).unwrap();
}

#[test]
fn missing_file_is_a_read_error() {
    let err = Spec::read(Path::new("/nonexistent/spec.yaml"), "spec/nope.yaml").unwrap_err();
    assert!(err.to_string().starts_with("spec/nope.yaml: cannot read the spec:"), "{err}");
}
