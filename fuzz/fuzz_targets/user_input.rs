#![no_main]

libfuzzer_sys::fuzz_target!(|text: &str| {
    filevine_identity_ext::fuzzing::user_input(text);
});
