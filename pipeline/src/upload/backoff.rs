//! Pure timing decisions of the uploader: retry delays and the bandwidth cap.

use std::time::Duration;

/// Exponential backoff with full jitter: attempt `n` (1 for the first retry) waits a
/// uniformly random time in `[0, min(max, base * 2^(n-1))]`. Full jitter spreads the
/// retries of many cameras that lost the same uplink at the same moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first retry.
    pub base: Duration,
    /// The largest ceiling.
    pub max: Duration,
}

impl Backoff {
    /// The ceiling of retry `attempt` (1-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let shift = attempt.saturating_sub(1).min(32);
        self.base
            .checked_mul(1u32 << shift.min(31))
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// The delay before retry `attempt`, given a uniformly random `random`.
    pub fn delay(&self, attempt: u32, random: u64) -> Duration {
        let ceiling = self.ceiling(attempt).as_nanos().min(u128::from(u64::MAX)) as u64;
        Duration::from_nanos(random % ceiling.saturating_add(1))
    }
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            base: Duration::from_millis(500),
            max: Duration::from_secs(60),
        }
    }
}

/// A token bucket for `--upload-max-bytes-per-sec`, shared by every upload of a process.
/// Time is passed in, as nanoseconds from any fixed origin.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate: u64,
    burst: u64,
    tokens: f64,
    last_ns: u64,
}

impl TokenBucket {
    /// `rate` bytes per second, with bursts of up to `burst` bytes; starts full at `now_ns`.
    pub fn new(rate: u64, burst: u64, now_ns: u64) -> TokenBucket {
        let rate = rate.max(1);
        let burst = burst.max(1);
        TokenBucket {
            rate,
            burst,
            tokens: burst as f64,
            last_ns: now_ns,
        }
    }

    /// Takes `n` bytes at `now_ns` and returns how long the caller must wait before sending
    /// them (zero if the bucket held enough). The debt is kept, so waiters queue fairly.
    pub fn take(&mut self, now_ns: u64, n: u64) -> Duration {
        let elapsed = now_ns.saturating_sub(self.last_ns);
        self.last_ns = self.last_ns.max(now_ns);
        self.tokens =
            (self.tokens + elapsed as f64 * self.rate as f64 / 1e9).min(self.burst as f64);
        self.tokens -= n as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate as f64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_up_to_the_maximum() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        assert_eq!(b.ceiling(1), Duration::from_millis(100));
        assert_eq!(b.ceiling(2), Duration::from_millis(200));
        assert_eq!(b.ceiling(5), Duration::from_millis(1600));
        assert_eq!(b.ceiling(6), Duration::from_secs(2));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(2));
        for r in [0, 1, 12345, u64::MAX] {
            assert!(b.delay(3, r) <= Duration::from_millis(400));
        }
        // Full jitter: the whole range is used, down to zero.
        assert_eq!(b.delay(3, 0), Duration::ZERO);
        assert_eq!(b.delay(3, 400_000_000), Duration::from_millis(400));
    }

    #[test]
    fn bucket_paces_to_the_rate() {
        let mut t = TokenBucket::new(1000, 100, 0);
        assert_eq!(t.take(0, 100), Duration::ZERO);
        // 500 more bytes at once: half a second of debt.
        assert_eq!(t.take(0, 500), Duration::from_millis(500));
        // A second later the debt is paid and 500 tokens came in, capped at the burst.
        assert_eq!(t.take(1_500_000_000, 100), Duration::ZERO);
        assert_eq!(t.take(1_500_000_000, 100), Duration::from_millis(100));
    }
}
