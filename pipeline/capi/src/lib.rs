//! The C ABI of camseal: `libcamseal.a`, `libcamseal.so` and `camseal.h`.
//!
//! What this crate does **not** do: it holds no sealing logic, no file layout and no policy.
//! Every entry point checks its pointers, turns C strings into Rust values and calls
//! `camseal::embed::Session` (the pipeline crate, named `sealing` here because this library
//! is itself called `camseal`), which a media-framework element uses the same way.
//!
//! Layers:
//! - the `extern "C"` entry points below, each inside `guard`: a panic becomes
//!   [`camseal_status::CAMSEAL_ERR_PANIC`] and never unwinds into C;
//! - `CallerBuffer`: a caller's access unit lent to the engine as a
//!   `camseal_hal::LentMemory`, whose drop calls the caller's release callback;
//! - the thread-local last-error string.
//!
//! `unsafe` lives only in this crate of the workspace: each block dereferences a pointer
//! the header documents, and says why that is sound.
//!
//! The library must be built with `panic = "unwind"` (the workspace's `capi` profile, which
//! `scripts/install-capi.sh` uses): the release profile aborts on panic, which would keep
//! a panic from crossing into C but also from turning into an error code.

#![allow(non_camel_case_types)]

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::ffi::{CStr, CString, c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use camseal_hal::{LentMemory, Packet};
use sealing::embed::{Session, SessionConfig, SessionError};
use sealing::engine::{EngineError, StreamEvent};
use sealing::nal::Codec;

/// What a camseal call returned. Every value but `CAMSEAL_OK` comes with a message from
/// `camseal_last_error`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum camseal_status {
    /// Success.
    CAMSEAL_OK = 0,
    /// A required pointer was NULL.
    CAMSEAL_ERR_NULL_POINTER = 1,
    /// An option is out of range, a string is not UTF-8, or a setting is missing.
    CAMSEAL_ERR_INVALID_ARGUMENT = 2,
    /// The camera home is missing or unreadable (`camseal camera init` makes one).
    CAMSEAL_ERR_HOME = 3,
    /// Another recorder (a `camseal run`, another session) records this camera stream.
    CAMSEAL_ERR_LOCKED = 4,
    /// The camera trusts no recipient (`camseal camera trust` installs a list).
    CAMSEAL_ERR_NO_RECIPIENTS = 5,
    /// Reading or writing the output directory, spool or chain state failed.
    CAMSEAL_ERR_IO = 6,
    /// An upload sink could not be set up (bad URL, unsupported scheme).
    CAMSEAL_ERR_UPLOAD = 7,
    /// Sealing failed; the session records nothing more (close it).
    CAMSEAL_ERR_SEAL = 8,
    /// The session is already closed.
    CAMSEAL_ERR_CLOSED = 9,
    /// A callback called back into its own session.
    CAMSEAL_ERR_REENTRANT = 10,
    /// camseal hit an internal bug (a Rust panic), caught at the boundary. The session
    /// that was in use is unusable: free it.
    CAMSEAL_ERR_PANIC = 11,
    /// Not an error of a call: passed to `on_error` when frames were not recorded
    /// (overload, a full spool, or pictures that cannot be decoded without earlier ones).
    /// Recording goes on, and the loss is declared, signed, in the next segment's header.
    CAMSEAL_WARN_FRAMES_DROPPED = 12,
}

/// `codec` value of `camseal_options`: H.264 / AVC.
pub const CAMSEAL_CODEC_H264: u32 = 1;
/// `codec` value of `camseal_options`: H.265 / HEVC.
pub const CAMSEAL_CODEC_H265: u32 = 2;

/// An open sealing session. Opaque; made by `camseal_open`, freed by `camseal_free`.
pub struct camseal_session {
    state: Mutex<State>,
    callbacks: Callbacks,
}

/// A segment that was sealed and published (durable, under its final name).
///
/// Ownership: camseal's. The struct and `path` are valid only during the `on_segment`
/// call; copy what you keep.
#[repr(C)]
pub struct camseal_segment {
    /// Where the segment is: the file in the output directory or spool (NUL-terminated).
    pub path: *const c_char,
    /// Its sequence number in the camera stream.
    pub seq: u64,
    /// Access units in it.
    pub frames: u64,
    /// Its size in bytes.
    pub bytes: u64,
}

/// Called when a segment is published. `user_data` is `camseal_options.user_data`.
pub type camseal_segment_fn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, segment: *const camseal_segment)>;

/// Called with an error or a warning (`CAMSEAL_WARN_FRAMES_DROPPED`) and its message
/// (NUL-terminated, valid only during the call). `user_data` is `camseal_options.user_data`.
pub type camseal_error_fn = Option<
    unsafe extern "C" fn(user_data: *mut c_void, status: camseal_status, message: *const c_char),
>;

/// Gives a pushed buffer back: camseal no longer reads `data` (the pointer given to
/// `camseal_push`). `user_data` is the `release_user_data` given with that push.
pub type camseal_release_fn = Option<unsafe extern "C" fn(user_data: *mut c_void, data: *const u8)>;

/// How to open a session. Fill it with `camseal_options_init`, then set what you need.
///
/// Ownership: the caller's. camseal reads the struct and its strings during `camseal_open`
/// only, and keeps copies; `user_data` is passed back as is and never dereferenced.
#[repr(C)]
pub struct camseal_options {
    /// The camera home directory (`camseal camera init --home DIR`), UTF-8. Required.
    pub home: *const c_char,
    /// `CAMSEAL_CODEC_H264` (the default) or `CAMSEAL_CODEC_H265`.
    pub codec: u32,
    /// Stream number within the camera (default 0). One session per stream at a time.
    pub stream_id: u32,
    /// Target segment length in seconds (default 4): a segment closes at the first keyframe
    /// after it.
    pub segment_seconds: f64,
    /// Seal worker threads, 1 ..= 256; 0 (the default) means one per CPU core.
    pub workers: u32,
    /// Duration of one frame in 90 kHz ticks (default 3000, 30 frames a second): where the
    /// last frame of a segment ends.
    pub frame_duration_90khz: u64,
    /// Directory to write segments into, UTF-8, or NULL. With a spool or a sink, the
    /// uploader copies each segment there too.
    pub out_dir: *const c_char,
    /// Spool directory, UTF-8, or NULL (with a sink: HOME/spool).
    pub spool_dir: *const c_char,
    /// Upload URL (`s3://bucket/prefix?region=…`, `http(s)://…`, `dir:/path`), UTF-8, or
    /// NULL. Credentials come from the environment, as for `camseal run --sink`.
    pub sink_url: *const c_char,
    /// Called for each published segment, or NULL.
    pub on_segment: camseal_segment_fn,
    /// Called, or NULL, for what no return value reports: frames not recorded
    /// (`CAMSEAL_WARN_FRAMES_DROPPED`), a sink that refused uploads for good (at close,
    /// `CAMSEAL_ERR_UPLOAD`), and a close inside `camseal_free` that failed. A failing call
    /// reports its own error by its return value (and `camseal_last_error`).
    pub on_error: camseal_error_fn,
    /// Passed to `on_segment` and `on_error`.
    pub user_data: *mut c_void,
}

/// The library's version, e.g. "0.1.0": a static NUL-terminated string, never freed.
#[unsafe(no_mangle)]
pub extern "C" fn camseal_version() -> *const c_char {
    VERSION.as_ptr()
}

/// The message of the last call that failed on this thread, or "" if none has: a
/// NUL-terminated string owned by camseal, valid until the next camseal call on this
/// thread. Calls that succeed leave it unchanged.
#[unsafe(no_mangle)]
pub extern "C" fn camseal_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// Fills `options` with the defaults (and NULL pointers). Returns
/// `CAMSEAL_ERR_NULL_POINTER` if `options` is NULL.
///
/// # Safety
/// `options` is NULL or points to writable memory for one `camseal_options`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn camseal_options_init(options: *mut camseal_options) -> camseal_status {
    guard("camseal_options_init", || {
        if options.is_null() {
            return Err(null("options"));
        }
        let defaults = camseal_options {
            home: std::ptr::null(),
            codec: CAMSEAL_CODEC_H264,
            stream_id: 0,
            segment_seconds: 4.0,
            workers: 0,
            frame_duration_90khz: 3000,
            out_dir: std::ptr::null(),
            spool_dir: std::ptr::null(),
            sink_url: std::ptr::null(),
            on_segment: None,
            on_error: None,
            user_data: std::ptr::null_mut(),
        };
        // SAFETY: non-NULL (checked) and, by the contract above, valid for one write of a
        // `camseal_options`; `write` does not read or drop the uninitialised old value.
        unsafe { options.write(defaults) };
        Ok(())
    })
}

/// Opens a session: locks the camera stream, recovers what a crash left in the output, and
/// starts the seal workers (and the uploader, with a sink). On success `*session` is the
/// new session; on failure it is set to NULL.
///
/// # Safety
/// `options` is NULL or points to a `camseal_options` whose string fields are NULL or
/// NUL-terminated; `session` is NULL or points to writable memory for one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn camseal_open(
    options: *const camseal_options,
    session: *mut *mut camseal_session,
) -> camseal_status {
    if !session.is_null() {
        // SAFETY: non-NULL (checked), writable for one pointer by the contract. Before
        // anything else, so that every failure (a panic too) leaves NULL there.
        unsafe { session.write(std::ptr::null_mut()) };
    }
    guard("camseal_open", || {
        if session.is_null() {
            return Err(null("session"));
        }
        if options.is_null() {
            return Err(null("options"));
        }
        // SAFETY: non-NULL (checked), a valid `camseal_options` by the contract, and only
        // read during this call.
        let options = unsafe { &*options };
        let config = session_config(options)?;
        let callbacks = Callbacks {
            on_segment: options.on_segment,
            on_error: options.on_error,
            user_data: options.user_data,
        };
        let codec = config.codec;
        let opened = Session::open(config).map_err(Failure::from)?;
        let handle = Box::new(camseal_session {
            state: Mutex::new(State::Open(Box::new(OpenSession {
                session: opened,
                codec,
            }))),
            callbacks,
        });
        // SAFETY: as above; the box is handed to the caller, who frees it with
        // `camseal_free`.
        unsafe { session.write(Box::into_raw(handle)) };
        Ok(())
    })
}

/// Pushes one encoded access unit (Annex-B, start codes included: one picture with the
/// parameter sets and SEI that go with it), without copying it.
///
/// `pts` is in 90 kHz ticks and must increase from push to push; `keyframe` marks an IDR
/// (H.264) or IRAP (H.265) picture. Sealing begins at the first keyframe.
///
/// Ownership: camseal borrows `data` from the call until it calls
/// `release(release_user_data, data)`, exactly once for every call of `camseal_push`,
/// whatever it returns (also when `session` is NULL or closed). The bytes must stay
/// readable and unchanged until then. `release` may be NULL (a buffer that outlives the
/// session); every release has been called when `camseal_close` returns.
///
/// May block while every record buffer is in use (the seal workers are behind).
///
/// # Safety
/// `session` is NULL or a session from `camseal_open` not yet freed; `data` is NULL (then
/// `len` must be 0) or points to `len` readable bytes that stay valid and unchanged until
/// `release` is called; `release`, if not NULL, may be called from any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn camseal_push(
    session: *mut camseal_session,
    data: *const u8,
    len: usize,
    pts: u64,
    keyframe: bool,
    release: camseal_release_fn,
    release_user_data: *mut c_void,
) -> camseal_status {
    // First: from here on, every path (errors and panics included) drops it, which
    // releases the buffer exactly once.
    let buffer = CallerBuffer {
        data,
        len,
        release,
        user_data: release_user_data,
    };
    guard("camseal_push", move || {
        if data.is_null() && len != 0 {
            return Err(null("data"));
        }
        // SAFETY: `session` is NULL or a live session, by the contract.
        let handle = unsafe { session_ref(session) }?;
        handle.with_open(|opened| {
            let codec = opened.codec();
            let packet = Packet::lent(codec, pts, keyframe, Box::new(buffer));
            let result = opened.session.push(packet);
            let events = opened.session.take_events();
            handle.callbacks.report(events);
            result.map(|_| ()).map_err(Failure::from)
        })
    })
}

/// Seals the open segment, waits until every segment is published (calling `on_segment`
/// for each), stops the workers, and gives pending uploads up to 10 s. Every pushed buffer
/// has been released when it returns. The session stays allocated until `camseal_free`;
/// any later push or close returns `CAMSEAL_ERR_CLOSED`.
///
/// # Safety
/// `session` is NULL or a session from `camseal_open` not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn camseal_close(session: *mut camseal_session) -> camseal_status {
    guard("camseal_close", || {
        // SAFETY: `session` is NULL or a live session, by the contract.
        let handle = unsafe { session_ref(session) }?;
        handle.close()
    })
}

/// Frees a session, closing it first if it is still open (errors of that close go to
/// `on_error` only). NULL is ignored. The pointer is invalid afterwards.
///
/// # Safety
/// `session` is NULL or a session from `camseal_open` not yet freed, and no other thread
/// uses it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn camseal_free(session: *mut camseal_session) {
    // The status says nothing a caller of a free function could act on: errors of the
    // close reached `on_error`, and the message is in `camseal_last_error`.
    let _ = guard("camseal_free", || {
        if session.is_null() {
            return Ok(());
        }
        // SAFETY: a live session made by `Box::into_raw` in `camseal_open`, not freed yet
        // and used by no one else, by the contract: the box is ours again.
        let handle = unsafe { Box::from_raw(session) };
        let closed = handle.close();
        if let Err(e) = &closed
            && e.status != camseal_status::CAMSEAL_ERR_CLOSED
        {
            handle.callbacks.error(e.status, &e.message);
        }
        drop(handle);
        Ok(())
    });
}

/// A caller's access unit lent to the engine; dropping it gives it back.
struct CallerBuffer {
    data: *const u8,
    len: usize,
    release: camseal_release_fn,
    user_data: *mut c_void,
}

// SAFETY: `camseal_push`'s contract makes the bytes readable from any thread until the
// release, and the release callable from any thread; the pointers are never written.
unsafe impl Send for CallerBuffer {}
// SAFETY: as above: shared access only reads the bytes.
unsafe impl Sync for CallerBuffer {}

impl LentMemory for CallerBuffer {
    fn bytes(&self) -> &[u8] {
        if self.data.is_null() {
            return &[];
        }
        // SAFETY: `data` points to `len` readable bytes that stay valid and unchanged until
        // `release` is called, which is in `drop`, after every borrow of `self` ended
        // (`camseal_push`'s contract). NULL was handled above (and only with `len` 0 does
        // a NULL buffer reach the engine).
        unsafe { std::slice::from_raw_parts(self.data, self.len) }
    }
}

impl Drop for CallerBuffer {
    fn drop(&mut self) {
        if let Some(release) = self.release {
            // SAFETY: the caller's function, called once (drop runs once) with the values
            // it gave to `camseal_push`, from any thread, as its contract allows.
            unsafe { release(self.user_data, self.data) };
        }
    }
}

enum State {
    Closed,
    Open(Box<OpenSession>),
}

struct OpenSession {
    session: Session,
    codec: Codec,
}

impl OpenSession {
    fn codec(&self) -> Codec {
        self.codec
    }
}

#[derive(Clone, Copy)]
struct Callbacks {
    on_segment: camseal_segment_fn,
    on_error: camseal_error_fn,
    user_data: *mut c_void,
}

impl Callbacks {
    fn report(&self, events: Vec<StreamEvent>) {
        for event in events {
            match event {
                StreamEvent::Published(segment) => {
                    let Some(on_segment) = self.on_segment else {
                        continue;
                    };
                    let path = c_string(segment.path.display().to_string());
                    let info = camseal_segment {
                        path: path.as_ptr(),
                        seq: segment.seq,
                        frames: segment.frames,
                        bytes: segment.bytes,
                    };
                    // SAFETY: the caller's callback with its own `user_data`, on the
                    // thread that called into this session (the header's rule); `info`
                    // and `path` outlive the call.
                    unsafe { on_segment(self.user_data, &info) };
                }
                StreamEvent::Dropped {
                    reason,
                    frames,
                    from_pts,
                    to_pts,
                } => self.error(
                    camseal_status::CAMSEAL_WARN_FRAMES_DROPPED,
                    &format!(
                        "{frames} frames not recorded ({}, pts {from_pts}..{to_pts}); declared as a gap in the next segment",
                        reason.name()
                    ),
                ),
            }
        }
    }

    fn error(&self, status: camseal_status, message: &str) {
        if let Some(on_error) = self.on_error {
            let message = c_string(message.to_owned());
            // SAFETY: the caller's callback with its own `user_data`; `message` outlives
            // the call.
            unsafe { on_error(self.user_data, status, message.as_ptr()) };
        }
    }
}

impl camseal_session {
    /// Runs `f` on the open session under its lock, refusing a callback's re-entry and a
    /// closed session.
    fn with_open(
        &self,
        f: impl FnOnce(&mut OpenSession) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        let _inside = Inside::enter(self)?;
        let mut state = self.state.lock().map_err(|_| poisoned())?;
        match &mut *state {
            State::Open(opened) => f(opened),
            State::Closed => Err(closed()),
        }
    }

    fn close(&self) -> Result<(), Failure> {
        let _inside = Inside::enter(self)?;
        let mut state = self.state.lock().map_err(|_| poisoned())?;
        let State::Open(opened) = std::mem::replace(&mut *state, State::Closed) else {
            return Err(closed());
        };
        let summary = opened.session.close().map_err(Failure::from)?;
        self.callbacks.report(summary.events);
        if let Some((sink, message)) = summary.upload_failure {
            self.callbacks.error(
                camseal_status::CAMSEAL_ERR_UPLOAD,
                &format!(
                    "uploads to {sink} are refused ({message}); the segments are kept in the spool"
                ),
            );
        }
        Ok(())
    }
}

/// Marks this thread as inside a session's call, so a callback's call back into the same
/// session fails instead of deadlocking on its lock. Holds the session this thread was
/// inside before (a callback of one session may use another), restored on drop.
struct Inside(usize);

impl Inside {
    fn enter(session: &camseal_session) -> Result<Inside, Failure> {
        let me = session as *const camseal_session as usize;
        INSIDE.with(|inside| {
            if inside.get() == me {
                return Err(Failure::new(
                    camseal_status::CAMSEAL_ERR_REENTRANT,
                    "a callback called back into its own session",
                ));
            }
            Ok(Inside(inside.replace(me)))
        })
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        INSIDE.with(|inside| inside.set(self.0));
    }
}

/// An error on its way to C: a status and its message.
#[derive(Debug)]
struct Failure {
    status: camseal_status,
    message: String,
}

impl Failure {
    fn new(status: camseal_status, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
        }
    }
}

impl From<SessionError> for Failure {
    fn from(e: SessionError) -> Failure {
        use camseal_status::*;
        let status = match &e {
            SessionError::Config(_) => CAMSEAL_ERR_INVALID_ARGUMENT,
            SessionError::Home(_) => CAMSEAL_ERR_HOME,
            SessionError::Locked(_) => CAMSEAL_ERR_LOCKED,
            SessionError::NoRecipients(_) => CAMSEAL_ERR_NO_RECIPIENTS,
            SessionError::Upload(_) => CAMSEAL_ERR_UPLOAD,
            SessionError::Engine(EngineError::Config(_)) => CAMSEAL_ERR_INVALID_ARGUMENT,
            SessionError::Engine(EngineError::Output(_) | EngineError::Recorder(_)) => {
                CAMSEAL_ERR_IO
            }
            SessionError::Output { .. } | SessionError::Recorder(_) | SessionError::Spool(_) => {
                CAMSEAL_ERR_IO
            }
            _ => CAMSEAL_ERR_SEAL,
        };
        Failure::new(status, error_chain(&e))
    }
}

/// Runs an entry point's body: a panic becomes `CAMSEAL_ERR_PANIC`, and a failure's
/// message goes into the last-error string.
fn guard(entry: &'static str, body: impl FnOnce() -> Result<(), Failure>) -> camseal_status {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        test_hook::maybe_panic(entry);
        body()
    }));
    let failure = match outcome {
        Ok(Ok(())) => return camseal_status::CAMSEAL_OK,
        Ok(Err(failure)) => failure,
        Err(payload) => Failure::new(
            camseal_status::CAMSEAL_ERR_PANIC,
            format!(
                "internal error in {entry} (a bug in camseal: please report it): {}",
                panic_message(&*payload)
            ),
        ),
    };
    set_last_error(&failure.message);
    failure.status
}

/// The session behind `session`, or a NULL-pointer failure.
///
/// # Safety
/// `session` is NULL or a live session from `camseal_open`.
unsafe fn session_ref<'a>(session: *mut camseal_session) -> Result<&'a camseal_session, Failure> {
    // SAFETY: NULL or live, by this function's contract; only shared access is taken (the
    // state is behind its lock).
    unsafe { session.as_ref() }.ok_or_else(|| null("session"))
}

fn session_config(options: &camseal_options) -> Result<SessionConfig, Failure> {
    // SAFETY: the string fields are NULL or NUL-terminated (`camseal_open`'s contract).
    let home = unsafe { path_field("home", options.home) }?.ok_or_else(|| null("options.home"))?;
    let codec = match options.codec {
        CAMSEAL_CODEC_H264 => Codec::H264,
        CAMSEAL_CODEC_H265 => Codec::H265,
        other => {
            return Err(invalid(format!(
                "options.codec {other} is not CAMSEAL_CODEC_H264 or CAMSEAL_CODEC_H265"
            )));
        }
    };
    let seconds = options.segment_seconds;
    if !(seconds.is_finite() && seconds > 0.0 && seconds <= MAX_SEGMENT_SECONDS) {
        return Err(invalid(format!(
            "options.segment_seconds {seconds} is not a number of seconds in (0, {MAX_SEGMENT_SECONDS}]"
        )));
    }
    let mut config = SessionConfig::new(home, codec);
    config.stream_id = options.stream_id;
    config.segment_length = Duration::from_secs_f64(seconds);
    if options.workers != 0 {
        config.workers = options.workers as usize;
    }
    config.frame_ticks = options.frame_duration_90khz;
    // SAFETY: as above.
    config.out = unsafe { path_field("out_dir", options.out_dir) }?;
    // SAFETY: as above.
    config.spool = unsafe { path_field("spool_dir", options.spool_dir) }?;
    // SAFETY: as above.
    if let Some(url) = unsafe { str_field("sink_url", options.sink_url) }? {
        config.sinks.push(url);
    }
    Ok(config)
}

/// A string option as a path.
///
/// # Safety
/// `ptr` is NULL or NUL-terminated.
unsafe fn path_field(name: &str, ptr: *const c_char) -> Result<Option<PathBuf>, Failure> {
    // SAFETY: forwarded contract.
    Ok(unsafe { str_field(name, ptr) }?.map(PathBuf::from))
}

/// A string option; `None` for NULL.
///
/// # Safety
/// `ptr` is NULL or NUL-terminated.
unsafe fn str_field(name: &str, ptr: *const c_char) -> Result<Option<String>, Failure> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL and NUL-terminated by the contract; read during this call only.
    let text = unsafe { CStr::from_ptr(ptr) };
    text.to_str()
        .map(|s| Some(s.to_owned()))
        .map_err(|_| invalid(format!("options.{name} is not UTF-8")))
}

fn null(what: &str) -> Failure {
    Failure::new(
        camseal_status::CAMSEAL_ERR_NULL_POINTER,
        format!("{what} is NULL"),
    )
}

fn invalid(message: String) -> Failure {
    Failure::new(camseal_status::CAMSEAL_ERR_INVALID_ARGUMENT, message)
}

fn closed() -> Failure {
    Failure::new(camseal_status::CAMSEAL_ERR_CLOSED, "the session is closed")
}

fn poisoned() -> Failure {
    Failure::new(
        camseal_status::CAMSEAL_ERR_PANIC,
        "an earlier call on this session hit an internal error; free the session",
    )
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let next = c.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        cause = c.source();
    }
    text
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// A C string of `text`, with any NUL byte (which C would read as the end) replaced.
fn c_string(text: String) -> CString {
    CString::new(text.replace('\0', "\u{fffd}")).unwrap_or_default()
}

fn set_last_error(message: &str) {
    let text = c_string(message.to_owned());
    LAST_ERROR.with(|e| *e.borrow_mut() = text);
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
    /// The session (address) this thread is inside a call of, or 0.
    static INSIDE: Cell<usize> = const { Cell::new(0) };
}

const VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => panic!("the package version contains a NUL byte"),
    };

/// Longer than a day is a configuration error, not a segment.
const MAX_SEGMENT_SECONDS: f64 = 86_400.0;

/// A test-only way to make an entry point panic, to show that [`guard`] catches it.
mod test_hook {
    #[cfg(test)]
    thread_local! {
        pub static PANIC_IN: std::cell::Cell<&'static str> = const { std::cell::Cell::new("") };
    }

    #[cfg(test)]
    pub fn maybe_panic(entry: &str) {
        if PANIC_IN.with(|p| p.get()) == entry {
            panic!("test hook: deliberate panic in {entry}");
        }
    }

    #[cfg(not(test))]
    #[inline(always)]
    pub fn maybe_panic(_entry: &str) {}
}

#[cfg(test)]
mod tests;
