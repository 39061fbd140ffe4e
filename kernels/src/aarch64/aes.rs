//! AES-GCM on the ARMv8 AES instructions with PMULL GHASH: eight counter blocks in flight,
//! stitched with the GHASH of the previous eight ciphertext blocks (see `pmull.rs`).
//!
//! `aese` is AddRoundKey + SubBytes + ShiftRows and `aesmc` is MixColumns, so a round key
//! schedule `rk[0..=NR]` is applied as `NR - 1` pairs, one last `aese`, and an XOR with
//! `rk[NR]`. Counters are kept with each 32-bit lane byte-swapped (`rev32`), so that a lane
//! add is exactly GCM's `inc32`.

use core::arch::aarch64::*;

use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use super::pmull::{Acc, HPowers, POWERS, bswap, ghash_blocks, ghash_bytes, load, mul, to_block};
use crate::{Error, InOut, Nonce, Suite, Tag};

/// An expanded AES key and the powers of its GHASH key.
pub(crate) struct Key {
    rk: [uint8x16_t; 15],
    rounds: usize,
    hp: HPowers,
}

impl Key {
    /// Expands `key` (whose length matches `suite`; checked by `Aead::with_backend`).
    ///
    /// # Safety
    /// The CPU must have the AES and PMULL extensions (`super::has_aes_pmull`).
    #[target_feature(enable = "neon,aes")]
    pub(crate) unsafe fn new(suite: Suite, key: &[u8]) -> Key {
        let (rk, rounds) = match suite {
            Suite::Aes128Gcm => (expand(key, 4), 10),
            Suite::Aes256Gcm => (expand(key, 8), 14),
        };
        let zero = [vdupq_n_u8(0)];
        let hash_key = if rounds == 10 {
            aes::<10, 1>(&rk, zero)[0]
        } else {
            aes::<14, 1>(&rk, zero)[0]
        };
        Key {
            rk,
            rounds,
            hp: HPowers::new(to_bytes(hash_key)),
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
/// The CPU must have the AES and PMULL extensions (`super::has_aes_pmull`).
#[target_feature(enable = "neon,aes")]
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
/// The CPU must have the AES and PMULL extensions (`super::has_aes_pmull`).
#[target_feature(enable = "neon,aes")]
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

#[target_feature(enable = "neon,aes")]
fn seal_rounds<const NR: usize>(key: &Key, nonce: &Nonce, aad: &[u8], io: &InOut<'_>) -> Tag {
    let rk = &key.rk;
    let hp = &key.hp;
    let (j0, mut ctr) = initial_counter(nonce);
    let tag_mask = aes::<NR, 1>(rk, [j0])[0];
    let mut acc = ghash_bytes(vdupq_n_u64(0), aad, hp);
    let len = io.len();
    let mut off = 0;

    if len >= BATCH {
        // The first batch is only encrypted; each later one is encrypted while the previous
        // batch's ciphertext (`prev`) is hashed.
        let ks = aes::<NR, 8>(rk, counters::<8>(&mut ctr));
        let mut prev = [vdupq_n_u64(0); 8];
        for i in 0..8 {
            // SAFETY: `off + BATCH <= len`, so block `i` lies inside `io`.
            let c = veorq_u8(ks[i], unsafe { io_load(io, off + 16 * i) });
            // SAFETY: as above.
            unsafe { io_store(io, off + 16 * i, c) };
            prev[i] = bswap(c);
        }
        off += BATCH;

        while len - off >= BATCH {
            let mut s = counters::<8>(&mut ctr);
            let mut sum = Acc::zero();
            prev[0] = veorq_u64(prev[0], acc);
            unroll_rounds!(NR, |r| {
                for x in &mut s {
                    *x = vaesmcq_u8(vaeseq_u8(*x, rk[r]));
                }
                if r < 8 {
                    sum.add(prev[r], hp.h[7 - r], hp.hk[7 - r]);
                }
            });
            for x in &mut s {
                *x = veorq_u8(vaeseq_u8(*x, rk[NR - 1]), rk[NR]);
            }
            acc = sum.reduce();
            for i in 0..8 {
                // SAFETY: `off + BATCH <= len`, so block `i` lies inside `io`.
                let c = veorq_u8(s[i], unsafe { io_load(io, off + 16 * i) });
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
#[target_feature(enable = "neon,aes")]
fn open_rounds<const NR: usize>(key: &Key, nonce: &Nonce, aad: &[u8], io: &InOut<'_>) -> Tag {
    let rk = &key.rk;
    let hp = &key.hp;
    let (j0, mut ctr) = initial_counter(nonce);
    let tag_mask = aes::<NR, 1>(rk, [j0])[0];
    let mut acc = ghash_bytes(vdupq_n_u64(0), aad, hp);
    let len = io.len();
    let mut off = 0;

    // All eight blocks are loaded before any is stored, which makes in-place operation safe.
    while len - off >= BATCH {
        let mut c = [vdupq_n_u8(0); 8];
        for (i, c) in c.iter_mut().enumerate() {
            // SAFETY: `off + BATCH <= len`, so block `i` lies inside `io`.
            *c = unsafe { io_load(io, off + 16 * i) };
        }
        let mut s = counters::<8>(&mut ctr);
        let mut sum = Acc::zero();
        unroll_rounds!(NR, |r| {
            for x in &mut s {
                *x = vaesmcq_u8(vaeseq_u8(*x, rk[r]));
            }
            if r < 8 {
                let mut g = bswap(c[r]);
                if r == 0 {
                    g = veorq_u64(g, acc);
                }
                sum.add(g, hp.h[7 - r], hp.hk[7 - r]);
            }
        });
        for x in &mut s {
            *x = veorq_u8(vaeseq_u8(*x, rk[NR - 1]), rk[NR]);
        }
        acc = sum.reduce();
        for i in 0..8 {
            // SAFETY: `off + BATCH <= len`, so block `i` lies inside `io`.
            unsafe { io_store(io, off + 16 * i, veorq_u8(s[i], c[i])) };
        }
        off += BATCH;
    }

    if off < len {
        acc = open_tail::<NR>(key, ctr, acc, io, off);
    }
    finish(acc, hp, aad.len(), len, tag_mask)
}

/// Encrypts and hashes the last `io.len() - off` bytes (fewer than [`BATCH`]).
#[target_feature(enable = "neon,aes")]
fn seal_tail<const NR: usize>(
    key: &Key,
    mut ctr: uint32x4_t,
    acc: uint64x2_t,
    io: &InOut<'_>,
    off: usize,
) -> uint64x2_t {
    let rem = io.len() - off;
    let n = rem.div_ceil(16);
    let ks = tail_keystream::<NR>(key, &mut ctr, n);
    let full = rem / 16;
    let mut g = [vdupq_n_u64(0); 8];
    for i in 0..full {
        // SAFETY: block `i < rem / 16` ends at or before `io.len()`.
        let c = veorq_u8(ks[i], unsafe { io_load(io, off + 16 * i) });
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
        let c = to_bytes(veorq_u8(load(&block), ks[full]));
        // SAFETY: as above.
        unsafe { io_write(io, at, &c[..part]) };
        // GHASH sees the ciphertext zero-padded, not the keystream beyond it.
        block = [0; 16];
        block[..part].copy_from_slice(&c[..part]);
        g[full] = bswap(load(&block));
    }
    ghash_blocks(acc, &g[..n], &key.hp)
}

/// Hashes and decrypts the last `io.len() - off` bytes (fewer than [`BATCH`]).
#[target_feature(enable = "neon,aes")]
fn open_tail<const NR: usize>(
    key: &Key,
    mut ctr: uint32x4_t,
    acc: uint64x2_t,
    io: &InOut<'_>,
    off: usize,
) -> uint64x2_t {
    let rem = io.len() - off;
    let n = rem.div_ceil(16);
    let ks = tail_keystream::<NR>(key, &mut ctr, n);
    let full = rem / 16;
    let mut g = [vdupq_n_u64(0); 8];
    for i in 0..full {
        // SAFETY: block `i < rem / 16` ends at or before `io.len()`.
        let c = unsafe { io_load(io, off + 16 * i) };
        g[i] = bswap(c);
        // SAFETY: as above.
        unsafe { io_store(io, off + 16 * i, veorq_u8(ks[i], c)) };
    }
    let part = rem % 16;
    if part > 0 {
        let at = off + 16 * full;
        let mut block = [0u8; 16];
        // SAFETY: bytes `at..at + part` are the last bytes of `io`.
        unsafe { io_read(io, at, &mut block[..part]) };
        let c = load(&block);
        g[full] = bswap(c);
        let p = to_bytes(veorq_u8(c, ks[full]));
        // SAFETY: as above.
        unsafe { io_write(io, at, &p[..part]) };
    }
    ghash_blocks(acc, &g[..n], &key.hp)
}

/// Hashes the length block and masks the result with `E(K, J0)`.
#[target_feature(enable = "neon,aes")]
fn finish(acc: uint64x2_t, hp: &HPowers, aad_len: usize, len: usize, tag_mask: uint8x16_t) -> Tag {
    let bits = |n: usize| (n as u64).wrapping_mul(8);
    let lengths = vcombine_u64(vcreate_u64(bits(len)), vcreate_u64(bits(aad_len)));
    let s = mul(veorq_u64(acc, lengths), hp.h[0]);
    to_bytes(veorq_u8(to_block(s), tag_mask))
}

/// `J0 = nonce || 1` in byte order, and the first data counter (2) with each 32-bit lane
/// byte-swapped.
#[target_feature(enable = "neon,aes")]
fn initial_counter(nonce: &Nonce) -> (uint8x16_t, uint32x4_t) {
    let mut block = [0u8; 16];
    block[..12].copy_from_slice(nonce);
    block[15] = 1;
    let j0 = load(&block);
    let ctr = vreinterpretq_u32_u8(vrev32q_u8(j0));
    (j0, vaddq_u32(ctr, lane3(1)))
}

/// `N` consecutive counter blocks in byte order, advancing `ctr` past them.
#[inline]
#[target_feature(enable = "neon,aes")]
fn counters<const N: usize>(ctr: &mut uint32x4_t) -> [uint8x16_t; N] {
    let mut out = [vdupq_n_u8(0); N];
    let one = lane3(1);
    for o in &mut out {
        *o = vrev32q_u8(vreinterpretq_u8_u32(*ctr));
        *ctr = vaddq_u32(*ctr, one);
    }
    out
}

/// `[0, 0, 0, n]`: an increment of the counter lane.
#[inline]
#[target_feature(enable = "neon,aes")]
fn lane3(n: u32) -> uint32x4_t {
    vsetq_lane_u32::<3>(n, vdupq_n_u32(0))
}

/// AES-encrypts `N` blocks in parallel with `NR` rounds.
#[inline]
#[target_feature(enable = "neon,aes")]
fn aes<const NR: usize, const N: usize>(
    rk: &[uint8x16_t; 15],
    mut b: [uint8x16_t; N],
) -> [uint8x16_t; N] {
    for k in &rk[..NR - 1] {
        for x in &mut b {
            *x = vaesmcq_u8(vaeseq_u8(*x, *k));
        }
    }
    for x in &mut b {
        *x = veorq_u8(vaeseq_u8(*x, rk[NR - 1]), rk[NR]);
    }
    b
}

/// Keystream for a tail of `n <= 8` blocks, computed four or eight blocks wide.
#[target_feature(enable = "neon,aes")]
fn tail_keystream<const NR: usize>(key: &Key, ctr: &mut uint32x4_t, n: usize) -> [uint8x16_t; 8] {
    let mut ks = [vdupq_n_u8(0); 8];
    if n <= 4 {
        let four = aes::<NR, 4>(&key.rk, counters::<4>(ctr));
        ks[..4].copy_from_slice(&four);
    } else {
        ks = aes::<NR, 8>(&key.rk, counters::<8>(ctr));
    }
    ks
}

#[inline]
#[target_feature(enable = "neon,aes")]
fn to_bytes(x: uint8x16_t) -> [u8; 16] {
    let mut out = [0u8; 16];
    // SAFETY: `out` is 16 writable bytes; `vst1q_u8` has no alignment needs.
    unsafe { vst1q_u8(out.as_mut_ptr(), x) };
    out
}

/// AES key expansion (FIPS 197, 5.2) for `nk` 32-bit key words (4 or 8). SubWord runs on
/// the AES unit: `aese` with a zero round key on a word broadcast to all four columns is
/// SubBytes, and ShiftRows cannot move bytes between identical columns. No table lookups.
#[target_feature(enable = "neon,aes")]
fn expand(key: &[u8], nk: usize) -> [uint8x16_t; 15] {
    let rounds = nk + 6;
    let mut w = [0u32; 60];
    for (word, bytes) in w.iter_mut().zip(key.chunks_exact(4).take(nk)) {
        let mut b = [0u8; 4];
        b.copy_from_slice(bytes);
        *word = u32::from_le_bytes(b);
    }
    let mut rcon = 1u32;
    for i in nk..4 * (rounds + 1) {
        let mut t = w[i - 1];
        if i % nk == 0 {
            // RotWord moves byte 0 to byte 3: with little-endian words, a right rotation.
            t = sub_word(t.rotate_right(8)) ^ rcon;
            rcon = xtime(rcon);
        } else if nk > 6 && i % nk == 4 {
            t = sub_word(t);
        }
        w[i] = w[i - nk] ^ t;
    }
    let mut rk = [vdupq_n_u8(0); 15];
    for (r, k) in rk.iter_mut().enumerate().take(rounds + 1) {
        *k = vreinterpretq_u8_u32(vcombine_u32(
            vcreate_u32(u64::from(w[4 * r]) | (u64::from(w[4 * r + 1]) << 32)),
            vcreate_u32(u64::from(w[4 * r + 2]) | (u64::from(w[4 * r + 3]) << 32)),
        ));
    }
    w.zeroize();
    rk
}

#[inline]
#[target_feature(enable = "neon,aes")]
fn sub_word(x: u32) -> u32 {
    let s = vaeseq_u8(vreinterpretq_u8_u32(vdupq_n_u32(x)), vdupq_n_u8(0));
    vgetq_lane_u32::<0>(vreinterpretq_u32_u8(s))
}

/// Multiplication by `x` in GF(2^8), for the round constants.
fn xtime(b: u32) -> u32 {
    let b = b << 1;
    if b & 0x100 != 0 { b ^ 0x11b } else { b }
}

/// Loads the input block at `off`.
///
/// # Safety
/// `off + 16 <= io.len()`.
#[inline]
unsafe fn io_load(io: &InOut<'_>, off: usize) -> uint8x16_t {
    debug_assert!(off + 16 <= io.len());
    // SAFETY: `io.src()` is readable for `io.len()` bytes (`InOut`'s invariant) and the
    // caller keeps `off + 16` within that. NEON is part of the aarch64 baseline.
    unsafe { vld1q_u8(io.src().add(off)) }
}

/// Stores the output block at `off`.
///
/// # Safety
/// `off + 16 <= io.len()`.
#[inline]
unsafe fn io_store(io: &InOut<'_>, off: usize, x: uint8x16_t) {
    debug_assert!(off + 16 <= io.len());
    // SAFETY: `io.dst()` is writable for `io.len()` bytes (`InOut`'s invariant) and the
    // caller keeps `off + 16` within that.
    unsafe { vst1q_u8(io.dst().add(off), x) }
}

/// Copies input bytes `off..off + out.len()` into `out`.
///
/// # Safety
/// `off + out.len() <= io.len()`.
unsafe fn io_read(io: &InOut<'_>, off: usize, out: &mut [u8]) {
    debug_assert!(off + out.len() <= io.len());
    // SAFETY: the range is inside `io`'s input (caller's contract); `out` is a distinct
    // local buffer, so the two cannot overlap.
    unsafe { core::ptr::copy_nonoverlapping(io.src().add(off), out.as_mut_ptr(), out.len()) }
}

/// Copies `bytes` to output bytes `off..off + bytes.len()`.
///
/// # Safety
/// `off + bytes.len() <= io.len()`.
unsafe fn io_write(io: &InOut<'_>, off: usize, bytes: &[u8]) {
    debug_assert!(off + bytes.len() <= io.len());
    // SAFETY: the range is inside `io`'s output (caller's contract); `bytes` is a distinct
    // local buffer.
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), io.dst().add(off), bytes.len()) }
}

/// Bytes per stitched batch: eight blocks, one per power of H.
const BATCH: usize = 16 * POWERS;
