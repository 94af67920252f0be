//! Fuzz target `emitter_answer`: see [`alertresponder_fuzz::emitter_answer`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| alertresponder_fuzz::emitter_answer::check(data));
