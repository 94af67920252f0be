//! Fuzz target `reviewer_answer`: see [`alertresponder_fuzz::reviewer_answer`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| alertresponder_fuzz::reviewer_answer::check(data));
