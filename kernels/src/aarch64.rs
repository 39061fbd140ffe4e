//! aarch64 kernels (placeholder while the x86 ones are checked in).

pub(crate) fn has_aes_pmull() -> bool {
    false
}
