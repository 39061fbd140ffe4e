//! The entry points called as a C program calls them: raw pointers, callbacks, misuse.

use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

use camseal_hal::{Encoder, FileOptions, FileSource};
use sealing::home::CameraHome;
use sealing::keys::{
    AccountSecret, CameraSecret, KEM_X25519_HKDF_SHA256, Recipient, RecipientList,
};
use sealing::segment::Item;
use sealing::segment::read::{Opener, SegmentReader};

use super::camseal_status::*;
use super::*;

/// A camera home that trusts one account; returns the account.
fn camera_home(dir: &Path) -> AccountSecret {
    let home = CameraHome::create(dir).unwrap();
    home.write_camera(&CameraSecret::from_seed([8; 32]))
        .unwrap();
    let account = AccountSecret::from_seed([9; 32]);
    let list = RecipientList {
        version: 1,
        account: account.public().ed25519,
        recipients: vec![Recipient {
            kem: KEM_X25519_HKDF_SHA256,
            public_key: account.public().x25519.to_vec(),
            label: "account".into(),
        }],
    };
    home.trust(&list.sign(&account).unwrap()).unwrap();
    account
}

/// The access units of a fixture: (bytes, pts, keyframe).
fn access_units(name: &str) -> Vec<(Vec<u8>, u64, bool)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/streams")
        .join(name);
    let mut source = FileSource::open(&path, FileOptions::default()).unwrap();
    let mut units = Vec::new();
    while let Some(p) = source.next_packet().unwrap() {
        units.push((p.data().to_vec(), p.pts, p.keyframe));
    }
    units
}

/// What the callbacks saw.
#[derive(Default)]
struct Seen {
    released: AtomicUsize,
    segments: Vec<(PathBuf, u64)>,
    errors: Vec<(camseal_status, String)>,
    /// A session that `on_segment` pushes into (to check re-entry), and what that returned.
    reenter: Option<*mut camseal_session>,
    reentered: Vec<camseal_status>,
}

unsafe extern "C" fn on_segment(user: *mut c_void, segment: *const camseal_segment) {
    // SAFETY: the tests pass a live `Seen` as user data; the segment is valid during the call.
    let (seen, segment) = unsafe { (&mut *(user as *mut Seen), &*segment) };
    // SAFETY: camseal passes a NUL-terminated path.
    let path = unsafe { CStr::from_ptr(segment.path) }.to_str().unwrap();
    seen.segments.push((PathBuf::from(path), segment.frames));
    if let Some(session) = seen.reenter {
        // SAFETY: the session whose callback this is: live.
        let status =
            unsafe { camseal_push(session, ptr::null(), 0, 0, false, None, ptr::null_mut()) };
        seen.reentered.push(status);
    }
}

unsafe extern "C" fn on_error(user: *mut c_void, status: camseal_status, message: *const c_char) {
    // SAFETY: as in `on_segment`.
    let seen = unsafe { &mut *(user as *mut Seen) };
    // SAFETY: camseal passes a NUL-terminated message.
    let message = unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned();
    seen.errors.push((status, message));
}

unsafe extern "C" fn release(user: *mut c_void, _data: *const u8) {
    // SAFETY: the tests pass a `Seen` that outlives every release (checked: all happen by
    // `camseal_close`); only its atomic is touched, from any thread.
    let seen = unsafe { &*(user as *const Seen) };
    seen.released.fetch_add(1, Ordering::SeqCst);
}

fn last_error() -> String {
    // SAFETY: camseal's own NUL-terminated string, read before the next call.
    unsafe { CStr::from_ptr(camseal_last_error()) }
        .to_string_lossy()
        .into_owned()
}

fn options(home: &CString, out: &CString, seen: &mut Seen) -> camseal_options {
    let mut o = std::mem::MaybeUninit::<camseal_options>::uninit();
    // SAFETY: a valid place for one `camseal_options`.
    assert_eq!(unsafe { camseal_options_init(o.as_mut_ptr()) }, CAMSEAL_OK);
    // SAFETY: initialised by the call above.
    let mut o = unsafe { o.assume_init() };
    o.home = home.as_ptr();
    o.out_dir = out.as_ptr();
    o.workers = 2;
    o.segment_seconds = 1.0;
    o.frame_duration_90khz = 3600;
    o.on_segment = Some(on_segment);
    o.on_error = Some(on_error);
    o.user_data = seen as *mut Seen as *mut c_void;
    o
}

fn c(path: &Path) -> CString {
    CString::new(path.to_str().unwrap()).unwrap()
}

fn open(o: &camseal_options) -> (camseal_status, *mut camseal_session) {
    let mut session = ptr::dangling_mut();
    // SAFETY: valid options and a place for the pointer.
    let status = unsafe { camseal_open(o, &mut session) };
    (status, session)
}

/// Opens every segment in `dir` (in name order) and returns the video it holds.
fn decrypt_dir(dir: &Path, account: &AccountSecret) -> Vec<u8> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cseg"))
        .collect();
    names.sort();
    let secret = account.x25519_secret();
    let mut video = Vec::new();
    for name in names {
        let bytes = std::fs::read(&name).unwrap();
        let mut reader = SegmentReader::new(bytes.as_slice()).unwrap();
        let mut opener = Opener::new(reader.header(), &secret).unwrap();
        loop {
            match reader.next_item().unwrap() {
                Item::Record(r) => {
                    opener.open(&r, &mut video).unwrap();
                }
                Item::Checkpoint(c) => {
                    opener.checkpoint(&c).unwrap();
                }
                Item::Trailer(t) => {
                    opener.finish(&t).unwrap();
                    break;
                }
            }
        }
    }
    video
}

#[test]
fn pushed_buffers_are_sealed_without_a_copy_released_once_and_decrypt_identically() {
    let t = tempfile::tempdir().unwrap();
    let account = camera_home(&t.path().join("home"));
    let (home, out) = (c(&t.path().join("home")), c(&t.path().join("out")));
    let mut seen = Seen::default();
    let o = options(&home, &out, &mut seen);
    let (status, session) = open(&o);
    assert_eq!(status, CAMSEAL_OK, "{}", last_error());
    let units = access_units("h264-baseline-320x240.h264");
    for (bytes, pts, keyframe) in &units {
        // SAFETY: a live session; the bytes outlive the session (released by close).
        let status = unsafe {
            camseal_push(
                session,
                bytes.as_ptr(),
                bytes.len(),
                *pts,
                *keyframe,
                Some(release),
                &seen as *const Seen as *mut c_void,
            )
        };
        assert_eq!(status, CAMSEAL_OK, "{}", last_error());
    }
    // The copy meter of the engine, read through the handle as the test's only look inside.
    // SAFETY: a live session, used by this thread only.
    let meter = match &*unsafe { &*session }.state.lock().unwrap() {
        State::Open(opened) => opened.session.copy_meter(),
        State::Closed => panic!("closed"),
    };
    // SAFETY: a live session.
    let closed = unsafe { camseal_close(session) };
    assert_eq!(closed, CAMSEAL_OK, "{}", last_error());
    assert_eq!(seen.released.load(Ordering::SeqCst), units.len());
    assert_eq!(meter.bytes(), 0, "video bytes copied on the C path");
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
    // 75 frames, a keyframe every 15 at 25 frames a second: 5 segments of 0.6 s; with 1 s
    // targets, each closes at the second keyframe after its start.
    assert!(seen.segments.len() >= 2, "{:?}", seen.segments);
    let frames: u64 = seen.segments.iter().map(|s| s.1).sum();
    assert_eq!(frames, units.len() as u64);
    assert!(seen.segments.iter().all(|s| s.0.is_file()));

    // A closed session refuses more work (and still releases what it is given).
    // SAFETY: a live (closed) session.
    let again = unsafe { camseal_close(session) };
    assert_eq!(again, CAMSEAL_ERR_CLOSED);
    let byte = [0u8; 1];
    // SAFETY: a live (closed) session; `byte` outlives the call, which releases it.
    let status = unsafe {
        camseal_push(
            session,
            byte.as_ptr(),
            1,
            1 << 40,
            true,
            Some(release),
            &seen as *const Seen as *mut c_void,
        )
    };
    assert_eq!(status, CAMSEAL_ERR_CLOSED);
    assert_eq!(seen.released.load(Ordering::SeqCst), units.len() + 1);
    // SAFETY: a live session, freed once.
    unsafe { camseal_free(session) };

    let input: Vec<u8> = units.iter().flat_map(|u| u.0.iter().copied()).collect();
    assert!(decrypt_dir(&t.path().join("out"), &account) == input);
}

#[test]
fn null_pointers_bad_strings_and_bad_options_are_error_codes() {
    let t = tempfile::tempdir().unwrap();
    camera_home(&t.path().join("home"));
    let (home, out) = (c(&t.path().join("home")), c(&t.path().join("out")));
    let mut seen = Seen::default();
    let user = &seen as *const Seen as *mut c_void;

    // SAFETY: NULL is allowed everywhere below; it must be reported, not dereferenced.
    unsafe {
        assert_eq!(
            camseal_options_init(ptr::null_mut()),
            CAMSEAL_ERR_NULL_POINTER
        );
        let mut session = ptr::dangling_mut();
        assert_eq!(
            camseal_open(ptr::null(), &mut session),
            CAMSEAL_ERR_NULL_POINTER
        );
        assert!(session.is_null());
        assert_eq!(last_error(), "options is NULL");
        let o = options(&home, &out, &mut Seen::default());
        assert_eq!(camseal_open(&o, ptr::null_mut()), CAMSEAL_ERR_NULL_POINTER);
        assert_eq!(camseal_close(ptr::null_mut()), CAMSEAL_ERR_NULL_POINTER);
        camseal_free(ptr::null_mut());
        let byte = [0u8];
        let s = camseal_push(
            ptr::null_mut(),
            byte.as_ptr(),
            1,
            0,
            true,
            Some(release),
            user,
        );
        assert_eq!(s, CAMSEAL_ERR_NULL_POINTER);
        assert_eq!(
            seen.released.load(Ordering::SeqCst),
            1,
            "released on failure too"
        );
    }

    let bad_utf8 = CString::new(vec![b'/', 0xff, 0xfe]).unwrap();
    type Change<'a> = &'a dyn Fn(&mut camseal_options);
    let cases: [(&str, Change, camseal_status); 7] = [
        (
            "no home",
            &|o| o.home = ptr::null(),
            CAMSEAL_ERR_NULL_POINTER,
        ),
        (
            "home not UTF-8",
            &|o| o.home = bad_utf8.as_ptr(),
            CAMSEAL_ERR_INVALID_ARGUMENT,
        ),
        (
            "out not UTF-8",
            &|o| o.out_dir = bad_utf8.as_ptr(),
            CAMSEAL_ERR_INVALID_ARGUMENT,
        ),
        ("codec", &|o| o.codec = 7, CAMSEAL_ERR_INVALID_ARGUMENT),
        (
            "NaN seconds",
            &|o| o.segment_seconds = f64::NAN,
            CAMSEAL_ERR_INVALID_ARGUMENT,
        ),
        (
            "no output",
            &|o| o.out_dir = ptr::null(),
            CAMSEAL_ERR_INVALID_ARGUMENT,
        ),
        (
            "workers",
            &|o| o.workers = 100_000,
            CAMSEAL_ERR_INVALID_ARGUMENT,
        ),
    ];
    for (what, change, want) in cases {
        let mut o = options(&home, &out, &mut seen);
        change(&mut o);
        let (status, session) = open(&o);
        assert_eq!(status, want, "{what}: {}", last_error());
        assert!(session.is_null(), "{what}");
        assert!(!last_error().is_empty(), "{what}");
    }
    let missing = c(&t.path().join("no-such-home"));
    let (status, _) = open(&options(&missing, &out, &mut seen));
    assert_eq!(status, CAMSEAL_ERR_HOME, "{}", last_error());

    // A second session on the same camera stream is refused while the first is open.
    let o = options(&home, &out, &mut seen);
    let (status, first) = open(&o);
    assert_eq!(status, CAMSEAL_OK);
    assert_eq!(open(&o).0, CAMSEAL_ERR_LOCKED, "{}", last_error());
    // SAFETY: a live session; `camseal_free` closes it.
    unsafe { camseal_free(first) };
    assert_eq!(open(&o).0, CAMSEAL_OK);
}

#[test]
fn a_panic_inside_any_entry_point_becomes_an_error_code() {
    let t = tempfile::tempdir().unwrap();
    camera_home(&t.path().join("home"));
    let (home, out) = (c(&t.path().join("home")), c(&t.path().join("out")));
    let mut seen = Seen::default();
    let o = options(&home, &out, &mut seen);
    let hook = |entry: &'static str| test_hook::PANIC_IN.with(|p| p.set(entry));

    hook("camseal_open");
    let (status, session) = open(&o);
    assert_eq!(status, CAMSEAL_ERR_PANIC);
    assert!(session.is_null());
    assert!(
        last_error().contains("deliberate panic in camseal_open"),
        "{}",
        last_error()
    );
    hook("");
    let (status, session) = open(&o);
    assert_eq!(status, CAMSEAL_OK, "{}", last_error());

    hook("camseal_push");
    let byte = [0u8];
    let user = &seen as *const Seen as *mut c_void;
    // SAFETY: a live session; `byte` outlives the call.
    let status = unsafe { camseal_push(session, byte.as_ptr(), 1, 0, true, Some(release), user) };
    assert_eq!(status, CAMSEAL_ERR_PANIC);
    assert_eq!(
        seen.released.load(Ordering::SeqCst),
        1,
        "the unwind released the buffer"
    );

    hook("camseal_close");
    // SAFETY: a live session.
    assert_eq!(unsafe { camseal_close(session) }, CAMSEAL_ERR_PANIC);
    hook("camseal_options_init");
    let mut spare = std::mem::MaybeUninit::<camseal_options>::uninit();
    // SAFETY: a valid place for one `camseal_options`.
    let status = unsafe { camseal_options_init(spare.as_mut_ptr()) };
    assert_eq!(status, CAMSEAL_ERR_PANIC);
    hook("camseal_free");
    // SAFETY: a live session; the panic is caught, so this leaks it (a bug path).
    unsafe { camseal_free(session) };
    assert!(last_error().contains("camseal_free"));
    hook("");
    // The leaked session still holds the stream: close it properly to let go.
    // SAFETY: still live: the panicking free never reached `Box::from_raw`.
    let closed = unsafe { camseal_close(session) };
    assert_eq!(closed, CAMSEAL_OK, "{}", last_error());
    // SAFETY: a live session, freed once.
    unsafe { camseal_free(session) };
}

#[test]
fn a_callback_that_calls_back_into_its_session_gets_an_error_not_a_deadlock() {
    let t = tempfile::tempdir().unwrap();
    camera_home(&t.path().join("home"));
    let (home, out) = (c(&t.path().join("home")), c(&t.path().join("out")));
    let mut seen = Seen::default();
    let o = options(&home, &out, &mut seen);
    let (status, session) = open(&o);
    assert_eq!(status, CAMSEAL_OK);
    seen.reenter = Some(session);
    for (bytes, pts, keyframe) in access_units("h264-baseline-320x240.h264").iter().take(20) {
        // SAFETY: a live session; the bytes outlive it (no release needed).
        let s = unsafe {
            camseal_push(
                session,
                bytes.as_ptr(),
                bytes.len(),
                *pts,
                *keyframe,
                None,
                ptr::null_mut(),
            )
        };
        assert_eq!(s, CAMSEAL_OK, "{}", last_error());
    }
    // SAFETY: a live session.
    assert_eq!(unsafe { camseal_close(session) }, CAMSEAL_OK);
    assert!(!seen.reentered.is_empty());
    assert!(seen.reentered.iter().all(|&s| s == CAMSEAL_ERR_REENTRANT));
    // SAFETY: a live session, freed once.
    unsafe { camseal_free(session) };
}

#[test]
fn version_and_header_name_every_entry_point() {
    // SAFETY: a static NUL-terminated string.
    let version = unsafe { CStr::from_ptr(camseal_version()) };
    assert_eq!(version.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    // The generated header is checked byte for byte by scripts/test-capi.sh (with
    // cbindgen); this cheaper check runs with every `cargo test`.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
    let header = std::fs::read_to_string(dir.join("include/camseal.h")).unwrap();
    let mut exported = 0;
    for line in source.lines().skip_while(|l| !l.contains("no_mangle")) {
        let Some(rest) = line.split("extern \"C\" fn ").nth(1) else {
            continue;
        };
        let name = rest.split('(').next().unwrap();
        assert!(
            header.contains(&format!("{name}(")),
            "{name} is missing from camseal.h"
        );
        exported += 1;
    }
    assert_eq!(exported, source.matches("#[unsafe(no_mangle)]").count());
}

#[test]
fn a_sink_url_uploads_from_the_spool_and_a_bad_one_is_refused_at_open() {
    let t = tempfile::tempdir().unwrap();
    let account = camera_home(&t.path().join("home"));
    let home = c(&t.path().join("home"));
    let spool = c(&t.path().join("spool"));
    let uploaded = t.path().join("uploaded");
    let sink = CString::new(format!("dir:{}", uploaded.display())).unwrap();
    let mut seen = Seen::default();
    let mut o = options(&home, &spool, &mut seen);
    o.out_dir = ptr::null();
    o.spool_dir = spool.as_ptr();
    let bad = CString::new("ftp://nowhere/").unwrap();
    o.sink_url = bad.as_ptr();
    let (status, session) = open(&o);
    assert_eq!(status, CAMSEAL_ERR_UPLOAD, "{}", last_error());
    assert!(session.is_null());

    o.sink_url = sink.as_ptr();
    let (status, session) = open(&o);
    assert_eq!(status, CAMSEAL_OK, "{}", last_error());
    let units = access_units("h264-baseline-320x240.h264");
    for (bytes, pts, keyframe) in &units {
        // SAFETY: a live session; the bytes outlive it (no release needed).
        let s = unsafe {
            camseal_push(
                session,
                bytes.as_ptr(),
                bytes.len(),
                *pts,
                *keyframe,
                None,
                ptr::null_mut(),
            )
        };
        assert_eq!(s, CAMSEAL_OK, "{}", last_error());
    }
    // SAFETY: a live session, freed once (`camseal_free` closes it).
    unsafe { camseal_free(session) };
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
    // Close waited for the uploads: the sink holds the whole stream.
    let input: Vec<u8> = units.iter().flat_map(|u| u.0.iter().copied()).collect();
    assert!(decrypt_dir(&uploaded, &account) == input);
}
