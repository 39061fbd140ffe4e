//! `camseal fetch`: download segments from a sink for a viewer.

use std::fs::{self, File};
use std::io::BufWriter;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use camseal::upload::{ListFilter, open_sink};

use crate::cli::FetchArgs;

pub fn fetch(args: FetchArgs) -> Result<ExitCode> {
    if let Some(c) = &args.camera
        && !(c.len() == 16 && c.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        bail!("--camera {c:?} is not a camera id (16 hex digits)");
    }
    let net = crate::upload::net_config(args.connect_timeout, args.io_timeout)?;
    let sink = open_sink(&args.sink, &net).with_context(|| format!("--sink {}", args.sink))?;
    let filter = ListFilter {
        camera: args.camera.as_ref().map(|c| c.to_ascii_lowercase()),
        stream: args.stream,
        since: args.since,
    };
    let ids = sink
        .list(&filter)
        .with_context(|| format!("cannot list {}", sink.name()))?;
    fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut bytes = 0u64;
    for id in &ids {
        let name = id.file_name();
        let part = args.out.join(format!("{name}.part"));
        let target = args.out.join(&name);
        let result = (|| -> Result<u64> {
            let mut out = BufWriter::new(File::create(&part)?);
            let n = sink.get(id, &mut out)?;
            let file = out.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            fs::rename(&part, &target)?;
            Ok(n)
        })();
        match result {
            Ok(n) => {
                bytes += n;
                eprintln!("fetched {id} ({n} bytes) -> {}", target.display());
            }
            Err(e) => {
                let _ = fs::remove_file(&part);
                return Err(e.context(format!("cannot fetch {id} from {}", sink.name())));
            }
        }
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
