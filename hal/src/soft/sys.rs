//! The one raw openh264 call the soft source needs: lowering the library's log level.

#![allow(unsafe_code)]

use std::os::raw::{c_int, c_void};

use openh264::encoder::Encoder as H264Encoder;

/// Makes openh264 print only errors to stderr, before it initialises.
///
/// The `openh264` crate sets the trace level only after `InitializeExt`, which itself logs a
/// warning (to stderr) for a choice we make on purpose: frame skipping off in bitrate mode.
/// `SetOption(ENCODER_OPTION_TRACE_LEVEL)` is the one option openh264 accepts before
/// initialisation. Returns openh264's status code (0 on success).
pub(super) fn log_errors_only(encoder: &mut H264Encoder) -> c_int {
    let mut level: c_int = WELS_LOG_ERROR;
    // SAFETY: `raw_api` is unsafe because raw calls could change parameters the wrapper relies
    // on; the trace level is not one of them (the wrapper itself sets it after initialising).
    let raw = unsafe { encoder.raw_api() };
    // SAFETY: the encoder was created by `Encoder::with_api_config`, so its vtable pointer is
    // valid; for ENCODER_OPTION_TRACE_LEVEL openh264 reads one 32-bit integer through the
    // option pointer, which points at `level`, alive and aligned for the whole call.
    unsafe {
        raw.set_option(
            ENCODER_OPTION_TRACE_LEVEL,
            (&raw mut level).cast::<c_void>(),
        )
    }
}

/// `ENCODER_OPTION_TRACE_LEVEL` of `enum ENCODER_OPTION` in openh264's public
/// `codec_app_def.h`; part of its stable ABI.
const ENCODER_OPTION_TRACE_LEVEL: c_int = 25;
/// `WELS_LOG_ERROR` in `codec_app_def.h`.
const WELS_LOG_ERROR: c_int = 1;
