//! `dir:PATH`: a directory (a NAS mount, an SD card). Segments keep their FORMAT.md §7
//! names, so `camseal decrypt PATH` and `camseal verify PATH` read the directory as is; the
//! stream head is `<camera id>-s<stream>.head` beside them.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::PathBuf;

use super::{BodyDigest, ListFilter, Sink, UploadError};
use crate::fsutil::{PUBLIC, TempFile, write_atomic};
use crate::spool::SegmentId;
use crate::spool::policy::{EntryKind, parse_spool_name};

/// A directory sink. Each segment is written to a temporary file (`fsutil`), fsynced, moved
/// to `NAME` without replacing anything there, and the directory is fsynced, so a reader of
/// the directory never sees half a segment.
///
/// Write-once, as an S3 sink with `If-None-Match: *`: a file already holding the name with
/// the same bytes (an earlier upload whose spool removal was lost) counts as done; other
/// bytes (a reset chain state, a cloned camera key) are a [`UploadError::Conflict`], and the
/// stored file is never replaced.
pub struct DirSink {
    dir: PathBuf,
}

impl DirSink {
    /// `DIR/control/<camera id>/recipients`.
    fn control_path(&self, camera_id: &str) -> PathBuf {
        self.dir.join(crate::control::object_key("", camera_id))
    }

    /// A sink writing into `dir` (created if missing).
    pub fn new(dir: impl Into<PathBuf>) -> Result<DirSink, UploadError> {
        let dir = dir.into();
        if dir.as_os_str().is_empty() {
            return Err(UploadError::Config("dir: sink needs a path".into()));
        }
        Ok(DirSink { dir })
    }
}

impl DirSink {
    /// The verdict on a file already stored under a segment's name: the same bytes are an
    /// upload done earlier, other bytes a conflict.
    fn compare(
        &self,
        id: &SegmentId,
        target: &std::path::Path,
        digest: &BodyDigest,
    ) -> Result<(), UploadError> {
        let stored = File::open(target)
            .and_then(|mut f| BodyDigest::read(&mut f))
            .map_err(|e| self.transient(e))?;
        if stored == *digest {
            return Ok(());
        }
        Err(UploadError::Conflict {
            sink: self.name(),
            key: id.file_name(),
            message: format!(
                "{} already holds other bytes (MD5 {}, the segment's is {})",
                target.display(),
                stored.md5_hex(),
                digest.md5_hex()
            ),
        })
    }

    fn transient(&self, e: io::Error) -> UploadError {
        UploadError::Transient {
            sink: self.name(),
            message: e.to_string(),
            retry_after: None,
            answered: false,
        }
    }
}

impl Sink for DirSink {
    fn name(&self) -> String {
        format!("dir:{}", self.dir.display())
    }

    fn put(
        &self,
        id: &SegmentId,
        body: &mut dyn Read,
        _len: u64,
        digest: &BodyDigest,
    ) -> Result<(), UploadError> {
        let local = |e: io::Error| self.transient(e);
        fs::create_dir_all(&self.dir).map_err(local)?;
        let target = self.dir.join(id.file_name());
        if target.symlink_metadata().is_ok() {
            return self.compare(id, &target, digest);
        }
        let mut tmp = TempFile::for_target(&target, PUBLIC).map_err(local)?;
        io::copy(body, tmp.file()).map_err(local)?;
        match tmp.persist_new(&target) {
            Ok(()) => Ok(()),
            // Another uploader stored it meanwhile.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => self.compare(id, &target, digest),
            Err(e) => Err(local(e)),
        }
    }

    fn list(&self, filter: &ListFilter) -> Result<Vec<SegmentId>, UploadError> {
        let entries = fs::read_dir(&self.dir).map_err(|e| UploadError::Io {
            path: self.dir.clone(),
            source: e,
        })?;
        let mut out: Vec<SegmentId> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(parse_spool_name))
            .filter(|(id, kind)| *kind == EntryKind::Closed && filter.matches(id))
            .map(|(id, _)| id)
            .collect();
        out.sort();
        Ok(out)
    }

    fn put_head(&self, camera_id: &str, stream: u32, head: &[u8]) -> Result<(), UploadError> {
        fs::create_dir_all(&self.dir).map_err(|e| self.transient(e))?;
        let path = self
            .dir
            .join(crate::segment::head::file_name(camera_id, stream));
        write_atomic(&path, head, PUBLIC).map_err(|e| self.transient(e))
    }

    fn get_head(&self, camera_id: &str, stream: u32) -> Result<Option<Vec<u8>>, UploadError> {
        let path = self
            .dir
            .join(crate::segment::head::file_name(camera_id, stream));
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(UploadError::Io { path, source: e }),
        }
    }

    fn get_prefix(&self, id: &SegmentId, len: u64) -> Result<Vec<u8>, UploadError> {
        let path = self.dir.join(id.file_name());
        let mut bytes = Vec::new();
        File::open(&path)
            .and_then(|f| f.take(len).read_to_end(&mut bytes))
            .map_err(|e| UploadError::Io { path, source: e })?;
        Ok(bytes)
    }

    fn put_control(&self, camera_id: &str, object: &[u8]) -> Result<(), UploadError> {
        let path = self.control_path(camera_id);
        fs::create_dir_all(crate::fsutil::parent(&path)).map_err(|e| self.transient(e))?;
        write_atomic(&path, object, PUBLIC).map_err(|e| self.transient(e))
    }

    fn get_control(&self, camera_id: &str) -> Result<Option<Vec<u8>>, UploadError> {
        let path = self.control_path(camera_id);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(UploadError::Io { path, source: e }),
        }
    }

    fn get(&self, id: &SegmentId, out: &mut dyn Write) -> Result<u64, UploadError> {
        let path = self.dir.join(id.file_name());
        let mut f = File::open(&path).map_err(|e| UploadError::Io {
            path: path.clone(),
            source: e,
        })?;
        io::copy(&mut f, out).map_err(|e| UploadError::Io { path, source: e })
    }
}
