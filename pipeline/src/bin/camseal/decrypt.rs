//! `camseal decrypt`: verify and decrypt segments back into the Annex-B stream.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use camseal::footage::{
    Coverage, FootageError, FootageGap, SegmentFile, SegmentKey, SegmentReport, collect_paths,
    decrypt_footage_records_with, decrypt_footage_with, decrypt_footage_with_gaps_with,
    describe_gap, load_headers, select_stream,
};
use camseal::fsutil::PRIVATE;
use camseal::home::{CameraChoice, ViewerHome, choose_camera};
use camseal::keys::{CameraPublic, RecipientSecret};

use camseal::mp4::Mp4Writer;

use crate::cli::{DecryptArgs, OutputFormat};
use crate::interrupt::Unfinished;
use crate::progress::Progress;

/// The keys this home opens segments with: both of the account's keys (its lists may have
/// named either kind over time), then the device's own key if the home has one. A home made
/// with `viewer init --device-only` has only the device key.
pub fn opening_keys(home: &ViewerHome) -> Result<Vec<RecipientSecret>> {
    let mut keys = Vec::new();
    if home.has_account()? {
        keys.extend(home.account()?.recipient_secrets());
    }
    if let Some(device) = home.device_key()? {
        keys.push(device);
    }
    if keys.is_empty() {
        // Says which files are missing.
        home.account()?;
    }
    Ok(keys)
}

pub fn decrypt(args: DecryptArgs) -> Result<ExitCode> {
    let home = ViewerHome::open(&args.home)?;
    let share = match &args.share {
        Some(path) => Some(crate::share::load(&home, path)?),
        None => None,
    };
    let keys = match &share {
        Some(s) => vec![s.secret.clone()],
        None => opening_keys(&home)?,
    };
    let camera = match &args.camera {
        Some(path) => Some(CameraPublic {
            ed25519: crate::verify::read_camera_pub(path)?,
        }),
        None => None,
    };
    let camera = match &share {
        Some(s) => Some(crate::share::camera(&s.share, camera)?),
        None => camera,
    };
    let paths = collect_paths(&args.inputs)?;
    let (choice, mut files) = trusted_footage(&home, camera, &paths)?;
    if let Some(stream) = args.stream {
        select_stream(&mut files, stream)?;
    }
    let window = crate::timesel::select_by_time(&mut files, args.since, args.until)?;
    let from_seq = args.from_seq.or(window);
    // With a share the window starts at the first segment given: a share is rarely of a
    // stream's first segments.
    let start = match &share {
        Some(s) => crate::share::check_files(&s.share, &files, from_seq)?,
        None => from_seq.unwrap_or(0),
    };
    let key = match &share {
        Some(s) => SegmentKey::Shared(&s.share, &keys),
        None => SegmentKey::Recipient(&keys),
    };
    if args.out.is_dir() {
        bail!(
            "--out {} is a directory; give a file name",
            args.out.display()
        );
    }
    crate::interrupt::remove_unfinished_on_signal()?;
    // Plaintext: owner-only from the start, under a name nobody can plant a link at.
    let (mut tmp, unfinished) = Unfinished::create(&args.out, PRIVATE)
        .with_context(|| format!("cannot create the output file {}", args.out.display()))?;
    let file = tmp
        .file()
        .try_clone()
        .with_context(|| format!("cannot create the output file {}", args.out.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut gaps = Vec::new();
    let format = output_format(args.format, &args.out);
    if args.allow_gaps && format == OutputFormat::Mp4 {
        // An MP4 timeline across holes would need edit lists per gap; not written yet.
        return Err(crate::error::Usage(
            "--allow-gaps writes Annex-B only; drop --format mp4 (or the .mp4 extension)".into(),
        )
        .into());
    }
    let progress = Progress::for_files("decrypt", &files, args.quiet);
    let on_segment = |r: &SegmentReport| {
        progress.suspend(|| {
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
        });
        progress.segment_done(crate::progress::file_len(&r.path));
    };
    let mut mp4 = None;
    let result = match format {
        OutputFormat::Annexb => decrypt_window(
            &files,
            key,
            start,
            args.allow_incomplete,
            args.allow_gaps.then_some(&mut gaps),
            &mut out,
            on_segment,
        ),
        OutputFormat::Mp4 => {
            let Some(codec) = files.first().map(|f| f.header.codec) else {
                bail!("no segment to decrypt");
            };
            let mut writer = Mp4Writer::new(&mut out, codec)
                .with_context(|| format!("cannot write {}", args.out.display()))?;
            let decrypted = decrypt_footage_records_with(
                &files,
                key,
                start,
                args.allow_incomplete,
                |bytes, records| writer.push(bytes, records).map_err(std::io::Error::other),
                on_segment,
            );
            if decrypted.is_ok() {
                // On failure the temporary file is dropped below, with whatever it held.
                let (_, summary) = writer
                    .finish()
                    .with_context(|| format!("cannot write {}", args.out.display()))?;
                mp4 = Some(summary);
            }
            decrypted
        }
    };
    if result.is_ok() {
        progress.finish();
    }
    let finish = |out: BufWriter<File>| -> std::io::Result<()> {
        out.into_inner().map_err(|e| e.into_error())?;
        unfinished.finish(|| tmp.persist(&args.out)).map(drop)
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
                // The temporary file removed itself: no plaintext is left under any name.
                return Err(e).with_context(|| format!("cannot write {}", args.out.display()));
            }
            let bytes: u64 = reports.iter().map(|r| r.video_bytes).sum();
            let incomplete: Vec<String> = reports
                .iter()
                .filter(|r| r.incomplete())
                .map(|r| r.seq.to_string())
                .collect();
            if let Some(c) = Coverage::of(&files, &reports) {
                crate::verify::print_coverage(&c, from_seq);
            }
            println!(
                "decrypted {} segments, {} bytes -> {}{}{}",
                reports.len(),
                bytes,
                args.out.display(),
                match &mp4 {
                    Some(m) => format!(
                        " (MP4: {} frames, {:.3} s)",
                        m.frames,
                        m.duration as f64 / 90_000.0
                    ),
                    None => String::new(),
                },
                if incomplete.is_empty() {
                    String::new()
                } else {
                    format!(" (INCOMPLETE: segment {})", incomplete.join(", "))
                }
            );
            if let Some(m) = mp4.as_ref().filter(|m| m.moved_segments > 0) {
                eprintln!(
                    "WARNING: {} segments began before the previous one ended (the camera's \
                     clock went back); the MP4 plays them one after the other",
                    m.moved_segments
                );
            }
            match &share {
                Some(s) => println!(
                    "camera {}: named by the share, which account {} granted",
                    choice.public().id(),
                    s.share.account_id()
                ),
                None => println!("{}", describe_choice(&choice)),
            }
            if report_gaps(&gaps) {
                return Ok(ExitCode::from(6));
            }
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
            // Dropping the temporary file removes it: no partial plaintext is left behind.
            drop(finish);
            Err(e.into())
        }
    }
}

/// [`decrypt_footage_with`], or with `gaps` (`--allow-gaps`)
/// [`decrypt_footage_with_gaps_with`], whose gaps it stores there.
fn decrypt_window<W: Write>(
    files: &[SegmentFile],
    key: SegmentKey<'_>,
    from_seq: u64,
    allow_incomplete: bool,
    gaps: Option<&mut Vec<FootageGap>>,
    out: &mut W,
    on_segment: impl FnMut(&SegmentReport),
) -> Result<Vec<SegmentReport>, FootageError> {
    match gaps {
        None => decrypt_footage_with(files, key, from_seq, allow_incomplete, out, on_segment),
        Some(gaps) => {
            let (reports, found) = decrypt_footage_with_gaps_with(
                files,
                key,
                from_seq,
                allow_incomplete,
                out,
                on_segment,
            )?;
            *gaps = found;
            Ok(reports)
        }
    }
}

/// Prints one line per gap; returns whether any is undeclared (exit 6).
fn report_gaps(gaps: &[FootageGap]) -> bool {
    let time = |ms: Option<u64>| ms.map_or("?".to_owned(), crate::verify::format_time);
    for g in gaps {
        let (a, z) = g.segments;
        let segments = if a == z {
            format!("segment {a}")
        } else {
            format!("segments {a}..={z}")
        };
        let span = match (g.from_ms, g.to_ms) {
            (Some(f), Some(t)) if t >= f => {
                format!(" ({:.3} s)", (t - f) as f64 / 1000.0)
            }
            _ => String::new(),
        };
        eprintln!(
            "{}: {segments} {}; no verified video from {} to {}{span}",
            if g.declared {
                "GAP (declared by the camera)"
            } else {
                "GAP (NOT declared by the camera)"
            },
            g.what,
            time(g.from_ms),
            time(g.to_ms),
        );
    }
    let undeclared = gaps.iter().filter(|g| !g.declared).count();
    if undeclared > 0 {
        eprintln!(
            "error: {undeclared} of {} gaps are not declared by the camera: footage is missing or was tampered with",
            gaps.len()
        );
    }
    undeclared > 0
}

/// The `--format` given, else the one `--out`'s extension names.
fn output_format(given: Option<OutputFormat>, out: &Path) -> OutputFormat {
    given.unwrap_or_else(|| {
        let mp4 = out
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("mp4"));
        if mp4 {
            OutputFormat::Mp4
        } else {
            OutputFormat::Annexb
        }
    })
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
    // `load_headers` checked each header's signature under the key it names, so a camera
    // refused here really signed the footage (a modified key is tampering, exit 3).
    let choice = choose_camera(home.dir(), camera, &pinned, &keys)?;
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
            crate::describe::describe_camera(pinned)
        ),
    }
}
