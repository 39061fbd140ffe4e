//! The live view through the real binary: `run --live` serves a soft-source stream, and two
//! late-joining `camseal live` viewers watch it through test relays (WebSocket proxies that
//! keep every message). The honest relay's viewer gets verified frames from a keyframe on,
//! and every message it carried (but the resume point) is a header, record, checkpoint or
//! trailer of the segment files, byte for byte, in file order. The other relay flips one
//! byte of a record: its viewer reports tampering and writes nothing from that frame on. A
//! viewer that pins another camera is refused at the first header (exit 7).

mod cli;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use camseal::live::{MSG_CHECKPOINT, MSG_HEADER, MSG_RECORD, MSG_RESUME, MSG_TRAILER};
use camseal::nal::{Codec, access_units};
use camseal::segment::{Item, parse_item};
use cli::{Layout, Setup, s, segments};
use tungstenite::Message;

/// A relay between the camera and one viewer. Forwards every message, flipping the last
/// byte (in the AEAD tag) of the `tamper`-th record message if asked; returns the messages
/// as the camera sent them.
fn relay(camera: String, tamper: Option<usize>) -> (String, JoinHandle<Vec<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut viewer = tungstenite::accept(conn).unwrap();
        let (mut cam, _) = tungstenite::connect(camera.as_str()).unwrap();
        let mut seen = Vec::new();
        let mut records = 0;
        loop {
            let msg = match cam.read() {
                Ok(Message::Binary(b)) => b.to_vec(),
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => continue,
            };
            seen.push(msg.clone());
            let mut out = msg;
            if out[0] == MSG_RECORD {
                records += 1;
                if tamper == Some(records) {
                    *out.last_mut().unwrap() ^= 0x01;
                }
            }
            if viewer.send(Message::Binary(out.into())).is_err() {
                break;
            }
        }
        let _ = viewer.close(None);
        let _ = viewer.flush();
        seen
    });
    (url, handle)
}

/// Starts `run --live 127.0.0.1:0` and returns it with the address it printed. The soft
/// source makes a keyframe every second and segments close after 5 s, so a viewer that joins
/// in the first four seconds resumes mid-segment, and the stream goes on into a second one.
/// The recording lasts 12 s, not 7, so a viewer slowed by a loaded machine still joins while
/// the camera is recording (the join waits for the open segment's bytes, not for a time).
fn start_camera(setup: &Setup, out: &Path) -> (Child, String, JoinHandle<String>) {
    let mut child = cli::command(&[
        "run",
        "--home",
        s(&setup.camera),
        "--out",
        s(out),
        "--source",
        "soft:320x240@15",
        "--duration",
        "12",
        "--realtime",
        "--segment-seconds",
        "5",
        "--live",
        "127.0.0.1:0",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            if let Some(addr) = line.strip_prefix("live view: ") {
                let _ = tx.send(addr.to_owned());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("run --live did not say where it listens");
    (child, addr, reader)
}

/// Bytes written to the open segment so far.
fn open_part_len(out: &Path) -> u64 {
    std::fs::read_dir(out)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().contains(".cseg.part"))
                .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

/// The first number in `camseal live`'s summary ("live: N verified frames ...").
fn frames_said(text: &str) -> u64 {
    let line = text
        .lines()
        .find(|l| l.starts_with("live: "))
        .unwrap_or_else(|| panic!("no summary in {text}"));
    line["live: ".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_late_viewer_gets_the_segments_bytes_verified_and_a_tampered_record_is_refused() {
    let setup = Setup::new();
    // A viewer that pins another camera.
    let stranger = setup.path("stranger");
    let other_camera = setup.path("other-camera");
    for (what, home) in [("viewer", &stranger), ("camera", &other_camera)] {
        cli::succeeded(
            &cli::camseal(&[what, "init", "--home", s(home)]),
            &format!("{what} init"),
        );
    }
    cli::pin_camera(&stranger, &other_camera.join("camera.pub"));
    let out = setup.path("segs");
    let (mut camera, addr, camera_log) = start_camera(&setup, &out);
    // Late: the first segment's header and some of its records are written already.
    let waited = Instant::now();
    while open_part_len(&out) < 40_000 && waited.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(10));
    }

    let (honest_url, honest) = relay(addr.clone(), None);
    let (bad_url, bad) = relay(addr.clone(), Some(8));
    let honest_out = setup.path("live.h264");
    let bad_out = setup.path("tampered.h264");
    let watch = |url: &str, to: &Path| {
        cli::command(&[
            "live",
            "--home",
            s(&setup.viewer),
            "--url",
            url,
            "--out",
            s(to),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
    };
    let honest_viewer = watch(&honest_url, &honest_out);
    let bad_viewer = watch(&bad_url, &bad_out);
    let stranger_result = cli::command(&[
        "live",
        "--home",
        s(&stranger),
        "--url",
        &addr,
        "--out",
        s(&setup.path("stranger.h264")),
    ])
    .output()
    .unwrap();
    let honest_result = honest_viewer.wait_with_output().unwrap();
    let bad_result = bad_viewer.wait_with_output().unwrap();
    let status = camera.wait().unwrap();
    let log = camera_log.join().unwrap();
    assert!(status.success(), "run failed: {log}");
    let captured = honest.join().unwrap();
    let bad_captured = bad.join().unwrap();

    // The honest viewer: verified frames, from a keyframe, the tail of the recording.
    let (stdout, stderr) = cli::succeeded(&honest_result, "camseal live");
    let frames = frames_said(&stdout);
    let live = std::fs::read(&honest_out).unwrap();
    let units: Vec<_> = access_units(Codec::H264, &live).collect();
    assert!(frames > 0, "{stdout}{stderr}");
    assert_eq!(
        units.len() as u64,
        frames,
        "access units written vs reported"
    );
    assert!(
        units[0].keyframe,
        "the live view does not start at a keyframe"
    );
    let (recorded, _) = setup.decrypt_ok(&[&out], &[]);
    let recorded_units = access_units(Codec::H264, &recorded).count() as u64;
    assert!(frames < recorded_units, "the viewer did not join late");
    assert!(
        recorded.ends_with(&live),
        "the live video is not the end of the recording"
    );
    // And it plays on its own, from its first byte: every frame decodes.
    let mut decoder = openh264::decoder::Decoder::new().unwrap();
    let mut pictures = 0;
    for nal in camseal::nal::nal_units(&live) {
        if decoder.decode(&live[nal.span]).unwrap().is_some() {
            pictures += 1;
        }
    }
    pictures += decoder.flush_remaining().unwrap().len() as u64;
    assert_eq!(pictures, frames, "pictures decoded vs frames written");

    // On the wire: the segment files' own bytes, in their order.
    let mut items: Vec<(u8, Vec<u8>)> = Vec::new();
    for seg in segments(&out) {
        let bytes = std::fs::read(&seg).unwrap();
        let layout = Layout::of(&bytes);
        items.push((MSG_HEADER, bytes[..layout.header_len].to_vec()));
        let mut at = layout.header_len;
        while at < bytes.len() {
            let Ok(camseal::segment::Parsed::Complete(item, used)) = parse_item(&bytes[at..])
            else {
                panic!("unparsable segment");
            };
            let kind = match item {
                Item::Record(_) => MSG_RECORD,
                Item::Checkpoint(_) => MSG_CHECKPOINT,
                Item::Trailer(_) => MSG_TRAILER,
            };
            items.push((kind, bytes[at..at + used].to_vec()));
            at += used;
        }
    }
    assert_eq!(
        captured[0][0], MSG_HEADER,
        "the first message is not a header"
    );
    let header_at = items
        .iter()
        .position(|(k, b)| *k == MSG_HEADER && b[..] == captured[0][1..])
        .expect("the header sent is no segment's header");
    let mut rest = &captured[1..];
    let mut from = header_at + 1;
    if rest[0][0] == MSG_RESUME {
        // Joined mid-segment: the stream goes on at the resume point's record.
        let index = u64::from_be_bytes(rest[0][1..9].try_into().unwrap());
        assert!(index > 0);
        let mut records = 0;
        while records < index {
            records += u64::from(items[from].0 == MSG_RECORD);
            from += 1;
        }
        rest = &rest[1..];
    }
    let first = parse_item(&rest[0][1..]).unwrap();
    let camseal::segment::Parsed::Complete(Item::Record(r), _) = first else {
        panic!("the stream does not go on with a record");
    };
    assert!(r.flags.keyframe() && !r.flags.continuation());
    // A checkpoint written just before the keyframe may be sent or not; skip it.
    if items[from].0 == MSG_CHECKPOINT && rest[0][0] != MSG_CHECKPOINT {
        from += 1;
    }
    let sent: Vec<(u8, Vec<u8>)> = rest.iter().map(|m| (m[0], m[1..].to_vec())).collect();
    assert_eq!(
        sent.len(),
        items.len() - from,
        "the viewer did not get every item to the end"
    );
    assert!(
        sent == items[from..],
        "the messages are not the segment files' bytes"
    );
    assert_eq!(captured.iter().filter(|m| m[0] == MSG_RESUME).count(), 1);

    // A viewer that does not pin this camera is refused at the first header.
    let line = cli::failed(&stranger_result, 7, "live from an unpinned camera");
    assert!(line.contains("not pinned"), "{line}");
    assert!(
        std::fs::read(setup.path("stranger.h264"))
            .unwrap()
            .is_empty()
    );

    // The tampered viewer: refused, and the frame of the flipped record is not written.
    assert_eq!(bad_result.status.code(), Some(3), "{bad_result:?}");
    let bad_stderr = String::from_utf8_lossy(&bad_result.stderr);
    assert!(bad_stderr.contains("tampered"), "{bad_stderr}");
    let written = std::fs::read(&bad_out).unwrap();
    let pts_of = |m: &Vec<u8>| match parse_item(&m[1..]).unwrap() {
        camseal::segment::Parsed::Complete(Item::Record(r), _) => r.pts,
        _ => unreachable!(),
    };
    let records: Vec<u64> = bad_captured
        .iter()
        .filter(|m| m[0] == MSG_RECORD)
        .map(pts_of)
        .collect();
    assert!(records.len() >= 8, "the tampered record was never sent");
    let tampered_pts = records[7];
    let frames_before: std::collections::BTreeSet<u64> = records[..7]
        .iter()
        .copied()
        .filter(|p| *p != tampered_pts)
        .collect();
    let written_units = access_units(Codec::H264, &written).count();
    assert!(
        written_units <= frames_before.len(),
        "{written_units} frames written, only {} whole before the tampered record",
        frames_before.len()
    );
    assert!(
        written.is_empty() || recorded.windows(written.len()).any(|w| w == written),
        "what the tampered viewer wrote is not footage"
    );
}

#[test]
fn the_live_view_never_listens_on_every_interface() {
    let setup = Setup::new();
    for addr in ["0.0.0.0:0", "[::]:0"] {
        let out = cli::command(&[
            "run",
            "--home",
            s(&setup.camera),
            "--out",
            s(&setup.path("segs")),
            "--source",
            "soft:320x240@15",
            "--duration",
            "1",
            "--live",
            addr,
        ])
        .output()
        .unwrap();
        let stderr = cli::failed(&out, 2, "run --live on every interface");
        assert!(stderr.contains("every interface"), "{stderr}");
    }
}
