//! `camseal verify`: check signatures, chain and completeness without any decryption key,
//! and, given the camera's stream head, that no newer segment is withheld.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use camseal::footage::{
    Coverage, FootageError, SegmentFile, SegmentReport, SegmentStatus, collect_paths, describe_gap,
    footage_verdict, load_headers, read_trailer, verify_footage_with,
};
use camseal::keys::CameraPublic;
use camseal::segment::camera_id;
use camseal::segment::head::{self, GivenSegment, HeadMatch, StreamHead};

use crate::cli::VerifyArgs;
use crate::error::{exit_code_for, footage_code};

pub fn verify(args: VerifyArgs) -> Result<ExitCode> {
    let camera = read_camera_pub(&args.camera)?;
    let paths = collect_paths(&args.inputs)?;
    let mut files = load_headers(&paths, Some(&camera))?;
    if let Some(stream) = args.stream {
        camseal::footage::select_stream(&mut files, stream)?;
    }
    let window = crate::timesel::select_by_time(&mut files, args.since, args.until)?;
    let from_seq = args.from_seq.or(window);
    let progress = crate::progress::Progress::for_files("verify", &files, args.quiet);
    let (results, chain) = verify_footage_with(&files, from_seq.unwrap_or(0), |f| {
        progress.segment_done(crate::progress::file_len(&f.path))
    });
    progress.finish();
    for (file, result) in files.iter().zip(&results) {
        match result {
            Ok(r) => print_segment(file, r),
            Err(e) => println!(
                "FAILED  seq {:>6}  stream {}  {}",
                file.header.segment_seq, file.header.stream_id, e
            ),
        }
    }
    let reports: Vec<SegmentReport> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .cloned()
        .collect();
    let coverage = Coverage::of(&files, &reports);
    if let Some(c) = &coverage {
        print_coverage(c, from_seq);
    }
    let verdict = footage_verdict(&results, &chain);
    match (&chain, verdict) {
        (Ok(()), _) => println!("chain: OK ({} segments linked)", files.len()),
        (Err(e), _) => println!("chain: BROKEN: {e}"),
    }
    let head = head_file(&args, &files).map(|path| check_head(&path, &camera, &files));
    if let Some(h) = &head {
        print_head(h);
    }
    let verified = reports.iter().filter(|r| !r.incomplete()).count();
    println!(
        "camera {}: {} of {} segments verified whole",
        camera_id(&camera),
        verified,
        files.len()
    );
    let head_error = match (verdict, head.as_ref().map(|h| &h.result)) {
        (Ok(()), Some(Err(e))) => Some(e),
        _ => None,
    };
    let code = match (verdict, head_error) {
        (Err(e), _) => footage_code(e),
        (Ok(()), Some(e)) => exit_code_for(e),
        (Ok(()), None) => 0,
    };
    if let Some(json_path) = &args.json {
        let mut doc = verdict_json(&files, &results, coverage.as_ref(), verdict, code);
        if let Some(h) = &head {
            doc["head"] = head_json(h);
            if let Some(e) = head_error {
                doc["result"] = serde_json::Value::String(format!("{e:#}"));
            }
        }
        write_json(json_path, &doc)?;
    }
    if verdict.is_ok()
        && let Some(HeadCheck { result: Err(e), .. }) = head
    {
        crate::error::report(&e.context("verification failed"));
        return Ok(ExitCode::from(code));
    }
    match verdict {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("error: verification failed: {e}");
            if let Some(hint) = crate::error::hint_for_code(code) {
                eprintln!("hint: {hint}");
            }
            Ok(ExitCode::from(code))
        }
    }
}

/// A stream head checked against the given segments.
struct HeadCheck {
    path: PathBuf,
    /// The sequence number it names, once its signature and camera are checked.
    seq: Option<u64>,
    /// Its age by this machine's clock, once checked (`None`: unknown).
    age_ms: Option<i64>,
    /// The camera's clock when it was written (0: unknown).
    wallclock_ms: u64,
    end_of_stream: bool,
    result: Result<HeadMatch>,
}

/// `--head`, or else the head file of the segments' stream in a directory input.
fn head_file(args: &VerifyArgs, files: &[SegmentFile]) -> Option<PathBuf> {
    if let Some(path) = &args.head {
        return Some(path.clone());
    }
    let first = files.first()?;
    let name = head::file_name(&first.header.camera_id(), first.header.stream_id);
    args.inputs
        .iter()
        .filter(|input| input.is_dir())
        .map(|dir| dir.join(&name))
        .find(|path| path.is_file())
}

/// Reads `path`, checks the camera's signature over it and that it is `camera`'s, and
/// compares it with `files` (`head::compare`).
fn check_head(path: &Path, camera: &[u8; 32], files: &[SegmentFile]) -> HeadCheck {
    let mut check = HeadCheck {
        path: path.to_path_buf(),
        seq: None,
        age_ms: None,
        wallclock_ms: 0,
        end_of_stream: false,
        result: Ok(HeadMatch::Current),
    };
    let head = match read_head(path) {
        Ok(h) => h,
        Err(e) => {
            check.result = Err(e);
            return check;
        }
    };
    if let Err(e) = head.check(camera) {
        check.result = Err(anyhow::Error::from(e));
        return check;
    }
    check.seq = Some(head.seq);
    check.age_ms = head.age_ms(unix_ms());
    check.wallclock_ms = head.wallclock_ms;
    check.end_of_stream = head.end_of_stream;
    let given: Result<Vec<GivenSegment>> = files
        .iter()
        .map(|f| {
            let trailer = if f.header.segment_seq == head.seq {
                read_trailer(f)?
            } else {
                None
            };
            Ok(GivenSegment {
                stream_id: f.header.stream_id,
                seq: f.header.segment_seq,
                header_hash: f.header_hash,
                trailer,
            })
        })
        .collect();
    check.result = given.and_then(|given| Ok(head::compare(&head, &given)?));
    check
}

fn read_head(path: &Path) -> Result<StreamHead> {
    let mut bytes = Vec::with_capacity(StreamHead::LEN);
    std::fs::File::open(path)
        .and_then(|f| f.take(StreamHead::LEN as u64 + 1).read_to_end(&mut bytes))
        .with_context(|| format!("cannot read the stream head {}", path.display()))?;
    StreamHead::parse(&bytes).with_context(|| format!("stream head {}", path.display()))
}

fn print_head(h: &HeadCheck) {
    let Some(seq) = h.seq else {
        // Nothing an unverified head says is shown.
        if let Err(e) = &h.result {
            println!("head: FAILED: {e:#}  {}", h.path.display());
        }
        return;
    };
    let what = match &h.result {
        Ok(HeadMatch::Current) => format!(
            "OK: names the newest given segment{}",
            if h.end_of_stream {
                ", which ends the stream"
            } else {
                ""
            }
        ),
        Ok(HeadMatch::Behind { newest }) => format!(
            "BEHIND: names segment {seq}, and segments up to {newest} are given (an old head, or a crash before it was replaced)"
        ),
        Ok(HeadMatch::NotGiven { newest }) => {
            format!("UNCHECKED: names segment {seq}, which is not given (newest given: {newest})")
        }
        Err(e) => format!("FAILED: {e:#}"),
    };
    let written = match h.age_ms {
        Some(_) => format!(
            "written {} ({})",
            format_time(h.wallclock_ms),
            describe_age(h.age_ms)
        ),
        None => format!("written {}", describe_age(h.age_ms)),
    };
    println!("head: seq {seq}, {written}: {what}  {}", h.path.display());
}

/// `12.3 s ago`, or how far the camera's clock is ahead.
fn describe_age(age_ms: Option<i64>) -> String {
    match age_ms {
        None => "at an unknown time (the camera did not know the time)".into(),
        Some(ms) if ms >= 0 => format!("{} ago by the camera's clock", format_seconds(ms)),
        Some(ms) => format!(
            "{} in the future (the camera's clock is ahead)",
            format_seconds(-ms)
        ),
    }
}

fn format_seconds(ms: i64) -> String {
    let secs = ms as f64 / 1000.0;
    if secs < 120.0 {
        format!("{secs:.1} s")
    } else if secs < 7200.0 {
        format!("{:.1} min", secs / 60.0)
    } else if secs < 172_800.0 {
        format!("{:.1} h", secs / 3600.0)
    } else {
        format!("{:.1} days", secs / 86_400.0)
    }
}

fn head_json(h: &HeadCheck) -> serde_json::Value {
    serde_json::json!({
        "path": h.path.display().to_string(),
        "seq": h.seq,
        "age_seconds": h.age_ms.map(|ms| ms as f64 / 1000.0),
        "result": match &h.result {
            Ok(m) => m.name().to_string(),
            Err(e) => format!("{e:#}"),
        },
    })
}

pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Reads a `camera.pub` file.
pub fn read_camera_pub(path: &Path) -> Result<[u8; 32]> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read camera key {}", path.display()))?;
    let public = CameraPublic::from_text(&text)
        .with_context(|| format!("{} is not a camera public key", path.display()))?;
    Ok(public.ed25519)
}

/// Prints the covered window: what the segments vouch for, and how the stream ended.
pub fn print_coverage(c: &Coverage, from_seq: Option<u64>) {
    println!(
        "covered: camera {} stream {} seq {}..={} ({} segments), {} .. {}, ended {}{}",
        camera_id(&c.camera_key),
        c.stream,
        c.first_seq,
        c.last_seq,
        c.segments,
        format_time(c.first_time_ms),
        format_time(c.last_time_ms),
        c.ended.name(),
        match from_seq {
            Some(n) => format!(" (window from seq {n}, as asked with --from-seq)"),
            None => String::new(),
        }
    );
}

/// Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ` (or `unknown` for 0).
pub fn format_time(ms: u64) -> String {
    if ms == 0 {
        return "unknown".into();
    }
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

fn print_segment(file: &SegmentFile, r: &SegmentReport) {
    let stream = file.header.stream_id;
    match r.status {
        SegmentStatus::Complete { .. } => println!(
            "OK      seq {:>6}  stream {}  records {:>6}  checkpoints {:>3}  {}",
            r.seq,
            stream,
            r.records,
            r.checkpoints,
            r.path.display()
        ),
        SegmentStatus::CutOff { dropped } => println!(
            "{} seq {:>6}  stream {}  records {:>6} signed, {} unsigned dropped  {}: cut off before its trailer{}",
            if r.declared_crashed {
                "CRASHED"
            } else {
                "CUT-OFF"
            },
            r.seq,
            stream,
            r.records,
            dropped,
            r.path.display(),
            if r.declared_crashed {
                "; a later segment declares the crash (signed)"
            } else {
                ""
            }
        ),
    }
    for gap in &r.gaps {
        println!("        seq {:>6}  {}", r.seq, describe_gap(gap));
    }
}

fn verdict_json(
    files: &[SegmentFile],
    results: &[Result<SegmentReport, FootageError>],
    coverage: Option<&Coverage>,
    verdict: Result<(), &FootageError>,
    code: u8,
) -> serde_json::Value {
    let gaps: Vec<serde_json::Value> = coverage
        .map(|c| c.gaps.as_slice())
        .unwrap_or_default()
        .iter()
        .map(crate::inspect::gap_json)
        .collect();
    let segments: Vec<serde_json::Value> = files
        .iter()
        .zip(results)
        .map(|(f, result)| {
            let report = result.as_ref().ok();
            serde_json::json!({
                "seq": f.header.segment_seq,
                "path": f.path.display().to_string(),
                "status": match report.map(|r| r.status) {
                    Some(SegmentStatus::Complete { .. }) => "ok",
                    Some(SegmentStatus::CutOff { .. }) if report.is_some_and(|r| r.declared_crashed) => "crashed",
                    Some(SegmentStatus::CutOff { .. }) => "cut-off",
                    None => "failed",
                },
                "records": report.map(|r| r.records),
                "checkpoints": report.map(|r| r.checkpoints),
                "dropped": report.map(|r| r.dropped()),
                "error": result.as_ref().err().map(|e| e.to_string()),
            })
        })
        .collect();
    serde_json::json!({
        "camera": coverage.map(|c| camera_id(&c.camera_key)),
        "stream": coverage.map(|c| c.stream),
        "first_seq": coverage.map(|c| c.first_seq),
        "last_seq": coverage.map(|c| c.last_seq),
        "first_time": coverage.map(|c| format_time(c.first_time_ms)),
        "last_time": coverage.map(|c| format_time(c.last_time_ms)),
        "ended": coverage.map(|c| c.ended.name()),
        "segments": segments,
        "gaps": gaps,
        "result": match verdict {
            Ok(()) => "ok".to_string(),
            Err(e) => e.to_string(),
        },
        "exit_code": code,
    })
}

fn write_json(path: &Path, doc: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(doc)? + "\n";
    if path == Path::new("-") {
        print!("{text}");
        return Ok(());
    }
    camseal::fsutil::write_atomic(path, text.as_bytes(), camseal::fsutil::PUBLIC)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_as_utc() {
        assert_eq!(format_time(0), "unknown");
        assert_eq!(format_time(1), "1970-01-01T00:00:00.001Z");
        assert_eq!(format_time(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(format_time(1_796_083_200_123), "2026-12-01T00:00:00.123Z");
    }
}
