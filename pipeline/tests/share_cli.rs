//! `viewer share` and `decrypt --share` through the real binary (docs/PROTOCOL.md §11): a
//! third party with only a device key opens exactly the shared segments, sees who granted
//! them, and gets nothing more by adding a segment to the command line or a seq to the share.

mod cli;

use std::fs;
use std::path::{Path, PathBuf};

use camseal::keys::AccountPublic;
use camseal::share::Share;
use cli::{Setup, camseal, failed, fixture, s, succeeded};

#[test]
fn a_share_to_an_xwing_key_opens_exactly_its_segments_for_the_third_party() {
    a_share_opens_exactly_its_segments_for_the_third_party(false);
}

#[test]
fn a_share_to_a_classic_key_opens_exactly_its_segments_for_the_third_party() {
    a_share_opens_exactly_its_segments_for_the_third_party(true);
}

/// The lawyer's device key is X-Wing (the default) or, with `classic`, X25519: the share is
/// sealed to whichever it is.
fn a_share_opens_exactly_its_segments_for_the_third_party(classic: bool) {
    let setup = Setup::new();
    let out = setup.path("segments");
    let segs = setup.seal(
        &fixture("h264-baseline").source(),
        &out,
        &["--segment-seconds", "0.3"],
    );
    assert!(segs.len() >= 4, "{segs:?}");
    let lawyer = setup.path("lawyer");
    let mut init = vec![
        "viewer",
        "init",
        "--home",
        s(&lawyer),
        "--device-only",
        "--name",
        "lawyer",
    ];
    if classic {
        init.push("--classic");
    }
    succeeded(&camseal(&init), "viewer init --device-only");
    let lawyer_pub = lawyer.join("devices/lawyer.pub");
    let share = setup.path("clip.share");
    let (stdout, _) = succeeded(
        &camseal(&[
            "viewer",
            "share",
            "--home",
            s(&setup.viewer),
            "--to",
            s(&lawyer_pub),
            "--out",
            s(&share),
            s(&segs[1]),
            s(&segs[2]),
        ]),
        "viewer share",
    );
    assert!(stdout.contains("(1, 2)"), "{stdout}");
    let (kem, kem_name) = if classic {
        (0x0020, "x25519-hkdf-sha256")
    } else {
        (0x647a, "x-wing")
    };
    assert!(stdout.contains(kem_name), "{stdout}");
    let parsed = Share::parse_signed(&fs::read(&share).unwrap()).unwrap();
    assert_eq!(parsed.kem, kem);

    // Without the share the lawyer opens nothing: the camera never sealed to that key.
    let e = failed(
        &decrypt(
            &lawyer,
            &setup.path("x.264"),
            &[],
            &[&segs[1]],
            &["--camera", s(&setup.camera_pub), "--from-seq", "1"],
        ),
        5,
        "decrypt without the share",
    );
    assert!(e.contains("not a recipient"), "{e}");

    // With it: exactly segments 1 and 2, byte for byte what the account decrypts.
    let (_, err) = succeeded(
        &decrypt(
            &lawyer,
            &setup.path("clip.264"),
            &[&share],
            &[&segs[1], &segs[2]],
            &[],
        ),
        "decrypt --share",
    );
    let account =
        AccountPublic::from_text(&fs::read_to_string(setup.viewer.join("account.pub")).unwrap())
            .unwrap();
    assert!(
        err.contains(&format!("granted by account {}", account.id())),
        "{err}"
    );
    let (want, _) = setup.decrypt_ok(&[&segs[1], &segs[2]], &["--from-seq", "1"]);
    assert_eq!(fs::read(setup.path("clip.264")).unwrap(), want);

    // --allow-gaps composes with --share: a shared segment left out is an undeclared gap
    // (exit 6), and the others are still written, exactly as the account decrypts them.
    let wide = setup.path("wide.share");
    succeeded(
        &camseal(&[
            "viewer",
            "share",
            "--home",
            s(&setup.viewer),
            "--to",
            s(&lawyer_pub),
            "--out",
            s(&wide),
            s(&segs[1]),
            s(&segs[2]),
            s(&segs[3]),
        ]),
        "viewer share (1, 2, 3)",
    );
    let holey = setup.path("holey.264");
    let gapped = decrypt(
        &lawyer,
        &holey,
        &[&wide],
        &[&segs[1], &segs[3]],
        &["--allow-gaps"],
    );
    let e = failed(
        &gapped,
        6,
        "decrypt --share --allow-gaps with segment 2 left out",
    );
    assert!(e.contains("1 of 1 gaps are not declared"), "{e}");
    let stderr = String::from_utf8_lossy(&gapped.stderr);
    assert!(
        stderr.contains("GAP (NOT declared by the camera): segment 2 missing"),
        "{stderr}"
    );
    let (one, _) = setup.decrypt_ok(&[&segs[1]], &["--from-seq", "1"]);
    let (three, _) = setup.decrypt_ok(&[&segs[3]], &["--from-seq", "3"]);
    assert_eq!(fs::read(&holey).unwrap(), [one, three].concat());
    // Without a gap it is exit 0.
    succeeded(
        &decrypt(
            &lawyer,
            &holey,
            &[&wide],
            &[&segs[1], &segs[2], &segs[3]],
            &["--allow-gaps"],
        ),
        "decrypt --share --allow-gaps, nothing left out",
    );

    // A segment the share does not name fails, alone or next to shared ones, and nothing
    // is written.
    for inputs in [
        vec![&segs[3]],
        vec![&segs[1], &segs[2], &segs[3]],
        vec![&segs[0], &segs[1]],
    ] {
        let target = setup.path("more.264");
        let e = failed(
            &decrypt(&lawyer, &target, &[&share], &inputs, &[]),
            5,
            "decrypt --share with a segment not in it",
        );
        assert!(e.contains("is not in this share"), "{e}");
        assert!(!target.exists());
    }

    // A share edited to add seq 3 (a copy of seq 2's entry), or to rename seq 2 as 3, no
    // longer verifies.
    let bytes = fs::read(&share).unwrap();
    assert_eq!(
        parsed.segments.iter().map(|s| s.seq).collect::<Vec<_>>(),
        [1, 2]
    );
    let edited = setup.path("edited.share");
    for bad in [added_seq(&bytes, 3), renamed_seq(&bytes, 2, 3)] {
        fs::write(&edited, &bad).unwrap();
        let e = failed(
            &decrypt(
                &lawyer,
                &setup.path("edited.264"),
                &[&edited],
                &[&segs[3]],
                &[],
            ),
            1,
            "decrypt with an edited share",
        );
        assert!(e.contains("not a valid signed share"), "{e}");
    }

    // Someone else's home cannot use the lawyer's share.
    let other = setup.path("other");
    succeeded(
        &camseal(&["viewer", "init", "--home", s(&other), "--device-only"]),
        "viewer init --device-only (other)",
    );
    let e = failed(
        &decrypt(&other, &setup.path("o.264"), &[&share], &[&segs[1]], &[]),
        1,
        "decrypt someone else's share",
    );
    assert!(e.contains("not addressed to this key"), "{e}");
}

fn decrypt(
    home: &Path,
    out: &Path,
    share: &[&PathBuf],
    inputs: &[&PathBuf],
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec!["decrypt", "--home", s(home), "--out", s(out)];
    for sh in share {
        args.extend(["--share", s(sh)]);
    }
    args.extend_from_slice(extra);
    args.extend(inputs.iter().map(|p| s(p)));
    camseal(&args)
}

/// Offset of the entry count: magic, format, account, camera, stream, kem, key length and
/// the recipient key (32 bytes for X25519, 1216 for X-Wing).
fn count_at(bytes: &[u8]) -> usize {
    const KEY_LEN_AT: usize = 4 + 2 + 32 + 32 + 4 + 2;
    KEY_LEN_AT
        + 2
        + usize::from(u16::from_be_bytes([
            bytes[KEY_LEN_AT],
            bytes[KEY_LEN_AT + 1],
        ]))
}

/// The share with one more entry (a copy of the last, renamed `seq`), signature kept.
fn added_seq(bytes: &[u8], seq: u64) -> Vec<u8> {
    let count_pos = count_at(bytes);
    let (body, sig) = bytes.split_at(bytes.len() - 64);
    let count = u16::from_be_bytes([body[count_pos], body[count_pos + 1]]);
    let entries = &body[count_pos + 2..];
    let entry_len = entries.len() / usize::from(count);
    let mut last = entries[entries.len() - entry_len..].to_vec();
    last[..8].copy_from_slice(&seq.to_be_bytes());
    let mut out = body.to_vec();
    out[count_pos..count_pos + 2].copy_from_slice(&(count + 1).to_be_bytes());
    out.extend_from_slice(&last);
    out.extend_from_slice(sig);
    out
}

/// The share with the entry for `from` renamed `to`, signature kept.
fn renamed_seq(bytes: &[u8], from: u64, to: u64) -> Vec<u8> {
    let count_pos = count_at(bytes);
    let mut out = bytes.to_vec();
    let at = out[count_pos + 2..]
        .windows(8)
        .position(|w| w == from.to_be_bytes())
        .unwrap()
        + count_pos
        + 2;
    out[at..at + 8].copy_from_slice(&to.to_be_bytes());
    out
}
