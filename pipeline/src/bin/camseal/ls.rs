//! `camseal ls`: which cameras, streams, sequence numbers and signed recording times a set
//! of segments holds, without any key. Each header's camera signature is checked under the
//! key the header names, so a time shown is one that camera signed (not that the camera is
//! the one you expect: `verify --camera` says that).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use camseal::footage::{collect_paths, load_headers};
use camseal::segment::camera_id;
use serde_json::json;

use crate::cli::LsArgs;
use crate::verify::format_time;

/// One stream of one camera: its segments' (seq, signed open time in Unix ms).
type Streams = BTreeMap<(String, u32), Vec<(u64, u64)>>;

pub fn ls(args: LsArgs) -> Result<ExitCode> {
    let inputs: Vec<PathBuf> = args
        .inputs
        .iter()
        .map(|p| match p.to_str().and_then(|t| t.strip_prefix("dir:")) {
            Some(dir) => PathBuf::from(dir),
            None => p.clone(),
        })
        .collect();
    let paths = collect_paths(&inputs)?;
    let mut streams = Streams::new();
    for path in &paths {
        // One at a time: a folder may hold several cameras' footage.
        let files = load_headers(std::slice::from_ref(path), None)?;
        for f in files {
            streams
                .entry((camera_id(&f.header.camera_key), f.header.stream_id))
                .or_default()
                .push((f.header.segment_seq, f.header.wallclock_ms));
        }
    }
    for segments in streams.values_mut() {
        segments.sort_unstable();
    }
    let mut docs = Vec::new();
    for ((camera, stream), segments) in &streams {
        let runs = runs(segments);
        let first = segments.first().map_or(0, |s| s.1);
        let last = segments.last().map_or(0, |s| s.1);
        if args.json {
            docs.push(json!({
                "camera": camera,
                "stream": stream,
                "segments": segments.len(),
                "seq_ranges": runs.iter().map(|(a, b)| json!([a, b])).collect::<Vec<_>>(),
                "first_opened_unix_ms": first,
                "last_opened_unix_ms": last,
            }));
        } else {
            let ranges: Vec<String> = runs
                .iter()
                .map(|(a, b)| {
                    if a == b {
                        a.to_string()
                    } else {
                        format!("{a}..={b}")
                    }
                })
                .collect();
            println!(
                "camera {camera} stream {stream}: {} segments, seq {}, signed times {} .. {} (when the first and the last segment opened)",
                segments.len(),
                ranges.join(", "),
                format_time(first),
                format_time(last)
            );
            if runs.len() > 1 {
                let holes: Vec<String> = runs
                    .windows(2)
                    .map(|w| format!("{}..={}", w[0].1 + 1, w[1].0 - 1))
                    .collect();
                println!("  missing seq {}", holes.join(", "));
            }
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&docs)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs of consecutive sequence numbers, `(first, last)`, of sorted `(seq, _)` pairs.
fn runs(segments: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for &(seq, _) in segments {
        match runs.last_mut() {
            Some(run) if seq <= run.1.saturating_add(1) => run.1 = run.1.max(seq),
            _ => runs.push((seq, seq)),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::runs;

    #[test]
    fn runs_split_at_holes() {
        let s = |seqs: &[u64]| seqs.iter().map(|&q| (q, 0)).collect::<Vec<_>>();
        assert_eq!(runs(&s(&[0, 1, 2, 5, 6, 9])), vec![(0, 2), (5, 6), (9, 9)]);
        assert_eq!(runs(&s(&[3])), vec![(3, 3)]);
        assert_eq!(runs(&s(&[])), vec![]);
    }
}
