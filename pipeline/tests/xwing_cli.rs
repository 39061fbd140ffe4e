//! Post-quantum (X-Wing: ML-KEM-768 + X25519) recipients through the real binary: a viewer
//! made by plain `viewer init` is hybrid and decrypts what `run` seals; a `--classic` viewer
//! and a hybrid one on one list both decrypt; `inspect --json` shows each stanza's KEM; a
//! tampered X-Wing stanza fails cleanly; `viewer restore` keeps the same choice.

mod cli;

use std::fs;
use std::path::{Path, PathBuf};

use camseal::home::{CameraHome, ViewerHome};
use camseal::keys::{AccountPublic, DevicePublic, KemKind, RecipientList, RecipientSecret};
use camseal::segment::read::{Opener, SegmentReader};
use camseal::segment::{Header, Parsed, SegmentError, header_message};
use cli::{Setup, camseal, failed, fixture, pin_camera, s, succeeded};
use ed25519_dalek::Signer;
use serde_json::Value;

/// `inspect --json` of each file: the `recipients` array of each.
fn inspected_recipients(paths: &[PathBuf]) -> Vec<Vec<Value>> {
    let mut args = vec!["inspect", "--json"];
    args.extend(paths.iter().map(|p| s(p)));
    let out = camseal(&args);
    let (stdout, _) = succeeded(&out, "inspect --json");
    stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["recipients"].as_array().unwrap().clone()
        })
        .collect()
}

fn kem_file(home: &Path) -> String {
    fs::read_to_string(home.join("account.kem")).unwrap()
}

fn header_of(bytes: &[u8]) -> (Header, usize) {
    match Header::parse(bytes).unwrap() {
        Parsed::Complete(h, len) => (h, len),
        Parsed::Needed(_) => panic!("incomplete header"),
    }
}

#[test]
fn a_hybrid_viewer_decrypts_footage_from_run_and_inspect_shows_x_wing() {
    let setup = Setup::new();
    assert_eq!(
        kem_file(&setup.viewer),
        "camseal-account-kem-v1\nkem x-wing\n"
    );
    let list = RecipientList::parse_signed(&fs::read(&setup.list).unwrap()).unwrap();
    assert_eq!(list.recipients.len(), 1);
    assert_eq!(list.recipients[0].kem, 0x647a);
    assert_eq!(list.recipients[0].public_key.len(), 1216);

    let f = fixture("h264-baseline");
    let out = setup.path("sealed");
    let segs = setup.seal(&f.source(), &out, &[]);
    for (path, recipients) in segs.iter().zip(inspected_recipients(&segs)) {
        assert_eq!(recipients.len(), 1, "{}", path.display());
        let r = &recipients[0];
        assert_eq!(r["kem"], 0x647a, "{}", path.display());
        assert_eq!(r["kem_kind"], "x-wing");
        assert_eq!(r["kem_name"], "X-Wing (ML-KEM-768 + X25519)");
        assert_eq!(r["enc_len"], 1120);
    }
    let (plain, _) = setup.decrypt_ok(&[&out], &[]);
    assert!(
        plain == f.bytes(),
        "decrypted footage differs from the input"
    );

    // Nothing is sealed to the account's classic key any more: a quantum attacker who
    // breaks X25519 alone opens nothing.
    let classic = setup.viewer_secret();
    let bytes = fs::read(&segs[0]).unwrap();
    let reader = SegmentReader::new(&bytes[..]).unwrap();
    assert!(matches!(
        Opener::new(reader.header(), &classic).map(|_| ()),
        Err(SegmentError::NotARecipient)
    ));
}

#[test]
fn a_classic_and_a_hybrid_viewer_on_one_list_both_decrypt() {
    let setup = Setup::new();
    // A second viewer, classic.
    let classic = setup.path("classic-viewer");
    let (stdout, _) = succeeded(
        &camseal(&["viewer", "init", "--classic", "--home", s(&classic)]),
        "viewer init --classic",
    );
    assert!(stdout.contains("classic X25519"), "{stdout}");
    assert_eq!(
        kem_file(&classic),
        "camseal-account-kem-v1\nkem x25519-hkdf-sha256\n"
    );
    let classic_pub =
        AccountPublic::from_text(&fs::read_to_string(classic.join("account.pub")).unwrap())
            .unwrap();
    // And a hybrid device with its own key, listed next to it.
    let tablet = RecipientSecret::new(KemKind::XWing, [0x5c; 32]);

    // The hybrid viewer lists both devices; the camera installs the new list.
    let devices = setup.viewer.join("devices");
    fs::create_dir_all(&devices).unwrap();
    let phone = DevicePublic {
        kem: KemKind::X25519,
        public_key: classic_pub.x25519.to_vec(),
    };
    fs::write(devices.join("phone.pub"), phone.to_text()).unwrap();
    fs::write(devices.join("tablet.pub"), tablet.device_public().to_text()).unwrap();
    let list = setup.path("list-2");
    let (stdout, _) = succeeded(
        &camseal(&[
            "viewer",
            "recipients",
            "--home",
            s(&setup.viewer),
            "--out",
            s(&list),
        ]),
        "viewer recipients",
    );
    assert!(
        stdout.contains("x-wing") && stdout.contains("x25519"),
        "{stdout}"
    );
    succeeded(
        &camseal(&["camera", "trust", "--home", s(&setup.camera), s(&list)]),
        "camera trust",
    );

    let f = fixture("h264-baseline");
    let out = setup.path("sealed");
    let segs = setup.seal(&f.source(), &out, &[]);
    for recipients in inspected_recipients(&segs) {
        let kems: Vec<&str> = recipients
            .iter()
            .map(|r| r["kem_kind"].as_str().unwrap())
            .collect();
        assert_eq!(kems, ["x-wing", "x25519-hkdf-sha256", "x-wing"]);
    }

    // The hybrid viewer and the classic one each open their own stanza.
    let (plain, _) = setup.decrypt_ok(&[&out], &[]);
    assert!(plain == f.bytes(), "hybrid viewer: footage differs");
    pin_camera(&classic, &setup.camera_pub);
    let classic_out = setup.path("classic.264");
    succeeded(
        &camseal(&[
            "decrypt",
            "--home",
            s(&classic),
            "--out",
            s(&classic_out),
            s(&out),
        ]),
        "decrypt as the classic viewer",
    );
    assert!(
        fs::read(&classic_out).unwrap() == f.bytes(),
        "classic viewer: footage differs"
    );

    // The hybrid device opens its stanza with its own key (through the library: no home
    // holds it).
    let bytes = fs::read(&segs[0]).unwrap();
    let reader = SegmentReader::new(&bytes[..]).unwrap();
    Opener::with_keys(reader.header(), std::slice::from_ref(&tablet)).unwrap();
}

#[test]
fn a_tampered_x_wing_stanza_fails_cleanly() {
    let setup = Setup::new();
    let f = fixture("h264-baseline");
    let out = setup.path("sealed");
    let segs = setup.seal(&f.source(), &out, &[]);
    let bytes = fs::read(&segs[0]).unwrap();
    let (header, len) = header_of(&bytes);
    assert_eq!(header.stanzas[0].kem, 0x647a);
    let camera = CameraHome::open(&setup.camera)
        .unwrap()
        .camera()
        .unwrap()
        .signing_key();

    let decrypt = |name: &str, header: &Header| -> String {
        let dir = setup.path(name);
        fs::create_dir(&dir).unwrap();
        let file = dir.join(segs[0].file_name().unwrap());
        fs::write(
            &file,
            [header.encode().unwrap(), bytes[len..].to_vec()].concat(),
        )
        .unwrap();
        // inspect reads it without panicking, whatever it makes of it.
        let inspected = camseal(&["inspect", "--json", s(&file)]);
        cli::assert_no_panic(&String::from_utf8_lossy(&inspected.stderr));
        let plain = setup.path(&format!("{name}.264"));
        let e = failed(
            &camseal(&[
                "decrypt",
                "--home",
                s(&setup.viewer),
                "--out",
                s(&plain),
                s(&file),
            ]),
            3,
            name,
        );
        assert!(!plain.exists(), "{name}: plaintext written");
        e
    };

    // A changed byte of the X-Wing ciphertext: the camera's signature no longer verifies.
    let mut flipped = header.clone();
    flipped.stanzas[0].enc[600] ^= 1;
    let e = decrypt("flipped", &flipped);
    assert!(e.contains("tamper") || e.contains("signature"), "{e}");

    // The same, and worse (a ciphertext of the wrong length, a cut wrapped key), signed
    // again with the camera's own key: only the stanza check is left to catch it.
    type Tweak = fn(&mut camseal::segment::Stanza);
    let tweaks: [(&str, Tweak); 4] = [
        ("re-signed-flip", |s| s.enc[600] ^= 1),
        ("re-signed-short", |s| s.enc.truncate(1119)),
        ("re-signed-x25519-size", |s| s.enc.truncate(32)),
        ("re-signed-wrapped", |s| s.wrapped_key.truncate(16)),
    ];
    for (name, tweak) in tweaks {
        let mut h = header.clone();
        tweak(&mut h.stanzas[0]);
        h.signature = camera.sign(&header_message(&h.hash())).to_bytes();
        let e = decrypt(name, &h);
        assert!(e.contains("tamper"), "{name}: {e}");
    }
}

#[test]
fn viewer_restore_is_hybrid_unless_classic() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("v");
    let (stdout, _) = succeeded(
        &camseal(&["viewer", "init", "--home", s(&home)]),
        "viewer init",
    );
    assert!(stdout.contains("X-Wing"), "{stdout}");
    let words: String = stdout
        .lines()
        .find(|l| l.starts_with("    ") && l.split_whitespace().count() == 12)
        .unwrap()
        .trim()
        .to_owned();
    let words_file = dir.path().join("words");
    fs::write(&words_file, &words).unwrap();
    let backup = home.join("account.backup");

    for (name, extra, kem) in [
        ("hybrid", &[][..], 0x647a),
        ("classic", &["--classic"][..], 0x0020),
    ] {
        let restored = dir.path().join(name);
        let mut args = vec![
            "viewer",
            "restore",
            "--home",
            s(&restored),
            "--backup",
            s(&backup),
            "--passphrase-file",
            s(&words_file),
        ];
        args.extend_from_slice(extra);
        succeeded(&camseal(&args), &format!("viewer restore ({name})"));
        let list = dir.path().join(format!("{name}.list"));
        succeeded(
            &camseal(&[
                "viewer",
                "recipients",
                "--home",
                s(&restored),
                "--out",
                s(&list),
            ]),
            "viewer recipients",
        );
        let parsed = RecipientList::parse_signed(&fs::read(&list).unwrap()).unwrap();
        assert_eq!(parsed.recipients[0].kem, kem, "{name}");
        // Either way it is the same account: the same keys as the original home.
        let account = ViewerHome::open(&restored).unwrap().account().unwrap();
        let original = ViewerHome::open(&home).unwrap().account().unwrap();
        assert_eq!(account.public(), original.public());
    }
}

#[test]
fn a_home_from_before_x_wing_keeps_sealing_to_x25519_and_decrypts() {
    let dir = tempfile::tempdir().unwrap();
    let viewer = dir.path().join("viewer");
    let camera = dir.path().join("camera");
    let list = dir.path().join("list");
    succeeded(
        &camseal(&["viewer", "init", "--home", s(&viewer)]),
        "viewer init",
    );
    // A home made before X-Wing has no account.kem.
    fs::remove_file(viewer.join("account.kem")).unwrap();
    succeeded(
        &camseal(&[
            "viewer",
            "recipients",
            "--home",
            s(&viewer),
            "--out",
            s(&list),
        ]),
        "viewer recipients",
    );
    let parsed = RecipientList::parse_signed(&fs::read(&list).unwrap()).unwrap();
    let account =
        AccountPublic::from_text(&fs::read_to_string(viewer.join("account.pub")).unwrap()).unwrap();
    assert_eq!(parsed.recipients[0].kem, 0x0020);
    assert_eq!(parsed.recipients[0].public_key, account.x25519);
    succeeded(
        &camseal(&["camera", "init", "--home", s(&camera)]),
        "camera init",
    );
    succeeded(
        &camseal(&["camera", "trust", "--home", s(&camera), s(&list)]),
        "camera trust",
    );
    pin_camera(&viewer, &camera.join("camera.pub"));
    let f = fixture("h264-baseline");
    let out = dir.path().join("sealed");
    succeeded(&camseal(&cli::run_args(&camera, &f.source(), &out)), "run");
    let segs = cli::segments(&out);
    for recipients in inspected_recipients(&segs) {
        assert_eq!(recipients[0]["kem_kind"], "x25519-hkdf-sha256");
    }
    let plain = dir.path().join("out.264");
    succeeded(
        &camseal(&["decrypt", "--home", s(&viewer), "--out", s(&plain), s(&out)]),
        "decrypt",
    );
    assert!(fs::read(&plain).unwrap() == f.bytes(), "footage differs");
}
