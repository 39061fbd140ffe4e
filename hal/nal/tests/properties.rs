//! Property tests: arbitrary bytes never panic and always partition; streams built from
//! random NAL units and pictures are taken apart exactly as they were put together.

use core::ops::Range;

use camseal_nal::{Codec, access_units, classify, frame_rate, nal_units, sniff_codec};
use proptest::prelude::*;

/// Bytes rich in the values that matter to start codes and emulation prevention.
fn stream_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![4 => Just(0u8), 2 => Just(1u8), 1 => Just(3u8), 3 => any::<u8>()],
        0..400,
    )
}

fn codec() -> impl Strategy<Value = Codec> {
    prop_oneof![Just(Codec::H264), Just(Codec::H265)]
}

fn offset_in(buf: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - buf.as_ptr() as usize
}

fn check_partition(spans: impl Iterator<Item = Range<usize>>, len: usize) {
    let mut at = 0;
    for span in spans {
        assert_eq!(span.start, at, "gap or overlap");
        assert!(span.start < span.end, "empty span at {at}");
        at = span.end;
    }
    assert_eq!(at, len, "spans stop short of the end");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_nal_units(buf in stream_like_bytes()) {
        let nals: Vec<_> = nal_units(&buf).collect();
        check_partition(nals.iter().map(|n| n.span.clone()), buf.len());
        for nal in &nals {
            let start = offset_in(&buf, nal.payload);
            let end = start + nal.payload.len();
            prop_assert!(nal.span.start <= start && end <= nal.span.end);
            prop_assert!(nal.payload.last() != Some(&0), "trailing zero kept");
            prop_assert!(
                !nal.payload.windows(3).any(|w| w == [0, 0, 1]),
                "start code inside a payload"
            );
            if !nal.payload.is_empty() {
                prop_assert_eq!(&buf[start - 3..start], &[0u8, 0, 1][..]);
            }
        }
    }

    #[test]
    fn arbitrary_bytes_access_units(buf in stream_like_bytes(), codec in codec()) {
        let aus: Vec<_> = access_units(codec, &buf).collect();
        check_partition(aus.iter().map(|au| au.span.clone()), buf.len());
        let nal_total: usize = aus.iter().map(|au| au.nal_count).sum();
        prop_assert_eq!(nal_total, nal_units(&buf).count());
        for nal in nal_units(&buf) {
            let _ = classify(codec, nal.payload);
        }
        let _ = frame_rate(codec, &buf);
        let _ = sniff_codec(&buf);
    }

    #[test]
    fn arbitrary_payloads_classify_and_frame_rate(body in stream_like_bytes(), header in any::<[u8; 2]>()) {
        for codec in [Codec::H264, Codec::H265] {
            let mut payload = header.to_vec();
            payload.extend_from_slice(&body);
            let _ = classify(codec, &payload);
            // Force the header to read as an SPS, so the SPS parser sees random bodies.
            payload[0] = match codec {
                Codec::H264 => 0x67,
                Codec::H265 => 0x42,
            };
            payload[1] = match codec {
                Codec::H264 => payload[1],
                Codec::H265 => 0x01,
            };
            let mut buf = vec![0, 0, 0, 1];
            buf.extend_from_slice(&payload);
            let _ = frame_rate(codec, &buf);
        }
    }

    #[test]
    fn random_nal_streams_round_trip(
        nals in proptest::collection::vec(nal_spec(), 0..30),
        garbage in proptest::collection::vec(1u8..=255, 0..4),
    ) {
        let mut buf = garbage.clone();
        let mut payloads = Vec::new();
        for (i, spec) in nals.iter().enumerate() {
            // The first unit's leading zero would be ambiguous with zero garbage bytes.
            let four_byte = spec.four_byte && !(i == 0 && garbage.is_empty());
            if four_byte || (i == 0 && !garbage.is_empty()) {
                buf.push(0);
            }
            buf.extend_from_slice(&[0, 0, 1]);
            let payload = escape(&spec.payload);
            buf.extend_from_slice(&payload);
            buf.extend(std::iter::repeat_n(0, spec.trailing_zeros));
            payloads.push(payload);
        }
        let got: Vec<Vec<u8>> = nal_units(&buf).map(|n| n.payload.to_vec()).collect();
        if nals.is_empty() {
            prop_assert_eq!(got.len(), usize::from(!buf.is_empty()));
        } else {
            prop_assert_eq!(got, payloads);
        }
        for codec in [Codec::H264, Codec::H265] {
            check_partition(access_units(codec, &buf).map(|au| au.span), buf.len());
        }
    }

    #[test]
    fn random_pictures_regroup_exactly(
        codec in codec(),
        pictures in proptest::collection::vec(picture_spec(), 1..12),
        bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..24), 1..16),
        four_byte in proptest::collection::vec(any::<bool>(), 1..8),
    ) {
        let mut buf = Vec::new();
        let mut expected = Vec::new();
        let mut n = 0usize;
        for picture in &pictures {
            let start = buf.len();
            let units = picture.nal_units(codec);
            for header in &units {
                if four_byte[n % four_byte.len()] {
                    buf.push(0);
                }
                buf.extend_from_slice(&[0, 0, 1]);
                let mut payload = header.clone();
                payload.extend_from_slice(&bodies[n % bodies.len()]);
                payload.push(0x80); // rbsp_stop_one_bit: a payload never ends in zero
                buf.extend_from_slice(&escape(&payload));
                n += 1;
            }
            expected.push((start, picture.key, units.len()));
        }
        let got: Vec<_> = access_units(codec, &buf)
            .map(|au| (au.span.start, au.keyframe, au.nal_count))
            .collect();
        prop_assert_eq!(got, expected);
    }
}

#[derive(Clone, Debug)]
struct NalSpec {
    payload: Vec<u8>,
    four_byte: bool,
    trailing_zeros: usize,
}

fn nal_spec() -> impl Strategy<Value = NalSpec> {
    (
        proptest::collection::vec(any::<u8>(), 1..40),
        any::<bool>(),
        prop_oneof![4 => Just(0usize), 1 => 1usize..4],
    )
        .prop_map(|(mut payload, four_byte, trailing_zeros)| {
            if payload.last() == Some(&0) {
                payload.push(0x80);
            }
            NalSpec {
                payload,
                four_byte,
                trailing_zeros,
            }
        })
}

/// The shape of one coded picture: optional AUD, parameter sets and SEI before its slices,
/// optional NAL units that stay with it after them.
#[derive(Clone, Debug)]
struct PictureSpec {
    aud: bool,
    parameter_sets: bool,
    seis: usize,
    slices: usize,
    key: bool,
    slice_type: u8,
    trailers: Vec<u8>,
}

fn picture_spec() -> impl Strategy<Value = PictureSpec> {
    (
        any::<bool>(),
        any::<bool>(),
        0usize..3,
        1usize..5,
        any::<bool>(),
        0u8..6,
        proptest::collection::vec(0u8..4, 0..3),
    )
        .prop_map(
            |(aud, parameter_sets, seis, slices, key, slice_type, trailers)| PictureSpec {
                aud,
                parameter_sets,
                seis,
                slices,
                key,
                slice_type,
                trailers,
            },
        )
}

impl PictureSpec {
    /// NAL headers (plus the first slice-header byte for slices) of this picture's units.
    fn nal_units(&self, codec: Codec) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        match codec {
            Codec::H264 => {
                if self.aud {
                    out.push(vec![0x09, 0x10]);
                }
                if self.parameter_sets {
                    out.push(vec![0x67, 0x42, 0x00, 0x1e]);
                    out.push(vec![0x68, 0xce]);
                }
                out.extend((0..self.seis).map(|_| vec![0x06, 0x05]));
                let header = if self.key { 0x65 } else { 0x41 };
                // first_mb_in_slice: ue "1" = 0 for the first slice, "010" = 1 for later ones.
                out.push(vec![header, 0x88]);
                out.extend((1..self.slices).map(|_| vec![header, 0x42]));
                // End of sequence, end of stream, filler, and a data partition B slice.
                let trailer_types = [0x0a, 0x0b, 0x0c, 0x23];
                out.extend(
                    self.trailers
                        .iter()
                        .map(|&t| vec![trailer_types[usize::from(t)]]),
                );
            }
            Codec::H265 => {
                if self.aud {
                    out.push(vec![0x46, 0x01, 0x50]);
                }
                if self.parameter_sets {
                    out.push(vec![0x40, 0x01]);
                    out.push(vec![0x42, 0x01]);
                    out.push(vec![0x44, 0x01]);
                }
                out.extend((0..self.seis).map(|_| vec![0x4e, 0x01]));
                let nal_type = if self.key {
                    16 + self.slice_type
                } else {
                    self.slice_type
                };
                let tid = if self.key { 1 } else { 1 + self.slice_type % 3 };
                out.push(vec![nal_type << 1, tid, 0x80]);
                out.extend((1..self.slices).map(|_| vec![nal_type << 1, tid, 0x40]));
                // Suffix SEI, end of sequence, end of bitstream, filler data.
                let trailer_types = [40u8, 36, 37, 38];
                out.extend(
                    self.trailers
                        .iter()
                        .map(|&t| vec![trailer_types[usize::from(t)] << 1, 0x01]),
                );
            }
        }
        out
    }
}

/// Inserts emulation-prevention bytes so that no `00 00 0x` (x <= 3) occurs.
fn escape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 2);
    let mut zeros = 0;
    for &b in raw {
        if zeros >= 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        out.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    out
}
