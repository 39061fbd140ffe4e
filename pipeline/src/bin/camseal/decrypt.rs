//! `camseal decrypt`: verify and decrypt segments back into the Annex-B stream.

use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use camseal::footage::{Coverage, collect_paths, decrypt_footage_from, describe_gap, load_headers};
use camseal::home::ViewerHome;

use crate::cli::DecryptArgs;

pub fn decrypt(args: DecryptArgs) -> Result<ExitCode> {
    let home = ViewerHome::open(&args.home)?;
    let account = home.account()?;
    let camera = match &args.camera {
        Some(path) => Some(crate::verify::read_camera_pub(path)?),
        None => None,
    };
    let paths = collect_paths(&args.inputs)?;
    let files = load_headers(&paths, camera.as_ref())?;
    if args.out.is_dir() {
        bail!(
            "--out {} is a directory; give a file name",
            args.out.display()
        );
    }
    let tmp = temp_path(&args.out);
    let out = File::create(&tmp)
        .with_context(|| format!("cannot create the output file {}", args.out.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, out);
    let secret = account.x25519_secret();
    let result = decrypt_footage_from(
        &files,
        &secret,
        args.from_seq.unwrap_or(0),
        args.allow_incomplete,
        &mut out,
        |r| {
            for gap in &r.gaps {
                eprintln!("WARNING: segment {} records a {}", r.seq, describe_gap(gap));
            }
            if r.incomplete() {
                eprintln!(
                    "WARNING: segment {} ({}) is INCOMPLETE: it was cut off before its trailer{}. \
                 Released {} records ({} bytes) that the camera signed in checkpoints; \
                 DROPPED {} records after the last checkpoint: no camera signature covers them.",
                    r.seq,
                    r.path.display(),
                    if r.declared_crashed {
                        " (a later segment declares the crash, signed)"
                    } else {
                        ""
                    },
                    r.records,
                    r.video_bytes,
                    r.dropped()
                );
            } else {
                eprintln!(
                    "segment {}: {} records, {} video bytes, verified",
                    r.seq, r.records, r.video_bytes
                );
            }
        },
    );
    let finish = |out: BufWriter<File>| -> std::io::Result<()> {
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&tmp, &args.out)
    };
    // An undeclared cut-off end that dropped unsigned records is released (its signed
    // prefix) under --allow-incomplete, and still fails: nothing vouches for what followed.
    match result {
        Ok(reports) => {
            let dropped_at_end: u64 = reports
                .iter()
                .filter(|r| !r.declared_crashed)
                .map(|r| r.dropped())
                .sum();
            if let Err(e) = finish(out) {
                // Never leave the plaintext behind under any name.
                let _ = fs::remove_file(&tmp);
                return Err(e).with_context(|| format!("cannot write {}", args.out.display()));
            }
            let bytes: u64 = reports.iter().map(|r| r.video_bytes).sum();
            let incomplete: Vec<String> = reports
                .iter()
                .filter(|r| r.incomplete())
                .map(|r| r.seq.to_string())
                .collect();
            if let Some(c) = Coverage::of(&files, &reports) {
                crate::verify::print_coverage(&c, args.from_seq);
            }
            println!(
                "decrypted {} segments, {} bytes -> {}{}",
                reports.len(),
                bytes,
                args.out.display(),
                if incomplete.is_empty() {
                    String::new()
                } else {
                    format!(" (INCOMPLETE: segment {})", incomplete.join(", "))
                }
            );
            if dropped_at_end > 0 {
                eprintln!(
                    "error: {dropped_at_end} records after the last signed checkpoint were dropped; \
                     {} holds only what the camera signed",
                    args.out.display()
                );
                return Ok(ExitCode::from(4));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            drop(out);
            // No partial plaintext is left behind under the requested name.
            let _ = fs::remove_file(&tmp);
            Err(e.into())
        }
    }
}

fn temp_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    out.with_file_name(format!(".{name}.{}.partial", std::process::id()))
}
