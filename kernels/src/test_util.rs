//! Shared checks that every backend must pass against the portable reference, and the
//! known-answer and rejection checks the integration tests in `kernels/tests/` run on every
//! backend.

use crate::{Aead, Backend, Error, Nonce, Suite, Tag};

/// Lengths every backend is checked at: block edges, page edges, a segment-sized chunk.
pub const TEST_LENGTHS: &[usize] = &[
    0, 1, 15, 16, 17, 63, 64, 65, 127, 128, 129, 255, 256, 257, 1500, 4095, 4096, 4097, 65536,
    65537,
];

/// Requires `backend` to produce exactly the portable reference's ciphertext and tag, and to
/// open it again, for every length in [`TEST_LENGTHS`] at several buffer offsets.
pub fn check_backend(backend: Backend) {
    for suite in [Suite::Aes128Gcm, Suite::Aes256Gcm] {
        let key: Vec<u8> = (0..suite.key_len() as u8)
            .map(|i| i.wrapping_mul(7) ^ 0x5a)
            .collect();
        let reference = Aead::with_backend(suite, &key, Backend::portable()).expect("key len");
        let candidate = Aead::with_backend(suite, &key, backend).expect("key len");
        for &len in TEST_LENGTHS {
            for offset in [0usize, 1, 3] {
                let nonce = [len as u8; 12];
                let aad: Vec<u8> = (0..(len % 37) as u8).collect();
                let storage: Vec<u8> = (0..len + offset).map(|i| (i * 31 + 7) as u8).collect();
                let pt = &storage[offset..];
                let mut want = pt.to_vec();
                let want_tag = reference
                    .seal_in_place(&nonce, &aad, &mut want)
                    .expect("seal");
                let mut out_storage = vec![0u8; len + offset];
                let out = &mut out_storage[offset..];
                let tag = candidate.seal_to(&nonce, &aad, pt, out).expect("seal");
                assert_eq!(
                    out,
                    &want[..],
                    "{backend} {suite:?} len {len} offset {offset}"
                );
                assert_eq!(
                    tag, want_tag,
                    "{backend} {suite:?} len {len} offset {offset}"
                );
                candidate
                    .open_in_place(&nonce, &aad, out, &tag)
                    .expect("open");
                assert_eq!(&out[..], pt);
            }
        }
    }
}

/// Requires `aead` to turn `pt` into exactly `ct` and `tag` through both seal calls, and both
/// open calls to give `pt` back. The out-of-place calls write at an odd offset into a buffer
/// prefilled with garbage, so a kernel that assumes alignment or skips bytes is caught.
pub fn check_known_answer(aead: &Aead, nonce: &Nonce, aad: &[u8], pt: &[u8], ct: &[u8], tag: &Tag) {
    let what = format!("{} {:?} len {}", aead.backend(), aead.suite(), pt.len());
    assert_eq!(
        pt.len(),
        ct.len(),
        "{what}: vector has pt and ct of different lengths"
    );

    let mut buf = pt.to_vec();
    let got = aead
        .seal_in_place(nonce, aad, &mut buf)
        .expect("seal_in_place");
    assert_eq!(buf, ct, "{what}: seal_in_place ciphertext");
    assert_eq!(&got, tag, "{what}: seal_in_place tag");

    let mut storage = vec![GARBAGE; pt.len() + 1];
    let got = aead
        .seal_to(nonce, aad, pt, &mut storage[1..])
        .expect("seal_to");
    assert_eq!(&storage[1..], ct, "{what}: seal_to ciphertext");
    assert_eq!(&got, tag, "{what}: seal_to tag");

    let mut buf = ct.to_vec();
    aead.open_in_place(nonce, aad, &mut buf, tag)
        .expect("open_in_place");
    assert_eq!(buf, pt, "{what}: open_in_place plaintext");

    let mut storage = vec![GARBAGE; ct.len() + 1];
    aead.open_to(nonce, aad, ct, tag, &mut storage[1..])
        .expect("open_to");
    assert_eq!(&storage[1..], pt, "{what}: open_to plaintext");
}

/// Requires both open calls to reject `(ct, tag)` with [`Error::Auth`] and to leave their
/// output all zeros, so no unauthenticated plaintext (or leftover data) is released.
pub fn check_rejects(aead: &Aead, nonce: &Nonce, aad: &[u8], ct: &[u8], tag: &Tag) {
    let what = format!("{} {:?} len {}", aead.backend(), aead.suite(), ct.len());

    let mut buf = ct.to_vec();
    let result = aead.open_in_place(nonce, aad, &mut buf, tag);
    assert_eq!(
        result,
        Err(Error::Auth),
        "{what}: open_in_place accepted a bad input"
    );
    assert!(
        buf.iter().all(|&b| b == 0),
        "{what}: open_in_place left data behind"
    );

    let mut out = vec![GARBAGE; ct.len()];
    let result = aead.open_to(nonce, aad, ct, tag, &mut out);
    assert_eq!(
        result,
        Err(Error::Auth),
        "{what}: open_to accepted a bad input"
    );
    assert!(
        out.iter().all(|&b| b == 0),
        "{what}: open_to left data behind"
    );
}

/// `backend` if this CPU runs it. Otherwise prints `SKIPPED <test>: <reason>` straight to
/// the terminal (past libtest's output capture, so a skip is visible in a normal run) and
/// returns `None`: the caller returns early, and the log shows the tier was not tested.
pub fn skip_unless(backend: Option<Backend>, test: &str, reason: &str) -> Option<Backend> {
    if backend.is_none() {
        use std::io::Write;
        // Best effort: a failed write to stderr must not fail the test.
        let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
    }
    backend
}

/// True when `CAMSEAL_TEST_EMULATED` is set (scripts/test-aarch64.sh sets it for runs under
/// QEMU): the long differential tests then use fewer and shorter inputs.
pub fn emulated() -> bool {
    std::env::var_os("CAMSEAL_TEST_EMULATED").is_some_and(|v| !v.is_empty())
}

/// The fuzz target's body (`kernels/fuzz`), also run by a proptest in `tests/fuzz_body.rs`
/// so it is exercised by a normal `cargo test`. `data` is split into a suite bit, key,
/// nonce, AAD and message; every backend must then match the portable reference (RustCrypto
/// `aes-gcm`) when sealing in place and out of place, open its own output, reject a
/// corrupted tag with the output zeroed, and agree with the reference on opening `data`'s
/// own bytes under an arbitrary tag.
pub fn fuzz_one(data: &[u8]) {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let suite = if control & 1 == 0 {
        Suite::Aes128Gcm
    } else {
        Suite::Aes256Gcm
    };
    let (key, rest) = take(rest, suite.key_len());
    let (nonce, rest) = take(rest, 12);
    let (tag_bytes, rest) = take(rest, 16);
    let (aad_len, rest) = take(rest, 1);
    let (aad, msg) = take(rest, usize::from(aad_len[0]));
    let nonce: Nonce = nonce.try_into().unwrap_or([0; 12]);
    let arbitrary_tag: Tag = tag_bytes.try_into().unwrap_or([0; 16]);
    let offset = usize::from(control >> 4);

    let reference = Aead::with_backend(suite, &key, Backend::portable()).expect("key length");
    let mut want = msg.to_vec();
    let want_tag = reference
        .seal_in_place(&nonce, &aad, &mut want)
        .expect("seal");
    let mut want_open = msg.to_vec();
    let want_result = reference.open_in_place(&nonce, &aad, &mut want_open, &arbitrary_tag);

    for backend in Backend::available() {
        let aead = Aead::with_backend(suite, &key, backend).expect("key length");
        let mut buf = msg.to_vec();
        assert_eq!(
            aead.seal_in_place(&nonce, &aad, &mut buf),
            Ok(want_tag),
            "{backend}"
        );
        assert_eq!(buf, want, "{backend}");

        let mut storage = vec![GARBAGE; msg.len() + offset];
        let tag = aead
            .seal_to(&nonce, &aad, msg, &mut storage[offset..])
            .expect("seal_to");
        assert_eq!(
            (&storage[offset..], tag),
            (&want[..], want_tag),
            "{backend}"
        );

        check_known_answer(&aead, &nonce, &aad, msg, &want, &want_tag);
        let mut bad = want_tag;
        bad[usize::from(control >> 1) % 16] ^= 1 << ((control >> 5) & 7);
        check_rejects(&aead, &nonce, &aad, &want, &bad);

        let mut got_open = msg.to_vec();
        let result = aead.open_in_place(&nonce, &aad, &mut got_open, &arbitrary_tag);
        assert_eq!(result, want_result, "{backend}");
        assert_eq!(got_open, want_open, "{backend}");
    }
}

/// The first `n` bytes of `data` (zero-padded if it is shorter) and the rest.
fn take(data: &[u8], n: usize) -> (Vec<u8>, &[u8]) {
    let (head, rest) = data.split_at(n.min(data.len()));
    let mut head = head.to_vec();
    head.resize(n, 0);
    (head, rest)
}

/// Fill for output buffers, so that "left untouched" and "zeroed" can be told apart.
const GARBAGE: u8 = 0xa5;
