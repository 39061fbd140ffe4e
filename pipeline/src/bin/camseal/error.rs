//! How the binary reports a failure: one line saying what went wrong, with its causes, then
//! (when there is one) a line saying what to do about it, and an exit code per kind of
//! failure so scripts can tell them apart:
//!
//! | code | meaning |
//! |---|---|
//! | 1 | any other error (bad input, I/O, configuration) |
//! | 2 | command-line usage error: from clap, or a combination of flags the command cannot act on, or a `run --config` file that cannot be read or holds an unknown key or a bad value |
//! | 3 | tampered: a header, record, trailer or stream head was modified, or records were reordered |
//! | 4 | truncated: a segment is cut short |
//! | 5 | not a recipient: the key cannot open the segment |
//! | 6 | chain broken: a segment is missing or was replaced, or the stream head names a newer segment than the newest given |
//! | 7 | wrong camera: signed by another camera than expected, or (`decrypt` without
//! `--camera`) by a camera the viewer home does not pin |
//! | 8 | malformed: a field breaks the format's rules (FORMAT.md §9) |
//! | 9 | busy: another `camseal run` records the same stream (its lock file is named) |
//!
//! When several apply (FORMAT.md §9): a header that fails to load (its signature, its
//! rules, its camera) decides first; then the chain, which the signed headers decide; then
//! the first segment in stream order that fails, and within it the first check that fails
//! in reading order.

use camseal::footage::FootageError;
use camseal::fsutil::LockError;
use camseal::home::{CameraChoiceError, HomeError};
use camseal::segment::SegmentError;
use camseal::segment::head::HeadError;

/// A command line that clap accepts but the command cannot act on (a missing choice, flags
/// that do not go together): exit code 2, like clap's own usage errors, so that a script can
/// tell a mistake in its command line from a failure of the work.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// Prints `error: ...` (with the chain of causes on the same line) to standard error, and a
/// hint line when one helps.
pub fn report(e: &anyhow::Error) {
    let mut line = format!("error: {e}");
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    // Under systemd, the priority journald files the line under (see logging.rs).
    let (error, note) = if crate::logging::under_journal() {
        ("<3>", "<5>")
    } else {
        ("", "")
    };
    eprintln!("{error}{line}");
    if let Some(hint) = hint(e) {
        eprintln!("{note}hint: {hint}");
    }
}

/// The exit code for an error (see the module docs).
pub fn exit_code_for(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(LockError::Held { .. }) = cause.downcast_ref::<LockError>() {
            return 9;
        }
        if cause.downcast_ref::<Usage>().is_some() {
            return 2;
        }
        if let Some(c) = cause.downcast_ref::<CameraChoiceError>() {
            return match c {
                CameraChoiceError::NonePinned { .. } | CameraChoiceError::NotPinned { .. } => 7,
                _ => 1,
            };
        }
        if let Some(f) = cause.downcast_ref::<FootageError>() {
            return footage_code(f);
        }
        if let Some(s) = cause.downcast_ref::<SegmentError>() {
            return segment_code(s);
        }
        match cause.downcast_ref::<camseal::live::LiveError>() {
            Some(camseal::live::LiveError::Segment(s)) => return segment_code(s),
            Some(camseal::live::LiveError::Protocol(_)) => return 8,
            Some(camseal::live::LiveError::UntrustedCamera(_)) => return 7,
            None => {}
        }
        if let Some(h) = cause.downcast_ref::<HeadError>() {
            return head_code(h);
        }
    }
    1
}

/// The exit code for a stream head that fails: forged (3), contradicted by the segments
/// (withheld or replaced: the chain is broken, 6), another camera's (7).
pub fn head_code(h: &HeadError) -> u8 {
    match h {
        HeadError::BadSignature => 3,
        HeadError::Replaced { .. } | HeadError::Withheld { .. } => 6,
        HeadError::WrongCamera { .. } => 7,
        _ => 1,
    }
}

/// The exit code for a footage error (see the module docs).
pub fn footage_code(f: &FootageError) -> u8 {
    match f {
        FootageError::Segment { source, .. } => segment_code(source),
        FootageError::CutOffInside { .. } => 4,
        FootageError::Share { source, .. } => match source {
            camseal::share::ShareError::Mismatch { .. } => 3,
            _ => 5,
        },
        FootageError::MissingSegment { .. }
        | FootageError::MissingStart { .. }
        | FootageError::ChainMismatch { .. }
        | FootageError::Duplicate { .. } => 6,
        _ => 1,
    }
}

/// The exit code for a segment error (see the module docs).
pub fn segment_code(e: &SegmentError) -> u8 {
    match e {
        SegmentError::Malformed(_) => 8,
        SegmentError::Truncated(_) => 4,
        SegmentError::NotARecipient => 5,
        SegmentError::WrongCamera { .. } => 7,
        SegmentError::Io(_)
        | SegmentError::Random
        | SegmentError::Limit(_)
        | SegmentError::NotASegment
        | SegmentError::UnsupportedVersion(_)
        | SegmentError::UnsupportedSuite(_) => 1,
        _ => 3,
    }
}

fn hint(e: &anyhow::Error) -> Option<String> {
    if e.chain().any(|c| {
        matches!(
            c.downcast_ref::<HeadError>(),
            Some(HeadError::Withheld { .. })
        )
    }) {
        return Some(
            "the camera published newer segments than were given: fetch again, or ask the storage provider why they are missing"
                .to_owned(),
        );
    }
    for cause in e.chain() {
        if let Some(c) = cause.downcast_ref::<CameraChoiceError>() {
            let (Some(camera), Some(home)) = (c.camera(), c.home()) else {
                return None;
            };
            return Some(format!(
                "only if you trust camera {}, pin its key: `camseal viewer cameras add --home {} camera.pub` (or name the camera for this run with `--camera camera.pub`)",
                camera.id(),
                home.display()
            ));
        }
        if let Some(HomeError::UnknownCamera { dir, .. }) = cause.downcast_ref::<HomeError>() {
            return Some(format!(
                "`camseal viewer cameras list --home {}` shows the pinned cameras",
                dir.display()
            ));
        }
    }
    hint_for_code(exit_code_for(e)).map(str::to_owned)
}

/// The recommendation line for an exit code, when one helps.
pub fn hint_for_code(code: u8) -> Option<&'static str> {
    match code {
        4 => Some(
            "a crash or power loss cuts the last segment short; `camseal decrypt --allow-incomplete` salvages its authenticated prefix",
        ),
        5 => Some(
            "segments are readable only by the keys on the camera's recipient list when they were sealed",
        ),
        6 => Some(
            "a segment between two given ones is missing or was replaced; fetch it again or report the gap",
        ),
        7 => Some(
            "check that the camera key (camera.pub) belongs to the camera that recorded this footage",
        ),
        9 => Some("stop the other `camseal run` first, or record another stream with `--stream N`"),
        _ => None,
    }
}
