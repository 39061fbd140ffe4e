//! `camseal bench`: throughput measured by the binary itself, so it runs on a board that has
//! no cargo. `camseal bench kernels` times the AES-GCM kernel the dispatcher picks.

use std::fs;
use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use camseal_kernels::{Aead, NONCE_LEN, Suite};
use serde_json::json;

use crate::cli::{BenchArgs, BenchCommand, KernelBenchArgs};

mod pipeline;

pub fn bench(args: BenchArgs) -> Result<ExitCode> {
    match args.kind {
        Some(BenchCommand::Kernels(a)) => kernels(a),
        None if args.pipeline.source.is_some() => pipeline::bench(args.pipeline),
        None => bail!(
            "say what to measure: `camseal bench kernels` (the AEAD alone) or \
             `camseal bench --source file:PATH|soft[:WxH@FPS]` (the whole pipeline)"
        ),
    }
}

/// Seals with `seal_to` (the pipeline's out-of-place call) for about `--seconds` per suite
/// and size, and reports decimal GB/s (10^9 bytes per second).
fn kernels(args: KernelBenchArgs) -> Result<ExitCode> {
    if !(args.seconds.is_finite() && args.seconds > 0.0 && args.seconds <= MAX_SECONDS) {
        bail!("--seconds must be more than 0 and at most {MAX_SECONDS}");
    }
    let budget = Duration::from_secs_f64(args.seconds);
    let mut path = None;
    let mut results = Vec::new();
    for suite in [Suite::Aes128Gcm, Suite::Aes256Gcm] {
        let key: Vec<u8> = (0..suite.key_len() as u8).map(|i| i ^ 0x5c).collect();
        let aead = Aead::new(suite, &key).context("build the key schedule")?;
        let name = aead.backend().name();
        if path.is_none() {
            println!("kernel path: {name}");
            println!("{:<12} {:>9} {:>9}", "suite", "bytes", "GB/s");
        }
        path = Some(name);
        for &size in SIZES {
            let gb_per_s = measure(&aead, size, budget)?;
            println!("{:<12} {size:>9} {gb_per_s:>9.3}", suite.name());
            results.push(json!({
                "suite": suite.name(),
                "bytes": size,
                "gb_per_s": gb_per_s,
            }));
        }
    }
    if let Some(file) = args.json {
        let doc = json!({ "path": path.unwrap_or("portable"), "results": results });
        let text = serde_json::to_string_pretty(&doc).context("encode the results")?;
        fs::write(&file, text + "\n").with_context(|| format!("write {}", file.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// GB/s of sealing `size`-byte messages for about `budget`, after a short warm-up.
fn measure(aead: &Aead, size: usize, budget: Duration) -> Result<f64> {
    let input: Vec<u8> = (0..size).map(|i| (i as u8).wrapping_mul(31)).collect();
    let mut output = vec![0u8; size];
    let nonce = [0x24; NONCE_LEN];
    let aad = [0xad; AAD_LEN];
    let mut seal = |n: u64| -> Result<()> {
        for _ in 0..n {
            aead.seal_to(&nonce, &aad, black_box(&input), black_box(&mut output))
                .context("seal")?;
        }
        Ok(())
    };
    seal(1 + (WARM_UP_BYTES / size) as u64)?;

    // Grow the batch until one takes a measurable time, then run batches until the budget
    // is spent: the clock is read rarely even for 64-byte messages.
    let mut batch = 1u64;
    let mut done = 0u64;
    let start = Instant::now();
    loop {
        seal(batch)?;
        done += batch;
        let elapsed = start.elapsed();
        if elapsed >= budget {
            return Ok((done * size as u64) as f64 / elapsed.as_secs_f64() / 1e9);
        }
        if elapsed < budget / 16 {
            batch *= 2;
        }
    }
}

/// The chunk sizes of the pipeline: small NAL units, an MTU-sized live packet, `max_chunk`
/// sizes and large keyframes.
const SIZES: &[usize] = &[64, 256, 1500, 16 << 10, 64 << 10, 256 << 10, 1 << 20];
/// camseal's record AAD: H(header) (32) | pts (8) | flags (1).
const AAD_LEN: usize = 41;
/// Bytes sealed before timing starts (caches, frequency ramp).
const WARM_UP_BYTES: usize = 4 << 20;
/// Upper bound of `--seconds`, per point (14 points).
const MAX_SECONDS: f64 = 60.0;
