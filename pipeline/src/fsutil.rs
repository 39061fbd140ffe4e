//! How camseal creates every file it writes: under a fresh random name, exclusively, then
//! renamed into place.
//!
//! Why one helper for all of them: camseal writes into directories that other users or
//! processes may also write (an output directory, a spool on a shared card, a viewer's
//! download folder). A predictable name opened with `O_CREAT|O_TRUNC` follows whatever
//! symbolic link someone planted there, so camseal would overwrite any file it can write,
//! and a second process would truncate the first one's file. So every file is created with
//! `O_CREAT|O_EXCL|O_NOFOLLOW` under a name with 64 random bits (`create_new` fails if
//! anything, a link included, is already there, and nobody can plant a link at a name they
//! cannot guess), written, and renamed over its final name: `rename(2)` replaces a link at
//! the target, it never follows it. The mode is set when the file is created (0600 for
//! plaintext and secrets), so no other user can open it while it is being written.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Readable by everyone (before the umask): sealed segments, heads, public keys, state.
pub const PUBLIC: u32 = 0o644;
/// Readable by the owner only: plaintext video and secret keys.
pub const PRIVATE: u32 = 0o600;

/// A file being written under a temporary name next to where it will go. Dropping it
/// without [`persist`](Self::persist) removes it.
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
    file: Option<File>,
}

impl TempFile {
    /// Creates `DIR/.NAME.<16 random hex digits>.tmp` exclusively with `mode`, where `DIR`
    /// and `NAME` are those of `target`, the name it will be given.
    pub fn for_target(target: &Path, mode: u32) -> io::Result<TempFile> {
        let (dir, name) = split(target)?;
        let mut last_err = None;
        for _ in 0..16 {
            let path = dir.join(temp_name(name)?);
            match create_exclusive(&path, mode) {
                Ok(file) => {
                    return Ok(TempFile {
                        path,
                        file: Some(file),
                    });
                }
                // 64 random bits collided (or a name was planted): draw again.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::other("no free temporary file name")))
    }

    /// Where it is now.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file.
    pub fn file(&mut self) -> &mut File {
        // Invariant: `file` is only taken by `persist`, which consumes `self`.
        self.file
            .as_mut()
            .expect("a TempFile's file is present until persisted")
    }

    /// fsyncs the file, renames it over `target` (replacing whatever is there, a link
    /// included, without following it), fsyncs the directory, and returns the file, still
    /// open for writing.
    pub fn persist(mut self, target: &Path) -> io::Result<File> {
        let file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("persisted twice"))?;
        file.sync_all()?;
        fs::rename(&self.path, target)?;
        sync_dir(parent(target))?;
        self.path = PathBuf::new();
        Ok(file)
    }

    /// As [`persist`](Self::persist), but fails with `AlreadyExists` if `target` exists.
    pub fn persist_new(mut self, target: &Path) -> io::Result<()> {
        let file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("persisted twice"))?;
        file.sync_all()?;
        drop(file);
        link_no_clobber(&self.path, target)?;
        self.path = PathBuf::new();
        sync_dir(parent(target))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Atomically and durably creates or replaces `path` with `contents`, created with `mode`:
/// readers see the old contents or the new, never a mix, even across a crash.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let mut tmp = TempFile::for_target(path, mode)?;
    tmp.file().write_all(contents)?;
    tmp.persist(path).map(drop)
}

/// As [`write_atomic`], but never replaces an existing `path` (`AlreadyExists`).
pub fn write_new(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    if path.symlink_metadata().is_ok() {
        return Err(io::ErrorKind::AlreadyExists.into());
    }
    let mut tmp = TempFile::for_target(path, mode)?;
    tmp.file().write_all(contents)?;
    tmp.persist_new(path)
}

/// An exclusive advisory lock (`flock(2)`) on a file, held until dropped. The kernel
/// releases it when the process dies, however it dies, so a crash never leaves a stale lock.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Another process holds it.
    #[error("{} is held by {}", path.display(), holder.map_or_else(|| "another process".to_owned(), |p| format!("process {p}")))]
    Held {
        /// The lock file.
        path: PathBuf,
        /// The process id the holder wrote into the lock file, if it could be read.
        holder: Option<u32>,
    },
    /// The lock file could not be created or opened.
    #[error("{}: {source}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// Takes the lock on `path` without waiting, creating the file (as [`write_new`] does) if
/// it is missing, and writes this process's id into it so that a refused process can say
/// who holds it.
pub fn try_lock(path: &Path) -> Result<FileLock, LockError> {
    let io_err = |source| LockError::Io {
        path: path.to_owned(),
        source,
    };
    match write_new(path, b"", PUBLIC) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err(e)),
    }
    let mut options = OpenOptions::new();
    options.read(true).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    }
    let mut file = options.open(path).map_err(io_err)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let holder = fs::read_to_string(path)
                .ok()
                .and_then(|t| t.trim().parse().ok());
            return Err(LockError::Held {
                path: path.to_owned(),
                holder,
            });
        }
        Err(fs::TryLockError::Error(e)) => return Err(io_err(e)),
    }
    file.set_len(0)
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .map_err(io_err)?;
    Ok(FileLock { _file: file })
}

/// The final name a temporary file of [`TempFile`] was made for (`.NAME.<hex>.tmp` gives
/// `NAME`), so that recovery can tell whose leftover it is.
pub fn temp_target(file_name: &str) -> Option<&str> {
    let inner = file_name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (target, random) = inner.rsplit_once('.')?;
    (random.len() == 16 && random.bytes().all(|b| b.is_ascii_hexdigit()) && !target.is_empty())
        .then_some(target)
}

/// fsyncs a directory, so that a rename or creation in it survives a power cut.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The directory `path` is in (`.` for a bare name).
pub fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn split(target: &Path) -> io::Result<(&Path, &OsStr)> {
    let name = target.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a file name", target.display()),
        )
    })?;
    Ok((parent(target), name))
}

fn temp_name(name: &OsStr) -> io::Result<OsString> {
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(|e| io::Error::other(format!("no randomness: {e}")))?;
    let mut tmp = OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".{}.tmp", hex::encode(random)));
    Ok(tmp)
}

fn create_exclusive(path: &Path, mode: u32) -> io::Result<File> {
    let mut options = OpenOptions::new();
    // `create_new` is O_CREAT|O_EXCL.
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    }
    #[cfg(not(unix))]
    let _ = mode;
    options.open(path)
}

/// Moves `tmp` to `path` unless `path` exists. A hard link fails atomically if the target
/// exists; file systems without hard links (FAT on an SD card) fall back to check-then-rename.
fn link_no_clobber(tmp: &Path, path: &Path) -> io::Result<()> {
    match fs::hard_link(tmp, path) {
        Ok(()) => fs::remove_file(tmp),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let _ = fs::remove_file(tmp);
            Err(e)
        }
        Err(_) => {
            if path.symlink_metadata().is_ok() {
                let _ = fs::remove_file(tmp);
                return Err(io::ErrorKind::AlreadyExists.into());
            }
            fs::rename(tmp, path)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    #[test]
    fn replaces_a_planted_link_without_following_it() {
        let t = tempfile::tempdir().unwrap();
        let victim = t.path().join("victim");
        fs::write(&victim, b"keep").unwrap();
        let path = t.path().join("out");
        symlink(&victim, &path).unwrap();
        write_atomic(&path, b"new", PRIVATE).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
        assert_eq!(fs::read(&path).unwrap(), b"new");
        let meta = fs::symlink_metadata(&path).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::read_dir(t.path()).unwrap().count(), 2, "temp file left");
    }

    #[test]
    fn names_are_random_and_recognised() {
        let t = tempfile::tempdir().unwrap();
        let target = t.path().join("a.cseg");
        let a = TempFile::for_target(&target, PUBLIC).unwrap();
        let b = TempFile::for_target(&target, PUBLIC).unwrap();
        assert_ne!(a.path(), b.path());
        let name = a.path().file_name().unwrap().to_str().unwrap();
        assert_eq!(temp_target(name), Some("a.cseg"));
        assert_eq!(temp_target("a.cseg"), None);
        assert_eq!(temp_target(".a.cseg.tmp"), None);
        let kept = a.path().to_owned();
        drop(a);
        assert!(!kept.exists(), "a dropped temp file is removed");
    }

    #[test]
    fn a_held_lock_names_its_holder_and_is_released_on_drop() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("s0.lock");
        let held = try_lock(&path).unwrap();
        match try_lock(&path) {
            Err(LockError::Held { holder, .. }) => assert_eq!(holder, Some(std::process::id())),
            other => panic!("{other:?}"),
        }
        drop(held);
        try_lock(&path).unwrap();
    }

    #[test]
    fn write_new_never_replaces() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("k");
        write_new(&path, b"one", PRIVATE).unwrap();
        let e = write_new(&path, b"two", PRIVATE).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).unwrap(), b"one");
        let dangling = t.path().join("d");
        symlink(t.path().join("nowhere"), &dangling).unwrap();
        assert!(write_new(&dangling, b"x", PRIVATE).is_err());
        assert!(!t.path().join("nowhere").exists());
        assert_eq!(fs::read_dir(t.path()).unwrap().count(), 2, "temp file left");
    }
}
