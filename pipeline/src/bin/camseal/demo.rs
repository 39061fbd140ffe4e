//! `camseal demo`: the main job on embedded defaults, end to end, in a scratch directory.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use camseal::engine::Stage;
use camseal::footage::{collect_paths, decrypt_footage, verify_footage};
use camseal::fsutil::{PRIVATE, TempFile};
use camseal::home::{CameraHome, ViewerHome};
use camseal::keys::{AccountSecret, CameraSecret, Passphrase, RecipientList, seal_backup};
use sha2::{Digest, Sha256};

use crate::cli::{DemoArgs, RunArgs};

pub fn demo(args: DemoArgs) -> Result<ExitCode> {
    if !(args.duration.is_finite() && args.duration > 0.0 && args.duration <= 3600.0) {
        bail!("--duration must be between 0 and 3600 seconds");
    }
    let scratch = args.dir.is_none();
    let dir = match args.dir {
        Some(d) => d,
        None => scratch_dir()?,
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let result = demo_in(&dir, args.duration, args.keep);
    if !args.keep {
        // The demo's private keys and decrypted video must not outlive it unasked.
        let removed = if scratch {
            std::fs::remove_dir_all(&dir)
        } else {
            ["viewer", "camera", "segments", "decrypted.h264"]
                .iter()
                .map(|name| dir.join(name))
                .filter(|p| p.symlink_metadata().is_ok())
                .try_for_each(|p| {
                    if p.is_dir() {
                        std::fs::remove_dir_all(p)
                    } else {
                        std::fs::remove_file(p)
                    }
                })
        };
        match removed {
            Ok(()) => println!(
                "removed the demo's keys, segments and decrypted video from {} (`camseal demo --keep` keeps them)",
                dir.display()
            ),
            Err(e) => eprintln!(
                "warning: cannot remove the demo's files in {} ({e}): they hold private keys and plaintext, remove them by hand",
                dir.display()
            ),
        }
    }
    result
}

fn demo_in(dir: &std::path::Path, duration: f64, keep: bool) -> Result<ExitCode> {
    let viewer_dir = dir.join("viewer");
    let camera_dir = dir.join("camera");
    let segments_dir = dir.join("segments");
    println!("camseal demo in {}", dir.display());

    // 1. A viewer account with its recovery backup, and its signed recipient list.
    let viewer = ViewerHome::create(&viewer_dir)?;
    let account = AccountSecret::generate()?;
    let passphrase = Passphrase::generate()?;
    // Hybrid post-quantum, as `viewer init` makes it.
    viewer.write_account_kem(camseal::keys::KemKind::XWing)?;
    viewer.write_account(&account, &seal_backup(&account, &passphrase)?)?;
    let list = RecipientList {
        version: viewer.next_recipients_version()?,
        account: account.public().ed25519,
        recipients: viewer.recipients()?,
    };
    let signed = list.sign(&account)?;
    viewer.record_recipients_version(list.version)?;
    println!(
        "  viewer account {} (recovery backup written)",
        account.public().id()
    );

    // 2. A camera that trusts that list, and that the viewer pins (`viewer cameras add`):
    // decrypt accepts footage only from pinned cameras.
    let camera = CameraHome::create(&camera_dir)?;
    camera.write_camera(&CameraSecret::generate()?)?;
    camera.trust(&signed)?;
    let camera_public = camera.camera_public()?;
    viewer.pin_camera(&camera_public, Some(DEMO_CAMERA_NAME))?;
    println!(
        "  camera {} trusts {} recipient(s); the viewer pins it as {DEMO_CAMERA_NAME:?}",
        camera_public.id(),
        list.recipients.len()
    );

    // 3. Seal the software encoder's test pattern.
    let run = RunArgs {
        home: camera_dir.clone(),
        source: "soft".into(),
        codec: None,
        input: None,
        out: Some(segments_dir.clone()),
        spool: None,
        sink: Vec::new(),
        spool_max_bytes: None,
        spool_policy: "drop-oldest".into(),
        upload_grace: 0.0,
        upload: crate::cli::UploadOpts {
            upload_concurrency: 1,
            upload_max_bytes_per_sec: None,
            connect_timeout: 10.0,
            io_timeout: 30.0,
            retry_base_delay: 0.5,
            retry_max_delay: 60.0,
        },
        duration: Some(duration),
        realtime: false,
        segment_seconds: 4.0,
        checkpoint_ms: 1000,
        fps: None,
        stream: 0,
        suite: "aes-128-gcm".into(),
        max_chunk: 65536,
        bitrate: 2_000_000,
        workers: None,
        overload: camseal::engine::Overload::Block,
        padding: camseal::segment::padding::Padding::Off,
        config: None,
        log_level: "info".into(),
        control: None,
        control_interval: 30.0,
        live: None,
    };
    let mut input_hash = Sha256::new();
    let stop = AtomicBool::new(false);
    let summary = crate::run::record(&run, &stop, false, &mut |au| input_hash.update(au))?;
    let input_hash = input_hash.finalize();

    // 4. Decrypt as the viewer (footage of a pinned camera only), and verify as a third
    // party with only camera.pub.
    let started = Instant::now();
    let paths = collect_paths(std::slice::from_ref(&segments_dir))?;
    let (_, files) = crate::decrypt::trusted_footage(&viewer, None, &paths)?;
    let out_path = dir.join("decrypted.h264");
    // Plaintext: owner-only from the start (`fsutil`).
    let mut tmp = TempFile::for_target(&out_path, PRIVATE)?;
    let mut out = BufWriter::new(tmp.file().try_clone()?);
    let mut output_hash = HashingWriter(Sha256::new());
    let secret = viewer.account()?.recipient_secrets();
    let reports = decrypt_footage(
        &files,
        &secret,
        false,
        &mut Tee(&mut out, &mut output_hash),
        |_| {},
    )?;
    out.flush()?;
    drop(out);
    tmp.persist(&out_path)?;
    let decrypt_time = started.elapsed();
    let identical = output_hash.0.finalize() == input_hash;
    let (verified, chain) = verify_footage(&files);
    let verified_ok = verified.iter().filter(|r| r.is_ok()).count();

    let s = &summary.stats;
    let secs = summary.elapsed.as_secs_f64().max(1e-9);
    let hist = s.latency.histogram(Stage::Appended);
    println!(
        "  sealed {} frames into {} segments: {} video bytes -> {} bytes on disk",
        s.frames, s.segments, s.video_bytes, s.segment_bytes
    );
    println!(
        "  overhead {:.2}%, throughput {:.1} MB/s of video ({:.1} frames/s, encoder included)",
        (s.segment_bytes as f64 / s.video_bytes.max(1) as f64 - 1.0) * 100.0,
        s.video_bytes as f64 / secs / 1e6,
        s.frames as f64 / secs
    );
    println!(
        "  per-frame latency (dequeue to record appended): p50 {:.1} us, p99 {:.1} us, max {:.1} us",
        hist.value_at_quantile(0.50) as f64 / 1e3,
        hist.value_at_quantile(0.99) as f64 / 1e3,
        hist.max() as f64 / 1e3
    );
    println!(
        "  decrypted {} segments in {:.2} s: output {} the input stream",
        reports.len(),
        decrypt_time.as_secs_f64(),
        if identical {
            "is byte-identical to"
        } else {
            "DIFFERS from"
        }
    );
    println!(
        "  verified {}/{} segments without keys; chain {}",
        verified_ok,
        files.len(),
        if chain.is_ok() { "intact" } else { "BROKEN" }
    );
    if keep {
        print_files(dir, &camera, &out_path);
    }
    if !identical || verified_ok != files.len() || chain.is_err() {
        bail!("demo round trip failed");
    }
    Ok(ExitCode::SUCCESS)
}

fn print_files(dir: &std::path::Path, camera: &CameraHome, out_path: &std::path::Path) {
    let viewer_dir = dir.join("viewer");
    let camera_dir = dir.join("camera");
    let segments_dir = dir.join("segments");
    println!(
        "files (they hold private keys and plaintext: `rm -r {}` removes them):",
        dir.display()
    );
    println!("  viewer home   {}", viewer_dir.display());
    println!("  camera home   {}", camera_dir.display());
    println!("  segments      {}", segments_dir.display());
    println!("  decrypted     {}", out_path.display());
    println!(
        "try: camseal viewer cameras list --home {}",
        viewer_dir.display()
    );
    println!(
        "     camseal decrypt --home {} --out clip.h264 {}",
        viewer_dir.display(),
        segments_dir.display()
    );
    println!(
        "     camseal verify --camera {} {}",
        camera.public_path().display(),
        segments_dir.display()
    );
}

fn scratch_dir() -> Result<PathBuf> {
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    Ok(std::env::temp_dir().join(format!("camseal-demo-{}-{stamp}", std::process::id())))
}

struct HashingWriter(Sha256);

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Tee<'a, A: Write, B: Write>(&'a mut A, &'a mut B);

impl<A: Write, B: Write> Write for Tee<'_, A, B> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(buf)?;
        self.1.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()?;
        self.1.flush()
    }
}

/// The name the demo viewer pins its camera under.
const DEMO_CAMERA_NAME: &str = "demo camera";
