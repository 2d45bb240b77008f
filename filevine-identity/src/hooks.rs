//! Request hooks that code generation wires into every operation.

/// Removes the `api-version` header progenitor adds to every request.
///
/// progenitor sends `api-version: <info.version>` unconditionally. The
/// Filevine token endpoint is a standard OAuth 2.0 endpoint that does not ask
/// for it, and a strict server may reject unknown headers, so the generator
/// is configured (`with_pre_hook`) to call this before each request is sent.
pub(crate) fn remove_api_version(request: &mut reqwest::Request) {
    request.headers_mut().remove("api-version");
}

#[cfg(test)]
mod tests {
    #[test]
    fn removes_only_the_api_version_header() {
        let client = reqwest::Client::new();
        let mut request = client
            .get("http://127.0.0.1/")
            .header("api-version", "2.0")
            .header("accept", "application/json")
            .build()
            .unwrap();
        super::remove_api_version(&mut request);
        assert!(request.headers().get("api-version").is_none());
        assert_eq!(request.headers().get("accept").unwrap(), "application/json");
    }
}
