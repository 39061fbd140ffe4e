//! See `camseal_fuzz::recipients`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    camseal_fuzz::recipients(data);
});
