//! `camseal status`: what a spool holds.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use camseal::spool::{Spool, SpoolConfig};

use crate::cli::StatusArgs;

pub fn status(args: StatusArgs) -> Result<ExitCode> {
    if !args.spool.is_dir() {
        bail!("spool {} does not exist", args.spool.display());
    }
    let spool = Spool::open(&args.spool, SpoolConfig::default())
        .with_context(|| format!("cannot open the spool {}", args.spool.display()))?;
    let s = spool.status()?;
    let c = &s.counters;
    if args.json {
        let v = serde_json::json!({
            "pending_segments": s.pending,
            "pending_bytes": s.pending_bytes,
            "incomplete_segments": s.incomplete,
            "oldest_pending_age_s": s.oldest_age.map(|d| d.as_secs_f64()),
            "open_segments": s.open,
            "open_bytes": s.open_bytes,
            "uploaded_segments": c.uploaded_segments,
            "uploaded_bytes": c.uploaded_bytes,
            "upload_failures": c.upload_failures,
            "last_error": c.last_error,
            "last_error_unix_ms": c.last_error_ms,
            "dropped_segments": c.dropped_segments,
            "dropped_bytes": c.dropped_bytes,
        });
        println!("{v:#}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("spool {}", args.spool.display());
    println!(
        "pending:   {} segments, {} bytes ({} incomplete crash tails)",
        s.pending, s.pending_bytes, s.incomplete
    );
    match s.oldest_age {
        Some(age) => println!("oldest:    {:.1} s ago", age.as_secs_f64()),
        None => println!("oldest:    -"),
    }
    println!("open:      {} segments, {} bytes", s.open, s.open_bytes);
    println!(
        "uploaded:  {} segments, {} bytes",
        c.uploaded_segments, c.uploaded_bytes
    );
    println!("failures:  {} upload attempts", c.upload_failures);
    if let Some(e) = &c.last_error {
        let age = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
            .saturating_sub(c.last_error_ms);
        println!("last error ({:.0} s ago): {e}", age as f64 / 1000.0);
    }
    println!(
        "dropped:   {} segments, {} bytes (spool quota)",
        c.dropped_segments, c.dropped_bytes
    );
    Ok(ExitCode::SUCCESS)
}
