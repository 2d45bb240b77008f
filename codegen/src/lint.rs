//! Checks on the raw spec before progenitor runs: what progenitor would
//! panic on, and what the generator would drop without a word.
//!
//! - **Problems** stop generation, all of them reported in one run, each
//!   with the operation, the JSON pointer, the line and the fix: error
//!   responses of one operation with different schemas (progenitor asserts
//!   `response_types.len() <= 1`), a `$ref` to nothing, a form body with an
//!   `encoding` map, a parameter with neither `schema` nor `content`, a path
//!   template that does not match its path parameters (missing, extra, or
//!   spelled in another case: progenitor panics), a security scheme the
//!   hooks cannot apply, and an operation or path that names its own
//!   `servers` without saying which host it is (`x-fv-host`).
//! - **Warnings** name what the generated client will ignore: a schema
//!   keyword nobody reads (often a property indented one level too little),
//!   `discriminator`, `callbacks`, `links`, `webhooks`. `cargo xtask codegen
//!   --check` fails on a warning unless the spec accepts it where it occurs:
//!
//! ```yaml
//! TokenRequest:
//!   x-codegen-accept:
//!     discriminator: typify ignores it; each variant's one-value grant_type selects the variant
//! ```

use std::fmt;

use serde_json::Value;

/// One finding, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// JSON pointer of the construct.
    pub pointer: String,
    /// 1-based line in the spec file (0 when unknown, e.g. a JSON spec).
    pub line: usize,
    /// The operation it belongs to, if any.
    pub operation: Option<String>,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub fix: String,
}

/// `42: /pointer (operation `x`): what; fix: how` — put the file name in
/// front for `file:line`.
impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.line, self.pointer)?;
        if let Some(operation) = &self.operation {
            write!(f, " (operation `{operation}`)")?;
        }
        write!(f, ": {}; fix: {}", self.message, self.fix)
    }
}

/// What the checks found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    /// Constructs progenitor cannot generate: generation stops.
    pub problems: Vec<Finding>,
    /// Constructs the generated client ignores, not accepted by the spec.
    pub warnings: Vec<Finding>,
    /// Warnings the spec accepts with `x-codegen-accept` (pointer, reason).
    pub accepted: Vec<(String, String)>,
}

/// The schema keywords the generator reads, besides the ones the
/// translation removes (`translate::REMOVED_KEYWORDS`) or refuses with its
/// own error (`translate::UNTRANSLATABLE_KEYWORDS`). Anything else in a
/// schema is a warning.
const SCHEMA_KEYWORDS: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "default",
    "example",
    "examples",
    "enum",
    "const",
    "multipleOf",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "maxProperties",
    "minProperties",
    "required",
    "properties",
    "additionalProperties",
    "items",
    "allOf",
    "oneOf",
    "anyOf",
    "not",
    "nullable",
    "readOnly",
    "writeOnly",
    "deprecated",
    "$ref",
    "xml",
    "externalDocs",
    "contentEncoding",
];

fn is_schema_keyword(key: &str) -> bool {
    [SCHEMA_KEYWORDS, crate::translate::REMOVED_KEYWORDS, crate::translate::UNTRANSLATABLE_KEYWORDS]
        .iter()
        .any(|list| list.contains(&key))
}

const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// Whether a path item's key is an HTTP method (an operation).
pub(crate) fn is_method(key: &str) -> bool {
    METHODS.contains(&key)
}

/// Runs every check on the raw (untranslated) document.
pub(crate) fn check(text: &str, doc: &Value) -> Findings {
    let mut lint = Lint { lines: Lines::new(text), doc, findings: Findings::default() };
    lint.references(doc, "");
    lint.schemas();
    lint.operations();
    lint.parameters();
    lint.security_schemes();
    lint.servers();
    if doc.get("webhooks").is_some() {
        lint.warn("/webhooks", None, "the generated client ignores `webhooks`", "remove them, or accept them");
    }
    lint.findings
}

struct Lint<'a> {
    lines: Lines,
    doc: &'a Value,
    findings: Findings,
}

fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

impl Lint<'_> {
    fn finding(&self, pointer: &str, operation: Option<&str>, message: &str, fix: &str) -> Finding {
        Finding {
            pointer: pointer.to_owned(),
            line: self.lines.line_of(pointer),
            operation: operation.map(str::to_owned),
            message: message.to_owned(),
            fix: fix.to_owned(),
        }
    }

    fn problem(&mut self, pointer: &str, operation: Option<&str>, message: &str, fix: &str) {
        let finding = self.finding(pointer, operation, message, fix);
        self.findings.problems.push(finding);
    }

    /// A warning, unless the node at `pointer`'s parent accepts its last
    /// segment with `x-codegen-accept`.
    fn warn(&mut self, pointer: &str, operation: Option<&str>, message: &str, fix: &str) {
        let (parent, keyword) = pointer.rsplit_once('/').unwrap_or(("", pointer));
        let keyword = keyword.replace("~1", "/").replace("~0", "~");
        let parent_node = if parent.is_empty() { Some(self.doc) } else { self.doc.pointer(parent) };
        let reason = parent_node
            .and_then(|node| node.get("x-codegen-accept"))
            .and_then(|accept| accept.get(&keyword))
            .and_then(Value::as_str);
        match reason {
            Some(reason) => self.findings.accepted.push((pointer.to_owned(), reason.to_owned())),
            None => {
                let finding = self.finding(pointer, operation, message, fix);
                self.findings.warnings.push(finding);
            }
        }
    }

    /// Every local `$ref` must resolve.
    fn references(&mut self, node: &Value, pointer: &str) {
        match node {
            Value::Object(map) => {
                for (key, value) in map {
                    let here = format!("{pointer}/{}", escape(key));
                    if key == "$ref"
                        && let Some(target) = value.as_str()
                        && let Some(local) = target.strip_prefix('#')
                        && self.doc.pointer(local).is_none()
                    {
                        self.problem(
                            &here,
                            None,
                            &format!("`$ref: {target}` points to nothing"),
                            "define the target, or correct the name",
                        );
                    }
                    self.references(value, &here);
                }
            }
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    self.references(item, &format!("{pointer}/{index}"));
                }
            }
            _ => {}
        }
    }

    /// Every schema position of the document.
    fn schemas(&mut self) {
        let doc = self.doc;
        if let Some(schemas) = doc.pointer("/components/schemas").and_then(Value::as_object) {
            for (name, schema) in schemas {
                self.schema(schema, &format!("/components/schemas/{}", escape(name)), None);
            }
        }
        for (pointer, operation_id, operation) in operations(doc) {
            for (index, parameter) in
                operation.get("parameters").and_then(Value::as_array).into_iter().flatten().enumerate()
            {
                if let Some(schema) = parameter.get("schema") {
                    self.schema(schema, &format!("{pointer}/parameters/{index}/schema"), operation_id);
                }
            }
            for (media, body) in contents(operation.get("requestBody")) {
                if let Some(schema) = body.get("schema") {
                    self.schema(
                        schema,
                        &format!("{pointer}/requestBody/content/{}/schema", escape(media)),
                        operation_id,
                    );
                }
            }
            let responses = operation.get("responses").and_then(Value::as_object).into_iter().flatten();
            for (status, response) in responses {
                for (media, body) in contents(Some(response)) {
                    if let Some(schema) = body.get("schema") {
                        let at = format!("{pointer}/responses/{status}/content/{}/schema", escape(media));
                        self.schema(schema, &at, operation_id);
                    }
                }
            }
        }
    }

    fn schema(&mut self, schema: &Value, pointer: &str, operation: Option<&str>) {
        let Some(map) = schema.as_object() else { return };
        for key in map.keys() {
            let here = format!("{pointer}/{}", escape(key));
            if key == "discriminator" {
                self.warn(
                    &here,
                    operation,
                    "typify ignores `discriminator`: a `oneOf` becomes an untagged enum",
                    "give each variant a one-value property (`const`) that tells them apart, then accept it with \
                     `x-codegen-accept: {discriminator: <why>}` on this schema",
                );
            } else if !key.starts_with("x-") && !is_schema_keyword(key) {
                self.warn(
                    &here,
                    operation,
                    &format!("`{key}` is not a schema keyword: the generator ignores it"),
                    "if it is a property, indent it under `properties:`; otherwise remove it",
                );
            }
        }
        if let Some(properties) = map.get("properties").and_then(Value::as_object) {
            for (name, property) in properties {
                self.schema(property, &format!("{pointer}/properties/{}", escape(name)), operation);
            }
        }
        for key in ["items", "not", "additionalProperties"] {
            if let Some(inner) = map.get(key).filter(|v| v.is_object()) {
                self.schema(inner, &format!("{pointer}/{key}"), operation);
            }
        }
        for key in ["allOf", "oneOf", "anyOf"] {
            for (index, inner) in map.get(key).and_then(Value::as_array).into_iter().flatten().enumerate() {
                self.schema(inner, &format!("{pointer}/{key}/{index}"), operation);
            }
        }
    }

    /// Per operation: response kinds progenitor can generate, form
    /// encodings, and the constructs it drops.
    fn operations(&mut self) {
        for (pointer, operation_id, operation) in operations(self.doc) {
            let responses = operation.get("responses").and_then(Value::as_object);
            for (label, is_error) in [("success", false), ("error", true)] {
                // In status order, each kind with its statuses.
                let mut kinds: Vec<(String, Vec<String>)> = Vec::new();
                for (status, response) in responses.into_iter().flatten() {
                    let error = status == "default" || status.starts_with(['4', '5']);
                    if error == is_error && (is_error || status.starts_with('2')) {
                        let kind = response_kind(response);
                        match kinds.iter_mut().find(|(k, _)| *k == kind) {
                            Some((_, statuses)) => statuses.push(status.clone()),
                            None => kinds.push((kind, vec![status.clone()])),
                        }
                    }
                }
                if kinds.len() > 1 {
                    let listed: Vec<String> =
                        kinds.iter().map(|(kind, statuses)| format!("{} → {kind}", statuses.join(", "))).collect();
                    self.problem(
                        &format!("{pointer}/responses"),
                        operation_id,
                        &format!(
                            "the {label} responses have different bodies ({}); progenitor panics on that \
                             (`response_types.len() <= 1`)",
                            listed.join("; ")
                        ),
                        &format!(
                            "give every {label} response of this operation the same schema (one schema whose \
                             `oneOf` or optional fields cover each shape), or the same absence of content"
                        ),
                    );
                }
            }
            for (media, body) in contents(operation.get("requestBody")) {
                if media == "application/x-www-form-urlencoded" && body.get("encoding").is_some() {
                    self.problem(
                        &format!("{pointer}/requestBody/content/{}/encoding", escape(media)),
                        operation_id,
                        "progenitor panics on an `encoding` map in a form body",
                        "remove `encoding` (form fields are sent as strings)",
                    );
                }
            }
            if operation.get("callbacks").is_some() {
                self.warn(
                    &format!("{pointer}/callbacks"),
                    operation_id,
                    "the generated client ignores `callbacks`",
                    "remove them, or accept them",
                );
            }
            for (status, response) in responses.into_iter().flatten() {
                if response.get("links").is_some() {
                    self.warn(
                        &format!("{pointer}/responses/{status}/links"),
                        operation_id,
                        "the generated client ignores `links`",
                        "remove them, or accept them",
                    );
                }
            }
        }
    }
}

impl Lint<'_> {
    /// A parameter object, through a local `$ref`.
    fn resolve<'v>(&self, node: &'v Value) -> &'v Value
    where
        Self: 'v,
    {
        match node.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')) {
            Some(local) => self.doc.pointer(local).unwrap_or(node),
            None => node,
        }
    }

    /// Per operation: every parameter has a `schema` or a `content`, and
    /// the path template's names are its `in: path` parameters, spelled
    /// the same.
    fn parameters(&mut self) {
        let doc = self.doc;
        for (path, item) in doc.get("paths").and_then(Value::as_object).into_iter().flatten() {
            let path_pointer = format!("/paths/{}", escape(path));
            let shared: Vec<(String, &Value)> = item
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(index, p)| (format!("{path_pointer}/parameters/{index}"), self.resolve(p)))
                .collect();
            for (pointer, parameter) in &shared {
                self.parameter_schema(pointer, parameter, None);
            }
            for method in METHODS {
                let Some(operation) = item.get(*method) else { continue };
                let pointer = format!("{path_pointer}/{method}");
                let operation_id = operation.get("operationId").and_then(Value::as_str);
                let own: Vec<(String, &Value)> = operation
                    .get("parameters")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                    .map(|(index, p)| (format!("{pointer}/parameters/{index}"), self.resolve(p)))
                    .collect();
                for (at, parameter) in &own {
                    self.parameter_schema(at, parameter, operation_id);
                }
                let declared: Vec<(&str, &str)> = own
                    .iter()
                    .chain(&shared)
                    .filter(|(_, p)| p.get("in").and_then(Value::as_str) == Some("path"))
                    .filter_map(|(at, p)| Some((p.get("name").and_then(Value::as_str)?, at.as_str())))
                    .collect();
                self.path_template(path, &pointer, operation_id, &declared);
            }
        }
    }

    fn parameter_schema(&mut self, pointer: &str, parameter: &Value, operation: Option<&str>) {
        if parameter.get("schema").is_some() || parameter.get("content").is_some() {
            return;
        }
        let name = parameter.get("name").and_then(Value::as_str).unwrap_or("?");
        let place = parameter.get("in").and_then(Value::as_str).unwrap_or("?");
        self.problem(
            pointer,
            operation,
            &format!("parameter `{name}` (in: {place}) has neither `schema` nor `content`"),
            "add `schema: {type: string}` (or the type it has) to the parameter",
        );
    }

    /// The `{names}` of `path` against the `in: path` parameters declared.
    fn path_template(&mut self, path: &str, pointer: &str, operation: Option<&str>, declared: &[(&str, &str)]) {
        let names = template_names(path);
        for name in &names {
            if declared.iter().any(|(d, _)| d == name) {
                continue;
            }
            match declared.iter().find(|(d, _)| d.eq_ignore_ascii_case(name)) {
                Some((spelled, _)) => self.problem(
                    pointer,
                    operation,
                    &format!(
                        "the path template spells `{{{name}}}`, the parameter is declared `{spelled}` (progenitor \
                         panics: \"{spelled} missing from path\")"
                    ),
                    &format!("write `{{{spelled}}}` in the path, or name the parameter `{name}`"),
                ),
                None => self.problem(
                    pointer,
                    operation,
                    &format!("the path template has `{{{name}}}` and no `in: path` parameter declares it"),
                    &format!("declare `{name}` under `parameters` with `in: path, required: true` and a schema"),
                ),
            }
        }
        for (name, at) in declared {
            if !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                self.problem(
                    at,
                    operation,
                    &format!("parameter `{name}` is `in: path`, and the path `{path}` has no `{{{name}}}`"),
                    &format!("add `{{{name}}}` to the path, or declare the parameter `in: query` or `in: header`"),
                );
            }
        }
    }

    /// Every security scheme must be one the client's hooks apply.
    fn security_schemes(&mut self) {
        let doc = self.doc;
        for (name, scheme) in
            doc.pointer("/components/securitySchemes").and_then(Value::as_object).into_iter().flatten()
        {
            let kind = scheme.get("type").and_then(Value::as_str).unwrap_or_default();
            let http = scheme.get("scheme").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
            if kind == "http" && matches!(http.as_str(), "bearer" | "basic" | "dpop") {
                continue;
            }
            let pointer = format!("/components/securitySchemes/{}", escape(name));
            let header = scheme.get("name").and_then(Value::as_str).unwrap_or_default();
            let fix = if kind == "apiKey" && header.eq_ignore_ascii_case("authorization") {
                "an `apiKey` in the `Authorization` header that carries `Bearer <token>` is the bearer scheme: \
                 write `type: http, scheme: bearer`"
                    .to_owned()
            } else {
                "describe it as `type: http` with `scheme: bearer`, `basic` or `dpop`, or add the kind to Scheme in \
                 filevine-identity/src/operation.rs and the hooks"
                    .to_owned()
            };
            self.problem(
                &pointer,
                None,
                &format!(
                    "security scheme `{name}` (type {kind:?}{}) is not one the client's hooks can apply",
                    if http.is_empty() { String::new() } else { format!(", scheme {http:?}") }
                ),
                &fix,
            );
        }
    }

    /// A path or operation that names its own `servers` must say which
    /// host that is (`x-fv-host: identity` or `gateway`): the generated
    /// method sends there. Without it the call would silently go to the
    /// identity host.
    fn servers(&mut self) {
        let doc = self.doc;
        for (path, item) in doc.get("paths").and_then(Value::as_object).into_iter().flatten() {
            let path_pointer = format!("/paths/{}", escape(path));
            if let Some(servers) = item.get("servers") {
                self.own_servers(servers, &format!("{path_pointer}/servers"), None);
            }
            for method in METHODS {
                let Some(operation) = item.get(*method) else { continue };
                if let Some(servers) = operation.get("servers") {
                    let operation_id = operation.get("operationId").and_then(Value::as_str);
                    self.own_servers(servers, &format!("{path_pointer}/{method}/servers"), operation_id);
                }
            }
        }
    }

    fn own_servers(&mut self, servers: &Value, pointer: &str, operation: Option<&str>) {
        let hosts: Vec<Option<&str>> = servers
            .as_array()
            .into_iter()
            .flatten()
            .map(|server| server.get(HOST_MARK).and_then(Value::as_str).filter(|h| HOSTS.contains(h)))
            .collect();
        let urls: Vec<&str> =
            servers.as_array().into_iter().flatten().filter_map(|s| s.get("url").and_then(Value::as_str)).collect();
        if hosts.is_empty() || hosts.iter().any(Option::is_none) {
            self.problem(
                pointer,
                operation,
                &format!(
                    "names its own server ({}) without `{HOST_MARK}`: the generated method would send to the identity \
                     host instead",
                    urls.join(", ")
                ),
                &format!(
                    "mark each server `{HOST_MARK}: gateway` (sent to the configured region's API gateway) or \
                     `{HOST_MARK}: identity` (the identity authority), or remove `servers` here"
                ),
            );
        } else if hosts.windows(2).any(|pair| pair[0] != pair[1]) {
            self.problem(
                pointer,
                operation,
                "lists servers of different hosts (`x-fv-host`): a method sends to one",
                "keep the servers of one host here",
            );
        }
    }
}

/// The extension that says which host a path's or operation's own
/// `servers` are, and its values.
pub(crate) const HOST_MARK: &str = "x-fv-host";
pub(crate) const HOSTS: [&str; 2] = ["identity", "gateway"];

/// The `{names}` of a path template, in order.
fn template_names(path: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else { break };
        names.push(&rest[open + 1..open + close]);
        rest = &rest[open + close + 1..];
    }
    names
}

/// `(pointer, operationId, operation)` for every operation.
fn operations(doc: &Value) -> Vec<(String, Option<&str>, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc.get("paths").and_then(Value::as_object).into_iter().flatten() {
        for method in METHODS {
            if let Some(operation) = item.get(*method) {
                let pointer = format!("/paths/{}/{method}", escape(path));
                out.push((pointer, operation.get("operationId").and_then(Value::as_str), operation));
            }
        }
    }
    out
}

/// The media types of a request body or response.
fn contents(holder: Option<&Value>) -> Vec<(&String, &Value)> {
    holder.and_then(|h| h.get("content")).and_then(Value::as_object).into_iter().flatten().collect()
}

/// What progenitor makes of a response body: no content, a JSON schema
/// (by its text, so two `$ref`s to one schema are one kind), or raw bytes.
fn response_kind(response: &Value) -> String {
    let content = contents(Some(response));
    if content.is_empty() {
        return "no content".to_owned();
    }
    match content.iter().find(|(media, _)| media.contains("json")) {
        Some((_, body)) => match body.get("schema") {
            Some(schema) => match schema.get("$ref").and_then(Value::as_str) {
                Some(target) => target.rsplit('/').next().unwrap_or(target).to_owned(),
                None => schema.to_string(),
            },
            None => "JSON without a schema".to_owned(),
        },
        None => "raw bytes".to_owned(),
    }
}

/// Finds the line of a JSON pointer in block-style YAML by following keys
/// and list items down the indentation. Good for the way specs are written;
/// where it loses the trail (flow style, JSON) it answers the deepest line
/// it found, or 0.
pub(crate) struct Lines {
    /// Per line: the indentation of its key (after any `- `), the text from
    /// there, and the indentation of its `- ` if it starts a list item.
    lines: Vec<Option<(usize, String, Option<usize>)>>,
}

impl Lines {
    pub(crate) fn new(text: &str) -> Self {
        let lines = text
            .lines()
            .map(|line| {
                let trimmed = line.trim_start();
                if trimmed.is_empty() || trimmed.starts_with('#') {
                    return None;
                }
                let indent = line.len() - trimmed.len();
                match trimmed.strip_prefix("- ") {
                    Some(rest) => {
                        let body = rest.trim_start();
                        Some((indent + (trimmed.len() - body.len()), body.to_owned(), Some(indent)))
                    }
                    None => Some((indent, trimmed.to_owned(), None)),
                }
            })
            .collect();
        Self { lines }
    }

    pub(crate) fn line_of(&self, pointer: &str) -> usize {
        let mut start = 0;
        let mut parent: Option<usize> = None;
        let mut found = 0;
        for raw in pointer.split('/').skip(1) {
            let segment = raw.replace("~1", "/").replace("~0", "~");
            let Some((index, indent, next)) = self.find(start, parent, &segment) else { return found };
            found = index + 1;
            start = next;
            parent = Some(indent);
        }
        found
    }

    /// `(line, indentation of its children's parent, where to look next)`
    /// for `segment` — a key, or the n-th list item — among the children
    /// of the node at indentation `parent`, from line `start`.
    fn find(&self, start: usize, parent: Option<usize>, segment: &str) -> Option<(usize, usize, usize)> {
        // A number is a list index only when the children are list items
        // (`'200':` response keys are numbers too).
        let first_is_item = self.lines.iter().skip(start).flatten().next().is_some_and(|(_, _, item)| item.is_some());
        let wanted_item: Option<usize> = segment.parse().ok().filter(|_| first_is_item);
        let mut level: Option<usize> = None;
        let mut items = 0;
        for (index, line) in self.lines.iter().enumerate().skip(start) {
            let Some((key_indent, body, item)) = line else { continue };
            if parent.is_some_and(|p| *key_indent <= p) {
                return None;
            }
            match (wanted_item, item) {
                (Some(n), Some(item_indent)) => {
                    if *level.get_or_insert(*item_indent) != *item_indent {
                        continue;
                    }
                    if items == n {
                        // The item's first key is on this line.
                        return Some((index, item_indent + 1, index));
                    }
                    items += 1;
                }
                (Some(_), None) => {}
                (None, _) => {
                    if *level.get_or_insert(*key_indent) != *key_indent {
                        continue;
                    }
                    for quoted in [segment.to_owned(), format!("'{segment}'"), format!("\"{segment}\"")] {
                        if body.strip_prefix(quoted.as_str()).is_some_and(|rest| rest.starts_with(':')) {
                            return Some((index, *key_indent, index + 1));
                        }
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = "\
openapi: 3.1.0
paths:
  /a/b:
    get:
      responses:
        '200':
          description: ok
components:
  schemas:
    Thing:
      type: object
      required: [a]
      properties:
        a:
          type: string
      nme:
        type: string
    List:
      oneOf:
        - $ref: '#/components/schemas/Thing'
        - type: string
";

    #[test]
    fn lines_follow_keys_and_items() {
        let lines = Lines::new(SPEC);
        assert_eq!(lines.line_of("/paths/~1a~1b/get/responses/200"), 6);
        assert_eq!(lines.line_of("/components/schemas/Thing/properties/a"), 14);
        assert_eq!(lines.line_of("/components/schemas/Thing/nme"), 16);
        assert_eq!(lines.line_of("/components/schemas/List/oneOf/1"), 21);
        assert_eq!(lines.line_of("/components/schemas/Nope"), 9, "the deepest line found");
    }

    #[test]
    fn a_dedented_property_is_a_warning_with_its_line() {
        let doc: Value = serde_yaml_ng::from_str(SPEC).unwrap();
        let findings = check(SPEC, &doc);
        assert_eq!(findings.warnings.len(), 1, "{findings:?}");
        let warning = &findings.warnings[0];
        assert_eq!((warning.pointer.as_str(), warning.line), ("/components/schemas/Thing/nme", 16));
        assert!(warning.to_string().starts_with("16: /components/schemas/Thing/nme: "), "{warning}");
        assert!(warning.to_string().contains("indent it under `properties:`"), "{warning}");
    }
}
