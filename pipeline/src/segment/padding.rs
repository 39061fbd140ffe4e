//! Size padding of records (FORMAT.md §3.1): the policy, kept apart from sealing and I/O.
//!
//! A record's size is in the clear, and a video frame's size follows motion. With
//! [`Padding::Buckets`] every video record's plaintext is rounded up to a *bucket* before it
//! is sealed, so an outsider sees only which bucket a frame fell in. The padding and the
//! length that declares it are inside the AEAD: the cloud can neither strip nor change them
//! without the record failing authentication, and the camera's signatures over whole
//! records cover them too.
//!
//! Padded plaintext of a video record:
//!
//! ```text
//! payload || zero bytes (pad) || pad (u32, big-endian)     pad = padded_len(len) - len
//! ```
//!
//! Buckets keep the three most significant bits of a length and round the rest up (four
//! buckets per doubling: `4·2^e, 5·2^e, 6·2^e, 7·2^e`), with a floor of
//! [`MIN_BUCKET`] bytes. A payload grows by less than 25 %, and by 5–12 % on the
//! committed test streams (docs/PERFORMANCE.md, "Size padding").

use super::SegmentError;

/// Whether (and how) a segment pads its video records. It is announced by a critical header
/// extension, so a reader that does not know it refuses the segment rather than output the
/// padding as video.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Padding {
    /// Every video record's payload is rounded up to a bucket ([`padded_len`]).
    Buckets,
    /// Records hold their payload exactly (no padding extension in the header).
    #[default]
    Off,
}

impl Padding {
    /// The name used on the command line and in reports.
    pub const fn name(self) -> &'static str {
        match self {
            Padding::Buckets => "buckets",
            Padding::Off => "off",
        }
    }

    /// The header extension that announces this padding: `None` for [`Padding::Off`].
    pub fn extension(self) -> Option<[u8; 5]> {
        match self {
            Padding::Buckets => {
                let mut ext = [0u8; 5];
                ext[..2].copy_from_slice(&EXT_PADDING.to_be_bytes());
                ext[2..4].copy_from_slice(&1u16.to_be_bytes());
                ext[4] = SCHEME_BUCKETS;
                Some(ext)
            }
            Padding::Off => None,
        }
    }

    /// Parses the value of a padding extension (type [`EXT_PADDING`]).
    pub fn from_extension_value(value: &[u8]) -> Result<Padding, SegmentError> {
        match value {
            [SCHEME_BUCKETS] => Ok(Padding::Buckets),
            [_] => Err(SegmentError::Malformed("unknown padding scheme")),
            _ => Err(SegmentError::Malformed(
                "padding extension is not one byte long",
            )),
        }
    }

    /// Length of the AEAD plaintext that carries a `payload_len`-byte video payload.
    pub fn sealed_plaintext_len(self, payload_len: usize) -> usize {
        match self {
            Padding::Buckets => padded_len(payload_len) + PAD_LEN_BYTES,
            Padding::Off => payload_len,
        }
    }
}

impl core::str::FromStr for Padding {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "buckets" => Ok(Padding::Buckets),
            "off" => Ok(Padding::Off),
            _ => Err(format!("unknown padding {s:?} (use off or buckets)")),
        }
    }
}

/// The bucket a `len`-byte payload is padded to: the smallest bucket at least `len`.
///
/// A bucket is a length of at least [`MIN_BUCKET`] whose binary form has at most three
/// significant bits (`m·2^e` with `m` in 4..=7). Lengths up to the format's 16 MiB record
/// limit stay within it: 2^24 is itself a bucket.
pub const fn padded_len(len: usize) -> usize {
    let len = if len < MIN_BUCKET { MIN_BUCKET } else { len };
    let bits = usize::BITS - len.leading_zeros();
    let shift = bits - SIGNIFICANT_BITS;
    let step = 1usize << shift;
    // Round up to a multiple of 2^shift. Lengths near usize::MAX (far beyond any record)
    // saturate instead of overflowing, so no input can make this panic.
    len.saturating_add(step - 1) & !(step - 1)
}

/// Whether `len` is a bucket (a length [`padded_len`] can return).
pub const fn is_bucket(len: usize) -> bool {
    len >= MIN_BUCKET && padded_len(len) == len
}

/// Appends `payload`, its zero padding and the padding's length to `out`: the plaintext a
/// padded video record seals.
pub fn pad_into(payload: &[u8], out: &mut Vec<u8>) {
    let pad = padded_len(payload.len()) - payload.len();
    out.reserve(pad + PAD_LEN_BYTES + payload.len());
    out.extend_from_slice(payload);
    out.resize(out.len() + pad, 0);
    // A pad is below 2^22 (a quarter of the 16 MiB record limit), so it fits in u32.
    out.extend_from_slice(&(pad as u32).to_be_bytes());
}

/// Writes the padded plaintext of `payload` into `out`, which must be exactly
/// `padded_len(payload.len()) + 4` bytes long (callers size it from
/// [`Padding::sealed_plaintext_len`]).
pub fn pad_in_place(payload: &[u8], out: &mut [u8]) -> Result<(), SegmentError> {
    if out.len() != Padding::Buckets.sealed_plaintext_len(payload.len()) {
        return Err(SegmentError::Limit(
            "padded record buffer has the wrong size",
        ));
    }
    let pad = out.len() - PAD_LEN_BYTES - payload.len();
    let (body, len_field) = out.split_at_mut(out.len() - PAD_LEN_BYTES);
    body[..payload.len()].copy_from_slice(payload);
    body[payload.len()..].fill(0);
    len_field.copy_from_slice(&(pad as u32).to_be_bytes());
    Ok(())
}

/// The payload length of an opened padded plaintext `padded`: checks that its declared
/// pad fits, that the padding is all zero, and that the padded size is a bucket. Refuses a
/// malformed one (only a faulty camera, or a holder of the segment key, can seal one).
pub fn unpadded_len(padded: &[u8]) -> Result<usize, SegmentError> {
    let Some(body_len) = padded.len().checked_sub(PAD_LEN_BYTES) else {
        return Err(SegmentError::Malformed(
            "padded record is shorter than its padding length",
        ));
    };
    let mut field = [0u8; PAD_LEN_BYTES];
    field.copy_from_slice(&padded[body_len..]);
    // u32 always fits in usize on the 32- and 64-bit targets camseal builds for.
    let pad = u32::from_be_bytes(field) as usize;
    let Some(payload_len) = body_len.checked_sub(pad) else {
        return Err(SegmentError::Malformed(
            "padding length runs past the record",
        ));
    };
    if !is_bucket(body_len) || padded_len(payload_len) != body_len {
        return Err(SegmentError::Malformed(
            "padded record is not the bucket of its payload",
        ));
    }
    if padded[payload_len..body_len].iter().any(|&b| b != 0) {
        return Err(SegmentError::Malformed("padding bytes are not zero"));
    }
    Ok(payload_len)
}

/// Header extension type of the padding announcement (critical: below 0x8000).
pub const EXT_PADDING: u16 = 0x0002;
/// Size of the field after the padding that says how long it is.
pub const PAD_LEN_BYTES: usize = 4;
/// Smallest bucket: every payload under it looks the same.
pub const MIN_BUCKET: usize = 256;

/// The padding extension's only scheme so far: [`padded_len`]'s buckets.
const SCHEME_BUCKETS: u8 = 1;
/// Significant bits a bucket keeps.
const SIGNIFICANT_BITS: u32 = 3;

#[cfg(test)]
mod tests {
    use super::*;

    /// The buckets written out by hand from FORMAT.md §3.1, against the function.
    #[test]
    fn padded_len_follows_the_documented_ladder() {
        let cases = [
            (0, 256),
            (1, 256),
            (255, 256),
            (256, 256),
            (257, 320),
            (320, 320),
            (321, 384),
            (447, 448),
            (448, 448),
            (449, 512),
            (513, 640),
            (1000, 1024),
            (1025, 1280),
            (4709, 5120),
            (65_535, 65_536),
            (65_536, 65_536),
            (65_537, 81_920),
            (16 << 20, 16 << 20),
            ((16 << 20) - 1, 16 << 20),
        ];
        for (len, bucket) in cases {
            assert_eq!(padded_len(len), bucket, "padded_len({len})");
        }
    }

    /// Every length up to 1 MiB: the bucket is no smaller, is a bucket, is the smallest
    /// one, and costs less than 25 % above the floor.
    #[test]
    fn padded_len_is_the_smallest_bucket_and_costs_under_a_quarter() {
        // Under Miri, up to 4 KiB: a million lengths would take hours there.
        let (top, doublings) = if cfg!(miri) {
            (1 << 12, 4)
        } else {
            (1 << 20, 12)
        };
        let mut prev_bucket = 0;
        for len in 0..=top {
            let b = padded_len(len);
            assert!(b >= len && is_bucket(b), "{len} -> {b}");
            // Monotonic and idempotent, so no bucket lies in len..b.
            assert!(b >= prev_bucket, "not monotonic at {len}");
            if len > MIN_BUCKET {
                assert!(4 * b < 5 * len, "{len} -> {b}: 25 % or more");
            }
            prev_bucket = b;
        }
        // Four buckets per doubling above the floor.
        let buckets = (MIN_BUCKET..=top).filter(|&l| is_bucket(l)).count();
        assert_eq!(buckets, 4 * doublings + 1);
    }

    #[test]
    fn padding_round_trips_and_is_stripped_exactly() {
        for len in [0usize, 1, 200, 255, 256, 257, 4709, 65_536, 65_537] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8 + 1).collect();
            let mut padded = vec![0xAA];
            pad_into(&payload, &mut padded);
            let padded = &padded[1..];
            assert_eq!(padded.len(), Padding::Buckets.sealed_plaintext_len(len));
            assert_eq!(unpadded_len(padded).unwrap(), len);
            let mut in_place = vec![0xFF; padded.len()];
            pad_in_place(&payload, &mut in_place).unwrap();
            assert_eq!(in_place, padded, "{len}");
        }
        assert!(pad_in_place(&[1, 2, 3], &mut [0u8; 10]).is_err());
        // Absurd lengths do not panic.
        let _ = padded_len(usize::MAX);
        assert!(!is_bucket(usize::MAX));
    }

    #[test]
    fn malformed_padding_is_refused_without_panicking() {
        let mut padded = Vec::new();
        pad_into(&[7u8; 300], &mut padded);
        assert_eq!(padded.len(), 324);
        let set_pad = |p: &mut Vec<u8>, pad: u32| {
            let n = p.len();
            p[n - 4..].copy_from_slice(&pad.to_be_bytes());
        };
        // The pad length runs past the record (up to u32::MAX).
        for pad in [321, 1000, u32::MAX] {
            let mut bad = padded.clone();
            set_pad(&mut bad, pad);
            assert!(
                matches!(unpadded_len(&bad), Err(SegmentError::Malformed(m)) if m.contains("past")),
                "pad {pad}"
            );
        }
        // Too much pad: the payload left would have a smaller bucket, or the "padding"
        // would take payload bytes, which are not zero.
        for pad in [21, 65, 100, 320] {
            let mut bad = padded.clone();
            set_pad(&mut bad, pad);
            assert!(unpadded_len(&bad).is_err(), "pad {pad}");
        }
        // Less pad is another payload (ending in zeros) with the same bucket: authenticated,
        // so only the sealer can choose it, and it is stripped exactly as declared.
        for (pad, len) in [(0, 320), (19, 301)] {
            let mut other = padded.clone();
            set_pad(&mut other, pad);
            assert_eq!(unpadded_len(&other).unwrap(), len);
        }
        // Nonzero padding bytes.
        let mut bad = padded.clone();
        bad[310] = 1;
        assert!(unpadded_len(&bad).is_err());
        // Too short to hold the length; not a bucket.
        for len in 0..4 {
            assert!(unpadded_len(&vec![0u8; len]).is_err());
        }
        assert!(unpadded_len(&[0u8; 300]).is_err());
    }

    #[test]
    fn extension_round_trips_and_unknown_schemes_are_refused() {
        assert_eq!(Padding::Off.extension(), None);
        let ext = Padding::Buckets.extension().unwrap();
        assert_eq!(ext, [0x00, 0x02, 0x00, 0x01, 0x01]);
        assert_eq!(
            Padding::from_extension_value(&ext[4..]).unwrap(),
            Padding::Buckets
        );
        assert!(Padding::from_extension_value(&[2]).is_err());
        assert!(Padding::from_extension_value(&[]).is_err());
        assert!(Padding::from_extension_value(&[1, 0]).is_err());
        assert_eq!("buckets".parse::<Padding>().unwrap(), Padding::Buckets);
        assert_eq!("off".parse::<Padding>().unwrap(), Padding::Off);
        assert!("on".parse::<Padding>().is_err());
    }
}
