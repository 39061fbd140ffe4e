//! The element through state changes, as an application drives it: NULL -> PLAYING ->
//! NULL, 50 times, half of the runs cut off mid-stream. Nothing may leak (open files,
//! threads), nothing may hang, and every run's frames must end up in a sealed segment
//! (taking a pipeline down without EOS seals the open segment).
//!
//! Needs GStreamer with videotestsrc (base), x264enc (ugly) and h264parse (bad); run by
//! scripts/test-gst.sh, which checks they are there. Its own test binary with one test: it
//! counts the whole process's files and threads.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use gst::prelude::*;

mod common;
use common::*;

const CYCLES: usize = 50;
/// Buffers videotestsrc makes in a run that ends with EOS; at 30 fps they fit in one
/// segment.
const FRAMES: i32 = 10;

/// One run: PLAYING until EOS, or until the sink rendered a buffer (cut off mid-stream),
/// then NULL.
/// Returns the seal workers seen running in a run cut off mid-stream.
fn run_once(pipeline: &gst::Pipeline, rendered: &AtomicUsize, until_eos: bool) -> usize {
    rendered.store(0, Ordering::SeqCst);
    // A run that is cut off has no end of its own.
    let frames: i32 = if until_eos { FRAMES } else { -1 };
    pipeline
        .by_name("src")
        .unwrap()
        .set_property("num-buffers", frames);
    set_state(pipeline, gst::State::Playing);
    let bus = pipeline.bus().unwrap();
    let deadline = Instant::now() + HANG;
    let mut seen = 0;
    loop {
        // The probe sees a buffer before the sink renders it: a second buffer means the
        // first one was pushed to the session.
        if !until_eos && rendered.load(Ordering::SeqCst) >= 2 {
            seen = thread_names()
                .iter()
                .filter(|n| n.starts_with("camseal-seal-"))
                .count();
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "the run did not progress within {HANG:?}: a hang"
        );
        let message = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(20),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        match message.as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Eos(_)) => break,
            Some(gst::MessageView::Error(e)) => {
                panic!("pipeline error: {} ({:?})", e.error(), e.debug())
            }
            _ => {}
        }
    }
    set_state(pipeline, gst::State::Null);
    // Messages of this run must not end the next one early.
    while bus.pop().is_some() {}
    seen
}

#[test]
fn null_playing_null_fifty_times_leaks_nothing() {
    init();
    let t = tempfile::tempdir().unwrap();
    let home = t.path().join("home");
    let out = t.path().join("out");
    let account = camera_home(&home);

    let pipeline = gst::parse::launch(
        "videotestsrc name=src ! video/x-raw,width=160,height=120,framerate=30/1 \
         ! x264enc speed-preset=ultrafast key-int-max=30 ! h264parse \
         ! video/x-h264,stream-format=byte-stream,alignment=au \
         ! camsealsink name=sink workers=2 segment-seconds=60",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = pipeline.by_name("sink").unwrap();
    sink.set_property("home", home.to_str().unwrap());
    sink.set_property("location", out.to_str().unwrap());
    let rendered = Arc::new(AtomicUsize::new(0));
    let counter = rendered.clone();
    sink.static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            counter.fetch_add(1, Ordering::SeqCst);
            gst::PadProbeReturn::Ok
        });

    // Two warm-up runs: GStreamer and glib start their own threads and open their own
    // files once per process (thread pools, the registry, the wakeup fds).
    for cycle in 0..2 {
        run_once(&pipeline, &rendered, cycle % 2 == 0);
    }
    let fds = entries("/proc/self/fd");
    let threads = entries("/proc/self/task");
    for cycle in 2..CYCLES {
        let seen = run_once(&pipeline, &rendered, cycle % 2 == 0);
        if cycle % 2 == 1 {
            // workers=2 (so the check below, that none is left, is not vacuous).
            assert_eq!(seen, 2, "run {cycle}: {seen} seal workers while recording");
        }
        assert_eq!(
            camseal_threads(),
            0,
            "run {cycle} left camseal threads running"
        );
        assert_eq!(
            sink.property::<u64>("bytes-copied"),
            0,
            "run {cycle} copied video bytes"
        );
    }
    let fds_after = entries("/proc/self/fd");
    let threads_after = entries("/proc/self/task");
    eprintln!(
        "open files {fds} -> {fds_after}, threads {threads} -> {threads_after} {:?}",
        thread_names()
    );
    assert_eq!(fds_after, fds, "open files leaked over {} runs", CYCLES - 2);
    // GStreamer keeps finished streaming threads in its task pool for reuse (they keep the
    // name of their last task): their number may settle a thread or two after the
    // warm-up, but does not grow with the runs. A leak of the session's threads would be
    // at least the two seal workers per run.
    assert!(
        threads_after <= threads + 2,
        "threads leaked over {} runs: {threads} -> {threads_after}",
        CYCLES - 2
    );

    // Each run, cut off or not, left exactly one sealed, complete segment.
    let (segments, video) = open_segments(&out, &account);
    assert_eq!(segments, CYCLES, "one segment per run");
    assert!(video > 0);
}
