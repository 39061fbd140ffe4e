//! aarch64 kernel: the ARMv8 AES instructions with PMULL GHASH ([`aes`], [`pmull`]).
//!
//! [`PmullKey`] is the detection token: [`PmullKey::new`] returns `None` unless the CPU has
//! the AES and PMULL extensions, so holding one proves the check was done, and the `unsafe`
//! calls below rely on exactly that.

/// Runs `$body` once for each `$r` in `0..$nr - 1` (the `aese`+`aesmc` rounds), unrolled
/// at compile time: `$nr` is a const generic, so the guards fold away, and both key sizes
/// become straight-line code with the GHASH steps interleaved.
macro_rules! unroll_rounds {
    ($nr:expr, |$r:ident| $body:block) => {
        unroll_rounds!(@ $nr, $r, $body, 0 1 2 3 4 5 6 7 8 9 10 11 12)
    };
    (@ $nr:expr, $r:ident, $body:block, $($n:literal)*) => {
        $(
            if $n + 1 < $nr {
                let $r: usize = $n;
                $body
            }
        )*
    };
}

mod aes;
mod pmull;

use crate::{Error, InOut, Nonce, Suite, Tag};

/// The ARMv8 AES and PMULL extensions (`FEAT_AES`, `FEAT_PMULL`).
pub(crate) fn has_aes_pmull() -> bool {
    std::arch::is_aarch64_feature_detected!("aes")
        && std::arch::is_aarch64_feature_detected!("pmull")
}

/// A key schedule for the AES + PMULL kernel; exists only on CPUs that run it.
pub(crate) struct PmullKey(Box<aes::Key>);

impl PmullKey {
    pub(crate) fn new(suite: Suite, key: &[u8]) -> Option<PmullKey> {
        if !has_aes_pmull() {
            return None;
        }
        // SAFETY: `has_aes_pmull()` returned true just above.
        Some(PmullKey(Box::new(unsafe { aes::Key::new(suite, key) })))
    }

    pub(crate) fn seal(&self, nonce: &Nonce, aad: &[u8], io: &InOut<'_>) -> Tag {
        // SAFETY: a `PmullKey` is only built after `has_aes_pmull()` returned true.
        unsafe { aes::seal(&self.0, nonce, aad, io) }
    }

    pub(crate) fn open(
        &self,
        nonce: &Nonce,
        aad: &[u8],
        io: &InOut<'_>,
        tag: &Tag,
    ) -> Result<(), Error> {
        // SAFETY: a `PmullKey` is only built after `has_aes_pmull()` returned true.
        unsafe { aes::open(&self.0, nonce, aad, io, tag) }
    }
}

#[cfg(test)]
mod tests {
    use crate::Backend;
    use crate::test_util::{check_backend, skip_unless};

    #[test]
    fn aes_pmull_matches_portable() {
        let reason = "this CPU lacks the ARMv8 AES/PMULL extensions";
        if let Some(b) = skip_unless(Backend::aes_pmull(), "aes_pmull_matches_portable", reason) {
            assert_eq!(b, Backend::ArmAesPmull);
            check_backend(b);
        }
    }
}
