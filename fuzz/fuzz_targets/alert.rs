//! Fuzz target `alert`: see [`alertresponder_fuzz::alert`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| alertresponder_fuzz::alert::check(data));
