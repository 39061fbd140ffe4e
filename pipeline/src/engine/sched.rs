//! The shared job queue and the seal workers.
//!
//! Each stream has its own queue; workers serve the queues round robin, one job at a time,
//! so a stream with large keyframes cannot starve a sub stream of small frames.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use camseal_hal::Packet;
use crossbeam_channel::Sender;

use super::handoff::Estimates;
use super::pool::PooledBuf;
use super::{FrameTag, Sealed, Shared, StreamShared, lock, wait};
use crate::segment::write::SegmentSealer;
use crate::segment::{RecordFlags, SegmentError, record_digest};

/// One chunk to seal.
pub(super) struct Job {
    pub(super) stream: Arc<StreamShared>,
    pub(super) sealer: Arc<SegmentSealer>,
    /// Position among all of the stream's records (the reorder key).
    pub(super) ordinal: u64,
    /// Record index within the segment (the SFrame CTR).
    pub(super) index: u64,
    pub(super) pts: u64,
    pub(super) flags: RecordFlags,
    /// The lease on the access unit, shared by its chunks.
    pub(super) packet: Arc<Packet>,
    pub(super) range: Range<usize>,
    pub(super) buf: PooledBuf,
    pub(super) frame: Option<FrameTag>,
    /// When it was queued for the workers (`None`: sealed where it was made).
    pub(super) queued_at: Option<Instant>,
}

/// Per-stream queues of `T` (jobs) served round robin.
pub(super) struct Scheduler<T = Job> {
    queues: Vec<Option<VecDeque<T>>>,
    /// The queue to look at first next time.
    next: usize,
    pub(super) shutdown: bool,
    /// A wake-up probe (engine start): the worker that takes it answers how long after
    /// `Instant` it ran.
    pub(super) probe: Option<(Instant, Sender<Duration>)>,
}

impl<T> Default for Scheduler<T> {
    fn default() -> Self {
        Scheduler {
            queues: Vec::new(),
            next: 0,
            shutdown: false,
            probe: None,
        }
    }
}

impl<T> Scheduler<T> {
    /// A queue for a new stream; returns its slot.
    pub(super) fn add_stream(&mut self) -> usize {
        if let Some(free) = self.queues.iter().position(Option::is_none) {
            self.queues[free] = Some(VecDeque::new());
            return free;
        }
        self.queues.push(Some(VecDeque::new()));
        self.queues.len() - 1
    }

    /// Forgets a stream's queue once its jobs are done (they are served until then).
    pub(super) fn remove_stream(&mut self, slot: usize) {
        if let Some(q) = self.queues.get_mut(slot)
            && q.as_ref().is_some_and(VecDeque::is_empty)
        {
            *q = None;
        }
    }

    pub(super) fn push(&mut self, slot: usize, job: T) {
        if let Some(Some(q)) = self.queues.get_mut(slot) {
            q.push_back(job);
        }
    }

    /// The next job of the stream in `slot`, if any (its source thread helping out).
    pub(super) fn pop_from(&mut self, slot: usize) -> Option<T> {
        self.queues.get_mut(slot)?.as_mut()?.pop_front()
    }

    /// The next job: from the first non-empty queue at or after `next`, wrapping.
    pub(super) fn pop(&mut self) -> Option<T> {
        let n = self.queues.len();
        for k in 0..n {
            let i = (self.next + k) % n;
            if let Some(job) = self.queues[i].as_mut().and_then(VecDeque::pop_front) {
                self.next = (i + 1) % n;
                return Some(job);
            }
        }
        None
    }
}

/// A seal worker: takes jobs until shutdown. The time a parked worker took to start a job
/// feeds the hand-off rule's wake-up cost.
pub(super) fn worker(shared: &Shared) {
    loop {
        let (job, parked) = {
            let mut sched = lock(&shared.sched);
            let mut parked = false;
            loop {
                if let Some(job) = sched.pop() {
                    break (job, parked);
                }
                if let Some((at, reply)) = sched.probe.take() {
                    let _ = reply.send(at.elapsed());
                }
                if sched.shutdown {
                    return;
                }
                sched = wait(&shared.work, sched);
                parked = true;
            }
        };
        if parked && let Some(at) = job.queued_at {
            shared.estimates.woke(at.elapsed());
        }
        run(job, &shared.estimates);
    }
}

/// Seals one chunk: the plaintext is read once from the lease and the record written once
/// into the job's pool buffer. Its cost per byte feeds the hand-off rule.
pub(super) fn run(job: Job, estimates: &Estimates) {
    let Job {
        stream,
        sealer,
        ordinal,
        index,
        pts,
        flags,
        packet,
        range,
        buf,
        frame,
        queued_at: _,
    } = job;
    let sealed = seal(
        &sealer,
        Chunk {
            ordinal,
            index,
            pts,
            flags,
            plaintext: packet.data().get(range),
            frame,
        },
        buf,
        estimates,
    );
    // The last chunk of an access unit gives its buffer back to the encoder here.
    drop(packet);
    match sealed {
        Ok(sealed) => stream.complete(sealed),
        Err(e) => stream.fail(e.into()),
    }
}

/// What [`seal`] needs of one chunk besides its sealer and buffer.
pub(super) struct Chunk<'a> {
    pub(super) ordinal: u64,
    pub(super) index: u64,
    pub(super) pts: u64,
    pub(super) flags: RecordFlags,
    /// `None` if the range was not inside its packet (cannot happen: the chunker cut it).
    pub(super) plaintext: Option<&'a [u8]>,
    pub(super) frame: Option<FrameTag>,
}

/// Seals and hashes one chunk into `buf`, timing the two (the `kernel` stage), and feeds
/// the cost per byte to the hand-off rule. The worker or source thread that seals a record
/// also hashes it, while its bytes are in cache (FORMAT.md §4): the stream's writer only
/// folds the digests in order.
pub(super) fn seal(
    sealer: &SegmentSealer,
    chunk: Chunk<'_>,
    mut buf: PooledBuf,
    estimates: &Estimates,
) -> Result<Sealed, SegmentError> {
    let started = Instant::now();
    let plaintext = chunk
        .plaintext
        .ok_or(SegmentError::Malformed("chunk outside its packet"))?;
    let len = sealer.seal_record_into(
        chunk.index,
        chunk.pts,
        chunk.flags,
        plaintext,
        buf.bytes_mut(),
    )?;
    let digest = record_digest(&buf.bytes()[..len]);
    let sealed_at = Instant::now();
    estimates.sealed(len, sealed_at - started);
    Ok(Sealed {
        ordinal: chunk.ordinal,
        buf,
        len,
        digest,
        kernel: sealed_at - started,
        sealed_at,
        frame: chunk.frame,
        closing: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(pushes: &[(usize, usize)]) -> Vec<usize> {
        let mut s = Scheduler::<usize>::default();
        for &(slot, count) in pushes {
            while s.queues.len() <= slot {
                s.add_stream();
            }
            for _ in 0..count {
                s.push(slot, slot);
            }
        }
        std::iter::from_fn(|| s.pop()).collect()
    }

    #[test]
    fn round_robin_interleaves_streams() {
        assert_eq!(served(&[(0, 4), (1, 2)]), [0, 1, 0, 1, 0, 0]);
        assert_eq!(served(&[(0, 1), (1, 1), (2, 3)]), [0, 1, 2, 2, 2]);
        // A flood queued first does not delay the other stream's first job.
        assert_eq!(served(&[(1, 50), (0, 1)])[..2], [0, 1]);
    }

    #[test]
    fn pop_from_takes_only_that_streams_jobs_in_order() {
        let mut s = Scheduler::<(usize, u32)>::default();
        let (a, b) = (s.add_stream(), s.add_stream());
        s.push(a, (a, 1));
        s.push(b, (b, 1));
        s.push(a, (a, 2));
        assert_eq!(s.pop_from(a), Some((a, 1)));
        assert_eq!(s.pop_from(a), Some((a, 2)));
        assert_eq!(s.pop_from(a), None);
        assert_eq!(s.pop_from(7), None);
        s.remove_stream(a);
        assert_eq!(s.pop_from(a), None);
        assert_eq!(s.pop(), Some((b, 1)));
    }

    #[test]
    fn slots_are_reused() {
        let mut s = Scheduler::<usize>::default();
        assert_eq!(s.add_stream(), 0);
        assert_eq!(s.add_stream(), 1);
        s.remove_stream(0);
        assert_eq!(s.add_stream(), 0);
        assert!(s.pop().is_none());
    }
}
