//! `camseal decrypt`: verify and decrypt segments back into the Annex-B stream.

use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use camseal::footage::{
    SegmentFile, collect_paths, decrypt_footage, describe_gap, load_headers, verify_file,
};
use camseal::home::{CameraChoice, ViewerHome, choose_camera};
use camseal::keys::CameraPublic;

use crate::cli::DecryptArgs;

pub fn decrypt(args: DecryptArgs) -> Result<ExitCode> {
    let home = ViewerHome::open(&args.home)?;
    let account = home.account()?;
    let camera = match &args.camera {
        Some(path) => Some(CameraPublic {
            ed25519: crate::verify::read_camera_pub(path)?,
        }),
        None => None,
    };
    let paths = collect_paths(&args.inputs)?;
    let (choice, files) = trusted_footage(&home, camera, &paths)?;
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
    let result = decrypt_footage(&files, &secret, args.allow_incomplete, &mut out, |r| {
        if r.chain_starts_mid_stream {
            eprintln!(
                "note: segment {} follows a segment that was not given; the chain is checked from here on",
                r.seq
            );
        }
        for gap in &r.gaps {
            eprintln!("WARNING: segment {} records a {}", r.seq, describe_gap(gap));
        }
        if r.incomplete {
            eprintln!(
                "WARNING: segment {} ({}) is INCOMPLETE: it was cut short (crash or power loss?). \
                 Salvaged {} authenticated records ({} bytes); they are NOT covered by the camera's signature.",
                r.seq,
                r.path.display(),
                r.records,
                r.video_bytes
            );
        } else {
            eprintln!(
                "segment {}: {} records, {} video bytes, verified",
                r.seq, r.records, r.video_bytes
            );
        }
    });
    let finish = |out: BufWriter<File>| -> std::io::Result<()> {
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&tmp, &args.out)
    };
    match result {
        Ok(reports) => {
            if let Err(e) = finish(out) {
                // Never leave the plaintext behind under any name.
                let _ = fs::remove_file(&tmp);
                return Err(e).with_context(|| format!("cannot write {}", args.out.display()));
            }
            let bytes: u64 = reports.iter().map(|r| r.video_bytes).sum();
            let incomplete = reports.iter().any(|r| r.incomplete);
            println!(
                "decrypted {} segments, {} bytes -> {}{}",
                reports.len(),
                bytes,
                args.out.display(),
                if incomplete {
                    " (last segment INCOMPLETE)"
                } else {
                    ""
                }
            );
            println!("{}", describe_choice(&choice));
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

/// Reads the footage's headers and checks them against the camera it must come from: the
/// one given with `--camera`, else the footage's own camera, which the viewer home must pin.
pub fn trusted_footage(
    home: &ViewerHome,
    camera: Option<CameraPublic>,
    paths: &[PathBuf],
) -> Result<(CameraChoice, Vec<SegmentFile>)> {
    // `--camera` decides alone, so neither the pins nor the headers' own keys are read then.
    let (named, pinned) = match camera {
        Some(_) => (Vec::new(), Vec::new()),
        None => (load_headers(paths, None)?, home.trusted_cameras()?),
    };
    let mut keys: Vec<[u8; 32]> = Vec::new();
    for f in &named {
        if !keys.contains(&f.header.camera_key) {
            keys.push(f.header.camera_key);
        }
    }
    let choice = match choose_camera(home.dir(), camera, &pinned, &keys) {
        Ok(choice) => choice,
        Err(e) => {
            // Blame a camera only for footage it really signed: a segment that does not
            // verify under the key its header names was modified (tampered, exit 3).
            if let Some(refused) = e.camera()
                && let Some(f) = named
                    .iter()
                    .find(|f| f.header.camera_key == refused.ed25519)
            {
                verify_file(&f.path)?;
            }
            return Err(e.into());
        }
    };
    let files = load_headers(paths, Some(&choice.public().ed25519))?;
    Ok((choice, files))
}

/// One line saying which camera the footage was checked against, and why.
pub fn describe_choice(choice: &CameraChoice) -> String {
    match choice {
        CameraChoice::Explicit(public) => {
            format!("camera {}: given with --camera", public.id())
        }
        CameraChoice::Pinned(pinned) => format!(
            "camera {}: pinned in the viewer home",
            crate::viewer::describe_camera(pinned)
        ),
    }
}

fn temp_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    out.with_file_name(format!(".{name}.{}.partial", std::process::id()))
}
