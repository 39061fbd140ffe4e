//! See `camseal_fuzz::share`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = camseal_fuzz::share(data);
});
