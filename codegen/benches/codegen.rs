//! `cargo bench -p filevine-identity-codegen --bench codegen`
//!
//! Code generation of the real spec, in process: YAML parsing, 3.1 → 3.0
//! translation, progenitor, prettyplease and the surface listing. Cargo is
//! not involved.

use std::path::Path;

use divan::Bencher;
use filevine_identity_codegen::{SPEC_PATH, Spec, generate};

fn main() {
    divan::main();
}

#[divan::bench(sample_count = 50)]
fn generate_real_spec(bencher: Bencher<'_, '_>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(SPEC_PATH);
    let spec = Spec::read(&path, SPEC_PATH).unwrap();
    bencher.bench(|| generate(&spec).unwrap());
}

#[divan::bench(sample_count = 50)]
fn translate_only(bencher: Bencher<'_, '_>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(SPEC_PATH);
    let text = std::fs::read_to_string(path).unwrap();
    let value: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    bencher.with_inputs(|| value.clone()).bench_values(|v| filevine_identity_codegen::translate::translate(v).unwrap());
}
