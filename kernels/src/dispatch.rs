//! Which kernel runs: detected once per key schedule, stored in it, never re-checked on the
//! hot path.
//!
//! Tiers, best first:
//! - x86-64: [`Backend::VaesVpclmul`] (`x86-64/vaes-avx2`), then [`Backend::AesNiClmul`]
//!   (`x86-64/aesni-clmul`), then [`Backend::Portable`].
//! - aarch64: [`Backend::ArmAesPmull`] (`aarch64/aes-pmull`), then [`Backend::Portable`].
//!
//! # Forcing a path
//! - API: the explicit constructors [`Backend::vaes`], [`Backend::aesni`],
//!   [`Backend::aes_pmull`] and [`Backend::portable`] return a backend only if this CPU runs it;
//!   pass it to [`crate::Aead::with_backend`].
//! - Environment: `CAMSEAL_KERNEL=portable|aesni-clmul|vaes-avx2|aes-pmull` (the path names
//!   with or without their `x86-64/` / `aarch64/` prefix) caps [`Backend::detect`] and
//!   [`Backend::available`]. A cap can only lower the tier: asking for a tier this CPU lacks
//!   gives the best tier below it that the CPU has (`vaes-avx2` on a CPU without VAES gives
//!   `aesni-clmul`; `aes-pmull` on x86-64 caps at the middle tier, `aesni-clmul`). An
//!   unrecognised value caps at `portable`, so a typo never selects a faster path than asked.
//!   The variable is read once per process. It is an unstable test and bench hook.
//!
//! [`crate::Aead::with_backend`] applies the same rule to a backend the CPU lacks (a
//! `Backend` value can be named directly): it runs on the best available tier below it, and
//! [`crate::Aead::backend`] reports what was chosen. Under Miri detection always gives
//! `Portable`.

use std::sync::OnceLock;

/// An AES-GCM implementation tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// x86-64 AES-NI with PCLMULQDQ GHASH, eight blocks in flight (`x86-64/aesni-clmul`).
    AesNiClmul,
    /// ARMv8 AES with PMULL GHASH, eight blocks in flight (`aarch64/aes-pmull`).
    ArmAesPmull,
    /// RustCrypto `aes-gcm`: the reference. It uses the `aes` crate's own runtime-detected
    /// hardware AES, with a table-free GHASH (`portable`).
    Portable,
    /// x86-64 VAES and VPCLMULQDQ on 256-bit AVX2 vectors, no AVX-512
    /// (`x86-64/vaes-avx2`).
    VaesVpclmul,
}

impl Backend {
    /// The best backend this CPU can run, lowered by `CAMSEAL_KERNEL` if set.
    pub fn detect() -> Backend {
        *DETECTED.get_or_init(|| {
            let cap = std::env::var("CAMSEAL_KERNEL").ok();
            best_at_or_below(cap.as_deref().map_or(MAX_TIER, parse_cap))
        })
    }

    /// The portable backend, available everywhere.
    pub fn portable() -> Backend {
        Backend::Portable
    }

    /// The AES-NI + PCLMULQDQ backend, if this CPU has AES-NI, PCLMULQDQ, SSSE3 and SSE4.1.
    /// Not lowered by `CAMSEAL_KERNEL`.
    pub fn aesni() -> Option<Backend> {
        Backend::AesNiClmul
            .supported()
            .then_some(Backend::AesNiClmul)
    }

    /// The VAES + VPCLMULQDQ (AVX2) backend, if this CPU has those and everything
    /// [`Backend::aesni`] needs. Not lowered by `CAMSEAL_KERNEL`.
    pub fn vaes() -> Option<Backend> {
        Backend::VaesVpclmul
            .supported()
            .then_some(Backend::VaesVpclmul)
    }

    /// The ARMv8 AES + PMULL backend, if this CPU has the AES and PMULL extensions. Not
    /// lowered by `CAMSEAL_KERNEL`.
    pub fn aes_pmull() -> Option<Backend> {
        Backend::ArmAesPmull
            .supported()
            .then_some(Backend::ArmAesPmull)
    }

    /// Every backend this CPU can run at or below the `CAMSEAL_KERNEL` cap, best first. Tests
    /// iterate over it.
    pub fn available() -> Vec<Backend> {
        let best = Backend::detect();
        ALL.iter()
            .copied()
            .filter(|b| b.supported() && b.tier() <= best.tier())
            .collect()
    }

    /// Whether this CPU can run `self` (ignores `CAMSEAL_KERNEL`).
    pub fn is_supported(self) -> bool {
        self.supported()
    }

    /// The stable path name printed by `camseal bench kernels` and written to its JSON.
    pub const fn name(self) -> &'static str {
        match self {
            Backend::AesNiClmul => "x86-64/aesni-clmul",
            Backend::ArmAesPmull => "aarch64/aes-pmull",
            Backend::Portable => "portable",
            Backend::VaesVpclmul => "x86-64/vaes-avx2",
        }
    }

    /// The backend named `name` (a path name, with or without its architecture prefix),
    /// whether or not this CPU runs it.
    pub fn from_name(name: &str) -> Option<Backend> {
        let short = name.rsplit('/').next().unwrap_or(name);
        ALL.iter()
            .copied()
            .find(|b| b.name().rsplit('/').next() == Some(short))
    }

    /// `self` if this CPU runs it, else the best supported backend of a lower tier.
    pub(crate) fn lowered_to_supported(self) -> Backend {
        if self.supported() {
            self
        } else {
            best_at_or_below(self.tier().saturating_sub(1))
        }
    }

    fn tier(self) -> Tier {
        match self {
            Backend::Portable => 0,
            Backend::AesNiClmul | Backend::ArmAesPmull => 1,
            Backend::VaesVpclmul => 2,
        }
    }

    fn supported(self) -> bool {
        if cfg!(miri) {
            return self == Backend::Portable;
        }
        match self {
            Backend::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Backend::AesNiClmul => crate::x86::has_aesni_clmul(),
            #[cfg(target_arch = "x86_64")]
            Backend::VaesVpclmul => crate::x86::has_vaes(),
            #[cfg(target_arch = "aarch64")]
            Backend::ArmAesPmull => crate::aarch64::has_aes_pmull(),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }
}

impl core::fmt::Display for Backend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// A tier number: 0 portable, 1 one 128-bit vector per block, 2 256-bit vectors.
type Tier = u8;

/// The tier a `CAMSEAL_KERNEL` value caps at; unknown names cap at portable.
fn parse_cap(s: &str) -> Tier {
    Backend::from_name(s.trim()).map_or(0, Backend::tier)
}

/// The best supported backend whose tier is at most `cap`.
fn best_at_or_below(cap: Tier) -> Backend {
    ALL.iter()
        .copied()
        .filter(|b| b.tier() <= cap)
        .find(|b| b.supported())
        .unwrap_or(Backend::Portable)
}

const MAX_TIER: Tier = 2;

static DETECTED: OnceLock<Backend> = OnceLock::new();

/// Every backend, best tier first.
const ALL: [Backend; 4] = [
    Backend::VaesVpclmul,
    Backend::AesNiClmul,
    Backend::ArmAesPmull,
    Backend::Portable,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for b in ALL {
            assert_eq!(Backend::from_name(b.name()), Some(b));
            let short = b.name().rsplit('/').next().unwrap();
            assert_eq!(Backend::from_name(short), Some(b));
        }
        assert_eq!(Backend::from_name("aes-gcm-turbo"), None);
        assert_eq!(parse_cap("nonsense"), 0);
        assert_eq!(parse_cap("vaes-avx2"), 2);
    }

    #[test]
    fn lowering_never_raises_the_tier() {
        for b in ALL {
            let got = b.lowered_to_supported();
            assert!(got.supported());
            assert!(got.tier() <= b.tier());
            if b.supported() {
                assert_eq!(got, b);
            }
        }
        assert_eq!(best_at_or_below(0), Backend::Portable);
    }

    #[test]
    fn detect_is_available_and_best() {
        let all = Backend::available();
        assert_eq!(all.first(), Some(&Backend::detect()));
        assert_eq!(all.last(), Some(&Backend::Portable));
    }
}
