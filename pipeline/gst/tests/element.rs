//! The element's behaviour as an application sees it: error messages instead of panics,
//! and a flushing seek.
//!
//! Needs GStreamer with videotestsrc (base), x264enc (ugly) and h264parse (bad); run by
//! scripts/test-gst.sh, which checks they are there.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gst::prelude::*;

mod common;
use common::*;

/// The first error message on `pipeline`'s bus within [`HANG`].
fn first_error(pipeline: &gst::Pipeline) -> String {
    let bus = pipeline.bus().unwrap();
    let message = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(HANG.as_secs()),
            &[gst::MessageType::Error],
        )
        .expect("an error message");
    match message.view() {
        gst::MessageView::Error(e) => e.error().to_string(),
        _ => unreachable!("filtered"),
    }
}

#[test]
fn missing_settings_and_a_bad_home_are_error_messages() {
    init();
    let t = tempfile::tempdir().unwrap();
    let launch = |sink: &str| {
        gst::parse::launch(&format!(
            "videotestsrc num-buffers=5 ! x264enc speed-preset=ultrafast ! h264parse \
             ! video/x-h264,stream-format=byte-stream,alignment=au ! {sink}"
        ))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap()
    };

    let no_home = launch("camsealsink location=/nonexistent");
    assert!(no_home.set_state(gst::State::Playing).is_err());
    let error = first_error(&no_home);
    assert!(error.contains("`home`"), "{error}");
    no_home.set_state(gst::State::Null).unwrap();

    let no_output = launch(&format!("camsealsink home={}", t.path().display()));
    assert!(no_output.set_state(gst::State::Playing).is_err());
    let error = first_error(&no_output);
    assert!(error.contains("`location`"), "{error}");
    no_output.set_state(gst::State::Null).unwrap();

    // The settings are complete, but the home is not a camera home: the session fails to
    // open when the caps arrive, in the streaming thread.
    let bad_home = launch(&format!(
        "camsealsink home={} location={}",
        t.path().join("missing").display(),
        t.path().join("out").display()
    ));
    let _ = bad_home.set_state(gst::State::Playing);
    let error = first_error(&bad_home);
    assert!(
        error.contains("could not open the sealing session"),
        "{error}"
    );
    bad_home.set_state(gst::State::Null).unwrap();
}

#[test]
fn a_flushing_seek_seals_the_segment_and_recording_goes_on() {
    init();
    let t = tempfile::tempdir().unwrap();
    let home = t.path().join("home");
    let out = t.path().join("out");
    let account = camera_home(&home);
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=90 ! video/x-raw,width=160,height=120,framerate=30/1 \
         ! x264enc speed-preset=ultrafast key-int-max=10 ! h264parse \
         ! video/x-h264,stream-format=byte-stream,alignment=au \
         ! camsealsink name=sink workers=2 segment-seconds=60 home={} location={}",
        home.display(),
        out.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let rendered = Arc::new(AtomicUsize::new(0));
    let counter = rendered.clone();
    let sink = pipeline.by_name("sink").unwrap();
    sink.static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            counter.fetch_add(1, Ordering::SeqCst);
            gst::PadProbeReturn::Ok
        });
    set_state(&pipeline, gst::State::Paused);
    set_state(&pipeline, gst::State::Playing);
    let deadline = Instant::now() + HANG;
    while rendered.load(Ordering::SeqCst) < 20 {
        assert!(Instant::now() < deadline, "no progress within {HANG:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    pipeline
        .seek_simple(
            gst::SeekFlags::FLUSH | gst::SeekFlags::KEY_UNIT,
            gst::ClockTime::from_seconds(2),
        )
        .unwrap();
    let bus = pipeline.bus().unwrap();
    let message = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(HANG.as_secs()),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("EOS");
    if let gst::MessageView::Error(e) = message.view() {
        panic!("pipeline error: {} ({:?})", e.error(), e.debug());
    }
    set_state(&pipeline, gst::State::Null);
    // One segment up to the flush, one after it (with segment-seconds=60, nothing else
    // closes a segment), both complete.
    let (segments, _) = open_segments(&out, &account);
    assert_eq!(segments, 2);
}

#[test]
fn with_an_upload_sink_segments_go_through_the_spool() {
    init();
    let t = tempfile::tempdir().unwrap();
    let home = t.path().join("home");
    let uploaded = t.path().join("uploaded");
    std::fs::create_dir(&uploaded).unwrap();
    let account = camera_home(&home);
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=40 ! video/x-raw,width=160,height=120,framerate=30/1 \
         ! x264enc speed-preset=ultrafast key-int-max=15 ! h264parse \
         ! video/x-h264,stream-format=byte-stream,alignment=au \
         ! camsealsink workers=1 segment-seconds=1 home={} sink=dir:{}",
        home.display(),
        uploaded.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    set_state(&pipeline, gst::State::Playing);
    let message = pipeline
        .bus()
        .unwrap()
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(HANG.as_secs()),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("EOS");
    if let gst::MessageView::Error(e) = message.view() {
        panic!("pipeline error: {} ({:?})", e.error(), e.debug());
    }
    set_state(&pipeline, gst::State::Null);
    // The spool defaults to HOME/spool; closing at EOS gave the uploader its grace to
    // send everything.
    assert!(home.join("spool").is_dir());
    let (segments, video) = open_segments(&uploaded, &account);
    assert!(segments >= 2, "{segments} segments uploaded");
    assert!(video > 0);
}
