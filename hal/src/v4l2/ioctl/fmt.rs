//! `VIDIOC_G_FMT`, `VIDIOC_S_FMT`, `VIDIOC_ENUM_FMT`, over single- and multi-planar formats.

use std::os::fd::BorrowedFd;

use super::{FIELD_NONE, IoctlError, MAX_PLANES, ioctl, iowr, is_mplane};

/// A picture format, flattened from `v4l2_pix_format` / `v4l2_pix_format_mplane`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Format {
    pub width: u32,
    pub height: u32,
    pub pixelformat: u32,
    /// Per memory plane: (bytes per line, image size). Single-planar formats have one.
    pub planes: [(u32, u32); MAX_PLANES],
    pub num_planes: usize,
}

/// `struct v4l2_format`: a type and a 200-byte union that holds pointers (`v4l2_window`), so
/// it is aligned like a pointer: 208 bytes on LP64, 204 on 32-bit ARM. The union is kept as
/// pointer-sized words to get that alignment.
#[repr(C)]
struct RawFormat {
    type_: u32,
    fmt: [usize; FMT_WORDS],
}

const WORD: usize = std::mem::size_of::<usize>();
const FMT_WORDS: usize = 200 / WORD;

pub(crate) fn g_fmt(fd: BorrowedFd<'_>, buf_type: u32) -> Result<Format, IoctlError> {
    let mut raw = RawFormat {
        type_: buf_type,
        fmt: [0; FMT_WORDS],
    };
    // SAFETY: `raw` is a live v4l2_format, as the request encodes.
    unsafe { ioctl(fd, "VIDIOC_G_FMT", VIDIOC_G_FMT, &mut raw)? };
    Ok(decode(buf_type, &raw))
}

/// Asks for `format` (width, height, pixelformat, and for each plane an image size hint) and
/// returns what the driver chose.
pub(crate) fn s_fmt(
    fd: BorrowedFd<'_>,
    buf_type: u32,
    format: &Format,
) -> Result<Format, IoctlError> {
    let mut bytes = [0u8; 200];
    let put = |bytes: &mut [u8; 200], at: usize, v: u32| {
        bytes[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    };
    put(&mut bytes, 0, format.width);
    put(&mut bytes, 4, format.height);
    put(&mut bytes, 8, format.pixelformat);
    put(&mut bytes, 12, FIELD_NONE);
    if is_mplane(buf_type) {
        let n = format.num_planes.clamp(1, MAX_PLANES);
        for (i, (bpl, size)) in format.planes.iter().take(n).enumerate() {
            // plane_fmt[i] at 20 + 20*i: sizeimage, bytesperline.
            put(&mut bytes, 20 + 20 * i, *size);
            put(&mut bytes, 24 + 20 * i, *bpl);
        }
        bytes[MPLANE_NUM_PLANES] = n as u8;
    } else {
        put(&mut bytes, 16, format.planes[0].0);
        put(&mut bytes, 20, format.planes[0].1);
    }
    let mut raw = RawFormat {
        type_: buf_type,
        fmt: words(&bytes),
    };
    // SAFETY: `raw` is a live v4l2_format, as the request encodes.
    unsafe { ioctl(fd, "VIDIOC_S_FMT", VIDIOC_S_FMT, &mut raw)? };
    Ok(decode(buf_type, &raw))
}

/// The pixel formats a queue offers.
pub(crate) fn enum_fmt(fd: BorrowedFd<'_>, buf_type: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for index in 0..MAX_FORMATS {
        let mut raw = RawFmtDesc {
            index,
            type_: buf_type,
            flags: 0,
            description: [0; 32],
            pixelformat: 0,
            mbus_code: 0,
            reserved: [0; 3],
        };
        // SAFETY: `raw` is a live v4l2_fmtdesc, as the request encodes.
        if unsafe { ioctl(fd, "VIDIOC_ENUM_FMT", VIDIOC_ENUM_FMT, &mut raw) }.is_err() {
            break;
        }
        out.push(raw.pixelformat);
    }
    out
}

fn decode(buf_type: u32, raw: &RawFormat) -> Format {
    let mut bytes = [0u8; 200];
    for (chunk, word) in bytes.chunks_exact_mut(WORD).zip(raw.fmt) {
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    let get =
        |at: usize| u32::from_ne_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let mut f = Format {
        width: get(0),
        height: get(4),
        pixelformat: get(8),
        ..Format::default()
    };
    if is_mplane(buf_type) {
        let n = usize::from(bytes[MPLANE_NUM_PLANES]).clamp(1, MAX_PLANES);
        for i in 0..n {
            f.planes[i] = (get(24 + 20 * i), get(20 + 20 * i));
        }
        f.num_planes = n;
    } else {
        f.planes[0] = (get(16), get(20));
        f.num_planes = 1;
    }
    f
}

fn words(bytes: &[u8; 200]) -> [usize; FMT_WORDS] {
    let mut out = [0usize; FMT_WORDS];
    for (word, chunk) in out.iter_mut().zip(bytes.chunks_exact(WORD)) {
        let mut b = [0u8; WORD];
        b.copy_from_slice(chunk);
        *word = usize::from_ne_bytes(b);
    }
    out
}

/// `struct v4l2_fmtdesc` (64 bytes).
#[repr(C)]
struct RawFmtDesc {
    index: u32,
    type_: u32,
    flags: u32,
    description: [u8; 32],
    pixelformat: u32,
    mbus_code: u32,
    reserved: [u32; 3],
}

/// Offset of `num_planes` in `v4l2_pix_format_mplane` (packed).
const MPLANE_NUM_PLANES: usize = 180;
const MAX_FORMATS: u32 = 64;
const VIDIOC_ENUM_FMT: u64 = iowr(2, std::mem::size_of::<RawFmtDesc>());
const VIDIOC_G_FMT: u64 = iowr(4, std::mem::size_of::<RawFormat>());
const VIDIOC_S_FMT: u64 = iowr(5, std::mem::size_of::<RawFormat>());
#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(std::mem::size_of::<RawFormat>() == 208);
    assert!(VIDIOC_S_FMT == 0xc0d0_5605);
};
#[cfg(target_pointer_width = "32")]
const _: () = {
    assert!(std::mem::size_of::<RawFormat>() == 204);
    assert!(VIDIOC_S_FMT == 0xc0cc_5605);
};
const _: () = {
    assert!(std::mem::size_of::<RawFmtDesc>() == 64);
    assert!(VIDIOC_ENUM_FMT == 0xc040_5602);
};
