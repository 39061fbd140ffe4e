//! camseal: end-to-end encrypted video segments for security cameras.
//!
//! What this crate does **not** do: it never writes plaintext video or an unwrapped key to
//! disk or network, and it has no code path that could. It does not implement AES-GCM
//! (that is `camseal-kernels`) nor talk to encoders (that is `camseal-hal`).
//!
//! Layers, from pure to I/O:
//! - [`nal`], [`chunk`]: cutting an Annex-B stream into NAL-aligned chunks (pure).
//! - [`seal`]: SFrame (RFC 9605) record protection (pure).
//! - [`segment`]: the sealed segment format v1 (`docs/FORMAT.md`): header with HPKE-wrapped
//!   keys, records, signed trailer, hash chain. A sans-I/O reader and a writer over `Write`.
//! - [`keys`]: account, device and camera keys, the recovery backup, signed recipient lists
//!   (pure; `docs/PROTOCOL.md`).
//! - [`home`]: viewer and camera home directories: key files, backups, the trusted list,
//!   the viewer's pinned cameras.
//! - [`fsutil`]: the one way every file is created (random name, exclusive, renamed).
//! - [`control`]: the control channel's signed list object and the camera's decision on it
//!   (pure).
//! - [`share`]: segment keys re-wrapped by the account for a third party, signed (pure).
//! - [`pairing`]: the setup-code (SPAKE2) pairing of a viewer with a camera, sans-I/O.
//! - [`embed`]: a sealing session fed by pushed access units (the C ABI's core).
//! - [`live`]: live view: the camera's fan-out of sealed items and the viewer's sans-I/O reader.
//! - [`config`]: the settings file of `camseal run --config` (TOML text to settings, pure).

#![forbid(unsafe_code)]

// Without the default `native` feature only the pure reader core is built (keys, seal,
// segment, live::LiveReader): what the browser viewer compiles to WebAssembly (pipeline/web).

pub mod chunk;
#[cfg(feature = "native")]
pub mod config;
pub mod control;
pub mod decodable;
#[cfg(feature = "native")]
pub mod embed;
#[cfg(feature = "native")]
pub mod engine;
#[cfg(feature = "native")]
pub mod footage;
#[cfg(feature = "native")]
pub mod fsutil;
#[cfg(feature = "native")]
pub mod home;
pub mod keys;
pub mod live;
#[cfg(feature = "native")]
pub mod mp4;
#[cfg(feature = "native")]
pub mod pairing;
#[cfg(feature = "native")]
pub mod recorder;
pub mod seal;
pub mod segment;
pub mod share;
#[cfg(feature = "native")]
pub mod spool;
#[cfg(feature = "native")]
pub mod upload;

/// NAL and access-unit parsing, re-exported from `camseal-nal` (which the HAL shares).
pub mod nal {
    pub use camseal_nal::*;
}
