//! See `camseal_fuzz::chain`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    camseal_fuzz::chain(data);
});
