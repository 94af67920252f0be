//! Fuzz target `request_body`: see [`alertresponder_fuzz::request_body`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| alertresponder_fuzz::request_body::check(data));
