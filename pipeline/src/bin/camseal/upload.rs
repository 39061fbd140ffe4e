//! `camseal upload`: the uploader as a separate service, and the options `run` shares.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use camseal::spool::{Spool, SpoolConfig};
use camseal::upload::backoff::Backoff;
use camseal::upload::{Mode, NetConfig, Sink, Uploader, UploaderConfig, open_sink};

use crate::cli::{UploadArgs, UploadOpts};

pub fn upload(args: UploadArgs) -> Result<ExitCode> {
    if !args.spool.is_dir() {
        bail!(
            "spool {} does not exist (it is made by `camseal run --spool`)",
            args.spool.display()
        );
    }
    let spool = Spool::open(&args.spool, SpoolConfig::default())
        .with_context(|| format!("cannot open the spool {}", args.spool.display()))?;
    let uploader = make_uploader(&spool, &args.sink, &args.upload)?;
    if args.once {
        let deadline = seconds("--deadline", args.deadline)?;
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let timer = {
            let uploader = uploader.clone();
            std::thread::spawn(move || {
                // Nothing is ever sent: the channel closes when the drain ends first.
                let expired =
                    wait.recv_timeout(deadline) == Err(std::sync::mpsc::RecvTimeoutError::Timeout);
                if expired {
                    uploader.stop();
                }
                expired
            })
        };
        let result = drain_with_progress(&spool, &uploader, args.quiet);
        drop(done);
        let expired = timer.join().unwrap_or(false);
        let pending = spool.pending().map_or(0, |p| p.len());
        if expired && pending > 0 && result.is_ok() {
            let report = uploader.report();
            bail!(
                "--deadline of {} s passed: {pending} segments are still pending in {} \
                 (uploaded {} segments, {} bytes; {} failed attempts); run `camseal upload --once` again when the sink is reachable",
                args.deadline,
                args.spool.display(),
                report.uploaded,
                report.bytes,
                report.failures
            );
        }
        let report = result.with_context(|| {
            format!(
                "upload stopped; {} segments are kept in {}",
                spool.pending().map_or(0, |p| p.len()),
                args.spool.display()
            )
        })?;
        println!(
            "uploaded {} segments ({} bytes), {} failed attempts; spool {} is empty",
            report.uploaded,
            report.bytes,
            report.failures,
            args.spool.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("cannot install the signal handler")?;
    }
    let watcher = {
        let uploader = uploader.clone();
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
            uploader.stop();
        })
    };
    let report = uploader.run(Mode::Continuous)?;
    stop.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    println!(
        "stopped: uploaded {} segments ({} bytes), {} failed attempts",
        report.uploaded, report.bytes, report.failures
    );
    Ok(ExitCode::SUCCESS)
}

/// `uploader.run(Mode::Drain)`, with progress over what the spool holds when it starts.
fn drain_with_progress(
    spool: &Spool,
    uploader: &Uploader,
    quiet: bool,
) -> Result<camseal::upload::UploadReport, camseal::upload::UploadError> {
    let pending = spool.pending().unwrap_or_default();
    let progress = crate::progress::Progress::start(
        "upload",
        pending.len() as u64,
        Some(pending.iter().map(|p| p.bytes).sum()),
        quiet,
    );
    let done = AtomicBool::new(false);
    let result = std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                let report = uploader.report();
                progress.set(report.uploaded, report.bytes);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let result = uploader.run(Mode::Drain);
        done.store(true, Ordering::Relaxed);
        result
    });
    let report = uploader.report();
    progress.set(report.uploaded, report.bytes);
    // Stopped by --deadline with segments left is not done, even though the drain itself
    // returned without an error.
    if result.is_ok() && report.uploaded >= pending.len() as u64 {
        progress.finish();
    }
    result
}

/// An uploader for `spool` and the sink URLs, with the shared options.
pub fn make_uploader(spool: &Spool, sinks: &[String], opts: &UploadOpts) -> Result<Uploader> {
    let net = net_config(opts.connect_timeout, opts.io_timeout)?;
    let backoff = Backoff {
        base: seconds("--retry-base-delay", opts.retry_base_delay)?,
        max: seconds("--retry-max-delay", opts.retry_max_delay)?,
    };
    if opts.upload_concurrency == 0 || opts.upload_concurrency > 64 {
        bail!("--upload-concurrency must be between 1 and 64");
    }
    if opts.upload_max_bytes_per_sec == Some(0) {
        bail!("--upload-max-bytes-per-sec must be positive");
    }
    let mut opened: Vec<(String, Box<dyn Sink>)> = Vec::new();
    for url in sinks {
        let sink = open_sink(url, &net)
            .with_context(|| format!("--sink {}", camseal::upload::redact_url(url)))?;
        opened.push((url.clone(), sink));
    }
    let config = UploaderConfig {
        concurrency: opts.upload_concurrency,
        backoff,
        max_bytes_per_sec: opts.upload_max_bytes_per_sec,
        ..UploaderConfig::default()
    };
    Ok(Uploader::new(spool.clone(), opened, config))
}

pub fn net_config(connect: f64, io: f64) -> Result<NetConfig> {
    Ok(NetConfig {
        connect_timeout: seconds("--connect-timeout", connect)?,
        io_timeout: seconds("--io-timeout", io)?,
    })
}

fn seconds(flag: &str, v: f64) -> Result<Duration> {
    if !(v.is_finite() && v > 0.0 && v <= 86_400.0) {
        bail!("{flag} must be a positive number of seconds (at most a day)");
    }
    Ok(Duration::from_secs_f64(v))
}
