//! The real libc calls the shim makes for itself (resolved past the shim with
//! `dlsym(RTLD_NEXT)`), and memfd helpers.

use std::ffi::{CStr, c_char, c_int, c_ulong, c_void};
use std::sync::OnceLock;

type OpenFn = unsafe extern "C" fn(*const c_char, c_int, libc::mode_t) -> c_int;
type OpenatFn = unsafe extern "C" fn(c_int, *const c_char, c_int, libc::mode_t) -> c_int;
type CloseFn = unsafe extern "C" fn(c_int) -> c_int;
type IoctlFn = unsafe extern "C" fn(c_int, c_ulong, *mut c_void) -> c_int;
type MmapFn = unsafe extern "C" fn(*mut c_void, usize, c_int, c_int, c_int, i64) -> *mut c_void;
type PollFn = unsafe extern "C" fn(*mut libc::pollfd, libc::nfds_t, c_int) -> c_int;

/// Resolves `name` in the libraries after this one.
fn next(name: &CStr) -> *mut c_void {
    // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name has no preconditions.
    unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) }
}

macro_rules! real {
    ($fn_name:ident, $ty:ty, $sym:literal) => {
        pub(crate) fn $fn_name() -> $ty {
            static CELL: OnceLock<usize> = OnceLock::new();
            let addr = *CELL.get_or_init(|| next($sym) as usize);
            if addr == 0 {
                eprintln!("fake-v4l2: libc has no {:?}", $sym);
                std::process::abort();
            }
            // SAFETY: `addr` is libc's own symbol of that name, whose C signature `$ty`
            // transcribes.
            unsafe { std::mem::transmute::<usize, $ty>(addr) }
        }
    };
}

real!(open, OpenFn, c"open");
real!(open64, OpenFn, c"open64");
real!(openat, OpenatFn, c"openat");
real!(openat64, OpenatFn, c"openat64");
real!(close_fn, CloseFn, c"close");
real!(ioctl, IoctlFn, c"ioctl");
real!(mmap64, MmapFn, c"mmap64");
real!(poll, PollFn, c"poll");

/// Closes an fd the shim owns.
pub(crate) fn close(fd: i32) {
    // SAFETY: the shim owns `fd` and closes it once.
    unsafe { close_fn()(fd) };
}

/// A memfd of `len` bytes (the memory behind an MMAP plane).
pub(crate) fn memfd(len: usize) -> Result<i32, i32> {
    // SAFETY: a NUL-terminated name and plain flags.
    let fd = unsafe { libc::memfd_create(c"fake-v4l2-buffer".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(libc::ENOMEM);
    }
    // SAFETY: `fd` is the memfd just created.
    if unsafe { libc::ftruncate(fd, len as libc::off_t) } != 0 {
        close(fd);
        return Err(libc::ENOMEM);
    }
    Ok(fd)
}

/// Writes `data` at `offset` of the file behind `fd`.
pub(crate) fn write_at(fd: i32, offset: usize, data: &[u8]) {
    // SAFETY: `data` is a live slice of `data.len()` bytes; `fd` is open.
    unsafe { libc::pwrite(fd, data.as_ptr().cast(), data.len(), offset as libc::off_t) };
}

/// Reads the first `len` bytes of the file behind `fd` (a memfd, or a DMA-buf through an
/// mmap, since DMA-bufs do not support read).
pub(crate) fn read_all(fd: i32, len: usize) -> Option<Vec<u8>> {
    if len == 0 {
        return None;
    }
    // SAFETY: a fresh private read-only mapping chosen by the kernel; unmapped below.
    let ptr = unsafe {
        mmap64()(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return None;
    }
    // SAFETY: the mapping is `len` readable bytes until munmap.
    let out = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) }.to_vec();
    // SAFETY: unmapping the mapping made above.
    unsafe { libc::munmap(ptr, len) };
    Some(out)
}

/// Whether a DMA-buf is physically contiguous, as vb2-dma-contig requires. User space cannot
/// see pages, so the exporter decides: `/proc/self/fdinfo/<fd>` names it (`exp_name:`), and
/// only the CMA heaps (`linux,cma`, `reserved`) hand out contiguous memory. Anything else (the
/// `system` heap, memfds, vb2-vmalloc exports) is refused as bcm2835-codec's import would.
pub(crate) fn is_contiguous(fd: i32) -> bool {
    let Ok(info) = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")) else {
        return false;
    };
    info.lines()
        .filter_map(|l| l.strip_prefix("exp_name:"))
        .any(|name| matches!(name.trim(), "linux,cma" | "reserved" | "cma"))
}

/// A fresh real fd to stand for a fake device node (so fd numbers are real and unique).
pub(crate) fn eventfd() -> Result<i32, i32> {
    // SAFETY: plain flags.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 { Err(libc::EMFILE) } else { Ok(fd) }
}
