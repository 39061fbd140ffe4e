//! x86-64 kernels: AES-NI with PCLMULQDQ ([`aesni`]), and VAES with VPCLMULQDQ on 256-bit
//! AVX2 vectors ([`vaes`]); GHASH lives in [`clmul`].
//!
//! The key types here are the detection tokens: [`AesNiKey::new`] and [`VaesKey::new`]
//! return `None` unless the CPU has the features, so holding one proves the check was done
//! and the `unsafe` calls below rely on exactly that.

/// Runs `$body` once for each AES round `$r` in `1..$nr`, unrolled at compile time (`$nr`
/// is a const generic, so the guards fold away). LLVM keeps the 13-round AES-256 loop
/// rolled when GHASH work is interleaved into it, which costs a branch per round and the
/// overlap between rounds; this makes both key sizes straight-line code.
macro_rules! unroll_rounds {
    ($nr:expr, |$r:ident| $body:block) => {
        unroll_rounds!(@ $nr, $r, $body, 1 2 3 4 5 6 7 8 9 10 11 12 13)
    };
    (@ $nr:expr, $r:ident, $body:block, $($n:literal)*) => {
        $(
            if $n < $nr {
                let $r: usize = $n;
                $body
            }
        )*
    };
}

mod aesni;
mod clmul;
mod vaes;

use crate::{Error, InOut, Nonce, Suite, Tag};

/// AES-NI, PCLMULQDQ and the SSSE3/SSE4.1 shuffles the kernel uses.
pub(crate) fn has_aesni_clmul() -> bool {
    std::arch::is_x86_feature_detected!("aes")
        && std::arch::is_x86_feature_detected!("pclmulqdq")
        && std::arch::is_x86_feature_detected!("ssse3")
        && std::arch::is_x86_feature_detected!("sse4.1")
}

/// Everything [`has_aesni_clmul`] checks, plus AVX2, VAES and VPCLMULQDQ.
pub(crate) fn has_vaes() -> bool {
    has_aesni_clmul()
        && std::arch::is_x86_feature_detected!("avx")
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("vaes")
        && std::arch::is_x86_feature_detected!("vpclmulqdq")
}

/// A key schedule for the AES-NI + PCLMULQDQ kernel; exists only on CPUs that run it.
pub(crate) struct AesNiKey(Box<aesni::Key>);

impl AesNiKey {
    pub(crate) fn new(suite: Suite, key: &[u8]) -> Option<AesNiKey> {
        if !has_aesni_clmul() {
            return None;
        }
        // SAFETY: `has_aesni_clmul()` returned true just above.
        Some(AesNiKey(Box::new(unsafe { aesni::Key::new(suite, key) })))
    }

    pub(crate) fn seal(&self, nonce: &Nonce, aad: &[u8], io: &InOut<'_>) -> Tag {
        // SAFETY: an `AesNiKey` is only built after `has_aesni_clmul()` returned true.
        unsafe { aesni::seal(&self.0, nonce, aad, io) }
    }

    pub(crate) fn open(
        &self,
        nonce: &Nonce,
        aad: &[u8],
        io: &InOut<'_>,
        tag: &Tag,
    ) -> Result<(), Error> {
        // SAFETY: an `AesNiKey` is only built after `has_aesni_clmul()` returned true.
        unsafe { aesni::open(&self.0, nonce, aad, io, tag) }
    }
}

/// A key schedule for the VAES + VPCLMULQDQ kernel; exists only on CPUs that run it.
pub(crate) struct VaesKey(Box<vaes::Key>);

impl VaesKey {
    pub(crate) fn new(suite: Suite, key: &[u8]) -> Option<VaesKey> {
        if !has_vaes() {
            return None;
        }
        // SAFETY: `has_vaes()` returned true just above.
        Some(VaesKey(Box::new(unsafe { vaes::Key::new(suite, key) })))
    }

    pub(crate) fn seal(&self, nonce: &Nonce, aad: &[u8], io: &InOut<'_>) -> Tag {
        // SAFETY: a `VaesKey` is only built after `has_vaes()` returned true.
        unsafe { vaes::seal(&self.0, nonce, aad, io) }
    }

    pub(crate) fn open(
        &self,
        nonce: &Nonce,
        aad: &[u8],
        io: &InOut<'_>,
        tag: &Tag,
    ) -> Result<(), Error> {
        // SAFETY: a `VaesKey` is only built after `has_vaes()` returned true.
        unsafe { vaes::open(&self.0, nonce, aad, io, tag) }
    }
}

#[cfg(test)]
mod tests {
    use crate::Backend;
    use crate::test_util::{check_backend, skip_unless};

    #[test]
    fn aesni_clmul_matches_portable() {
        let reason = "this CPU lacks AES-NI/PCLMULQDQ/SSSE3/SSE4.1";
        if let Some(b) = skip_unless(Backend::aesni(), "aesni_clmul_matches_portable", reason) {
            assert_eq!(b, Backend::AesNiClmul);
            check_backend(b);
        }
    }

    #[test]
    fn vaes_avx2_matches_portable() {
        let reason = "this CPU lacks VAES/VPCLMULQDQ/AVX2";
        if let Some(b) = skip_unless(Backend::vaes(), "vaes_avx2_matches_portable", reason) {
            assert_eq!(b, Backend::VaesVpclmul);
            check_backend(b);
        }
    }

    #[test]
    fn detection_is_consistent() {
        // VAES detection includes everything AES-NI needs: the VAES kernel runs AES-NI code
        // for the AAD and the tail.
        if super::has_vaes() {
            assert!(super::has_aesni_clmul());
        }
    }
}
