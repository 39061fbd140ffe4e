//! The V4L2 backends against real kernel drivers: vivid (a capture device) and vicodec (a
//! stateful FWHT encoder), in the QEMU guest `scripts/test-v4l2-qemu.sh` boots.
//!
//! Every test here needs those drivers, so all are `#[ignore]`d on the host; the guest runs
//! this binary (built static) with `--ignored`. vicodec encodes FWHT, not H.264: these tests
//! cover the V4L2 protocol and buffer ownership (MMAP, DMABUF from vivid's EXPBUF, streaming,
//! drain and LAST, timestamps, errors), while NAL handling is tested elsewhere.

use std::collections::HashSet;
use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use camseal_hal::v4l2::{
    CodedFormat, M2mConfig, M2mEncoder, V4l2CaptureSource, V4l2Error, V4l2FrameSource,
    V4l2M2mSource,
};
use camseal_hal::{
    Codec, DmaBuf, EncoderConfig, FrameMemory, FrameRate, FrameSource, HalError, PixelFormat,
    Plane, RawFrame, TestPattern,
};

// A size vivid's webcam input offers (it has discrete sizes only).
// A size vivid's webcam input offers (it has discrete sizes only), and 16-row aligned as
// encoders want it, so vivid's buffers can go into vicodec as they are.
const W: u32 = 640;
const H: u32 = 480;
const TIMEOUT: Duration = Duration::from_secs(5);

#[test]
#[ignore = "needs vicodec: run by scripts/test-v4l2-qemu.sh"]
fn vicodec_mmap_encodes_every_frame_and_drains_to_last() {
    // 360 rows: the encoder pads the coded height, the frames are copied into that layout.
    let (w, h) = (640, 360);
    let fps = FrameRate::from_fps(25).unwrap();
    let mut enc = M2mEncoder::open(
        &encoder_node(),
        &M2mConfig::new(CodedFormat::Fwht, w, h, fps),
    )
    .unwrap();
    let (bpl, size) = enc.output_format();
    let coded = enc.coded_size();
    assert!(
        coded.0 == w && coded.1 >= h && coded.1 < h + 32,
        "{coded:?}"
    );
    assert!(bpl >= w && size >= bpl * coded.1 * 3 / 2, "{bpl} {size}");
    let mut pattern = TestPattern::new(w, h, fps).unwrap();
    let mut sent = Vec::new();
    // Packets are read and dropped at once: each holds one of the few CAPTURE buffers, and
    // the encoder stalls when readers hold them all.
    let mut got: Vec<Seen> = Vec::new();
    for _ in 0..10 {
        while !enc.can_accept().unwrap() {
            let buffer = enc.next_encoded(TIMEOUT).unwrap().unwrap();
            if got.is_empty() {
                // A lease: the buffer goes back to the driver when dropped.
                let held = enc.capture_queued();
                let seen = Seen::of(&buffer);
                drop(buffer);
                assert_eq!(enc.capture_queued(), held + 1);
                got.push(seen);
            } else {
                got.push(Seen::of(&buffer));
            }
        }
        let frame = pattern.next_frame().unwrap().unwrap();
        sent.push(frame.pts);
        enc.submit(frame).map_err(|b| b.1).unwrap();
    }
    enc.drain().unwrap();
    enc.drain().unwrap();
    while let Some(buffer) = enc.next_encoded(TIMEOUT).unwrap() {
        got.push(Seen::of(&buffer));
    }
    assert!(enc.finished());
    assert!(
        enc.next_encoded(TIMEOUT).unwrap().is_none(),
        "ended stays ended"
    );
    // One packet per frame, in order, each carrying its frame's timestamp.
    let pts: Vec<u64> = got.iter().map(|b| b.pts).collect();
    assert_eq!(pts, sent);
    for b in &got {
        // struct fwht_cframe_hdr starts with magic1 = 0x4f4f4f4f, magic2 = 0xffffffff.
        assert_eq!(b.head, [0x4f, 0x4f, 0x4f, 0x4f, 0xff, 0xff, 0xff, 0xff]);
        assert!(
            !b.keyframe_flag,
            "vicodec never flags keyframes when encoding"
        );
    }
    assert!(got.last().unwrap().last || enc.finished());
    let stats = enc.stats();
    assert_eq!(
        (stats.frames_in, stats.frames_dmabuf, stats.packets),
        (10, 0, 10)
    );
    // vicodec has a GOP size but no bitrate control: the refusal is counted, not fatal.
    assert_eq!(stats.unsupported_controls, 1);
    println!("mmap: 10 frames -> 10 FWHT packets, LAST after drain");
}

#[test]
#[ignore = "needs vivid and vicodec: run by scripts/test-v4l2-qemu.sh"]
fn vivid_dmabufs_are_queued_on_vicodec_without_a_copy() {
    let fps = FrameRate::from_fps(25).unwrap();
    let mut camera =
        V4l2FrameSource::open(&capture_node(), W, H, fps, Some(Duration::from_millis(480)))
            .unwrap();
    let buffers = camera.buffers();
    assert!(buffers >= 2);
    let mut enc = M2mEncoder::open(
        &encoder_node(),
        &M2mConfig::new(CodedFormat::Fwht, W, H, fps),
    )
    .unwrap();
    let (bpl, _) = enc.output_format();
    assert_eq!(
        camera.stride(),
        bpl,
        "vivid and vicodec agree on NV12 {W}x{H}"
    );
    let mut fds = HashSet::new();
    let mut got = Vec::new();
    let mut sent = 0;
    loop {
        while !enc.can_accept().unwrap() {
            got.push(Seen::of(&enc.next_encoded(TIMEOUT).unwrap().unwrap()));
        }
        let Some(frame) = camera.next_frame().unwrap() else {
            break;
        };
        match frame.memory() {
            FrameMemory::DmaBuf { fd, len } => {
                assert!(len >= (bpl * H * 3 / 2) as usize);
                fds.insert(std::os::fd::AsRawFd::as_raw_fd(&fd));
            }
            FrameMemory::Mapped(_) => panic!("vivid frames must be exported DMA-bufs"),
        }
        enc.submit(frame).map_err(|b| b.1).unwrap();
        sent += 1;
        // The encoder holds the frames it has not finished: vivid has that many fewer.
        assert!(camera.queued() + enc.output_queued() <= buffers);
    }
    enc.drain().unwrap();
    while let Some(b) = enc.next_encoded(TIMEOUT).unwrap() {
        got.push(Seen::of(&b));
    }
    let expected = camera
        .frame_rate()
        .frames_within(Duration::from_millis(480));
    assert!(expected >= 10, "{expected}");
    assert_eq!(sent, expected);
    assert_eq!(got.len() as u64, expected);
    assert!(got.windows(2).all(|w| w[0].pts < w[1].pts));
    assert_eq!(
        enc.stats().frames_dmabuf,
        expected,
        "every frame went in as a DMA-buf"
    );
    assert!(fds.len() >= 2 && fds.len() <= buffers, "{fds:?}");
    // Once the encoder is done, every capture buffer is back with vivid.
    drop(enc);
    assert_eq!(camera.queued(), buffers);
    println!(
        "dmabuf: {expected} vivid frames exported and encoded in place ({} buffers)",
        fds.len()
    );
}

#[test]
#[ignore = "needs vicodec: run by scripts/test-v4l2-qemu.sh"]
fn dma_heap_buffers_are_accepted_as_frames() {
    let fps = FrameRate::from_fps(25).unwrap();
    let mut enc = M2mEncoder::open(
        &encoder_node(),
        &M2mConfig::new(CodedFormat::Fwht, W, H, fps),
    )
    .unwrap();
    let (bpl, size) = enc.output_format();
    assert_eq!(enc.coded_size(), (W, H));
    for i in 0..3u64 {
        let fd = heap::alloc(size as usize).expect("/dev/dma_heap/system");
        let planes = [
            Plane {
                offset: 0,
                stride: bpl as usize,
            },
            Plane {
                offset: (bpl * H) as usize,
                stride: bpl as usize,
            },
        ];
        let frame = RawFrame::new(
            PixelFormat::Nv12,
            W,
            H,
            &planes,
            fps.pts(i),
            Box::new(DmaBuf::new(fd, size as usize)),
        )
        .unwrap();
        enc.submit(frame).map_err(|b| b.1).unwrap();
    }
    enc.drain().unwrap();
    let mut n = 0;
    while enc.next_encoded(TIMEOUT).unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 3);
    println!("dma-heap: 3 heap buffers encoded");
}

#[test]
#[ignore = "needs vivid and vicodec: run by scripts/test-v4l2-qemu.sh"]
fn error_paths_are_typed_and_hand_frames_back() {
    let fps = FrameRate::from_fps(25).unwrap();
    let config = M2mConfig::new(CodedFormat::Fwht, W, H, fps);

    // A capture node is not an encoder.
    let e = M2mEncoder::open(&capture_node(), &config).err().unwrap();
    assert!(matches!(e, V4l2Error::NotA { .. }), "{e}");
    // vicodec does not encode H.264.
    let h264 = M2mConfig::new(CodedFormat::H264, W, H, fps);
    let e = M2mEncoder::open(&encoder_node(), &h264).err().unwrap();
    assert!(e.to_string().contains("does not encode H264"), "{e}");
    // vivid does not output H.264: a UVC-style source refuses it with what it offers.
    let e = V4l2CaptureSource::open(&capture_node(), Codec::H264, None, None, None)
        .err()
        .unwrap();
    assert!(e.to_string().contains("does not output H264"), "{e}");
    assert!(e.to_string().contains("NV12"), "{e}");
    // ... and the Encoder-level M2M source too.
    let e = V4l2M2mSource::open(
        &encoder_node(),
        &EncoderConfig::new(Codec::H264, W, H, fps),
        None,
    )
    .err()
    .unwrap();
    assert!(matches!(e, HalError::V4l2(V4l2Error::Format { .. })), "{e}");

    let mut enc = M2mEncoder::open(&encoder_node(), &config).unwrap();
    // Nothing queued: a timeout, not a hang.
    let e = enc.next_encoded(Duration::from_millis(50)).unwrap_err();
    assert!(matches!(e, V4l2Error::Timeout { .. }), "{e}");
    assert_eq!(enc.stats().timeouts, 1);

    // A DMA-buf frame laid out differently from the OUTPUT format is handed back.
    let (bpl, size) = enc.output_format();
    let fd = heap::alloc(size as usize * 2).expect("/dev/dma_heap/system");
    let stride = bpl as usize + 64;
    let planes = [
        Plane { offset: 0, stride },
        Plane {
            offset: stride * H as usize,
            stride,
        },
    ];
    let frame = RawFrame::new(
        PixelFormat::Nv12,
        W,
        H,
        &planes,
        7,
        Box::new(DmaBuf::new(fd, size as usize * 2)),
    )
    .unwrap();
    let back = enc.submit(frame).err().unwrap();
    assert!(matches!(back.1, V4l2Error::Layout(_)), "{}", back.1);
    assert_eq!(back.0.pts, 7, "the frame came back");
    // The queue was set up for DMA-bufs by that frame: a mapped frame is refused, and handed
    // back too.
    let mapped = TestPattern::new(W, H, fps)
        .unwrap()
        .next_frame()
        .unwrap()
        .unwrap();
    let back = enc.submit(mapped).err().unwrap();
    assert!(matches!(back.1, V4l2Error::Unsupported(_)), "{}", back.1);

    // Draining with nothing encoded ends at once (the LAST marker), and frames are refused.
    enc.drain().unwrap();
    assert!(enc.next_encoded(TIMEOUT).unwrap().is_none());
    assert!(enc.submit(back.0).is_err());

    // A missing node is one clear line.
    let e = M2mEncoder::open(&PathBuf::from("/dev/video99"), &config)
        .err()
        .unwrap();
    assert_eq!(
        e.to_string(),
        "cannot open V4L2 device /dev/video99: No such file or directory (os error 2)"
    );
    println!("errors: NotA, Format, Timeout, Layout, Unsupported, drain-empty, missing node");
}

/// What the tests keep of a packet (holding the lease would hold a CAPTURE buffer).
struct Seen {
    pts: u64,
    head: [u8; 8],
    keyframe_flag: bool,
    last: bool,
}

impl Seen {
    fn of(b: &camseal_hal::v4l2::EncodedBuffer) -> Seen {
        let mut head = [0u8; 8];
        head.copy_from_slice(&b.data()[..8]);
        Seen {
            pts: b.pts,
            head,
            keyframe_flag: b.keyframe_flag,
            last: b.last,
        }
    }
}

/// The first node whose sysfs name is `name`.
fn node(name: &str) -> PathBuf {
    let mut found = Vec::new();
    for entry in fs::read_dir("/sys/class/video4linux").expect("no V4L2 devices") {
        let entry = entry.unwrap();
        let n = fs::read_to_string(entry.path().join("name")).unwrap_or_default();
        if n.trim() == name {
            found.push(PathBuf::from("/dev").join(entry.file_name()));
        }
    }
    found.sort();
    found
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no V4L2 node named {name}"))
}

fn encoder_node() -> PathBuf {
    node("stateful-encoder")
}

fn capture_node() -> PathBuf {
    node("vivid-000-vid-cap")
}

/// DMA-buf heap allocation (`/dev/dma_heap/system`), for frames that are real DMA-bufs.
mod heap {
    use std::fs::OpenOptions;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    /// `struct dma_heap_allocation_data`.
    #[repr(C)]
    struct Allocation {
        len: u64,
        fd: u32,
        fd_flags: u32,
        heap_flags: u64,
    }

    /// `DMA_HEAP_IOCTL_ALLOC = _IOWR('H', 0, struct dma_heap_allocation_data)`.
    const DMA_HEAP_IOCTL_ALLOC: u64 =
        (3 << 30) | ((std::mem::size_of::<Allocation>() as u64) << 16) | ((b'H' as u64) << 8);

    pub fn alloc(len: usize) -> Option<OwnedFd> {
        let heap = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/dma_heap/system")
            .ok()?;
        let mut data = Allocation {
            len: len as u64,
            fd: 0,
            fd_flags: (libc::O_RDWR | libc::O_CLOEXEC) as u32,
            heap_flags: 0,
        };
        // SAFETY: `data` is a live dma_heap_allocation_data, as the request encodes.
        let ret = unsafe { libc::ioctl(heap.as_raw_fd(), DMA_HEAP_IOCTL_ALLOC as _, &mut data) };
        if ret != 0 {
            return None;
        }
        // SAFETY: on success the kernel installed a new fd that nothing else owns.
        Some(unsafe { OwnedFd::from_raw_fd(data.fd as i32) })
    }
}
