//! Range-checked parsers for the numeric flags, so that clap refuses an out-of-range value
//! with a usage error (exit 2) that names the flag and its range, before any command runs.
//!
//! Every duration in seconds goes through [`seconds`]: `Duration::from_secs_f64` aborts the
//! process on a negative, NaN, infinite or huge value, so no value that could reach it may
//! get past the parser.

use std::ops::RangeInclusive;

/// A parser for a number of seconds in `(min, max]` when `min_exclusive`, else `[min, max]`.
/// NaN and infinities are refused.
pub fn seconds(
    min: f64,
    min_exclusive: bool,
    max: f64,
) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync + 'static {
    move |s: &str| {
        let v: f64 = s
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a number of seconds"))?;
        let low_ok = if min_exclusive { v > min } else { v >= min };
        if !(v.is_finite() && low_ok && v <= max) {
            let low = if min_exclusive {
                "more than"
            } else {
                "at least"
            };
            return Err(format!("must be {low} {min} and at most {max} seconds"));
        }
        Ok(v)
    }
}

/// A positive frame rate, at most [`MAX_FPS`].
pub fn fps(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a frame rate"))?;
    if !(v.is_finite() && v > 0.0 && v <= MAX_FPS) {
        return Err(format!("must be more than 0 and at most {MAX_FPS}"));
    }
    Ok(v)
}

/// A parser for an integer in `range`.
pub fn int<T>(
    range: RangeInclusive<T>,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy + Send + Sync + 'static,
{
    move |s: &str| {
        let v: T = s
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a whole number"))?;
        if !range.contains(&v) {
            return Err(format!(
                "must be between {} and {}",
                range.start(),
                range.end()
            ));
        }
        Ok(v)
    }
}

/// `run --duration`: about 31 years, far beyond any recording yet far below where a
/// `Duration` overflows.
pub const MAX_RUN_SECONDS: f64 = 1e9;
/// `--segment-seconds`: a day.
pub const MAX_SEGMENT_SECONDS: f64 = 86_400.0;
/// Timeouts, retry delays and the upload grace: a day.
pub const MAX_WAIT_SECONDS: f64 = 86_400.0;
/// `demo --duration` and `bench --duration`.
pub const MAX_DEMO_SECONDS: f64 = 3600.0;
/// `bench kernels --seconds`, per point.
pub const MAX_KERNEL_BENCH_SECONDS: f64 = 60.0;
/// Highest frame rate a `file:` source may be given.
pub const MAX_FPS: f64 = 1000.0;
/// Seal workers and bench streams.
pub const MAX_THREADS: usize = 1024;
/// Uploads in flight at once.
pub const MAX_UPLOAD_CONCURRENCY: usize = 64;
/// Bench streams.
pub const MAX_BENCH_STREAMS: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_refuses_what_would_abort_duration_conversion() {
        let p = seconds(0.0, true, 10.0);
        for bad in [
            "nan", "NaN", "inf", "-inf", "-1", "0", "1e30", "1e300", "x", "",
        ] {
            assert!(p(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(p("10"), Ok(10.0));
        assert_eq!(seconds(0.0, false, 1.0)("0"), Ok(0.0));
    }

    #[test]
    fn int_checks_the_range() {
        let p = int(1usize..=4);
        assert!(p("0").is_err() && p("5").is_err() && p("-1").is_err());
        assert_eq!(p("4"), Ok(4));
    }
}
