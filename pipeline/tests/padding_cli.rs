//! Size padding (`camseal run --padding buckets`, FORMAT.md §3.1), as the real binary and
//! an outsider see it: every fixture round-trips byte for byte; `inspect --json` shows that
//! each video record's sealed size is a bucket (plus the public framing), which an unpadded
//! run does not; changing the padding, its declared length or the record's size is refused
//! by `verify` and `decrypt`; and a padding that the camera itself sealed wrong (a pad
//! length beyond the record) is refused by `decrypt` without a panic.
//!
//! The overhead each fixture pays is printed (`--nocapture`) for docs/PERFORMANCE.md.

mod cli;

use std::fs;
use std::path::PathBuf;

use camseal::keys::CameraPublic;
use camseal::seal::{SframeKey, SframeSuite, sframe_header_len};
use camseal::segment::padding::Padding;
use camseal::segment::read::Opener;
use camseal::segment::write::{
    CheckpointPolicy, HPKE_KEM_X25519, Randomness, RecipientKey, RecordAppender, SegmentParams,
    SegmentSealer, fixed_test_randomness,
};
use camseal::segment::{CloseReason, RecordFlags, SegmentEnd, record_digest, record_metadata};
use cli::{Layout, Setup, camseal, failed, fixtures, s, segments, succeeded, texts};
use serde_json::Value;

/// Prefix (length, flags, pts), tag, and the pad length field: the public framing around a
/// padded record's bucket; the SFrame header adds its own length (from KID and CTR).
const FRAMING: usize = 13 + 16 + 4;

#[test]
fn padding_buckets_round_trips_every_fixture_and_sizes_land_on_buckets() {
    let setup = Setup::new();
    let mut stream = 0u32;
    let mut table = Vec::new();
    for f in fixtures() {
        let input = f.bytes();
        let segment_seconds = format!("{:.3}", f.seconds() / f64::from(f.keyframes.max(1)));
        let mut runs = Vec::new();
        // Unpadded, padded, and padded with small chunks (a chunk limit that is no bucket:
        // a full chunk is padded past it, and the record buffers must have room for that).
        for (padding, max_chunk) in [("off", None), ("buckets", None), ("buckets", Some("1000"))] {
            let out = setup.path(&format!("{}-{padding}-{max_chunk:?}", f.name));
            stream += 1;
            let stream_arg = stream.to_string();
            let mut extra = vec![
                "--segment-seconds",
                &segment_seconds,
                "--stream",
                &stream_arg,
            ];
            // The default is off: say it only for the padded run.
            if padding == "buckets" {
                extra.extend(["--padding", "buckets"]);
            }
            if let Some(c) = max_chunk {
                extra.extend(["--max-chunk", c]);
            }
            let segs = setup.seal(&f.source(), &out, &extra);
            assert!(!segs.is_empty(), "{}: no segments", f.name);
            let (plain, _) = setup.decrypt_ok(&[&out], &[]);
            assert!(
                plain == input,
                "{} ({padding}): decrypted stream differs from the input",
                f.name
            );
            let (stdout, _) = succeeded(&setup.verify(&[&out]), "verify");
            assert!(stdout.contains("chain: OK"), "{stdout}");
            runs.push(outsider_view(&segs, padding));
        }
        let (off, padded, small) = (&runs[0], &runs[1], &runs[2]);
        assert_eq!(
            small.off_bucket, 0,
            "{}: small chunks off the buckets",
            f.name
        );
        // Without padding, sizes follow the frames; with it, every one is a bucket.
        assert!(
            off.off_bucket > 0,
            "{}: the unpadded run already lands on buckets, so this test proves nothing",
            f.name
        );
        assert_eq!(
            padded.off_bucket, 0,
            "{}: padded sizes off the buckets",
            f.name
        );
        assert_eq!(off.records, padded.records, "{}: record counts", f.name);
        assert!(
            padded.distinct < off.distinct,
            "{}: padding leaves {} distinct sizes of {}",
            f.name,
            padded.distinct,
            off.distinct
        );
        // Each payload grows by less than a quarter, plus the 4-byte pad length; a payload
        // under the 256-byte floor may grow to it.
        let video = input.len() as u64;
        let overhead = padded.bytes - off.bytes;
        let floor_records = padded.records as u64 * (256 + 4);
        assert!(
            overhead < video / 4 + floor_records,
            "{}: padding cost {overhead} bytes on {video}",
            f.name
        );
        table.push(format!(
            "| {} | {} | {} | {} | {} | {:.1} % | {} → {} |",
            f.name,
            padded.records,
            video,
            off.bytes,
            padded.bytes,
            100.0 * overhead as f64 / off.bytes as f64,
            off.distinct,
            padded.distinct
        ));
    }
    eprintln!(
        "| fixture | video records | video bytes | sealed, off | sealed, buckets | overhead | distinct record sizes |"
    );
    for row in table {
        eprintln!("{row}");
    }
}

#[test]
fn an_unknown_padding_is_a_usage_error() {
    let setup = Setup::new();
    let out = setup.run("soft:160x120@5", &setup.path("x"), &["--padding", "on"]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    cli::assert_no_panic(&stderr);
    assert!(
        stderr.contains("--padding") && stderr.contains("use off or buckets"),
        "{stderr}"
    );
    assert!(!setup.path("x").exists() || segments(&setup.path("x")).is_empty());
}

/// The cloud (no key) changes a padded record: a byte of its padding, a byte of its
/// declared pad length, or its size (cutting padding out and fixing up the length).
/// `verify` (no key) and `decrypt` refuse each.
#[test]
fn changing_the_padding_or_its_length_fails_verify_and_decrypt() {
    let setup = Setup::new();
    let f = cli::fixture("h264-baseline");
    let out = setup.path("sealed");
    let segs = setup.seal(&f.source(), &out, &["--padding", "buckets"]);
    let path = &segs[0];
    let bytes = fs::read(path).unwrap();
    let layout = Layout::of(&bytes);
    // A video record with room to spare: the viewer opens it to learn its payload length.
    let (index, payload_len) = padded_payloads(&bytes, &setup.viewer_secrets())
        .into_iter()
        .enumerate()
        .find(|(i, len)| layout.plain_len[*i] - 4 - len >= 8)
        .expect("a record with at least 8 bytes of padding");
    let record = layout.records[index].clone();
    let sframe_start = record.start + 13;
    let ct_start = sframe_start + sframe_header_len(layout.header.segment_seq, index as u64);
    let tag_start = record.end - 16;
    let pad_byte = ct_start + payload_len + 1;
    assert!(pad_byte < tag_start - 4);

    // (what, bytes, exit status of verify and decrypt): 3 tampered (the records digest the
    // camera signed, or the record's tag, no longer matches), 8 malformed (a size that is
    // no bucket, which a reader without the key sees).
    let mut attacks: Vec<(&str, Vec<u8>, i32)> = Vec::new();
    let mut flipped = bytes.clone();
    flipped[pad_byte] ^= 0x01;
    attacks.push(("a padding byte", flipped, 3));
    let mut length = bytes.clone();
    length[tag_start - 1] ^= 0x04;
    attacks.push(("the declared pad length", length, 3));
    // Cut 4 bytes of padding out and fix up the record's length field.
    let mut shorter = bytes[..pad_byte].to_vec();
    shorter.extend_from_slice(&bytes[pad_byte + 4..]);
    let len = (record.end - record.start - 4 - 4) as u32;
    shorter[record.start..record.start + 4].copy_from_slice(&len.to_be_bytes());
    attacks.push(("the record's size", shorter, 8));

    for (what, tampered, code) in attacks {
        let dir = setup.path(&format!("tampered-{}", what.replace(' ', "-")));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join(path.file_name().unwrap());
        fs::write(&file, &tampered).unwrap();
        let verify = setup.verify(&[&file]);
        let (stdout, stderr) = texts(&verify);
        assert_eq!(
            verify.status.code(),
            Some(code),
            "verify after a change to {what}:\n{stdout}\n{stderr}"
        );
        cli::assert_no_panic(&stderr);
        let plain = dir.join("out.264");
        let decrypt = setup.decrypt(&plain, &[&file], &[]);
        failed(&decrypt, code, &format!("decrypt after changing {what}"));
        assert!(!plain.exists(), "{what}: decrypt left output behind");
    }
}

/// The camera (or a holder of the segment key) seals a record whose pad length runs past
/// the record, with a valid tag and valid signatures: a reader without the key cannot see
/// it, and `decrypt` refuses it as malformed, writing nothing, without a panic.
#[test]
fn a_pad_length_beyond_the_record_is_refused_without_panicking() {
    let setup = Setup::new();
    let camera = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let camera_pub = setup.path("camera7.pub");
    let public = CameraPublic {
        ed25519: camera.verifying_key().to_bytes(),
    };
    fs::write(&camera_pub, public.to_text()).unwrap();
    let viewer_public =
        x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(*setup.viewer_secret()));

    for (name, declared_pad) in [("beyond", 1000u32), ("max", u32::MAX), ("exact", 156)] {
        let file = setup.path(&format!("{name}.cseg"));
        fs::write(
            &file,
            sealed_with_pad(&camera, viewer_public.as_bytes(), declared_pad),
        )
        .unwrap();
        let plain = setup.path(&format!("{name}.264"));
        let decrypt = camseal(&[
            "decrypt",
            "--home",
            s(&setup.viewer),
            "--camera",
            s(&camera_pub),
            "--out",
            s(&plain),
            s(&file),
        ]);
        if name == "exact" {
            // The control: the same segment with the right pad length decrypts.
            succeeded(&decrypt, "decrypt of a well-padded crafted segment");
            assert_eq!(fs::read(&plain).unwrap(), crafted_payload());
            continue;
        }
        let line = failed(&decrypt, 8, &format!("decrypt, pad {declared_pad}"));
        assert!(
            line.contains("malformed") && line.contains("padding"),
            "{line}"
        );
        assert!(!plain.exists(), "decrypt left output behind");
        // Without the key the camera's signatures are all there is, and they are valid.
        let verify = camseal(&["verify", "--camera", s(&camera_pub), s(&file)]);
        succeeded(&verify, "verify of a validly signed segment");
    }
}

/// What anyone holding the files sees of the record sizes.
struct OutsiderView {
    records: usize,
    /// Video records whose size is not a bucket plus the public framing.
    off_bucket: usize,
    /// Distinct video record sizes, less the framing (which depends on the record index).
    distinct: usize,
    bytes: u64,
}

/// Reads `inspect --json` of each segment, and checks the padding it reports.
fn outsider_view(segs: &[PathBuf], padding: &str) -> OutsiderView {
    let mut view = OutsiderView {
        records: 0,
        off_bucket: 0,
        distinct: 0,
        bytes: 0,
    };
    let mut sizes = std::collections::BTreeSet::new();
    for seg in segs {
        let out = camseal(&["inspect", "--json", s(seg)]);
        let (stdout, _) = succeeded(&out, "inspect --json");
        let v: Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(v["padding"], padding, "{}", seg.display());
        assert_eq!(v["ok"], true);
        view.bytes += v["bytes"].as_u64().unwrap();
        let seq = v["seq"].as_u64().unwrap();
        let records = v["records"]["sizes"].as_array().unwrap();
        assert_eq!(
            records.len() as u64,
            v["records"]["count"].as_u64().unwrap()
        );
        // The last record is the final one: its size is fixed, and it is not padded.
        for (i, size) in records[..records.len() - 1].iter().enumerate() {
            let size = size.as_u64().unwrap() as usize;
            let framing = FRAMING + sframe_header_len(seq, i as u64);
            let body = size.checked_sub(framing);
            if !body.is_some_and(is_bucket) {
                view.off_bucket += 1;
            }
            sizes.insert(size - sframe_header_len(seq, i as u64));
            view.records += 1;
        }
    }
    view.distinct = sizes.len();
    view
}

/// A bucket of FORMAT.md §3.1, by enumeration of the ladder `m·2^e` (m = 4..=7) from 256.
fn is_bucket(len: usize) -> bool {
    (6..40).any(|e| (4..8).any(|m| m << e == len))
}

/// Each video record's payload length, as the viewer finds it.
fn padded_payloads(bytes: &[u8], secrets: &[camseal::keys::RecipientSecret]) -> Vec<usize> {
    let layout = Layout::of(bytes);
    let mut opener = Opener::with_keys(&layout.header, secrets).unwrap();
    let mut lens = Vec::new();
    for range in &layout.records {
        let Ok(camseal::segment::Parsed::Complete(camseal::segment::Item::Record(r), _)) =
            camseal::segment::parse_item(&bytes[range.clone()])
        else {
            panic!("record does not parse");
        };
        let mut out = Vec::new();
        let opened = opener.open(&r, &mut out).unwrap();
        if opened.end.is_none() {
            lens.push(out.len());
        }
    }
    lens
}

fn crafted_payload() -> Vec<u8> {
    let mut v = vec![0x00, 0x00, 0x00, 0x01, 0x65, 0x88];
    v.extend((0..94u8).map(|i| i | 0x10));
    v
}

/// A padded segment for `recipient` with one video record (a 100-byte keyframe padded to
/// the 256-byte bucket) whose sealed pad length says `declared_pad` (156 is right), then
/// the final record, a checkpoint and the trailer, all validly sealed and signed.
fn sealed_with_pad(
    camera: &ed25519_dalek::SigningKey,
    recipient: &[u8; 32],
    declared_pad: u32,
) -> Vec<u8> {
    let keys = [RecipientKey {
        kem: HPKE_KEM_X25519,
        public_key: recipient,
    }];
    let params = SegmentParams {
        suite: SframeSuite::Aes128GcmSha256,
        codec: camseal::nal::Codec::H264,
        stream_id: 40,
        segment_seq: 0,
        start_pts: 0,
        wallclock_ms: 1_700_000_000_000,
        prev_header_hash: [0; 32],
        recipients: &keys,
        gaps: &[],
        padding: Padding::Buckets,
    };
    let seed = [0x5e; 32];
    let sealer = SegmentSealer::new(&params, camera, &Randomness::FixedForTests(seed)).unwrap();
    let (base_key, _) = fixed_test_randomness(seed, 1);
    let key = SframeKey::derive(params.suite, 0, &base_key).unwrap();
    let mut appender = RecordAppender::new(&sealer, camera, CheckpointPolicy::default());
    let mut out = sealer.header_bytes().to_vec();

    let payload = crafted_payload();
    let mut plaintext = payload.clone();
    plaintext.resize(256, 0);
    plaintext.extend_from_slice(&declared_pad.to_be_bytes());
    let flags = RecordFlags::video(true, false);
    let mut record = vec![0u8; 4];
    record.push(flags.bits());
    record.extend_from_slice(&0u64.to_be_bytes());
    key.seal_append(
        0,
        &record_metadata(sealer.header_hash(), 0, flags),
        &plaintext,
        &mut record,
    )
    .unwrap();
    let len = (record.len() - 4) as u32;
    record[..4].copy_from_slice(&len.to_be_bytes());
    append(&mut appender, &mut out, &record);

    let end = SegmentEnd {
        end_pts: 3000,
        reason: CloseReason::EndOfStream,
    };
    let mut last = Vec::new();
    sealer
        .seal_record(
            1,
            3000,
            RecordFlags::final_record(),
            &end.encode(),
            &mut last,
        )
        .unwrap();
    append(&mut appender, &mut out, &last);
    let (tail, _) = appender.finish(true).unwrap();
    out.extend_from_slice(&tail);
    out
}

fn append(appender: &mut RecordAppender, out: &mut Vec<u8>, record: &[u8]) {
    if let Some(checkpoint) = appender.append(record, &record_digest(record)).unwrap() {
        out.extend_from_slice(&checkpoint);
    }
    out.extend_from_slice(record);
}
