#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    filevine_identity_ext::fuzzing::stored_record(data);
});
