//! Cutting one access unit into NAL-aligned chunks of at most `max_chunk` bytes.
//!
//! Each chunk is sealed as one record, so a chunk boundary inside a NAL unit is marked: the
//! record of a piece that does not start at a NAL boundary carries the `continuation` flag.

use core::ops::Range;

use camseal_nal::{NalUnits, nal_units};

/// One chunk of an access unit.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Chunk {
    /// Where the chunk lies, relative to the access-unit slice given to
    /// [`chunk_access_unit`]. Never empty, never longer than `max_chunk`.
    pub range: Range<usize>,
    /// The chunk does not start at a NAL boundary: it continues a NAL unit that was larger
    /// than `max_chunk` and had to be split.
    pub continuation: bool,
}

/// Cuts `au` into chunks, in order.
///
/// Whole NAL units (their [`spans`](camseal_nal::NalUnit::span), start codes included) are
/// packed greedily into a chunk while they fit in `max_chunk` bytes. A NAL unit larger than
/// `max_chunk` is split into `max_chunk`-sized pieces (the last may be shorter); the pieces
/// after its first are flagged [`continuation`](Chunk::continuation). Each piece is a chunk
/// of its own: no chunk mixes a piece of a split unit with whole units. The chunks partition
/// `au` exactly; an empty `au` yields none. A `max_chunk` of 0 is treated as 1, so the
/// iterator always ends.
///
/// `au` should be one access unit from [`camseal_nal::access_units`], but any bytes work: input
/// without start codes is one NAL unit for this purpose.
pub fn chunk_access_unit(au: &[u8], max_chunk: usize) -> Chunks<'_> {
    let max_chunk = max_chunk.max(1);
    if au.len() <= max_chunk {
        // The greedy packing would put every unit into one chunk anyway: skip the scan,
        // which is the only per-byte work on the source thread.
        return Chunks {
            nals: nal_units(&[]),
            max_chunk,
            pending: (!au.is_empty()).then_some(0..au.len()),
            continuation: false,
        };
    }
    let mut nals = nal_units(au);
    let pending = nals.next().map(|nal| nal.span);
    Chunks {
        nals,
        max_chunk,
        pending,
        continuation: false,
    }
}

/// Iterator over the chunks of an access unit; see [`chunk_access_unit`].
#[derive(Clone, Debug)]
pub struct Chunks<'a> {
    nals: NalUnits<'a>,
    max_chunk: usize,
    /// The part of a NAL span not yet given out, if any.
    pending: Option<Range<usize>>,
    /// `pending` is the rest of a NAL unit whose first bytes were already given out.
    continuation: bool,
}

impl Iterator for Chunks<'_> {
    type Item = Chunk;

    fn next(&mut self) -> Option<Chunk> {
        let first = self.pending.take()?;
        let continuation = self.continuation;
        self.continuation = false;
        if continuation && first.len() <= self.max_chunk {
            // The last piece of a split NAL unit is a chunk of its own, so that every
            // piece of a split is flagged and no chunk mixes a piece with whole units.
            self.pending = self.nals.next().map(|nal| nal.span);
            return Some(Chunk {
                range: first,
                continuation,
            });
        }
        if first.len() > self.max_chunk {
            // Split an oversized NAL unit (or its rest): give out one full piece.
            let cut = first.start + self.max_chunk;
            self.pending = Some(cut..first.end);
            self.continuation = true;
            return Some(Chunk {
                range: first.start..cut,
                continuation,
            });
        }
        // Pack following whole NAL units while they fit.
        let start = first.start;
        let mut end = first.end;
        for nal in self.nals.by_ref() {
            if nal.span.end - start <= self.max_chunk {
                end = nal.span.end;
            } else {
                self.pending = Some(nal.span);
                break;
            }
        }
        Some(Chunk {
            range: start..end,
            continuation,
        })
    }
}

impl core::iter::FusedIterator for Chunks<'_> {}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn chunks(au: &[u8], max_chunk: usize) -> Vec<(Range<usize>, bool)> {
        chunk_access_unit(au, max_chunk)
            .map(|c| (c.range, c.continuation))
            .collect()
    }

    /// Builds an access unit from NAL payload lengths, each behind a 4-byte start code, and
    /// returns it with the NAL spans.
    fn au_of(payload_lens: &[usize]) -> (Vec<u8>, Vec<Range<usize>>) {
        let mut buf = Vec::new();
        let mut spans = Vec::new();
        for &len in payload_lens {
            let start = buf.len();
            buf.extend_from_slice(&[0, 0, 0, 1]);
            buf.extend(std::iter::repeat_n(0x41, len));
            spans.push(start..buf.len());
        }
        (buf, spans)
    }

    /// Checks the invariants every chunking must hold.
    fn check(au: &[u8], max_chunk: usize) -> Vec<(Range<usize>, bool)> {
        let got = chunks(au, max_chunk);
        let limit = max_chunk.max(1);
        let nal_spans: Vec<Range<usize>> = nal_units(au).map(|n| n.span).collect();
        let nal_starts: Vec<usize> = nal_spans.iter().map(|s| s.start).collect();
        let mut at = 0;
        for (range, continuation) in &got {
            assert_eq!(range.start, at, "chunks must be contiguous: {got:?}");
            assert!(!range.is_empty(), "empty chunk: {got:?}");
            assert!(range.len() <= limit, "chunk over {limit}: {got:?}");
            assert_eq!(
                *continuation,
                !nal_starts.contains(&range.start),
                "continuation flag must mark chunks that start inside a NAL: {got:?}"
            );
            if *continuation {
                assert!(
                    nal_spans
                        .iter()
                        .any(|s| s.start < range.start && range.end <= s.end),
                    "a continuation chunk must lie inside one NAL span: {got:?}"
                );
            }
            at = range.end;
        }
        assert_eq!(at, au.len(), "chunks must cover the AU: {got:?}");
        got
    }

    #[test]
    fn empty_au_has_no_chunks() {
        assert!(chunks(&[], 100).is_empty());
        assert!(chunks(&[], 0).is_empty());
    }

    #[test]
    fn small_au_is_one_chunk() {
        let (au, _) = au_of(&[10, 20, 30]);
        assert_eq!(check(&au, 1000), vec![(0..au.len(), false)]);
        assert_eq!(check(&au, au.len()), vec![(0..au.len(), false)]);
    }

    #[test]
    fn packs_whole_nals_greedily() {
        // Spans of 14, 24, 34, 14 bytes.
        let (au, spans) = au_of(&[10, 20, 30, 10]);
        assert_eq!(
            check(&au, 40),
            vec![
                (0..spans[1].end, false),
                (spans[2].clone(), false),
                (spans[3].clone(), false)
            ]
        );
        assert_eq!(check(&au, 48), vec![(0..38, false), (38..86, false)]);
    }

    #[test]
    fn splits_oversized_nal_with_continuations() {
        // Spans of 8, 104, 8 bytes.
        let (au, _) = au_of(&[4, 100, 4]);
        assert_eq!(
            check(&au, 50),
            vec![
                (0..8, false),
                (8..58, false),
                (58..108, true),
                (108..112, true),
                (112..120, false),
            ]
        );
    }

    #[test]
    fn split_pieces_are_exact_multiples() {
        let (au, _) = au_of(&[96]);
        assert_eq!(
            check(&au, 25),
            vec![
                (0..25, false),
                (25..50, true),
                (50..75, true),
                (75..100, true)
            ]
        );
    }

    #[test]
    fn zero_max_chunk_is_one_byte() {
        let (au, _) = au_of(&[2, 1]);
        let got = check(&au, 0);
        assert_eq!(got.len(), au.len());
        assert_eq!(got, check(&au, 1));
    }

    #[test]
    fn input_without_start_code_is_one_nal() {
        let au = [7u8; 10];
        assert_eq!(
            check(&au, 4),
            vec![(0..4, false), (4..8, true), (8..10, true)]
        );
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "megabytes of 4K video, hours under Miri; the examples cover the code"
    )]
    fn real_4k_stream_chunks() {
        use camseal_nal::{Codec, access_units, classify};

        let stream = include_bytes!("../tests/data/streams/h264-high-3840x2160.h264");
        for max_chunk in [1500, 16 * 1024, 64 * 1024] {
            let mut continuations = 0;
            for au in access_units(Codec::H264, stream) {
                let bytes = &stream[au.span.clone()];
                let got = check(bytes, max_chunk);
                continuations += got.iter().filter(|(_, c)| *c).count();
                if au.keyframe {
                    // Parameter sets travel in the keyframe's first chunk.
                    let first = &bytes[got[0].0.clone()];
                    let types: Vec<u8> = nal_units(first)
                        .filter_map(|n| classify(Codec::H264, n.payload))
                        .map(|i| i.nal_type)
                        .collect();
                    assert!(types.contains(&7) && types.contains(&8), "{types:?}");
                }
            }
            // The 4K IDR slices exceed 64 KiB, so even the largest setting splits them.
            assert!(continuations > 0, "max_chunk {max_chunk}");
        }
    }

    proptest! {
        #[cfg_attr(miri, ignore = "minutes per case under Miri; the examples above cover the same code")]
        #[test]
        fn chunks_partition_arbitrary_bytes(
            au in proptest::collection::vec(prop_oneof![Just(0u8), Just(1u8), any::<u8>()], 0..600),
            max_chunk in 0usize..200,
        ) {
            check(&au, max_chunk);
        }

        #[cfg_attr(miri, ignore = "minutes per case under Miri; the examples above cover the same code")]
        #[test]
        fn chunks_partition_nal_streams(
            lens in proptest::collection::vec(0usize..300, 0..12),
            max_chunk in 0usize..400,
        ) {
            let (au, spans) = au_of(&lens);
            let got = check(&au, max_chunk);
            // Every NAL that fits is never split: its span lies inside one chunk.
            for span in spans.iter().filter(|s| s.len() <= max_chunk.max(1)) {
                prop_assert!(got.iter().any(|(r, _)| r.start <= span.start && span.end <= r.end));
            }
        }
    }
}
