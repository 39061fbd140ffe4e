//! Pinned cameras on the viewer, through the real binary: `viewer cameras add|list|remove`,
//! and `decrypt` accepting footage only from a pinned camera unless `--camera` names one.
//!
//! The attack this closes: a viewer's recipient list is public (the cloud relays it), so
//! anyone can enroll a camera of their own with it and seal footage to the viewer's key.
//! Such footage opens and its signature verifies, under the attacker's camera key; only the
//! viewer's own list of cameras can tell it apart.
//!
//! Exit codes (see `src/bin/camseal/error.rs`): 1 error, 3 tampered, 7 wrong camera.

mod cli;

use std::fs;
use std::path::Path;

use camseal::keys::CameraPublic;
use cli::{
    Setup, camseal, dir_names, failed, fixture, one_line_error, run_args, s, succeeded, texts,
};

const TAMPERED: i32 = 3;
const WRONG_CAMERA: i32 = 7;

#[test]
fn decrypt_accepts_only_pinned_cameras_unless_one_is_named() {
    let setup = Setup::new();
    let f = fixture("h264-baseline");
    let input = f.bytes();
    let own = setup.path("own");
    setup.seal(&f.source(), &own, &[]);

    // An attacker's camera, enrolled with the viewer's (public) recipient list: its footage
    // is validly sealed to the viewer and validly signed, by a camera the viewer never
    // pinned.
    let attacker = setup.path("attacker");
    succeeded(
        &camseal(&["camera", "init", "--home", s(&attacker)]),
        "camera init",
    );
    succeeded(
        &camseal(&["camera", "trust", "--home", s(&attacker), s(&setup.list)]),
        "camera trust",
    );
    let attacker_pub = attacker.join("camera.pub");
    let attacker_id = camera_id(&attacker_pub);
    let foreign = setup.path("foreign");
    let source = f.source();
    succeeded(
        &camseal(&run_args(&attacker, &source, &foreign)),
        "run with the attacker's camera",
    );
    // It really is sealed to the viewer and signed: it verifies under the attacker's key.
    succeeded(
        &camseal(&["verify", "--camera", s(&attacker_pub), s(&foreign)]),
        "verify the attacker's footage",
    );

    // (a) Not pinned: wrong camera, with a hint naming the command that pins it.
    let (line, hint) = decrypt_refused(&setup, &foreign, &[], "unpinned camera");
    assert!(line.contains("not pinned"), "{line}");
    assert!(line.contains(&attacker_id), "{line}");
    assert!(line.contains(s(&setup.viewer)), "{line}");
    let add = format!(
        "camseal viewer cameras add --home {} camera.pub",
        setup.viewer.display()
    );
    assert!(hint.contains(&add), "{hint}");
    assert!(hint.contains("--camera"), "{hint}");
    // The viewer's own camera is still accepted.
    let (plain, _) = setup.decrypt_ok(&[&own], &[]);
    assert!(plain == input, "own footage differs from the input");

    // (c) Named for the run, the camera is accepted without being pinned.
    let (plain, _) = setup.decrypt_ok(&[&foreign], &["--camera", s(&attacker_pub)]);
    assert!(plain == input, "footage checked against --camera differs");
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("out.264");
    let (stdout, _) = succeeded(
        &setup.decrypt(&out, &[&foreign], &["--camera", s(&attacker_pub)]),
        "decrypt --camera",
    );
    assert!(stdout.contains("given with --camera"), "{stdout}");
    // Naming the other camera still refuses footage it did not sign.
    let out = out_dir.path().join("other.264");
    let line = failed(
        &setup.decrypt(&out, &[&own], &["--camera", s(&attacker_pub)]),
        WRONG_CAMERA,
        "own footage checked against the attacker's key",
    );
    assert!(line.contains("wrong camera"), "{line}");
    assert!(!out.exists());

    // (b) Once pinned, the footage decrypts, and the output says which pin allowed it.
    succeeded(
        &camseal(&[
            "viewer",
            "cameras",
            "add",
            "--home",
            s(&setup.viewer),
            s(&attacker_pub),
            "--name",
            "garage",
        ]),
        "viewer cameras add",
    );
    let (plain, _) = setup.decrypt_ok(&[&foreign], &[]);
    assert!(
        plain == input,
        "pinned camera's footage differs from the input"
    );
    let out = out_dir.path().join("pinned.264");
    let (stdout, _) = succeeded(&setup.decrypt(&out, &[&foreign], &[]), "decrypt");
    assert!(
        stdout.contains(&format!("camera {attacker_id} (\"garage\"): pinned")),
        "{stdout}"
    );

    // Unpinned again: refused again. With no camera pinned at all, too.
    for which in ["garage", s(&setup.camera_pub)] {
        succeeded(
            &camseal(&[
                "viewer",
                "cameras",
                "remove",
                "--home",
                s(&setup.viewer),
                which,
            ]),
            "viewer cameras remove",
        );
    }
    let (line, hint) = decrypt_refused(&setup, &foreign, &[], "after remove");
    assert!(line.contains("no cameras are pinned"), "{line}");
    assert!(hint.contains(&add), "{hint}");
    let (line, _) = decrypt_refused(&setup, &own, &[], "own camera, nothing pinned");
    assert!(line.contains("no cameras are pinned"), "{line}");
    setup.decrypt_ok(&[&own], &["--camera", s(&setup.camera_pub)]);
}

#[test]
fn a_modified_camera_key_in_unpinned_footage_is_tampering() {
    // A header whose camera key was changed names a camera that is not pinned; but it was
    // not signed by that camera either, so it is tampering (3), not another camera (7).
    let setup = Setup::new();
    let f = fixture("h264-baseline");
    let dir = setup.path("segments");
    let segs = setup.seal(&f.source(), &dir, &[]);
    let mut bytes = fs::read(&segs[0]).unwrap();
    bytes[9 + 7] ^= 1; // inside the camera key (FORMAT.md section 2)
    let one = setup.path("one");
    fs::create_dir(&one).unwrap();
    fs::write(one.join(segs[0].file_name().unwrap()), bytes).unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = setup.decrypt(&out_dir.path().join("out.264"), &[&one], &[]);
    let line = failed(&out, TAMPERED, "camera key flipped");
    assert!(line.contains("tampered"), "{line}");
    assert!(dir_names(out_dir.path()).is_empty());
}

#[test]
fn cameras_add_list_and_remove() {
    let setup = Setup::new();
    let viewer = s(&setup.viewer);
    let own_id = camera_id(&setup.camera_pub);
    let second = setup.path("second");
    succeeded(
        &camseal(&["camera", "init", "--home", s(&second)]),
        "camera init",
    );
    let second_pub = second.join("camera.pub");
    let second_id = camera_id(&second_pub);
    let cameras = |args: &[&str]| {
        let mut all = vec!["viewer", "cameras"];
        all.extend_from_slice(args);
        camseal(&all)
    };
    let list = || {
        let (stdout, stderr) = succeeded(&cameras(&["list", "--home", viewer]), "list");
        assert_eq!(stderr, "", "list");
        stdout
    };
    let list_json = || {
        let (stdout, _) = succeeded(&cameras(&["list", "--home", viewer, "--json"]), "list");
        serde_json::from_str::<serde_json::Value>(&stdout).unwrap()
    };

    // Setup pinned its camera under the default name, its id.
    assert_eq!(list(), format!("{own_id}  {own_id}\n"));
    let (stdout, _) = succeeded(
        &cameras(&[
            "add",
            "--home",
            viewer,
            s(&second_pub),
            "--name",
            "back yard",
        ]),
        "add",
    );
    assert!(stdout.contains(&second_id), "{stdout}");
    assert_eq!(
        list(),
        format!("{own_id}  {own_id}\n{second_id}  back yard\n")
    );
    let public = |path: &Path| {
        let text = fs::read_to_string(path).unwrap();
        hex::encode(CameraPublic::from_text(&text).unwrap().ed25519)
    };
    assert_eq!(
        list_json(),
        serde_json::json!([
            {"camera_id": own_id, "name": own_id, "public": public(&setup.camera_pub)},
            {"camera_id": second_id, "name": "back yard", "public": public(&second_pub)},
        ])
    );
    let file = fs::read_to_string(setup.viewer.join("pinned-cameras")).unwrap();
    assert!(file.starts_with("camseal-pinned-cameras-v1\n"), "{file}");

    // Adding again is idempotent; with --name it renames, in place.
    let (stdout, _) = succeeded(
        &cameras(&["add", "--home", viewer, s(&second_pub)]),
        "again",
    );
    assert!(stdout.contains("already pinned"), "{stdout}");
    assert_eq!(
        fs::read_to_string(setup.viewer.join("pinned-cameras")).unwrap(),
        file
    );
    let (stdout, _) = succeeded(
        &cameras(&["add", "--home", viewer, s(&second_pub), "--name", "yard"]),
        "rename",
    );
    assert!(stdout.contains("renamed"), "{stdout}");
    assert_eq!(list(), format!("{own_id}  {own_id}\n{second_id}  yard\n"));

    // Refused: files that are not a camera key, names taken or unusable. Nothing changes.
    let account_pub = setup.viewer.join("account.pub");
    let camera_key = setup.camera.join("camera.key");
    let missing = setup.path("missing.pub");
    for path in [&account_pub, &camera_key, &missing, &setup.list] {
        let what = format!("add {}", path.display());
        let line = one_line_error(&cameras(&["add", "--home", viewer, s(path)]), &what);
        assert!(line.contains(s(path)), "{what}: {line}");
    }
    let line = one_line_error(
        &cameras(&["add", "--home", viewer, s(&account_pub)]),
        "add account.pub",
    );
    assert!(line.contains("not a camera public key"), "{line}");
    let line = one_line_error(
        &cameras(&[
            "add",
            "--home",
            viewer,
            s(&setup.camera_pub),
            "--name",
            "yard",
        ]),
        "add with a taken name",
    );
    assert!(line.contains("already used"), "{line}");
    for name in ["", "a\tb", second_id.as_str()] {
        let what = format!("add --name {name:?}");
        let args = [
            "add",
            "--home",
            viewer,
            s(&setup.camera_pub),
            "--name",
            name,
        ];
        let line = one_line_error(&cameras(&args), &what);
        assert!(line.contains("invalid camera name"), "{what}: {line}");
    }
    assert_eq!(list(), format!("{own_id}  {own_id}\n{second_id}  yard\n"));

    // A home without an account: told what to run, nothing created.
    let no_home = setup.path("no-viewer");
    for args in [
        vec!["add", "--home", s(&no_home), s(&second_pub)],
        vec!["list", "--home", s(&no_home)],
        vec!["remove", "--home", s(&no_home), "yard"],
    ] {
        let line = one_line_error(&cameras(&args), &format!("{args:?}"));
        assert!(line.contains("viewer init"), "{line}");
    }
    assert!(!no_home.exists());

    // Remove by id, by name, by camera.pub; an unknown one is an error (exit 1) with a hint.
    succeeded(&cameras(&["remove", "--home", viewer, &second_id]), "by id");
    assert_eq!(list(), format!("{own_id}  {own_id}\n"));
    for which in ["yard", second_id.as_str(), s(&second_pub), "nobody"] {
        let out = cameras(&["remove", "--home", viewer, which]);
        let line = failed(&out, 1, &format!("remove {which}"));
        assert!(line.contains("is pinned in"), "{line}");
        let (_, stderr) = texts(&out);
        assert!(stderr.contains("viewer cameras list"), "{stderr}");
    }
    succeeded(
        &cameras(&["add", "--home", viewer, s(&second_pub), "--name", "yard"]),
        "add again",
    );
    succeeded(&cameras(&["remove", "--home", viewer, "yard"]), "by name");
    succeeded(
        &cameras(&["remove", "--home", viewer, s(&setup.camera_pub)]),
        "by file",
    );
    assert_eq!(list_json(), serde_json::json!([]));
    let (stdout, stderr) = succeeded(&cameras(&["list", "--home", viewer]), "empty list");
    assert_eq!(stdout, "");
    assert!(stderr.contains("viewer cameras add"), "{stderr}");

    // A damaged pinned-cameras file is reported, never read as "nothing pinned".
    fs::write(setup.viewer.join("pinned-cameras"), "garbage\n").unwrap();
    let line = one_line_error(&cameras(&["list", "--home", viewer]), "damaged list");
    assert!(line.contains("pinned-cameras"), "{line}");
    let dir = setup.path("segments");
    setup.seal(&fixture("h264-baseline").source(), &dir, &[]);
    let out = setup.path("out.264");
    let line = one_line_error(&setup.decrypt(&out, &[&dir], &[]), "decrypt, damaged list");
    assert!(line.contains("pinned-cameras"), "{line}");
    assert!(!out.exists());
}

/// `decrypt` exits 7 with an error line and a hint, leaving no output. Returns both lines.
fn decrypt_refused(setup: &Setup, dir: &Path, extra: &[&str], what: &str) -> (String, String) {
    let out_dir = tempfile::tempdir().unwrap();
    let out = setup.decrypt(&out_dir.path().join("out.264"), &[dir], extra);
    let line = failed(&out, WRONG_CAMERA, what);
    let (_, stderr) = texts(&out);
    let hint = stderr
        .lines()
        .find(|l| l.starts_with("hint: "))
        .unwrap_or_else(|| panic!("{what}: no hint in {stderr}"))
        .to_owned();
    assert!(
        dir_names(out_dir.path()).is_empty(),
        "{what}: output left behind"
    );
    (line, hint)
}

/// The camera id of a `camera.pub` file.
fn camera_id(path: &Path) -> String {
    CameraPublic::from_text(&fs::read_to_string(path).unwrap())
        .unwrap()
        .id()
}
