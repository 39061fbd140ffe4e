//! Helpers of the element's tests.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use camseal::home::CameraHome;
use camseal::keys::{
    AccountSecret, CameraSecret, KEM_X25519_HKDF_SHA256, Recipient, RecipientList,
};
use camseal::segment::Item;
use camseal::segment::read::{Opener, SegmentReader};
use gst::prelude::*;

/// The longest any state change or run may take before a test calls it a hang.
pub const HANG: Duration = Duration::from_secs(20);

/// GStreamer, with the plugin registered in this process.
pub fn init() {
    gst::init().unwrap();
    // Registering twice (a second test in the same process) is refused; the first did it.
    let _ = gstcamseal::plugin_register_static();
}

/// A camera home that trusts one account; returns the account.
pub fn camera_home(dir: &Path) -> AccountSecret {
    let home = CameraHome::create(dir).unwrap();
    home.write_camera(&CameraSecret::from_seed([5; 32]))
        .unwrap();
    let account = AccountSecret::from_seed([6; 32]);
    let list = RecipientList {
        version: 1,
        account: account.public().ed25519,
        recipients: vec![Recipient {
            kem: KEM_X25519_HKDF_SHA256,
            public_key: account.public().x25519.to_vec(),
            label: "account".into(),
        }],
    };
    home.trust(&list.sign(&account).unwrap()).unwrap();
    account
}

pub fn entries(dir: &str) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

/// The names of this process's threads.
pub fn thread_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path().join("comm")).ok())
        .map(|n| n.trim().to_owned())
        .collect();
    names.sort();
    names
}

/// Threads the sealing engine started (named `camseal-…`).
pub fn camseal_threads() -> usize {
    thread_names()
        .iter()
        .filter(|n| n.starts_with("camseal-"))
        .count()
}

/// Opens every segment in `dir`, checking each one's records and trailer; returns how many
/// there are and the frames' bytes.
pub fn open_segments(dir: &Path, account: &AccountSecret) -> (usize, usize) {
    let secret = account.x25519_secret();
    let mut segments = 0;
    let mut video = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "cseg") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let mut reader = SegmentReader::new(bytes.as_slice()).unwrap();
        let mut opener = Opener::new(reader.header(), &secret).unwrap();
        loop {
            match reader.next_item().unwrap() {
                Item::Record(r) => {
                    opener.open(&r, &mut video).unwrap();
                }
                Item::Checkpoint(c) => {
                    opener.checkpoint(&c).unwrap();
                }
                Item::Trailer(t) => {
                    opener.finish(&t).unwrap();
                    break;
                }
            }
        }
        segments += 1;
    }
    (segments, video.len())
}

pub fn set_state(pipeline: &gst::Pipeline, state: gst::State) {
    pipeline
        .set_state(state)
        .unwrap_or_else(|e| panic!("set_state({state:?}): {e}"));
    let (result, now, _) = pipeline.state(gst::ClockTime::from_seconds(HANG.as_secs()));
    result.unwrap_or_else(|e| panic!("reaching {state:?}: {e} (now {now:?})"));
    assert_eq!(now, state, "still not {state:?} after {HANG:?}: a hang");
}
