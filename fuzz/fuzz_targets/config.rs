//! See `camseal_fuzz::config`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    camseal_fuzz::config(data);
});
