//! Hand-written FFI for the subset of Rockchip MPP (Media Process Platform) that camseal uses
//! to drive the RK35xx hardware video encoders.
//!
//! What this crate does **not** do: it does not link against `librockchip_mpp` (the library
//! is opened at run time with [`Mpp::load`], so one binary runs on boards with and without
//! it), it offers no safe API (see `camseal-hal`'s `mpp` module for that), and it covers only
//! the encoder side: no decoder, ISP or task-queue types beyond what the [`MppApi`] vtable
//! layout needs.
//!
//! Layers:
//! - Plain types and constants transcribed from MPP's public headers (`rk_type.h`,
//!   `rk_mpi.h`, `rk_mpi_cmd.h`, `mpp_buffer.h`, `mpp_frame.h`, `mpp_meta.h`, `mpp_err.h`),
//!   with compile-time layout assertions for the two structs that cross the boundary by
//!   value or by pointer: [`MppApi`] and [`MppBufferInfo`].
//! - [`Mpp`]: the function table, filled by a single `dlopen` and owning the library handle.
//! - Shims on [`Mpp`] for the header *macros* (`mpp_buffer_get_ptr`, `mpp_buffer_import`, ...)
//!   that are not exported symbols: they call the `*_with_caller` / `*_with_tag` functions
//!   the macros expand to.
//!
//! Facts worth knowing before calling anything here:
//! - `MPP_SET_INPUT_TIMEOUT` / `MPP_SET_OUTPUT_TIMEOUT` are documented as taking an `RK_S64`,
//!   but MPP reads the parameter as an `MppPollType`, a C `int`: pass a pointer to an `i32`
//!   ([`MppPollType`]).
//! - Every handle type is `void *` in C.
//! - `mpp_buffer_sync_begin_f` / `mpp_buffer_sync_end_f` are missing from older MPP releases,
//!   so they are optional in the table.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::fmt;
use std::path::{Path, PathBuf};

use libloading::Library;

/// An MPP context (`MppCtx`).
pub type MppCtx = *mut c_void;
/// A parameter of [`MppApi::control`] (`MppParam`); its type depends on the command.
pub type MppParam = *mut c_void;
/// A raw picture (`MppFrame`).
pub type MppFrame = *mut c_void;
/// An encoded bitstream packet (`MppPacket`).
pub type MppPacket = *mut c_void;
/// A reference-counted buffer (`MppBuffer`).
pub type MppBuffer = *mut c_void;
/// A group of buffers of one type (`MppBufferGroup`).
pub type MppBufferGroup = *mut c_void;
/// A task of the advanced (task-queue) interface (`MppTask`).
pub type MppTask = *mut c_void;
/// Key/value metadata attached to a frame or packet (`MppMeta`).
pub type MppMeta = *mut c_void;
/// An encoder configuration object (`MppEncCfg`).
pub type MppEncCfg = *mut c_void;

/// Return code of most MPP calls (`MPP_RET`): 0 is success, negative values are errors.
pub type MppRet = c_int;
/// Context kind passed to `mpp_init` (`MppCtxType`).
pub type MppCtxType = c_int;
/// Codec passed to `mpp_init` and the `codec:type` key (`MppCodingType`).
pub type MppCodingType = c_int;
/// A command of [`MppApi::control`] (`MpiCmd`).
pub type MpiCmd = c_int;
/// Port of the task interface (`MppPortType`).
pub type MppPortType = c_int;
/// Timeout in milliseconds, or [`MPP_POLL_BLOCK`] / [`MPP_POLL_NON_BLOCK`] (`MppPollType`).
pub type MppPollType = c_int;
/// Raw pixel layout of a frame (`MppFrameFormat`).
pub type MppFrameFormat = c_int;
/// Memory kind of a buffer or group, possibly OR'd with `MPP_BUFFER_FLAGS_*` (`MppBufferType`).
pub type MppBufferType = c_int;
/// Whether a buffer group allocates its buffers or only holds imported ones (`MppBufferMode`).
pub type MppBufferMode = c_int;
/// A metadata key, four ASCII characters packed big-endian (`MppMetaKey`).
pub type MppMetaKey = u32;
/// Header placement mode set with [`MPP_ENC_SET_HEADER_MODE`] (`MppEncHeaderMode`).
pub type MppEncHeaderMode = c_int;

/// The vtable `mpp_create` hands back (`struct MppApi_t` in `rk_mpi.h`).
///
/// Function pointers are `Option`s so that a library that leaves one NULL cannot make a call
/// through it undefined behaviour: callers check for `None` first.
#[repr(C)]
#[derive(Debug)]
pub struct MppApi {
    /// `sizeof(MppApi)` as the library was compiled.
    pub size: u32,
    /// Library version, generated from git.
    pub version: u32,
    /// Decode one packet into a frame (decoder only).
    pub decode: Option<unsafe extern "C" fn(MppCtx, MppPacket, *mut MppFrame) -> MppRet>,
    /// Queue one packet for decoding.
    pub decode_put_packet: Option<unsafe extern "C" fn(MppCtx, MppPacket) -> MppRet>,
    /// Take one decoded frame.
    pub decode_get_frame: Option<unsafe extern "C" fn(MppCtx, *mut MppFrame) -> MppRet>,
    /// Encode one frame into a packet, synchronously.
    pub encode: Option<unsafe extern "C" fn(MppCtx, MppFrame, *mut MppPacket) -> MppRet>,
    /// Queue one frame for encoding.
    pub encode_put_frame: Option<unsafe extern "C" fn(MppCtx, MppFrame) -> MppRet>,
    /// Take one encoded packet.
    pub encode_get_packet: Option<unsafe extern "C" fn(MppCtx, *mut MppPacket) -> MppRet>,
    /// ISP (not implemented by MPP).
    pub isp: Option<unsafe extern "C" fn(MppCtx, MppFrame, MppFrame) -> MppRet>,
    /// ISP (not implemented by MPP).
    pub isp_put_frame: Option<unsafe extern "C" fn(MppCtx, MppFrame) -> MppRet>,
    /// ISP (not implemented by MPP).
    pub isp_get_frame: Option<unsafe extern "C" fn(MppCtx, *mut MppFrame) -> MppRet>,
    /// Wait for a port of the task interface.
    pub poll: Option<unsafe extern "C" fn(MppCtx, MppPortType, MppPollType) -> MppRet>,
    /// Take a task from a port.
    pub dequeue: Option<unsafe extern "C" fn(MppCtx, MppPortType, *mut MppTask) -> MppRet>,
    /// Give a task to a port.
    pub enqueue: Option<unsafe extern "C" fn(MppCtx, MppPortType, MppTask) -> MppRet>,
    /// Discard all queued frames and packets.
    pub reset: Option<unsafe extern "C" fn(MppCtx) -> MppRet>,
    /// Get or set a property; the parameter's type depends on the command.
    pub control: Option<unsafe extern "C" fn(MppCtx, MpiCmd, MppParam) -> MppRet>,
    /// Reserved.
    pub reserv: [u32; 16],
}

/// Describes memory to import as an `MppBuffer` (`MppBufferInfo` in `mpp_buffer.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MppBufferInfo {
    /// Memory kind, e.g. [`MPP_BUFFER_TYPE_EXT_DMA`] for a DMA-buf fd.
    pub type_: MppBufferType,
    /// Size of the buffer in bytes.
    pub size: usize,
    /// CPU address, for memory that is already mapped (NULL for a DMA-buf import).
    pub ptr: *mut c_void,
    /// Allocator handle (unused for imports).
    pub hnd: *mut c_void,
    /// The DMA-buf file descriptor.
    pub fd: c_int,
    /// Caller-chosen index, echoed back by `mpp_buffer_get_index`.
    pub index: c_int,
}

impl Default for MppBufferInfo {
    fn default() -> MppBufferInfo {
        MppBufferInfo {
            type_: MPP_BUFFER_TYPE_NORMAL,
            size: 0,
            ptr: std::ptr::null_mut(),
            hnd: std::ptr::null_mut(),
            fd: -1,
            index: 0,
        }
    }
}

/// Packs four ASCII characters into a metadata key, as `FOURCC_META` does.
pub const fn fourcc(tag: &[u8; 4]) -> MppMetaKey {
    (tag[0] as u32) << 24 | (tag[1] as u32) << 16 | (tag[2] as u32) << 8 | tag[3] as u32
}

macro_rules! mpp_table {
    (
        required {
            $( $(#[$rdoc:meta])* fn $rname:ident($($rty:ty),* $(,)?) $(-> $rret:ty)?; )*
        }
        optional {
            $( $(#[$odoc:meta])* fn $oname:ident($($oty:ty),* $(,)?) $(-> $oret:ty)?; )*
        }
    ) => {
        /// The MPP functions camseal calls, resolved by one `dlopen` of the library.
        ///
        /// The table owns the library handle, so the pointers stay valid as long as the table
        /// lives; a pointer copied out of it must not be called after the table is dropped.
        /// Calling any of them is `unsafe`: the caller upholds MPP's contracts (live handles,
        /// valid pointers, no use after `*_deinit` / `*_put`).
        pub struct Mpp {
            $( $(#[$rdoc])* pub $rname: unsafe extern "C" fn($($rty),*) $(-> $rret)?, )*
            $( $(#[$odoc])* pub $oname: Option<unsafe extern "C" fn($($oty),*) $(-> $oret)?>, )*
            path: PathBuf,
            _library: Library,
        }

        impl Mpp {
            fn from_library(library: Library, path: PathBuf) -> Result<Mpp, LoadError> {
                $(
                    // SAFETY: the symbol is declared with the signature of MPP's public header
                    // (transcribed above), and the copied pointer is stored next to the
                    // `Library` that keeps it mapped.
                    let $rname = unsafe {
                        *library
                            .get::<unsafe extern "C" fn($($rty),*) $(-> $rret)?>(
                                concat!(stringify!($rname), "\0").as_bytes(),
                            )
                            .map_err(|_| LoadError::MissingSymbol {
                                symbol: stringify!($rname),
                                library: path.clone(),
                            })?
                    };
                )*
                $(
                    // SAFETY: as above; a missing optional symbol is simply `None`.
                    let $oname = unsafe {
                        library
                            .get::<unsafe extern "C" fn($($oty),*) $(-> $oret)?>(
                                concat!(stringify!($oname), "\0").as_bytes(),
                            )
                            .ok()
                            .map(|symbol| *symbol)
                    };
                )*
                Ok(Mpp { $($rname,)* $($oname,)* path, _library: library })
            }
        }
    };
}

mpp_table! {
    required {
        /// `MPP_RET mpp_create(MppCtx *ctx, MppApi **mpi)`.
        fn mpp_create(*mut MppCtx, *mut *mut MppApi) -> MppRet;
        /// `MPP_RET mpp_init(MppCtx ctx, MppCtxType type, MppCodingType coding)`.
        fn mpp_init(MppCtx, MppCtxType, MppCodingType) -> MppRet;
        /// `MPP_RET mpp_destroy(MppCtx ctx)`.
        fn mpp_destroy(MppCtx) -> MppRet;

        /// `MPP_RET mpp_enc_cfg_init(MppEncCfg *cfg)`.
        fn mpp_enc_cfg_init(*mut MppEncCfg) -> MppRet;
        /// `MPP_RET mpp_enc_cfg_deinit(MppEncCfg cfg)`.
        fn mpp_enc_cfg_deinit(MppEncCfg) -> MppRet;
        /// `MPP_RET mpp_enc_cfg_set_s32(MppEncCfg cfg, const char *name, RK_S32 val)`.
        fn mpp_enc_cfg_set_s32(MppEncCfg, *const c_char, i32) -> MppRet;
        /// `MPP_RET mpp_enc_cfg_set_u32(MppEncCfg cfg, const char *name, RK_U32 val)`.
        fn mpp_enc_cfg_set_u32(MppEncCfg, *const c_char, u32) -> MppRet;
        /// `MPP_RET mpp_enc_cfg_get_s32(MppEncCfg cfg, const char *name, RK_S32 *val)`.
        fn mpp_enc_cfg_get_s32(MppEncCfg, *const c_char, *mut i32) -> MppRet;

        /// `MPP_RET mpp_frame_init(MppFrame *frame)`.
        fn mpp_frame_init(*mut MppFrame) -> MppRet;
        /// `MPP_RET mpp_frame_deinit(MppFrame *frame)`.
        fn mpp_frame_deinit(*mut MppFrame) -> MppRet;
        /// `void mpp_frame_set_width(MppFrame frame, RK_U32 width)`.
        fn mpp_frame_set_width(MppFrame, u32);
        /// `void mpp_frame_set_height(MppFrame frame, RK_U32 height)`.
        fn mpp_frame_set_height(MppFrame, u32);
        /// `void mpp_frame_set_hor_stride(MppFrame frame, RK_U32 hor_stride)` (bytes).
        fn mpp_frame_set_hor_stride(MppFrame, u32);
        /// `void mpp_frame_set_ver_stride(MppFrame frame, RK_U32 ver_stride)` (rows).
        fn mpp_frame_set_ver_stride(MppFrame, u32);
        /// `void mpp_frame_set_fmt(MppFrame frame, MppFrameFormat fmt)`.
        fn mpp_frame_set_fmt(MppFrame, MppFrameFormat);
        /// `void mpp_frame_set_buffer(MppFrame frame, MppBuffer buffer)`; takes a reference.
        fn mpp_frame_set_buffer(MppFrame, MppBuffer);
        /// `void mpp_frame_set_eos(MppFrame frame, RK_U32 eos)`.
        fn mpp_frame_set_eos(MppFrame, u32);
        /// `void mpp_frame_set_pts(MppFrame frame, RK_S64 pts)`.
        fn mpp_frame_set_pts(MppFrame, i64);
        /// `MppMeta mpp_frame_get_meta(const MppFrame frame)`; owned by the frame.
        fn mpp_frame_get_meta(MppFrame) -> MppMeta;

        /// `MPP_RET mpp_packet_init(MppPacket *packet, void *data, size_t size)`.
        fn mpp_packet_init(*mut MppPacket, *mut c_void, usize) -> MppRet;
        /// `MPP_RET mpp_packet_deinit(MppPacket *packet)`.
        fn mpp_packet_deinit(*mut MppPacket) -> MppRet;
        /// `void *mpp_packet_get_data(const MppPacket packet)`: start of the buffer.
        fn mpp_packet_get_data(MppPacket) -> *mut c_void;
        /// `size_t mpp_packet_get_size(const MppPacket packet)`: size of the buffer.
        fn mpp_packet_get_size(MppPacket) -> usize;
        /// `void *mpp_packet_get_pos(const MppPacket packet)`: start of the valid bytes.
        fn mpp_packet_get_pos(MppPacket) -> *mut c_void;
        /// `size_t mpp_packet_get_length(const MppPacket packet)`: number of valid bytes.
        fn mpp_packet_get_length(MppPacket) -> usize;
        /// `void mpp_packet_set_length(MppPacket packet, size_t size)`.
        fn mpp_packet_set_length(MppPacket, usize);
        /// `RK_S64 mpp_packet_get_pts(const MppPacket packet)`.
        fn mpp_packet_get_pts(MppPacket) -> i64;
        /// `RK_U32 mpp_packet_get_eos(MppPacket packet)`.
        fn mpp_packet_get_eos(MppPacket) -> u32;
        /// `MppBuffer mpp_packet_get_buffer(const MppPacket packet)`; may be NULL.
        fn mpp_packet_get_buffer(MppPacket) -> MppBuffer;
        /// `RK_S32 mpp_packet_has_meta(const MppPacket packet)`.
        fn mpp_packet_has_meta(MppPacket) -> i32;
        /// `MppMeta mpp_packet_get_meta(const MppPacket packet)`; owned by the packet.
        fn mpp_packet_get_meta(MppPacket) -> MppMeta;

        /// `MPP_RET mpp_meta_get_s32(MppMeta meta, MppMetaKey key, RK_S32 *val)`.
        fn mpp_meta_get_s32(MppMeta, MppMetaKey, *mut i32) -> MppRet;
        /// `MPP_RET mpp_meta_set_s32(MppMeta meta, MppMetaKey key, RK_S32 val)`.
        fn mpp_meta_set_s32(MppMeta, MppMetaKey, i32) -> MppRet;
        /// `MPP_RET mpp_meta_get_frame(MppMeta meta, MppMetaKey key, MppFrame *frame)`.
        fn mpp_meta_get_frame(MppMeta, MppMetaKey, *mut MppFrame) -> MppRet;

        /// `MPP_RET mpp_buffer_import_with_tag(MppBufferGroup group, MppBufferInfo *info,
        /// MppBuffer *buffer, const char *tag, const char *caller)`.
        fn mpp_buffer_import_with_tag(
            MppBufferGroup,
            *mut MppBufferInfo,
            *mut MppBuffer,
            *const c_char,
            *const c_char,
        ) -> MppRet;
        /// `MPP_RET mpp_buffer_get_with_tag(MppBufferGroup group, MppBuffer *buffer,
        /// size_t size, const char *tag, const char *caller)`.
        fn mpp_buffer_get_with_tag(
            MppBufferGroup,
            *mut MppBuffer,
            usize,
            *const c_char,
            *const c_char,
        ) -> MppRet;
        /// `MPP_RET mpp_buffer_put_with_caller(MppBuffer buffer, const char *caller)`.
        fn mpp_buffer_put_with_caller(MppBuffer, *const c_char) -> MppRet;
        /// `void *mpp_buffer_get_ptr_with_caller(MppBuffer buffer, const char *caller)`.
        fn mpp_buffer_get_ptr_with_caller(MppBuffer, *const c_char) -> *mut c_void;
        /// `int mpp_buffer_get_fd_with_caller(MppBuffer buffer, const char *caller)`.
        fn mpp_buffer_get_fd_with_caller(MppBuffer, *const c_char) -> c_int;
        /// `size_t mpp_buffer_get_size_with_caller(MppBuffer buffer, const char *caller)`.
        fn mpp_buffer_get_size_with_caller(MppBuffer, *const c_char) -> usize;
        /// `MPP_RET mpp_buffer_group_get(MppBufferGroup *group, MppBufferType type,
        /// MppBufferMode mode, const char *tag, const char *caller)`.
        fn mpp_buffer_group_get(
            *mut MppBufferGroup,
            MppBufferType,
            MppBufferMode,
            *const c_char,
            *const c_char,
        ) -> MppRet;
        /// `MPP_RET mpp_buffer_group_put(MppBufferGroup group)`.
        fn mpp_buffer_group_put(MppBufferGroup) -> MppRet;
    }
    optional {
        /// `MPP_RET mpp_buffer_sync_begin_f(MppBuffer buffer, RK_S32 ro, const char *caller)`
        /// (absent from older MPP releases).
        fn mpp_buffer_sync_begin_f(MppBuffer, i32, *const c_char) -> MppRet;
        /// `MPP_RET mpp_buffer_sync_end_f(MppBuffer buffer, RK_S32 ro, const char *caller)`
        /// (absent from older MPP releases).
        fn mpp_buffer_sync_end_f(MppBuffer, i32, *const c_char) -> MppRet;
    }
}

impl Mpp {
    /// Opens MPP: the file named by `CAMSEAL_MPP_LIB` if that is set (and nothing else), else
    /// the first of [`LIBRARY_NAMES`] the dynamic loader finds.
    pub fn load() -> Result<Mpp, LoadError> {
        match std::env::var_os(LIBRARY_ENV) {
            Some(path) if !path.is_empty() => Mpp::load_from(Path::new(&path)),
            _ => Mpp::load_first(LIBRARY_NAMES.iter().map(Path::new)),
        }
    }

    /// Opens the library at `path` (a file path, or a bare name the loader searches for).
    pub fn load_from(path: &Path) -> Result<Mpp, LoadError> {
        Mpp::load_first(std::iter::once(path))
    }

    /// The file or name the table was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `mpp_buffer_import(buffer, info)`: imports `info` into the default group of its type.
    ///
    /// # Safety
    /// `info` and `buffer` must be valid for reads and writes; for a DMA-buf import the fd in
    /// `info` must stay open until the buffer is put.
    pub unsafe fn mpp_buffer_import(
        &self,
        buffer: *mut MppBuffer,
        info: *mut MppBufferInfo,
    ) -> MppRet {
        // SAFETY: forwarded contract; the tag and caller strings are 'static C strings.
        unsafe {
            (self.mpp_buffer_import_with_tag)(
                std::ptr::null_mut(),
                info,
                buffer,
                MODULE_TAG.as_ptr(),
                CALLER.as_ptr(),
            )
        }
    }

    /// `mpp_buffer_get(group, buffer, size)`: allocates a buffer from `group`.
    ///
    /// # Safety
    /// `group` must be a live group and `buffer` valid for writes.
    pub unsafe fn mpp_buffer_get(
        &self,
        group: MppBufferGroup,
        buffer: *mut MppBuffer,
        size: usize,
    ) -> MppRet {
        // SAFETY: forwarded contract; the tag and caller strings are 'static C strings.
        unsafe {
            (self.mpp_buffer_get_with_tag)(
                group,
                buffer,
                size,
                MODULE_TAG.as_ptr(),
                CALLER.as_ptr(),
            )
        }
    }

    /// `mpp_buffer_put(buffer)`: drops one reference.
    ///
    /// # Safety
    /// `buffer` must be a live buffer this caller holds a reference to; it must not be used
    /// through that reference afterwards.
    pub unsafe fn mpp_buffer_put(&self, buffer: MppBuffer) -> MppRet {
        // SAFETY: forwarded contract; the caller string is a 'static C string.
        unsafe { (self.mpp_buffer_put_with_caller)(buffer, CALLER.as_ptr()) }
    }

    /// `mpp_buffer_get_ptr(buffer)`: the buffer's CPU address (mapping it if needed).
    ///
    /// # Safety
    /// `buffer` must be a live buffer.
    pub unsafe fn mpp_buffer_get_ptr(&self, buffer: MppBuffer) -> *mut c_void {
        // SAFETY: forwarded contract; the caller string is a 'static C string.
        unsafe { (self.mpp_buffer_get_ptr_with_caller)(buffer, CALLER.as_ptr()) }
    }

    /// `mpp_buffer_get_fd(buffer)`: the buffer's DMA-buf fd, owned by MPP.
    ///
    /// # Safety
    /// `buffer` must be a live buffer.
    pub unsafe fn mpp_buffer_get_fd(&self, buffer: MppBuffer) -> c_int {
        // SAFETY: forwarded contract; the caller string is a 'static C string.
        unsafe { (self.mpp_buffer_get_fd_with_caller)(buffer, CALLER.as_ptr()) }
    }

    /// `mpp_buffer_get_size(buffer)`: the buffer's size in bytes.
    ///
    /// # Safety
    /// `buffer` must be a live buffer.
    pub unsafe fn mpp_buffer_get_size(&self, buffer: MppBuffer) -> usize {
        // SAFETY: forwarded contract; the caller string is a 'static C string.
        unsafe { (self.mpp_buffer_get_size_with_caller)(buffer, CALLER.as_ptr()) }
    }

    /// `mpp_buffer_group_get_internal(group, type)`: a group that allocates its buffers.
    ///
    /// # Safety
    /// `group` must be valid for writes.
    pub unsafe fn mpp_buffer_group_get_internal(
        &self,
        group: *mut MppBufferGroup,
        type_: MppBufferType,
    ) -> MppRet {
        // SAFETY: forwarded contract; the tag and caller strings are 'static C strings.
        unsafe {
            (self.mpp_buffer_group_get)(
                group,
                type_,
                MPP_BUFFER_INTERNAL,
                MODULE_TAG.as_ptr(),
                CALLER.as_ptr(),
            )
        }
    }

    /// `mpp_buffer_group_get_external(group, type)`: a group of imported buffers.
    ///
    /// # Safety
    /// `group` must be valid for writes.
    pub unsafe fn mpp_buffer_group_get_external(
        &self,
        group: *mut MppBufferGroup,
        type_: MppBufferType,
    ) -> MppRet {
        // SAFETY: forwarded contract; the tag and caller strings are 'static C strings.
        unsafe {
            (self.mpp_buffer_group_get)(
                group,
                type_,
                MPP_BUFFER_EXTERNAL,
                MODULE_TAG.as_ptr(),
                CALLER.as_ptr(),
            )
        }
    }

    /// `mpp_buffer_sync_ro_begin(buffer)` / `mpp_buffer_sync_begin(buffer)`: makes the CPU's
    /// view of the buffer coherent before reading (`read_only`) or writing it. Returns
    /// `MPP_OK` without doing anything when the library lacks the call.
    ///
    /// # Safety
    /// `buffer` must be a live buffer.
    pub unsafe fn mpp_buffer_sync_begin(&self, buffer: MppBuffer, read_only: bool) -> MppRet {
        match self.mpp_buffer_sync_begin_f {
            // SAFETY: forwarded contract; the caller string is a 'static C string.
            Some(f) => unsafe { f(buffer, i32::from(read_only), CALLER.as_ptr()) },
            None => MPP_OK,
        }
    }

    /// `mpp_buffer_sync_ro_end(buffer)` / `mpp_buffer_sync_end(buffer)`: ends a CPU access
    /// started with [`Mpp::mpp_buffer_sync_begin`].
    ///
    /// # Safety
    /// `buffer` must be a live buffer.
    pub unsafe fn mpp_buffer_sync_end(&self, buffer: MppBuffer, read_only: bool) -> MppRet {
        match self.mpp_buffer_sync_end_f {
            // SAFETY: forwarded contract; the caller string is a 'static C string.
            Some(f) => unsafe { f(buffer, i32::from(read_only), CALLER.as_ptr()) },
            None => MPP_OK,
        }
    }

    fn load_first<'a>(candidates: impl Iterator<Item = &'a Path>) -> Result<Mpp, LoadError> {
        let mut tried = Vec::new();
        for candidate in candidates {
            // SAFETY: opening a shared library runs its initialisers. MPP's are plain C++
            // static constructors with no preconditions on the caller; this is the one way
            // to use the library at all without linking to it.
            match unsafe { Library::new(candidate) } {
                Ok(library) => return Mpp::from_library(library, candidate.to_path_buf()),
                Err(error) => tried.push(Attempt {
                    name: candidate.to_path_buf(),
                    error: innermost_message(&error),
                }),
            }
        }
        Err(LoadError::NotFound { tried })
    }
}

impl fmt::Debug for Mpp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mpp").field("path", &self.path).finish()
    }
}

/// Why [`Mpp::load`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The library exports no symbol of this name (too old, or not MPP at all).
    #[error("{} is not a usable Rockchip MPP library: it lacks the symbol {symbol}", library.display())]
    MissingSymbol {
        /// The missing symbol.
        symbol: &'static str,
        /// The library that was opened.
        library: PathBuf,
    },
    /// No candidate could be opened.
    #[error(
        "Rockchip MPP library not found (tried {}); install MPP or set {LIBRARY_ENV}",
        Attempt::list(tried)
    )]
    NotFound {
        /// Every name or path tried, in order, with the loader's reason.
        tried: Vec<Attempt>,
    },
}

/// One library name or path [`Mpp::load`] tried, and why it could not be opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The name or path passed to the dynamic loader.
    pub name: PathBuf,
    /// The loader's message (`dlerror`).
    pub error: String,
}

impl Attempt {
    /// `a, b, c: reason`: the loader's reason is only worth showing when the file exists but
    /// could not be loaded (wrong architecture, missing dependency).
    fn list(tried: &[Attempt]) -> String {
        let mut out = String::new();
        for (i, attempt) in tried.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&attempt.name.display().to_string());
            if !attempt.error.contains("No such file") {
                out.push_str(": ");
                // dlerror text is one line, but keep the whole message on one line regardless.
                out.push_str(&attempt.error.replace('\n', " "));
            }
        }
        out
    }
}

/// The message of the last error in `error`'s source chain: libloading wraps `dlerror`'s text
/// ("cannot open shared object file: ...") in a generic "dlopen failed".
fn innermost_message(error: &(dyn std::error::Error + 'static)) -> String {
    let mut innermost = error;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    innermost.to_string()
}

/// Environment variable naming the MPP library to load instead of searching for it.
pub const LIBRARY_ENV: &str = "CAMSEAL_MPP_LIB";

/// Names tried by [`Mpp::load`], in order: the SONAME first, then the real file name, then the
/// development symlink.
pub const LIBRARY_NAMES: [&str; 3] = [
    "librockchip_mpp.so.1",
    "librockchip_mpp.so.0",
    "librockchip_mpp.so",
];

/// `MODULE_TAG` passed by the macro shims (MPP uses it in its logs).
pub const MODULE_TAG: &CStr = c"camseal";
/// `__FUNCTION__` passed by the macro shims (MPP uses it in its logs).
pub const CALLER: &CStr = c"camseal";

// --- mpp_err.h ---
/// Success.
pub const MPP_OK: MppRet = 0;
/// Generic failure; for non-blocking calls, "try again".
pub const MPP_NOK: MppRet = -1;
/// Unknown error.
pub const MPP_ERR_UNKNOW: MppRet = -2;
/// A NULL pointer was passed.
pub const MPP_ERR_NULL_PTR: MppRet = -3;
/// Allocation failed.
pub const MPP_ERR_MALLOC: MppRet = -4;
/// An argument is out of range.
pub const MPP_ERR_VALUE: MppRet = -6;
/// A timed wait expired.
pub const MPP_ERR_TIMEOUT: MppRet = -8;
/// Operation not permitted.
pub const MPP_ERR_PERM: MppRet = -9;
/// Initialisation failed.
pub const MPP_ERR_INIT: MppRet = -1002;
/// Out of memory.
pub const MPP_ERR_NOMEM: MppRet = -1006;
/// The hardware reported an error.
pub const MPP_ERR_VPUHW: MppRet = -1009;
/// End of stream reached.
pub const MPP_EOS_STREAM_REACHED: MppRet = -1011;
/// The buffer queue is full.
pub const MPP_ERR_BUFFER_FULL: MppRet = -1012;

// --- rk_type.h ---
/// Decoder context.
pub const MPP_CTX_DEC: MppCtxType = 0;
/// Encoder context.
pub const MPP_CTX_ENC: MppCtxType = 1;
/// H.264 / AVC.
pub const MPP_VIDEO_CODING_AVC: MppCodingType = 7;
/// H.265 / HEVC.
pub const MPP_VIDEO_CODING_HEVC: MppCodingType = 0x0100_0004;

// --- mpp_task.h ---
/// Wait without a time limit.
pub const MPP_POLL_BLOCK: MppPollType = -1;
/// Do not wait.
pub const MPP_POLL_NON_BLOCK: MppPollType = 0;
/// Longest timeout MPP accepts, in milliseconds.
pub const MPP_POLL_MAX: MppPollType = 8000;

// --- rk_mpi_cmd.h ---
/// Input (put) timeout; parameter `*mut MppPollType` (an `i32`, not the documented `RK_S64`).
pub const MPP_SET_INPUT_TIMEOUT: MpiCmd = 0x0020_0006;
/// Output (get) timeout; parameter `*mut MppPollType` (an `i32`, not the documented `RK_S64`).
pub const MPP_SET_OUTPUT_TIMEOUT: MpiCmd = 0x0020_0007;
/// Applies an `MppEncCfg`; parameter the cfg.
pub const MPP_ENC_SET_CFG: MpiCmd = 0x0032_0001;
/// Reads the current configuration into an `MppEncCfg`; parameter the cfg.
pub const MPP_ENC_GET_CFG: MpiCmd = 0x0032_0002;
/// The next frame is encoded as an IDR; parameter NULL.
pub const MPP_ENC_SET_IDR_FRAME: MpiCmd = 0x0032_0009;
/// Writes VPS/SPS/PPS into a caller's packet; parameter the `MppPacket`.
pub const MPP_ENC_GET_HDR_SYNC: MpiCmd = 0x0032_000d;
/// SEI mode; parameter `*mut c_int`.
pub const MPP_ENC_SET_SEI_CFG: MpiCmd = 0x0032_000f;
/// Header placement; parameter `*mut MppEncHeaderMode`.
pub const MPP_ENC_SET_HEADER_MODE: MpiCmd = 0x0032_8001;

// --- rk_venc_cmd.h / rk_venc_rc.h ---
/// Parameter sets on the first frame only.
pub const MPP_ENC_HEADER_MODE_DEFAULT: MppEncHeaderMode = 0;
/// Parameter sets repeated on every IDR.
pub const MPP_ENC_HEADER_MODE_EACH_IDR: MppEncHeaderMode = 1;

/// `MppEncSeiMode` (rk_venc_cmd.h), the parameter of [`MPP_ENC_SET_SEI_CFG`].
pub type MppEncSeiMode = c_int;
/// No SEI from MPP. (The header calls it the default; `mpp_enc_init_v2` starts at ONE_SEQ.)
pub const MPP_ENC_SEI_MODE_DISABLE: MppEncSeiMode = 0;
/// A version SEI and a rate-control SEI before every IDR.
pub const MPP_ENC_SEI_MODE_ONE_SEQ: MppEncSeiMode = 1;
/// `rc:mode` variable bitrate.
pub const MPP_ENC_RC_MODE_VBR: i32 = 0;
/// `rc:mode` constant bitrate.
pub const MPP_ENC_RC_MODE_CBR: i32 = 1;
/// `rc:mode` fixed QP.
pub const MPP_ENC_RC_MODE_FIXQP: i32 = 2;
/// `rc:mode` adaptive VBR.
pub const MPP_ENC_RC_MODE_AVBR: i32 = 3;

// --- mpp_frame.h ---
/// NV12: a Y plane, then interleaved CbCr.
pub const MPP_FMT_YUV420SP: MppFrameFormat = 0;
/// Flag OR'd into a format for AFBC (ARM frame-buffer compression) input.
pub const MPP_FRAME_FBC_AFBC_V2: MppFrameFormat = 0x0020_0000;

// --- mpp_buffer.h ---
/// Plain `malloc` memory.
pub const MPP_BUFFER_TYPE_NORMAL: MppBufferType = 0;
/// ION memory.
pub const MPP_BUFFER_TYPE_ION: MppBufferType = 1;
/// A DMA-buf fd from elsewhere (a V4L2 capture buffer); MPP neither dups nor closes it.
pub const MPP_BUFFER_TYPE_EXT_DMA: MppBufferType = 2;
/// DRM (GEM) memory.
pub const MPP_BUFFER_TYPE_DRM: MppBufferType = 3;
/// DMA-buf heap memory.
pub const MPP_BUFFER_TYPE_DMA_HEAP: MppBufferType = 4;
/// Mask of the type bits of an `MppBufferType`.
pub const MPP_BUFFER_TYPE_MASK: MppBufferType = 0xffff;
/// Flag: physically contiguous (CMA).
pub const MPP_BUFFER_FLAGS_CONTIG: MppBufferType = 0x0001_0000;
/// Flag: CPU-cachable.
pub const MPP_BUFFER_FLAGS_CACHABLE: MppBufferType = 0x0002_0000;
/// The group allocates its own buffers.
pub const MPP_BUFFER_INTERNAL: MppBufferMode = 0;
/// The group only holds imported buffers.
pub const MPP_BUFFER_EXTERNAL: MppBufferMode = 1;

// --- mpp_meta.h ---
/// Packet meta: the input frame the packet was encoded from (`'ifrm'`).
pub const KEY_INPUT_FRAME: MppMetaKey = fourcc(b"ifrm");
/// Frame meta: a caller-supplied output packet (`'opkt'`).
pub const KEY_OUTPUT_PACKET: MppMetaKey = fourcc(b"opkt");
/// Frame meta: request an IDR for this frame (`'iidr'`).
pub const KEY_INPUT_IDR_REQ: MppMetaKey = fourcc(b"iidr");
/// Packet meta: nonzero when the packet holds an intra picture (`'oidr'`).
pub const KEY_OUTPUT_INTRA: MppMetaKey = fourcc(b"oidr");

// Layouts from the C headers on LP64 (aarch64 and x86-64), checked at compile time.
#[cfg(target_pointer_width = "64")]
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<MppApi>() == 184);
    assert!(offset_of!(MppApi, encode_put_frame) == 40);
    assert!(offset_of!(MppApi, encode_get_packet) == 48);
    assert!(offset_of!(MppApi, poll) == 80);
    assert!(offset_of!(MppApi, reset) == 104);
    assert!(offset_of!(MppApi, control) == 112);
    assert!(offset_of!(MppApi, reserv) == 120);
    assert!(size_of::<MppBufferInfo>() == 40);
    assert!(offset_of!(MppBufferInfo, type_) == 0);
    assert!(offset_of!(MppBufferInfo, size) == 8);
    assert!(offset_of!(MppBufferInfo, ptr) == 16);
    assert!(offset_of!(MppBufferInfo, hnd) == 24);
    assert!(offset_of!(MppBufferInfo, fd) == 32);
    assert!(offset_of!(MppBufferInfo, index) == 36);
};

// The same headers on ILP32 (armv7 with glibc): pointers and `size_t` are 4 bytes, the
// reserved words stay 16 x u32.
#[cfg(target_pointer_width = "32")]
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<MppApi>() == 128);
    assert!(offset_of!(MppApi, encode_put_frame) == 24);
    assert!(offset_of!(MppApi, encode_get_packet) == 28);
    assert!(offset_of!(MppApi, poll) == 44);
    assert!(offset_of!(MppApi, reset) == 56);
    assert!(offset_of!(MppApi, control) == 60);
    assert!(offset_of!(MppApi, reserv) == 64);
    assert!(size_of::<MppBufferInfo>() == 24);
    assert!(offset_of!(MppBufferInfo, type_) == 0);
    assert!(offset_of!(MppBufferInfo, size) == 4);
    assert!(offset_of!(MppBufferInfo, ptr) == 8);
    assert!(offset_of!(MppBufferInfo, hnd) == 12);
    assert!(offset_of!(MppBufferInfo, fd) == 16);
    assert!(offset_of!(MppBufferInfo, index) == 20);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fourcc_keys_match_the_header_values() {
        assert_eq!(KEY_OUTPUT_INTRA, 0x6f69_6472);
        assert_eq!(KEY_INPUT_FRAME, 0x6966_726d);
        assert_eq!(KEY_OUTPUT_PACKET, 0x6f70_6b74);
    }

    #[test]
    fn command_values_follow_the_enum_bases() {
        // CMD_MODULE_MPP + 6 / + 7, CMD_MODULE_CODEC | CMD_CTX_ID_ENC + n.
        assert_eq!(MPP_SET_INPUT_TIMEOUT, 0x0020_0000 + 6);
        assert_eq!(MPP_SET_OUTPUT_TIMEOUT, 0x0020_0000 + 7);
        assert_eq!(MPP_ENC_SET_CFG, 0x0030_0000 | 0x0002_0000 | 1);
        assert_eq!(MPP_ENC_GET_HDR_SYNC, 0x0032_0000 + 13);
        assert_eq!(MPP_ENC_SET_HEADER_MODE, 0x0032_0000 | 0x8000 | 1);
    }

    #[test]
    fn missing_library_lists_every_candidate_on_one_line() {
        let err = Mpp::load_first(
            ["/nonexistent/librockchip_mpp.so.1", "/nonexistent/b.so"]
                .iter()
                .map(Path::new),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(!msg.contains('\n'), "{msg}");
        assert!(
            msg.contains("/nonexistent/librockchip_mpp.so.1, /nonexistent/b.so"),
            "{msg}"
        );
        assert!(msg.contains(LIBRARY_ENV), "{msg}");
        match err {
            LoadError::NotFound { tried } => assert_eq!(tried.len(), 2),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_library_without_mpp_symbols_is_missing_a_symbol() {
        // libc is always loadable and exports none of MPP's functions.
        match Mpp::load_from(Path::new("libc.so.6")) {
            Err(LoadError::MissingSymbol { symbol, .. }) => assert_eq!(symbol, "mpp_create"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_file_that_is_not_a_library_shows_the_loader_reason() {
        let dir = std::env::temp_dir().join(format!("mpp-sys-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("librockchip_mpp.so.1");
        std::fs::write(&path, b"not an ELF file").unwrap();
        let msg = Mpp::load_from(&path).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains(": "), "the loader's reason is shown: {msg}");
    }
}
