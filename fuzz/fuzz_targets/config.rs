//! Fuzz target `config`: see [`alertresponder_fuzz::config`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| alertresponder_fuzz::config::check(data));
