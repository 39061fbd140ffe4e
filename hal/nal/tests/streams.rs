//! Real encoder output: the fixtures in `pipeline/tests/data/streams/`, made by
//! `scripts/gen-fixtures.sh`, whose MANIFEST holds ffprobe's frame and keyframe counts.

use std::path::{Path, PathBuf};

use camseal_nal::{AccessUnit, Codec, access_units, classify, frame_rate, nal_units, sniff_codec};

struct Entry {
    name: String,
    codec: Codec,
    frames: usize,
    keyframes: usize,
    fps: (u32, u32),
}

fn streams_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipeline/tests/data/streams")
}

fn manifest() -> Vec<Entry> {
    let text = std::fs::read_to_string(streams_dir().join("MANIFEST")).expect("read MANIFEST");
    let entries: Vec<Entry> = text
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [name, codec, frames, keyframes, fps] = fields[..] else {
                panic!("bad MANIFEST line {line:?}");
            };
            let (num, den) = fps.split_once('/').expect("fps is num/den");
            Entry {
                name: name.into(),
                codec: codec.parse().expect("codec"),
                frames: frames.parse().expect("frames"),
                keyframes: keyframes.parse().expect("keyframes"),
                fps: (num.parse().expect("fps num"), den.parse().expect("fps den")),
            }
        })
        .collect();
    assert!(
        entries.len() >= 6,
        "MANIFEST lists {} streams",
        entries.len()
    );
    entries
}

fn read(entry: &Entry) -> Vec<u8> {
    std::fs::read(streams_dir().join(&entry.name)).expect("read stream")
}

fn assert_partition<I: Iterator<Item = core::ops::Range<usize>>>(spans: I, len: usize, what: &str) {
    let mut at = 0;
    for span in spans {
        assert_eq!(span.start, at, "{what}: gap or overlap at {at}");
        assert!(span.start < span.end, "{what}: empty span at {at}");
        at = span.end;
    }
    assert_eq!(at, len, "{what}: does not reach the end");
}

#[test]
fn access_units_match_ffprobe() {
    for entry in manifest() {
        let buf = read(&entry);
        let aus: Vec<AccessUnit> = access_units(entry.codec, &buf).collect();
        let name = &entry.name;
        assert_partition(aus.iter().map(|au| au.span.clone()), buf.len(), name);
        assert_eq!(aus.len(), entry.frames, "{name}: access units vs frames");
        let keyframes = aus.iter().filter(|au| au.keyframe).count();
        assert_eq!(keyframes, entry.keyframes, "{name}: keyframes");
        assert_eq!(
            aus.iter().map(|au| au.nal_count).sum::<usize>(),
            nal_units(&buf).count(),
            "{name}: every NAL unit in exactly one access unit"
        );
    }
}

#[test]
fn first_access_unit_is_a_self_contained_keyframe() {
    for entry in manifest() {
        let buf = read(&entry);
        let name = &entry.name;
        let first = access_units(entry.codec, &buf)
            .next()
            .expect("an access unit");
        assert!(first.keyframe, "{name}: first AU is not a keyframe");
        let types: Vec<u8> = nal_units(&buf[first.span.clone()])
            .filter_map(|nal| classify(entry.codec, nal.payload))
            .filter(|info| info.is_parameter_set)
            .map(|info| info.nal_type)
            .collect();
        let needed: &[u8] = match entry.codec {
            Codec::H264 => &[7, 8],
            Codec::H265 => &[32, 33, 34],
        };
        for t in needed {
            assert!(
                types.contains(t),
                "{name}: first AU lacks parameter set {t}: {types:?}"
            );
        }
    }
}

#[test]
fn parameter_sets_precede_the_slices_of_their_picture() {
    // x264 and the repeat-headers x265 stream put parameter sets before every IDR; the other
    // x265 stream only at the start. Whenever a stream repeats them, each must stay in the
    // keyframe's access unit rather than trail the previous picture.
    for entry in manifest() {
        let buf = read(&entry);
        for au in access_units(entry.codec, &buf) {
            let bytes = &buf[au.span.clone()];
            let infos: Vec<_> = nal_units(bytes)
                .filter_map(|n| classify(entry.codec, n.payload))
                .collect();
            let first_vcl = infos.iter().position(|i| i.is_vcl).expect("AU has a slice");
            assert!(
                infos[first_vcl..].iter().all(|i| !i.is_parameter_set),
                "{}: parameter set after a slice in AU at {:?}",
                entry.name,
                au.span
            );
            assert!(
                infos[first_vcl].first_slice_of_picture,
                "{}: {:?}",
                entry.name, au.span
            );
            assert_eq!(
                au.keyframe,
                infos.iter().any(|i| i.is_vcl && i.is_keyframe),
                "{}",
                entry.name
            );
        }
    }
}

#[test]
fn codec_and_frame_rate() {
    for entry in manifest() {
        let buf = read(&entry);
        let name = &entry.name;
        assert_eq!(
            sniff_codec(&buf),
            Some(entry.codec),
            "{name}: sniffed codec"
        );
        let ext = name
            .rsplit_once('.')
            .map(|(_, ext)| ext)
            .expect("extension");
        assert_eq!(
            Codec::from_extension(ext),
            Some(entry.codec),
            "{name}: extension"
        );
        assert_eq!(
            frame_rate(entry.codec, &buf),
            Some(entry.fps),
            "{name}: frame rate"
        );
    }
}

#[test]
fn nal_spans_partition_and_hold_their_payloads() {
    for entry in manifest() {
        let buf = read(&entry);
        let nals: Vec<_> = nal_units(&buf).collect();
        assert_partition(nals.iter().map(|n| n.span.clone()), buf.len(), &entry.name);
        for nal in &nals {
            let start = nal.payload.as_ptr() as usize - buf.as_ptr() as usize;
            assert!(nal.span.start + 3 <= start && start + nal.payload.len() <= nal.span.end);
            assert!(
                classify(entry.codec, nal.payload).is_some(),
                "{}: malformed NAL",
                entry.name
            );
        }
    }
}

#[test]
fn multi_slice_pictures_are_one_access_unit() {
    let entry = manifest()
        .into_iter()
        .find(|e| e.name.contains("slices"))
        .expect("a multi-slice fixture");
    let buf = read(&entry);
    let slice_counts: Vec<usize> = access_units(entry.codec, &buf)
        .map(|au| {
            nal_units(&buf[au.span])
                .filter_map(|n| classify(entry.codec, n.payload))
                .filter(|i| i.is_vcl)
                .count()
        })
        .collect();
    assert!(slice_counts.iter().all(|&n| n == 4), "{slice_counts:?}");
}

#[test]
fn truncated_streams_never_panic_and_still_partition() {
    for entry in manifest() {
        let buf = read(&entry);
        let step = (buf.len() / 97).max(1);
        for cut in (0..buf.len()).step_by(step) {
            for part in [&buf[..cut], &buf[cut..]] {
                let aus: Vec<_> = access_units(entry.codec, part).collect();
                assert_partition(aus.into_iter().map(|au| au.span), part.len(), &entry.name);
                let _ = frame_rate(entry.codec, part);
                let _ = sniff_codec(part);
            }
        }
    }
}
