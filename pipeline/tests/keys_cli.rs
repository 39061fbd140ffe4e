//! The key management commands, run as the real `camseal` binary: `viewer init`, `viewer
//! restore`, `viewer recipients`, `camera init`, `camera trust`.
//!
//! Each `viewer init` and `viewer restore` runs Argon2id at full cost (64 MiB, 3 passes), so
//! these tests use as few of them as they can.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use camseal::home::CameraHome;
use camseal::keys::{AccountPublic, CameraPublic, RecipientList};

fn camseal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_camseal"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn camseal_with_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_camseal"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Asserts success and returns standard output.
fn ok(out: Output) -> String {
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "failed: {stderr}\nstdout: {stdout}");
    assert_eq!(stderr, "", "unexpected standard error output");
    stdout
}

/// Asserts a one-line failure (no panic, non-zero exit) and returns that line.
fn fails(out: Output) -> String {
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success(), "succeeded: {stdout}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "not one line: {stderr:?}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    lines[0].to_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The 12-word line `viewer init` prints.
fn passphrase_from(stdout: &str) -> String {
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| {
            l.starts_with("    ")
                && l.split_whitespace().count() == 12
                && l.trim().chars().all(|c| c.is_ascii_lowercase() || c == ' ')
        })
        .collect();
    assert_eq!(lines.len(), 1, "no single passphrase line in:\n{stdout}");
    lines[0].trim().to_owned()
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn viewer_init_then_restore() {
    let t = tempfile::tempdir().unwrap();
    let v = t.path().join("viewer");
    let stdout = ok(camseal(&["viewer", "init", "--home", s(&v)]));
    let words = passphrase_from(&stdout);
    let public =
        AccountPublic::from_text(&fs::read_to_string(v.join("account.pub")).unwrap()).unwrap();
    assert!(stdout.contains(&public.id()), "{stdout}");
    for f in ["account.key", "account.pub", "account.backup"] {
        assert!(stdout.contains(s(&v.join(f))), "{f} not printed:\n{stdout}");
    }
    #[cfg(unix)]
    {
        assert_eq!(mode(&v), 0o700);
        assert_eq!(mode(&v.join("account.key")), 0o600);
        assert_eq!(mode(&v.join("account.backup")), 0o600);
    }

    // A second init refuses and leaves the account alone.
    let key_before = fs::read(v.join("account.key")).unwrap();
    let e = fails(camseal(&["viewer", "init", "--home", s(&v)]));
    assert!(e.contains("already exists"), "{e}");
    assert_eq!(fs::read(v.join("account.key")).unwrap(), key_before);

    // Restore from a passphrase file (words on separate lines, odd case) ...
    let pass_file = t.path().join("pass.txt");
    fs::write(&pass_file, words.to_uppercase().replace(' ', "\n")).unwrap();
    let backup = v.join("account.backup");
    let v2 = t.path().join("restored");
    let out = ok(camseal(&[
        "viewer",
        "restore",
        "--home",
        s(&v2),
        "--backup",
        s(&backup),
        "--passphrase-file",
        s(&pass_file),
    ]));
    assert!(out.contains(&public.id()), "{out}");
    assert_eq!(fs::read(v2.join("account.key")).unwrap(), key_before);
    assert_eq!(
        fs::read(v2.join("account.pub")).unwrap(),
        fs::read(v.join("account.pub")).unwrap()
    );
    assert_eq!(
        fs::read(v2.join("account.backup")).unwrap(),
        fs::read(&backup).unwrap()
    );
    #[cfg(unix)]
    assert_eq!(mode(&v2.join("account.key")), 0o600);

    // ... and from standard input.
    let v3 = t.path().join("restored-stdin");
    ok(camseal_with_stdin(
        &[
            "viewer",
            "restore",
            "--home",
            s(&v3),
            "--backup",
            s(&backup),
        ],
        &format!("{words}\n"),
    ));
    assert_eq!(fs::read(v3.join("account.key")).unwrap(), key_before);

    // Restoring over an account is refused before any passphrase is asked for.
    let e = fails(camseal(&[
        "viewer",
        "restore",
        "--home",
        s(&v2),
        "--backup",
        s(&backup),
    ]));
    assert!(e.contains("already exists"), "{e}");

    // A wrong (but well-formed) passphrase: one line, nothing written.
    let wrong = "abandon abandon abandon abandon abandon abandon abandon abandon abandon \
                 abandon abandon about";
    assert_ne!(words, wrong);
    let v4 = t.path().join("wrong");
    let e = fails(camseal_with_stdin(
        &[
            "viewer",
            "restore",
            "--home",
            s(&v4),
            "--backup",
            s(&backup),
        ],
        &format!("{wrong}\n"),
    ));
    assert!(e.contains("wrong recovery passphrase"), "{e}");
    assert!(!v4.exists());

    // A typo is caught by the word list or the checksum, before Argon2 runs.
    let mut typo: Vec<String> = words.split(' ').map(str::to_owned).collect();
    typo[6] = "qqqq".into();
    let e = fails(camseal_with_stdin(
        &[
            "viewer",
            "restore",
            "--home",
            s(&v4),
            "--backup",
            s(&backup),
        ],
        &typo.join(" "),
    ));
    assert!(e.contains("word 7"), "{e}");
    assert!(!e.contains("qqqq"), "{e}");
    let e = fails(camseal_with_stdin(
        &[
            "viewer",
            "restore",
            "--home",
            s(&v4),
            "--backup",
            s(&backup),
        ],
        &words.split(' ').take(11).collect::<Vec<_>>().join(" "),
    ));
    assert!(e.contains("11 words"), "{e}");
}

#[test]
fn recipients_and_trust() {
    let t = tempfile::tempdir().unwrap();
    let (va, vb, cam) = (t.path().join("a"), t.path().join("b"), t.path().join("cam"));
    ok(camseal(&["viewer", "init", "--home", s(&va)]));
    ok(camseal(&["viewer", "init", "--home", s(&vb)]));
    let out = ok(camseal(&["camera", "init", "--home", s(&cam)]));
    let camera =
        CameraPublic::from_text(&fs::read_to_string(cam.join("camera.pub")).unwrap()).unwrap();
    assert!(out.contains(&camera.id()), "{out}");
    #[cfg(unix)]
    assert_eq!(mode(&cam.join("camera.key")), 0o600);
    let e = fails(camseal(&["camera", "init", "--home", s(&cam)]));
    assert!(e.contains("already exists"), "{e}");

    let account_a =
        AccountPublic::from_text(&fs::read_to_string(va.join("account.pub")).unwrap()).unwrap();
    let list = |home: &Path, name: &str| {
        let path = t.path().join(name);
        let out = ok(camseal(&[
            "viewer",
            "recipients",
            "--home",
            s(home),
            "--out",
            s(&path),
        ]));
        (path, out)
    };
    let (l1, out1) = list(&va, "l1");
    let (l2, out2) = list(&va, "l2");
    assert!(out1.contains("version 1 (1 recipient"), "{out1}");
    assert!(out2.contains("version 2 (1 recipient"), "{out2}");
    let parsed = RecipientList::parse_signed(&fs::read(&l2).unwrap()).unwrap();
    assert_eq!(parsed.version, 2);
    assert_eq!(parsed.account, account_a.ed25519);
    assert_eq!(parsed.recipients.len(), 1);
    // `viewer init` made the account's recipient key hybrid: the list names its X-Wing key.
    assert_eq!(parsed.recipients[0].kem, camseal::keys::KEM_XWING);
    let account_secret = camseal::home::ViewerHome::open(&va)
        .unwrap()
        .account()
        .unwrap();
    assert_eq!(
        parsed.recipients[0].public_key,
        account_secret
            .recipient_secret(camseal::keys::KemKind::XWing)
            .public_key()
    );
    assert_eq!(parsed.recipients[0].label, "account");

    // First trust pins account a.
    let out = ok(camseal(&["camera", "trust", "--home", s(&cam), s(&l1)]));
    assert!(out.contains("version 1"), "{out}");
    assert!(out.contains(&account_a.id()), "{out}");
    assert!(out.contains("pinned now"), "{out}");
    let out = ok(camseal(&["camera", "trust", "--home", s(&cam), s(&l2)]));
    assert!(out.contains("version 2 (replacing version 1)"), "{out}");

    // Older, other-account and damaged lists are refused; the installed list again is a
    // harmless no-op, so re-running a setup script does not fail.
    let e = fails(camseal(&["camera", "trust", "--home", s(&cam), s(&l1)]));
    assert!(
        e.contains("version 1 is not newer than the installed version 2"),
        "{e}"
    );
    let out = ok(camseal(&["camera", "trust", "--home", s(&cam), s(&l2)]));
    assert!(out.contains("version 2 is already installed"), "{out}");

    let (lb1, _) = list(&vb, "lb1");
    let (_lb2, _) = list(&vb, "lb2");
    let (lb3, _) = list(&vb, "lb3");
    let e = fails(camseal(&["camera", "trust", "--home", s(&cam), s(&lb3)]));
    assert!(e.contains("signed by a different account"), "{e}");
    assert!(e.contains(&account_a.id()), "{e}");

    let mut bytes = fs::read(&lb1).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0x40;
    let corrupt = t.path().join("corrupt");
    fs::write(&corrupt, &bytes).unwrap();
    let e = fails(camseal(&[
        "camera",
        "trust",
        "--home",
        s(&cam),
        s(&corrupt),
    ]));
    assert!(e.contains("not a valid signed recipient list"), "{e}");
    let e = fails(camseal(&[
        "camera",
        "trust",
        "--home",
        s(&cam),
        s(&va.join("account.pub")),
    ]));
    assert!(e.contains("not a valid signed recipient list"), "{e}");

    // The installed list is still version 2 from account a.
    let installed = CameraHome::open(&cam)
        .unwrap()
        .trusted_recipients()
        .unwrap()
        .unwrap();
    assert_eq!(installed.version, 2);
    assert_eq!(installed.account, account_a.ed25519);

    // Device keys in DIR/devices become recipients; a newer list installs.
    fs::create_dir(va.join("devices")).unwrap();
    fs::write(
        va.join("devices/phone.pub"),
        camseal::keys::DevicePublic {
            kem: camseal::keys::KemKind::X25519,
            public_key: vec![7; 32],
        }
        .to_text(),
    )
    .unwrap();
    let (l3, out3) = list(&va, "l3");
    assert!(out3.contains("version 3 (2 recipients"), "{out3}");
    let out = ok(camseal(&["camera", "trust", "--home", s(&cam), s(&l3)]));
    assert!(out.contains("phone"), "{out}");
    let installed = CameraHome::open(&cam)
        .unwrap()
        .trusted_recipients()
        .unwrap()
        .unwrap();
    assert_eq!(installed.version, 3);
    assert_eq!(installed.recipients[1].public_key, [7; 32]);
}

#[test]
fn bad_homes_and_files_fail_in_one_line() {
    let t = tempfile::tempdir().unwrap();
    let missing = t.path().join("missing");

    let e = fails(camseal(&[
        "viewer",
        "recipients",
        "--home",
        s(&missing),
        "--out",
        s(&t.path().join("x")),
    ]));
    assert_eq!(
        e,
        format!(
            "error: no viewer account in {0}: run `camseal viewer init --home {0}`",
            missing.display()
        )
    );
    let e = fails(camseal(&["camera", "trust", "--home", s(&missing), "list"]));
    assert_eq!(
        e,
        format!(
            "error: no camera identity in {0}: run `camseal camera init --home {0}`",
            missing.display()
        )
    );

    // A home path that is a file.
    let file = t.path().join("file");
    fs::write(&file, "x").unwrap();
    let e = fails(camseal(&["camera", "init", "--home", s(&file)]));
    assert!(e.contains("not a directory"), "{e}");
    let e = fails(camseal(&["viewer", "init", "--home", s(&file.join("sub"))]));
    assert!(
        e.contains("Not a directory") || e.contains("not a directory"),
        "{e}"
    );

    // Missing and wrong input files.
    let e = fails(camseal(&[
        "viewer",
        "restore",
        "--home",
        s(&t.path().join("r")),
        "--backup",
        s(&missing),
    ]));
    assert!(e.contains("cannot read") && e.contains("missing"), "{e}");
    let e = fails(camseal(&[
        "viewer",
        "restore",
        "--home",
        s(&t.path().join("r")),
        "--backup",
        s(&file),
    ]));
    assert!(e.contains("not a camseal account backup"), "{e}");

    // A camera home with a damaged key file, and a directory given as a list.
    let cam = t.path().join("cam");
    ok(camseal(&["camera", "init", "--home", s(&cam)]));
    let e = fails(camseal(&[
        "camera",
        "trust",
        "--home",
        s(&cam),
        s(t.path()),
    ]));
    assert!(e.contains("cannot read"), "{e}");
    let e = fails(camseal(&[
        "camera",
        "trust",
        "--home",
        s(&cam),
        s(&missing),
    ]));
    assert!(e.contains("No such file"), "{e}");
    fs::write(cam.join("camera.key"), "camseal-camera-key-v1\nseed zz\n").unwrap();
    // The damaged key does not matter to `trust`, but `init` still refuses to replace it.
    let e = fails(camseal(&["camera", "init", "--home", s(&cam)]));
    assert!(e.contains("already exists"), "{e}");

    // A viewer home whose key file is damaged: the error names the file, not the key.
    let v = t.path().join("v");
    fs::create_dir(&v).unwrap();
    fs::write(v.join("account.key"), "camseal-account-key-v1\nseed 0011\n").unwrap();
    let e = fails(camseal(&[
        "viewer",
        "recipients",
        "--home",
        s(&v),
        "--out",
        s(&t.path().join("l")),
    ]));
    assert!(e.contains("account.key"), "{e}");
    assert!(!e.contains("0011"), "{e}");
    assert!(!t.path().join("l").exists());
}

#[cfg(unix)]
#[test]
fn unwritable_directories_fail_in_one_line() {
    use std::os::unix::fs::PermissionsExt;

    let t = tempfile::tempdir().unwrap();
    let ro = t.path().join("ro");
    fs::create_dir(&ro).unwrap();
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
    // root (and CAP_DAC_OVERRIDE) ignores permission bits: detect it rather than guess.
    let probe = ro.join("probe");
    if fs::write(&probe, "x").is_ok() {
        eprintln!(
            "note: skipping the unwritable-directory checks: this process can write to a \
             mode 0555 directory (running as root?)"
        );
        return;
    }
    let e = fails(camseal(&["camera", "init", "--home", s(&ro.join("cam"))]));
    assert!(e.contains("cannot create directory"), "{e}");
    assert!(e.contains("Permission denied"), "{e}");

    // A home that exists but cannot be written to.
    let e = fails(camseal(&["camera", "init", "--home", s(&ro)]));
    assert!(
        e.contains("cannot write") && e.contains("camera.pub"),
        "{e}"
    );
    assert!(e.contains("Permission denied"), "{e}");
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o755)).unwrap();
}
