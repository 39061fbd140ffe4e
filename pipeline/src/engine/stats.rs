//! Per-frame latency, one `hdrhistogram` per pipeline stage.
//!
//! Every frame gets a timestamp when its packet left the encoder (`dequeued`, given by the
//! caller), and the engine adds: all of its chunks sealed, its last record appended in
//! order to its segment, that record hashed and written to the segment's output, and its
//! segment made durable. Each stage's histogram holds the time from `dequeued` to that stage,
//! in nanoseconds. One more histogram holds the time spent in the AEAD call alone per frame
//! (summed over the frame's chunks).

use std::time::Duration;

use hdrhistogram::Histogram;

/// The stages, in pipeline order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// The seal calls of the frame's chunks alone (CPU time in the kernel, not wall time
    /// since dequeue).
    Kernel,
    /// Dequeue to the last of the frame's chunks sealed.
    Sealed,
    /// Dequeue to the frame's last record appended, in order, to its segment: its bytes and
    /// place in the segment are final and it is queued to the stream's segment writer.
    Appended,
    /// Dequeue to the frame's last record added to the segment's records hash and written to
    /// the segment's output (for a directory, `write(2)` into the page cache).
    Written,
    /// Dequeue to the frame's segment published (fsynced and renamed, for a directory).
    Durable,
}

impl Stage {
    /// All stages, in pipeline order.
    pub const ALL: [Stage; 5] = [
        Stage::Kernel,
        Stage::Sealed,
        Stage::Appended,
        Stage::Written,
        Stage::Durable,
    ];

    /// Name for reports.
    pub const fn name(self) -> &'static str {
        match self {
            Stage::Appended => "appended",
            Stage::Durable => "durable",
            Stage::Kernel => "kernel",
            Stage::Sealed => "sealed",
            Stage::Written => "written",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// Histograms of per-frame latency per stage, in nanoseconds, and of the pipeline's
/// overhead per frame.
#[derive(Clone, Debug)]
pub struct StageLatencies {
    by_stage: [Histogram<u64>; Stage::ALL.len()],
    overhead: Histogram<u64>,
    writer_busy: Duration,
}

impl Default for StageLatencies {
    fn default() -> StageLatencies {
        StageLatencies {
            by_stage: std::array::from_fn(|_| new_histogram()),
            overhead: new_histogram(),
            writer_busy: Duration::ZERO,
        }
    }
}

impl StageLatencies {
    /// The histogram of `stage`.
    pub fn histogram(&self, stage: Stage) -> &Histogram<u64> {
        &self.by_stage[stage.index()]
    }

    /// Records one frame's time for `stage`.
    pub fn record(&mut self, stage: Stage, d: Duration) {
        let ns = d.as_nanos().clamp(1, u128::from(MAX_NS)) as u64;
        // In range by the clamp above, so recording cannot fail.
        let _ = self.by_stage[stage.index()].record(ns);
    }

    /// Per frame, the time from dequeue to appended that was not spent in the AEAD calls:
    /// the pipeline's own cost for that frame (negative differences, possible when a frame's
    /// chunks were sealed in parallel, count as zero).
    pub fn overhead(&self) -> &Histogram<u64> {
        &self.overhead
    }

    /// Records one frame's [`overhead`](StageLatencies::overhead).
    pub fn record_overhead(&mut self, d: Duration) {
        let ns = d.as_nanos().clamp(1, u128::from(MAX_NS)) as u64;
        // In range by the clamp above, so recording cannot fail.
        let _ = self.overhead.record(ns);
    }

    /// Time the segment writers spent hashing and writing records (summed over streams).
    pub fn writer_busy(&self) -> Duration {
        self.writer_busy
    }

    /// Adds to [`writer_busy`](StageLatencies::writer_busy).
    pub fn add_writer_busy(&mut self, d: Duration) {
        self.writer_busy = self.writer_busy.saturating_add(d);
    }

    /// Adds another set of histograms (another stream) into this one.
    pub fn merge(&mut self, other: &StageLatencies) {
        self.writer_busy = self.writer_busy.saturating_add(other.writer_busy);
        let theirs = other.by_stage.iter().chain([&other.overhead]);
        for (mine, theirs) in self
            .by_stage
            .iter_mut()
            .chain([&mut self.overhead])
            .zip(theirs)
        {
            // Same bounds on both sides, so adding cannot fail.
            let _ = mine.add(theirs);
        }
    }
}

fn new_histogram() -> Histogram<u64> {
    // 1 ns .. 1 hour at 3 significant digits: fixed bounds, valid by construction.
    Histogram::new_with_bounds(1, MAX_NS, 3).expect("valid histogram bounds")
}

/// An hour, in nanoseconds: the largest latency a histogram holds.
const MAX_NS: u64 = 3_600_000_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_merges() {
        let mut a = StageLatencies::default();
        a.record(Stage::Kernel, Duration::from_micros(5));
        a.record(Stage::Kernel, Duration::ZERO);
        let mut b = StageLatencies::default();
        b.record(Stage::Kernel, Duration::from_secs(10_000));
        a.merge(&b);
        let h = a.histogram(Stage::Kernel);
        assert_eq!(h.len(), 3);
        assert_eq!(h.min(), 1);
        assert!(h.max() >= MAX_NS - MAX_NS / 1000);
        assert_eq!(a.histogram(Stage::Sealed).len(), 0);
        a.record(Stage::Written, Duration::from_micros(7));
        b.record_overhead(Duration::from_micros(3));
        a.merge(&b);
        assert_eq!(a.overhead().len(), 1);
        assert_eq!(a.histogram(Stage::Kernel).len(), 4);
        assert_eq!(a.histogram(Stage::Written).len(), 1);
        assert_eq!(a.histogram(Stage::Appended).len(), 0);
        for (i, stage) in Stage::ALL.into_iter().enumerate() {
            assert_eq!(stage.index(), i);
        }
    }
}
