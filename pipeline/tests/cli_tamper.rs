//! The tamper matrix on real segments, through the real binary: every modification gets its
//! own exit code and a message naming it, from `decrypt` and from the keyless `verify`, and a
//! failed `decrypt` leaves no output file behind.
//!
//! Exit codes (see `src/bin/camseal/error.rs`): 3 tampered, 4 truncated, 5 not a recipient,
//! 6 chain broken, 7 wrong camera, 8 malformed.

mod cli;

use std::cell::Cell;
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

use cli::{Layout, Setup, camseal, dir_names, failed, fixture, run_args, s, succeeded, texts};

const TAMPERED: i32 = 3;
const TRUNCATED: i32 = 4;
const NOT_A_RECIPIENT: i32 = 5;
const CHAIN_BROKEN: i32 = 6;
const WRONG_CAMERA: i32 = 7;
const MALFORMED: i32 = 8;

/// Header offsets of the fixed fields (FORMAT.md section 2), with an empty extension area.
const CAMERA_KEY: Range<usize> = 9..41;
const STREAM_ID: Range<usize> = 41..45;
const SEGMENT_SEQ: Range<usize> = 45..53;
const START_PTS: Range<usize> = 53..61;
const WALLCLOCK: Range<usize> = 61..69;
const PREV_HEADER_HASH: Range<usize> = 69..101;
const SUITE: Range<usize> = 5..7;
const FIRST_STANZA: usize = 105;

#[test]
fn header_bit_flips_are_tampering() {
    let b = Bench::new();
    let header_len = b.layouts[1].header_len;
    let mac = header_len - 96..header_len - 64;
    let signature = header_len - 64..header_len;
    assert_eq!(
        Layout::of(&b.bytes[1]).header.extensions.len(),
        0,
        "offsets assume no extensions"
    );
    let stanza = FIRST_STANZA;
    // (field, byte to flip). Fields that the chain logic reads (sequence number, previous
    // digest, stream) are flipped only in a segment given on its own, below.
    let fields = [
        ("start_pts", START_PTS.end - 1),
        ("wallclock", WALLCLOCK.end - 1),
        ("suite", SUITE.end - 1),
        ("stanza kem id", stanza + 1),
        ("stanza key id", stanza + 6 + 3),
        ("stanza enc", stanza + 16 + 10),
        ("stanza wrapped key", stanza + 16 + 32 + 2 + 20),
        ("header MAC", mac.start + 5),
        ("header MAC (last byte)", mac.end - 1),
        ("header signature (R)", signature.start + 3),
        ("header signature (S)", signature.start + 40),
        ("header signature (last byte)", signature.end - 1),
    ];
    for (field, at) in fields {
        let what = format!("header flip in {field}");
        let dir = b.case(|segs| flip(&mut segs[1].1, at));
        b.decrypt_fails(&[&dir], &[], TAMPERED, &["tampered", &b.names[1]], &what);
        b.verify_fails(&[&dir], TAMPERED, &["signature"], &what);
    }

    let more = [
        ("segment_seq", SEGMENT_SEQ.end - 1),
        ("stream_id", STREAM_ID.end - 1),
        ("prev_header_hash", PREV_HEADER_HASH.start + 3),
    ];
    for (field, at) in fields.into_iter().chain(more) {
        let what = format!("header flip in {field} (single segment)");
        let dir = b.case(|segs| {
            segs.retain(|(name, _)| *name == b.names[1]);
            flip(&mut segs[0].1, at);
        });
        b.decrypt_fails(&[&dir], &[], TAMPERED, &["tampered"], &what);
        // The header signature is checked before any field is believed.
        b.verify_fails(&[&dir], TAMPERED, &["header signature"], &what);
    }
}

#[test]
fn camera_key_bit_flip_is_tampering_not_another_camera() {
    // A segment whose camera key was changed does not verify under any key: that is
    // tampering. "Wrong camera" is for a segment that a different camera really signed.
    let b = Bench::new();
    let at = CAMERA_KEY.start + 7;
    for seg in [0, 1] {
        let what = format!("segment {seg}: flip in the camera key");
        let dir = b.case(|segs| flip(&mut segs[seg].1, at));
        b.decrypt_fails(&[&dir], &[], TAMPERED, &["tampered", &b.names[seg]], &what);
        b.verify_fails(&[&dir], TAMPERED, &["signature"], &what);
        let one = b.case(|segs| {
            segs.retain(|(name, _)| *name == b.names[seg]);
            flip(&mut segs[0].1, at);
        });
        b.decrypt_fails(&[&one], &[], TAMPERED, &["tampered"], &what);
        b.verify_fails(&[&one], TAMPERED, &["signature"], &what);
    }
}

#[test]
fn record_bit_flips_are_tampering() {
    let b = Bench::new();
    let last = b.bytes.len() - 1;
    for seg in [1, last] {
        let l = &b.layouts[seg];
        // A keyframe record, a later video record, and the final record.
        let final_index = l.records.len() - 1;
        let video = l
            .flags
            .iter()
            .rposition(|f| !f.keyframe() && !f.is_final())
            .unwrap();
        assert!(l.flags[0].keyframe());
        for index in [0, video, final_index] {
            let r = l.records[index].clone();
            let body = r.start + 4 + 9;
            let cases = [
                ("ciphertext", body + (r.end - body) / 2),
                ("tag", r.end - 1),
                ("tag (first byte)", r.end - 16),
                ("pts", r.start + 4 + 8),
                ("pts (high byte)", r.start + 5),
            ];
            for (part, at) in cases {
                let what = format!("segment {seg} record {index}: flip in its {part}");
                let dir = b.case(|segs| flip(&mut segs[seg].1, at));
                let needle = format!("record {index} is tampered");
                b.decrypt_fails(&[&dir], &[], TAMPERED, &[&needle, &b.names[seg]], &what);
                b.verify_fails(&[&dir], TAMPERED, &["records digest does not match"], &what);
            }
            // Flags: each bit that keeps the flags valid makes the record fail to open; a bit
            // that makes them invalid is refused as malformed.
            for bit in [0x01u8, 0x02, 0x04, 0x80] {
                let what = format!("segment {seg} record {index}: flag bit {bit:#04x} flipped");
                let dir = b.case(|segs| segs[seg].1[r.start + 4] ^= bit);
                let flags = l.flags[index].bits() ^ bit;
                let valid = flags & !0x07 == 0 && (flags & 0x04 == 0 || flags == 0x04);
                let now_final = flags & 0x04 != 0;
                // The final record's size is public (a 9-byte summary): a video record
                // flagged final is malformed before any key is used.
                let (code, needle, verify_needle) = if !valid {
                    (MALFORMED, "invalid flags".to_owned(), "invalid flags")
                } else if now_final && index != final_index {
                    (
                        MALFORMED,
                        "final record has the wrong size".to_owned(),
                        "final record has the wrong size",
                    )
                } else {
                    (
                        TAMPERED,
                        format!("record {index} is tampered"),
                        "records digest does not match",
                    )
                };
                b.decrypt_fails(&[&dir], &[], code, &[&needle], &what);
                b.verify_fails(&[&dir], code, &[verify_needle], &what);
            }
        }
    }
}

#[test]
fn trailer_bit_flips_are_tampering() {
    let b = Bench::new();
    let last = b.bytes.len() - 1;
    for seg in [1, last] {
        let t = b.layouts[seg].trailer.clone();
        let cases = [
            ("flags", t.start + 4, "signature is invalid", TAMPERED),
            (
                "record count",
                t.start + 12,
                "record count does not match",
                TAMPERED,
            ),
            (
                "record count (high byte)",
                t.start + 5,
                "record count does not match",
                TAMPERED,
            ),
            (
                "records digest",
                t.start + 13 + 7,
                "records digest does not match",
                TAMPERED,
            ),
            (
                "signature (R)",
                t.start + 45 + 3,
                "signature is invalid",
                TAMPERED,
            ),
            (
                "signature (S)",
                t.start + 45 + 40,
                "signature is invalid",
                TAMPERED,
            ),
            (
                "signature (last byte)",
                t.end - 1,
                "signature is invalid",
                TAMPERED,
            ),
            ("marker", t.start, "malformed", MALFORMED),
        ];
        for (part, at, needle, code) in cases {
            let what = format!("segment {seg}: flip in the trailer's {part}");
            let dir = b.case(|segs| flip(&mut segs[seg].1, at));
            b.decrypt_fails(&[&dir], &[], code, &[needle, &b.names[seg]], &what);
            b.verify_fails(&[&dir], code, &[needle], &what);
        }
        // Every checkpoint is signed and bound to the records before it.
        for (c, _) in &b.layouts[seg].checkpoints {
            let cases = [
                ("record count", c.start + 11, "record count does not match"),
                (
                    "records digest",
                    c.start + 12 + 5,
                    "records digest does not match",
                ),
                ("signature", c.start + 44 + 3, "signature is invalid"),
            ];
            for (part, at, needle) in cases {
                let what = format!("segment {seg}: flip in a checkpoint's {part} (at {at})");
                let dir = b.case(|segs| flip(&mut segs[seg].1, at));
                b.decrypt_fails(&[&dir], &[], TAMPERED, &[needle, &b.names[seg]], &what);
                b.verify_fails(&[&dir], TAMPERED, &[needle], &what);
            }
        }
        let what = format!("segment {seg}: a byte after the trailer");
        let dir = b.case(|segs| segs[seg].1.push(0));
        b.decrypt_fails(&[&dir], &[], TAMPERED, &["after its trailer"], &what);
        b.verify_fails(&[&dir], TAMPERED, &["after its trailer"], &what);
    }
}

#[test]
fn reordered_dropped_and_duplicated_records_are_tampering() {
    let b = Bench::new();
    let seg = 1;
    let l = b.layouts[seg].clone();
    let n = l.records.len();
    assert!(n >= 6);
    let rec = |bytes: &[u8], i: usize| bytes[l.records[i].clone()].to_vec();
    // Rebuilds segment `seg` from the header, the given record order, and the trailer.
    let rebuild = |order: &[usize]| -> Vec<u8> {
        let bytes = &b.bytes[seg];
        let mut out = bytes[..l.header_len].to_vec();
        for &i in order {
            out.extend(rec(bytes, i));
        }
        out.extend_from_slice(&bytes[l.trailer.clone()]);
        out
    };
    let all: Vec<usize> = (0..n).collect();
    let without = |i: usize| -> Vec<usize> { all.iter().copied().filter(|&j| j != i).collect() };
    let swapped = |i: usize, j: usize| -> Vec<usize> {
        let mut v = all.clone();
        v.swap(i, j);
        v
    };
    let duplicated = |i: usize| -> Vec<usize> {
        let mut v = all.clone();
        v.insert(i + 1, i);
        v
    };
    let reorder = "reordered, dropped or duplicated";
    let cases: Vec<(String, Vec<usize>, &str)> = vec![
        ("records 2 and 3 swapped".into(), swapped(2, 3), reorder),
        ("records 0 and 1 swapped".into(), swapped(0, 1), reorder),
        (
            "the last two video records swapped".into(),
            swapped(n - 3, n - 2),
            reorder,
        ),
        ("record 0 dropped".into(), without(0), reorder),
        ("record 2 dropped".into(), without(2), reorder),
        (
            "the last video record dropped".into(),
            without(n - 2),
            reorder,
        ),
        ("record 2 duplicated".into(), duplicated(2), reorder),
        ("record 0 duplicated".into(), duplicated(0), reorder),
        (
            "the final record dropped".into(),
            without(n - 1),
            "no final record",
        ),
        (
            "the final record duplicated".into(),
            duplicated(n - 1),
            "after the final record",
        ),
    ];
    for (what, order, needle) in cases {
        let dir = b.case(|segs| segs[seg].1 = rebuild(&order));
        b.decrypt_fails(&[&dir], &[], TAMPERED, &[needle, &b.names[seg]], &what);
        b.verify_fails(&[&dir], TAMPERED, &[needle], &what);
    }

    // A record moved in from another segment of the same stream, at the right position.
    let what = "record 2 replaced by record 2 of the previous segment";
    let dir = b.case(|segs| {
        let foreign = b.bytes[0][b.layouts[0].records[2].clone()].to_vec();
        let mut bytes = b.bytes[seg][..l.records[2].start].to_vec();
        bytes.extend(foreign);
        bytes.extend_from_slice(&b.bytes[seg][l.records[2].end..]);
        segs[seg].1 = bytes;
    });
    b.decrypt_fails(&[&dir], &[], TAMPERED, &["belongs to segment 0"], what);
    b.verify_fails(&[&dir], TAMPERED, &["belongs to segment 0"], what);
}

#[test]
fn truncation_is_reported_and_salvaged_only_in_the_last_segment() {
    let b = Bench::new();
    let last = b.bytes.len() - 1;
    let l = b.layouts[last].clone();
    let n = l.records.len();
    // What the segments before the last one decrypt to.
    let earlier: Vec<PathBuf> = b.pristine_paths()[..last].to_vec();
    let earlier: Vec<&Path> = earlier.iter().map(PathBuf::as_path).collect();
    let (prefix, _) = b.setup.decrypt_ok(&earlier, &[]);
    assert!(b.input.starts_with(&prefix) && prefix.len() < b.input.len());

    // (cut, records complete before it, records a checkpoint signed before it)
    let signed_before = |cut: usize| -> usize {
        l.checkpoints
            .iter()
            .filter(|(range, _)| range.end <= cut)
            .map(|(_, count)| *count as usize)
            .max()
            .unwrap_or(0)
    };
    let mut cuts: Vec<(usize, usize)> = vec![(l.header_len, 0)];
    for (i, r) in l.records.iter().enumerate() {
        cuts.push((r.start + 1, i));
        cuts.push((r.start + 4 + 9 + 1, i));
        cuts.push(((r.start + r.end) / 2, i));
        cuts.push((r.end - 1, i));
        cuts.push((r.end, i + 1));
    }
    for (c, _) in &l.checkpoints {
        let complete = l.records.iter().filter(|r| r.end <= c.start).count();
        cuts.push((c.start + 50, complete));
        cuts.push((c.end, complete));
    }
    cuts.push((l.trailer.start + 4, n));
    cuts.push((l.trailer.start + 60, n));
    cuts.push((l.trailer.end - 1, n));
    cuts.sort();
    cuts.dedup();
    let mut saw_dropped = false;
    let mut saw_clean_cut = false;
    for &(cut, complete) in &cuts {
        let what = format!("last segment cut at byte {cut} of {}", b.bytes[last].len());
        let dir = b.case(|segs| segs[last].1.truncate(cut));
        let line = b.decrypt_fails(
            &[&dir],
            &[],
            TRUNCATED,
            &["truncated", &b.names[last]],
            &what,
        );
        assert!(!line.contains("tampered"), "{what}: {line}");
        b.verify_fails(&[&dir], TRUNCATED, &["truncated"], &what);

        // Salvage: only what a checkpoint signed, with a loud warning. Whole records after
        // the last checkpoint are dropped, and then the exit status still says truncated.
        let signed = signed_before(cut);
        assert!(signed <= complete, "{what}");
        let out_dir = tempfile::tempdir().unwrap();
        let out_file = out_dir.path().join("out.264");
        let out = b.setup.decrypt(&out_file, &[&dir], &["--allow-incomplete"]);
        let (_, stderr) = texts(&out);
        if complete > signed {
            saw_dropped = true;
            failed(&out, TRUNCATED, &what);
            assert!(stderr.contains("DROPPED"), "{what}: {stderr}");
        } else {
            saw_clean_cut = true;
            succeeded(&out, &what);
        }
        let plain = fs::read(&out_file).unwrap();
        assert!(stderr.contains("WARNING"), "{what}: {stderr}");
        assert!(stderr.contains("INCOMPLETE"), "{what}: {stderr}");
        assert!(stderr.contains(&b.names[last]), "{what}: {stderr}");
        assert!(
            b.input.starts_with(&plain),
            "{what}: salvage is not a prefix"
        );
        let video: usize = l.plain_len[..signed.min(n - 1)].iter().sum();
        assert_eq!(plain.len(), prefix.len() + video, "{what}: salvaged length");
        if signed < n - 1 {
            assert!(plain.len() < b.input.len(), "{what}: not a strict prefix");
        }
    }
    assert!(saw_dropped && saw_clean_cut, "the cuts cover both cases");

    // Salvage still authenticates every record it releases.
    let r = l.records[2].clone();
    let what = "last segment: record 2 modified, cut after record 3";
    let dir = b.case(|segs| {
        flip(&mut segs[last].1, r.end - 20);
        segs[last].1.truncate(l.records[3].end);
    });
    b.decrypt_fails(
        &[&dir],
        &["--allow-incomplete"],
        TAMPERED,
        &["record 2 is tampered"],
        what,
    );

    // Cut inside the header: truncated too (nothing to salvage there).
    for cut in [0, 1, 40, l.header_len - 1] {
        let what = format!("last segment cut at byte {cut}, inside its header");
        let dir = b.case(|segs| segs[last].1.truncate(cut));
        b.decrypt_fails(&[&dir], &[], TRUNCATED, &["truncated"], &what);
        b.verify_fails(&[&dir], TRUNCATED, &["truncated"], &what);
    }

    // A middle segment cut short is not a crash at the end of the stream: no salvage.
    let m = &b.layouts[1];
    for cut in [
        m.records[3].end,
        (m.records[3].start + m.records[3].end) / 2,
    ] {
        let what = format!("middle segment cut at byte {cut}");
        let dir = b.case(|segs| segs[1].1.truncate(cut));
        for extra in [&[][..], &["--allow-incomplete"][..]] {
            b.decrypt_fails(
                &[&dir],
                extra,
                TRUNCATED,
                &["truncated", &b.names[1]],
                &what,
            );
        }
        b.verify_fails(&[&dir], TRUNCATED, &["truncated"], &what);
    }
}

#[test]
fn truncation_inside_the_trailer_says_so() {
    let b = Bench::new();
    let last = b.bytes.len() - 1;
    let t = b.layouts[last].trailer.clone();
    for cut in [t.start + 4, t.start + 60, t.end - 1] {
        let what = format!("last segment cut at byte {cut}, inside its trailer");
        let dir = b.case(|segs| segs[last].1.truncate(cut));
        let line = b.decrypt_fails(&[&dir], &[], TRUNCATED, &["truncated"], &what);
        assert!(line.contains("trailer"), "{what}: {line}");
        assert!(!line.contains("inside a record"), "{what}: {line}");
    }
}

#[test]
fn missing_or_replaced_segments_break_the_chain() {
    let b = Bench::new();
    let n = b.bytes.len();
    for gone in 1..n - 1 {
        let what = format!("segment {gone} removed");
        let dir = b.case(|segs| {
            segs.remove(gone);
        });
        let missing = format!("segment {gone} is missing");
        b.decrypt_fails(&[&dir], &[], CHAIN_BROKEN, &[&missing], &what);
        b.verify_fails(&[&dir], CHAIN_BROKEN, &[&missing], &what);
        // Given as files, in any order, the hole is still found.
        let files: Vec<PathBuf> = b.segments_in(&dir).into_iter().rev().collect();
        let files: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
        b.decrypt_fails(&files, &[], CHAIN_BROKEN, &[&missing], &what);
        b.verify_fails(&files, CHAIN_BROKEN, &[&missing], &what);
    }

    // The same camera key, a second run that started from the same chain state: its
    // segments have the same sequence numbers but do not link to ours.
    for replaced in 0..n {
        let what = format!("segment {replaced} replaced by the twin run's");
        let dir = b.case(|segs| segs[replaced].1 = b.twin[replaced].clone());
        for out in [b.decrypt_raw(&[&dir], &[]), b.verify_raw(&[&dir])] {
            let code = out.status.code();
            assert!(
                code == Some(CHAIN_BROKEN) || code == Some(TAMPERED),
                "{what}: exit {code:?}\n{:?}",
                texts(&out)
            );
            let (stdout, stderr) = texts(&out);
            let all = format!("{stdout}{stderr}");
            assert!(
                all.contains("chain is broken") || all.contains("tampered"),
                "{what}: {all}"
            );
        }
        // No output either way.
        b.decrypt_fails_any(&[&dir], &what);
    }
    // The twin's segments on their own are a valid chain (so the above is about linking).
    let twin = b.case(|segs| {
        for (i, s) in segs.iter_mut().enumerate() {
            s.1 = b.twin[i].clone();
        }
    });
    succeeded(&b.verify_raw(&[&twin]), "verify twin");
    b.setup.decrypt_ok(&[&twin], &[]);
}

#[test]
fn wrong_viewer_and_wrong_camera() {
    let b = Bench::new();
    let dir = b.case(|_| {});
    // Control: the right viewer and camera.
    let (plain, _) = b
        .setup
        .decrypt_ok(&[&dir], &["--camera", s(&b.setup.camera_pub)]);
    assert!(plain == b.input);

    // A viewer whose key is not on the camera's list (it pins the camera, so that what
    // fails is opening the segment, not trusting its camera).
    let stranger = b.setup.path("stranger");
    succeeded(
        &camseal(&["viewer", "init", "--home", s(&stranger)]),
        "viewer init",
    );
    cli::pin_camera(&stranger, &b.setup.camera_pub);
    let out_dir = tempfile::tempdir().unwrap();
    let out = b.decrypt_as(&stranger, &out_dir.path().join("x.264"), &[&dir], &[]);
    let line = failed(&out, NOT_A_RECIPIENT, "stranger decrypts");
    assert!(line.contains("not a recipient"), "{line}");
    assert!(dir_names(out_dir.path()).is_empty(), "output left behind");

    // A failed decrypt leaves an existing file of the requested name alone.
    let existing = out_dir.path().join("existing.264");
    fs::write(&existing, b"older output").unwrap();
    let out = b.decrypt_as(&stranger, &existing, &[&dir], &[]);
    failed(
        &out,
        NOT_A_RECIPIENT,
        "stranger decrypts over an existing file",
    );
    assert_eq!(fs::read(&existing).unwrap(), b"older output");
    assert_eq!(dir_names(out_dir.path()), vec!["existing.264".to_owned()]);

    // Another camera: not the one that signed.
    let other = b.setup.path("other-camera");
    succeeded(
        &camseal(&["camera", "init", "--home", s(&other)]),
        "camera init",
    );
    let other_pub = other.join("camera.pub");
    let out = camseal(&["verify", "--camera", s(&other_pub), s(&dir)]);
    let (stdout, _) = texts(&out);
    failed(&out, WRONG_CAMERA, "verify with another camera");
    assert!(stdout.contains("wrong camera") || texts(&out).1.contains("wrong camera"));
    b.decrypt_fails(
        &[&dir],
        &["--camera", s(&other_pub)],
        WRONG_CAMERA,
        &["wrong camera"],
        "decrypt with another camera",
    );

    // A segment from that other camera slipped into our stream.
    succeeded(
        &camseal(&["camera", "trust", "--home", s(&other), s(&b.setup.list)]),
        "camera trust",
    );
    let foreign = b.setup.path("foreign");
    let source = fixture("h264-baseline").source();
    succeeded(
        &camseal(&run_args(&other, &source, &foreign)),
        "run with the other camera",
    );
    let foreign_segs = cli::segments(&foreign);
    let mixed = b.case(|_| {});
    fs::copy(&foreign_segs[0], mixed.join("zz-foreign.cseg")).unwrap();
    b.decrypt_fails(
        &[&mixed],
        &[],
        WRONG_CAMERA,
        &["wrong camera"],
        "foreign segment",
    );
    b.decrypt_fails(
        &[&mixed],
        &["--camera", s(&b.setup.camera_pub)],
        WRONG_CAMERA,
        &["wrong camera"],
        "foreign segment, camera given",
    );
    b.verify_fails(
        &[&mixed],
        WRONG_CAMERA,
        &["wrong camera"],
        "foreign segment",
    );
}

/// Pristine segments of one fixture, and a way to make tampered copies of them.
struct Bench {
    setup: Setup,
    input: Vec<u8>,
    names: Vec<String>,
    bytes: Vec<Vec<u8>>,
    layouts: Vec<Layout>,
    /// The same stream sealed again by the same camera from the same chain state.
    twin: Vec<Vec<u8>>,
    pristine: PathBuf,
    cases: Cell<usize>,
}

impl Bench {
    fn new() -> Bench {
        let setup = Setup::new();
        let f = fixture("h264-high-bframes-slices");
        // A copy of the camera home taken before any run: same key, same chain state.
        let twin_home = setup.path("camera-twin");
        cli::copy_dir(&setup.camera, &twin_home);
        let pristine = setup.path("pristine");
        let extra = ["--segment-seconds", "0.9"];
        let segs = setup.seal(&f.source(), &pristine, &extra);
        assert!(segs.len() >= 3, "need 3 segments, got {}", segs.len());
        let twin_dir = setup.path("twin");
        let mut args = vec!["run", "--home", s(&twin_home), "--source"];
        let source = f.source();
        args.extend([source.as_str(), "--out", s(&twin_dir)]);
        args.extend(extra);
        succeeded(&camseal(&args), "twin run");
        let twin: Vec<Vec<u8>> = cli::segments(&twin_dir)
            .iter()
            .map(|p| fs::read(p).unwrap())
            .collect();
        assert_eq!(twin.len(), segs.len());
        let bytes: Vec<Vec<u8>> = segs.iter().map(|p| fs::read(p).unwrap()).collect();
        for (a, b) in bytes.iter().zip(&twin) {
            assert_ne!(a, b, "fresh keys make every run differ");
        }
        let layouts = bytes.iter().map(|b| Layout::of(b)).collect();
        let names = segs
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
            .collect();
        let b = Bench {
            input: f.bytes(),
            setup,
            names,
            bytes,
            layouts,
            twin,
            pristine,
            cases: Cell::new(0),
        };
        // The untouched segments decrypt and verify (so each failure below is the change's).
        let (plain, _) = b.setup.decrypt_ok(&[&b.pristine], &[]);
        assert!(plain == b.input);
        succeeded(&b.setup.verify(&[&b.pristine]), "verify pristine");
        b
    }

    fn pristine_paths(&self) -> Vec<PathBuf> {
        self.names.iter().map(|n| self.pristine.join(n)).collect()
    }

    /// A new directory holding the segments after `mutate` (names and bytes, in order).
    fn case(&self, mutate: impl FnOnce(&mut Vec<(String, Vec<u8>)>)) -> PathBuf {
        let mut segs: Vec<(String, Vec<u8>)> = self
            .names
            .iter()
            .cloned()
            .zip(self.bytes.iter().cloned())
            .collect();
        mutate(&mut segs);
        let n = self.cases.get();
        self.cases.set(n + 1);
        let dir = self.setup.path(&format!("case-{n}"));
        fs::create_dir(&dir).unwrap();
        for (name, bytes) in segs {
            fs::write(dir.join(name), bytes).unwrap();
        }
        dir
    }

    fn segments_in(&self, dir: &Path) -> Vec<PathBuf> {
        cli::segments(dir)
    }

    fn decrypt_as(
        &self,
        viewer: &Path,
        out: &Path,
        inputs: &[&Path],
        extra: &[&str],
    ) -> std::process::Output {
        let mut args = vec!["decrypt", "--home", s(viewer), "--out", s(out)];
        args.extend_from_slice(extra);
        args.extend(inputs.iter().map(|p| s(p)));
        camseal(&args)
    }

    fn decrypt_raw(&self, inputs: &[&Path], extra: &[&str]) -> std::process::Output {
        let out_dir = tempfile::tempdir().unwrap();
        let out = self
            .setup
            .decrypt(&out_dir.path().join("out.264"), inputs, extra);
        assert!(
            !out.status.success() || out_dir.path().join("out.264").exists(),
            "decrypt succeeded without output"
        );
        out
    }

    fn verify_raw(&self, inputs: &[&Path]) -> std::process::Output {
        self.setup.verify(inputs)
    }

    /// `decrypt` fails with `code`, its error line names every needle, and it leaves nothing
    /// in the output directory. Returns the error line.
    fn decrypt_fails(
        &self,
        inputs: &[&Path],
        extra: &[&str],
        code: i32,
        needles: &[&str],
        what: &str,
    ) -> String {
        let out_dir = tempfile::tempdir().unwrap();
        let out = self
            .setup
            .decrypt(&out_dir.path().join("out.264"), inputs, extra);
        let line = failed(&out, code, &format!("decrypt, {what}"));
        for needle in needles {
            assert!(
                line.contains(needle),
                "decrypt, {what}: {needle:?} not in {line:?}"
            );
        }
        assert!(
            dir_names(out_dir.path()).is_empty(),
            "decrypt, {what}: left {:?} behind",
            dir_names(out_dir.path())
        );
        line
    }

    /// `decrypt` fails (with any code) and leaves nothing in the output directory.
    fn decrypt_fails_any(&self, inputs: &[&Path], what: &str) {
        let out_dir = tempfile::tempdir().unwrap();
        let out = self
            .setup
            .decrypt(&out_dir.path().join("out.264"), inputs, &[]);
        assert!(!out.status.success(), "decrypt, {what}: succeeded");
        assert!(
            dir_names(out_dir.path()).is_empty(),
            "decrypt, {what}: output left behind"
        );
    }

    /// `verify` fails with `code` and its report names every needle.
    fn verify_fails(&self, inputs: &[&Path], code: i32, needles: &[&str], what: &str) {
        let out = self.setup.verify(inputs);
        failed(&out, code, &format!("verify, {what}"));
        let (stdout, stderr) = texts(&out);
        let report = format!("{stdout}{stderr}");
        for needle in needles {
            assert!(
                report.contains(needle),
                "verify, {what}: {needle:?} not in\n{report}"
            );
        }
        assert!(
            !stdout.contains("chain: OK") || code != CHAIN_BROKEN,
            "{what}: {stdout}"
        );
    }
}

fn flip(bytes: &mut [u8], at: usize) {
    bytes[at] ^= 0x01;
}
