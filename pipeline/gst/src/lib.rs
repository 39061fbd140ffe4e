//! `camsealsink`: a GStreamer sink element that seals an H.264 or H.265 byte stream with
//! camseal, so that a camera's existing media pipeline gains end-to-end encryption with one
//! element:
//!
//! ```text
//! v4l2src ! mpph264enc ! h264parse ! camsealsink home=/var/lib/camseal location=/var/spool/out
//! ```
//!
//! The element is a thin shell over [`camseal::embed::Session`]: each buffer (one access
//! unit) is mapped read-only and lent to the session, which seals it in place and drops the
//! mapping (unmapping and unreferencing the buffer) once the last chunk of it is sealed.

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
