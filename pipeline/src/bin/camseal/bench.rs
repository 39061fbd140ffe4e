//! `camseal bench`: throughput measured by the binary itself, so it runs on a board that has
//! no cargo. `camseal bench kernels` times the AES-GCM kernel the dispatcher picks, alone
//! and followed by the record digests (BLAKE3 for format v2, SHA-256 for v1).

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use camseal_kernels::{Aead, NONCE_LEN, Suite, TAG_LEN};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::cli::{BenchArgs, BenchCommand, KernelBenchArgs};

mod pipeline;
#[allow(unsafe_code)]
mod sys;

pub fn bench(args: BenchArgs) -> Result<ExitCode> {
    match args.kind {
        Some(BenchCommand::Kernels(a)) => kernels(a),
        None if args.pipeline.source.is_some() => pipeline::bench(args.pipeline),
        None => bail!(crate::error::Usage(
            "say what to measure: `camseal bench kernels` (the AEAD alone) or \
             `camseal bench --source file:PATH|soft[:WxH@FPS]` (the whole pipeline)"
                .to_owned()
        )),
    }
}

/// Seals with `seal_to` (the pipeline's out-of-place call; `--in-place`: `seal_in_place`,
/// ring's shape) for about `--seconds` per suite
/// and size, and reports decimal GB/s (10^9 plaintext bytes per second). Each size is also
/// timed sealed and then hashed (ciphertext and tag) with BLAKE3, format v2's per-record
/// digest on the seal workers, and with SHA-256, format v1's records hash, so the three are
/// measured side by side in one run.
fn kernels(args: KernelBenchArgs) -> Result<ExitCode> {
    // Only clap sets --seconds, and its parser (`numeric`) has checked the range.
    let budget = Duration::from_secs_f64(args.seconds);
    let call = if args.in_place {
        SealCall::InPlace
    } else {
        SealCall::To
    };
    let mut path = None;
    // The AEAD-alone rows come first in the JSON, in their historical order; the sealed and
    // hashed rows follow, per suite and digest.
    let mut results = Vec::new();
    let mut hashed = Vec::new();
    for suite in [Suite::Aes128Gcm, Suite::Aes256Gcm] {
        let key: Vec<u8> = (0..suite.key_len() as u8).map(|i| i ^ 0x5c).collect();
        let aead = Aead::new(suite, &key).context("build the key schedule")?;
        let name = aead.backend().name();
        if path.is_none() {
            println!("kernel path: {name}; seal call: {}", call.name());
            println!(
                "{:<SUITE_WIDTH$} {:>9} {:>9} {:>9}",
                "suite", "bytes", "GB/s", "vs AEAD"
            );
        }
        path = Some(name);
        let mut rows: [Vec<serde_json::Value>; DIGESTS.len()] = Default::default();
        for &size in SIZES {
            // The three variants of one size run back to back, so a change of load on a
            // shared machine moves their ratio as little as it can.
            let alone = measure(&aead, call, size, None, budget)?;
            println!("{:<SUITE_WIDTH$} {size:>9} {alone:>9.3}", suite.name());
            results.push(row(suite.name(), size, alone));
            for (digest, rows) in DIGESTS.into_iter().zip(&mut rows) {
                let gb_per_s = measure(&aead, call, size, Some(digest), budget)?;
                let name = format!("{}+{}", suite.name(), digest.name());
                let ratio = gb_per_s / alone;
                println!("{name:<SUITE_WIDTH$} {size:>9} {gb_per_s:>9.3} {ratio:>8.2}x");
                rows.push(row(&name, size, gb_per_s));
            }
        }
        hashed.extend(rows.into_iter().flatten());
    }
    results.extend(hashed);
    if let Some(file) = args.json {
        // The same two keys with either seal call: the caller knows which one it asked for.
        let doc = json!({ "path": path.unwrap_or("portable"), "results": results });
        let text = serde_json::to_string_pretty(&doc).context("encode the results")?;
        camseal::fsutil::write_atomic(&file, (text + "\n").as_bytes(), camseal::fsutil::PUBLIC)
            .with_context(|| format!("write {}", file.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Which seal call is timed.
#[derive(Clone, Copy, Debug)]
enum SealCall {
    /// `Aead::seal_in_place`: one buffer, as ring's `seal_in_place_separate_tag`.
    InPlace,
    /// `Aead::seal_to`: plaintext read from one buffer, ciphertext written to another, as
    /// the pipeline seals out of an encoder's buffer.
    To,
}

impl SealCall {
    /// The name printed with the kernel path.
    fn name(self) -> &'static str {
        match self {
            SealCall::InPlace => "in-place",
            SealCall::To => "seal_to",
        }
    }
}

/// The hash run over each sealed record after the AEAD.
#[derive(Clone, Copy, Debug)]
enum RecordDigest {
    /// Format v2: each record hashed on its seal worker.
    Blake3,
    /// Format v1's records hash function. v1 feeds every record of a segment into one
    /// running SHA-256 on the writer; here each record is hashed on its own, which costs one
    /// more padding block per record (noticeable at 64-256 B only).
    Sha256,
}

impl RecordDigest {
    /// The suffix after `+` in the suite name of the JSON rows.
    fn name(self) -> &'static str {
        match self {
            RecordDigest::Blake3 => "blake3",
            RecordDigest::Sha256 => "sha256",
        }
    }

    fn hash(self, sealed: &[u8]) -> [u8; 32] {
        match self {
            RecordDigest::Blake3 => *blake3::hash(sealed).as_bytes(),
            RecordDigest::Sha256 => Sha256::digest(sealed).into(),
        }
    }
}

/// One row of the JSON report. `gb_per_s` counts plaintext bytes, hashed rows included.
fn row(suite: &str, size: usize, gb_per_s: f64) -> serde_json::Value {
    json!({
        "suite": suite,
        "bytes": size,
        "gb_per_s": gb_per_s,
    })
}

/// GB/s of sealing `size`-byte messages (and, with `digest`, hashing each sealed record:
/// ciphertext and tag) for about `budget`, after a short warm-up.
fn measure(
    aead: &Aead,
    call: SealCall,
    size: usize,
    digest: Option<RecordDigest>,
    budget: Duration,
) -> Result<f64> {
    let input: Vec<u8> = (0..size).map(|i| (i as u8).wrapping_mul(31)).collect();
    // A record's sealed bytes, ciphertext then tag (its few length and header bytes left out).
    let mut sealed = vec![0u8; size + TAG_LEN];
    let nonce = [0x24; NONCE_LEN];
    let aad = [0xad; AAD_LEN];
    let mut seal = |n: u64| -> Result<()> {
        for _ in 0..n {
            let (ciphertext, tag_out) = sealed.split_at_mut(size);
            let tag = match call {
                // Seals what the last round left there: same length, same work.
                SealCall::InPlace => aead.seal_in_place(&nonce, &aad, black_box(ciphertext)),
                SealCall::To => {
                    aead.seal_to(&nonce, &aad, black_box(&input), black_box(ciphertext))
                }
            }
            .context("seal")?;
            if let Some(digest) = digest {
                tag_out.copy_from_slice(&tag);
                black_box(digest.hash(black_box(&sealed)));
            }
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
/// The digests timed after the AEAD, in the order their rows are printed.
const DIGESTS: [RecordDigest; 2] = [RecordDigest::Blake3, RecordDigest::Sha256];
/// Width of the suite column: the longest name, `aes-128-gcm+blake3`.
const SUITE_WIDTH: usize = 18;
/// Bytes sealed before timing starts (caches, frequency ramp).
const WARM_UP_BYTES: usize = 4 << 20;
