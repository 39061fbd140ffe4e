//! `camseal verify`: check signatures, chain and completeness without any decryption key.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use camseal::footage::{
    FootageError, collect_paths, declared_crashed, describe_gap, load_headers, verify_footage,
};
use camseal::keys::CameraPublic;
use camseal::segment::SegmentError;

use crate::cli::VerifyArgs;
use crate::error::exit_code_for;

pub fn verify(args: VerifyArgs) -> Result<ExitCode> {
    let camera = read_camera_pub(&args.camera)?;
    let paths = collect_paths(&args.inputs)?;
    let files = load_headers(&paths, Some(&camera))?;
    let (results, chain) = verify_footage(&files);
    let mut first_error: Option<FootageError> = None;
    let mut ok = 0usize;
    for (file, result) in files.iter().zip(results) {
        match result {
            Ok(r) => {
                ok += 1;
                println!(
                    "OK      seq {:>6}  stream {}  records {:>6}  {}{}",
                    r.seq,
                    file.header.stream_id,
                    r.records,
                    r.path.display(),
                    if r.chain_starts_mid_stream {
                        "  (chain starts here: predecessor not given)"
                    } else {
                        ""
                    }
                );
                for gap in &r.gaps {
                    println!("        seq {:>6}  {}", r.seq, describe_gap(gap));
                }
            }
            Err(e)
                if matches!(e.segment_error(), Some(SegmentError::Truncated(_)))
                    && declared_crashed(&files, file.header.segment_seq) =>
            {
                // The camera said so, signed, in a later header: a crash, not tampering.
                println!(
                    "CRASHED seq {:>6}  stream {}  {}: cut short by a crash that a later segment declares; `camseal decrypt --allow-incomplete` salvages its authenticated prefix",
                    file.header.segment_seq,
                    file.header.stream_id,
                    file.path.display()
                );
            }
            Err(e) => {
                println!(
                    "FAILED  seq {:>6}  stream {}  {}",
                    file.header.segment_seq, file.header.stream_id, e
                );
                first_error.get_or_insert(e);
            }
        }
    }
    match chain {
        Ok(()) => println!("chain: OK ({} segments linked)", files.len()),
        Err(e) => {
            println!("chain: BROKEN: {e}");
            first_error.get_or_insert(e);
        }
    }
    println!(
        "camera {}: {} of {} segments verified",
        camseal::segment::camera_id(&camera),
        ok,
        files.len()
    );
    match first_error {
        None => Ok(ExitCode::SUCCESS),
        Some(e) => {
            let e = anyhow::Error::from(e);
            eprintln!("error: verification failed: {e}");
            Ok(ExitCode::from(exit_code_for(&e)))
        }
    }
}

/// Reads a `camera.pub` file.
pub fn read_camera_pub(path: &Path) -> Result<[u8; 32]> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read camera key {}", path.display()))?;
    let public = CameraPublic::from_text(&text)
        .with_context(|| format!("{} is not a camera public key", path.display()))?;
    Ok(public.ed25519)
}
