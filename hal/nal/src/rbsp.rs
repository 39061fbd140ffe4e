//! A bit reader over a NAL unit's RBSP: it drops emulation-prevention bytes (the `03` in
//! `00 00 03`) as it goes and reads fixed-width and exp-Golomb fields MSB first.

/// Reads bits from a NAL payload (header included or not: the caller skips what it needs).
#[derive(Clone, Debug)]
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    /// Index of the next byte of `data` to load.
    pos: usize,
    /// Zero bytes seen in a row, for spotting emulation-prevention bytes.
    zeros: u8,
    /// The current byte and how many of its bits are still unread (MSB first).
    cur: u8,
    left: u8,
}

/// The reader ran out of bits or met a field that no valid stream holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Malformed;

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            pos: 0,
            zeros: 0,
            cur: 0,
            left: 0,
        }
    }

    /// One bit.
    pub(crate) fn bit(&mut self) -> Result<bool, Malformed> {
        if self.left == 0 {
            self.cur = self.next_byte()?;
            self.left = 8;
        }
        self.left -= 1;
        Ok((self.cur >> self.left) & 1 == 1)
    }

    pub(crate) fn flag(&mut self) -> Result<bool, Malformed> {
        self.bit()
    }

    /// An unsigned field of `n <= 32` bits, `u(n)`.
    pub(crate) fn bits(&mut self, n: u32) -> Result<u32, Malformed> {
        if n > 32 {
            return Err(Malformed);
        }
        let mut v: u64 = 0;
        for _ in 0..n {
            v = (v << 1) | u64::from(self.bit()?);
        }
        u32::try_from(v).map_err(|_| Malformed)
    }

    /// Skips `n` bits.
    pub(crate) fn skip(&mut self, n: u32) -> Result<(), Malformed> {
        for _ in 0..n {
            self.bit()?;
        }
        Ok(())
    }

    /// An unsigned exp-Golomb field, `ue(v)`, up to `u32::MAX - 1`.
    pub(crate) fn ue(&mut self) -> Result<u32, Malformed> {
        let mut leading_zeros = 0u32;
        while !self.bit()? {
            leading_zeros += 1;
            if leading_zeros > 31 {
                return Err(Malformed);
            }
        }
        let rest = self.bits(leading_zeros)?;
        // 2^lz - 1 + rest, which fits in u32 for lz <= 31.
        Ok(((1u64 << leading_zeros) - 1 + u64::from(rest)) as u32)
    }

    /// A signed exp-Golomb field, `se(v)`.
    pub(crate) fn se(&mut self) -> Result<i32, Malformed> {
        let k = i64::from(self.ue()?);
        let v = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        i32::try_from(v).map_err(|_| Malformed)
    }

    /// `ue(v)` that must not exceed `max`.
    pub(crate) fn ue_max(&mut self, max: u32) -> Result<u32, Malformed> {
        let v = self.ue()?;
        if v > max { Err(Malformed) } else { Ok(v) }
    }

    fn next_byte(&mut self) -> Result<u8, Malformed> {
        let mut b = *self.data.get(self.pos).ok_or(Malformed)?;
        self.pos += 1;
        if self.zeros >= 2 && b == EMULATION_PREVENTION {
            self.zeros = 0;
            b = *self.data.get(self.pos).ok_or(Malformed)?;
            self.pos += 1;
        }
        self.zeros = if b == 0 {
            self.zeros.saturating_add(1)
        } else {
            0
        };
        Ok(b)
    }
}

const EMULATION_PREVENTION: u8 = 0x03;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_width_fields() {
        let mut r = BitReader::new(&[0b1010_1100, 0xff, 0x00, 0x12, 0x34, 0x56, 0x78]);
        assert_eq!(r.bits(1), Ok(1));
        assert_eq!(r.bits(3), Ok(0b010));
        assert_eq!(r.bits(4), Ok(0b1100));
        assert_eq!(r.bits(8), Ok(0xff));
        assert_eq!(r.bits(0), Ok(0));
        assert_eq!(r.bits(32), Ok(0x0012_3456));
        assert_eq!(r.bits(8), Ok(0x78));
        assert_eq!(r.bit(), Err(Malformed));
        assert_eq!(BitReader::new(&[0; 8]).bits(33), Err(Malformed));
    }

    #[test]
    fn exp_golomb() {
        // 1 | 010 | 011 | 00100 | 00101 | 00111 -> ue 0,1,2,3,4,6
        let data = [0b1010_0110, 0b0100_0010, 0b1001_1100];
        let mut r = BitReader::new(&data);
        let got: Vec<u32> = (0..6).map(|_| r.ue().unwrap()).collect();
        assert_eq!(got, vec![0, 1, 2, 3, 4, 6]);
        let mut r = BitReader::new(&data);
        let got: Vec<i32> = (0..6).map(|_| r.se().unwrap()).collect();
        assert_eq!(got, vec![0, 1, -1, 2, -2, -3]);
    }

    #[test]
    fn exp_golomb_limits() {
        // 31 leading zeros then 1 and 31 ones: 2^32 - 2.
        let mut data = vec![0u8, 0, 0, 0b0000_0001];
        data.extend([0xff; 4]);
        let mut r = BitReader::new(&data);
        assert_eq!(r.ue(), Ok(u32::MAX - 1));
        // 32 leading zeros: rejected, not overflowed.
        assert_eq!(BitReader::new(&[0, 0, 0, 0, 0xff]).ue(), Err(Malformed));
        // Runs out of bits.
        assert_eq!(BitReader::new(&[0x00, 0x01]).ue(), Err(Malformed));
        assert_eq!(BitReader::new(&[]).ue(), Err(Malformed));
        assert_eq!(BitReader::new(&[0b0010_0000]).ue_max(2), Err(Malformed));
        assert_eq!(BitReader::new(&[0b0010_0000]).ue_max(3), Ok(3));
    }

    #[test]
    fn removes_emulation_prevention_bytes() {
        let mut r = BitReader::new(&[0x00, 0x00, 0x03, 0x01, 0x00, 0x00, 0x03, 0x03, 0xaa]);
        assert_eq!(r.bits(24), Ok(0x00_00_01));
        // The second 03 follows an emulation-prevention byte, so it is data.
        assert_eq!(r.bits(24), Ok(0x00_00_03));
        assert_eq!(r.bits(8), Ok(0xaa));
        assert_eq!(r.bit(), Err(Malformed));
        // 03 not after two zeros is data.
        let mut r = BitReader::new(&[0x00, 0x03, 0x00, 0x03]);
        assert_eq!(r.bits(32), Ok(0x0003_0003));
        // A trailing 00 00 03 yields two zero bytes and then the end.
        let mut r = BitReader::new(&[0x00, 0x00, 0x03]);
        assert_eq!(r.bits(16), Ok(0));
        assert_eq!(r.bit(), Err(Malformed));
    }
}
