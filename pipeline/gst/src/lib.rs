//! `camsealsink`: a GStreamer sink element that seals an H.264 or H.265 byte stream with
//! camseal, so that a camera's existing media pipeline gains end-to-end encryption with one
//! element:
//!
//! ```text
//! v4l2src ! mpph264enc ! h264parse ! camsealsink home=/var/lib/camseal location=/var/spool/out
//! ```
//!
//! What this crate does **not** do: it does not parse, split, reorder or re-timestamp the
//! stream (a parser in front gives it one access unit per buffer), it does not copy video
//! bytes, and it holds no key or format logic of its own: all of that is
//! [`camseal::embed::Session`], the engine `camseal run` uses.
//!
//! Layers: `logic` (pure: codec from caps, timestamps in 90 kHz) and `sink` (the element:
//! properties, caps, the session's life cycle). Each buffer is mapped read-only and lent
//! to the session, which seals it in place and drops the mapping (unmapping and
//! unreferencing the buffer) once the last chunk of it is sealed. The user documentation is
//! `docs/CAPI.md` and `gst-inspect-1.0 camsealsink`.

use gst::glib;
use gst::prelude::StaticType;

mod logic;
mod sink;

pub use logic::{codec_for_caps_name, frame_ticks, pts_ticks};

glib::wrapper! {
    /// The `camsealsink` element.
    pub struct CamsealSink(ObjectSubclass<sink::imp::CamsealSink>)
        @extends gst_base::BaseSink, gst::Element, gst::Object;
}

/// Registers `camsealsink` with `plugin` (the plugin's init function; also what
/// [`plugin_register_static`] calls).
fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "camsealsink",
        gst::Rank::NONE,
        CamsealSink::static_type(),
    )
}

/// GStreamer's plugin entry points (`gst_plugin_camseal_get_desc`, which
/// `gst-inspect-1.0` and the registry look up in `libgstcamseal.so`, and
/// `plugin_register_static` for a process that links the crate).
#[allow(missing_docs)]
mod descriptor {
    use super::plugin_init;

    gst::plugin_define!(
        camseal,
        env!("CARGO_PKG_DESCRIPTION"),
        plugin_init,
        env!("CARGO_PKG_VERSION"),
        // GStreamer knows a fixed set of licence names; the crate is "Apache-2.0 OR MIT".
        "MIT/X11",
        "camseal",
        "camseal",
        env!("CARGO_PKG_REPOSITORY")
    );
}

pub use descriptor::plugin_register_static;
