//! Devices, revocation and the control channel through the real binary (docs/PROTOCOL.md
//! §10): a phone enrolled with its own key is revoked while `run` records, the new list
//! reaches the camera through `control/<camera_id>/recipients` on its sink, and the cloud
//! then tries to roll it back, to slip in another account's list, and to forge one.
//!
//! Nothing here waits for a time to pass as proof: the test waits (with a generous
//! deadline) for things it can count (segments in the sink, the camera's installed version,
//! refusals in its log), then checks what each segment opens for.

mod cli;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use camseal::control;
use camseal::keys::{AccountSecret, KEM_X25519_HKDF_SHA256, Recipient, RecipientList};
use cli::{Setup, camseal, failed, s, segments, succeeded};

#[test]
fn revocation_through_the_control_channel_while_recording() {
    let setup = Setup::new();
    let phone = setup.path("phone");
    let sink_dir = setup.path("sink");
    let sink = format!("dir:{}", s(&sink_dir));
    let camera_id = camera_id(&setup.camera);

    // A phone with only its own device key, enrolled by the account holder (list version 2).
    let (out, _) = succeeded(
        &camseal(&[
            "viewer",
            "init",
            "--home",
            s(&phone),
            "--device-only",
            "--name",
            "phone",
        ]),
        "viewer init --device-only",
    );
    assert!(out.contains("phone"), "{out}");
    assert!(!phone.join("account.key").exists());
    let phone_pub = phone.join("devices/phone.pub");
    let (out, _) = succeeded(
        &viewer(&[
            "enroll",
            "--home",
            s(&setup.viewer),
            "--name",
            "phone",
            s(&phone_pub),
        ]),
        "viewer enroll",
    );
    assert!(out.contains("version 2"), "{out}");
    let devices = devices_json(&setup.viewer);
    assert_eq!(devices.len(), 1, "{devices:?}");
    assert_eq!(devices[0]["name"], "phone");
    // A new device key is hybrid X-Wing, like the account key.
    assert_eq!(devices[0]["kem"], "xwing");
    assert_eq!(devices[0]["added_in_version"], 2);
    assert_eq!(devices[0]["key_id"].as_str().unwrap().len(), 16);

    // Version 2 reaches the camera through the channel before recording starts.
    succeeded(
        &viewer(&["publish", "--home", s(&setup.viewer), "--sink", &sink]),
        "viewer publish",
    );
    let object = control_path(&sink_dir, &camera_id);
    let v2_object = fs::read(&object).unwrap();
    succeeded(
        &camseal(&[
            "camera",
            "trust",
            "--home",
            s(&setup.camera),
            s(&setup.viewer.join("recipients.list")),
        ]),
        "camera trust (version 2)",
    );

    let log = setup.path("run.log");
    let mut run = start_run(&setup.camera, &sink, &log);
    wait_for(&mut run, &log, "two segments in the sink", || {
        segments(&sink_dir).len() >= 2
    });

    // Revoke the phone: version 3, published; the camera installs it while recording.
    let (out, _) = succeeded(
        &viewer(&["revoke", "--home", s(&setup.viewer), "phone"]),
        "viewer revoke",
    );
    assert!(out.contains("version 3"), "{out}");
    assert!(devices_json(&setup.viewer).is_empty());
    succeeded(
        &viewer(&["publish", "--home", s(&setup.viewer), "--sink", &sink]),
        "viewer publish (version 3)",
    );
    wait_for(&mut run, &log, "the camera to install version 3", || {
        installed_version(&setup.camera) == 3
    });
    // Segments sealed by now (uploaded or still in the spool): the list was installed no
    // later, so the segment open then, and the new list applies to the one after it.
    let applied_at = sealed(&setup.camera, &sink_dir);
    wait_for(&mut run, &log, "two more segments", || {
        segments(&sink_dir).len() >= applied_at + 2
    });

    // The cloud rolls back to version 2 (which still names the phone) ...
    fs::write(&object, &v2_object).unwrap();
    wait_for(&mut run, &log, "the rollback to be refused", || {
        refusals(&log) >= 1
    });
    // ... offers a newer list of another account, made for this camera ...
    let other = AccountSecret::from_seed([7; 32]);
    let foreign = RecipientList {
        version: 99,
        account: other.public().ed25519,
        recipients: vec![Recipient {
            kem: KEM_X25519_HKDF_SHA256,
            public_key: other.public().x25519.to_vec(),
            label: "account".into(),
        }],
    }
    .sign(&other)
    .unwrap();
    fs::write(
        &object,
        control::seal(&camera_id, &foreign, &other).unwrap(),
    )
    .unwrap();
    wait_for(&mut run, &log, "the foreign list to be refused", || {
        refusals(&log) >= 2
    });
    // ... and edits a valid version 4 object of the account to name the phone again.
    let forged = forged_object(&setup, &phone_pub, &camera_id);
    fs::write(&object, forged).unwrap();
    wait_for(&mut run, &log, "the forged list to be refused", || {
        refusals(&log) >= 3
    });
    // ... and moves a valid newer list of the account, made for another camera, to this one.
    let elsewhere = other_cameras_object(&setup, &phone_pub);
    fs::write(&object, elsewhere).unwrap();
    wait_for(
        &mut run,
        &log,
        "the other camera's list to be refused",
        || refusals(&log) >= 4,
    );
    let refused_at = segments(&sink_dir).len();
    wait_for(
        &mut run,
        &log,
        "two more segments after the refusals",
        || segments(&sink_dir).len() >= refused_at + 2,
    );

    let status = stop(&mut run);
    let log_text = fs::read_to_string(&log).unwrap();
    assert!(status.success(), "run failed:\n{log_text}");
    assert!(
        log_text.contains("not newer than the installed version 3"),
        "{log_text}"
    );
    assert!(log_text.contains("signed by account"), "{log_text}");
    assert!(
        log_text.contains("not a valid signed control object"),
        "{log_text}"
    );
    assert!(
        log_text.contains("made for camera 0123456789abcdef"),
        "{log_text}"
    );
    assert_eq!(installed_version(&setup.camera), 3);

    // The account opens everything; the phone opens a prefix of the stream (sealed before
    // version 3 applied) and nothing after it, including every segment sealed after the
    // refused lists.
    let segs = segments(&sink_dir);
    succeeded(
        &camseal(&[
            "decrypt",
            "--home",
            s(&setup.viewer),
            "--out",
            s(&setup.path("all.h264")),
            s(&sink_dir),
        ]),
        "decrypt as the account",
    );
    let opens: Vec<bool> = segs
        .iter()
        .map(|seg| phone_opens(&setup, &phone, seg))
        .collect();
    let first_closed = opens
        .iter()
        .position(|o| !o)
        .expect("the phone opened every segment");
    assert!(first_closed >= 2, "{opens:?}");
    assert!(opens[first_closed..].iter().all(|o| !o), "{opens:?}");
    // Exactly from the segment `run` said the list applies from (once: version 2 was
    // installed before `run` started). That is at most two after the segments counted as
    // sealed when version 3 was seen installed: the one being written then is not counted
    // yet, and the one open then keeps the old list.
    let applies_from: Vec<usize> = log_text
        .lines()
        .filter_map(|l| l.strip_prefix("control: the new recipient list applies from segment "))
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(applies_from.len(), 1, "{log_text}");
    assert_eq!(first_closed, applies_from[0], "{opens:?}\n{log_text}");
    assert!(
        first_closed <= applied_at + 2,
        "{opens:?}, {applied_at} sealed when version 3 was seen installed"
    );
    assert!(opens.len() >= refused_at + 2, "{opens:?}");
}

#[test]
fn restore_adds_the_new_device_on_a_new_version_and_publish_supersedes_on_request() {
    let setup = Setup::new();
    let sink_dir = setup.path("sink");
    let sink = format!("dir:{}", s(&sink_dir));
    let (init_out, _) = texts_of(&camseal(&[
        "viewer",
        "init",
        "--home",
        s(&setup.path("a2")),
    ]));
    let words = passphrase_from(&init_out);
    let pass = setup.path("pass");
    fs::write(&pass, &words).unwrap();
    let tablet = setup.path("tablet");
    let (out, _) = succeeded(
        &viewer(&[
            "restore",
            "--home",
            s(&tablet),
            "--backup",
            s(&setup.path("a2/account.backup")),
            "--passphrase-file",
            s(&pass),
            "--device-name",
            "tablet",
        ]),
        "viewer restore",
    );
    assert!(out.contains("\"tablet\""), "{out}");
    assert!(tablet.join("device.key").is_file());
    let list =
        RecipientList::parse_signed(&fs::read(tablet.join("recipients.list")).unwrap()).unwrap();
    assert_eq!(list.version, 1);
    assert!(list.recipients.iter().any(|r| r.label == "tablet"));
    let devices = devices_json(&tablet);
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0]["this_device"], true);
    assert_eq!(devices[0]["added_in_version"], 1);

    // The first account's home publishes version 1, then 2; a home whose list is older is
    // refused unless it supersedes, and then signs above what the sink holds.
    succeeded(
        &viewer(&["publish", "--home", s(&setup.viewer), "--sink", &sink]),
        "publish version 1",
    );
    let phone = setup.path("phone");
    succeeded(
        &camseal(&["viewer", "init", "--home", s(&phone), "--device-only"]),
        "viewer init --device-only",
    );
    let phone_pub = fs::read_dir(phone.join("devices"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "pub"))
        .unwrap();
    succeeded(
        &viewer(&[
            "enroll",
            "--home",
            s(&setup.viewer),
            "--name",
            "phone",
            s(&phone_pub),
        ]),
        "enroll",
    );
    let copy = setup.path("copy");
    cli::copy_dir(&setup.viewer, &copy);
    succeeded(
        &viewer(&["publish", "--home", s(&setup.viewer), "--sink", &sink]),
        "publish version 2",
    );
    succeeded(
        &viewer(&["revoke", "--home", s(&copy), "phone"]),
        "revoke in the copy (its version 3)",
    );
    succeeded(
        &viewer(&["publish", "--home", s(&setup.viewer), "--sink", &sink]),
        "publish version 2 again (no change)",
    );
    // An older list than the sink's: refused, the sink keeps version 3 once published.
    succeeded(
        &viewer(&["publish", "--home", s(&copy), "--sink", &sink]),
        "publish version 3",
    );
    let e = failed(
        &viewer(&["publish", "--home", s(&setup.viewer), "--sink", &sink]),
        1,
        "publish an older list",
    );
    assert!(e.contains("--supersede"), "{e}");
    let (out, _) = succeeded(
        &viewer(&[
            "publish",
            "--home",
            s(&setup.viewer),
            "--sink",
            &sink,
            "--supersede",
        ]),
        "publish --supersede",
    );
    assert!(out.contains("version 4"), "{out}");
    let o = control::open(&fs::read(control_path(&sink_dir, &camera_id(&setup.camera))).unwrap())
        .unwrap();
    assert_eq!(o.list.version, 4);
    // Names that would be a path, the account's label, or taken are refused, and sign
    // nothing; so is a key enrolled twice.
    for (name, why) in [
        ("../x", "use letters"),
        ("account", "the account key's label"),
        (".hidden", "use letters"),
    ] {
        let e = failed(
            &viewer(&[
                "enroll",
                "--home",
                s(&setup.viewer),
                "--name",
                name,
                s(&phone_pub),
            ]),
            1,
            "enroll under a bad name",
        );
        assert!(e.contains(why), "{name}: {e}");
    }
    let e = failed(
        &viewer(&[
            "enroll",
            "--home",
            s(&setup.viewer),
            "--name",
            "phone2",
            s(&phone_pub),
        ]),
        1,
        "enroll a key twice",
    );
    assert!(e.contains("listed already"), "{e}");
    // Revoking a device the home does not have is an error and signs nothing.
    let e = failed(
        &viewer(&["revoke", "--home", s(&setup.viewer), "nosuch"]),
        1,
        "revoke an unknown device",
    );
    assert!(e.contains("no device named"), "{e}");
    assert_eq!(
        fs::read_to_string(setup.viewer.join("recipients.version")).unwrap(),
        "4\n"
    );
}

fn viewer(args: &[&str]) -> std::process::Output {
    let mut all = vec!["viewer"];
    all.extend_from_slice(args);
    camseal(&all)
}

fn texts_of(out: &std::process::Output) -> (String, String) {
    succeeded(out, "command")
}

fn passphrase_from(stdout: &str) -> String {
    let lines: Vec<&str> = stdout
        .lines()
        .map(str::trim)
        .filter(|l| {
            l.split(' ').count() == 12 && l.chars().all(|c| c.is_ascii_lowercase() || c == ' ')
        })
        .collect();
    assert_eq!(lines.len(), 1, "no single passphrase line in:\n{stdout}");
    lines[0].to_owned()
}

fn devices_json(home: &Path) -> Vec<serde_json::Value> {
    let (out, _) = succeeded(
        &viewer(&["devices", "--home", s(home), "--json"]),
        "viewer devices --json",
    );
    serde_json::from_str::<serde_json::Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn camera_id(camera: &Path) -> String {
    let text = fs::read_to_string(camera.join("camera.pub")).unwrap();
    camseal::keys::CameraPublic::from_text(&text).unwrap().id()
}

fn control_path(sink: &Path, camera_id: &str) -> PathBuf {
    sink.join(control::object_key("", camera_id))
}

fn installed_version(camera: &Path) -> u64 {
    RecipientList::parse_signed(&fs::read(camera.join("recipients.list")).unwrap())
        .unwrap()
        .version
}

/// How many segments the camera sealed: those in the sink and those still in its spool.
fn sealed(camera: &Path, sink: &Path) -> usize {
    // The spool first: a segment leaves it only once it is in the sink.
    let mut names: Vec<_> = [camera.join("spool"), sink.to_owned()]
        .iter()
        .filter(|d| d.is_dir())
        .flat_map(|d| segments(d))
        .map(|p| p.file_name().unwrap().to_owned())
        .collect();
    names.sort();
    names.dedup();
    names.len()
}

fn refusals(log: &Path) -> usize {
    fs::read_to_string(log)
        .unwrap_or_default()
        .matches("REFUSED")
        .count()
}

/// A version 4 object signed by the account, with the phone's key written over the
/// account's recipient key afterwards: both signatures break.
fn forged_object(setup: &Setup, phone_pub: &Path, camera_id: &str) -> Vec<u8> {
    let account =
        AccountSecret::from_text(&fs::read_to_string(setup.viewer.join("account.key")).unwrap())
            .unwrap();
    let phone =
        camseal::keys::DevicePublic::from_text(&fs::read_to_string(phone_pub).unwrap()).unwrap();
    let list = RecipientList {
        version: 4,
        account: account.public().ed25519,
        recipients: vec![Recipient {
            kem: KEM_X25519_HKDF_SHA256,
            public_key: account.public().x25519.to_vec(),
            label: "account".into(),
        }],
    };
    let mut object = control::seal(camera_id, &list.sign(&account).unwrap(), &account).unwrap();
    let at = object
        .windows(32)
        .position(|w| w == account.public().x25519)
        .unwrap();
    object[at..at + 32].copy_from_slice(&phone.public_key[phone.public_key.len() - 32..]);
    object
}

/// A version 5 object signed by the account, naming the phone, for camera
/// 0123456789abcdef.
fn other_cameras_object(setup: &Setup, phone_pub: &Path) -> Vec<u8> {
    let account =
        AccountSecret::from_text(&fs::read_to_string(setup.viewer.join("account.key")).unwrap())
            .unwrap();
    let phone =
        camseal::keys::DevicePublic::from_text(&fs::read_to_string(phone_pub).unwrap()).unwrap();
    let list = RecipientList {
        version: 5,
        account: account.public().ed25519,
        recipients: vec![phone.recipient("phone")],
    };
    control::seal("0123456789abcdef", &list.sign(&account).unwrap(), &account).unwrap()
}

fn start_run(camera: &Path, sink: &str, log: &Path) -> Child {
    cli::command(&[
        "run",
        "--home",
        s(camera),
        "--source",
        "soft:160x120@15",
        "--realtime",
        "--duration",
        "300",
        "--segment-seconds",
        "0.4",
        "--sink",
        sink,
        "--control-interval",
        "0.2",
        "--upload-grace",
        "10",
    ])
    .stdout(Stdio::null())
    .stderr(fs::File::create(log).unwrap())
    .spawn()
    .unwrap()
}

/// Waits until `done` holds; fails (and stops `run`) if `run` ends first or after a
/// deadline far above what the step needs.
fn wait_for(run: &mut Child, log: &Path, what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        if let Some(status) = run.try_wait().unwrap() {
            panic!(
                "run ended ({status}) while waiting for {what}:\n{}",
                fs::read_to_string(log).unwrap_or_default()
            );
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = run.kill();
            panic!(
                "gave up waiting for {what}:\n{}",
                fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop(run: &mut Child) -> std::process::ExitStatus {
    let kill = Command::new("kill")
        .args(["-INT", &run.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    run.wait().unwrap()
}

/// Whether `decrypt` in the phone's home opens this one segment.
fn phone_opens(setup: &Setup, phone: &Path, segment: &Path) -> bool {
    let name = segment.file_stem().unwrap().to_str().unwrap();
    let seq = name.rsplit('-').next().unwrap().trim_start_matches('0');
    let seq = if seq.is_empty() { "0" } else { seq };
    let out = camseal(&[
        "decrypt",
        "--home",
        s(phone),
        "--camera",
        s(&setup.camera_pub),
        "--from-seq",
        seq,
        "--out",
        s(&setup.path("phone.h264")),
        s(segment),
    ]);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("not a recipient"),
            "the phone failed for another reason than not being a recipient: {err}"
        );
    }
    out.status.success()
}

/// `viewer publish` and `run`'s poller against the local S3 server (`scripts/s3-server.sh`,
/// started by `scripts/test.sh`): the object is stored under the sink's prefix as
/// `control/<camera_id>/recipients`, and the camera installs it. Skips without the server,
/// except under `CI=true`, where it fails.
#[test]
fn publish_and_poll_through_s3() {
    let Some(s3) = cli::TestS3::from_env("publish_and_poll_through_s3") else {
        return;
    };
    let with_keys = |args: &[&str]| s3.credentials(&mut cli::command(args)).output().unwrap();
    let url = s3.url(&cli::TestS3::fresh_prefix("control"));

    let setup = Setup::new();
    let phone = setup.path("phone");
    succeeded(
        &camseal(&[
            "viewer",
            "init",
            "--home",
            s(&phone),
            "--device-only",
            "--name",
            "phone",
        ]),
        "viewer init --device-only",
    );
    succeeded(
        &viewer(&[
            "enroll",
            "--home",
            s(&setup.viewer),
            "--name",
            "phone",
            s(&phone.join("devices/phone.pub")),
        ]),
        "viewer enroll",
    );
    succeeded(
        &with_keys(&[
            "viewer",
            "publish",
            "--home",
            s(&setup.viewer),
            "--sink",
            &url,
        ]),
        "viewer publish to S3",
    );
    let f = cli::fixture("h264-baseline");
    let out = with_keys(&[
        "run",
        "--home",
        s(&setup.camera),
        "--source",
        &f.source(),
        "--sink",
        &url,
        "--control-interval",
        "0.2",
        "--upload-grace",
        "30",
    ]);
    let (_, err) = succeeded(&out, "run with an S3 sink");
    assert!(err.contains("installed recipient list version 2"), "{err}");
    assert_eq!(installed_version(&setup.camera), 2);
    // The control object beside the segments does not confuse a listing.
    let fetched = setup.path("fetched");
    succeeded(
        &with_keys(&["fetch", "--sink", &url, "--out", s(&fetched)]),
        "fetch from the S3 sink",
    );
    assert!(!segments(&fetched).is_empty());
    succeeded(
        &camseal(&["verify", "--camera", s(&setup.camera_pub), s(&fetched)]),
        "verify what was fetched",
    );
    // Published again unchanged: nothing to do, and no refusal.
    succeeded(
        &with_keys(&[
            "viewer",
            "publish",
            "--home",
            s(&setup.viewer),
            "--sink",
            &url,
        ]),
        "viewer publish to S3 again",
    );
}

/// `device.key`: `camseal-device-key-v1` and one `x25519 <hex>` or `xwing <hex>` line;
/// anything else is refused, and the text round-trips.
#[test]
fn device_key_files() {
    use camseal::keys::{KemKind, RecipientSecret};
    for (kem, field) in [(KemKind::X25519, "x25519 "), (KemKind::XWing, "xwing ")] {
        let key = RecipientSecret::generate(kem).unwrap();
        let text = key.to_text();
        assert!(
            text.starts_with(&format!("camseal-device-key-v1\n{field}")),
            "format"
        );
        let back = RecipientSecret::from_text(&text).unwrap();
        assert_eq!(back.kem(), kem);
        assert_eq!(back.device_public(), key.device_public());
        let line = text.lines().nth(1).unwrap();
        let hex = &line[field.len()..];
        for bad in [
            format!("camseal-device-v1\n{line}\n"),
            format!("camseal-device-key-v1\nseed {hex}\n"),
            format!("camseal-device-key-v1\n{}\n", &line[..line.len() - 1]),
            format!("camseal-device-key-v1\n{line}\nextra\n"),
            format!("camseal-device-key-v1\r\n{line}\n"),
            "camseal-device-key-v1\n".to_owned(),
        ] {
            assert!(RecipientSecret::from_text(&bad).is_err(), "{bad:?}");
        }
    }
}

/// `viewer init --device-only --classic` and `viewer restore --classic` make a classic
/// X25519 device key; without `--classic` both make an X-Wing one.
#[test]
fn device_keys_follow_classic() {
    let setup = Setup::new();
    for (classic, kem) in [(false, "xwing"), (true, "x25519")] {
        let phone = setup.path(&format!("phone-{classic}"));
        let mut args = vec!["viewer", "init", "--home", s(&phone), "--device-only"];
        if classic {
            args.push("--classic");
        }
        succeeded(&camseal(&args), "viewer init --device-only");
        let devices = devices_json(&phone);
        assert_eq!(devices.len(), 1, "{devices:?}");
        assert_eq!(devices[0]["kem"], kem);
        assert_eq!(devices[0]["this_device"], true);
        let key = fs::read_to_string(phone.join("device.key")).unwrap();
        assert!(
            key.lines().nth(1).unwrap().starts_with(&format!("{kem} ")),
            "{classic}"
        );
    }
    let (init_out, _) = texts_of(&camseal(&[
        "viewer",
        "init",
        "--home",
        s(&setup.path("a2")),
    ]));
    let pass = setup.path("pass");
    fs::write(&pass, passphrase_from(&init_out)).unwrap();
    let backup = setup.path("a2/account.backup");
    for (classic, kem, account_kem) in [(false, "xwing", 0x647a), (true, "x25519", 0x0020)] {
        let tablet = setup.path(&format!("tablet-{classic}"));
        let mut args = vec![
            "viewer",
            "restore",
            "--home",
            s(&tablet),
            "--backup",
            s(&backup),
            "--passphrase-file",
            s(&pass),
        ];
        if classic {
            args.push("--classic");
        }
        succeeded(&camseal(&args), "viewer restore");
        let devices = devices_json(&tablet);
        assert_eq!(devices.len(), 1, "{devices:?}");
        assert_eq!(devices[0]["kem"], kem);
        // The list it signed names the account key and the device key of that kind.
        let list = RecipientList::parse_signed(&fs::read(tablet.join("recipients.list")).unwrap())
            .unwrap();
        let kems: Vec<u16> = list.recipients.iter().map(|r| r.kem).collect();
        assert_eq!(kems, [account_kem, account_kem], "{classic}");
    }
}
