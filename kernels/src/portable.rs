//! The reference path: RustCrypto `aes-gcm` 0.11.

use aes_gcm::aead::{AeadInOut, KeyInit, inout::InOutBuf};
use aes_gcm::{Aes128Gcm, Aes256Gcm};

use crate::{Error, Nonce, Suite, Tag};

pub(crate) enum Key {
    Aes128(Box<Aes128Gcm>),
    Aes256(Box<Aes256Gcm>),
}

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
