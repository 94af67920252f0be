//! Fuzz target `eventbridge`: see [`alertresponder_fuzz::eventbridge`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| alertresponder_fuzz::eventbridge::check(data));
