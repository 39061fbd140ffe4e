//! Exports for the object APIs: encoder configuration, frames, packets, metadata, buffers
//! and buffer groups.

use std::ffi::{CStr, c_char, c_int, c_void};

use rockchip_mpp_sys as sys;
use sys::{MppBufferInfo, MppMetaKey, MppRet};

use crate::faults::faults;
use crate::state::{
    Buffer, Cfg, Frame, Group, Handle, Kind, Memory, Object, Packet, PacketData, encode, error,
    fd_is_open, fd_size, id_of, known_key, misuse, state,
};

// ---------------------------------------------------------------------------------------------
// Encoder configuration

/// `MPP_RET mpp_enc_cfg_init(MppEncCfg *cfg)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_enc_cfg_init(cfg: *mut Handle) -> MppRet {
    if cfg.is_null() {
        misuse("mpp_enc_cfg_init", format_args!("NULL out-pointer"));
    }
    let handle = state().insert(Object::Cfg(Cfg::default()));
    // SAFETY: checked non-NULL; the caller provides writable storage.
    unsafe { *cfg = handle };
    sys::MPP_OK
}

/// `MPP_RET mpp_enc_cfg_deinit(MppEncCfg cfg)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_enc_cfg_deinit(cfg: Handle) -> MppRet {
    let mut st = state();
    let id = st.id("mpp_enc_cfg_deinit", cfg, Kind::Cfg);
    st.remove(id);
    sys::MPP_OK
}

/// `MPP_RET mpp_enc_cfg_set_s32(MppEncCfg cfg, const char *name, RK_S32 val)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_enc_cfg_set_s32(cfg: Handle, name: *const c_char, val: i32) -> MppRet {
    // SAFETY: forwarded contract (a NUL-terminated key).
    unsafe { cfg_set("mpp_enc_cfg_set_s32", cfg, name, i64::from(val)) }
}

/// `MPP_RET mpp_enc_cfg_set_u32(MppEncCfg cfg, const char *name, RK_U32 val)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_enc_cfg_set_u32(cfg: Handle, name: *const c_char, val: u32) -> MppRet {
    // SAFETY: forwarded contract (a NUL-terminated key).
    unsafe { cfg_set("mpp_enc_cfg_set_u32", cfg, name, i64::from(val)) }
}

/// `MPP_RET mpp_enc_cfg_get_s32(MppEncCfg cfg, const char *name, RK_S32 *val)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_enc_cfg_get_s32(
    cfg: Handle,
    name: *const c_char,
    val: *mut i32,
) -> MppRet {
    const CALL: &str = "mpp_enc_cfg_get_s32";
    if name.is_null() || val.is_null() {
        misuse(CALL, format_args!("NULL name or out-pointer"));
    }
    // SAFETY: non-NULL; MPP's contract is a NUL-terminated key.
    let key = unsafe { CStr::from_ptr(name) }
        .to_string_lossy()
        .into_owned();
    let mut st = state();
    let c = st.cfg(CALL, cfg);
    let Some(known) = known_key(&key) else {
        error(CALL, format_args!("cfg {key} is invalid"));
        return sys::MPP_NOK;
    };
    let v = c.values.get(known).copied().unwrap_or(0);
    // SAFETY: checked non-NULL; the caller provides writable storage.
    unsafe { *val = v as i32 };
    sys::MPP_OK
}

/// Sets one key; an unknown key fails with `MPP_NOK`, as in MPP.
///
/// # Safety
/// `name` must be NULL or a NUL-terminated string.
unsafe fn cfg_set(call: &str, cfg: Handle, name: *const c_char, val: i64) -> MppRet {
    if name.is_null() {
        misuse(call, format_args!("NULL key"));
    }
    // SAFETY: non-NULL and NUL-terminated per the contract.
    let key = unsafe { CStr::from_ptr(name) }
        .to_string_lossy()
        .into_owned();
    let mut st = state();
    let c = st.cfg(call, cfg);
    match known_key(&key) {
        Some(known) => {
            c.values.insert(known, val);
            sys::MPP_OK
        }
        None => {
            error(call, format_args!("cfg {key} is invalid"));
            sys::MPP_NOK
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Frames

/// `MPP_RET mpp_frame_init(MppFrame *frame)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_frame_init(frame: *mut Handle) -> MppRet {
    if frame.is_null() {
        misuse("mpp_frame_init", format_args!("NULL out-pointer"));
    }
    let handle = state().insert(Object::Frame(Frame::default()));
    // SAFETY: checked non-NULL; the caller provides writable storage.
    unsafe { *frame = handle };
    sys::MPP_OK
}

/// `MPP_RET mpp_frame_deinit(MppFrame *frame)`: releases the frame's buffer reference.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_frame_deinit(frame: *mut Handle) -> MppRet {
    const CALL: &str = "mpp_frame_deinit";
    if frame.is_null() {
        misuse(CALL, format_args!("NULL pointer"));
    }
    // SAFETY: checked non-NULL; the caller's storage holds a frame handle.
    let handle = unsafe { *frame };
    let mut st = state();
    let id = st.id(CALL, handle, Kind::Frame);
    if st.frame_holder(id).is_some() {
        crate::state::released_while_held(
            CALL,
            format_args!(
                "frame {handle:p} is still held by the encoder (wait for its packet, or reset)"
            ),
        );
    }
    let f = st.frame_by_id(CALL, id);
    let (buffer, meta) = (f.buffer, f.meta);
    if let Some(b) = buffer {
        st.buffer_unref(CALL, b);
    }
    if let Some(m) = meta {
        st.remove(m);
    }
    st.remove(id);
    // SAFETY: as above.
    unsafe { *frame = std::ptr::null_mut() };
    sys::MPP_OK
}

macro_rules! frame_setter {
    ($name:ident, $ty:ty, |$f:ident, $v:ident| $body:expr) => {
        #[doc = concat!("`void ", stringify!($name), "(MppFrame frame, ...)`.")]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(frame: Handle, $v: $ty) {
            let mut st = state();
            let $f = st.frame(stringify!($name), frame);
            $body;
        }
    };
}

frame_setter!(mpp_frame_set_width, u32, |f, v| f.width = v);
frame_setter!(mpp_frame_set_height, u32, |f, v| f.height = v);
frame_setter!(mpp_frame_set_hor_stride, u32, |f, v| f.hor_stride = v);
frame_setter!(mpp_frame_set_ver_stride, u32, |f, v| f.ver_stride = v);
frame_setter!(mpp_frame_set_fmt, i32, |f, v| f.fmt = v);
frame_setter!(mpp_frame_set_eos, u32, |f, v| f.eos = v != 0);
frame_setter!(mpp_frame_set_pts, i64, |f, v| f.pts = v);

/// `void mpp_frame_set_buffer(MppFrame frame, MppBuffer buffer)`: references the new buffer
/// and releases the old one, as MPP does.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_frame_set_buffer(frame: Handle, buffer: Handle) {
    const CALL: &str = "mpp_frame_set_buffer";
    let mut st = state();
    let frame_id = st.id(CALL, frame, Kind::Frame);
    let new = if buffer.is_null() {
        None
    } else {
        Some(st.id(CALL, buffer, Kind::Buffer))
    };
    let old = st.frame_by_id(CALL, frame_id).buffer;
    if old == new {
        return;
    }
    if let Some(b) = new {
        st.buffer_ref(CALL, b);
    }
    if let Some(b) = old {
        st.buffer_unref(CALL, b);
    }
    st.frame_by_id(CALL, frame_id).buffer = new;
}

/// `MppMeta mpp_frame_get_meta(const MppFrame frame)`: created on first use, owned by the frame.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_frame_get_meta(frame: Handle) -> Handle {
    const CALL: &str = "mpp_frame_get_meta";
    let mut st = state();
    let id = st.id(CALL, frame, Kind::Frame);
    if let Some(m) = st.frame_by_id(CALL, id).meta {
        return encode(Kind::Meta, m);
    }
    let m = st.new_meta();
    st.frame_by_id(CALL, id).meta = Some(m);
    encode(Kind::Meta, m)
}

// ---------------------------------------------------------------------------------------------
// Packets

/// `MPP_RET mpp_packet_init(MppPacket *packet, void *data, size_t size)`: a packet over the
/// caller's memory.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_packet_init(
    packet: *mut Handle,
    data: *mut c_void,
    size: usize,
) -> MppRet {
    const CALL: &str = "mpp_packet_init";
    if packet.is_null() || (data.is_null() && size > 0) {
        misuse(CALL, format_args!("NULL out-pointer or data"));
    }
    let mut st = state();
    let handle = st.insert(Object::Packet(Packet {
        ctx: None,
        data: PacketData::Caller {
            ptr: data as usize,
            size,
        },
        length: size,
        pts: 0,
        eos: false,
        meta: None,
    }));
    // SAFETY: checked non-NULL; the caller provides writable storage.
    unsafe { *packet = handle };
    sys::MPP_OK
}

/// `MPP_RET mpp_packet_init_with_buffer(MppPacket *packet, MppBuffer buffer)`: a packet over
/// the whole buffer, taking a reference; its length starts at the buffer's size, as in
/// `mpp/base/mpp_packet.cpp`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_packet_init_with_buffer(
    packet: *mut Handle,
    buffer: Handle,
) -> MppRet {
    const CALL: &str = "mpp_packet_init_with_buffer";
    if packet.is_null() || buffer.is_null() {
        error(CALL, format_args!("invalid input packet or buffer"));
        return sys::MPP_ERR_NULL_PTR;
    }
    let mut st = state();
    let id = st.id(CALL, buffer, Kind::Buffer);
    let size = st.buffer_by_id(CALL, id).size();
    st.buffer_ref(CALL, id);
    let handle = st.insert(Object::Packet(Packet {
        ctx: None,
        data: PacketData::Buffer(id),
        length: size,
        pts: 0,
        eos: false,
        meta: None,
    }));
    // SAFETY: checked non-NULL; the caller provides writable storage.
    unsafe { *packet = handle };
    sys::MPP_OK
}

/// `MPP_RET mpp_packet_deinit(MppPacket *packet)`: releases the packet and its buffer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_packet_deinit(packet: *mut Handle) -> MppRet {
    const CALL: &str = "mpp_packet_deinit";
    if packet.is_null() {
        misuse(CALL, format_args!("NULL pointer"));
    }
    // SAFETY: checked non-NULL; the caller's storage holds a packet handle.
    let handle = unsafe { *packet };
    let mut st = state();
    let id = st.id(CALL, handle, Kind::Packet);
    if st.packet_holder(id).is_some() {
        crate::state::released_while_held(
            CALL,
            format_args!(
                "packet {handle:p} is the output packet of a frame the encoder still holds"
            ),
        );
    }
    if let Some(Object::Packet(Packet {
        data: PacketData::Buffer(b),
        ..
    })) = st.object_mut(id)
    {
        let b = *b;
        if st.buffer_by_id(CALL, b).syncing {
            // dma-buf's contract (the kernel's dma-buf.rst, DMA_BUF_IOCTL_SYNC): a CPU access
            // begun with SYNC_START ends with SYNC_END. MPP's sync-mode `Mpp::get_packet`
            // began one on this cachable packet buffer.
            misuse(
                CALL,
                format_args!(
                    "packet {handle:p}'s cachable buffer is released inside a CPU access (call mpp_buffer_sync_end after reading it)"
                ),
            );
        }
    }
    let Some(Object::Packet(p)) = st.remove(id) else {
        misuse(CALL, format_args!("internal error: packet vanished"));
    };
    if let PacketData::Buffer(b) = p.data {
        st.buffer_unref(CALL, b);
    }
    if let Some(m) = p.meta {
        st.remove(m);
    }
    if let Some(ctx) = p.ctx
        && let Some(Object::Ctx(c)) = st.object_mut(ctx)
    {
        c.live_packets.remove(&id);
    }
    // SAFETY: as above.
    unsafe { *packet = std::ptr::null_mut() };
    sys::MPP_OK
}

/// The start and size of a packet's memory.
fn packet_memory(call: &str, packet: Handle) -> (*mut c_void, usize) {
    let mut st = state();
    let data = match &st.packet(call, packet).data {
        PacketData::Buffer(b) => Some(*b),
        PacketData::Caller { ptr, size } => return (*ptr as *mut c_void, *size),
    };
    match data {
        Some(b) => match &mut st.buffer_by_id(call, b).memory {
            Memory::Owned(bytes) => (bytes.as_mut_ptr().cast(), bytes.len()),
            Memory::Imported { size, .. } => (std::ptr::null_mut(), *size),
        },
        None => (std::ptr::null_mut(), 0),
    }
}

/// `void *mpp_packet_get_data(const MppPacket packet)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_packet_get_data(packet: Handle) -> *mut c_void {
    packet_memory("mpp_packet_get_data", packet).0
}

/// `void *mpp_packet_get_pos(const MppPacket packet)`: the fake's packets start at their data.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_packet_get_pos(packet: Handle) -> *mut c_void {
    packet_memory("mpp_packet_get_pos", packet).0
}

/// `size_t mpp_packet_get_size(const MppPacket packet)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_packet_get_size(packet: Handle) -> usize {
    packet_memory("mpp_packet_get_size", packet).1
}

/// `size_t mpp_packet_get_length(const MppPacket packet)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_packet_get_length(packet: Handle) -> usize {
    state().packet("mpp_packet_get_length", packet).length
}

/// `void mpp_packet_set_length(MppPacket packet, size_t size)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_packet_set_length(packet: Handle, size: usize) {
    const CALL: &str = "mpp_packet_set_length";
    let (_, capacity) = packet_memory(CALL, packet);
    if size > capacity {
        misuse(
            CALL,
            format_args!("length {size} exceeds the packet's {capacity} bytes"),
        );
    }
    state().packet(CALL, packet).length = size;
}

/// `RK_S64 mpp_packet_get_pts(const MppPacket packet)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_packet_get_pts(packet: Handle) -> i64 {
    state().packet("mpp_packet_get_pts", packet).pts
}

/// `RK_U32 mpp_packet_get_eos(MppPacket packet)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_packet_get_eos(packet: Handle) -> u32 {
    u32::from(state().packet("mpp_packet_get_eos", packet).eos)
}

/// `MppBuffer mpp_packet_get_buffer(const MppPacket packet)`: borrowed, not referenced.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_packet_get_buffer(packet: Handle) -> Handle {
    match state().packet("mpp_packet_get_buffer", packet).data {
        PacketData::Buffer(b) => encode(Kind::Buffer, b),
        PacketData::Caller { .. } => std::ptr::null_mut(),
    }
}

/// `RK_S32 mpp_packet_has_meta(const MppPacket packet)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_packet_has_meta(packet: Handle) -> i32 {
    i32::from(state().packet("mpp_packet_has_meta", packet).meta.is_some())
}

/// `MppMeta mpp_packet_get_meta(const MppPacket packet)`: owned by the packet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_packet_get_meta(packet: Handle) -> Handle {
    const CALL: &str = "mpp_packet_get_meta";
    let mut st = state();
    if let Some(m) = st.packet(CALL, packet).meta {
        return encode(Kind::Meta, m);
    }
    let m = st.new_meta();
    st.packet(CALL, packet).meta = Some(m);
    encode(Kind::Meta, m)
}

// ---------------------------------------------------------------------------------------------
// Metadata

/// `MPP_RET mpp_meta_get_s32(MppMeta meta, MppMetaKey key, RK_S32 *val)`: `MPP_NOK` if unset.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_meta_get_s32(meta: Handle, key: MppMetaKey, val: *mut i32) -> MppRet {
    const CALL: &str = "mpp_meta_get_s32";
    if val.is_null() {
        misuse(CALL, format_args!("NULL out-pointer"));
    }
    match state().meta(CALL, meta).s32.get(&key) {
        Some(v) => {
            // SAFETY: checked non-NULL; the caller provides writable storage.
            unsafe { *val = *v };
            sys::MPP_OK
        }
        None => sys::MPP_NOK,
    }
}

/// `MPP_RET mpp_meta_set_s32(MppMeta meta, MppMetaKey key, RK_S32 val)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_meta_set_s32(meta: Handle, key: MppMetaKey, val: i32) -> MppRet {
    state().meta("mpp_meta_set_s32", meta).s32.insert(key, val);
    sys::MPP_OK
}

/// `MPP_RET mpp_meta_set_packet(MppMeta meta, MppMetaKey key, MppPacket packet)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_meta_set_packet(
    meta: Handle,
    key: MppMetaKey,
    packet: Handle,
) -> MppRet {
    const CALL: &str = "mpp_meta_set_packet";
    let mut st = state();
    let id = st.id(CALL, packet, Kind::Packet);
    st.meta(CALL, meta).packets.insert(key, id);
    sys::MPP_OK
}

/// `MPP_RET mpp_meta_get_frame(MppMeta meta, MppMetaKey key, MppFrame *frame)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_meta_get_frame(
    meta: Handle,
    key: MppMetaKey,
    frame: *mut Handle,
) -> MppRet {
    const CALL: &str = "mpp_meta_get_frame";
    if frame.is_null() {
        misuse(CALL, format_args!("NULL out-pointer"));
    }
    match state().meta(CALL, meta).frames.get(&key) {
        Some(f) => {
            // SAFETY: checked non-NULL; the caller provides writable storage.
            unsafe { *frame = encode(Kind::Frame, *f) };
            sys::MPP_OK
        }
        None => sys::MPP_NOK,
    }
}

// ---------------------------------------------------------------------------------------------
// Buffers and groups

/// `MPP_RET mpp_buffer_group_get(MppBufferGroup *group, MppBufferType type, MppBufferMode mode,
/// const char *tag, const char *caller)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_buffer_group_get(
    group: *mut Handle,
    type_: c_int,
    mode: c_int,
    _tag: *const c_char,
    _caller: *const c_char,
) -> MppRet {
    const CALL: &str = "mpp_buffer_group_get";
    if group.is_null() {
        misuse(CALL, format_args!("NULL out-pointer"));
    }
    let base = type_ & sys::MPP_BUFFER_TYPE_MASK;
    if !(sys::MPP_BUFFER_TYPE_NORMAL..=sys::MPP_BUFFER_TYPE_DMA_HEAP).contains(&base)
        || !(sys::MPP_BUFFER_INTERNAL..=sys::MPP_BUFFER_EXTERNAL).contains(&mode)
    {
        error(
            CALL,
            format_args!("type {type_:#x} / mode {mode} is invalid"),
        );
        return sys::MPP_ERR_VALUE;
    }
    let handle = state().insert(Object::Group(Group {
        type_,
        mode,
        buffers: Default::default(),
        orphan: false,
    }));
    // SAFETY: checked non-NULL; the caller provides writable storage.
    unsafe { *group = handle };
    sys::MPP_OK
}

/// `MPP_RET mpp_buffer_group_put(MppBufferGroup group)`: a group whose buffers are all
/// free goes at once; otherwise it becomes an orphan that goes with its last buffer
/// (`MppBufferService::put_group` in mpp/base/mpp_buffer_impl.cpp, "move the group to
/// list_orphan and wait for buffer release").
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_buffer_group_put(group: Handle) -> MppRet {
    const CALL: &str = "mpp_buffer_group_put";
    let mut st = state();
    let (id, g) = st.group(CALL, group);
    if g.orphan {
        misuse(CALL, format_args!("group {group:p} put twice"));
    }
    if g.buffers.is_empty() {
        st.remove(id);
    } else {
        g.orphan = true;
    }
    sys::MPP_OK
}

/// `MPP_RET mpp_buffer_get_with_tag(MppBufferGroup group, MppBuffer *buffer, size_t size,
/// const char *tag, const char *caller)`: allocates zeroed memory from an internal group.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_buffer_get_with_tag(
    group: Handle,
    buffer: *mut Handle,
    size: usize,
    _tag: *const c_char,
    _caller: *const c_char,
) -> MppRet {
    const CALL: &str = "mpp_buffer_get_with_tag";
    if buffer.is_null() {
        misuse(CALL, format_args!("NULL out-pointer"));
    }
    let mut st = state();
    let (group_id, g) = st.group(CALL, group);
    if g.orphan {
        misuse(CALL, format_args!("group {group:p} was already put"));
    }
    if g.mode != sys::MPP_BUFFER_INTERNAL {
        error(CALL, format_args!("cannot allocate from an external group"));
        return sys::MPP_NOK;
    }
    if size == 0 || size > MAX_BUFFER {
        error(
            CALL,
            format_args!("size {size} is outside 1..={MAX_BUFFER}"),
        );
        return sys::MPP_ERR_VALUE;
    }
    let handle = st.insert(Object::Buffer(Buffer {
        refs: 1,
        memory: Memory::Owned(vec![0u8; size].into_boxed_slice()),
        group: Some(group_id),
        syncing: false,
    }));
    let (_, g) = st.group(CALL, group);
    g.buffers.insert(id_of(handle));
    // SAFETY: checked non-NULL; the caller provides writable storage.
    unsafe { *buffer = handle };
    sys::MPP_OK
}

/// `MPP_RET mpp_buffer_import_with_tag(MppBufferGroup group, MppBufferInfo *info,
/// MppBuffer *buffer, const char *tag, const char *caller)`: wraps a DMA-buf fd, which the
/// caller keeps open (EXT_DMA neither dups nor closes it).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_buffer_import_with_tag(
    group: Handle,
    info: *mut MppBufferInfo,
    buffer: *mut Handle,
    _tag: *const c_char,
    _caller: *const c_char,
) -> MppRet {
    const CALL: &str = "mpp_buffer_import_with_tag";
    if info.is_null() {
        error(CALL, format_args!("info NULL"));
        return sys::MPP_ERR_NULL_PTR;
    }
    // SAFETY: non-NULL; MppBufferInfo is a plain C struct the caller filled in.
    let info = unsafe { *info };
    if faults().import {
        error(
            CALL,
            format_args!("injected failure (FAKE_MPP_FAULT=import)"),
        );
        return sys::MPP_NOK;
    }
    let mut st = state();
    let group_id = if group.is_null() {
        None
    } else {
        let (id, g) = st.group(CALL, group);
        if g.mode != sys::MPP_BUFFER_EXTERNAL || g.type_ & sys::MPP_BUFFER_TYPE_MASK != info.type_ {
            error(
                CALL,
                format_args!("group type/mode does not match the import"),
            );
            return sys::MPP_ERR_UNKNOW;
        }
        Some(id)
    };
    if info.type_ != sys::MPP_BUFFER_TYPE_EXT_DMA && info.type_ != sys::MPP_BUFFER_TYPE_DRM {
        error(
            CALL,
            format_args!(
                "the fake imports EXT_DMA or DRM fds, not type {}",
                info.type_
            ),
        );
        return sys::MPP_ERR_VALUE;
    }
    if !info.ptr.is_null() {
        error(
            CALL,
            format_args!("EXT_DMA is not used for userptr (info.ptr is set)"),
        );
        return sys::MPP_ERR_VALUE;
    }
    if info.size == 0 || info.fd < 0 || !fd_is_open(info.fd) {
        error(
            CALL,
            format_args!("fd {} / size {} is not an open DMA-buf", info.fd, info.size),
        );
        return sys::MPP_ERR_VALUE;
    }
    if let Some(real) = fd_size(info.fd)
        && real < info.size
    {
        error(
            CALL,
            format_args!(
                "info.size {} exceeds the {real}-byte buffer behind fd {}",
                info.size, info.fd
            ),
        );
        return sys::MPP_ERR_VALUE;
    }
    if buffer.is_null() {
        error(
            CALL,
            format_args!("committing to a group without a buffer is not implemented"),
        );
        return sys::MPP_NOK;
    }
    let handle = st.insert(Object::Buffer(Buffer {
        refs: 1,
        memory: Memory::Imported {
            fd: info.fd,
            size: info.size,
        },
        group: group_id,
        syncing: false,
    }));
    if let Some(gid) = group_id
        && let Some(Object::Group(g)) = st.object_mut(gid)
    {
        g.buffers.insert(id_of(handle));
    }
    // SAFETY: checked non-NULL; the caller provides writable storage.
    unsafe { *buffer = handle };
    sys::MPP_OK
}

/// `MPP_RET mpp_buffer_put_with_caller(MppBuffer buffer, const char *caller)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_buffer_put_with_caller(
    buffer: Handle,
    _caller: *const c_char,
) -> MppRet {
    const CALL: &str = "mpp_buffer_put";
    let mut st = state();
    let id = st.id(CALL, buffer, Kind::Buffer);
    if st.buffer_by_id(CALL, id).syncing {
        misuse(
            CALL,
            format_args!("buffer put between sync_begin and sync_end"),
        );
    }
    st.buffer_unref(CALL, id);
    sys::MPP_OK
}

/// `MPP_RET mpp_buffer_inc_ref_with_caller(MppBuffer buffer, const char *caller)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_buffer_inc_ref_with_caller(
    buffer: Handle,
    _caller: *const c_char,
) -> MppRet {
    let mut st = state();
    let id = st.id("mpp_buffer_inc_ref", buffer, Kind::Buffer);
    st.buffer_ref("mpp_buffer_inc_ref", id);
    sys::MPP_OK
}

/// `void *mpp_buffer_get_ptr_with_caller(MppBuffer buffer, const char *caller)`: internal
/// buffers only (the fake does not map imported DMA-bufs).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_buffer_get_ptr_with_caller(
    buffer: Handle,
    _caller: *const c_char,
) -> *mut c_void {
    const CALL: &str = "mpp_buffer_get_ptr";
    match &mut state().buffer(CALL, buffer).memory {
        Memory::Owned(bytes) => bytes.as_mut_ptr().cast(),
        Memory::Imported { .. } => {
            error(
                CALL,
                format_args!("the fake does not map imported DMA-bufs"),
            );
            std::ptr::null_mut()
        }
    }
}

/// `int mpp_buffer_get_fd_with_caller(MppBuffer buffer, const char *caller)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_buffer_get_fd_with_caller(
    buffer: Handle,
    _caller: *const c_char,
) -> c_int {
    match state().buffer("mpp_buffer_get_fd", buffer).memory {
        Memory::Imported { fd, .. } => fd,
        Memory::Owned(_) => -1,
    }
}

/// `size_t mpp_buffer_get_size_with_caller(MppBuffer buffer, const char *caller)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_buffer_get_size_with_caller(
    buffer: Handle,
    _caller: *const c_char,
) -> usize {
    state().buffer("mpp_buffer_get_size", buffer).size()
}

/// `MPP_RET mpp_buffer_sync_begin_f(MppBuffer buffer, RK_S32 ro, const char *caller)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_buffer_sync_begin_f(
    buffer: Handle,
    _ro: i32,
    _caller: *const c_char,
) -> MppRet {
    const CALL: &str = "mpp_buffer_sync_begin";
    let mut st = state();
    let b = st.buffer(CALL, buffer);
    if b.syncing {
        misuse(CALL, format_args!("sync_begin twice without sync_end"));
    }
    b.syncing = true;
    sys::MPP_OK
}

/// `MPP_RET mpp_buffer_sync_end_f(MppBuffer buffer, RK_S32 ro, const char *caller)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_buffer_sync_end_f(
    buffer: Handle,
    _ro: i32,
    _caller: *const c_char,
) -> MppRet {
    const CALL: &str = "mpp_buffer_sync_end";
    let mut st = state();
    let b = st.buffer(CALL, buffer);
    if !b.syncing {
        misuse(CALL, format_args!("sync_end without sync_begin"));
    }
    b.syncing = false;
    sys::MPP_OK
}

/// Largest buffer the fake allocates: an 8K NV12 frame with room to spare.
const MAX_BUFFER: usize = 256 << 20;
