//! `camseal fetch`: download segments from a sink for a viewer, with each stream's signed
//! head when the sink has one (`verify` then checks that no newer segment is withheld).

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufWriter, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use camseal::fsutil::PUBLIC;
use camseal::segment::{HeaderParser, Parsed, head};
use camseal::spool::SegmentId;
use camseal::upload::{ListFilter, Sink, UploadError, open_sink};

use crate::cli::FetchArgs;
use crate::interrupt::Unfinished;
use crate::timesel::SeqOrTime;

pub fn fetch(args: FetchArgs) -> Result<ExitCode> {
    if let Some(c) = &args.camera
        && !(c.len() == 16 && c.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        bail!("--camera {c:?} is not a camera id (16 hex digits)");
    }
    let net = crate::upload::net_config(args.connect_timeout, args.io_timeout)?;
    let sink = open_sink(&args.sink, &net)
        .with_context(|| format!("--sink {}", camseal::upload::redact_url(&args.sink)))?;
    let bounds = Bounds::of(&args);
    let filter = ListFilter {
        camera: args.camera.as_ref().map(|c| c.to_ascii_lowercase()),
        stream: args.stream,
        since: bounds.since_seq,
    };
    let listed = sink
        .list(&filter)
        .with_context(|| format!("cannot list {}", sink.name()))?;
    // A window with an end leaves out the newest segments, which the head names: `verify`
    // would take them as withheld.
    let heads = if bounds.has_end() {
        Vec::new()
    } else {
        fetch_heads(sink.as_ref(), &filter, &listed)?
    };
    // The uploader sends a head only after the segments it names, so a listing made after
    // the heads were read holds every segment they name.
    let ids = if heads.is_empty() {
        listed
    } else {
        sink.list(&filter)
            .with_context(|| format!("cannot list {}", sink.name()))?
    };
    let ids = bounds.select(sink.as_ref(), ids)?;
    fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    crate::interrupt::remove_unfinished_on_signal()?;
    let mut bytes = 0u64;
    let progress = crate::progress::Progress::start("fetch", ids.len() as u64, None, args.quiet);
    for id in &ids {
        let target = args.out.join(id.file_name());
        // A failed or interrupted download leaves nothing: the temporary file removes itself.
        let result = (|| -> Result<u64> {
            let (mut tmp, unfinished) = Unfinished::create(&target, PUBLIC)?;
            let mut out = BufWriter::new(tmp.file().try_clone()?);
            let n = sink.get(id, &mut out)?;
            out.into_inner().map_err(|e| e.into_error())?;
            unfinished.finish(|| tmp.persist(&target))?;
            Ok(n)
        })();
        match result {
            Ok(n) => {
                bytes += n;
                progress.suspend(|| eprintln!("fetched {id} ({n} bytes) -> {}", target.display()));
                progress.segment_done(n);
            }
            Err(e) => {
                return Err(e.context(format!("cannot fetch {id} from {}", sink.name())));
            }
        }
    }
    progress.finish();
    for (camera, stream, head) in &heads {
        let target = args.out.join(head::file_name(camera, *stream));
        let (mut tmp, unfinished) = Unfinished::create(&target, PUBLIC)
            .with_context(|| format!("cannot write {}", target.display()))?;
        tmp.file()
            .write_all(head)
            .and_then(|()| unfinished.finish(|| tmp.persist(&target)))
            .with_context(|| format!("cannot write {}", target.display()))?;
        eprintln!(
            "fetched the stream head of {camera} stream {stream} -> {}",
            target.display()
        );
    }
    println!(
        "fetched {} segments ({} bytes) from {} into {}",
        ids.len(),
        bytes,
        sink.name(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// What `--since`/`--until` (and `--since-seq`/`--until-seq`) ask for.
struct Bounds {
    since_seq: Option<u64>,
    until_seq: Option<u64>,
    since_ms: Option<u64>,
    until_ms: Option<u64>,
}

impl Bounds {
    fn of(args: &FetchArgs) -> Bounds {
        let (mut since_seq, mut until_seq) = (args.since_seq, args.until_seq);
        let (mut since_ms, mut until_ms) = (None, None);
        match args.since {
            Some(SeqOrTime::Seq(n)) => since_seq = Some(n),
            Some(SeqOrTime::Time(t)) => since_ms = Some(t),
            None => {}
        }
        match args.until {
            Some(SeqOrTime::Seq(n)) => until_seq = Some(n),
            Some(SeqOrTime::Time(t)) => until_ms = Some(t),
            None => {}
        }
        Bounds {
            since_seq,
            until_seq,
            since_ms,
            until_ms,
        }
    }

    fn has_end(&self) -> bool {
        self.until_seq.is_some() || self.until_ms.is_some()
    }

    /// Keeps the segments within the bounds. Times are those the segments' headers carry:
    /// per stream, a binary search reads O(log n) headers, each with a ranged GET of the
    /// segment's start where the sink can do one.
    fn select(&self, sink: &dyn Sink, mut ids: Vec<SegmentId>) -> Result<Vec<SegmentId>> {
        if let Some(until) = self.until_seq {
            ids.retain(|id| id.seq <= until);
        }
        if self.since_ms.is_none() && self.until_ms.is_none() {
            return Ok(ids);
        }
        let mut kept = Vec::new();
        for stream in ids.chunk_by(|a, b| a.camera_id == b.camera_id && a.stream == b.stream) {
            let range =
                crate::timesel::window(stream.len(), self.since_ms, self.until_ms, &mut |i| {
                    signed_open_time(sink, &stream[i])
                })?;
            kept.extend_from_slice(&stream[range]);
        }
        if kept.is_empty() {
            eprintln!(
                "no segment on {} was recorded in the --since/--until window (by the camera's signed clock)",
                sink.name()
            );
        }
        Ok(kept)
    }
}

/// The signed recording time (camera wallclock, Unix ms) in segment `id`'s header, read
/// from the start of the segment. The header's signature is checked against the key it
/// names, and that key against the camera id in the segment's name.
fn signed_open_time(sink: &dyn Sink, id: &SegmentId) -> Result<u64> {
    let mut parser = HeaderParser::new();
    let mut want = HEADER_PROBE_BYTES;
    loop {
        let bytes = sink
            .get_prefix(id, want)
            .with_context(|| format!("cannot read the header of {id} from {}", sink.name()))?;
        let parsed = parser
            .parse(&bytes)
            .with_context(|| format!("{id} on {} is not a readable segment", sink.name()))?;
        match parsed {
            Parsed::Complete(header, _) => {
                header
                    .verify_signature()
                    .with_context(|| format!("{id} on {}", sink.name()))?;
                if header.camera_id() != id.camera_id
                    || header.stream_id != id.stream
                    || header.segment_seq != id.seq
                {
                    bail!(
                        "{id} on {} holds camera {} stream {} seq {}: not what its name says",
                        sink.name(),
                        header.camera_id(),
                        header.stream_id,
                        header.segment_seq
                    );
                }
                return Ok(header.wallclock_ms);
            }
            Parsed::Needed(n) if (bytes.len() as u64) < want => {
                bail!(
                    "{id} on {} ends inside its header ({} of {n} bytes)",
                    sink.name(),
                    bytes.len()
                )
            }
            Parsed::Needed(n) => want = n as u64,
        }
    }
}

/// The first read of a header: enough for the fixed fields and a few recipients.
const HEADER_PROBE_BYTES: u64 = 4096;

/// The stream heads the sink holds for the streams `listed` (and the one `filter` names):
/// (camera id, stream, bytes). A sink that keeps no heads gives none.
fn fetch_heads(
    sink: &dyn Sink,
    filter: &ListFilter,
    listed: &[SegmentId],
) -> Result<Vec<(String, u32, Vec<u8>)>> {
    let mut streams: BTreeSet<(String, u32)> = listed
        .iter()
        .map(|id| (id.camera_id.clone(), id.stream))
        .collect();
    if let (Some(camera), Some(stream)) = (&filter.camera, filter.stream) {
        streams.insert((camera.clone(), stream));
    }
    let mut heads = Vec::new();
    for (camera, stream) in streams {
        match sink.get_head(&camera, stream) {
            Ok(Some(bytes)) => heads.push((camera, stream, bytes)),
            Ok(None) | Err(UploadError::Unsupported(_)) => {}
            Err(e) => {
                return Err(anyhow::Error::from(e).context(format!(
                    "cannot fetch the stream head of {camera} stream {stream} from {}",
                    sink.name()
                )));
            }
        }
    }
    Ok(heads)
}
