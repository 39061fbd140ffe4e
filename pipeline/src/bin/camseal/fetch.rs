//! `camseal fetch`: download segments from a sink for a viewer, with each stream's signed
//! head when the sink has one (`verify` then checks that no newer segment is withheld).

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufWriter, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use camseal::fsutil::PUBLIC;
use camseal::segment::head;
use camseal::spool::SegmentId;
use camseal::upload::{ListFilter, Sink, UploadError, open_sink};

use crate::cli::FetchArgs;
use crate::interrupt::Unfinished;

pub fn fetch(args: FetchArgs) -> Result<ExitCode> {
    if let Some(c) = &args.camera
        && !(c.len() == 16 && c.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        bail!("--camera {c:?} is not a camera id (16 hex digits)");
    }
    let net = crate::upload::net_config(args.connect_timeout, args.io_timeout)?;
    let sink = open_sink(&args.sink, &net)
        .with_context(|| format!("--sink {}", camseal::upload::redact_url(&args.sink)))?;
    let filter = ListFilter {
        camera: args.camera.as_ref().map(|c| c.to_ascii_lowercase()),
        stream: args.stream,
        since: args.since,
    };
    let listed = sink
        .list(&filter)
        .with_context(|| format!("cannot list {}", sink.name()))?;
    let heads = fetch_heads(sink.as_ref(), &filter, &listed)?;
    // The uploader sends a head only after the segments it names, so a listing made after
    // the heads were read holds every segment they name.
    let ids = if heads.is_empty() {
        listed
    } else {
        sink.list(&filter)
            .with_context(|| format!("cannot list {}", sink.name()))?
    };
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
