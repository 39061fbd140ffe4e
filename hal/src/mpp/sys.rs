//! The unsafe fence around MPP: owning handle types over the loaded function table, each of
//! whose methods makes exactly one C call and returns MPP's raw return code. Typed errors and
//! policy live in `api.rs`; nothing outside this file touches a raw MPP pointer.
//!
//! Ownership rules encoded here:
//! - [`Context`] is destroyed on drop, and every [`PacketLease`] holds an `Arc` of it, so a
//!   context outlives the packets whose memory its packet group owns.
//! - [`Buffer`] holds one reference (put on drop); a buffer allocated from a [`Group`] holds
//!   the group, so the group is put after its last buffer.
//! - [`Frame`] and [`Cfg`] are deinit on drop.
//! - Everything holds the [`Mpp`] table, so the library stays loaded while any handle lives.

#![allow(unsafe_code)]

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::Arc;

use rockchip_mpp_sys::{self as ffi, Mpp, MppRet};

/// An MPP context with its vtable. Destroyed when the last `Arc` goes.
pub(crate) struct Context {
    lib: Arc<Mpp>,
    ctx: ffi::MppCtx,
    api: *mut ffi::MppApi,
}

// SAFETY: an MPP context is a heap object with no thread affinity. The encoder is the only
// code that calls through it (behind `&mut`), so calls never overlap; packets only hold an
// `Arc` to keep it alive and never call through it, and `mpp_destroy` may run on whichever
// thread drops the last reference, which MPP allows (it joins its own worker threads).
unsafe impl Send for Context {}
// SAFETY: see `Send`: shared references are used only to keep the context alive.
unsafe impl Sync for Context {}

impl Context {
    /// `mpp_create`.
    pub(crate) fn create(lib: &Arc<Mpp>) -> Result<Context, MppRet> {
        let mut ctx: ffi::MppCtx = std::ptr::null_mut();
        let mut api: *mut ffi::MppApi = std::ptr::null_mut();
        // SAFETY: both out-pointers point at live locals.
        let ret = unsafe { (lib.mpp_create)(&mut ctx, &mut api) };
        if ret != ffi::MPP_OK {
            return Err(ret);
        }
        if ctx.is_null() || api.is_null() {
            return Err(ffi::MPP_ERR_NULL_PTR);
        }
        Ok(Context {
            lib: Arc::clone(lib),
            ctx,
            api,
        })
    }

    /// `mpp_init`.
    pub(crate) fn init(&self, type_: ffi::MppCtxType, coding: ffi::MppCodingType) -> MppRet {
        // SAFETY: `ctx` is live (destroyed only in Drop).
        unsafe { (self.lib.mpp_init)(self.ctx, type_, coding) }
    }

    /// `control(cmd, &value)` for commands whose parameter is a C `int`.
    pub(crate) fn control_int(&self, cmd: ffi::MpiCmd, value: i32) -> MppRet {
        let Some(control) = self.vtable().control else {
            return ffi::MPP_ERR_NULL_PTR;
        };
        let mut value = value;
        // SAFETY: live context; the parameter points at an `i32`, which is what MPP reads for
        // the timeout, header-mode and SEI commands (an int-sized C enum).
        unsafe { control(self.ctx, cmd, (&raw mut value).cast()) }
    }

    /// `control(cmd, cfg)` for `MPP_ENC_GET_CFG` / `MPP_ENC_SET_CFG`.
    pub(crate) fn control_cfg(&self, cmd: ffi::MpiCmd, cfg: &mut Cfg) -> MppRet {
        let Some(control) = self.vtable().control else {
            return ffi::MPP_ERR_NULL_PTR;
        };
        // SAFETY: live context and live cfg handle, which these commands take by value.
        unsafe { control(self.ctx, cmd, cfg.cfg) }
    }

    /// `control(cmd, NULL)` for commands without a parameter (`MPP_ENC_SET_IDR_FRAME`).
    pub(crate) fn control_none(&self, cmd: ffi::MpiCmd) -> MppRet {
        let Some(control) = self.vtable().control else {
            return ffi::MPP_ERR_NULL_PTR;
        };
        // SAFETY: live context; these commands take no parameter.
        unsafe { control(self.ctx, cmd, std::ptr::null_mut()) }
    }

    /// `encode_put_frame`. MPP keeps using the frame (and its buffer) until the packet made
    /// from it comes out, so the caller keeps `frame` alive until then.
    pub(crate) fn put_frame(&self, frame: &Frame) -> MppRet {
        let Some(put) = self.vtable().encode_put_frame else {
            return ffi::MPP_ERR_NULL_PTR;
        };
        // SAFETY: live context and live frame.
        unsafe { put(self.ctx, frame.frame) }
    }

    /// `encode_get_packet`: the return code and the packet, if one came out.
    pub(crate) fn get_packet(self: &Arc<Context>) -> (MppRet, Option<PacketLease>) {
        let Some(get) = self.vtable().encode_get_packet else {
            return (ffi::MPP_ERR_NULL_PTR, None);
        };
        let mut packet: ffi::MppPacket = std::ptr::null_mut();
        // SAFETY: live context; the out-pointer points at a live local.
        let ret = unsafe { get(self.ctx, &mut packet) };
        if packet.is_null() {
            return (ret, None);
        }
        // From here on the packet is ours to deinit, whatever `ret` says.
        (ret, Some(PacketLease::new(Arc::clone(self), packet)))
    }

    /// `reset`: MPP drops every queued frame and pending packet.
    pub(crate) fn reset(&self) -> MppRet {
        let Some(reset) = self.vtable().reset else {
            return ffi::MPP_ERR_NULL_PTR;
        };
        // SAFETY: live context.
        unsafe { reset(self.ctx) }
    }

    fn vtable(&self) -> &ffi::MppApi {
        // SAFETY: `api` was checked non-NULL at creation and MPP keeps the vtable alive until
        // `mpp_destroy`, which only runs in Drop.
        unsafe { &*self.api }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: last reference to a live context; nothing uses it afterwards. The return
        // code has nowhere to go from Drop.
        let _ = unsafe { (self.lib.mpp_destroy)(self.ctx) };
    }
}

/// An encoder configuration object (`MppEncCfg`).
pub(crate) struct Cfg {
    lib: Arc<Mpp>,
    cfg: ffi::MppEncCfg,
}

// SAFETY: a plain heap object with no thread affinity, used behind `&mut`.
unsafe impl Send for Cfg {}

impl Cfg {
    /// `mpp_enc_cfg_init`.
    pub(crate) fn new(lib: &Arc<Mpp>) -> Result<Cfg, MppRet> {
        let mut cfg: ffi::MppEncCfg = std::ptr::null_mut();
        // SAFETY: the out-pointer points at a live local.
        let ret = unsafe { (lib.mpp_enc_cfg_init)(&mut cfg) };
        if ret != ffi::MPP_OK {
            return Err(ret);
        }
        if cfg.is_null() {
            return Err(ffi::MPP_ERR_NULL_PTR);
        }
        Ok(Cfg {
            lib: Arc::clone(lib),
            cfg,
        })
    }

    /// `mpp_enc_cfg_set_s32`.
    pub(crate) fn set_s32(&mut self, key: &CStr, value: i32) -> MppRet {
        // SAFETY: live cfg; `key` is NUL-terminated and outlives the call.
        unsafe { (self.lib.mpp_enc_cfg_set_s32)(self.cfg, key.as_ptr(), value) }
    }

    /// `mpp_enc_cfg_set_u32`.
    pub(crate) fn set_u32(&mut self, key: &CStr, value: u32) -> MppRet {
        // SAFETY: live cfg; `key` is NUL-terminated and outlives the call.
        unsafe { (self.lib.mpp_enc_cfg_set_u32)(self.cfg, key.as_ptr(), value) }
    }

    /// `mpp_enc_cfg_get_s32`.
    pub(crate) fn get_s32(&self, key: &CStr) -> Result<i32, MppRet> {
        let mut value = 0;
        // SAFETY: live cfg; `key` is NUL-terminated; the out-pointer points at a live local.
        let ret = unsafe { (self.lib.mpp_enc_cfg_get_s32)(self.cfg, key.as_ptr(), &mut value) };
        if ret == ffi::MPP_OK {
            Ok(value)
        } else {
            Err(ret)
        }
    }
}

impl Drop for Cfg {
    fn drop(&mut self) {
        // SAFETY: live cfg, not used afterwards.
        let _ = unsafe { (self.lib.mpp_enc_cfg_deinit)(self.cfg) };
    }
}

/// A raw picture descriptor (`MppFrame`).
pub(crate) struct Frame {
    lib: Arc<Mpp>,
    frame: ffi::MppFrame,
}

// SAFETY: a plain heap object with no thread affinity, used behind `&mut`.
unsafe impl Send for Frame {}

/// The fields of an `MppFrame` camseal sets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FrameInfo {
    pub width: u32,
    pub height: u32,
    pub hor_stride: u32,
    pub ver_stride: u32,
    pub format: ffi::MppFrameFormat,
    pub pts: i64,
    pub eos: bool,
}

impl Frame {
    /// `mpp_frame_init` and the setters for `info`, then `mpp_frame_set_buffer` (which takes
    /// its own reference on the buffer).
    pub(crate) fn new(
        lib: &Arc<Mpp>,
        info: &FrameInfo,
        buffer: Option<&Buffer>,
    ) -> Result<Frame, MppRet> {
        let mut frame: ffi::MppFrame = std::ptr::null_mut();
        // SAFETY: the out-pointer points at a live local.
        let ret = unsafe { (lib.mpp_frame_init)(&mut frame) };
        if ret != ffi::MPP_OK {
            return Err(ret);
        }
        if frame.is_null() {
            return Err(ffi::MPP_ERR_NULL_PTR);
        }
        let frame = Frame {
            lib: Arc::clone(lib),
            frame,
        };
        // SAFETY: `frame.frame` is live; the setters take plain values, and the buffer (if
        // any) is live for the duration of the call.
        unsafe {
            (lib.mpp_frame_set_width)(frame.frame, info.width);
            (lib.mpp_frame_set_height)(frame.frame, info.height);
            (lib.mpp_frame_set_hor_stride)(frame.frame, info.hor_stride);
            (lib.mpp_frame_set_ver_stride)(frame.frame, info.ver_stride);
            (lib.mpp_frame_set_fmt)(frame.frame, info.format);
            (lib.mpp_frame_set_pts)(frame.frame, info.pts);
            (lib.mpp_frame_set_eos)(frame.frame, u32::from(info.eos));
            if let Some(buffer) = buffer {
                (lib.mpp_frame_set_buffer)(frame.frame, buffer.buffer);
            }
        }
        Ok(frame)
    }

    /// The handle's address, to match `KEY_INPUT_FRAME` on a packet against.
    pub(crate) fn address(&self) -> usize {
        self.frame as usize
    }

    /// Puts `packet` in the frame's meta as `KEY_OUTPUT_PACKET`: MPP encodes this frame into
    /// it (`Mpp::put_frame` copies it into the task).
    pub(crate) fn set_output_packet(&self, packet: &OutputPacket) -> MppRet {
        // SAFETY: live frame; the meta it returns is owned by the frame.
        let meta = unsafe { (self.lib.mpp_frame_get_meta)(self.frame) };
        if meta.is_null() {
            return ffi::MPP_ERR_NULL_PTR;
        }
        // SAFETY: live meta and live packet; the meta stores the pointer only.
        unsafe { (self.lib.mpp_meta_set_packet)(meta, ffi::KEY_OUTPUT_PACKET, packet.packet) }
    }
}

/// A packet camseal makes for MPP to encode into, over a buffer of its own (from a CACHABLE
/// group). Deinit on drop, unless it was handed to MPP with [`OutputPacket::into_mpp`].
pub(crate) struct OutputPacket {
    lib: Arc<Mpp>,
    packet: ffi::MppPacket,
}

// SAFETY: a plain heap object with no thread affinity, used behind `&mut`.
unsafe impl Send for OutputPacket {}

impl OutputPacket {
    /// `mpp_packet_init_with_buffer` (which takes its own reference on `buffer`), then
    /// `mpp_packet_set_length(0)`: MPP appends the stream at the packet's length, which
    /// `mpp_packet_init_with_buffer` sets to the buffer's size.
    pub(crate) fn new(buffer: &Buffer) -> Result<OutputPacket, MppRet> {
        let lib = &buffer.lib;
        let mut packet: ffi::MppPacket = std::ptr::null_mut();
        // SAFETY: the out-pointer points at a live local; the buffer is live.
        let ret = unsafe { (lib.mpp_packet_init_with_buffer)(&mut packet, buffer.buffer) };
        if ret != ffi::MPP_OK {
            return Err(ret);
        }
        if packet.is_null() {
            return Err(ffi::MPP_ERR_NULL_PTR);
        }
        // SAFETY: live packet just made.
        unsafe { (lib.mpp_packet_set_length)(packet, 0) };
        Ok(OutputPacket {
            lib: Arc::clone(lib),
            packet,
        })
    }

    /// Gives the packet to MPP (a put that took its frame): MPP returns it from
    /// `encode_get_packet`, where a [`PacketLease`] takes it over, or frees it with the
    /// context. Returns its address, to recognise it then.
    pub(crate) fn into_mpp(self) -> usize {
        let address = self.packet as usize;
        std::mem::forget(self);
        address
    }
}

impl Drop for OutputPacket {
    fn drop(&mut self) {
        // SAFETY: live packet MPP never took (see `into_mpp`), deinit once; it releases its
        // buffer reference.
        let _ = unsafe { (self.lib.mpp_packet_deinit)(&mut self.packet) };
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        // SAFETY: live frame, not used afterwards; deinit releases its buffer reference.
        let _ = unsafe { (self.lib.mpp_frame_deinit)(&mut self.frame) };
    }
}

/// A buffer group (`MppBufferGroup`).
pub(crate) struct Group {
    lib: Arc<Mpp>,
    group: ffi::MppBufferGroup,
}

// SAFETY: MPP buffer groups are internally locked and have no thread affinity.
unsafe impl Send for Group {}
// SAFETY: as above; shared references only allocate from the group.
unsafe impl Sync for Group {}

impl Group {
    /// `mpp_buffer_group_get_internal(&group, type_)`.
    pub(crate) fn internal(lib: &Arc<Mpp>, type_: ffi::MppBufferType) -> Result<Group, MppRet> {
        let mut group: ffi::MppBufferGroup = std::ptr::null_mut();
        // SAFETY: the out-pointer points at a live local.
        let ret = unsafe { lib.mpp_buffer_group_get_internal(&mut group, type_) };
        if ret != ffi::MPP_OK {
            return Err(ret);
        }
        if group.is_null() {
            return Err(ffi::MPP_ERR_NULL_PTR);
        }
        Ok(Group {
            lib: Arc::clone(lib),
            group,
        })
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: live group; every buffer allocated from it holds an `Arc` of it, so none is
        // left when this runs.
        let _ = unsafe { (self.lib.mpp_buffer_group_put)(self.group) };
    }
}

/// One reference on an `MppBuffer`.
pub(crate) struct Buffer {
    lib: Arc<Mpp>,
    buffer: ffi::MppBuffer,
    size: usize,
    /// Keeps the group of an allocated buffer alive until the buffer is put.
    _group: Option<Arc<Group>>,
}

// SAFETY: MPP buffers are reference-counted under MPP's own lock and have no thread affinity.
unsafe impl Send for Buffer {}

impl Buffer {
    /// `mpp_buffer_import` of a DMA-buf as `MPP_BUFFER_TYPE_EXT_DMA`. MPP neither dups nor
    /// closes the fd, so the caller keeps it open until this buffer (and every frame holding
    /// it) is gone.
    pub(crate) fn import_dmabuf(
        lib: &Arc<Mpp>,
        fd: BorrowedFd<'_>,
        size: usize,
    ) -> Result<Buffer, MppRet> {
        let mut info = ffi::MppBufferInfo {
            type_: ffi::MPP_BUFFER_TYPE_EXT_DMA,
            size,
            fd: fd.as_raw_fd(),
            ..ffi::MppBufferInfo::default()
        };
        let mut buffer: ffi::MppBuffer = std::ptr::null_mut();
        // SAFETY: `info` and `buffer` are live locals; the fd is open for the call.
        let ret = unsafe { lib.mpp_buffer_import(&mut buffer, &mut info) };
        if ret != ffi::MPP_OK {
            return Err(ret);
        }
        if buffer.is_null() {
            return Err(ffi::MPP_ERR_NULL_PTR);
        }
        Ok(Buffer {
            lib: Arc::clone(lib),
            buffer,
            size,
            _group: None,
        })
    }

    /// `mpp_buffer_get(group, &buffer, size)`.
    pub(crate) fn alloc(group: &Arc<Group>, size: usize) -> Result<Buffer, MppRet> {
        let lib = &group.lib;
        let mut buffer: ffi::MppBuffer = std::ptr::null_mut();
        // SAFETY: live group; the out-pointer points at a live local.
        let ret = unsafe { lib.mpp_buffer_get(group.group, &mut buffer, size) };
        if ret != ffi::MPP_OK {
            return Err(ret);
        }
        if buffer.is_null() {
            return Err(ffi::MPP_ERR_NULL_PTR);
        }
        // SAFETY: live buffer.
        let actual = unsafe { lib.mpp_buffer_get_size(buffer) };
        let buffer = Buffer {
            lib: Arc::clone(lib),
            buffer,
            size: actual,
            _group: Some(Arc::clone(group)),
        };
        if actual < size {
            return Err(ffi::MPP_ERR_MALLOC);
        }
        Ok(buffer)
    }

    /// Maps the buffer and runs `fill` on its bytes between `mpp_buffer_sync_begin` and
    /// `mpp_buffer_sync_end`, so the device sees what the CPU wrote.
    pub(crate) fn write_with(&mut self, fill: impl FnOnce(&mut [u8])) -> Result<(), MppRet> {
        // SAFETY: live buffer.
        let ptr = unsafe { self.lib.mpp_buffer_get_ptr(self.buffer) };
        if ptr.is_null() {
            return Err(ffi::MPP_ERR_NULL_PTR);
        }
        // SAFETY: live buffer.
        let ret = unsafe { self.lib.mpp_buffer_sync_begin(self.buffer, false) };
        if ret != ffi::MPP_OK {
            return Err(ret);
        }
        // SAFETY: MPP maps the whole buffer, `size` bytes from `ptr`, for as long as the
        // buffer lives; we hold a reference and `&mut self`, and the buffer is not yet
        // attached to a frame the hardware reads, so nothing else touches the bytes.
        let bytes = unsafe { std::slice::from_raw_parts_mut(ptr.cast::<u8>(), self.size) };
        fill(bytes);
        // SAFETY: live buffer, after the matching begin.
        let ret = unsafe { self.lib.mpp_buffer_sync_end(self.buffer, false) };
        if ret == ffi::MPP_OK { Ok(()) } else { Err(ret) }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: we hold one reference on a live buffer and give it up here.
        let _ = unsafe { self.lib.mpp_buffer_put(self.buffer) };
    }
}

/// An encoded packet from `encode_get_packet`, deinit on drop. Its bytes live in MPP's
/// packet buffer and are read in place.
pub(crate) struct PacketLease {
    ctx: Arc<Context>,
    packet: ffi::MppPacket,
    data: *const u8,
    len: usize,
    /// MPP began a CPU read access on the packet's buffer (sync-mode `Mpp::get_packet`
    /// does, `mpp_buffer_sync_ro_partial_begin`), which a cachable buffer must end.
    cpu_access: bool,
}

// SAFETY: after `encode_get_packet` returns, MPP no longer writes the packet or its bytes (it
// synced the buffer for the CPU before handing it out); the lease only reads them and deinits
// the packet once, in Drop, which MPP allows from any thread.
unsafe impl Send for PacketLease {}
// SAFETY: shared access is read-only (see `Send`).
unsafe impl Sync for PacketLease {}

impl PacketLease {
    fn new(ctx: Arc<Context>, packet: ffi::MppPacket) -> PacketLease {
        let lib = Arc::clone(&ctx.lib);
        // SAFETY: `packet` is a live packet just handed to us.
        let (pos, len) = unsafe {
            (
                (lib.mpp_packet_get_pos)(packet),
                (lib.mpp_packet_get_length)(packet),
            )
        };
        let (data, len) = if pos.is_null() || len == 0 {
            (std::ptr::null(), 0)
        } else {
            (pos.cast_const().cast::<u8>(), len)
        };
        PacketLease {
            ctx,
            packet,
            data,
            len,
            cpu_access: false,
        }
    }

    /// The packet's address, to match it with an [`OutputPacket`] given to MPP.
    pub(crate) fn address(&self) -> usize {
        self.packet as usize
    }

    /// Records that the packet is one of camseal's cachable [`OutputPacket`]s, whose CPU read
    /// access (begun by MPP) is ended with `mpp_buffer_sync_end` before the packet goes.
    pub(crate) fn end_cpu_access_on_drop(&mut self) {
        self.cpu_access = true;
    }

    /// The encoded bytes (empty for an EOS-only packet).
    pub(crate) fn bytes(&self) -> &[u8] {
        if self.data.is_null() {
            return &[];
        }
        // SAFETY: MPP guarantees `length` valid bytes at `pos` while the packet lives, and
        // the packet lives as long as `self` (deinit only in Drop).
        unsafe { std::slice::from_raw_parts(self.data, self.len) }
    }

    /// `mpp_packet_get_eos`.
    pub(crate) fn eos(&self) -> bool {
        // SAFETY: live packet.
        unsafe { (self.ctx.lib.mpp_packet_get_eos)(self.packet) != 0 }
    }

    /// `mpp_packet_get_pts`.
    pub(crate) fn pts(&self) -> i64 {
        // SAFETY: live packet.
        unsafe { (self.ctx.lib.mpp_packet_get_pts)(self.packet) }
    }

    /// `KEY_OUTPUT_INTRA` from the packet's meta, if set.
    pub(crate) fn intra(&self) -> Option<bool> {
        let meta = self.meta()?;
        let mut value = 0;
        // SAFETY: live meta owned by the live packet; the out-pointer points at a local.
        let ret =
            unsafe { (self.ctx.lib.mpp_meta_get_s32)(meta, ffi::KEY_OUTPUT_INTRA, &mut value) };
        (ret == ffi::MPP_OK).then_some(value != 0)
    }

    /// The address of the input frame (`KEY_INPUT_FRAME`) the packet was encoded from.
    pub(crate) fn input_frame(&self) -> Option<usize> {
        let meta = self.meta()?;
        let mut frame: ffi::MppFrame = std::ptr::null_mut();
        // SAFETY: live meta; the out-pointer points at a local. The frame is only compared
        // by address, never dereferenced.
        let ret =
            unsafe { (self.ctx.lib.mpp_meta_get_frame)(meta, ffi::KEY_INPUT_FRAME, &mut frame) };
        (ret == ffi::MPP_OK && !frame.is_null()).then_some(frame as usize)
    }

    fn meta(&self) -> Option<ffi::MppMeta> {
        // SAFETY: live packet.
        let has = unsafe { (self.ctx.lib.mpp_packet_has_meta)(self.packet) };
        if has == 0 {
            return None;
        }
        // SAFETY: live packet.
        let meta = unsafe { (self.ctx.lib.mpp_packet_get_meta)(self.packet) };
        (!meta.is_null()).then_some(meta)
    }
}

impl Drop for PacketLease {
    fn drop(&mut self) {
        if self.cpu_access {
            // SAFETY: live packet; its buffer (if any) lives as long as the packet.
            let buffer = unsafe { (self.ctx.lib.mpp_packet_get_buffer)(self.packet) };
            if !buffer.is_null() {
                // SAFETY: live buffer, after MPP's matching read-only begin. The return code
                // has nowhere to go from Drop.
                let _ = unsafe { self.ctx.lib.mpp_buffer_sync_end(buffer, true) };
            }
        }
        // SAFETY: live packet, deinit exactly once; `ctx` (dropped after this) keeps the
        // context, and so its packet group, alive until now.
        let _ = unsafe { (self.ctx.lib.mpp_packet_deinit)(&mut self.packet) };
    }
}
