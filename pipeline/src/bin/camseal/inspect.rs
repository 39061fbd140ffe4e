//! `camseal inspect`: show what each segment file holds, without any key, and each camera
//! signature's verdict. It never stops at a bad file: it reports what parsed and goes on to
//! the next one.
//!
//! Output is text, or with `--json` one JSON object per file, each on its own line (JSON
//! Lines), in the order the files were given. The exit code is 0 when every file parsed to
//! its end and every check passed; otherwise it is the code of the first failing file (in
//! the order given), as for `verify` (see `error.rs`).
//!
//! Each file is read whole into memory (a segment is a few seconds of video) and handed to
//! the pure `camseal::segment::inspect`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use camseal::footage::{FootageError, describe_gap};
use camseal::segment::inspect::{Inspection, inspect as inspect_bytes};
use camseal::segment::padding::Padding;
use camseal::segment::write::{HPKE_KEM_X25519, HPKE_KEM_XWING};
use camseal::segment::{Gap, camera_id};
use serde_json::{Value, json};

use crate::cli::InspectArgs;
use crate::error::{report, segment_code};
use crate::verify::{format_time, read_camera_pub};

pub fn inspect(args: InspectArgs) -> Result<ExitCode> {
    let camera = args.camera.as_deref().map(read_camera_pub).transpose()?;
    let mut exit = 0u8;
    for (i, path) in args.segments.iter().enumerate() {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(source) => {
                let e = FootageError::Io {
                    path: path.clone(),
                    source,
                };
                if args.json {
                    print_json_line(&unreadable_json(path, &e));
                } else {
                    print_unreadable(path, i > 0);
                }
                report(&e.into());
                if exit == 0 {
                    exit = 1;
                }
                continue;
            }
        };
        let inspection = inspect_bytes(&bytes, camera.as_ref());
        let code = inspection
            .first_problem()
            .map_or(0, |p| segment_code(&p.error));
        if args.json {
            print_json_line(&inspection_json(path, &inspection, code));
        } else {
            print_text(path, &inspection, camera.as_ref(), i > 0);
        }
        if let Some(source) = inspection.into_first_error() {
            report(
                &FootageError::Segment {
                    path: path.clone(),
                    source,
                }
                .into(),
            );
        }
        if exit == 0 {
            exit = code;
        }
    }
    Ok(ExitCode::from(exit))
}

fn print_text(path: &Path, r: &Inspection, camera: Option<&[u8; 32]>, blank_before: bool) {
    if blank_before {
        println!();
    }
    println!("{}", path.display());
    let format = match (r.version, &r.header) {
        (_, Some(_)) => format!("camseal segment v{}", camseal::segment::VERSION),
        (Some(v), None) => format!("camseal segment format v{v}"),
        (None, None) => "not a camseal segment".to_string(),
    };
    row("format", format!("{format}, {} bytes", r.len));
    if let Some(h) = &r.header {
        let header = &h.header;
        let camera_note = match (h.camera_matches, camera) {
            (Some(true), _) => "  (the --camera key)".to_string(),
            (Some(false), Some(expected)) => format!(
                "  (NOT the --camera key, which is camera {})",
                camera_id(expected)
            ),
            _ => String::new(),
        };
        row(
            "camera",
            format!(
                "{}{camera_note}\n{:16}key {}",
                h.camera_id,
                "",
                hex::encode(header.camera_key)
            ),
        );
        row(
            "stream",
            format!("{}  seq {}", header.stream_id, header.segment_seq),
        );
        row(
            "suite",
            format!("0x{:04x} ({})", header.suite.id(), header.suite.name()),
        );
        row("codec", header.codec.name().to_string());
        row(
            "start pts",
            format!(
                "{} ({:.3} s)",
                header.start_pts,
                header.start_pts as f64 / 90_000.0
            ),
        );
        row(
            "wallclock",
            format!(
                "{} ({} ms)",
                format_time(header.wallclock_ms),
                header.wallclock_ms
            ),
        );
        row(
            "prev header",
            match header.predecessor_seq() {
                None => "none (first segment of its stream)".to_string(),
                Some(seq) => format!("{} (segment {seq})", hex::encode(header.prev_header_hash)),
            },
        );
        row("header hash", hex::encode(h.hash));
        row("recipients", header.stanzas.len().to_string());
        for s in &header.stanzas {
            println!(
                "{:16}key id {}  kem 0x{:04x} ({})  kdf 0x{:04x}  aead 0x{:04x}",
                "",
                hex::encode(s.key_id),
                s.kem,
                kem_name(s.kem),
                s.kdf,
                s.aead
            );
        }
        let gaps = header.gaps();
        row(
            "gaps",
            if gaps.is_empty() {
                "none".to_string()
            } else {
                gaps.len().to_string()
            },
        );
        for gap in &gaps {
            println!("{:16}{}", "", describe_gap(gap));
        }
        row(
            "padding",
            match header.padding() {
                Padding::Buckets => "buckets (video records padded to size buckets)".to_string(),
                Padding::Off => "off".to_string(),
            },
        );
        let rec = &r.records;
        row(
            "records",
            format!(
                "{} ({} keyframe, {} continuation, final record {}), {} bytes{}{}",
                rec.count,
                rec.keyframes,
                rec.continuations,
                if rec.final_record {
                    "present"
                } else {
                    "absent"
                },
                rec.total_bytes,
                match (rec.min_bytes, rec.max_bytes) {
                    (Some(min), Some(max)) => format!(", min {min}, max {max}"),
                    _ => String::new(),
                },
                match (rec.first_pts, rec.last_pts) {
                    (Some(a), Some(b)) => format!(", pts {a}..={b}"),
                    _ => String::new(),
                }
            ),
        );
        row("checkpoints", r.checkpoints.len().to_string());
        for (i, c) in r.checkpoints.iter().enumerate() {
            println!(
                "{:16}#{} at byte {}: covers {} records ({} before it): digest {}, signature {}",
                "",
                i + 1,
                c.offset,
                c.record_count,
                c.records_before,
                if c.digest_matches { "ok" } else { "MISMATCH" },
                valid(c.signature_valid)
            );
        }
        match &r.trailer {
            Some(t) => row(
                "trailer",
                format!(
                    "present at byte {}, end of stream: {}, covers {} records ({} before it): digest {}, signature {}{}",
                    t.offset,
                    if t.end_of_stream { "yes" } else { "no" },
                    t.record_count,
                    t.records_before,
                    if t.digest_matches { "ok" } else { "MISMATCH" },
                    valid(t.signature_valid),
                    if t.trailing_bytes > 0 {
                        format!(", {} bytes after it", t.trailing_bytes)
                    } else {
                        String::new()
                    }
                ),
            ),
            None => row("trailer", "absent".to_string()),
        }
        let valid_checkpoints = r.checkpoints.iter().filter(|c| c.signature_valid).count();
        row(
            "signatures",
            format!(
                "header {}, checkpoints {} of {} valid, trailer {}",
                valid(h.signature_valid),
                valid_checkpoints,
                r.checkpoints.len(),
                r.trailer
                    .as_ref()
                    .map_or("absent", |t| valid(t.signature_valid))
            ),
        );
        row(
            "signed",
            format!(
                "{} of {} records covered by a valid camera signature",
                r.signed_records, r.records.count
            ),
        );
    }
    for p in &r.problems {
        row("problem", format!("at byte {}: {}", p.offset, p.error));
    }
    row(
        "verdict",
        match r.first_problem() {
            None => "OK".to_string(),
            Some(p) => format!("FAILED: {}", p.error),
        },
    );
}

fn print_unreadable(path: &Path, blank_before: bool) {
    if blank_before {
        println!();
    }
    println!("{}", path.display());
    row("verdict", "FAILED: cannot read the file".to_string());
}

fn row(label: &str, value: String) {
    println!("  {label:<14}{value}");
}

fn valid(ok: bool) -> &'static str {
    if ok { "valid" } else { "INVALID" }
}

fn kem_name(kem: u16) -> &'static str {
    match kem {
        HPKE_KEM_X25519 => "DHKEM(X25519, HKDF-SHA256)",
        HPKE_KEM_XWING => "X-Wing (ML-KEM-768 + X25519)",
        _ => "unknown",
    }
}

/// The JSON object for one file (see the module docs and README "Inspecting segments").
fn inspection_json(path: &Path, r: &Inspection, exit_code: u8) -> Value {
    let h = r.header.as_ref();
    let header = h.map(|h| &h.header);
    let checkpoints: Vec<Value> = r
        .checkpoints
        .iter()
        .map(|c| {
            json!({
                "offset": c.offset,
                "record_count": c.record_count,
                "records_before": c.records_before,
                "digest_ok": c.digest_matches,
                "signature_ok": c.signature_valid,
            })
        })
        .collect();
    let problems: Vec<Value> = r
        .problems
        .iter()
        .map(|p| json!({"offset": p.offset, "error": p.error.to_string()}))
        .collect();
    json!({
        "path": path.display().to_string(),
        "bytes": r.len,
        "version": r.version,
        "header": h.is_some(),
        "header_len": h.map(|h| h.len),
        "header_hash": h.map(|h| hex::encode(h.hash)),
        "camera": h.map(|h| h.camera_id.clone()),
        "camera_key": header.map(|h| hex::encode(h.camera_key)),
        "camera_matches": h.and_then(|h| h.camera_matches),
        "stream": header.map(|h| h.stream_id),
        "seq": header.map(|h| h.segment_seq),
        "suite": header.map(|h| h.suite.id()),
        "suite_name": header.map(|h| h.suite.name()),
        "codec": header.map(|h| h.codec.name()),
        "start_pts": header.map(|h| h.start_pts),
        "wallclock_ms": header.map(|h| h.wallclock_ms),
        "prev_header_hash": header.map(|h| hex::encode(h.prev_header_hash)),
        "predecessor_seq": header.and_then(|h| h.predecessor_seq()),
        "recipients": header.map_or_else(Vec::new, |h| h.stanzas.iter().map(|s| json!({
            "key_id": hex::encode(s.key_id),
            "kem": s.kem,
            "kem_name": kem_name(s.kem),
            "kem_kind": camseal::keys::KemKind::from_id(s.kem).map(|k| k.name()),
            "enc_len": s.enc.len(),
            "kdf": s.kdf,
            "aead": s.aead,
        })).collect()),
        "gaps": header.map_or_else(Vec::new, |h| h.gaps().iter().map(gap_json).collect()),
        "padding": header.map(|h| h.padding().name()),
        "records": {
            "count": r.records.count,
            "total_bytes": r.records.total_bytes,
            "min_bytes": r.records.min_bytes,
            "max_bytes": r.records.max_bytes,
            "keyframes": r.records.keyframes,
            "continuations": r.records.continuations,
            "final": r.records.final_record,
            "first_pts": r.records.first_pts,
            "last_pts": r.records.last_pts,
            "sizes": r.records.sizes,
        },
        "signed_records": r.signed_records,
        "checkpoints": checkpoints,
        "trailer": r.trailer.is_some(),
        "end_of_stream": r.trailer.as_ref().map(|t| t.end_of_stream),
        "trailer_record_count": r.trailer.as_ref().map(|t| t.record_count),
        "signatures": {
            "header": h.map(|h| h.signature_valid),
            "checkpoints": r.checkpoints.iter().map(|c| c.signature_valid).collect::<Vec<_>>(),
            "trailer": r.trailer.as_ref().map(|t| t.signature_valid),
        },
        "parsed_to": r.parsed_to,
        "ok": r.ok(),
        "error": r.first_problem().map(|p| p.error.to_string()),
        "problems": problems,
        "exit_code": exit_code,
    })
}

fn unreadable_json(path: &Path, e: &FootageError) -> Value {
    json!({
        "path": path.display().to_string(),
        "bytes": null,
        "version": null,
        "header": false,
        "camera": null,
        "stream": null,
        "seq": null,
        "suite": null,
        "recipients": [],
        "gaps": [],
        "records": null,
        "checkpoints": [],
        "trailer": false,
        "ok": false,
        "error": e.to_string(),
        "problems": [{"offset": 0, "error": e.to_string()}],
        "exit_code": 1,
    })
}

/// One gap as JSON (shared by `inspect --json` and `verify --json`).
pub fn gap_json(g: &Gap) -> Value {
    json!({
        "reason": g.reason.name(),
        "first_seq": g.lost_segments.map(|(a, _)| a),
        "last_seq": g.lost_segments.map(|(_, b)| b),
        "frames": g.frames,
        "from_pts": g.from_pts,
        "to_pts": g.to_pts,
    })
}

fn print_json_line(v: &Value) {
    println!("{v}");
}
