//! `--since TIME` / `--until TIME`: footage chosen by signed recording time, the camera
//! wallclock each segment header carries (signed with the header). TIME is RFC 3339
//! (`2026-12-06T01:00:00Z`, `...+01:00`, fractions of a second allowed) or relative to now
//! (`-2h`, `-30m`, `-90s`, `-1d`, or `now`).

use camseal::footage::SegmentFile;

/// The clap value parser of a TIME argument (Unix milliseconds): a bad TIME is a usage
/// error, reported (exit 2) before any footage is read.
pub fn time_arg(text: &str) -> Result<u64, String> {
    parse_time(text, crate::verify::unix_ms())
}

/// `fetch --since/--until`: a bare integer is a sequence number (what these flags took
/// first), anything else a TIME.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqOrTime {
    /// A segment sequence number.
    Seq(u64),
    /// Unix milliseconds by the camera's signed clock.
    Time(u64),
}

/// The clap value parser of [`SeqOrTime`].
pub fn seq_or_time_arg(text: &str) -> Result<SeqOrTime, String> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .map(SeqOrTime::Seq)
            .map_err(|_| format!("{text:?} is too large for a sequence number"));
    }
    time_arg(text).map(SeqOrTime::Time)
}

/// A TIME argument as Unix milliseconds, `now_ms` being the present.
pub fn parse_time(text: &str, now_ms: u64) -> Result<u64, String> {
    let bad = || {
        format!(
            "{text:?} is not a time: give RFC 3339 (2026-12-06T01:00:00Z) or a relative time like -2h, -30m, -1d"
        )
    };
    if text == "now" {
        return Ok(now_ms);
    }
    if let Some(rel) = text.strip_prefix('-') {
        let unit = rel.chars().last().ok_or_else(bad)?;
        let scale: u64 = match unit {
            's' => 1_000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            _ => return Err(bad()),
        };
        let n: u64 = rel[..rel.len() - 1].parse().map_err(|_| bad())?;
        return Ok(now_ms.saturating_sub(n.saturating_mul(scale)));
    }
    parse_rfc3339(text).ok_or_else(bad)
}

fn parse_rfc3339(t: &str) -> Option<u64> {
    let b = t.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = t.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut i = 19;
    let mut ms = 0i64;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = t.get(start..i)?;
        if frac.is_empty() {
            return None;
        }
        ms = format!("{frac:0<3}")[..3].parse().ok()?;
    }
    let offset_min = match t.get(i..)? {
        "Z" | "z" => 0,
        zone if zone.len() == 6
            && matches!(zone.as_bytes()[0], b'+' | b'-')
            && zone.as_bytes()[3] == b':' =>
        {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            sign * (oh * 60 + om)
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + s - offset_min * 60;
    u64::try_from(secs * 1000 + ms).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Keeps the segments (sorted by stream and seq, one stream) whose recording overlaps
/// `[since, until]`: a segment runs from its signed open time to the next one's, so the
/// segment open when `since` falls is kept. Returns how many were left out.
pub fn select(files: &mut Vec<SegmentFile>, since: Option<u64>, until: Option<u64>) -> usize {
    let before = files.len();
    let opened: Vec<u64> = files.iter().map(|f| f.header.wallclock_ms).collect();
    let mut i = 0;
    files.retain(|_| {
        let start = opened[i];
        let next = opened.get(i + 1).copied();
        i += 1;
        let ends_after_since = since.is_none_or(|s| next.is_none_or(|n| n > s));
        let starts_before_until = until.is_none_or(|u| start <= u);
        ends_after_since && starts_before_until
    });
    before - files.len()
}

/// The segments of one stream (`n` of them, sorted by seq) that [`select`] would keep for
/// `[since, until]`, found by binary search over their signed open times: `open(i)` reads
/// segment `i`'s, and is called O(log n) times (never twice for one segment). Open times
/// are taken not to decrease with seq, as a camera's clock does between steps.
pub fn window<E>(
    n: usize,
    since: Option<u64>,
    until: Option<u64>,
    open: &mut dyn FnMut(usize) -> Result<u64, E>,
) -> Result<std::ops::Range<usize>, E> {
    let mut known = std::collections::HashMap::new();
    // The first segment that opened after `t` (n if none did).
    let mut first_after = |t: u64| -> Result<usize, E> {
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let at = match known.get(&mid) {
                Some(&at) => at,
                None => {
                    let at = open(mid)?;
                    known.insert(mid, at);
                    at
                }
            };
            if at > t {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Ok(lo)
    };
    // The segment open when `since` falls is kept: the one before the first that opened
    // after it.
    let start = match since {
        Some(s) => first_after(s)?.saturating_sub(1),
        None => 0,
    };
    let end = match until {
        Some(u) => first_after(u)?,
        None => n,
    };
    Ok(start..end.max(start))
}

/// `--since`/`--until`: keeps the segments recorded in the window (by their signed times)
/// and returns the window's first seq, for the chain check, when the times chose one.
pub fn select_by_time(
    files: &mut Vec<camseal::footage::SegmentFile>,
    since: Option<u64>,
    until: Option<u64>,
) -> anyhow::Result<Option<u64>> {
    if since.is_none() && until.is_none() {
        return Ok(None);
    }
    if files
        .iter()
        .map(|f| f.header.stream_id)
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        > 1
    {
        anyhow::bail!(crate::error::Usage(
            "--since/--until choose within one stream: add --stream N".to_owned()
        ));
    }
    crate::timesel::select(files, since, until);
    match files.first() {
        // Only a lower bound moves where the window starts.
        Some(f) => Ok(since.map(|_| f.header.segment_seq)),
        None => anyhow::bail!(
            "no segment was recorded in the --since/--until window (by the camera's signed clock)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`select`]'s rule, spelled out per segment.
    fn kept(opens: &[u64], since: Option<u64>, until: Option<u64>) -> Vec<usize> {
        (0..opens.len())
            .filter(|&i| {
                let next = opens.get(i + 1);
                since.is_none_or(|s| next.is_none_or(|&n| n > s))
                    && until.is_none_or(|u| opens[i] <= u)
            })
            .collect()
    }

    #[test]
    fn the_binary_search_keeps_what_select_keeps_in_few_reads() {
        for n in [0usize, 1, 2, 3, 7, 100, 1000] {
            // Two-second segments, one repeated open time (a clock that stood still).
            let opens: Vec<u64> = (0..n as u64)
                .map(|i| 1000 + 2000 * i - (i == 3) as u64 * 2000)
                .collect();
            let last = opens.last().copied().unwrap_or(0);
            let times = [
                None,
                Some(0),
                Some(1000),
                Some(2999),
                Some(3000),
                Some(last),
                Some(last + 5000),
            ];
            for since in times {
                for until in times {
                    let mut reads = 0;
                    let range = window(n, since, until, &mut |i| -> Result<u64, ()> {
                        reads += 1;
                        Ok(opens[i])
                    })
                    .unwrap();
                    let got: Vec<usize> = range.collect();
                    assert_eq!(
                        got,
                        kept(&opens, since, until),
                        "n {n} since {since:?} until {until:?}"
                    );
                    let log = usize::BITS - n.leading_zeros();
                    assert!(
                        reads <= 2 * log as usize + 2,
                        "{reads} reads for {n} segments"
                    );
                }
            }
        }
    }

    #[test]
    fn fetch_takes_a_bare_integer_as_a_seq_and_anything_else_as_a_time() {
        assert_eq!(seq_or_time_arg("42"), Ok(SeqOrTime::Seq(42)));
        assert_eq!(
            seq_or_time_arg("1970-01-01T00:00:01Z"),
            Ok(SeqOrTime::Time(1000))
        );
        assert!(matches!(seq_or_time_arg("-2h"), Ok(SeqOrTime::Time(_))));
        assert!(seq_or_time_arg("yesterday-ish").is_err());
        assert!(seq_or_time_arg("99999999999999999999999").is_err());
    }

    #[test]
    fn times_parse_as_rfc3339_or_relative() {
        assert_eq!(parse_time("1970-01-01T00:00:01Z", 0), Ok(1000));
        assert_eq!(
            parse_time("2026-12-06T01:21:30.023Z", 0),
            Ok(1_796_520_090_023)
        );
        assert_eq!(
            parse_time("2026-12-06T02:21:30.023+01:00", 0),
            parse_time("2026-12-06T01:21:30.023Z", 0)
        );
        assert_eq!(parse_time("-2h", 10_000_000), Ok(10_000_000 - 7_200_000));
        assert_eq!(parse_time("-30m", 10_000_000), Ok(10_000_000 - 1_800_000));
        assert_eq!(parse_time("now", 42), Ok(42));
        for bad in [
            "",
            "-",
            "-2x",
            "2h",
            "2026-13-01T00:00:00Z",
            "2026-12-06T01:00:00",
            "yesterday",
        ] {
            assert!(parse_time(bad, 1).is_err(), "{bad}");
        }
    }
}
