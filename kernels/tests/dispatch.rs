//! Which path runs: detection per architecture, forcing a path through the API, lowering of
//! unsupported requests, and the `CAMSEAL_KERNEL` cap (checked in a child process, since the
//! variable is read once per process).

use std::process::Command;

use camseal_kernels::test_util::skip_unless;
use camseal_kernels::{Aead, Backend, Suite};

/// Under `qemu-aarch64 -cpu max` (scripts/test-aarch64.sh) the CPU has AES and PMULL, and
/// the dispatcher must pick that kernel.
#[test]
#[cfg_attr(
    not(target_arch = "aarch64"),
    ignore = "aarch64 only (scripts/test-aarch64.sh runs it under qemu-aarch64 -cpu max)"
)]
fn aarch64_selects_aes_pmull() {
    assert_eq!(
        Backend::aes_pmull(),
        Some(Backend::ArmAesPmull),
        "this aarch64 CPU reports no AES/PMULL"
    );
    if cap_is_set() {
        return;
    }
    assert_eq!(Backend::detect(), Backend::ArmAesPmull);
    let aead = Aead::new(Suite::Aes128Gcm, &[7; 16]).unwrap();
    assert_eq!(aead.backend().name(), "aarch64/aes-pmull");
}

#[test]
#[cfg_attr(not(target_arch = "x86_64"), ignore = "x86-64 only")]
fn x86_64_selects_best_tier() {
    assert_eq!(Backend::aes_pmull(), None);
    if cap_is_set() {
        return;
    }
    let want = Backend::vaes()
        .or(Backend::aesni())
        .unwrap_or(Backend::Portable);
    assert_eq!(Backend::detect(), want);
    assert_eq!(
        Aead::new(Suite::Aes256Gcm, &[7; 32]).unwrap().backend(),
        want
    );
}

/// Each explicit constructor forces its path; absent tiers are reported as skipped.
#[test]
fn each_path_can_be_forced() {
    let tiers = [
        ("x86-64/vaes-avx2", Backend::vaes()),
        ("x86-64/aesni-clmul", Backend::aesni()),
        ("aarch64/aes-pmull", Backend::aes_pmull()),
        ("portable", Some(Backend::portable())),
    ];
    for (name, backend) in tiers {
        let test = format!("each_path_can_be_forced[{name}]");
        let Some(b) = skip_unless(backend, &test, "this CPU lacks that tier") else {
            continue;
        };
        assert_eq!(b.name(), name);
        assert!(b.is_supported());
        for suite in [Suite::Aes128Gcm, Suite::Aes256Gcm] {
            let aead = Aead::with_backend(suite, &vec![1; suite.key_len()], b).unwrap();
            assert_eq!(aead.backend(), b);
        }
    }
}

/// Naming a backend this CPU lacks never runs it: the key lands on a supported tier that
/// is not above the one requested.
#[test]
fn unsupported_requests_are_lowered() {
    let all = [
        Backend::VaesVpclmul,
        Backend::AesNiClmul,
        Backend::ArmAesPmull,
        Backend::Portable,
    ];
    for requested in all {
        let got = Aead::with_backend(Suite::Aes128Gcm, &[3; 16], requested)
            .unwrap()
            .backend();
        assert!(got.is_supported(), "{requested} -> {got}");
        if requested.is_supported() {
            assert_eq!(got, requested);
        } else {
            assert_ne!(got, Backend::VaesVpclmul, "{requested} -> {got}");
            if requested != Backend::VaesVpclmul {
                assert_eq!(got, Backend::Portable, "{requested} -> {got}");
            }
        }
    }
}

/// `CAMSEAL_KERNEL` caps the tier, in a fresh process each time.
#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the test binary itself, which needs binfmt under emulation"
)]
fn env_cap_lowers_the_tier() {
    let best = Backend::vaes()
        .or(Backend::aesni())
        .or(Backend::aes_pmull())
        .unwrap_or(Backend::Portable);
    let middle = Backend::aesni()
        .or(Backend::aes_pmull())
        .unwrap_or(Backend::Portable);
    let cases = [
        ("portable", Backend::Portable),
        ("x86-64/aesni-clmul", middle),
        ("aesni-clmul", middle),
        ("aes-pmull", middle),
        ("vaes-avx2", best),
        ("no-such-kernel", Backend::Portable),
    ];
    for (cap, want) in cases {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "report_detected_backend",
                "--ignored",
                "--nocapture",
            ])
            .args(["--test-threads", "1"])
            .env("CAMSEAL_KERNEL", cap)
            .output()
            .expect("run the test binary");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{cap}: {stdout}");
        let line = format!("detected={}\n", want.name());
        assert!(
            stdout.contains(&line),
            "CAMSEAL_KERNEL={cap}: want {line} in {stdout}"
        );
    }
}

/// Helper for `env_cap_lowers_the_tier`, run in a child process.
#[test]
#[ignore = "helper: run by env_cap_lowers_the_tier with CAMSEAL_KERNEL set"]
fn report_detected_backend() {
    println!("detected={}", Backend::detect().name());
    let available = Backend::available();
    assert_eq!(available.first(), Some(&Backend::detect()));
}

fn cap_is_set() -> bool {
    std::env::var_os("CAMSEAL_KERNEL").is_some()
}
