//! Which kernel runs: detected once per key schedule, stored in it, never re-checked on the
//! hot path.
//!
//! `CAMSEAL_KERNEL` (read by [`Backend::detect`]) caps the tier for tests and benches. It can
//! only lower the choice, never select a path the CPU lacks. It is an unstable test hook.

/// An AES-GCM implementation tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// RustCrypto `aes-gcm`: the reference. It uses the `aes` crate's own runtime-detected
    /// hardware AES, with a table-free GHASH.
    Portable,
}

impl Backend {
    /// The best backend this CPU can run, lowered by `CAMSEAL_KERNEL` if set.
    pub fn detect() -> Backend {
        Backend::Portable
    }

    /// The portable backend, available everywhere.
    pub fn portable() -> Backend {
        Backend::Portable
    }

    /// Every backend this CPU can run, best first. Tests iterate over it.
    pub fn available() -> Vec<Backend> {
        vec![Backend::Portable]
    }

    /// The stable path name printed by `camseal bench kernels` and written to its JSON.
    pub const fn name(self) -> &'static str {
        match self {
            Backend::Portable => "portable",
        }
    }
}

impl core::fmt::Display for Backend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}
