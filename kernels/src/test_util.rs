//! Shared checks that every backend must pass against the portable reference.

use crate::{Aead, Backend, Suite};

/// Lengths every backend is checked at: block edges, page edges, a segment-sized chunk.
pub const TEST_LENGTHS: &[usize] = &[
    0, 1, 15, 16, 17, 63, 64, 65, 127, 128, 129, 255, 256, 257, 1500, 4095, 4096, 4097, 65536,
    65537,
];

/// Requires `backend` to produce exactly the portable reference's ciphertext and tag, and to
/// open it again, for every length in [`TEST_LENGTHS`] at several buffer offsets.
pub fn check_backend(backend: Backend) {
    for suite in [Suite::Aes128Gcm, Suite::Aes256Gcm] {
        let key: Vec<u8> = (0..suite.key_len() as u8).map(|i| i.wrapping_mul(7) ^ 0x5a).collect();
        let reference = Aead::with_backend(suite, &key, Backend::portable()).expect("key len");
        let candidate = Aead::with_backend(suite, &key, backend).expect("key len");
        for &len in TEST_LENGTHS {
            for offset in [0usize, 1, 3] {
                let nonce = [len as u8; 12];
                let aad: Vec<u8> = (0..(len % 37) as u8).collect();
                let storage: Vec<u8> = (0..len + offset).map(|i| (i * 31 + 7) as u8).collect();
                let pt = &storage[offset..];
                let mut want = pt.to_vec();
                let want_tag = reference.seal_in_place(&nonce, &aad, &mut want).expect("seal");
                let mut out_storage = vec![0u8; len + offset];
                let out = &mut out_storage[offset..];
                let tag = candidate.seal_to(&nonce, &aad, pt, out).expect("seal");
                assert_eq!(out, &want[..], "{backend} {suite:?} len {len} offset {offset}");
                assert_eq!(tag, want_tag, "{backend} {suite:?} len {len} offset {offset}");
                candidate.open_in_place(&nonce, &aad, out, &tag).expect("open");
                assert_eq!(&out[..], pt);
            }
        }
    }
}
