#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = filevine_identity_ext::fuzzing::token_response(data);
});
