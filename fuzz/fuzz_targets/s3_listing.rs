//! See `camseal_fuzz::s3_listing`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    camseal_fuzz::s3_listing(data);
});
