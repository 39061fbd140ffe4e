//! Every AES-GCM backend this CPU runs against the RustCrypto reference, on fuzzer-chosen
//! suite, key, nonce, AAD and message (see `camseal_kernels::test_util::fuzz_one`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    camseal_kernels::test_util::fuzz_one(data);
});
