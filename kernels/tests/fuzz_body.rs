//! Runs the fuzz target's body (`test_util::fuzz_one`, see `kernels/fuzz`) on random inputs
//! in a normal `cargo test`, so the target cannot rot and its checks run without nightly.

use camseal_kernels::test_util::{emulated, fuzz_one};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if emulated() { 32 } else { 512 }))]

    #[test]
    fn fuzz_body_on_random_inputs(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        fuzz_one(&data);
    }
}

#[test]
fn fuzz_body_on_edge_inputs() {
    fuzz_one(&[]);
    fuzz_one(&[1]);
    fuzz_one(&[0xff; 100]);
    fuzz_one(&vec![0x5a; 4096]);
}
