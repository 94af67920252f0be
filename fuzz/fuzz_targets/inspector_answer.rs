//! Fuzz target `inspector_answer`: see [`alertresponder_fuzz::inspector_answer`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| alertresponder_fuzz::inspector_answer::check(data));
