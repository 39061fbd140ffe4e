//! SIGINT and SIGTERM during a command that writes files (`decrypt`, `fetch`): the files it
//! has not finished are removed before the process dies, so no partial output, and no
//! plaintext under any name, is left behind.
//!
//! A thread waits for the signal, so the cleanup also happens while the main thread is
//! blocked in a read or write (a slow disk, a FIFO, a stalled download).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use anyhow::{Context, Result};
use camseal::fsutil::TempFile;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Installs the handler: on SIGINT or SIGTERM, every file registered with [`Unfinished`]
/// is removed and the process dies of the signal, as it would without a handler.
pub fn remove_unfinished_on_signal() -> Result<()> {
    let mut signals =
        Signals::new([SIGINT, SIGTERM]).context("cannot install the signal handler")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                // Held until the process is gone: no rename into place can follow.
                let mut files = unfinished();
                for file in files.drain(..) {
                    let _ = fs::remove_file(&file);
                }
                let _ = signal_hook::low_level::emulate_default_handler(signal);
                std::process::exit(128 + signal);
            }
        })
        .context("cannot start the signal thread")?;
    Ok(())
}

/// A file being written that a signal must remove; dropping the guard forgets it.
pub struct Unfinished(PathBuf);

impl Unfinished {
    /// Creates the temporary file for `target` (`fsutil`) and registers it, so that a
    /// signal removes it from the moment it exists.
    pub fn create(target: &Path, mode: u32) -> io::Result<(TempFile, Unfinished)> {
        let mut files = unfinished();
        let tmp = TempFile::for_target(target, mode)?;
        let path = tmp.path().to_owned();
        files.push(path.clone());
        Ok((tmp, Unfinished(path)))
    }

    /// Runs `finish` (the rename into place) so that a signal removes the file either
    /// before it or not at all.
    pub fn finish<T>(self, finish: impl FnOnce() -> T) -> T {
        let files = unfinished();
        let result = finish();
        drop(files);
        result
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        unfinished().retain(|p| *p != self.0);
    }
}

fn unfinished() -> MutexGuard<'static, Vec<PathBuf>> {
    static UNFINISHED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    UNFINISHED.lock().unwrap_or_else(PoisonError::into_inner)
}
