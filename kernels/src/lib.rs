//! AES-GCM sealing for camseal, behind one safe API with runtime CPU dispatch.
//!
//! What this crate does **not** do: it has no threads, no files, no nonce management and no
//! key derivation. Callers (the SFrame layer in `camseal`) own nonces and keys; this crate only
//! turns `(key, nonce, aad, bytes)` into ciphertext and a 16-byte tag and back.
//!
//! Layers:
//! - [`Aead`]: a key schedule for one [`Suite`], bound at construction to the [`Backend`]
//!   chosen by [`Backend::detect`]. Hot paths `match` on that stored backend.
//! - [`dispatch`]: CPU detection, done once, and the caps used by tests (`CAMSEAL_KERNEL`).
//! - The kernels, one module per architecture, the only place `unsafe` code lives:
//!   - `x86`: AES-NI + PCLMULQDQ (`x86-64/aesni-clmul`) and VAES + VPCLMULQDQ on 256-bit
//!     AVX2 vectors (`x86-64/vaes-avx2`);
//!   - `aarch64`: ARMv8 AES + PMULL (`aarch64/aes-pmull`);
//!
//!   each stitches CTR with GHASH: eight blocks in flight (sixteen with VAES), the powers of
//!   `H` precomputed in the key schedule, one (delayed) reduction per batch. The open path
//!   decrypts into the output and hashes the ciphertext in the same pass, compares the tag
//!   in constant time, and the output is wiped before an error is returned.
//! - `portable`: the RustCrypto `aes-gcm` path. It is the reference every faster path is
//!   checked against, and it already uses AES-NI/ARMv8-AES where `aes` detects them.
//!
//! Authentication failure is one opaque [`Error::Auth`]: the tag is compared in constant time
//! and no plaintext is released when it does not match (the buffer is wiped).

#[cfg(target_arch = "aarch64")]
mod aarch64;
pub mod dispatch;
mod portable;
#[doc(hidden)]
pub mod test_util;
#[cfg(target_arch = "x86_64")]
mod x86;

use core::marker::PhantomData;

use zeroize::Zeroize;

pub use dispatch::Backend;

/// AES-GCM nonce size in bytes.
pub const NONCE_LEN: usize = 12;
/// AES-GCM tag size in bytes. camseal uses full 128-bit tags only.
pub const TAG_LEN: usize = 16;

/// The AEAD algorithms camseal seals media with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Suite {
    /// AES-128-GCM, 16-byte key (SFrame suite 0x0004).
    Aes128Gcm,
    /// AES-256-GCM, 32-byte key (SFrame suite 0x0005).
    Aes256Gcm,
}

impl Suite {
    /// Key length in bytes.
    pub const fn key_len(self) -> usize {
        match self {
            Suite::Aes128Gcm => 16,
            Suite::Aes256Gcm => 32,
        }
    }

    /// The lowercase name used in reports and JSON (`aes-128-gcm`, `aes-256-gcm`).
    pub const fn name(self) -> &'static str {
        match self {
            Suite::Aes128Gcm => "aes-128-gcm",
            Suite::Aes256Gcm => "aes-256-gcm",
        }
    }
}

/// Errors from the AEAD kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The tag did not match: the data, AAD, nonce or key is wrong. Deliberately opaque.
    #[error("authentication failed")]
    Auth,
    /// The key has the wrong length for the suite.
    #[error("key length {got} does not match the suite (expected {expected})")]
    KeyLength {
        /// Length the suite needs.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// Input and output buffers of an out-of-place call differ in length.
    #[error("input is {input} bytes but output is {output} bytes")]
    BufferLength {
        /// Input length.
        input: usize,
        /// Output length.
        output: usize,
    },
    /// The message is longer than GCM allows for one nonce (2^36 - 32 bytes).
    #[error("message too long for AES-GCM")]
    TooLong,
}

/// A 12-byte AES-GCM nonce.
pub type Nonce = [u8; NONCE_LEN];
/// A 16-byte AES-GCM tag.
pub type Tag = [u8; TAG_LEN];

/// An AES-GCM key schedule bound to one backend.
///
/// `Aead` is `Send + Sync`: one key schedule may be shared by every seal worker.
pub struct Aead {
    suite: Suite,
    backend: Backend,
    inner: Inner,
}

/// Runs `$fast` on whichever kernel key `$inner` holds (they share method names), or
/// `$portable` on the reference.
macro_rules! kernel {
    ($inner:expr, portable $p:ident => $portable:expr, fast $k:ident => $fast:expr) => {
        match $inner {
            Inner::Portable($p) => $portable,
            #[cfg(target_arch = "x86_64")]
            Inner::AesNi($k) => $fast,
            #[cfg(target_arch = "x86_64")]
            Inner::Vaes($k) => $fast,
            #[cfg(target_arch = "aarch64")]
            Inner::ArmAes($k) => $fast,
        }
    };
}

enum Inner {
    #[cfg(target_arch = "x86_64")]
    AesNi(x86::AesNiKey),
    #[cfg(target_arch = "aarch64")]
    ArmAes(aarch64::PmullKey),
    Portable(portable::Key),
    #[cfg(target_arch = "x86_64")]
    Vaes(x86::VaesKey),
}

impl Aead {
    /// Builds a key schedule for `suite` on the best backend this CPU offers.
    pub fn new(suite: Suite, key: &[u8]) -> Result<Self, Error> {
        Self::with_backend(suite, key, Backend::detect())
    }

    /// Builds a key schedule on an explicit backend (benches and tests).
    ///
    /// Obtain `backend` from [`Backend::detect`] or an explicit constructor such as
    /// [`Backend::vaes`], which only return backends this CPU can run. A backend this CPU
    /// lacks is lowered to the best one below it (see [`dispatch`]); [`Aead::backend`] tells
    /// which one runs.
    pub fn with_backend(suite: Suite, key: &[u8], backend: Backend) -> Result<Self, Error> {
        if key.len() != suite.key_len() {
            return Err(Error::KeyLength {
                expected: suite.key_len(),
                got: key.len(),
            });
        }
        let (backend, inner) = build(suite, key, backend.lowered_to_supported());
        Ok(Aead {
            suite,
            backend,
            inner,
        })
    }

    /// The suite this key is for.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The backend this key schedule runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Encrypts `buf` in place and returns the tag.
    pub fn seal_in_place(&self, nonce: &Nonce, aad: &[u8], buf: &mut [u8]) -> Result<Tag, Error> {
        check_len(buf.len())?;
        Ok(kernel!(&self.inner,
            portable k => k.seal_in_place(nonce, aad, buf),
            fast k => k.seal(nonce, aad, &InOut::in_place(buf))))
    }

    /// Encrypts `plaintext` into `out` (same length): the plaintext is read once and the
    /// ciphertext written once, which is what lets the pipeline seal straight out of an
    /// encoder's buffer into a pooled output buffer.
    pub fn seal_to(
        &self,
        nonce: &Nonce,
        aad: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<Tag, Error> {
        check_len(plaintext.len())?;
        if plaintext.len() != out.len() {
            return Err(Error::BufferLength {
                input: plaintext.len(),
                output: out.len(),
            });
        }
        Ok(kernel!(&self.inner,
            portable k => k.seal_to(nonce, aad, plaintext, out),
            fast k => k.seal(nonce, aad, &InOut::split(plaintext, out))))
    }

    /// Checks `tag` and decrypts `buf` in place. On failure `buf` is zeroed, so no
    /// unauthenticated plaintext can leak out of it.
    pub fn open_in_place(
        &self,
        nonce: &Nonce,
        aad: &[u8],
        buf: &mut [u8],
        tag: &Tag,
    ) -> Result<(), Error> {
        check_len(buf.len())?;
        let result = kernel!(&self.inner,
            portable k => k.open_in_place(nonce, aad, buf, tag),
            fast k => k.open(nonce, aad, &InOut::in_place(buf), tag));
        if result.is_err() {
            buf.zeroize();
        }
        result
    }

    /// Checks `tag` and decrypts `ciphertext` into `out` (same length). On failure `out` is
    /// zeroed.
    pub fn open_to(
        &self,
        nonce: &Nonce,
        aad: &[u8],
        ciphertext: &[u8],
        tag: &Tag,
        out: &mut [u8],
    ) -> Result<(), Error> {
        check_len(ciphertext.len())?;
        if ciphertext.len() != out.len() {
            return Err(Error::BufferLength {
                input: ciphertext.len(),
                output: out.len(),
            });
        }
        let result = kernel!(&self.inner,
            portable k => k.open_to(nonce, aad, ciphertext, tag, out),
            fast k => k.open(nonce, aad, &InOut::split(ciphertext, out), tag));
        if result.is_err() {
            out.zeroize();
        }
        result
    }
}

impl core::fmt::Debug for Aead {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print key material.
        f.debug_struct("Aead")
            .field("suite", &self.suite)
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// The key schedule for `backend` (already lowered to one this CPU supports). Falls back to
/// portable if a kernel's own detection disagrees, so no kernel ever runs unchecked.
fn build(suite: Suite, key: &[u8], backend: Backend) -> (Backend, Inner) {
    let fast = match backend {
        #[cfg(target_arch = "x86_64")]
        Backend::AesNiClmul => x86::AesNiKey::new(suite, key).map(Inner::AesNi),
        #[cfg(target_arch = "x86_64")]
        Backend::VaesVpclmul => x86::VaesKey::new(suite, key).map(Inner::Vaes),
        #[cfg(target_arch = "aarch64")]
        Backend::ArmAesPmull => aarch64::PmullKey::new(suite, key).map(Inner::ArmAes),
        _ => None,
    };
    match fast {
        Some(inner) => (backend, inner),
        None => (
            Backend::Portable,
            Inner::Portable(portable::Key::new(suite, key)),
        ),
    }
}

/// One input and one output buffer of the same length that are either the same memory
/// (in-place) or disjoint: the two shapes a kernel accepts. Invariant: `src` is readable and
/// `dst` writable for `len` bytes for `'a`, and they are equal or do not overlap. Kernels
/// load a block before storing it, which makes the in-place case work.
///
/// Only the hardware kernels use it: targets without one (armv7) use the portable path.
#[cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(dead_code)
)]
pub(crate) struct InOut<'a> {
    src: *const u8,
    dst: *mut u8,
    len: usize,
    _buffers: PhantomData<&'a mut [u8]>,
}

#[cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(dead_code)
)]
impl<'a> InOut<'a> {
    pub(crate) fn in_place(buf: &'a mut [u8]) -> InOut<'a> {
        let len = buf.len();
        let p = buf.as_mut_ptr();
        InOut {
            src: p,
            dst: p,
            len,
            _buffers: PhantomData,
        }
    }

    /// Borrowing rules make `src` and `dst` disjoint; the shorter length is used (callers
    /// check that they are equal).
    pub(crate) fn split(src: &'a [u8], dst: &'a mut [u8]) -> InOut<'a> {
        InOut {
            src: src.as_ptr(),
            len: src.len().min(dst.len()),
            dst: dst.as_mut_ptr(),
            _buffers: PhantomData,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[cfg_attr(
        not(any(target_arch = "x86_64", target_arch = "aarch64")),
        allow(dead_code)
    )]
    pub(crate) fn src(&self) -> *const u8 {
        self.src
    }

    #[cfg_attr(
        not(any(target_arch = "x86_64", target_arch = "aarch64")),
        allow(dead_code)
    )]
    pub(crate) fn dst(&self) -> *mut u8 {
        self.dst
    }
}

fn check_len(len: usize) -> Result<(), Error> {
    if len as u64 > MAX_MESSAGE_LEN {
        return Err(Error::TooLong);
    }
    Ok(())
}

/// GCM's plaintext limit per nonce: 2^39 - 256 bits.
const MAX_MESSAGE_LEN: u64 = (1 << 36) - 32;
