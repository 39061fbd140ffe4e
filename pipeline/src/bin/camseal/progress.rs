//! Progress of the long commands (`decrypt`, `verify`, `fetch`, `upload --once`) on standard
//! error: segments and bytes done and to do, the rate and the time left.
//!
//! On a terminal it is an `indicatif` bar, redrawn in place. Otherwise (a log, a pipe, a
//! systemd journal) a bar would be a mess of carriage returns, so plain lines are printed
//! instead: one every few seconds while the work lasts, and a last one when it ends.
//! `--quiet` shows neither. Standard output is left alone: scripts read the commands' own
//! lines there.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, HumanDuration, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// One command's progress; cheap to share between threads by reference.
pub struct Progress {
    verb: &'static str,
    segments_total: u64,
    /// `None` when the size of the work is not known in advance (a fetch: the sink lists
    /// names, not sizes).
    bytes_total: Option<u64>,
    mode: Mode,
    state: Mutex<State>,
}

enum Mode {
    Bar(ProgressBar),
    Lines,
    Quiet,
}

struct State {
    segments: u64,
    bytes: u64,
    started: Instant,
    last_line: Instant,
    finished: bool,
}

impl Progress {
    /// [`Progress::start`] over segment files, their sizes summed for the byte count.
    pub fn for_files(
        verb: &'static str,
        files: &[camseal::footage::SegmentFile],
        quiet: bool,
    ) -> Progress {
        let bytes = files.iter().map(|f| file_len(&f.path)).sum();
        Progress::start(verb, files.len() as u64, Some(bytes), quiet)
    }

    /// Starts showing the progress of `verb` over `segments` segments of `bytes` bytes.
    pub fn start(verb: &'static str, segments: u64, bytes: Option<u64>, quiet: bool) -> Progress {
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bar(bar(verb, segments, bytes))
        } else {
            Mode::Lines
        };
        let now = Instant::now();
        let progress = Progress {
            verb,
            segments_total: segments,
            bytes_total: bytes,
            mode,
            state: Mutex::new(State {
                segments: 0,
                bytes: 0,
                started: now,
                last_line: now,
                finished: false,
            }),
        };
        progress.update(|_| {});
        progress
    }

    /// One more segment of `bytes` bytes is done.
    pub fn segment_done(&self, bytes: u64) {
        self.update(|s| {
            s.segments += 1;
            s.bytes += bytes;
        });
    }

    /// `segments` segments of `bytes` bytes in all are done (for work counted elsewhere).
    pub fn set(&self, segments: u64, bytes: u64) {
        self.update(|s| {
            s.segments = segments;
            s.bytes = bytes;
        });
    }

    /// Runs `print` (which writes messages to standard error) with the bar out of the way.
    pub fn suspend<T>(&self, print: impl FnOnce() -> T) -> T {
        match &self.mode {
            Mode::Bar(bar) => bar.suspend(print),
            Mode::Lines | Mode::Quiet => print(),
        }
    }

    /// Shows the final state of work that succeeded: a full bar, or a last line saying it
    /// is done. Later calls do nothing. Work that fails just drops its `Progress`: the bar
    /// stays where it stopped and no "done" line is printed.
    pub fn finish(&self) {
        let mut state = self.lock();
        if state.finished {
            return;
        }
        state.finished = true;
        let line = self.describe(&state, true);
        match &self.mode {
            Mode::Bar(bar) => {
                bar.set_position(self.position(&state));
                bar.finish_with_message(line);
                end_bar_line();
            }
            Mode::Lines => plain_line(self.verb, &line),
            Mode::Quiet => {}
        }
    }

    fn update(&self, change: impl FnOnce(&mut State)) {
        let mut state = self.lock();
        if state.finished {
            return;
        }
        change(&mut state);
        match &self.mode {
            Mode::Bar(bar) => {
                bar.set_position(self.position(&state));
                bar.set_message(self.describe(&state, false));
            }
            Mode::Lines => {
                if state.last_line.elapsed() >= LINE_EVERY {
                    state.last_line = Instant::now();
                    plain_line(self.verb, &self.describe(&state, false));
                }
            }
            Mode::Quiet => {}
        }
    }

    /// The bar runs over bytes when their total is known, else over segments.
    fn position(&self, state: &State) -> u64 {
        match self.bytes_total {
            Some(_) => state.bytes,
            None => state.segments,
        }
    }

    /// "3/10 segments, 12.0 MiB/40.0 MiB, 5.1 MiB/s, 6 seconds left".
    fn describe(&self, state: &State, done: bool) -> String {
        let elapsed = state.started.elapsed().as_secs_f64();
        let rate = if elapsed > 0.0 {
            state.bytes as f64 / elapsed
        } else {
            0.0
        };
        let bytes = match self.bytes_total {
            Some(total) => format!("{}/{}", HumanBytes(state.bytes), HumanBytes(total)),
            None => format!("{}", HumanBytes(state.bytes)),
        };
        let eta = if done {
            format!("done in {}", HumanDuration(state.started.elapsed()))
        } else {
            match eta(state, self.segments_total, self.bytes_total, elapsed) {
                Some(left) => format!("{} left", HumanDuration(left)),
                None => "time left unknown".to_owned(),
            }
        };
        format!(
            "{}/{} segments, {bytes}, {}/s, {eta}",
            state.segments,
            self.segments_total,
            HumanBytes(rate as u64)
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Progress {
    /// A command that fails part-way leaves the bar where it stopped, not half drawn.
    fn drop(&mut self) {
        if let Mode::Bar(bar) = &self.mode
            && !bar.is_finished()
        {
            bar.abandon();
            end_bar_line();
        }
    }
}

/// A segment file's size, for progress (0 if it cannot be read: reading it reports that).
pub fn file_len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn bar(verb: &'static str, segments: u64, bytes: Option<u64>) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some(bytes.unwrap_or(segments)),
        ProgressDrawTarget::stderr(),
    );
    // The template is fixed at compile time; should it ever fail to parse, the default
    // style still shows the bar.
    if let Ok(style) = ProgressStyle::with_template("{prefix} [{bar:30}] {msg}") {
        bar.set_style(style.progress_chars("#>-"));
    }
    bar.set_prefix(verb);
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}

/// Time left at the rate so far: by bytes when their total is known, else by segments.
fn eta(state: &State, segments: u64, bytes: Option<u64>, elapsed: f64) -> Option<Duration> {
    let (done, total) = match bytes {
        Some(total) => (state.bytes, total),
        None => (state.segments, segments),
    };
    if done == 0 || elapsed <= 0.0 {
        return None;
    }
    let left = total.saturating_sub(done) as f64 * elapsed / done as f64;
    Some(Duration::from_secs_f64(left.min(MAX_ETA_SECS)))
}

/// indicatif leaves the cursor at the end of a finished bar: what the command prints next
/// (its summary, or an error) goes on a line of its own.
fn end_bar_line() {
    let _ = writeln!(std::io::stderr());
}

fn plain_line(verb: &str, text: &str) {
    // Progress is a courtesy: a closed standard error must not fail the command.
    let _ = writeln!(std::io::stderr(), "progress: {verb} {text}");
}

/// How often a plain progress line is printed while the work lasts.
const LINE_EVERY: Duration = Duration::from_secs(5);

/// An estimate beyond a day says nothing more useful than a day.
const MAX_ETA_SECS: f64 = 86_400.0;
