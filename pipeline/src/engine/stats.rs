//! Per-frame latency, one `hdrhistogram` per pipeline stage.
//!
//! Every frame gets a timestamp when its packet left the encoder (`dequeued`, given by the
//! caller), and the engine adds: all of its chunks sealed, its last record appended in
//! order to the segment, and its segment made durable. Each stage's histogram holds the time
//! from `dequeued` to that stage, in nanoseconds. A fourth histogram holds the time spent in
//! the AEAD call alone per frame (summed over the frame's chunks).

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
    /// Dequeue to the last of the frame's records appended to its segment, in order.
    Appended,
    /// Dequeue to the frame's segment published (fsynced and renamed, for a directory).
    Durable,
}

impl Stage {
    /// All stages, in pipeline order.
    pub const ALL: [Stage; 4] = [
        Stage::Kernel,
        Stage::Sealed,
        Stage::Appended,
        Stage::Durable,
    ];

    /// Name for reports.
    pub const fn name(self) -> &'static str {
        match self {
            Stage::Appended => "appended",
            Stage::Durable => "durable",
            Stage::Kernel => "kernel",
            Stage::Sealed => "sealed",
        }
    }
}

/// Histograms of per-frame latency per stage, in nanoseconds.
#[derive(Clone, Debug)]
pub struct StageLatencies {
    kernel: Histogram<u64>,
    sealed: Histogram<u64>,
    appended: Histogram<u64>,
    durable: Histogram<u64>,
}

impl Default for StageLatencies {
    fn default() -> StageLatencies {
        StageLatencies {
            kernel: new_histogram(),
            sealed: new_histogram(),
            appended: new_histogram(),
            durable: new_histogram(),
        }
    }
}

impl StageLatencies {
    /// The histogram of `stage`.
    pub fn histogram(&self, stage: Stage) -> &Histogram<u64> {
        match stage {
            Stage::Appended => &self.appended,
            Stage::Durable => &self.durable,
            Stage::Kernel => &self.kernel,
            Stage::Sealed => &self.sealed,
        }
    }

    /// Records one frame's time for `stage`.
    pub fn record(&mut self, stage: Stage, d: Duration) {
        let ns = d.as_nanos().clamp(1, u128::from(MAX_NS)) as u64;
        let h = match stage {
            Stage::Appended => &mut self.appended,
            Stage::Durable => &mut self.durable,
            Stage::Kernel => &mut self.kernel,
            Stage::Sealed => &mut self.sealed,
        };
        // In range by the clamp above, so recording cannot fail.
        let _ = h.record(ns);
    }

    /// Adds another set of histograms (another stream) into this one.
    pub fn merge(&mut self, other: &StageLatencies) {
        for stage in Stage::ALL {
            let (mine, theirs) = match stage {
                Stage::Appended => (&mut self.appended, &other.appended),
                Stage::Durable => (&mut self.durable, &other.durable),
                Stage::Kernel => (&mut self.kernel, &other.kernel),
                Stage::Sealed => (&mut self.sealed, &other.sealed),
            };
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
    }
}
