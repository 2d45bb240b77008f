//! Snapshot and behaviour tests of code generation from real spec files.
//!
//! Snapshots live in `codegen/tests/snapshots/`: the public-surface listing
//! and the 3.1 → 3.0 translations. The generated source itself is not
//! snapshotted: it is committed, and `cargo xtask codegen --check` compares
//! it. After a spec change: `cargo xtask codegen --accept`, then read
//! `git diff -- codegen/tests/snapshots` before committing.

use std::path::{Path, PathBuf};

use filevine_identity_codegen::{
    Error, GENERATED_PATH, Impact, SPEC_PATH, Spec, SurfaceDiff, diff, generate, surface_diff, translate,
};

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
    let field = unused_name(&spec, "added_in_a_test");
    let marker = "    TokenResponse:\n";
    let at = spec.text.find(marker).expect("TokenResponse schema");
    let properties =
        at + spec.text[at..].find("      properties:\n").expect("properties") + "      properties:\n".len();
    let mut changed = spec.text.clone();
    changed.insert_str(
        properties,
        &format!("        {field}:\n          type: string\n          description: Added in a test.\n"),
    );
    let changed = Spec { label: spec.label.clone(), text: changed };

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("spec.yaml"), &changed.text).unwrap();
    let reread = Spec::read(&dir.path().join("spec.yaml"), SPEC_PATH).unwrap();

    let before = generate(&spec).unwrap();
    let after = generate(&reread).unwrap();
    let committed = std::fs::read_to_string(root().join(GENERATED_PATH)).unwrap();

    let stale = diff("committed", "generated", &committed, &after.source).expect("check must report the change");
    assert!(stale.contains(&format!("+        pub {field}:")), "{stale}");
    assert!(stale.contains(&format!("+// SHA-256:   {}", reread.sha256())), "{stale}");

    let surface = diff("before", "after", &before.surface, &after.surface).expect("surface must change");
    assert!(surface.contains(&format!("+    {field}: Option<String>")), "{surface}");
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
    assert!(text.contains("assertion failed: parameter_data.required"), "{text}");
    assert!(text.contains("codegen/src/lint.rs"), "says where a check for it belongs: {text}");
    // The codegen found the operation itself: generated alone, it panics.
    assert!(
        text.contains(
            "1 operation(s) panic when generated alone:\n  codegen/tests/fixtures/bad/progenitor-panic.yaml:7: \
             /paths/~1things~1{id}/get (operation `getThing`): assertion failed: parameter_data.required \
             (at progenitor-impl-0.15.1/src/method.rs:"
        ),
        "{text}"
    );
    // Generation still works afterwards: the panic hook is scoped.
    generate(&real_spec()).unwrap();
}

#[test]
fn a_known_progenitor_panic_is_a_guided_error_before_progenitor_runs() {
    let err = generate(&fixture("bad/form-encoding.yaml")).unwrap_err();
    let text = err.to_string();
    let Error::Spec { problems, .. } = &err else { panic!("{text}") };
    assert_eq!(problems.len(), 1, "{text}");
    assert_eq!(problems[0].operation.as_deref(), Some("postForm"));
    assert_eq!(problems[0].line, 15);
    assert!(text.contains("fix: remove `encoding`"), "{text}");
}

#[test]
fn missing_file_is_a_read_error() {
    let err = Spec::read(Path::new("/nonexistent/spec.yaml"), "spec/nope.yaml").unwrap_err();
    assert!(err.to_string().starts_with("spec/nope.yaml: cannot read the spec:"), "{err}");
}

/// A name the spec does not use anywhere, so a test that adds it cannot
/// collide with a field or operation a maintainer adds later.
fn unused_name(spec: &Spec, base: &str) -> String {
    (0..).map(|n| format!("{base}_{n}")).find(|name| !spec.text.contains(name.as_str())).unwrap()
}

/// The surface change from the real spec to the spec `edit` makes.
fn surface_change(edit: impl FnOnce(&mut serde_json::Value)) -> SurfaceDiff {
    let spec = real_spec();
    let mut value: serde_json::Value = serde_yaml_ng::from_str(&spec.text).unwrap();
    edit(&mut value);
    let changed = Spec { label: spec.label.clone(), text: yaml(&value) };
    let before = generate(&spec).unwrap();
    let after = generate(&changed).unwrap();
    surface_diff(&before.source, &after.source).unwrap()
}

fn schema<'a>(spec: &'a mut serde_json::Value, name: &str) -> &'a mut serde_json::Map<String, serde_json::Value> {
    spec["components"]["schemas"][name].as_object_mut().unwrap_or_else(|| panic!("schema {name}"))
}

fn reasons(diff: &SurfaceDiff) -> Vec<String> {
    [&diff.added, &diff.removed, &diff.changed]
        .into_iter()
        .flatten()
        .filter_map(|c| match &c.impact {
            Impact::Breaking(why) => Some(format!("{}: {} ({why})", c.item, c.detail)),
            Impact::Additive => None,
        })
        .collect()
}

#[test]
fn unchanged_spec_has_no_surface_change() {
    let diff = surface_change(|_| {});
    assert!(diff.is_empty(), "{diff}");
    assert_eq!(diff.verdict(), "public surface: 0 added, 0 removed, 0 changed: no change to the public surface");
}

#[test]
fn a_new_optional_response_field_is_additive() {
    let name = unused_name(&real_spec(), "new_claim");
    let diff = surface_change(|spec| {
        schema(spec, "UserInfo")["properties"][&name] = serde_json::json!({"type": ["string", "null"]});
    });
    assert!(!diff.is_breaking(), "{diff}");
    assert_eq!(diff.changed.len(), 1, "{diff}");
    assert_eq!(diff.changed[0].item, "struct types::UserInfo");
    assert_eq!(diff.changed[0].detail, format!("new field `{name}: Option<String>`"));
    assert!(diff.to_string().contains("additive (a minor release)"), "{diff}");
}

#[test]
fn a_new_operation_is_additive() {
    let name = unused_name(&real_spec(), "getPing");
    let diff = surface_change(|spec| {
        spec["paths"][format!("/connect/{name}")] = serde_json::json!({"get": {
            "operationId": name,
            "responses": {"200": {"description": "ok"}},
        }});
    });
    assert!(!diff.is_breaking(), "{diff}");
    let added: Vec<&str> = diff.added.iter().map(|c| c.item.as_str()).collect();
    assert!(added.iter().any(|i| i.starts_with("fn Client::get_ping_")), "{added:?}");
    assert!(added.iter().any(|i| i.starts_with("const operations::GET_PING_")), "{added:?}");
    // The operations table grows: listed, not a compile break.
    assert!(diff.changed.iter().any(|c| c.item == "const operations::ALL" && c.impact == Impact::Additive), "{diff}");
}

#[test]
fn a_new_field_in_a_request_type_is_breaking() {
    let name = unused_name(&real_spec(), "extra_hint");
    let diff = surface_change(|spec| {
        schema(spec, "RevocationRequest")["properties"][&name] = serde_json::json!({"type": "string"});
    });
    assert!(diff.is_breaking(), "{diff}");
    let why = reasons(&diff);
    assert_eq!(why.len(), 1, "{why:?}");
    assert!(why[0].starts_with("struct types::RevocationRequest: new field"), "{why:?}");
    assert!(why[0].contains("struct literals outside the crate"), "{why:?}");
}

#[test]
fn a_removed_operation_is_breaking() {
    let diff = surface_change(|spec| {
        spec["paths"].as_object_mut().unwrap().remove("/connect/introspect");
    });
    assert!(diff.is_breaking(), "{diff}");
    let removed: Vec<&str> = diff.removed.iter().map(|c| c.item.as_str()).collect();
    assert!(removed.contains(&"fn Client::introspect_token"), "{removed:?}");
    assert!(removed.contains(&"const operations::INTROSPECT_TOKEN"), "{removed:?}");
}

#[test]
fn a_renamed_type_is_breaking() {
    let diff = surface_change(|spec| {
        let user_info = schema(spec, "UserInfo").clone();
        spec["components"]["schemas"].as_object_mut().unwrap().remove("UserInfo");
        spec["components"]["schemas"]["UserClaims"] = serde_json::Value::Object(user_info);
        spec["paths"]["/connect/userinfo"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"] =
            "#/components/schemas/UserClaims".into();
    });
    assert!(diff.is_breaking(), "{diff}");
    assert!(diff.removed.iter().any(|c| c.item == "struct types::UserInfo"), "{diff}");
    assert!(diff.added.iter().any(|c| c.item == "struct types::UserClaims"), "{diff}");
    assert!(diff.changed.iter().any(|c| c.item == "fn Client::get_userinfo"), "the signature names the new type");
}

#[test]
fn a_field_made_required_is_breaking() {
    let diff = surface_change(|spec| {
        let required = schema(spec, "UserInfo")["required"].as_array_mut().unwrap();
        required.push("email".into());
        schema(spec, "UserInfo")["properties"]["email"] = serde_json::json!({"type": "string"});
    });
    assert!(diff.is_breaking(), "{diff}");
    let why = reasons(&diff);
    assert_eq!(why.len(), 1, "{why:?}");
    assert!(why[0].contains("field `email` made required: `Option<String>` → `String`"), "{why:?}");
}

#[test]
fn several_problems_are_reported_in_one_run_with_operation_pointer_line_and_fix() {
    let spec = fixture("bad/several-problems.yaml");
    let err = generate(&spec).unwrap_err();
    let Error::Spec { problems, .. } = &err else { panic!("{err}") };
    let shown: Vec<(usize, &str, Option<&str>)> =
        problems.iter().map(|p| (p.line, p.pointer.as_str(), p.operation.as_deref())).collect();
    assert_eq!(
        shown,
        [
            (
                14,
                "/paths/~1things/post/requestBody/content/application~1x-www-form-urlencoded/encoding",
                Some("createThing")
            ),
            (17, "/paths/~1things/post/responses", Some("createThing")),
            (51, "/paths/~1things~1{id}/get/responses/200/content/application~1json/schema/$ref", None),
        ]
    );
    let text = err.to_string();
    assert!(text.starts_with("codegen/tests/fixtures/bad/several-problems.yaml: 3 problem(s)"), "{text}");
    assert!(text.contains("400 → Problem; 403 → Denied"), "{text}");
    assert!(text.contains("`$ref: #/components/schemas/Thingg` points to nothing"), "{text}");
    assert!(text.contains("fix: give every error response of this operation the same schema"), "{text}");
    assert!(!text.contains("panicked"), "found before progenitor runs: {text}");
}

#[test]
fn ignored_constructs_are_warnings_unless_accepted() {
    let generated = generate(&fixture("warnings.yaml")).unwrap();
    let warnings: Vec<(usize, &str)> = generated.warnings.iter().map(|w| (w.line, w.pointer.as_str())).collect();
    assert_eq!(
        warnings,
        [
            (37, "/components/schemas/Animal/discriminator"),
            (32, "/components/schemas/Pet/tag"),
            (9, "/paths/~1pets/get/callbacks"),
        ]
    );
    assert_eq!(
        generated.accepted,
        [(
            "/components/schemas/AcceptedAnimal/discriminator".to_owned(),
            "the variants carry a one-value kind".to_owned()
        )]
    );
    // The real spec accepts its one (TokenRequest's discriminator).
    let real = generate(&real_spec()).unwrap();
    assert!(real.warnings.is_empty(), "{:?}", real.warnings);
    assert_eq!(real.accepted.len(), 1);
}

/// The problems of one fixture, as `line: pointer (operation): message; fix`.
fn problems(name: &str) -> Vec<String> {
    match generate(&fixture(name)) {
        Err(Error::Spec { problems, .. }) => problems.iter().map(ToString::to_string).collect(),
        other => panic!("{name}: expected problems, got {other:?}"),
    }
}

#[test]
fn a_parameter_without_a_schema_is_named_with_its_fix() {
    assert_eq!(
        problems("bad/parameter-without-schema.yaml"),
        ["10: /paths/~1identity~1user/post/parameters/0 (operation `POST_user`): parameter `x-fv-orgid` (in: header) \
          has neither `schema` nor `content`; fix: add `schema: {type: string}` (or the type it has) to the parameter"]
    );
}

#[test]
fn path_templates_must_match_their_parameters_exactly() {
    assert_eq!(
        problems("bad/path-template-case.yaml"),
        [
            "8: /paths/~1projects~1{projectID}~1notes/get (operation `listNotes`): the path template spells \
             `{projectID}`, the parameter is declared `projectId` (progenitor panics: \"projectId missing from \
             path\"); fix: write `{projectId}` in the path, or name the parameter `projectID`",
            "19: /paths/~1orgs~1{orgId}~1users/get (operation `listUsers`): the path template has `{orgId}` and no \
             `in: path` parameter declares it; fix: declare `orgId` under `parameters` with `in: path, required: \
             true` and a schema",
            "22: /paths/~1orgs~1{orgId}~1users/get/parameters/0 (operation `listUsers`): parameter `userId` is `in: \
             path`, and the path `/orgs/{orgId}/users` has no `{userId}`; fix: add `{userId}` to the path, or \
             declare the parameter `in: query` or `in: header`",
        ]
    );
}

#[test]
fn security_schemes_the_hooks_cannot_apply_are_named() {
    assert_eq!(
        problems("bad/api-key-security.yaml"),
        [
            "16: /components/securitySchemes/Bearer: security scheme `Bearer` (type \"apiKey\") is not one the \
             client's hooks can apply; fix: an `apiKey` in the `Authorization` header that carries `Bearer <token>` \
             is the bearer scheme: write `type: http, scheme: bearer`",
            "20: /components/securitySchemes/session: security scheme `session` (type \"apiKey\") is not one the \
             client's hooks can apply; fix: describe it as `type: http` with `scheme: bearer`, `basic` or `dpop`, or \
             add the kind to Scheme in filevine-identity/src/operation.rs and the hooks",
        ]
    );
}

#[test]
fn own_servers_without_a_host_are_refused_not_dropped() {
    let fix = "fix: mark each server `x-fv-host: gateway` (sent to the configured region's API gateway) or \
               `x-fv-host: identity` (the identity authority), or remove `servers` here";
    assert_eq!(
        problems("bad/operation-servers.yaml"),
        [
            format!(
                "11: /paths/~1identity~1user/post/servers (operation `POST_user`): names its own server \
                 (https://gateway.example) without `x-fv-host`: the generated method would send to the identity host \
                 instead; {fix}"
            ),
            format!(
                "18: /paths/~1elsewhere/servers: names its own server (https://other.example) without `x-fv-host`: \
                 the generated method would send to the identity host instead; {fix}"
            ),
        ]
    );
}

/// With `x-fv-host: gateway`, the operation is sent to the gateway: the
/// table says so, and the hooks move it (options unit tests).
#[test]
fn a_gateway_server_reaches_the_operations_table() {
    let mut spec = fixture("bad/operation-servers.yaml");
    spec.text = spec.text.replace("description: Filevine v2 public API", "x-fv-host: gateway");
    spec.text = spec
        .text
        .replace("  - url: https://other.example", "  - url: https://other.example\n        x-fv-host: identity");
    let generated = generate(&spec).unwrap();
    assert!(generated.source.contains("host: crate::Host::Gateway"), "{}", generated.source);
    assert!(generated.source.contains("id: \"get_elsewhere\""));
    assert_eq!(generated.source.matches("host: crate::Host::Identity").count(), 1);
}

#[test]
fn a_swagger_2_document_gets_a_guided_error() {
    let err = generate(&fixture("bad/swagger-2.yaml")).unwrap_err();
    assert!(matches!(err, Error::Swagger2 { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "codegen/tests/fixtures/bad/swagger-2.yaml: this is a Swagger 2.0 document (`swagger: \"2.0\"`); the \
         generator reads OpenAPI 3.0 and 3.1. Convert it first, e.g. with the npm package swagger2openapi: `npx \
         swagger2openapi --yaml --outfile openapi.yaml codegen/tests/fixtures/bad/swagger-2.yaml`, then generate \
         from openapi.yaml (and fix what the generator then reports)"
    );
}

/// Formats that become other crates' types are listed with their places;
/// a manifest without the crate gets one error per place, with the line to
/// add.
#[test]
fn formats_that_need_a_crate_are_named_against_the_manifest() {
    let generated = generate(&fixture("bad/uuid-and-date-time.yaml")).unwrap();
    let names: Vec<&str> = generated.crates.iter().map(|c| c.name).collect();
    assert_eq!(names, ["uuid", "chrono"]);
    let missing = filevine_identity_codegen::missing_crates(
        &generated.crates,
        "[dependencies]\nuuid = { version = \"1\", features = [\"serde\"] }\n",
        "gen/Cargo.toml",
    );
    let shown: Vec<(usize, &str)> = missing.iter().map(|m| (m.line, m.pointer.as_str())).collect();
    assert_eq!(
        shown,
        [(13, "/components/schemas/Invite/properties/sentAt"), (16, "/components/schemas/Invite/properties/day")]
    );
    assert!(
        missing[0]
            .to_string()
            .contains("`format: date-time` becomes a `chrono` type, and gen/Cargo.toml does not depend on `chrono`")
    );
}

/// A description shaped like Filevine's published Identity one: every
/// problem in one run, in the file's order.
#[test]
fn a_vendor_shaped_description_gets_every_problem_in_one_run() {
    let lines: Vec<String> = problems("vendor/identity-published-shape.yaml")
        .iter()
        .map(|p| p.split(": ").take(2).collect::<Vec<_>>().join(": "))
        .collect();
    assert_eq!(
        lines,
        [
            "18: /paths/~1connect~1token/post/servers (operation `POST_token`)",
            "47: /paths/~1identity~1user/post/servers (operation `POST_user`)",
            "52: /paths/~1identity~1user/post/parameters/0 (operation `POST_user`)",
            "55: /paths/~1identity~1user/post/parameters/1 (operation `POST_user`)",
        ]
    );
}

/// A large description written by code: `operations` operations over
/// `operations / 4` resources, each with a uuid path parameter, a
/// required org header, a query array, a body with uuid fields, some on a
/// gateway server of their own, a bearer scheme.
fn large_description(operations: usize) -> String {
    use std::fmt::Write as _;
    let mut paths = String::new();
    let mut schemas = String::new();
    for n in 0..operations.div_ceil(4) {
        let _ = write!(
            schemas,
            "    Thing{n}:\n      type: object\n      required: [id, name]\n      properties:\n        id: {{type: string, format: uuid}}\n        owner: {{type: string, format: uuid}}\n        name: {{type: string}}\n        tags: {{type: array, items: {{type: string}}}}\n        count: {{type: integer, format: int64}}\n"
        );
        let host = if n % 3 == 0 {
            "\n      servers:\n        - url: https://gateway.example\n          x-fv-host: gateway"
        } else {
            ""
        };
        let header =
            "        - {name: x-fv-orgid, in: header, required: true, schema: {type: integer, format: int64}}\n";
        let _ = write!(
            paths,
            "  /things{n}:\n    get:\n      operationId: listThings{n}{host}\n      security: [{{bearer: []}}]\n      parameters:\n{header}        - {{name: tag, in: query, schema: {{type: array, items: {{type: string}}}}}}\n      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              schema: {{type: array, items: {{$ref: '#/components/schemas/Thing{n}'}}}}\n    post:\n      operationId: createThing{n}{host}\n      security: [{{bearer: []}}]\n      parameters:\n{header}      requestBody:\n        required: true\n        content:\n          application/json:\n            schema: {{$ref: '#/components/schemas/Thing{n}'}}\n      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              schema: {{$ref: '#/components/schemas/Thing{n}'}}\n  /things{n}/{{thingId}}:\n    get:\n      operationId: getThing{n}\n      security: [{{bearer: []}}]\n      parameters:\n        - {{name: thingId, in: path, required: true, schema: {{type: string, format: uuid}}}}\n{header}      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              schema: {{$ref: '#/components/schemas/Thing{n}'}}\n    delete:\n      operationId: deleteThing{n}\n      security: [{{bearer: []}}]\n      parameters:\n        - {{name: thingId, in: path, required: true, schema: {{type: string, format: uuid}}}}\n{header}      responses:\n        '204':\n          description: gone\n"
        );
    }
    format!(
        "openapi: 3.1.0\ninfo: {{title: Large, version: '1'}}\nservers:\n  - url: https://identity.example\n    x-region: us\n  - url: https://identity-ca.example\n    x-region: canada\npaths:\n{paths}components:\n  securitySchemes:\n    bearer: {{type: http, scheme: bearer}}\n  schemas:\n{schemas}"
    )
}

/// 200 operations generate in one pass (the figures are in BENCHMARKS.md;
/// `FV_WRITE_LARGE_SPEC=<file>` writes the description, for measuring the
/// compile check with `cargo xtask codegen --spec <file>`).
#[test]
fn a_large_generated_description_generates() {
    let text = large_description(200);
    if let Ok(path) = std::env::var("FV_WRITE_LARGE_SPEC") {
        std::fs::write(path, &text).unwrap();
    }
    let spec = Spec { label: "large.yaml".into(), text };
    let generated = generate(&spec).unwrap();
    let methods = generated.surface.lines().filter(|l| l.trim_start().starts_with("async fn ")).count();
    assert_eq!(methods, 200);
    assert_eq!(generated.source.matches("host: crate::Host::Gateway").count(), 34);
    assert_eq!(generated.crates.iter().map(|c| c.name).collect::<Vec<_>>(), ["uuid"]);
    eprintln!("200 operations: {} lines generated in {:?}", generated.lines(), generated.elapsed);
}

/// The options `gateway-example/` was written with (see its README).
fn example_options() -> filevine_identity_codegen::CrateOptions {
    filevine_identity_codegen::CrateOptions {
        name: "filevine-gateway-example".into(),
        sdk: filevine_identity_codegen::SdkSource::Path("../filevine-identity-ext".into()),
        standalone: false,
        dev_dependencies: vec![
            r#"filevine-identity-ext = { path = "../filevine-identity-ext", features = ["test-util"] }"#.into(),
            r#"tokio = { version = "1", features = ["macros", "rt-multi-thread"] }"#.into(),
        ],
    }
}

fn gateway_fixture() -> Spec {
    Spec::read(&root().join("codegen/tests/fixtures/gateway/gateway.yaml"), "gateway.yaml").unwrap()
}

/// The committed example crate is what the command writes today (it is
/// compiled and its end-to-end tests run with the workspace).
#[test]
fn the_gateway_example_crate_is_what_the_command_writes() {
    let built = filevine_identity_codegen::gateway_crate(&gateway_fixture(), &example_options()).unwrap();
    for (path, content) in &built.files {
        let committed = std::fs::read_to_string(root().join("gateway-example").join(path)).unwrap();
        let stale = filevine_identity_codegen::diff(path, "regenerated", &committed, content);
        assert!(stale.is_none(), "gateway-example/{path} is stale; regenerate it:\n{}", stale.unwrap());
    }
    let generated = &built.generated;
    assert_eq!(generated.surface.matches("    async fn ").count(), 29, "every operation: {}", generated.surface);
    // The user headers are the client's, not arguments.
    assert!(!generated.source.contains("x_fv_orgid") && !generated.source.contains("x_fv_userid"));
    let null: Vec<_> = generated.adjustments.iter().filter_map(|a| a.no_content_as_null.as_deref()).collect();
    assert_eq!(null, ["tag_projects_bulk"]);
    let readme = &built.files.iter().find(|(p, _)| *p == "README.md").unwrap().1;
    assert!(readme.contains("the bearer scheme") && readme.contains("`FilevineUser`"), "{readme}");
    assert!(readme.contains("is written `/fv-app/v2/Projects/{projectId}/Deadlines`"), "{readme}");
}

/// What an integrator runs, twice: a crate, then the verdict of a newer
/// description (an operation removed, one added).
#[test]
fn the_command_writes_a_crate_and_a_second_run_prints_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("filevine-gateway");
    let command = |spec: &Path| gateway_command(spec, &out, &["--sdk-version", "0.1"]);
    let first = command(&root().join("codegen/tests/fixtures/gateway/gateway.yaml"));
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let said = String::from_utf8_lossy(&first.stdout);
    assert!(said.contains("31 change(s) to the description") && said.contains("public surface: a new crate"), "{said}");
    for file in ["Cargo.toml", "src/lib.rs", "src/generated.rs", "README.md"] {
        assert!(out.join(file).is_file(), "{file}");
    }
    let manifest = std::fs::read_to_string(out.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("name = \"filevine-gateway\"") && manifest.contains("filevine-identity-ext = \"0.1\""));
    assert!(manifest.contains("uuid = ") && manifest.contains("chrono = "), "the formats' crates: {manifest}");

    // A newer description: one operation gone, one new.
    let text = std::fs::read_to_string(root().join("codegen/tests/fixtures/gateway/gateway.yaml")).unwrap();
    let mut newer: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    let paths = newer["paths"].as_object_mut().unwrap();
    paths.remove("/fv-app/v2/Orgs/{orgId}/Users");
    let mut archive = paths["/fv-app/v2/Projects/{projectId}"]["get"].clone();
    archive["operationId"] = "archiveProject".into();
    paths.insert("/fv-app/v2/Projects/{projectId}/archive".into(), serde_json::json!({ "post": archive }));
    let changed = dir.path().join("gateway-2.yaml");
    std::fs::write(&changed, yaml(&newer)).unwrap();
    let second = command(&changed);
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    let verdict = String::from_utf8_lossy(&second.stdout);
    assert!(verdict.contains("1 added, 1 removed") && verdict.contains("BREAKING"), "{verdict}");
    assert!(verdict.contains("archive_project") && verdict.contains("list_org_users"), "{verdict}");
}

/// `filevine-codegen gateway --spec <spec> --out <out>` and `extra`.
fn gateway_command(spec: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_filevine-codegen"))
        .args(["gateway", "--spec"])
        .arg(spec)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

/// Bad input: every problem in one run, with its place; nothing written.
#[test]
fn the_command_names_every_problem_of_a_description_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("bad.yaml");
    std::fs::write(
        &spec,
        "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /fv-app/v2/Projects/{projectID}:\n    get:\n      \
         operationId: getProject\n      parameters:\n      - {name: projectId, in: path, required: true, schema: {type: integer}}\n      \
         - {name: q, in: query}\n      responses: {'200': {description: OK}}\n  /fv-app/v2/Matters/{matterId}:\n    get:\n      \
         operationId: getMatter\n      responses: {'200': {description: OK}}\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let run = gateway_command(&spec, &out, &[]);
    assert_eq!(run.status.code(), Some(1));
    let said = String::from_utf8_lossy(&run.stderr);
    // `{projectID}` for `projectId` is the gateway's own habit: written
    // with the declared spelling, not a problem.
    assert!(!said.contains("projectID"), "{said}");
    assert!(said.contains("bad.yaml:9") && said.contains("`q`"), "the parameter without a schema: {said}");
    assert!(said.contains("bad.yaml:12") && said.contains("matterId"), "the undeclared path parameter: {said}");
    assert!(!out.exists(), "nothing written");
    // Another Swagger version than 2.0: how to convert it.
    std::fs::write(&spec, "swagger: '1.2'\ninfo: {title: t, version: '1'}\npaths: {}\n").unwrap();
    let run = gateway_command(&spec, &out, &[]);
    assert!(String::from_utf8_lossy(&run.stderr).contains("swagger2openapi"));
    // Usage errors: exit 2.
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_filevine-codegen")).args(["gateway"]).output().unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("`--spec` is required"));
}

/// The form Filevine publishes the gateway's description in: Swagger 2.0,
/// converted by the command itself, every gateway shape prepared, the
/// conversion listed in the README.
#[test]
fn a_swagger_2_gateway_description_makes_a_crate_in_one_command() {
    let spec =
        Spec::read(&root().join("codegen/tests/fixtures/gateway/gateway-swagger2.yaml"), "swagger.yaml").unwrap();
    let built = filevine_identity_codegen::gateway_crate(&spec, &example_options()).unwrap();
    let generated = &built.generated;
    for method in ["get_project", "list_projects", "create_project", "tag_bulk"] {
        assert!(generated.surface.contains(&format!("async fn {method}<")), "{method}: {}", generated.surface);
    }
    assert!(!generated.source.contains("x_fv_orgid"), "the user headers are the client's");
    assert!(generated.source.contains("phase: Option<&'a ::std::vec::Vec<::std::string::String>>"));
    assert!(generated.source.contains("/fv-app/v2/Projects/{}"), "the {{projectID}} template, declared spelling");
    let null: Vec<_> = generated.adjustments.iter().filter_map(|a| a.no_content_as_null.as_deref()).collect();
    assert_eq!(null, ["tag_bulk"]);
    let readme = &built.files.iter().find(|(p, _)| *p == "README.md").unwrap().1;
    for said in
        ["Swagger 2.0, converted to OpenAPI 3.0.3", "the bearer scheme", "is written `/fv-app/v2/Projects/{projectId}`"]
    {
        assert!(readme.contains(said), "{said}: {readme}");
    }
}
