//! Annex-B start-code scanning.

use core::ops::Range;

/// One NAL unit found in an Annex-B byte stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NalUnit<'a> {
    /// Where this unit lies in the scanned buffer: from the first byte of its start code
    /// (`00 00 01`, or `00 00 00 01` whose leading zero is included) up to the first byte of
    /// the next unit's start code. Zero bytes after the payload (`trailing_zero_8bits`) thus
    /// belong to this span. Bytes before the first start code are folded into the first span.
    pub span: Range<usize>,
    /// The NAL unit itself, from its header byte(s) to its end, with trailing zero bytes
    /// stripped. Always a sub-slice of `span`; empty for an empty NAL unit (two start codes in
    /// a row) and for input that holds no start code at all.
    pub payload: &'a [u8],
}

/// Splits an Annex-B byte stream into NAL units.
///
/// The spans of the yielded units partition `buf` exactly: the first starts at 0, each starts
/// where the previous one ended, and the last ends at `buf.len()`. Bytes before the first
/// start code are folded into the first unit's span. Input with no start code at all yields
/// one unit spanning everything with an empty payload; empty input yields nothing.
pub fn nal_units(buf: &[u8]) -> NalUnits<'_> {
    let state = if buf.is_empty() {
        State::Done
    } else {
        match find_start_code(buf, 0) {
            Some(start_code) => State::At {
                span_start: 0,
                start_code,
            },
            None => State::NoStartCode,
        }
    };
    NalUnits { buf, state }
}

/// Iterator over the NAL units of a buffer; see [`nal_units`].
#[derive(Clone, Debug)]
pub struct NalUnits<'a> {
    buf: &'a [u8],
    state: State,
}

impl<'a> Iterator for NalUnits<'a> {
    type Item = NalUnit<'a>;

    fn next(&mut self) -> Option<NalUnit<'a>> {
        let buf = self.buf;
        match self.state {
            State::Done => None,
            State::NoStartCode => {
                self.state = State::Done;
                Some(NalUnit {
                    span: 0..buf.len(),
                    payload: &buf[buf.len()..],
                })
            }
            State::At {
                span_start,
                start_code,
            } => {
                let payload_start = start_code + START_CODE_LEN;
                let (span_end, payload_end) = match find_start_code(buf, payload_start) {
                    Some(next) => {
                        // A zero just before `00 00 01` is the leading byte of a 4-byte start
                        // code; it cannot belong to our payload, which never ends in zero.
                        let next_span = if next > payload_start && buf[next - 1] == 0 {
                            next - 1
                        } else {
                            next
                        };
                        self.state = State::At {
                            span_start: next_span,
                            start_code: next,
                        };
                        (next_span, next)
                    }
                    None => {
                        self.state = State::Done;
                        (buf.len(), buf.len())
                    }
                };
                let payload = trim_trailing_zeros(&buf[payload_start..payload_end]);
                Some(NalUnit {
                    span: span_start..span_end,
                    payload,
                })
            }
        }
    }
}

impl core::iter::FusedIterator for NalUnits<'_> {}

#[derive(Clone, Copy, Debug)]
enum State {
    /// The next unit's span starts at `span_start`, its `00 00 01` at `start_code`.
    At {
        span_start: usize,
        start_code: usize,
    },
    Done,
    NoStartCode,
}

/// Index of the first `00 00 01` at or after `from`.
///
/// Slice data is close to random, so a `01` byte is rare (about one in 256): jumping from one
/// to the next with `memchr` (SIMD) and checking the two bytes before it reads a keyframe at
/// memory speed, where a byte loop costs tens of microseconds per 100 KiB.
pub(crate) fn find_start_code(buf: &[u8], from: usize) -> Option<usize> {
    // The `01` of a start code at `from` is at `from + 2`.
    let mut one = from.checked_add(2)?;
    while one < buf.len() {
        one += memchr::memchr(1, buf.get(one..)?)?;
        if buf[one - 1] == 0 && buf[one - 2] == 0 {
            return Some(one - 2);
        }
        one += 1;
    }
    None
}

fn trim_trailing_zeros(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |last| last + 1);
    &bytes[..end]
}

const START_CODE_LEN: usize = 3;

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(buf: &[u8]) -> Vec<(Range<usize>, Vec<u8>)> {
        nal_units(buf)
            .map(|n| (n.span, n.payload.to_vec()))
            .collect()
    }

    #[test]
    fn empty_input_yields_nothing() {
        assert!(collect(&[]).is_empty());
    }

    #[test]
    fn no_start_code_is_one_unit_with_empty_payload() {
        for buf in [
            &[0u8][..],
            &[0, 0],
            &[0, 0, 0],
            &[1, 2, 3, 4, 0, 0, 2],
            &[0, 1, 0, 1],
        ] {
            assert_eq!(collect(buf), vec![(0..buf.len(), vec![])], "{buf:?}");
        }
    }

    #[test]
    fn three_and_four_byte_start_codes() {
        let buf = [
            0, 0, 1, 0x67, 0xaa, 0, 0, 0, 1, 0x68, 0xbb, 0, 0, 1, 0x65, 0xcc,
        ];
        assert_eq!(
            collect(&buf),
            vec![
                (0..5, vec![0x67, 0xaa]),
                (5..11, vec![0x68, 0xbb]),
                (11..16, vec![0x65, 0xcc]),
            ]
        );
    }

    #[test]
    fn leading_zeros_fold_into_first_span() {
        let buf = [0, 0, 0, 0, 0, 1, 0x09, 0x10];
        assert_eq!(collect(&buf), vec![(0..8, vec![0x09, 0x10])]);
    }

    #[test]
    fn trailing_zeros_belong_to_preceding_span() {
        // Two trailing_zero_8bits, then a 4-byte start code.
        let buf = [0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 0, 0, 1, 0x68, 0xce, 0, 0];
        assert_eq!(
            collect(&buf),
            vec![(0..8, vec![0x67, 0x42]), (8..16, vec![0x68, 0xce])]
        );
    }

    #[test]
    fn garbage_before_first_start_code_folds_into_first_span() {
        let buf = [0xde, 0xad, 0x01, 0x00, 0x00, 0x01, 0x41, 0x9a];
        assert_eq!(collect(&buf), vec![(0..8, vec![0x41, 0x9a])]);
    }

    #[test]
    fn empty_units_between_adjacent_start_codes() {
        let buf = [0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0x09];
        assert_eq!(
            collect(&buf),
            vec![(0..3, vec![]), (3..6, vec![]), (6..11, vec![0x09])]
        );
        // A start code at the very end gives an empty last unit.
        let buf = [0, 0, 1, 0x09, 0xf0, 0, 0, 1];
        assert_eq!(
            collect(&buf),
            vec![(0..5, vec![0x09, 0xf0]), (5..8, vec![])]
        );
    }

    #[test]
    fn emulation_prevention_is_not_a_start_code() {
        let buf = [0, 0, 1, 0x65, 0, 0, 3, 1, 0, 0, 3, 0, 0xff];
        assert_eq!(collect(&buf), vec![(0..13, buf[3..].to_vec())]);
    }

    #[test]
    fn find_start_code_all_offsets() {
        for pos in 0..8 {
            let mut buf = vec![0xffu8; 12];
            buf[pos] = 0;
            buf[pos + 1] = 0;
            buf[pos + 2] = 1;
            assert_eq!(find_start_code(&buf, 0), Some(pos));
            assert_eq!(find_start_code(&buf, pos + 1), None);
        }
        assert_eq!(find_start_code(&[0, 0, 0, 0, 1], 0), Some(2));
        assert_eq!(find_start_code(&[0, 0, 2, 0, 0, 1], 0), Some(3));
        assert_eq!(find_start_code(&[0, 0, 1], 1), None);
        assert_eq!(find_start_code(&[0, 0, 1], usize::MAX), None);
    }

    proptest::proptest! {
        /// The SIMD search agrees with the definition on byte soup rich in 0s and 1s.
        // Under Miri this proptest does not finish in minutes (proptest's own machinery);
        // `find_start_code_all_offsets` runs the same search there.
        #[cfg_attr(miri, ignore)]
        #[test]
        fn find_start_code_matches_a_plain_scan(
            buf in proptest::collection::vec(proptest::sample::select(vec![0u8, 1, 3, 0xff]), 0..300),
            from in 0usize..310,
        ) {
            let expected = (from..buf.len().saturating_sub(2))
                .find(|&i| buf[i] == 0 && buf[i + 1] == 0 && buf[i + 2] == 1);
            proptest::prop_assert_eq!(find_start_code(&buf, from), expected);
        }
    }
}
