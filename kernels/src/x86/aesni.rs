//! AES-GCM on AES-NI and PCLMULQDQ: eight counter blocks in flight, stitched with the GHASH
//! of the previous eight ciphertext blocks (aggregated over `H^8..H^1`, one reduction per
//! batch).
//!
//! The AES round count is a const parameter (10 or 14), so each suite gets a fully unrolled
//! loop. Counters are kept as little-endian integers whose low 32-bit lane is GCM's 32-bit
//! counter, so `paddd` is exactly `inc32`.

use core::arch::x86_64::*;

use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use super::clmul::{Acc, HPowers, POWERS, bswap, ghash_blocks, ghash_bytes, load, mul};
use crate::{Error, InOut, Nonce, Suite, Tag};

/// An expanded AES key and the powers of its GHASH key.
pub(crate) struct Key {
    pub(super) rk: [__m128i; 15],
    pub(super) rounds: usize,
    pub(super) hp: HPowers,
}

impl Key {
    /// Expands `key` (whose length matches `suite`; checked by `Aead::with_backend`).
    ///
    /// # Safety
    /// The CPU must have AES-NI, PCLMULQDQ, SSSE3 and SSE4.1 (`super::has_aesni_clmul`).
    #[target_feature(enable = "aes,pclmulqdq,ssse3,sse4.1")]
    pub(crate) unsafe fn new(suite: Suite, key: &[u8]) -> Key {
        let (rk, rounds) = match suite {
            Suite::Aes128Gcm => (expand_128(key), 10),
            Suite::Aes256Gcm => (expand_256(key), 14),
        };
        let zero = [_mm_setzero_si128()];
        let hash_key = if rounds == 10 {
            aes::<10, 1>(&rk, zero)[0]
        } else {
            aes::<14, 1>(&rk, zero)[0]
        };
        Key {
            rk,
            rounds,
            hp: HPowers::new(hash_key),
        }
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        self.rk.zeroize();
    }
}

/// Encrypts `io` and returns the tag.
///
/// # Safety
/// The CPU must have AES-NI, PCLMULQDQ, SSSE3 and SSE4.1 (`super::has_aesni_clmul`).
#[target_feature(enable = "aes,pclmulqdq,ssse3,sse4.1")]
pub(crate) unsafe fn seal(key: &Key, nonce: &Nonce, aad: &[u8], io: &InOut<'_>) -> Tag {
    if key.rounds == 10 {
        seal_rounds::<10>(key, nonce, aad, io)
    } else {
        seal_rounds::<14>(key, nonce, aad, io)
    }
}

/// Checks `tag` over the input of `io` while decrypting it into the output. On `Err` the
/// output holds unauthenticated plaintext: the caller must wipe it.
///
/// # Safety
/// The CPU must have AES-NI, PCLMULQDQ, SSSE3 and SSE4.1 (`super::has_aesni_clmul`).
#[target_feature(enable = "aes,pclmulqdq,ssse3,sse4.1")]
pub(crate) unsafe fn open(
    key: &Key,
    nonce: &Nonce,
    aad: &[u8],
    io: &InOut<'_>,
    tag: &Tag,
) -> Result<(), Error> {
    let expected = if key.rounds == 10 {
        open_rounds::<10>(key, nonce, aad, io)
    } else {
        open_rounds::<14>(key, nonce, aad, io)
    };
    if bool::from(expected.ct_eq(tag)) {
        Ok(())
    } else {
        Err(Error::Auth)
    }
}

#[target_feature(enable = "aes,pclmulqdq,ssse3,sse4.1")]
fn seal_rounds<const NR: usize>(key: &Key, nonce: &Nonce, aad: &[u8], io: &InOut<'_>) -> Tag {
    let rk = &key.rk;
    let hp = &key.hp;
    let (j0, mut ctr) = initial_counter(nonce);
    let tag_mask = aes::<NR, 1>(rk, [j0])[0];
    let mut acc = ghash_bytes(_mm_setzero_si128(), aad, hp);
    let len = io.len();
    let mut off = 0;

    if len >= BATCH {
        // The first batch is only encrypted; each later one is encrypted while the previous
        // batch's ciphertext (`prev`, kept in registers) is hashed.
        let ks = aes::<NR, 8>(rk, counters::<8>(&mut ctr));
        let mut prev = [_mm_setzero_si128(); 8];
        for i in 0..8 {
            // SAFETY: `off + BATCH <= len`, so block `i` lies inside `io`.
            let c = _mm_xor_si128(ks[i], unsafe { io_load(io, off + 16 * i) });
            // SAFETY: as above.
            unsafe { io_store(io, off + 16 * i, c) };
            prev[i] = bswap(c);
        }
        off += BATCH;

        while len - off >= BATCH {
            let mut s = counters::<8>(&mut ctr);
            let mut sum = Acc::zero();
            prev[0] = _mm_xor_si128(prev[0], acc);
            for x in &mut s {
                *x = _mm_xor_si128(*x, rk[0]);
            }
            unroll_rounds!(NR, |r| {
                for x in &mut s {
                    *x = _mm_aesenc_si128(*x, rk[r]);
                }
                if r <= 8 {
                    sum.add(prev[r - 1], hp.h[8 - r], hp.hk[8 - r]);
                }
            });
            for x in &mut s {
                *x = _mm_aesenclast_si128(*x, rk[NR]);
            }
            acc = sum.reduce();
            for i in 0..8 {
                // SAFETY: `off + BATCH <= len`, so block `i` lies inside `io`.
                let c = _mm_xor_si128(s[i], unsafe { io_load(io, off + 16 * i) });
                // SAFETY: as above.
                unsafe { io_store(io, off + 16 * i, c) };
                prev[i] = bswap(c);
            }
            off += BATCH;
        }
        acc = ghash_blocks(acc, &prev, hp);
    }

    if off < len {
        acc = seal_tail::<NR>(key, ctr, acc, io, off);
    }
    finish(acc, hp, aad.len(), len, tag_mask)
}

/// Decrypts `io` and returns the tag computed over its input (the ciphertext).
#[target_feature(enable = "aes,pclmulqdq,ssse3,sse4.1")]
fn open_rounds<const NR: usize>(key: &Key, nonce: &Nonce, aad: &[u8], io: &InOut<'_>) -> Tag {
    let rk = &key.rk;
    let hp = &key.hp;
    let (j0, mut ctr) = initial_counter(nonce);
    let tag_mask = aes::<NR, 1>(rk, [j0])[0];
    let mut acc = ghash_bytes(_mm_setzero_si128(), aad, hp);
    let len = io.len();
    let mut off = 0;

    // The ciphertext is known up front, so each batch is hashed while it is decrypted. All
    // eight blocks are loaded before any is stored, which makes in-place operation safe.
    while len - off >= BATCH {
        let mut c = [_mm_setzero_si128(); 8];
        for (i, c) in c.iter_mut().enumerate() {
            // SAFETY: `off + BATCH <= len`, so block `i` lies inside `io`.
            *c = unsafe { io_load(io, off + 16 * i) };
        }
        let mut s = counters::<8>(&mut ctr);
        let mut sum = Acc::zero();
        for x in &mut s {
            *x = _mm_xor_si128(*x, rk[0]);
        }
        unroll_rounds!(NR, |r| {
            for x in &mut s {
                *x = _mm_aesenc_si128(*x, rk[r]);
            }
            if r <= 8 {
                let mut g = bswap(c[r - 1]);
                if r == 1 {
                    g = _mm_xor_si128(g, acc);
                }
                sum.add(g, hp.h[8 - r], hp.hk[8 - r]);
            }
        });
        for x in &mut s {
            *x = _mm_aesenclast_si128(*x, rk[NR]);
        }
        acc = sum.reduce();
        for i in 0..8 {
            // SAFETY: `off + BATCH <= len`, so block `i` lies inside `io`.
            unsafe { io_store(io, off + 16 * i, _mm_xor_si128(s[i], c[i])) };
        }
        off += BATCH;
    }

    if off < len {
        acc = open_tail::<NR>(key, ctr, acc, io, off);
    }
    finish(acc, hp, aad.len(), len, tag_mask)
}

/// Encrypts and hashes the last `io.len() - off` bytes (fewer than [`BATCH`]) with the
/// counters starting at `ctr`. Shared with the VAES path.
#[target_feature(enable = "aes,pclmulqdq,ssse3,sse4.1")]
pub(super) fn seal_tail<const NR: usize>(
    key: &Key,
    mut ctr: __m128i,
    acc: __m128i,
    io: &InOut<'_>,
    off: usize,
) -> __m128i {
    let rem = io.len() - off;
    debug_assert!(rem < BATCH);
    let n = rem.div_ceil(16);
    let ks = tail_keystream::<NR>(key, &mut ctr, n);
    let full = rem / 16;
    let mut g = [_mm_setzero_si128(); 8];
    for i in 0..full {
        // SAFETY: block `i < rem / 16` ends at or before `io.len()`.
        let c = _mm_xor_si128(ks[i], unsafe { io_load(io, off + 16 * i) });
        // SAFETY: as above.
        unsafe { io_store(io, off + 16 * i, c) };
        g[i] = bswap(c);
    }
    let part = rem % 16;
    if part > 0 {
        let at = off + 16 * full;
        let mut block = [0u8; 16];
        // SAFETY: bytes `at..at + part` are the last bytes of `io`.
        unsafe { io_read(io, at, &mut block[..part]) };
        let c = to_bytes(_mm_xor_si128(load(&block), ks[full]));
        // SAFETY: as above.
        unsafe { io_write(io, at, &c[..part]) };
        // GHASH sees the ciphertext zero-padded, not the keystream beyond it.
        block = [0; 16];
        block[..part].copy_from_slice(&c[..part]);
        g[full] = bswap(load(&block));
    }
    ghash_blocks(acc, &g[..n], &key.hp)
}

/// Hashes and decrypts the last `io.len() - off` bytes (fewer than [`BATCH`]). Shared with
/// the VAES path.
#[target_feature(enable = "aes,pclmulqdq,ssse3,sse4.1")]
pub(super) fn open_tail<const NR: usize>(
    key: &Key,
    mut ctr: __m128i,
    acc: __m128i,
    io: &InOut<'_>,
    off: usize,
) -> __m128i {
    let rem = io.len() - off;
    debug_assert!(rem < BATCH);
    let n = rem.div_ceil(16);
    let ks = tail_keystream::<NR>(key, &mut ctr, n);
    let full = rem / 16;
    let mut g = [_mm_setzero_si128(); 8];
    for i in 0..full {
        // SAFETY: block `i < rem / 16` ends at or before `io.len()`.
        let c = unsafe { io_load(io, off + 16 * i) };
        g[i] = bswap(c);
        // SAFETY: as above.
        unsafe { io_store(io, off + 16 * i, _mm_xor_si128(ks[i], c)) };
    }
    let part = rem % 16;
    if part > 0 {
        let at = off + 16 * full;
        let mut block = [0u8; 16];
        // SAFETY: bytes `at..at + part` are the last bytes of `io`.
        unsafe { io_read(io, at, &mut block[..part]) };
        let c = load(&block);
        g[full] = bswap(c);
        let p = to_bytes(_mm_xor_si128(c, ks[full]));
        // SAFETY: as above.
        unsafe { io_write(io, at, &p[..part]) };
    }
    ghash_blocks(acc, &g[..n], &key.hp)
}

/// Hashes the length block and masks the result with `E(K, J0)`.
#[target_feature(enable = "aes,pclmulqdq,ssse3,sse4.1")]
pub(super) fn finish(
    acc: __m128i,
    hp: &HPowers,
    aad_len: usize,
    len: usize,
    tag_mask: __m128i,
) -> Tag {
    let bits = |n: usize| (n as u64).wrapping_mul(8) as i64;
    let lengths = _mm_set_epi64x(bits(aad_len), bits(len));
    let s = mul(_mm_xor_si128(acc, lengths), hp.h[0]);
    to_bytes(_mm_xor_si128(bswap(s), tag_mask))
}

/// `J0 = nonce || 1` in byte order, and the first data counter (2) as a little-endian
/// integer.
#[target_feature(enable = "aes,pclmulqdq,ssse3,sse4.1")]
pub(super) fn initial_counter(nonce: &Nonce) -> (__m128i, __m128i) {
    let mut block = [0u8; 16];
    block[..12].copy_from_slice(nonce);
    block[15] = 1;
    let j0 = load(&block);
    (j0, _mm_add_epi32(bswap(j0), _mm_set_epi32(0, 0, 0, 1)))
}

/// `N` consecutive counter blocks in byte order, advancing `ctr` past them.
#[inline]
#[target_feature(enable = "aes,pclmulqdq,ssse3,sse4.1")]
pub(super) fn counters<const N: usize>(ctr: &mut __m128i) -> [__m128i; N] {
    let mut out = [_mm_setzero_si128(); N];
    let one = _mm_set_epi32(0, 0, 0, 1);
    for o in &mut out {
        *o = bswap(*ctr);
        *ctr = _mm_add_epi32(*ctr, one);
    }
    out
}

/// AES-encrypts `N` blocks in parallel with `NR` rounds.
#[inline]
#[target_feature(enable = "aes,pclmulqdq,ssse3,sse4.1")]
pub(super) fn aes<const NR: usize, const N: usize>(
    rk: &[__m128i; 15],
    mut b: [__m128i; N],
) -> [__m128i; N] {
    for x in &mut b {
        *x = _mm_xor_si128(*x, rk[0]);
    }
    for k in &rk[1..NR] {
        for x in &mut b {
            *x = _mm_aesenc_si128(*x, *k);
        }
    }
    for x in &mut b {
        *x = _mm_aesenclast_si128(*x, rk[NR]);
    }
    b
}

/// Keystream for a tail of `n <= 8` blocks, computed four or eight blocks wide.
#[target_feature(enable = "aes,pclmulqdq,ssse3,sse4.1")]
fn tail_keystream<const NR: usize>(key: &Key, ctr: &mut __m128i, n: usize) -> [__m128i; 8] {
    let mut ks = [_mm_setzero_si128(); 8];
    if n <= 4 {
        let four = aes::<NR, 4>(&key.rk, counters::<4>(ctr));
        ks[..4].copy_from_slice(&four);
    } else {
        ks = aes::<NR, 8>(&key.rk, counters::<8>(ctr));
    }
    ks
}

#[target_feature(enable = "aes,pclmulqdq,ssse3,sse4.1")]
pub(super) fn to_bytes(x: __m128i) -> [u8; 16] {
    let mut out = [0u8; 16];
    // SAFETY: `out` is 16 writable bytes; `storeu` has no alignment needs.
    unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), x) };
    out
}

/// Loads the input block at `off`.
///
/// # Safety
/// `off + 16 <= io.len()`.
#[inline]
pub(super) unsafe fn io_load(io: &InOut<'_>, off: usize) -> __m128i {
    debug_assert!(off + 16 <= io.len());
    // SAFETY: `io.src()` is readable for `io.len()` bytes (`InOut`'s invariant) and the
    // caller keeps `off + 16` within that.
    unsafe { _mm_loadu_si128(io.src().add(off).cast()) }
}

/// Stores the output block at `off`.
///
/// # Safety
/// `off + 16 <= io.len()`.
#[inline]
pub(super) unsafe fn io_store(io: &InOut<'_>, off: usize, x: __m128i) {
    debug_assert!(off + 16 <= io.len());
    // SAFETY: `io.dst()` is writable for `io.len()` bytes (`InOut`'s invariant) and the
    // caller keeps `off + 16` within that.
    unsafe { _mm_storeu_si128(io.dst().add(off).cast(), x) }
}

/// Copies input bytes `off..off + out.len()` into `out`.
///
/// # Safety
/// `off + out.len() <= io.len()`.
pub(super) unsafe fn io_read(io: &InOut<'_>, off: usize, out: &mut [u8]) {
    debug_assert!(off + out.len() <= io.len());
    // SAFETY: the range is inside `io`'s input (caller's contract); `out` is a distinct
    // local buffer, so the two cannot overlap.
    unsafe { core::ptr::copy_nonoverlapping(io.src().add(off), out.as_mut_ptr(), out.len()) }
}

/// Copies `bytes` to output bytes `off..off + bytes.len()`.
///
/// # Safety
/// `off + bytes.len() <= io.len()`.
pub(super) unsafe fn io_write(io: &InOut<'_>, off: usize, bytes: &[u8]) {
    debug_assert!(off + bytes.len() <= io.len());
    // SAFETY: the range is inside `io`'s output (caller's contract); `bytes` is a distinct
    // local buffer.
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), io.dst().add(off), bytes.len()) }
}

/// AES-128 key expansion (FIPS 197, 5.2) with `aeskeygenassist`.
#[target_feature(enable = "aes,pclmulqdq,ssse3,sse4.1")]
fn expand_128(key: &[u8]) -> [__m128i; 15] {
    let mut rk = [_mm_setzero_si128(); 15];
    let mut k = [0u8; 16];
    k.copy_from_slice(&key[..16]);
    rk[0] = load(&k);
    k.zeroize();
    macro_rules! step {
        ($i:expr, $rcon:expr) => {
            rk[$i] = expand_step(
                rk[$i - 1],
                _mm_aeskeygenassist_si128::<$rcon>(rk[$i - 1]),
                0xff,
            );
        };
    }
    step!(1, 0x01);
    step!(2, 0x02);
    step!(3, 0x04);
    step!(4, 0x08);
    step!(5, 0x10);
    step!(6, 0x20);
    step!(7, 0x40);
    step!(8, 0x80);
    step!(9, 0x1b);
    step!(10, 0x36);
    rk
}

/// AES-256 key expansion: even round keys take `RotWord(SubWord(w)) ^ rcon` of the previous
/// round key's last word, odd ones `SubWord(w)`.
#[target_feature(enable = "aes,pclmulqdq,ssse3,sse4.1")]
fn expand_256(key: &[u8]) -> [__m128i; 15] {
    let mut rk = [_mm_setzero_si128(); 15];
    let mut k = [0u8; 32];
    k.copy_from_slice(&key[..32]);
    let (halves, _) = k.as_chunks::<16>();
    rk[0] = load(&halves[0]);
    rk[1] = load(&halves[1]);
    k.zeroize();
    macro_rules! even {
        ($i:expr, $rcon:expr) => {
            rk[$i] = expand_step(
                rk[$i - 2],
                _mm_aeskeygenassist_si128::<$rcon>(rk[$i - 1]),
                0xff,
            );
        };
    }
    macro_rules! odd {
        ($i:expr) => {
            rk[$i] = expand_step(rk[$i - 2], _mm_aeskeygenassist_si128::<0>(rk[$i - 1]), 0xaa);
        };
    }
    even!(2, 0x01);
    odd!(3);
    even!(4, 0x02);
    odd!(5);
    even!(6, 0x04);
    odd!(7);
    even!(8, 0x08);
    odd!(9);
    even!(10, 0x10);
    odd!(11);
    even!(12, 0x20);
    odd!(13);
    even!(14, 0x40);
    rk
}

/// `prev` with each word XORed into the next (the `w[i] = w[i-1] ^ w[i-Nk]` chain), then the
/// word `assist` holds in lane `lane / 0x55` XORed into all four.
#[inline]
#[target_feature(enable = "aes,pclmulqdq,ssse3,sse4.1")]
fn expand_step(prev: __m128i, assist: __m128i, lane: u8) -> __m128i {
    let t = if lane == 0xff {
        _mm_shuffle_epi32::<0xff>(assist)
    } else {
        _mm_shuffle_epi32::<0xaa>(assist)
    };
    let mut k = prev;
    k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
    k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
    k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
    _mm_xor_si128(k, t)
}

/// Bytes per stitched batch: eight blocks, one per power of H.
pub(super) const BATCH: usize = 16 * POWERS;
