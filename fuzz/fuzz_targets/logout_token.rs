#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        filevine_identity_ext::fuzzing::logout_token(text);
    }
});
