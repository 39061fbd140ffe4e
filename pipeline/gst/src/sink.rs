//! The element: its properties, its caps, and the life of the sealing session.
//!
//! A session opens when caps arrive (the codec is known then) and is closed, which seals
//! the open segment, at EOS, at a flush (what follows a seek is a new run of the stream)
//! and when the element stops. Closing at stop means that taking a pipeline down without
//! EOS loses nothing that reached the sink.

pub(crate) mod imp {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};
    use std::time::Duration;

    use camseal::embed::{Session, SessionConfig};
    use camseal::engine::{CopyMeter, StreamEvent};
    use camseal::nal::Codec;
    use camseal::recorder::PTS_HZ;
    use camseal_hal::{LentMemory, Packet};
    use gst::glib;
    use gst::prelude::*;
    use gst::subclass::prelude::*;
    use gst_base::prelude::BaseSinkExt;
    use gst_base::subclass::prelude::*;

    use crate::logic::{codec_for_caps_name, frame_ticks, pts_ticks};

    static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
        gst::DebugCategory::new(
            "camsealsink",
            gst::DebugColorFlags::empty(),
            Some("camseal end-to-end encrypting sink"),
        )
    });

    const DEFAULT_SEGMENT_SECONDS: u32 = 4;
    /// Frames a second assumed when the caps carry no frame rate (the last frame of a
    /// segment lasts one frame).
    const DEFAULT_FPS: u64 = 30;

    /// The properties, as set; read once when a session opens.
    #[derive(Clone, Debug)]
    struct Settings {
        home: Option<String>,
        location: Option<String>,
        spool: Option<String>,
        sink: Option<String>,
        segment_seconds: u32,
        workers: u32,
        stream_id: u32,
    }

    impl Default for Settings {
        fn default() -> Settings {
            Settings {
                home: None,
                location: None,
                spool: None,
                sink: None,
                segment_seconds: DEFAULT_SEGMENT_SECONDS,
                workers: 0,
                stream_id: 0,
            }
        }
    }

    impl Settings {
        /// The session these settings ask for, or what is missing.
        fn session_config(&self, codec: Codec, frame_ticks: u64) -> Result<SessionConfig, String> {
            let Some(home) = self.home.as_deref().filter(|h| !h.is_empty()) else {
                return Err(
                    "set the `home` property (a camera home made by `camseal camera init`)".into(),
                );
            };
            let nonempty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
            let (location, spool, sink) = (
                nonempty(&self.location),
                nonempty(&self.spool),
                nonempty(&self.sink),
            );
            if location.is_none() && spool.is_none() && sink.is_none() {
                return Err("set `location` (an output directory), `spool` or `sink`".into());
            }
            let mut config = SessionConfig::new(home, codec);
            config.stream_id = self.stream_id;
            config.segment_length = Duration::from_secs(u64::from(self.segment_seconds));
            if self.workers > 0 {
                config.workers = self.workers as usize;
            }
            config.out = location.map(PathBuf::from);
            config.spool = spool.map(PathBuf::from);
            config.sinks = sink.into_iter().collect();
            config.frame_ticks = frame_ticks;
            Ok(config)
        }
    }

    /// The session's state; `None` in the element while it is stopped.
    struct Recording {
        settings: Settings,
        /// From the caps; a session opens once it is known.
        codec: Option<Codec>,
        frame_ticks: u64,
        session: Option<Session>,
        meter: Option<CopyMeter>,
        /// A push failed: the session records nothing more until it is closed.
        failed: bool,
    }

    /// The `camsealsink` element.
    #[derive(Default)]
    pub struct CamsealSink {
        settings: Mutex<Settings>,
        recording: Mutex<Option<Recording>>,
        /// Video bytes copied in user space by this element's sessions, closed ones
        /// included (`bytes-copied`).
        copied: AtomicU64,
        /// `copied` as it stood when the current session opened.
        copied_before: AtomicU64,
    }

    /// A mapped `GstBuffer` lent to the session: the session reads the mapping in place,
    /// and dropping it unmaps the buffer and gives back the reference taken for it.
    struct MappedGstBuffer(gst::MappedBuffer<gst::buffer::Readable>);

    impl LentMemory for MappedGstBuffer {
        fn bytes(&self) -> &[u8] {
            self.0.as_slice()
        }
    }

    fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
        // A panic in a GStreamer callback is caught by gstreamer-rs, which marks the element
        // as panicked; the data behind the lock stays consistent enough to close.
        m.lock().unwrap_or_else(PoisonError::into_inner)
    }

    impl CamsealSink {
        fn open_session(&self, recording: &mut Recording) -> Result<(), gst::ErrorMessage> {
            let Some(codec) = recording.codec else {
                return Err(gst::error_msg!(
                    gst::CoreError::Negotiation,
                    ("no caps before the first buffer")
                ));
            };
            let config = recording
                .settings
                .session_config(codec, recording.frame_ticks)
                .map_err(|e| gst::error_msg!(gst::ResourceError::Settings, ("{}", e)))?;
            let session = Session::open(config).map_err(|e| {
                gst::error_msg!(
                    gst::ResourceError::OpenWrite,
                    ("could not open the sealing session: {}", e)
                )
            })?;
            gst::info!(
                CAT,
                imp = self,
                "recording camera {} stream {} ({})",
                session.camera_id(),
                recording.settings.stream_id,
                codec.name()
            );
            self.copied_before
                .store(self.copied.load(Ordering::Relaxed), Ordering::Relaxed);
            recording.meter = Some(session.copy_meter());
            recording.session = Some(session);
            recording.failed = false;
            Ok(())
        }

        /// Seals the open segment and ends the session, if one is open.
        fn close_session(&self, recording: &mut Recording) -> Result<(), gst::ErrorMessage> {
            let Some(session) = recording.session.take() else {
                return Ok(());
            };
            let result = session.close();
            self.update_copied(recording);
            recording.meter = None;
            let summary = result.map_err(|e| {
                gst::error_msg!(
                    gst::ResourceError::Write,
                    ("sealing the last segment failed: {}", e)
                )
            })?;
            self.report(summary.events);
            if let Some((url, message)) = summary.upload_failure {
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Write,
                    (
                        "uploads to {} failed for good; the segments stay in the spool: {}",
                        url,
                        message
                    )
                );
            }
            gst::info!(
                CAT,
                imp = self,
                "closed: {} frames, {} video bytes sealed, {} bytes copied",
                summary.stats.frames,
                summary.stats.video_bytes,
                self.copied.load(Ordering::Relaxed)
            );
            // gst-launch-1.0 -v shows it; applications can watch it with notify::.
            self.obj().notify("bytes-copied");
            Ok(())
        }

        fn update_copied(&self, recording: &Recording) {
            if let Some(meter) = &recording.meter {
                self.copied.store(
                    self.copied_before.load(Ordering::Relaxed) + meter.bytes(),
                    Ordering::Relaxed,
                );
            }
        }

        /// Logs the session's events, and posts a `camseal-segment` element message for
        /// each published segment.
        fn report(&self, events: Vec<StreamEvent>) {
            for event in events {
                match event {
                    StreamEvent::Published(segment) => {
                        gst::debug!(
                            CAT,
                            imp = self,
                            "segment {} published: {} ({} frames, {} bytes)",
                            segment.seq,
                            segment.path.display(),
                            segment.frames,
                            segment.bytes
                        );
                        let s = gst::Structure::builder("camseal-segment")
                            .field("path", segment.path.display().to_string())
                            .field("seq", segment.seq)
                            .field("frames", segment.frames)
                            .field("bytes", segment.bytes)
                            .build();
                        let obj = self.obj();
                        let _ =
                            obj.post_message(gst::message::Element::builder(s).src(&*obj).build());
                    }
                    StreamEvent::Dropped {
                        reason,
                        frames,
                        from_pts,
                        to_pts,
                    } => {
                        gst::warning!(
                            CAT,
                            imp = self,
                            "{} frames not recorded ({:?}, pts {}..{}); declared as a gap in the next segment",
                            frames,
                            reason,
                            from_pts,
                            to_pts
                        );
                    }
                }
            }
        }
    }

    #[glib::object_subclass]
    impl ObjectSubclass for CamsealSink {
        const NAME: &'static str = "GstCamsealSink";
        type Type = super::super::CamsealSink;
        type ParentType = gst_base::BaseSink;
    }

    impl ObjectImpl for CamsealSink {
        fn properties() -> &'static [glib::ParamSpec] {
            static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
                let settable = glib::ParamFlags::READWRITE | gst::PARAM_FLAG_MUTABLE_READY;
                vec![
                    glib::ParamSpecString::builder("home")
                        .nick("Camera home")
                        .blurb("Camera home directory (camseal camera init): the camera key and the trusted recipient list")
                        .flags(settable)
                        .build(),
                    glib::ParamSpecString::builder("location")
                        .nick("Output directory")
                        .blurb("Directory the sealed segments are written to (with spool or sink: copied to, from the spool)")
                        .flags(settable)
                        .build(),
                    glib::ParamSpecString::builder("spool")
                        .nick("Spool directory")
                        .blurb("Spool the uploader sends from (default with sink: HOME/spool)")
                        .flags(settable)
                        .build(),
                    glib::ParamSpecString::builder("sink")
                        .nick("Upload URL")
                        .blurb("Where the uploader sends segments: s3://..., http(s)://... or dir:PATH")
                        .flags(settable)
                        .build(),
                    glib::ParamSpecUInt::builder("segment-seconds")
                        .nick("Segment length")
                        .blurb("Target segment length in seconds: a segment closes at the first keyframe after it")
                        .minimum(1)
                        .maximum(3600)
                        .default_value(DEFAULT_SEGMENT_SECONDS)
                        .flags(settable)
                        .build(),
                    glib::ParamSpecUInt::builder("workers")
                        .nick("Seal workers")
                        .blurb("Seal worker threads (0: one per CPU core)")
                        .maximum(256)
                        .default_value(0)
                        .flags(settable)
                        .build(),
                    glib::ParamSpecUInt::builder("stream-id")
                        .nick("Stream number")
                        .blurb("Stream number within the camera (one recorder per stream)")
                        .default_value(0)
                        .flags(settable)
                        .build(),
                    glib::ParamSpecUInt64::builder("bytes-copied")
                        .nick("Bytes copied")
                        .blurb("Video bytes copied in user space on the way to the sealed segments (0: zero copy)")
                        .read_only()
                        .build(),
                ]
            });
            PROPERTIES.as_ref()
        }

        fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
            let mut settings = lock(&self.settings);
            let string = || value.get::<Option<String>>().ok().flatten();
            let uint = || value.get::<u32>().unwrap_or_default();
            match pspec.name() {
                "home" => settings.home = string(),
                "location" => settings.location = string(),
                "spool" => settings.spool = string(),
                "sink" => settings.sink = string(),
                "segment-seconds" => settings.segment_seconds = uint(),
                "workers" => settings.workers = uint(),
                "stream-id" => settings.stream_id = uint(),
                // GObject only calls this for the properties above.
                other => gst::warning!(CAT, imp = self, "unknown property {}", other),
            }
        }

        fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
            let settings = lock(&self.settings);
            match pspec.name() {
                "home" => settings.home.to_value(),
                "location" => settings.location.to_value(),
                "spool" => settings.spool.to_value(),
                "sink" => settings.sink.to_value(),
                "segment-seconds" => settings.segment_seconds.to_value(),
                "workers" => settings.workers.to_value(),
                "stream-id" => settings.stream_id.to_value(),
                "bytes-copied" => self.copied.load(Ordering::Relaxed).to_value(),
                _ => pspec.default_value().clone(),
            }
        }

        fn constructed(&self) {
            self.parent_constructed();
            // A recorder writes what arrives as it arrives; waiting on the clock would only
            // hold buffers (and the encoder's memory) longer.
            self.obj().set_sync(false);
            // The last sample would keep one more buffer (encoder memory) referenced.
            self.obj().set_enable_last_sample(false);
        }
    }

    impl GstObjectImpl for CamsealSink {}

    impl ElementImpl for CamsealSink {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
                gst::subclass::ElementMetadata::new(
                    "camseal sealing sink",
                    "Sink/Video",
                    "Seals an H.264 or H.265 stream end to end (AES-GCM chunks in signed \
                     segments, keys wrapped to the camera's trusted viewers) and writes the \
                     segments to a directory or a spool that is uploaded. Each buffer must be \
                     one access unit; it is read in place, never copied.",
                    "camseal developers",
                )
            });
            Some(&*METADATA)
        }

        fn pad_templates() -> &'static [gst::PadTemplate] {
            static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
                let caps = gst::Caps::builder_full()
                    .structure(
                        gst::Structure::builder("video/x-h264")
                            .field("stream-format", "byte-stream")
                            .field("alignment", "au")
                            .build(),
                    )
                    .structure(
                        gst::Structure::builder("video/x-h265")
                            .field("stream-format", "byte-stream")
                            .field("alignment", "au")
                            .build(),
                    )
                    .build();
                vec![
                    gst::PadTemplate::new(
                        "sink",
                        gst::PadDirection::Sink,
                        gst::PadPresence::Always,
                        &caps,
                    )
                    .expect("the static template is valid"),
                ]
            });
            TEMPLATES.as_ref()
        }
    }

    impl BaseSinkImpl for CamsealSink {
        fn start(&self) -> Result<(), gst::ErrorMessage> {
            let settings = lock(&self.settings).clone();
            // Report missing settings at once, not at the first caps.
            settings
                .session_config(Codec::H264, PTS_HZ / DEFAULT_FPS)
                .map_err(|e| gst::error_msg!(gst::ResourceError::Settings, ("{}", e)))?;
            *lock(&self.recording) = Some(Recording {
                settings,
                codec: None,
                frame_ticks: PTS_HZ / DEFAULT_FPS,
                session: None,
                meter: None,
                failed: false,
            });
            self.copied.store(0, Ordering::Relaxed);
            self.copied_before.store(0, Ordering::Relaxed);
            Ok(())
        }

        fn stop(&self) -> Result<(), gst::ErrorMessage> {
            let Some(mut recording) = lock(&self.recording).take() else {
                return Ok(());
            };
            self.close_session(&mut recording)
        }

        fn set_caps(&self, caps: &gst::Caps) -> Result<(), gst::LoggableError> {
            let Some(s) = caps.structure(0) else {
                return Err(gst::loggable_error!(CAT, "empty caps"));
            };
            let Some(codec) = codec_for_caps_name(s.name()) else {
                return Err(gst::loggable_error!(CAT, "unsupported caps {}", caps));
            };
            let ticks = s
                .get::<gst::Fraction>("framerate")
                .ok()
                .and_then(|f| frame_ticks(f.numer(), f.denom()))
                .unwrap_or(PTS_HZ / DEFAULT_FPS);
            let mut guard = lock(&self.recording);
            let Some(recording) = guard.as_mut() else {
                return Err(gst::loggable_error!(CAT, "caps before start"));
            };
            recording.frame_ticks = ticks;
            if recording.codec == Some(codec) && recording.session.is_some() {
                // Same codec (a new resolution, say): the new parameter sets travel in the
                // stream itself, in front of the next keyframe.
                return Ok(());
            }
            if let Err(msg) = self.close_session(recording) {
                self.post_error_message(msg);
                return Err(gst::loggable_error!(CAT, "closing the session failed"));
            }
            recording.codec = Some(codec);
            if let Err(msg) = self.open_session(recording) {
                self.post_error_message(msg);
                return Err(gst::loggable_error!(CAT, "opening the session failed"));
            }
            Ok(())
        }

        fn render(&self, buffer: &gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
            let mut guard = lock(&self.recording);
            let Some(recording) = guard.as_mut() else {
                return Err(gst::FlowError::Flushing);
            };
            if recording.failed {
                return Err(gst::FlowError::Error);
            }
            if buffer.size() == 0 {
                return Ok(gst::FlowSuccess::Ok);
            }
            if recording.session.is_none() {
                // Reopened after a flush.
                if let Err(msg) = self.open_session(recording) {
                    self.post_error_message(msg);
                    return Err(gst::FlowError::Error);
                }
            }
            let Some(timestamp) = buffer.pts().or(buffer.dts()) else {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Format,
                    ("a buffer without a timestamp (camseal needs each access unit's pts)")
                );
                return Err(gst::FlowError::Error);
            };
            let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
            let codec = recording.codec.unwrap_or(Codec::H264);
            if buffer.n_memory() != 1 {
                // Mapping a buffer of several memories merges them into one new block: a
                // copy, made by GStreamer but on this element's account.
                if let Some(meter) = &recording.meter {
                    meter.add(buffer.size());
                }
            }
            let mapped = buffer.clone().into_mapped_buffer_readable().map_err(|_| {
                gst::element_imp_error!(self, gst::ResourceError::Read, ("could not map a buffer"));
                gst::FlowError::Error
            })?;
            let packet = Packet::lent(
                codec,
                pts_ticks(timestamp.nseconds()),
                keyframe,
                Box::new(MappedGstBuffer(mapped)),
            );
            let Some(session) = recording.session.as_mut() else {
                return Err(gst::FlowError::Error);
            };
            let pushed = session.push(packet);
            let events = session.take_events();
            self.update_copied(recording);
            self.report(events);
            match pushed {
                Ok(_) => Ok(gst::FlowSuccess::Ok),
                Err(e) => {
                    recording.failed = true;
                    gst::element_imp_error!(
                        self,
                        gst::ResourceError::Write,
                        ("sealing failed: {}", e)
                    );
                    Err(gst::FlowError::Error)
                }
            }
        }

        fn event(&self, event: gst::Event) -> bool {
            match event.view() {
                gst::EventView::Eos(_) | gst::EventView::FlushStop(_) => {
                    let mut guard = lock(&self.recording);
                    if let Some(recording) = guard.as_mut()
                        && let Err(msg) = self.close_session(recording)
                    {
                        recording.failed = true;
                        drop(guard);
                        self.post_error_message(msg);
                        return false;
                    }
                }
                _ => {}
            }
            self.parent_event(event)
        }
    }
}
