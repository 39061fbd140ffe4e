//! The camera side of live view: the hub that fans sealed items out, and the sink that feeds
//! it (needs the engine and threads: the `native` feature).

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::{MSG_CHECKPOINT, MSG_HEADER, MSG_RECORD, MSG_RESUME, MSG_TRAILER};
use crate::engine::{HeadOutput, SegmentInfo, SegmentOutput, SegmentSink};
use crate::segment::{Header, Item, Parsed, RecordsDigest, parse_item, record_digest};

/// Messages a subscriber may have queued before it is dropped: about 8 s of a 30 fps stream
/// cut into a few records per frame, with its checkpoints.
pub const DEFAULT_QUEUE: usize = 1024;

/// One message as sent: type byte then payload. Shared by every subscriber's queue.
pub type Message = Arc<[u8]>;

fn message(kind: u8, payload: &[u8]) -> Message {
    let mut m = Vec::with_capacity(1 + payload.len());
    m.push(kind);
    m.extend_from_slice(payload);
    m.into()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the hub has counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HubStats {
    /// Subscribers dropped because their queue was full.
    pub dropped_slow: u64,
    /// Messages sent (queued), over all subscribers.
    pub sent: u64,
}

/// Fans the stream's sealed items out to live subscribers.
#[derive(Clone, Default)]
pub struct LiveHub {
    inner: Arc<Mutex<HubState>>,
    dropped_slow: Arc<AtomicU64>,
    sent: Arc<AtomicU64>,
}

#[derive(Default)]
struct HubState {
    /// The open segment's header (encoded), if any.
    header: Option<Message>,
    /// Its records digest so far (count = records written).
    digest: Option<RecordsDigest>,
    /// pts and flags of the previous record, to find where an access unit starts.
    prev: Option<(u64, bool)>,
    subscribers: Vec<Subscriber>,
}

struct Subscriber {
    tx: Sender<Message>,
    /// Still waiting for a keyframe to start at.
    waiting: bool,
}

impl LiveHub {
    /// A hub with no subscribers.
    pub fn new() -> LiveHub {
        LiveHub::default()
    }

    /// A new subscriber with a queue of `capacity` messages. It starts at the next keyframe
    /// access unit. When the hub drops it (queue full) or stops, the receiver disconnects.
    pub fn subscribe(&self, capacity: usize) -> Receiver<Message> {
        let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
        lock(&self.inner)
            .subscribers
            .push(Subscriber { tx, waiting: true });
        rx
    }

    /// Subscribers connected now.
    pub fn subscribers(&self) -> usize {
        lock(&self.inner).subscribers.len()
    }

    /// Counters.
    pub fn stats(&self) -> HubStats {
        HubStats {
            dropped_slow: self.dropped_slow.load(Ordering::Relaxed),
            sent: self.sent.load(Ordering::Relaxed),
        }
    }

    /// Disconnects every subscriber (at the end of the run).
    pub fn close(&self) {
        lock(&self.inner).subscribers.clear();
    }

    /// A segment's header was written.
    pub fn header(&self, header: &[u8]) {
        let mut state = lock(&self.inner);
        let digest = Header::parse(header).ok().and_then(|p| match p {
            Parsed::Complete(h, _) => Some(RecordsDigest::new(&h.hash())),
            Parsed::Needed(_) => None,
        });
        let msg = message(MSG_HEADER, header);
        state.header = Some(Arc::clone(&msg));
        state.digest = digest;
        state.prev = None;
        self.send(&mut state, |s| !s.waiting, &msg);
    }

    /// Bytes written after the header: one or more whole records, checkpoints or the
    /// trailer, as the engine writes them.
    pub fn items(&self, mut bytes: &[u8]) {
        let mut state = lock(&self.inner);
        while !bytes.is_empty() {
            let Ok(Parsed::Complete(item, used)) = parse_item(bytes) else {
                // The engine writes whole items; anything else is not sent rather than
                // sent cut.
                tracing::warn!("live view: a write that is not whole items was not sent");
                return;
            };
            let (raw, rest) = bytes.split_at(used);
            bytes = rest;
            match item {
                Item::Record(r) => {
                    let keyframe = r.flags.keyframe();
                    let starts_au = keyframe
                        && !r.flags.continuation()
                        && state.prev.is_none_or(|(pts, key)| pts != r.pts || !key);
                    state.prev = Some((r.pts, keyframe));
                    if starts_au {
                        self.start_waiting(&mut state);
                    }
                    if !state.subscribers.is_empty() {
                        self.send(&mut state, |s| !s.waiting, &message(MSG_RECORD, raw));
                    }
                    if let Some(d) = state.digest.as_mut() {
                        d.push(&record_digest(raw));
                    }
                }
                Item::Checkpoint(_) => {
                    self.send(&mut state, |s| !s.waiting, &message(MSG_CHECKPOINT, raw))
                }
                Item::Trailer(_) => {
                    self.send(&mut state, |s| !s.waiting, &message(MSG_TRAILER, raw));
                    state.header = None;
                    state.digest = None;
                }
            }
        }
    }

    /// Waiting subscribers start here: the open header, then where they resume.
    fn start_waiting(&self, state: &mut HubState) {
        if !state.subscribers.iter().any(|s| s.waiting) {
            return;
        }
        let (Some(header), Some(digest)) = (state.header.clone(), state.digest.as_ref()) else {
            return;
        };
        // At the segment's first record a viewer needs no resume point.
        let resume = (digest.count() > 0).then(|| {
            let mut resume = [0u8; 40];
            resume[..8].copy_from_slice(&digest.count().to_be_bytes());
            resume[8..].copy_from_slice(&digest.value());
            message(MSG_RESUME, &resume)
        });
        self.send(state, |s| s.waiting, &header);
        if let Some(resume) = resume {
            self.send(state, |s| s.waiting, &resume);
        }
        for s in &mut state.subscribers {
            s.waiting = false;
        }
    }

    /// Queues `msg` to the subscribers `to` selects, without ever waiting: a full queue
    /// drops its subscriber, a closed one is forgotten.
    fn send(&self, state: &mut HubState, to: impl Fn(&Subscriber) -> bool, msg: &Message) {
        state.subscribers.retain(|s| {
            if !to(s) {
                return true;
            }
            match s.tx.try_send(Arc::clone(msg)) {
                Ok(()) => {
                    self.sent.fetch_add(1, Ordering::Relaxed);
                    true
                }
                Err(TrySendError::Full(_)) => {
                    let n = self.dropped_slow.fetch_add(1, Ordering::Relaxed) + 1;
                    tracing::warn!(
                        dropped_so_far = n,
                        "live view: a viewer fell behind (its queue is full): disconnected"
                    );
                    false
                }
                Err(TrySendError::Disconnected(_)) => false,
            }
        });
    }
}

/// A [`SegmentSink`] that also sends what it writes to a [`LiveHub`].
pub struct LiveSink {
    inner: Box<dyn SegmentSink>,
    hub: LiveHub,
}

impl LiveSink {
    /// Wraps `inner`; every output it opens also feeds `hub`.
    pub fn new(inner: Box<dyn SegmentSink>, hub: LiveHub) -> LiveSink {
        LiveSink { inner, hub }
    }
}

impl SegmentSink for LiveSink {
    fn open(&mut self, info: &SegmentInfo) -> io::Result<Box<dyn SegmentOutput>> {
        Ok(Box::new(LiveOutput {
            inner: self.inner.open(info)?,
            hub: self.hub.clone(),
            header_sent: false,
        }))
    }

    fn gaps(&mut self, info: &SegmentInfo) -> Vec<crate::segment::Gap> {
        self.inner.gaps(info)
    }

    fn head_output(&self, camera_id: &str, stream_id: u32) -> Option<Box<dyn HeadOutput>> {
        self.inner.head_output(camera_id, stream_id)
    }
}

struct LiveOutput {
    inner: Box<dyn SegmentOutput>,
    hub: LiveHub,
    header_sent: bool,
}

impl SegmentOutput for LiveOutput {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        // Storage first: what viewers see live has been handed to the segment file.
        self.inner.write(bytes)?;
        if self.header_sent {
            self.hub.items(bytes);
        } else {
            self.hub.header(bytes);
            self.header_sent = true;
        }
        Ok(())
    }

    fn publish(self: Box<Self>) -> io::Result<PathBuf> {
        self.inner.publish()
    }
}
