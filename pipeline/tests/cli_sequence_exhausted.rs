//! A stream whose sequence numbers are used up is refused with a clear error; the number
//! never wraps from 2^64 - 1 to 0 (which would restart the chain with numbers already used).

mod cli;

use std::fs;

use cli::{Setup, segments};

fn chain_state(next_seq: u64) -> String {
    format!(
        "camseal-chain-v2\nnext_seq {next_seq}\nprev_header_hash {}\n",
        "07".repeat(32)
    )
}

#[test]
fn an_exhausted_stream_is_refused_and_never_wraps() {
    let setup = Setup::new();
    let chain = setup.camera.join("streams").join("0.chain");
    fs::create_dir_all(chain.parent().unwrap()).unwrap();

    // Nothing left: refused before any segment is written, the state file untouched.
    fs::write(&chain, chain_state(u64::MAX)).unwrap();
    let out = setup.path("out-max");
    let res = setup.run("soft:64x64@5", &out, &["--duration", "1"]);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(!res.status.success(), "run succeeded: {stderr}");
    assert!(stderr.contains("exhausted"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!out.exists() || segments(&out).is_empty());
    assert_eq!(fs::read_to_string(&chain).unwrap(), chain_state(u64::MAX));

    // One number left: that segment is written; the one after it is refused, and the
    // state file never goes back to 0.
    fs::write(&chain, chain_state(u64::MAX - 1)).unwrap();
    let out = setup.path("out-last");
    let res = setup.run(
        "soft:64x64@5",
        &out,
        &["--duration", "3", "--segment-seconds", "0.5"],
    );
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(!res.status.success(), "run succeeded: {stderr}");
    assert!(stderr.contains("exhausted"), "{stderr}");
    let names: Vec<String> = segments(&out)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(
        names[0].ends_with(&format!("-{}.cseg", u64::MAX - 1)),
        "{names:?}"
    );
    let state = fs::read_to_string(&chain).unwrap();
    assert!(
        state.contains(&format!("next_seq {}\n", u64::MAX)),
        "{state}"
    );
}
