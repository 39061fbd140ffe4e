//! Pairing over loopback through the real binary: `camera setup` and `viewer pair`
//! (docs/PROTOCOL.md §9).
//!
//! The attacks: someone on the setup network who does not know the code guesses it (five
//! failed attempts end setup), or sits in the middle and either relays the bytes or answers
//! each side with SPAKE2 messages of its own. Neither may pair, nor learn the recipient list
//! or the camera key.

mod cli;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use camseal::keys::{AccountPublic, AccountSecret, CameraPublic, RecipientList};
use camseal::pairing::{
    ExpectCameraShare, ExpectViewerHello, ExpectViewerList, SetupCode, ViewerStart, frame,
    frame_len,
};
use cli::{camseal, command, fixture, one_line_error, s, segments, succeeded, texts};

#[test]
fn pairing_then_run_seals_for_the_viewer_and_decrypt_needs_no_camera_flag() {
    let dir = tempfile::tempdir().unwrap();
    let viewer = dir.path().join("viewer");
    let camera = dir.path().join("camera");
    viewer_init(&viewer);

    let setup = CameraSetup::start(&camera);
    // A wrong code first: it fails, and the camera keeps waiting for the right one.
    let wrong = pair(&viewer, &setup.addr, &other_code(&setup.code));
    let line = one_line_error(&wrong, "pair with a wrong code");
    assert!(line.contains("setup code does not match"), "{line}");
    let (stdout, _) = succeeded(&pair(&viewer, &setup.addr, &setup.code), "viewer pair");
    let camera_pub = read_camera_pub(&camera);
    assert!(stdout.contains(&camera_pub.id()), "{stdout}");
    let (out, err) = setup.finish();
    assert!(out.status.success(), "camera setup failed: {err}");
    assert!(err.contains("1 of 5 failed attempts"), "{err}");

    // The camera installed the viewer's list, which names the viewer's account key.
    let list =
        RecipientList::parse_signed(&fs::read(camera.join("recipients.list")).unwrap()).unwrap();
    let account = read_account_pub(&viewer);
    assert_eq!(list.account, account.ed25519);
    // `viewer init` made the account's recipient key hybrid: the list names its X-Wing key.
    let xwing_public = camseal::home::ViewerHome::open(&viewer)
        .unwrap()
        .account()
        .unwrap()
        .recipient_secret(camseal::keys::KemKind::XWing)
        .public_key();
    assert!(
        list.recipients
            .iter()
            .any(|r| r.kem == camseal::keys::KEM_XWING && r.public_key == xwing_public)
    );
    // The viewer pinned the camera.
    let pinned = fs::read_to_string(viewer.join("pinned-cameras")).unwrap();
    assert!(
        pinned.contains(&hex::encode(camera_pub.ed25519)),
        "{pinned}"
    );

    // run seals for the paired viewer; decrypt opens it without --camera.
    let f = fixture("h264-baseline");
    let segs_dir = dir.path().join("segments");
    succeeded(
        &camseal(&[
            "run",
            "--home",
            s(&camera),
            "--source",
            &f.source(),
            "--out",
            s(&segs_dir),
        ]),
        "run",
    );
    assert!(!segments(&segs_dir).is_empty());
    let plain = dir.path().join("out.264");
    succeeded(
        &camseal(&[
            "decrypt",
            "--home",
            s(&viewer),
            "--out",
            s(&plain),
            s(&segs_dir),
        ]),
        "decrypt without --camera",
    );
    assert!(
        fs::read(&plain).unwrap() == f.bytes(),
        "decrypted footage differs"
    );
}

#[test]
fn wrong_codes_fail_and_the_fifth_failure_ends_setup() {
    let dir = tempfile::tempdir().unwrap();
    let viewer = dir.path().join("viewer");
    let camera = dir.path().join("camera");
    viewer_init(&viewer);
    let setup = CameraSetup::start(&camera);
    let (addr, code) = (setup.addr.clone(), setup.code.clone());
    let wrong = other_code(&setup.code);
    for i in 1..=5 {
        // Each attempt reaches the key confirmation (the camera is still in setup), and fails
        // there.
        let out = pair(&viewer, &setup.addr, &wrong);
        let line = one_line_error(&out, &format!("wrong code, attempt {i}"));
        assert!(
            line.contains("setup code does not match"),
            "attempt {i}: {line}"
        );
    }
    // A watchdog, not a timing assertion: setup must end by itself after the fifth failure.
    let (out, err) = setup.finish_within(Duration::from_secs(60));
    assert!(!out.status.success(), "setup survived 5 failures");
    assert!(err.contains("5 of 5 failed attempts"), "{err}");
    assert!(err.contains("new setup code"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // Setup is over: even the right code cannot pair now.
    let late = pair(&viewer, &addr, &code);
    let line = one_line_error(&late, "pair after setup ended");
    assert!(line.contains("cannot connect"), "{line}");
    assert!(!camera.join("recipients.list").exists());
    assert!(!camera.join("pinned-account").exists());
    assert!(!viewer.join("pinned-cameras").exists());
}

#[test]
fn a_camera_paired_to_one_account_refuses_another_even_with_the_right_code() {
    let dir = tempfile::tempdir().unwrap();
    let (owner, other) = (dir.path().join("owner"), dir.path().join("other"));
    let camera = dir.path().join("camera");
    viewer_init(&owner);
    viewer_init(&other);
    let setup = CameraSetup::start(&camera);
    succeeded(&pair(&owner, &setup.addr, &setup.code), "owner pairs");
    assert!(setup.finish().0.status.success());
    let pin = fs::read(camera.join("pinned-account")).unwrap();
    let list = fs::read(camera.join("recipients.list")).unwrap();

    // Setup again, and a viewer of another account who knows the new code: the camera
    // refuses its list over the authenticated channel, and says why.
    let setup = CameraSetup::start(&camera);
    let out = pair(&other, &setup.addr, &setup.code);
    let line = one_line_error(&out, "another account pairs");
    assert!(line.contains("refused"), "{line}");
    assert!(line.contains("different account"), "{line}");
    let (out, err) = setup.finish();
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("different account"), "{err}");
    assert_eq!(fs::read(camera.join("pinned-account")).unwrap(), pin);
    assert_eq!(fs::read(camera.join("recipients.list")).unwrap(), list);
    assert!(!other.join("pinned-cameras").exists());
    // The owner, with a newer list, can pair again.
    let setup = CameraSetup::start(&camera);
    succeeded(&pair(&owner, &setup.addr, &setup.code), "owner pairs again");
    assert!(setup.finish().0.status.success());
    let again =
        RecipientList::parse_signed(&fs::read(camera.join("recipients.list")).unwrap()).unwrap();
    assert_eq!(again.version, 2);
}

#[test]
fn malformed_and_stalled_connections_end_the_attempt_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let viewer = dir.path().join("viewer");
    let camera = dir.path().join("camera");
    viewer_init(&viewer);
    let setup = CameraSetup::start_with(&camera, &["--timeout", "2"]);
    // Garbage, an oversized length, a frame cut short, and a peer that says nothing until
    // the camera's time-out: each ends only its own attempt.
    for bytes in [
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        vec![0xff, 0xff, 0xff, 0xff],
        vec![0, 0, 0, 38, b'C', b'S'],
        vec![],
    ] {
        let mut c = TcpStream::connect(&setup.addr).unwrap();
        c.write_all(&bytes).unwrap();
        // Wait for the camera to end the attempt (it closes the connection).
        let mut sink = Vec::new();
        let _ = c.read_to_end(&mut sink);
        assert!(sink.is_empty(), "the camera answered garbage with {sink:?}");
    }
    succeeded(
        &pair(&viewer, &setup.addr, &setup.code),
        "pair after garbage",
    );
    let (out, err) = setup.finish();
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // None of them could test a guess, so none counted.
    assert!(!err.contains("1 of 5"), "{err}");
}

#[test]
fn a_forwarding_relay_learns_neither_the_list_nor_the_camera_key() {
    let dir = tempfile::tempdir().unwrap();
    let viewer = dir.path().join("viewer");
    let camera = dir.path().join("camera");
    viewer_init(&viewer);
    let setup = CameraSetup::start(&camera);
    let relay = Relay::forwarding(&setup.addr);
    succeeded(
        &pair(&viewer, &relay.addr, &setup.code),
        "pair through a relay",
    );
    let (out, err) = setup.finish();
    assert!(out.status.success(), "{err}");
    let seen = relay.finish();
    assert!(!seen.is_empty());
    let camera_pub = read_camera_pub(&camera);
    let list = fs::read(camera.join("recipients.list")).unwrap();
    let account = read_account_pub(&viewer);
    assert_secret_from(&seen, &camera_pub, &list, &account);
}

#[test]
fn a_relay_answering_with_its_own_spake2_messages_cannot_pair_or_learn_anything() {
    let dir = tempfile::tempdir().unwrap();
    let viewer = dir.path().join("viewer");
    let camera = dir.path().join("camera");
    viewer_init(&viewer);
    let setup = CameraSetup::start(&camera);
    let guess = other_code(&setup.code);
    let relay = Relay::substituting(&setup.addr, &guess);
    let out = pair(&viewer, &relay.addr, &setup.code);
    let line = one_line_error(&out, "pair through a substituting relay");
    assert!(line.contains("setup code does not match"), "{line}");
    let seen = relay.finish();
    // The camera saw one failed attempt (the relay's guess) and is still in setup: the real
    // viewer, connecting directly, pairs.
    succeeded(&pair(&viewer, &setup.addr, &setup.code), "pair directly");
    let (out, err) = setup.finish();
    assert!(out.status.success(), "{err}");
    assert!(err.contains("1 of 5 failed attempts"), "{err}");
    let camera_pub = read_camera_pub(&camera);
    let list = fs::read(camera.join("recipients.list")).unwrap();
    let account = read_account_pub(&viewer);
    assert_secret_from(&seen, &camera_pub, &list, &account);
    // The relay's own list was never installed: the installed one is the viewer's.
    assert_eq!(
        RecipientList::parse_signed(&list).unwrap().account,
        account.ed25519
    );
}

/// Nothing the relay saw holds the camera key, the signed list or the account's keys.
fn assert_secret_from(seen: &[u8], camera: &CameraPublic, list: &[u8], account: &AccountPublic) {
    let contains = |needle: &[u8]| seen.windows(needle.len()).any(|w| w == needle);
    assert!(!contains(&camera.ed25519), "the relay saw the camera key");
    assert!(
        !contains(camera.id().as_bytes()),
        "the relay saw the camera id"
    );
    assert!(
        !contains(&account.x25519),
        "the relay saw the account's X25519 key"
    );
    assert!(
        !contains(&account.ed25519),
        "the relay saw the account's Ed25519 key"
    );
    assert!(!contains(&list[..64]), "the relay saw the recipient list");
    // Nor any recipient key (an X-Wing key: any 32 bytes of it).
    for r in RecipientList::parse_signed(list).unwrap().recipients {
        for part in r.public_key.chunks(32) {
            assert!(
                !contains(part),
                "the relay saw recipient {:?}'s key",
                r.label
            );
        }
    }
}

/// A `camera setup` process, with the address it listens on and the code it printed.
struct CameraSetup {
    child: Option<Child>,
    addr: String,
    code: String,
    stdout: Option<JoinHandle<String>>,
}

impl CameraSetup {
    fn start(home: &Path) -> CameraSetup {
        CameraSetup::start_with(home, &[])
    }

    fn start_with(home: &Path, extra: &[&str]) -> CameraSetup {
        let mut args = vec![
            "camera",
            "setup",
            "--home",
            s(home),
            "--listen",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        let mut child = command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap());
        let (mut addr, mut code) = (None, None);
        let mut seen = String::new();
        while addr.is_none() || code.is_none() {
            let mut line = String::new();
            assert!(
                lines.read_line(&mut line).unwrap() > 0,
                "camera setup ended early: {seen}"
            );
            seen.push_str(&line);
            if let Some((_, a)) = line.trim().split_once("waiting to pair on ") {
                addr = Some(a.to_owned());
            }
            if let Some(c) = line.trim().strip_prefix("Setup code: ") {
                code = Some(c.to_owned());
            }
        }
        let stdout = thread::spawn(move || {
            let mut rest = String::new();
            let _ = lines.read_to_string(&mut rest);
            seen + &rest
        });
        let code = code.unwrap();
        assert_eq!(code.len(), 8);
        assert!(code.bytes().all(|b| b.is_ascii_digit()), "{code}");
        CameraSetup {
            child: Some(child),
            addr: addr.unwrap(),
            code,
            stdout: Some(stdout),
        }
    }

    /// Like [`CameraSetup::finish`], but fails the test if setup is still running after
    /// `limit` (a camera that never ends setup would otherwise hang the test).
    fn finish_within(mut self, limit: Duration) -> (Output, String) {
        let start = Instant::now();
        let child = self.child.as_mut().unwrap();
        while child.try_wait().unwrap().is_none() {
            assert!(
                start.elapsed() < limit,
                "camera setup did not end by itself"
            );
            thread::sleep(Duration::from_millis(50));
        }
        self.finish()
    }

    /// Waits for setup to end; returns its status and standard error.
    fn finish(mut self) -> (Output, String) {
        let child = self.child.take().unwrap();
        let out = child.wait_with_output().unwrap();
        let stdout = self.stdout.take().unwrap().join().unwrap();
        assert!(
            stdout.contains('█') || stdout.contains('▀'),
            "no QR code:\n{stdout}"
        );
        let (_, err) = texts(&out);
        (out, err)
    }
}

impl Drop for CameraSetup {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A man in the middle on loopback. It never knows the setup code.
struct Relay {
    addr: String,
    thread: Option<JoinHandle<()>>,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl Relay {
    /// Relays one connection byte for byte, recording everything.
    fn forwarding(camera: &str) -> Relay {
        let camera = camera.to_owned();
        Relay::spawn(move |viewer, seen| {
            let cam = TcpStream::connect(&camera).unwrap();
            let pump = |mut from: TcpStream, mut to: TcpStream, seen: Arc<Mutex<Vec<u8>>>| {
                thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    loop {
                        match from.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                seen.lock().unwrap().extend_from_slice(&buf[..n]);
                                if to.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = to.shutdown(Shutdown::Write);
                })
            };
            let a = pump(
                viewer.try_clone().unwrap(),
                cam.try_clone().unwrap(),
                seen.clone(),
            );
            let b = pump(cam.try_clone().unwrap(), viewer.try_clone().unwrap(), seen);
            a.join().unwrap();
            b.join().unwrap();
            let _ = viewer.shutdown(Shutdown::Both);
            let _ = cam.shutdown(Shutdown::Both);
        })
    }

    /// Runs SPAKE2 with a guessed code on both sides: as the camera towards the viewer and
    /// as a viewer (with a list of its own) towards the camera.
    fn substituting(camera: &str, guess: &str) -> Relay {
        let camera = camera.to_owned();
        let guess = SetupCode::parse(guess).unwrap();
        Relay::spawn(move |mut viewer, seen| {
            let record = |m: &[u8]| seen.lock().unwrap().extend_from_slice(m);
            // Towards the viewer: the relay plays the camera.
            let hello = read_frame(&mut viewer, 1 << 20);
            record(&hello);
            let (_state, share) = ExpectViewerHello::new(guess.clone())
                .receive(&hello)
                .unwrap();
            viewer.write_all(&frame(&share)).unwrap();
            // The viewer checks the confirmation, finds it wrong and hangs up: nothing more.
            let mut rest = Vec::new();
            let _ = viewer.read_to_end(&mut rest);
            record(&rest);

            // Towards the camera: the relay plays a viewer with its own account's list.
            let own = AccountSecret::from_seed([0x5a; 32]);
            let list = RecipientList {
                version: 1,
                account: own.public().ed25519,
                recipients: vec![camseal::keys::Recipient {
                    kem: camseal::keys::KEM_X25519_HKDF_SHA256,
                    public_key: own.public().x25519.to_vec(),
                    label: "relay".into(),
                }],
            }
            .sign(&own)
            .unwrap();
            let mut cam = TcpStream::connect(&camera).unwrap();
            let (state, hello) = ViewerStart::start(&guess, list).unwrap();
            cam.write_all(&frame(&hello)).unwrap();
            let share = read_frame(&mut cam, ExpectCameraShare::MAX_LEN);
            record(&share);
            // The camera's confirmation does not match the guess.
            assert!(state.receive(&share).is_err());
            // Send a confirmation and list anyway, keyed from the guess: refused.
            let (v, hello2) = ViewerStart::start(&guess, own_list(&own)).unwrap();
            let (c, share2) = ExpectViewerHello::new(guess.clone())
                .receive(&hello2)
                .unwrap();
            let (_, forged) = v.receive(&share2).unwrap();
            drop(c);
            assert!(forged.len() <= ExpectViewerList::MAX_LEN);
            let _ = cam.write_all(&frame(&forged));
            let mut rest = Vec::new();
            let _ = cam.read_to_end(&mut rest);
            record(&rest);
        })
    }

    fn spawn(f: impl FnOnce(TcpStream, Arc<Mutex<Vec<u8>>>) + Send + 'static) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let thread = thread::spawn(move || {
            let (viewer, _) = listener.accept().unwrap();
            f(viewer, seen2);
        });
        Relay {
            addr,
            thread: Some(thread),
            seen,
        }
    }

    fn finish(mut self) -> Vec<u8> {
        self.thread.take().unwrap().join().unwrap();
        self.seen.lock().unwrap().clone()
    }
}

fn own_list(own: &AccountSecret) -> Vec<u8> {
    RecipientList {
        version: 2,
        account: own.public().ed25519,
        recipients: vec![camseal::keys::Recipient {
            kem: camseal::keys::KEM_X25519_HKDF_SHA256,
            public_key: own.public().x25519.to_vec(),
            label: "relay".into(),
        }],
    }
    .sign(own)
    .unwrap()
}

fn read_frame(stream: &mut TcpStream, cap: usize) -> Vec<u8> {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).unwrap();
    let len = frame_len(header, cap).unwrap();
    let mut m = vec![0u8; len];
    stream.read_exact(&mut m).unwrap();
    m
}

fn viewer_init(home: &Path) {
    succeeded(
        &camseal(&["viewer", "init", "--home", s(home)]),
        "viewer init",
    );
}

fn pair(viewer: &Path, addr: &str, code: &str) -> Output {
    camseal(&[
        "viewer",
        "pair",
        "--home",
        s(viewer),
        "--camera",
        addr,
        "--code",
        code,
        "--timeout",
        "20",
    ])
}

/// A code that differs from `code` in its last digit.
fn other_code(code: &str) -> String {
    let mut b = code.as_bytes().to_vec();
    b[7] = if b[7] == b'9' { b'0' } else { b[7] + 1 };
    String::from_utf8(b).unwrap()
}

fn read_camera_pub(home: &Path) -> CameraPublic {
    CameraPublic::from_text(&fs::read_to_string(home.join("camera.pub")).unwrap()).unwrap()
}

fn read_account_pub(home: &Path) -> AccountPublic {
    AccountPublic::from_text(&fs::read_to_string(home.join("account.pub")).unwrap()).unwrap()
}
