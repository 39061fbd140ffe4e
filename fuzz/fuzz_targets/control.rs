//! See `camseal_fuzz::control`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = camseal_fuzz::control(data);
});
