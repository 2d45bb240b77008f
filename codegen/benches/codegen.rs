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

/// The gateway-shaped fixture's 29 operations repeated under numbered
/// resources to 220 operations, about the size of the gateway's own
/// description (222 paths): the crate `filevine-codegen gateway` writes.
#[divan::bench(sample_count = 10)]
fn gateway_crate_220_operations(bencher: Bencher<'_, '_>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gateway/gateway.yaml");
    let mut document: serde_json::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let template = document["paths"].as_object().unwrap().clone();
    let mut paths = serde_json::Map::new();
    let mut operations = 0;
    'copies: for copy in 0.. {
        for (path, item) in &template {
            let mut item = item.clone();
            for operation in item.as_object_mut().unwrap().values_mut() {
                let id = operation["operationId"].as_str().unwrap().to_owned();
                operation["operationId"] = format!("{id}R{copy}").into();
                operations += 1;
            }
            paths.insert(path.replace("/fv-app/v2/", &format!("/fv-app/v2/R{copy}/")), item);
            if operations >= 220 {
                break 'copies;
            }
        }
    }
    document["paths"] = serde_json::Value::Object(paths);
    let spec = Spec { label: "gateway-220.yaml".into(), text: serde_json::to_string(&document).unwrap() };
    let options = filevine_identity_codegen::CrateOptions {
        name: "filevine-gateway".into(),
        sdk: filevine_identity_codegen::SdkSource::Version("0.1".into()),
        standalone: true,
        dev_dependencies: Vec::new(),
    };
    bencher.bench(|| filevine_identity_codegen::gateway_crate(&spec, &options).unwrap());
}
