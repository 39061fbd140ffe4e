//! An `LD_PRELOAD` stand-in for V4L2 stateful H.264 encoders. It does not emulate a kernel:
//! it answers the ioctls camseal's V4L2 backend makes, for one fake device node, the way
//! the modelled drivers do (`FAKE_V4L2_PROFILE=bcm2835|venus-old|mediatek`), and encodes the
//! OUTPUT frames with openh264 so the CAPTURE stream is real H.264. Faults come from
//! `FAKE_V4L2_FAULT` (see `faults.rs`).
//!
//! `FAKE_V4L2_TRACE=1` logs every ioctl and encode step to stderr.
//!
//! Layers: `abi` (its own `videodev2.h` transcription), `profile` (what differs per driver),
//! `device` (queues, formats, controls, the encode step), `sys` (the real libc), and here
//! the interposed `open`/`close`/`ioctl`/`mmap`/`poll`. Every other fd and path passes
//! through to libc. Each fake fd is backed by a real eventfd (real, unique fd numbers), and
//! MMAP buffers by memfds (mmap returns real shared memory).

#![allow(unsafe_code)]
// The stand-in models the build host's LP64 ABI; elsewhere (the armv7 cross-check of the
// workspace) the library is empty rather than a build failure.
#![cfg(all(
    target_os = "linux",
    target_pointer_width = "64",
    target_endian = "little"
))]

mod abi;
mod device;
mod faults;
mod profile;
mod sys;

use std::collections::HashMap;
use std::ffi::{CStr, c_char, c_int, c_ulong, c_void};
use std::sync::{Mutex, MutexGuard, PoisonError};

use abi::*;
use device::{Device, Errno};

static DEVICES: Mutex<Option<HashMap<i32, Device>>> = Mutex::new(None);

fn devices() -> MutexGuard<'static, Option<HashMap<i32, Device>>> {
    DEVICES.lock().unwrap_or_else(PoisonError::into_inner)
}

fn fake_path() -> String {
    std::env::var("FAKE_V4L2_DEVICE").unwrap_or_else(|_| "/dev/fake-v4l2-enc".into())
}

/// Whether `path` names the fake node.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
unsafe fn is_fake(path: *const c_char) -> bool {
    if path.is_null() {
        return false;
    }
    // SAFETY: per the contract.
    let path = unsafe { CStr::from_ptr(path) };
    path.to_bytes() == fake_path().as_bytes()
}

fn set_errno(e: i32) {
    // SAFETY: errno is thread-local and always writable.
    unsafe { *libc::__errno_location() = e };
}

/// Opens the fake device: a new eventfd stands for it.
fn open_fake() -> c_int {
    let profile = match profile::Profile::from_env() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("fake-v4l2: {e}");
            set_errno(libc::EINVAL);
            return -1;
        }
    };
    let faults = match faults::Faults::from_env() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("fake-v4l2: {e}");
            set_errno(libc::EINVAL);
            return -1;
        }
    };
    match sys::eventfd() {
        Ok(fd) => {
            devices()
                .get_or_insert_with(HashMap::new)
                .insert(fd, Device::new(profile, faults));
            fd
        }
        Err(e) => {
            set_errno(e);
            -1
        }
    }
}

/// `open(2)`, interposed.
///
/// # Safety
/// As `open(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn open(path: *const c_char, flags: c_int, mode: libc::mode_t) -> c_int {
    // SAFETY: the caller passes a path as open(2) requires.
    if unsafe { is_fake(path) } {
        return open_fake();
    }
    // SAFETY: forwarded unchanged.
    unsafe { sys::open()(path, flags, mode) }
}

/// `open64(2)`, interposed (Rust's std opens files with it).
///
/// # Safety
/// As `open64(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn open64(path: *const c_char, flags: c_int, mode: libc::mode_t) -> c_int {
    // SAFETY: as `open`.
    if unsafe { is_fake(path) } {
        return open_fake();
    }
    // SAFETY: forwarded unchanged.
    unsafe { sys::open64()(path, flags, mode) }
}

/// `openat(2)`, interposed.
///
/// # Safety
/// As `openat(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn openat(
    dir: c_int,
    path: *const c_char,
    flags: c_int,
    mode: libc::mode_t,
) -> c_int {
    // SAFETY: as `open`.
    if unsafe { is_fake(path) } {
        return open_fake();
    }
    // SAFETY: forwarded unchanged.
    unsafe { sys::openat()(dir, path, flags, mode) }
}

/// `openat64(2)`, interposed.
///
/// # Safety
/// As `openat(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn openat64(
    dir: c_int,
    path: *const c_char,
    flags: c_int,
    mode: libc::mode_t,
) -> c_int {
    // SAFETY: as `open`.
    if unsafe { is_fake(path) } {
        return open_fake();
    }
    // SAFETY: forwarded unchanged.
    unsafe { sys::openat64()(dir, path, flags, mode) }
}

/// `close(2)`, interposed: closing a fake fd frees its device.
///
/// # Safety
/// As `close(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    // Taken out under the lock, dropped after it (dropping closes memfds through `sys`).
    let gone = devices().as_mut().and_then(|m| m.remove(&fd));
    drop(gone);
    // SAFETY: forwarded unchanged.
    unsafe { sys::close_fn()(fd) }
}

/// `mmap(2)`, interposed: a fake fd's offset is a buffer cookie, mapped from its memfd.
///
/// # Safety
/// As `mmap(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmap(
    addr: *mut c_void,
    len: usize,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    offset: i64,
) -> *mut c_void {
    // SAFETY: as mmap64.
    unsafe { mmap64(addr, len, prot, flags, fd, offset) }
}

/// `mmap64(2)`, interposed.
///
/// # Safety
/// As `mmap(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmap64(
    addr: *mut c_void,
    len: usize,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    offset: i64,
) -> *mut c_void {
    let target = {
        let guard = devices();
        guard
            .as_ref()
            .and_then(|m| m.get(&fd))
            .map(|dev| u32::try_from(offset).ok().and_then(|c| dev.memfd_at(c)))
    };
    match target {
        // SAFETY: forwarded unchanged.
        None => unsafe { sys::mmap64()(addr, len, prot, flags, fd, offset) },
        Some(Some((memfd, length))) if len <= length as usize => {
            // SAFETY: maps the plane's memfd, which lives as long as the buffers; the
            // caller's arguments are otherwise unchanged.
            unsafe { sys::mmap64()(addr, len, prot, flags, memfd, 0) }
        }
        Some(_) => {
            set_errno(libc::EINVAL);
            libc::MAP_FAILED
        }
    }
}

/// `poll(2)`, interposed: a fake fd is readable when a CAPTURE buffer is done, writable
/// when an OUTPUT buffer is, and in error when CAPTURE has nothing queued (vb2_poll).
///
/// # Safety
/// As `poll(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn poll(fds: *mut libc::pollfd, nfds: libc::nfds_t, timeout: c_int) -> c_int {
    let fake: Vec<usize> = {
        let guard = devices();
        let Some(map) = guard.as_ref() else {
            // SAFETY: forwarded unchanged.
            return unsafe { sys::poll()(fds, nfds, timeout) };
        };
        (0..nfds as usize)
            // SAFETY: `fds` holds `nfds` entries per poll(2).
            .filter(|&i| map.contains_key(&unsafe { (*fds.add(i)).fd }))
            .collect()
    };
    if fake.is_empty() || fds.is_null() {
        // SAFETY: forwarded unchanged.
        return unsafe { sys::poll()(fds, nfds, timeout) };
    }
    let ready = |fds: *mut libc::pollfd| {
        let guard = devices();
        let mut n = 0;
        for &i in &fake {
            // SAFETY: `i < nfds`.
            let pfd = unsafe { &mut *fds.add(i) };
            pfd.revents = 0;
            if let Some(dev) = guard.as_ref().and_then(|m| m.get(&pfd.fd)) {
                if !dev.capture.done.is_empty() || dev.capture_finished() {
                    pfd.revents |= libc::POLLIN | libc::POLLRDNORM;
                }
                if !dev.output.done.is_empty() {
                    pfd.revents |= libc::POLLOUT | libc::POLLWRNORM;
                }
                if dev.capture.queued.is_empty() && dev.capture.done.is_empty() {
                    pfd.revents |= libc::POLLERR;
                }
            }
            if pfd.revents != 0 {
                n += 1;
            }
        }
        n
    };
    let n = ready(fds);
    if n > 0 || timeout == 0 {
        return n;
    }
    // Nothing happens without the caller queuing more: a short sleep models the wait.
    std::thread::sleep(std::time::Duration::from_millis(timeout.clamp(1, 5) as u64));
    ready(fds)
}

/// `ioctl(2)`, interposed.
///
/// # Safety
/// As `ioctl(2)`: `arg` points at the struct `request` encodes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ioctl(fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int {
    let mut guard = devices();
    let Some(dev) = guard.as_mut().and_then(|m| m.get_mut(&fd)) else {
        drop(guard);
        // SAFETY: forwarded unchanged.
        return unsafe { sys::ioctl()(fd, request, arg) };
    };
    if arg.is_null() {
        set_errno(libc::EFAULT);
        return -1;
    }
    // SAFETY: the caller passes the struct the request encodes (its size is in the number).
    let result = unsafe { handle(dev, request, arg) };
    if std::env::var_os("FAKE_V4L2_TRACE").is_some() {
        eprintln!("fake-v4l2: ioctl {request:#x} -> {result:?}");
    }
    match result {
        Ok(()) => 0,
        Err(e) => {
            set_errno(e);
            -1
        }
    }
}

/// One ioctl on a fake device.
///
/// # Safety
/// `arg` points at a live value of the type `request` encodes.
unsafe fn handle(dev: &mut Device, request: c_ulong, arg: *mut c_void) -> Result<(), Errno> {
    match request {
        VIDIOC_QUERYCAP => {
            // SAFETY: per the contract.
            let cap = unsafe { &mut *arg.cast::<Capability>() };
            let caps = CAP_STREAMING
                | if dev.profile.mplane() {
                    CAP_VIDEO_M2M_MPLANE
                } else {
                    CAP_VIDEO_M2M
                };
            cap.driver = [0; 16];
            cap.card = [0; 32];
            cap.bus_info = [0; 32];
            copy_str(&mut cap.driver, dev.profile.driver());
            copy_str(&mut cap.card, &format!("fake {}", dev.profile.driver()));
            copy_str(&mut cap.bus_info, "platform:fake-v4l2");
            cap.version = 0x0006_0100;
            cap.capabilities = caps | CAP_DEVICE_CAPS;
            cap.device_caps = caps;
            cap.reserved = [0; 3];
            Ok(())
        }
        VIDIOC_ENUM_FMT => {
            // SAFETY: per the contract.
            let d = unsafe { &mut *arg.cast::<FmtDesc>() };
            let list: &[u32] = if d.type_ == dev.capture_type() {
                &[PIX_FMT_H264]
            } else if d.type_ == dev.output_type() {
                dev.profile.raw_formats()
            } else {
                return Err(libc::EINVAL);
            };
            let f = *list.get(d.index as usize).ok_or(libc::EINVAL)?;
            d.pixelformat = f;
            d.flags = 0;
            d.description = [0; 32];
            copy_str(
                &mut d.description,
                &String::from_utf8_lossy(&f.to_le_bytes()),
            );
            Ok(())
        }
        VIDIOC_G_FMT | VIDIOC_S_FMT => {
            // SAFETY: per the contract.
            let f = unsafe { &mut *arg.cast::<Format>() };
            let is_capture = f.type_ == dev.capture_type();
            if !is_capture && f.type_ != dev.output_type() {
                return Err(libc::EINVAL);
            }
            let mplane = dev.profile.mplane();
            if request == VIDIOC_S_FMT {
                let (w, h, pf) = (
                    get(&f.fmt, pix::WIDTH),
                    get(&f.fmt, pix::HEIGHT),
                    get(&f.fmt, pix::PIXELFORMAT),
                );
                if is_capture {
                    let asked = if mplane {
                        get(&f.fmt, pix::MP_PLANE)
                    } else {
                        get(&f.fmt, pix::SIZEIMAGE)
                    };
                    if dev.capture.bufs.iter().any(|_| true) && dev.capture.streaming {
                        return Err(libc::EBUSY);
                    }
                    dev.cap_fmt = dev.coded_fmt(w, h, asked);
                } else {
                    dev.out_fmt = dev.raw_fmt(w, h, pf);
                }
            }
            let fmt = if is_capture { dev.cap_fmt } else { dev.out_fmt };
            f.fmt = [0; 200];
            put(&mut f.fmt, pix::WIDTH, fmt.width);
            put(&mut f.fmt, pix::HEIGHT, fmt.height);
            put(&mut f.fmt, pix::PIXELFORMAT, fmt.pixelformat);
            put(&mut f.fmt, pix::FIELD, 1);
            if mplane {
                for i in 0..fmt.num_planes as usize {
                    let at = pix::MP_PLANE + pix::MP_PLANE_SIZE * i;
                    put(&mut f.fmt, at, fmt.planes[i].1);
                    put(&mut f.fmt, at + 4, fmt.planes[i].0);
                }
                f.fmt[pix::MP_NUM_PLANES] = fmt.num_planes as u8;
            } else {
                put(&mut f.fmt, pix::BYTESPERLINE, fmt.planes[0].0);
                put(&mut f.fmt, pix::SIZEIMAGE, fmt.planes[0].1);
            }
            Ok(())
        }
        VIDIOC_S_PARM | VIDIOC_G_PARM => {
            // SAFETY: per the contract.
            let p = unsafe { &mut *arg.cast::<StreamParm>() };
            if p.type_ != dev.output_type() && p.type_ != dev.capture_type() {
                return Err(libc::EINVAL);
            }
            if request == VIDIOC_S_PARM && p.numerator != 0 && p.denominator != 0 {
                dev.interval = (p.numerator, p.denominator);
            }
            // V4L2_CAP_TIMEPERFRAME.
            p.capability = 0x1000;
            (p.numerator, p.denominator) = dev.interval;
            Ok(())
        }
        VIDIOC_S_SELECTION => {
            // SAFETY: per the contract.
            let s = unsafe { &mut *arg.cast::<Selection>() };
            // The kernel maps multi-planar types to single-planar ones for selections.
            if s.type_ != BUF_TYPE_VIDEO_OUTPUT || s.target != SEL_TGT_CROP {
                return Err(libc::EINVAL);
            }
            // Crop within the raw frame, as the drivers clamp it.
            s.left = 0;
            s.top = 0;
            s.width = s.width.clamp(32, dev.out_fmt.width);
            s.height = s.height.clamp(32, dev.out_fmt.height);
            Ok(())
        }
        VIDIOC_S_CTRL | VIDIOC_G_CTRL => {
            // SAFETY: per the contract.
            let c = unsafe { &mut *arg.cast::<Control>() };
            if request == VIDIOC_G_CTRL {
                return if dev.profile.has_control(c.id) {
                    Ok(())
                } else {
                    Err(libc::EINVAL)
                };
            }
            dev.set_control(c.id, c.value)
        }
        VIDIOC_REQBUFS => {
            // SAFETY: per the contract.
            let r = unsafe { &mut *arg.cast::<RequestBuffers>() };
            r.count = dev.reqbufs(r.type_, r.memory, r.count)?;
            // V4L2_BUF_CAP_SUPPORTS_MMAP | _DMABUF.
            r.capabilities = 0x1 | 0x4;
            Ok(())
        }
        VIDIOC_QUERYBUF | VIDIOC_QBUF | VIDIOC_DQBUF => {
            // SAFETY: per the contract.
            let b = unsafe { &mut *arg.cast::<Buffer>() };
            // SAFETY: per the contract, `m.planes` points at `length` planes for
            // multi-planar types.
            let r = unsafe { buffer_call(dev, request, b) };
            if std::env::var_os("FAKE_V4L2_TRACE").is_some() {
                eprintln!(
                    "fake-v4l2: buffer type {} index {} flags {:#x} bytesused {} tv {}.{:06}",
                    b.type_, b.index, b.flags, b.bytesused, b.tv_sec, b.tv_usec
                );
            }
            r
        }
        VIDIOC_STREAMON | VIDIOC_STREAMOFF => {
            // SAFETY: per the contract.
            let t = unsafe { *arg.cast::<u32>() };
            if request == VIDIOC_STREAMON {
                dev.queue(t)?.streaming = true;
                dev.run();
                Ok(())
            } else {
                dev.streamoff(t)
            }
        }
        VIDIOC_ENCODER_CMD => {
            // SAFETY: per the contract.
            let c = unsafe { &*arg.cast::<EncoderCmd>() };
            if !dev.profile.has_encoder_cmd() {
                return Err(libc::ENOTTY);
            }
            if c.cmd != ENC_CMD_STOP {
                return Err(libc::EINVAL);
            }
            dev.stop()
        }
        VIDIOC_EXPBUF => Err(libc::ENOTTY),
        _ => Err(libc::ENOTTY),
    }
}

/// QUERYBUF, QBUF and DQBUF.
///
/// # Safety
/// For multi-planar types `b.m` points at `b.length` live `v4l2_plane`s.
unsafe fn buffer_call(dev: &mut Device, request: c_ulong, b: &mut Buffer) -> Result<(), Errno> {
    let is_capture = b.type_ == dev.capture_type();
    let mplane = dev.profile.mplane();
    let planes: &mut [Plane] = if mplane {
        if b.m == 0 || b.length == 0 {
            return Err(libc::EINVAL);
        }
        // SAFETY: per the contract.
        unsafe { std::slice::from_raw_parts_mut(b.m as *mut Plane, b.length as usize) }
    } else {
        &mut []
    };
    match request {
        VIDIOC_QUERYBUF => {
            let q = dev.queue(b.type_)?;
            let buf = q.bufs.get(b.index as usize).ok_or(libc::EINVAL)?;
            fill(b, planes, buf, mplane)?;
            Ok(())
        }
        VIDIOC_QBUF => {
            let memory = dev.queue(b.type_)?.memory;
            if b.memory != memory {
                return Err(libc::EINVAL);
            }
            let contiguous_only = dev.profile.contiguous_only();
            let q = dev.queue(b.type_)?;
            let index = b.index as usize;
            let buf = q.bufs.get_mut(index).ok_or(libc::EINVAL)?;
            if buf.queued {
                return Err(libc::EINVAL);
            }
            if !is_capture {
                for (i, p) in buf.planes.iter_mut().enumerate() {
                    let (bytesused, fd, length, data_offset) = if mplane {
                        let src = planes.get(i).ok_or(libc::EINVAL)?;
                        (src.bytesused, src.m as i32, src.length, src.data_offset)
                    } else if i == 0 {
                        (b.bytesused, b.m as i32, b.length, 0)
                    } else {
                        return Err(libc::EINVAL);
                    };
                    if memory == MEMORY_DMABUF {
                        // vb2 checks each plane against the format's sizeimage.
                        if length < p.length {
                            return Err(libc::EINVAL);
                        }
                        if contiguous_only && !sys::is_contiguous(fd) {
                            eprintln!(
                                "fake-v4l2: bcm2835-codec cannot import DMA-buf fd {fd}: not \
                                 physically contiguous (vb2-dma-contig)"
                            );
                            return Err(libc::EINVAL);
                        }
                        p.dmabuf = Some(fd);
                    }
                    p.bytesused = bytesused;
                    p.data_offset = data_offset;
                }
                buf.tv = (b.tv_sec, b.tv_usec);
            }
            buf.queued = true;
            buf.flags = 0;
            q.queued.push_back(index);
            if is_capture {
                dev.run();
            } else {
                dev.queued_output(index)?;
            }
            Ok(())
        }
        _ => {
            if is_capture && dev.capture_finished() {
                return Err(libc::EPIPE);
            }
            let q = dev.queue(b.type_)?;
            if !q.streaming {
                return Err(libc::EINVAL);
            }
            let index = q.done.pop_front().ok_or(libc::EAGAIN)?;
            let buf = &q.bufs[index];
            b.index = index as u32;
            fill(b, planes, buf, mplane)?;
            b.flags = buf.flags | BUF_FLAG_TIMESTAMP_COPY | BUF_FLAG_DONE;
            (b.tv_sec, b.tv_usec) = buf.tv;
            b.sequence = buf.sequence;
            Ok(())
        }
    }
}

/// Fills a `v4l2_buffer` (and its planes) from a buffer's state.
fn fill(
    b: &mut Buffer,
    planes: &mut [Plane],
    buf: &device::Buf,
    mplane: bool,
) -> Result<(), Errno> {
    b.flags = BUF_FLAG_MAPPED | if buf.queued { BUF_FLAG_QUEUED } else { 0 };
    if mplane {
        if planes.len() < buf.planes.len() {
            return Err(libc::EINVAL);
        }
        for (dst, src) in planes.iter_mut().zip(&buf.planes) {
            dst.bytesused = src.bytesused;
            dst.length = src.length;
            dst.m = u64::from(src.cookie);
            dst.data_offset = src.data_offset;
        }
        b.length = buf.planes.len() as u32;
    } else {
        let p = buf.planes.first().ok_or(libc::EINVAL)?;
        b.bytesused = p.bytesused;
        b.length = p.length;
        b.m = u64::from(p.cookie);
    }
    Ok(())
}

fn copy_str(dst: &mut [u8], s: &str) {
    let n = s.len().min(dst.len() - 1);
    dst[..n].copy_from_slice(&s.as_bytes()[..n]);
}

fn get(b: &[u8; 200], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn put(b: &mut [u8; 200], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}
