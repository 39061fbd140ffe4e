//! GHASH on PMULL, computed as POLYVAL (RFC 8452, Appendix A), like `x86/clmul.rs`: blocks
//! are byte-reversed into POLYVAL's little-endian domain, `H^1..H^8` are precomputed, and
//! eight Karatsuba products are summed before one Montgomery reduction.

use core::arch::aarch64::*;

use zeroize::Zeroize;

/// `H^1..H^8` (`h[i]` is the (i+1)-th power, as POLYVAL products) and, for Karatsuba, each
/// power's two 64-bit halves XORed together in lane 0 of `hk[i]`.
pub(super) struct HPowers {
    pub(super) h: [uint64x2_t; POWERS],
    pub(super) hk: [uint64x2_t; POWERS],
}

impl HPowers {
    /// The powers of the hash key `AES_K(0^128)`, given in GCM's byte order.
    #[target_feature(enable = "neon,aes")]
    pub(super) fn new(hash_key: [u8; 16]) -> HPowers {
        // H * x in POLYVAL's domain (RFC 8452, Appendix A: mulX_POLYVAL(ByteReverse(H))).
        let v = u128::from_be_bytes(hash_key);
        let v = (v << 1) ^ ((v >> 127) * POLYVAL_X128_REMAINDER);
        let h1 = vcombine_u64(vcreate_u64(v as u64), vcreate_u64((v >> 64) as u64));
        let mut h = [h1; POWERS];
        for i in 1..POWERS {
            h[i] = mul(h[i - 1], h1);
        }
        let mut hk = h;
        for k in &mut hk {
            *k = veorq_u64(*k, vextq_u64::<1>(*k, *k));
        }
        HPowers { h, hk }
    }
}

impl Drop for HPowers {
    fn drop(&mut self) {
        self.h.zeroize();
        self.hk.zeroize();
    }
}

/// Unreduced Karatsuba sums of several block-by-power products.
#[derive(Clone, Copy)]
pub(super) struct Acc {
    lo: uint64x2_t,
    mid: uint64x2_t,
    hi: uint64x2_t,
}

impl Acc {
    #[inline]
    #[target_feature(enable = "neon,aes")]
    pub(super) fn zero() -> Acc {
        let z = vdupq_n_u64(0);
        Acc {
            lo: z,
            mid: z,
            hi: z,
        }
    }

    /// Adds `x * h` where lane 0 of `hk` holds `h`'s Karatsuba half-sum.
    #[inline]
    #[target_feature(enable = "neon,aes")]
    pub(super) fn add(&mut self, x: uint64x2_t, h: uint64x2_t, hk: uint64x2_t) {
        self.lo = veorq_u64(self.lo, pmull_lo(x, h));
        self.hi = veorq_u64(self.hi, pmull_hi(x, h));
        let xk = veorq_u64(x, vextq_u64::<1>(x, x));
        self.mid = veorq_u64(self.mid, pmull_lo(xk, hk));
    }

    /// The POLYVAL value of the sum: Karatsuba recombination and one reduction.
    #[inline]
    #[target_feature(enable = "neon,aes")]
    pub(super) fn reduce(self) -> uint64x2_t {
        let z = vdupq_n_u64(0);
        let mid = veorq_u64(self.mid, veorq_u64(self.lo, self.hi));
        let lo = veorq_u64(self.lo, vextq_u64::<1>(z, mid));
        let hi = veorq_u64(self.hi, vextq_u64::<1>(mid, z));
        reduce(hi, lo)
    }
}

/// `a * b * x^-128` in POLYVAL's field.
#[inline]
#[target_feature(enable = "neon,aes")]
pub(super) fn mul(a: uint64x2_t, b: uint64x2_t) -> uint64x2_t {
    let mut acc = Acc::zero();
    acc.add(a, b, veorq_u64(b, vextq_u64::<1>(b, b)));
    acc.reduce()
}

/// Montgomery reduction of `hi:lo` by `x^128` (see `x86/clmul.rs::reduce`).
#[inline]
#[target_feature(enable = "neon,aes")]
fn reduce(hi: uint64x2_t, lo: uint64x2_t) -> uint64x2_t {
    let c = vdupq_n_u64(POLYVAL_C);
    let t = pmull_lo(lo, c);
    let u = veorq_u64(vextq_u64::<1>(lo, lo), t);
    let t = pmull_lo(u, c);
    let v = veorq_u64(vextq_u64::<1>(u, u), t);
    veorq_u64(hi, v)
}

/// Carry-less product of the low lanes.
#[inline]
#[target_feature(enable = "neon,aes")]
fn pmull_lo(a: uint64x2_t, b: uint64x2_t) -> uint64x2_t {
    vreinterpretq_u64_p128(vmull_p64(vgetq_lane_u64::<0>(a), vgetq_lane_u64::<0>(b)))
}

/// Carry-less product of the high lanes.
#[inline]
#[target_feature(enable = "neon,aes")]
fn pmull_hi(a: uint64x2_t, b: uint64x2_t) -> uint64x2_t {
    vreinterpretq_u64_p128(vmull_high_p64(
        vreinterpretq_p64_u64(a),
        vreinterpretq_p64_u64(b),
    ))
}

/// Reverses the 16 bytes: GCM byte order <-> POLYVAL's little-endian domain.
#[inline]
#[target_feature(enable = "neon,aes")]
pub(super) fn bswap(x: uint8x16_t) -> uint64x2_t {
    let r = vreinterpretq_u64_u8(vrev64q_u8(x));
    vextq_u64::<1>(r, r)
}

/// The inverse of [`bswap`].
#[inline]
#[target_feature(enable = "neon,aes")]
pub(super) fn to_block(x: uint64x2_t) -> uint8x16_t {
    vrev64q_u8(vreinterpretq_u8_u64(vextq_u64::<1>(x, x)))
}

/// Folds `blocks` (already byte-reversed, at most [`POWERS`]) into `acc`: one aggregated
/// multiplication by `H^n..H^1` and one reduction.
#[inline]
#[target_feature(enable = "neon,aes")]
pub(super) fn ghash_blocks(acc: uint64x2_t, blocks: &[uint64x2_t], hp: &HPowers) -> uint64x2_t {
    let n = blocks.len().min(POWERS);
    if n == 0 {
        return acc;
    }
    let mut sum = Acc::zero();
    for (i, &b) in blocks[..n].iter().enumerate() {
        let x = if i == 0 { veorq_u64(b, acc) } else { b };
        let p = n - 1 - i;
        sum.add(x, hp.h[p], hp.hk[p]);
    }
    sum.reduce()
}

/// Folds `data` into `acc`, zero-padding a partial last block.
#[target_feature(enable = "neon,aes")]
pub(super) fn ghash_bytes(mut acc: uint64x2_t, data: &[u8], hp: &HPowers) -> uint64x2_t {
    let (blocks, partial) = data.as_chunks::<16>();
    let mut batches = blocks.chunks_exact(POWERS);
    for batch in &mut batches {
        let mut sum = Acc::zero();
        for (i, block) in batch.iter().enumerate() {
            let mut x = bswap(load(block));
            if i == 0 {
                x = veorq_u64(x, acc);
            }
            sum.add(x, hp.h[POWERS - 1 - i], hp.hk[POWERS - 1 - i]);
        }
        acc = sum.reduce();
    }
    let rest = batches.remainder();
    let mut tail = [vdupq_n_u64(0); POWERS];
    for (t, block) in tail.iter_mut().zip(rest) {
        *t = bswap(load(block));
    }
    let mut n = rest.len();
    if !partial.is_empty() {
        let mut block = [0u8; 16];
        block[..partial.len()].copy_from_slice(partial);
        // `rest` holds fewer than POWERS blocks, so there is room for one more.
        tail[n] = bswap(load(&block));
        n += 1;
    }
    ghash_blocks(acc, &tail[..n], hp)
}

/// Loads a block.
#[inline]
#[target_feature(enable = "neon,aes")]
pub(super) fn load(block: &[u8; 16]) -> uint8x16_t {
    // SAFETY: `block` is a reference to 16 readable bytes; `vld1q_u8` has no alignment needs.
    unsafe { vld1q_u8(block.as_ptr()) }
}

/// Blocks per aggregated GHASH step (and per stitched batch).
pub(super) const POWERS: usize = 8;

/// POLYVAL's modulus without its `x^128` term, `x^127 + x^126 + x^121 + 1`.
const POLYVAL_X128_REMAINDER: u128 = 0xc200_0000_0000_0000_0000_0000_0000_0001;

/// `x^63 + x^62 + x^57`: the modulus's middle terms divided by `x^64`.
const POLYVAL_C: u64 = 0xc200_0000_0000_0000;
