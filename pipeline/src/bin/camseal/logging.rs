//! Where the logs go: standard error, filtered by `RUST_LOG` or `run --log-level`.
//!
//! Under systemd (its `JOURNAL_STREAM` names the very file standard error is), each line
//! starts with the `<N>` syslog priority that journald reads as the line's level
//! (sd-daemon(3)), with neither colours nor timestamps: journald stamps each line itself.
//! Elsewhere, plain `LEVEL target: message` lines, coloured on a terminal.
//!
//! The `<N>` prefixes on standard error rather than the native journal protocol
//! (`tracing-journald`): the unit already sends standard error to the journal, nothing
//! needs a socket the sandbox must allow, and the same lines read well when the service
//! runs under another supervisor.

use std::fmt;
use std::io::IsTerminal;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Installs the subscriber: `RUST_LOG` when set (it wins over `level`), else `level`.
pub fn init(level: &str) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::try_new(&directives)
            .unwrap_or_else(|e| {
                eprintln!(
                    "warning: RUST_LOG={directives:?} is not a log filter ({e}); using {level:?}"
                );
                EnvFilter::new(level)
            }),
        _ => EnvFilter::new(level),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // Only fails if a subscriber is already set: there is one per process, set here.
    let _ = if under_journal() {
        builder
            .with_ansi(false)
            .event_format(JournalFormat)
            .try_init()
    } else {
        builder
            .with_ansi(std::io::stderr().is_terminal())
            .without_time()
            .try_init()
    };
}

/// `--log-level`: a filter `tracing` understands.
pub fn parse_filter(text: &str) -> Result<String, String> {
    EnvFilter::try_new(text)
        .map(|_| text.to_owned())
        .map_err(|e| format!("not a log level or filter: {e}"))
}

/// Whether standard error is the journal's stream: `JOURNAL_STREAM` is `DEV:INODE` of it.
///
/// Checked against standard error itself, as systemd.exec(5) advises: a child that
/// inherited the variable but writes elsewhere must not get prefixes.
pub fn under_journal() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = value.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(fd)
        .metadata()
        .is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// The syslog priority journald reads from a `<N>` line prefix.
pub fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// `<N>target: message fields`, one line per event.
struct JournalFormat;

impl<S, N> FormatEvent<S, N> for JournalFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        write!(writer, "<{}>{}: ", priority(*meta.level()), meta.target())?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}
