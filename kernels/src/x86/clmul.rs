//! GHASH on PCLMULQDQ, computed as POLYVAL (RFC 8452, Appendix A).
//!
//! GHASH's bit-reflected field elements become plain little-endian polynomials once each block
//! is byte-reversed, and `GHASH(H, X) = rev(POLYVAL(H * x, rev(X)))`. POLYVAL's product is
//! `a * b * x^-128 mod x^128 + x^127 + x^126 + x^121 + 1`, a Montgomery product, whose
//! reduction is two carry-less multiplications by one 64-bit constant. Every value here is
//! in that byte-reversed domain.
//!
//! Throughput comes from aggregation: with `H^1..H^8` precomputed, eight blocks are
//! multiplied by `H^8..H^1` (Karatsuba, three multiplications each), the unreduced 256-bit
//! products are summed, and one reduction finishes the batch.

use core::arch::x86_64::*;

use zeroize::Zeroize;

/// `H^1..H^16` (as POLYVAL products: `h[i]` is the (i+1)-th power) and, for Karatsuba, the
/// XOR of each power's two 64-bit halves in the low half of `hk[i]`. The AES-NI kernel uses
/// the first [`POWERS`]; the VAES kernel all [`MAX_POWERS`].
#[derive(Clone)]
pub(super) struct HPowers {
    pub(super) h: [__m128i; MAX_POWERS],
    pub(super) hk: [__m128i; MAX_POWERS],
}

impl HPowers {
    /// The powers of the hash key `AES_K(0^128)`, given in GCM's byte order.
    #[target_feature(enable = "aes,pclmulqdq,ssse3,sse4.1")]
    pub(super) fn new(hash_key: __m128i) -> HPowers {
        // H * x in POLYVAL's domain (RFC 8452, Appendix A: mulX_POLYVAL(ByteReverse(H))).
        let h = bswap(hash_key);
        let hi = _mm_cvtsi128_si64(_mm_unpackhi_epi64(h, h)) as u64;
        let lo = _mm_cvtsi128_si64(h) as u64;
        let v = (u128::from(hi) << 64) | u128::from(lo);
        let v = (v << 1) ^ ((v >> 127) * POLYVAL_X128_REMAINDER);
        let h1 = _mm_set_epi64x((v >> 64) as i64, v as i64);

        let mut h = [h1; MAX_POWERS];
        for i in 1..MAX_POWERS {
            h[i] = mul(h[i - 1], h1);
        }
        let hk = h.map(|p| _mm_xor_si128(p, _mm_shuffle_epi32::<0x4e>(p)));
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
    lo: __m128i,
    mid: __m128i,
    hi: __m128i,
}

impl Acc {
    #[target_feature(enable = "aes,pclmulqdq,ssse3,sse4.1")]
    pub(super) fn zero() -> Acc {
        let z = _mm_setzero_si128();
        Acc {
            lo: z,
            mid: z,
            hi: z,
        }
    }

    /// Adds `x * h` where `hk` holds `h`'s Karatsuba half-sum in its low 64 bits.
    #[inline]
    #[target_feature(enable = "aes,pclmulqdq,ssse3,sse4.1")]
    pub(super) fn add(&mut self, x: __m128i, h: __m128i, hk: __m128i) {
        self.lo = _mm_xor_si128(self.lo, _mm_clmulepi64_si128::<0x00>(x, h));
        self.hi = _mm_xor_si128(self.hi, _mm_clmulepi64_si128::<0x11>(x, h));
        let xk = _mm_xor_si128(x, _mm_shuffle_epi32::<0x4e>(x));
        self.mid = _mm_xor_si128(self.mid, _mm_clmulepi64_si128::<0x00>(xk, hk));
    }

    /// An accumulator from partial sums computed elsewhere (the two lanes of a 256-bit one).
    #[inline]
    #[target_feature(enable = "aes,pclmulqdq,ssse3,sse4.1")]
    pub(super) fn from_parts(lo: __m128i, mid: __m128i, hi: __m128i) -> Acc {
        Acc { lo, mid, hi }
    }

    /// The POLYVAL value of the sum: Karatsuba recombination and one reduction.
    #[inline]
    #[target_feature(enable = "aes,pclmulqdq,ssse3,sse4.1")]
    pub(super) fn reduce(self) -> __m128i {
        let mid = _mm_xor_si128(self.mid, _mm_xor_si128(self.lo, self.hi));
        let lo = _mm_xor_si128(self.lo, _mm_slli_si128::<8>(mid));
        let hi = _mm_xor_si128(self.hi, _mm_srli_si128::<8>(mid));
        reduce(hi, lo)
    }
}

/// `a * b * x^-128` in POLYVAL's field (schoolbook; used for key setup and single blocks).
#[inline]
#[target_feature(enable = "aes,pclmulqdq,ssse3,sse4.1")]
pub(super) fn mul(a: __m128i, b: __m128i) -> __m128i {
    let lo = _mm_clmulepi64_si128::<0x00>(a, b);
    let hi = _mm_clmulepi64_si128::<0x11>(a, b);
    let mid = _mm_xor_si128(
        _mm_clmulepi64_si128::<0x01>(a, b),
        _mm_clmulepi64_si128::<0x10>(a, b),
    );
    let lo = _mm_xor_si128(lo, _mm_slli_si128::<8>(mid));
    let hi = _mm_xor_si128(hi, _mm_srli_si128::<8>(mid));
    reduce(hi, lo)
}

/// Montgomery reduction of the 256-bit product `hi:lo` by `x^128`: twice, fold the low 64
/// bits `m` back in as `m * (x^128 + c * x^64 + 1)`, which clears them, where `c * x^64` is
/// `x^127 + x^126 + x^121`.
#[inline]
#[target_feature(enable = "aes,pclmulqdq,ssse3,sse4.1")]
pub(super) fn reduce(hi: __m128i, lo: __m128i) -> __m128i {
    let c = _mm_set_epi64x(0, POLYVAL_C as i64);
    let t = _mm_clmulepi64_si128::<0x00>(lo, c);
    let u = _mm_xor_si128(_mm_shuffle_epi32::<0x4e>(lo), t);
    let t = _mm_clmulepi64_si128::<0x00>(u, c);
    let v = _mm_xor_si128(_mm_shuffle_epi32::<0x4e>(u), t);
    _mm_xor_si128(hi, v)
}

/// Reverses the 16 bytes: GCM byte order <-> POLYVAL's little-endian domain (and the
/// counter block <-> a little-endian integer whose low 32-bit lane is the counter).
#[inline]
#[target_feature(enable = "aes,pclmulqdq,ssse3,sse4.1")]
pub(super) fn bswap(x: __m128i) -> __m128i {
    _mm_shuffle_epi8(x, bswap_mask())
}

#[inline]
#[target_feature(enable = "aes,pclmulqdq,ssse3,sse4.1")]
pub(super) fn bswap_mask() -> __m128i {
    _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
}

/// Folds `blocks` (already byte-reversed, at most [`MAX_POWERS`]) into `acc`: one aggregated
/// multiplication by `H^n..H^1` and one reduction.
#[inline]
#[target_feature(enable = "aes,pclmulqdq,ssse3,sse4.1")]
pub(super) fn ghash_blocks(acc: __m128i, blocks: &[__m128i], hp: &HPowers) -> __m128i {
    let n = blocks.len().min(MAX_POWERS);
    if n == 0 {
        return acc;
    }
    let mut sum = Acc::zero();
    for (i, &b) in blocks[..n].iter().enumerate() {
        let x = if i == 0 { _mm_xor_si128(b, acc) } else { b };
        let p = n - 1 - i;
        sum.add(x, hp.h[p], hp.hk[p]);
    }
    sum.reduce()
}

/// Folds `data` into `acc`, zero-padding a partial last block (GCM's AAD and ciphertext
/// padding).
#[target_feature(enable = "aes,pclmulqdq,ssse3,sse4.1")]
pub(super) fn ghash_bytes(mut acc: __m128i, data: &[u8], hp: &HPowers) -> __m128i {
    let (blocks, partial) = data.as_chunks::<16>();
    let mut batches = blocks.chunks_exact(POWERS);
    for batch in &mut batches {
        let mut sum = Acc::zero();
        for (i, block) in batch.iter().enumerate() {
            let mut x = bswap(load(block));
            if i == 0 {
                x = _mm_xor_si128(x, acc);
            }
            sum.add(x, hp.h[POWERS - 1 - i], hp.hk[POWERS - 1 - i]);
        }
        acc = sum.reduce();
    }
    let rest = batches.remainder();
    let mut tail = [_mm_setzero_si128(); POWERS];
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
#[target_feature(enable = "aes,pclmulqdq,ssse3,sse4.1")]
pub(super) fn load(block: &[u8; 16]) -> __m128i {
    // SAFETY: `block` is a reference to 16 readable bytes; `loadu` has no alignment needs.
    unsafe { _mm_loadu_si128(block.as_ptr().cast()) }
}

/// Blocks per aggregated GHASH step of the AES-NI kernel (and of AAD hashing).
pub(super) const POWERS: usize = 8;

/// How many powers of H are kept: the VAES kernel's batch of eight 256-bit vectors.
pub(super) const MAX_POWERS: usize = 16;

/// POLYVAL's modulus without its `x^128` term, `x^127 + x^126 + x^121 + 1`: what `x^128`
/// reduces to.
const POLYVAL_X128_REMAINDER: u128 = 0xc200_0000_0000_0000_0000_0000_0000_0001;

/// `x^63 + x^62 + x^57`: the modulus's middle terms divided by `x^64`.
const POLYVAL_C: u64 = 0xc200_0000_0000_0000;
