//! Through the real binary: every segment, decrypted alone, starts with its codec's parameter
//! sets and then a keyframe, even when the source sends the parameter sets only once (an
//! encoder in V4L2 `HEADER_MODE_SEPARATE`, older Qualcomm venus). Each fixture is rewritten
//! so that only its first access unit carries parameter sets, sealed with one segment per
//! keyframe interval, and each segment is decrypted on its own (`--from-seq`).

mod cli;

use std::fs;

use camseal::nal::{Codec, access_units, classify, nal_units};
use cli::{Setup, fixtures, s};

/// `stream` without parameter sets after its first access unit.
fn headers_once(codec: Codec, stream: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(stream.len());
    for (i, au) in access_units(codec, stream).enumerate() {
        let bytes = &stream[au.span.clone()];
        for nal in nal_units(bytes) {
            let is_set = classify(codec, nal.payload).is_some_and(|n| n.is_parameter_set);
            if i == 0 || !is_set {
                out.extend_from_slice(&bytes[nal.span]);
            }
        }
    }
    out
}

fn required(codec: Codec) -> &'static [u8] {
    match codec {
        Codec::H264 => &[7, 8],
        Codec::H265 => &[32, 33, 34],
    }
}

/// Checks that `plain` has every parameter-set kind its codec needs before its first
/// picture, and that the first picture is a keyframe.
fn starts_decodable(codec: Codec, plain: &[u8]) -> Result<(), String> {
    let mut seen = Vec::new();
    for nal in nal_units(plain) {
        let Some(info) = classify(codec, nal.payload) else {
            continue;
        };
        if info.is_vcl {
            if !info.is_keyframe {
                return Err(format!(
                    "the first picture is not a keyframe (type {})",
                    info.nal_type
                ));
            }
            let missing: Vec<u8> = required(codec)
                .iter()
                .copied()
                .filter(|t| !seen.contains(t))
                .collect();
            return if missing.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "parameter sets of types {missing:?} missing before the keyframe"
                ))
            };
        }
        seen.push(info.nal_type);
    }
    Err("no picture at all".into())
}

/// The coded slices of `plain`, concatenated.
fn slices(codec: Codec, plain: &[u8]) -> Vec<u8> {
    nal_units(plain)
        .filter(|n| classify(codec, n.payload).is_some_and(|i| i.is_vcl))
        .flat_map(|n| plain[n.span].to_vec())
        .collect()
}

#[test]
fn every_segment_decrypted_alone_starts_with_parameter_sets_and_a_keyframe() {
    let setup = Setup::new();
    let mut stream_id = 0u32;
    for f in fixtures().into_iter().filter(|f| f.keyframes >= 3) {
        let stripped = headers_once(f.codec, &f.bytes());
        let input = setup.path(&f.name);
        fs::write(&input, &stripped).unwrap();
        // Before the fix this is what a decoder starting at a later keyframe would get.
        let later_key = access_units(f.codec, &stripped)
            .skip(1)
            .find(|au| au.keyframe)
            .unwrap();
        assert!(
            starts_decodable(f.codec, &stripped[later_key.span]).is_err(),
            "{}: the rewrite left parameter sets in later keyframes",
            f.name
        );

        stream_id += 1;
        let out = setup.path(&format!("{}-segments", f.name));
        let segment_seconds = format!("{:.3}", f.seconds() / f64::from(f.keyframes));
        let segs = setup.seal(
            &format!("file:{}", input.display()),
            &out,
            &[
                "--segment-seconds",
                &segment_seconds,
                "--stream",
                &stream_id.to_string(),
            ],
        );
        assert!(segs.len() >= 2, "{}: {} segments", f.name, segs.len());
        let mut all_slices = Vec::new();
        for (seq, seg) in segs.iter().enumerate() {
            let (plain, _) = setup.decrypt_ok(&[seg], &["--from-seq", &seq.to_string()]);
            if let Err(e) = starts_decodable(f.codec, &plain) {
                panic!("{}: segment {} decrypted alone: {e}", f.name, s(seg));
            }
            all_slices.extend(slices(f.codec, &plain));
        }
        assert!(
            all_slices == slices(f.codec, &stripped),
            "{}: the pictures changed on the way",
            f.name
        );
    }
}
