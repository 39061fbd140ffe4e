//! When a frame is worth handing to the seal workers: measured costs, not a fixed size.
//!
//! Handing a chunk to a parked worker costs a wake-up (a futex wake, a reschedule, cold
//! caches on the other core): tens of µs on a VM, a few µs on a board. Sealing a frame on the
//! source thread costs its bytes times the seal-and-hash cost per byte. A frame whose sealing
//! costs no more than one wake-up gains nothing from the workers and is sealed where it was
//! pushed; a larger one is split over them.
//!
//! Both costs are measured: the per-byte cost by timing AES-GCM and BLAKE3 on this thread at
//! engine start and then from every record sealed (a running average), the wake-up by
//! probing the parked workers at engine start and then from every job a parked worker is
//! woken for.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use camseal_kernels::{Aead, NONCE_LEN, Suite};

/// The two measured costs the hand-off rule compares (the module's docs give the rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HandOffCosts {
    /// Sealing and hashing cost, in picoseconds per plaintext byte.
    pub seal_ps_per_byte: u64,
    /// Time from queuing a job to a parked worker starting it, in nanoseconds.
    pub wake_ns: u64,
}

impl HandOffCosts {
    /// The largest frame, in bytes, that the source thread seals itself: the one whose
    /// sealing costs one wake-up.
    pub fn inline_max_bytes(&self) -> u64 {
        self.wake_ns.saturating_mul(1000) / self.seal_ps_per_byte.max(1)
    }
}

/// The running estimates, shared by every thread of an engine. Updates race benignly: a
/// lost sample only slows the average down.
pub(super) struct Estimates {
    seal_ps_per_byte: AtomicU64,
    wake_ns: AtomicU64,
}

impl Estimates {
    /// Starts from the seal cost measured on this thread now; the wake-up cost is set by
    /// [`set_wake`](Estimates::set_wake) once the workers run.
    pub(super) fn calibrate() -> Estimates {
        Estimates {
            seal_ps_per_byte: AtomicU64::new(measure_seal_ps_per_byte()),
            wake_ns: AtomicU64::new(DEFAULT_WAKE_NS),
        }
    }

    pub(super) fn costs(&self) -> HandOffCosts {
        HandOffCosts {
            seal_ps_per_byte: self.seal_ps_per_byte.load(Ordering::Relaxed),
            wake_ns: self.wake_ns.load(Ordering::Relaxed),
        }
    }

    /// Whether a frame of `bytes` is sealed on the source thread.
    pub(super) fn inline(&self, bytes: usize) -> bool {
        (bytes as u64).saturating_mul(self.seal_ps_per_byte.load(Ordering::Relaxed))
            <= self.wake_ns.load(Ordering::Relaxed).saturating_mul(1000)
    }

    /// Sets the wake-up cost (the start-up probe's median).
    pub(super) fn set_wake(&self, d: Duration) {
        self.wake_ns.store(nanos(d).max(1), Ordering::Relaxed);
    }

    /// One record of `bytes` sealed and hashed in `d`. Small records are left out: their
    /// cost is mostly per call, not per byte.
    pub(super) fn sealed(&self, bytes: usize, d: Duration) {
        if bytes < MIN_SAMPLE_BYTES {
            return;
        }
        let sample = nanos(d).saturating_mul(1000) / bytes as u64;
        update(&self.seal_ps_per_byte, sample);
    }

    /// A parked worker started a job `d` after it was queued.
    pub(super) fn woke(&self, d: Duration) {
        update(&self.wake_ns, nanos(d));
    }
}

/// Moves the average `avg` 1/8 of the way to `sample`, with `sample` capped at 4× the
/// average, so one descheduled sample cannot swing the rule.
fn update(avg: &AtomicU64, sample: u64) {
    let old = avg.load(Ordering::Relaxed).max(1);
    let sample = sample.clamp(1, old.saturating_mul(4));
    let new = old - old / 8 + sample / 8;
    avg.store(new.max(1), Ordering::Relaxed);
}

/// Seals and hashes [`CALIBRATION_BYTES`] a few times with a throwaway key, the work of
/// one record, and keeps the fastest round (the least disturbed by other threads).
fn measure_seal_ps_per_byte() -> u64 {
    let Ok(aead) = Aead::new(Suite::Aes128Gcm, &[0x42; 16]) else {
        return DEFAULT_SEAL_PS_PER_BYTE;
    };
    let input = vec![0x5au8; CALIBRATION_BYTES];
    let mut out = vec![0u8; CALIBRATION_BYTES];
    let mut best = u64::MAX;
    for _ in 0..CALIBRATION_ROUNDS {
        let started = Instant::now();
        if aead
            .seal_to(&[7; NONCE_LEN], &[0; 41], &input, &mut out)
            .is_err()
        {
            return DEFAULT_SEAL_PS_PER_BYTE;
        }
        std::hint::black_box(blake3::hash(&out));
        best = best.min(nanos(started.elapsed()));
    }
    (best.saturating_mul(1000) / CALIBRATION_BYTES as u64).max(1)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Record sizes below this do not update the per-byte cost.
const MIN_SAMPLE_BYTES: usize = 4096;
/// One calibration round: the size of a typical 1080p frame's record.
const CALIBRATION_BYTES: usize = 32 << 10;
const CALIBRATION_ROUNDS: usize = 8;
/// Used only if the calibration cannot build a key (it always can): a slow core.
const DEFAULT_SEAL_PS_PER_BYTE: u64 = 1000;
/// Until the probe has run: about a wake-up on a VM.
const DEFAULT_WAKE_NS: u64 = 30_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_inline_when_sealing_it_costs_no_more_than_a_wake_up() {
        let e = Estimates {
            seal_ps_per_byte: AtomicU64::new(500),
            wake_ns: AtomicU64::new(20_000),
        };
        assert_eq!(e.costs().inline_max_bytes(), 40_000);
        assert!(e.inline(40_000));
        assert!(!e.inline(40_001));
        // A slower wake-up moves the limit up.
        e.set_wake(Duration::from_micros(40));
        assert!(e.inline(80_000));
        assert!(!e.inline(80_001));
    }

    #[test]
    fn running_averages_move_slowly_and_ignore_small_records() {
        let e = Estimates {
            seal_ps_per_byte: AtomicU64::new(400),
            wake_ns: AtomicU64::new(10_000),
        };
        e.sealed(100, Duration::from_millis(1));
        assert_eq!(e.costs().seal_ps_per_byte, 400);
        // 64 KiB in 1 s: capped at 4× the average, then 1/8 of the way.
        e.sealed(64 << 10, Duration::from_secs(1));
        assert_eq!(e.costs().seal_ps_per_byte, 400 - 50 + 200);
        e.woke(Duration::from_micros(2));
        assert_eq!(e.costs().wake_ns, 10_000 - 1250 + 250);
    }

    #[test]
    fn calibration_gives_a_positive_cost() {
        assert!(Estimates::calibrate().costs().seal_ps_per_byte >= 1);
    }
}
