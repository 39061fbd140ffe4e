//! The one `unsafe` call of the crate: mapping a stream file into memory.

#![allow(unsafe_code)]

use std::fs::File;
use std::io;

use memmap2::{Advice, Mmap};

/// Maps `file` read-only.
///
/// The mapping reflects the file as it is on disk, not a snapshot: camseal expects a replayed
/// recording not to be modified while it is mapped. If it is rewritten in place, packets may
/// see the new bytes (they are then merely wrong video); if it is **truncated**, reading a page
/// past the new end raises `SIGBUS` and kills the process. That is the accepted price of
/// replaying without copying; replay is a test and benchmark source, not the camera's input.
pub(crate) fn map_read_only(file: &File) -> io::Result<Mmap> {
    // SAFETY: `Mmap::map` is unsafe because another process could change or truncate the file
    // while it is mapped, which would break the immutability `&[u8]` promises or fault on
    // access. We only ever read the mapping as bytes (no typed views whose validity depends on
    // the content), and we document above that the file must not be modified while replayed;
    // a truncation ends the process with SIGBUS rather than corrupting memory.
    let map = unsafe { Mmap::map(file)? };
    // Replay reads front to back; read-ahead is a hint only, so failure is harmless.
    let _ = map.advise(Advice::Sequential);
    Ok(map)
}
