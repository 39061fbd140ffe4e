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
//! - [`portable`]: the RustCrypto `aes-gcm` path. It is the reference every faster path is
//!   checked against, and it already uses AES-NI/ARMv8-AES where `aes` detects them.
//!
//! Authentication failure is one opaque [`Error::Auth`]: the tag is compared in constant time
//! and no plaintext is released when it does not match (the buffer is wiped).

pub mod dispatch;
mod portable;
#[doc(hidden)]
pub mod test_util;

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

enum Inner {
    Portable(portable::Key),
}

impl Aead {
    /// Builds a key schedule for `suite` on the best backend this CPU offers.
    pub fn new(suite: Suite, key: &[u8]) -> Result<Self, Error> {
        Self::with_backend(suite, key, Backend::detect())
    }

    /// Builds a key schedule on an explicit backend (benches and tests).
    ///
    /// Obtain `backend` from [`Backend::detect`] or an explicit constructor such as
    /// [`Backend::portable`], which only return backends this CPU can run.
    pub fn with_backend(suite: Suite, key: &[u8], backend: Backend) -> Result<Self, Error> {
        if key.len() != suite.key_len() {
            return Err(Error::KeyLength {
                expected: suite.key_len(),
                got: key.len(),
            });
        }
        let inner = match backend {
            Backend::Portable => Inner::Portable(portable::Key::new(suite, key)),
        };
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
        match &self.inner {
            Inner::Portable(k) => Ok(k.seal_in_place(nonce, aad, buf)),
        }
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
        match &self.inner {
            Inner::Portable(k) => Ok(k.seal_to(nonce, aad, plaintext, out)),
        }
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
        let result = match &self.inner {
            Inner::Portable(k) => k.open_in_place(nonce, aad, buf, tag),
        };
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
        let result = match &self.inner {
            Inner::Portable(k) => k.open_to(nonce, aad, ciphertext, tag, out),
        };
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

fn check_len(len: usize) -> Result<(), Error> {
    if len as u64 > MAX_MESSAGE_LEN {
        return Err(Error::TooLong);
    }
    Ok(())
}

/// GCM's plaintext limit per nonce: 2^39 - 256 bits.
const MAX_MESSAGE_LEN: u64 = (1 << 36) - 32;
