//! `run`'s control channel poller: fetches `control/<camera id>/recipients` from a sink now
//! and then, lets `camseal::control::decide` judge it, installs what it accepts, and hands
//! the new recipients to the recording loop. The judging is pure and lives in the library;
//! this is only the I/O around it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use camseal::control::{Decision, decide};
use camseal::home::{self, CameraHome};
use camseal::upload::{NetConfig, Sink, open_sink, redact_url};

/// Recipients as the engine takes them: (HPKE KEM id, public key).
pub type Recipients = Vec<(u16, Vec<u8>)>;

/// A running poller; [`Poller::stop`] ends it.
pub struct Poller {
    updates: Receiver<Recipients>,
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Poller {
    /// Polls `url` every `interval` (the first time at once) for the camera in `home`.
    pub fn start(
        url: &str,
        net: &NetConfig,
        home: CameraHome,
        camera_id: String,
        interval: Duration,
    ) -> Result<Poller> {
        let sink = open_sink(url, net).with_context(|| format!("--control {}", redact_url(url)))?;
        let (tx, updates) = mpsc::channel();
        let done = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&done);
        let thread = std::thread::Builder::new()
            .name("camseal-control".into())
            .spawn(move || {
                let mut state = PollState::default();
                loop {
                    if let Some(recipients) = state.poll(sink.as_ref(), &home, &camera_id)
                        && tx.send(recipients).is_err()
                    {
                        return;
                    }
                    let next = Instant::now() + interval;
                    while Instant::now() < next {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(50).min(interval));
                    }
                }
            })
            .context("cannot start the control channel poller")?;
        Ok(Poller {
            updates,
            done,
            thread: Some(thread),
        })
    }

    /// The newest recipients installed since the last call, if any.
    pub fn take(&self) -> Option<Recipients> {
        self.updates.try_iter().last()
    }

    /// Ends the poller and waits for it.
    pub fn stop(mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What the poller saw last, so that the same refusal or failure is logged once.
#[derive(Default)]
struct PollState {
    last_object: Option<Vec<u8>>,
    last_error: Option<String>,
}

impl PollState {
    fn poll(&mut self, sink: &dyn Sink, home: &CameraHome, camera_id: &str) -> Option<Recipients> {
        let object = match sink.get_control(camera_id) {
            Ok(Some(object)) => object,
            Ok(None) => return None,
            Err(e) => {
                let message = format!("{e}");
                if self.last_error.as_deref() != Some(&message) {
                    eprintln!(
                        "warning: control channel {}: cannot fetch the recipient list ({message}); recording goes on",
                        sink.name()
                    );
                    self.last_error = Some(message);
                }
                return None;
            }
        };
        self.last_error = None;
        if self.last_object.as_deref() == Some(&object) {
            return None;
        }
        self.last_object = Some(object.clone());
        match self.judge(&object, home, camera_id) {
            Ok(update) => update,
            Err(e) => {
                eprintln!(
                    "warning: control channel {}: {e:#}; recording goes on with the installed list",
                    sink.name()
                );
                None
            }
        }
    }

    fn judge(
        &self,
        object: &[u8],
        home: &CameraHome,
        camera_id: &str,
    ) -> Result<Option<Recipients>> {
        let installed = home.trusted_recipients()?;
        let installed_bytes = match installed {
            Some(_) => Some(home::read_file(&home.list_path(), home::LIST_FILE_LIMIT)?),
            None => None,
        };
        let pin = home.pinned_account()?;
        let decision = decide(
            object,
            camera_id,
            pin.as_ref(),
            installed.as_ref().zip(installed_bytes.as_deref()),
        );
        let installed_version = installed.as_ref().map(|l| l.version);
        match decision {
            Decision::Installed => Ok(None),
            Decision::Refuse(why) => {
                eprintln!(
                    "control: REFUSED a recipient list: {why}; recording goes on with the installed list{}",
                    installed_version
                        .map(|v| format!(" (version {v})"))
                        .unwrap_or_default()
                );
                Ok(None)
            }
            Decision::Apply(object) => {
                let outcome = home
                    .trust(&object.signed_list)
                    .context("REFUSED a recipient list")?;
                let recipients: Recipients = outcome
                    .list
                    .recipients
                    .iter()
                    .map(|r| (r.kem, r.public_key.clone()))
                    .collect();
                eprintln!(
                    "control: installed recipient list version {} ({} recipients{}); it applies from the next segment",
                    outcome.list.version,
                    recipients.len(),
                    installed_version
                        .map(|v| format!(", replacing version {v}"))
                        .unwrap_or_default()
                );
                Ok(Some(recipients))
            }
        }
    }
}
