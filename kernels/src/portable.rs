//! The reference path: RustCrypto `aes-gcm` 0.11.

use aes_gcm::aead::{AeadInOut, KeyInit, inout::InOutBuf};
use aes_gcm::{Aes128Gcm, Aes256Gcm};

use crate::{Error, Nonce, Suite, Tag};

/// The key schedule. Wiped on drop: `aes-gcm` is built with its `zeroize` feature, which
/// clears the AES round keys and the GHASH key when the boxed cipher drops.
pub(crate) enum Key {
    Aes128(Box<Aes128Gcm>),
    Aes256(Box<Aes256Gcm>),
}

// Both variants hold a cipher that is `ZeroizeOnDrop` (checked at compile time below), and
// dropping the enum drops it.
impl zeroize::ZeroizeOnDrop for Key {}

const _: () = {
    const fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    wiped_on_drop::<Aes128Gcm>();
    wiped_on_drop::<Aes256Gcm>();
};

impl Key {
    /// `key` length has been checked by the caller.
    pub(crate) fn new(suite: Suite, key: &[u8]) -> Key {
        match suite {
            // The length was checked against `suite.key_len()` by `Aead::with_backend`.
            Suite::Aes128Gcm => Key::Aes128(Box::new(
                Aes128Gcm::new_from_slice(key).expect("length checked by caller"),
            )),
            Suite::Aes256Gcm => Key::Aes256(Box::new(
                Aes256Gcm::new_from_slice(key).expect("length checked by caller"),
            )),
        }
    }

    pub(crate) fn seal_in_place(&self, nonce: &Nonce, aad: &[u8], buf: &mut [u8]) -> Tag {
        self.seal_inout(nonce, aad, InOutBuf::from(buf))
    }

    pub(crate) fn seal_to(&self, nonce: &Nonce, aad: &[u8], pt: &[u8], out: &mut [u8]) -> Tag {
        // Lengths were checked equal by the caller.
        let buf = InOutBuf::new(pt, out).expect("lengths checked by caller");
        self.seal_inout(nonce, aad, buf)
    }

    pub(crate) fn open_in_place(
        &self,
        nonce: &Nonce,
        aad: &[u8],
        buf: &mut [u8],
        tag: &Tag,
    ) -> Result<(), Error> {
        self.open_inout(nonce, aad, InOutBuf::from(buf), tag)
    }

    pub(crate) fn open_to(
        &self,
        nonce: &Nonce,
        aad: &[u8],
        ct: &[u8],
        tag: &Tag,
        out: &mut [u8],
    ) -> Result<(), Error> {
        let buf = InOutBuf::new(ct, out).expect("lengths checked by caller");
        self.open_inout(nonce, aad, buf, tag)
    }

    fn seal_inout(&self, nonce: &Nonce, aad: &[u8], buf: InOutBuf<'_, '_, u8>) -> Tag {
        let nonce = nonce.into();
        // `encrypt_inout_detached` only fails on length overflow, which `check_len` excluded.
        let tag = match self {
            Key::Aes128(k) => k.encrypt_inout_detached(nonce, aad, buf),
            Key::Aes256(k) => k.encrypt_inout_detached(nonce, aad, buf),
        }
        .expect("length checked by caller");
        tag.into()
    }

    fn open_inout(
        &self,
        nonce: &Nonce,
        aad: &[u8],
        buf: InOutBuf<'_, '_, u8>,
        tag: &Tag,
    ) -> Result<(), Error> {
        let nonce = nonce.into();
        let tag = tag.into();
        // aes-gcm compares the tag in constant time before it decrypts.
        match self {
            Key::Aes128(k) => k.decrypt_inout_detached(nonce, aad, buf, tag),
            Key::Aes256(k) => k.decrypt_inout_detached(nonce, aad, buf, tag),
        }
        .map_err(|_| Error::Auth)
    }
}

#[cfg(test)]
mod tests {
    use std::mem::MaybeUninit;

    use aes_gcm::KeyInit;

    use super::*;

    /// The bytes of a cipher after it was dropped in place: all zero when the schedule is
    /// wiped on drop, the round keys otherwise.
    fn bytes_after_drop<T: KeyInit>(key: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let mut slot = MaybeUninit::<T>::uninit();
        slot.write(T::new_from_slice(key).unwrap());
        let len = std::mem::size_of::<T>();
        let ptr = slot.as_mut_ptr();
        // SAFETY: `slot` was just initialised; the bytes are read while it is alive. The
        // ciphers are plain arrays of words (round keys, GHASH powers), without padding.
        let before = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) }.to_vec();
        // SAFETY: the value is initialised and dropped exactly once; `slot` never drops it
        // again (`MaybeUninit` has no drop glue).
        unsafe { std::ptr::drop_in_place(ptr) };
        // SAFETY: the storage is still ours and its bytes were initialised above; `Drop`
        // only overwrites them.
        let after = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) }.to_vec();
        (before, after)
    }

    #[test]
    fn key_schedules_are_wiped_on_drop() {
        let key: Vec<u8> = (1..=32).collect();
        for (name, (before, after)) in [
            ("AES-128-GCM", bytes_after_drop::<Aes128Gcm>(&key[..16])),
            ("AES-256-GCM", bytes_after_drop::<Aes256Gcm>(&key)),
        ] {
            assert!(before.iter().any(|&b| b != 0), "{name}: empty schedule");
            assert!(
                after.iter().all(|&b| b == 0),
                "{name}: {} of {} bytes survive the drop",
                after.iter().filter(|&&b| b != 0).count(),
                after.len()
            );
        }
    }

    #[test]
    fn the_portable_key_is_zeroize_on_drop() {
        fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>(_: &T) {}
        wiped_on_drop(&Key::new(Suite::Aes128Gcm, &[7; 16]));
    }
}
