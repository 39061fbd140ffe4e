//! Everything the fake knows: live objects by handle, per-context encoder state, and the
//! checks that turn a caller's mistake into a loud failure.
//!
//! Handles are not pointers: each is a fresh id with a kind tag in its low bits, never reused.
//! So a handle that is no longer live was certainly freed before (a double free or a use after
//! deinit), and a handle of the wrong kind is caught too, without ever dereferencing what the
//! caller passed. Only the memory a caller must read or write (the `MppApi` table, packet
//! bytes, buffer bytes) is real.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::ffi::c_void;
use std::fmt;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use camseal_nal::Codec;
use rockchip_mpp_sys as sys;

use crate::stream::Stream;

/// Kinds of object, stored in the low bits of a handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Buffer = 1,
    Cfg = 2,
    Ctx = 3,
    Frame = 4,
    Group = 5,
    Meta = 6,
    Packet = 7,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Buffer => "MppBuffer",
            Kind::Cfg => "MppEncCfg",
            Kind::Ctx => "MppCtx",
            Kind::Frame => "MppFrame",
            Kind::Group => "MppBufferGroup",
            Kind::Meta => "MppMeta",
            Kind::Packet => "MppPacket",
        }
    }

    fn from_tag(tag: usize) -> Option<Kind> {
        Some(match tag {
            1 => Kind::Buffer,
            2 => Kind::Cfg,
            3 => Kind::Ctx,
            4 => Kind::Frame,
            5 => Kind::Group,
            6 => Kind::Meta,
            7 => Kind::Packet,
            _ => return None,
        })
    }
}

/// A handle as the caller sees it.
pub type Handle = *mut c_void;

/// An object id (the handle without its tag).
pub type Id = usize;

/// The process-wide state, behind one lock: MPP calls may come from several threads.
pub fn state() -> MutexGuard<'static, State> {
    static STATE: Mutex<State> = Mutex::new(State::new());
    // A panic while the lock is held aborts the process (it happens inside an `extern "C"`
    // function), so a poisoned lock can only be observed by a later call of a dying process;
    // its state is still the best there is.
    STATE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Reports a misuse that real MPP would turn into memory corruption or a leak, and aborts.
pub fn misuse(call: &str, message: fmt::Arguments<'_>) -> ! {
    eprintln!("fake-mpp: misuse in {call}: {message}");
    std::process::abort()
}

/// Reports a frame or DMA-buf given up by the caller while the encoder ("hardware") still
/// holds it, and aborts: on real MPP the hardware would read freed or recycled memory.
pub fn released_while_held(call: &str, message: fmt::Arguments<'_>) -> ! {
    eprintln!("fake-mpp: released while held: in {call}: {message}");
    std::process::abort()
}

/// Reports a recoverable error (the call returns an error code).
pub fn error(call: &str, message: fmt::Arguments<'_>) {
    eprintln!("fake-mpp: error in {call}: {message}");
}

pub struct State {
    next_id: Id,
    objects: BTreeMap<Id, Object>,
}

pub enum Object {
    Buffer(Buffer),
    Cfg(Cfg),
    Ctx(Box<Ctx>),
    Frame(Frame),
    Group(Group),
    Meta(Meta),
    Packet(Packet),
}

impl Object {
    fn kind(&self) -> Kind {
        match self {
            Object::Buffer(_) => Kind::Buffer,
            Object::Cfg(_) => Kind::Cfg,
            Object::Ctx(_) => Kind::Ctx,
            Object::Frame(_) => Kind::Frame,
            Object::Group(_) => Kind::Group,
            Object::Meta(_) => Kind::Meta,
            Object::Packet(_) => Kind::Packet,
        }
    }
}

pub struct Buffer {
    pub refs: u32,
    pub memory: Memory,
    pub group: Option<Id>,
    pub syncing: bool,
}

pub enum Memory {
    /// Allocated by the fake (an internal group, or a packet's bitstream).
    Owned(Box<[u8]>),
    /// An imported DMA-buf: the caller keeps the fd open while the buffer lives.
    Imported { fd: i32, size: usize },
}

impl Buffer {
    pub fn size(&self) -> usize {
        match &self.memory {
            Memory::Owned(bytes) => bytes.len(),
            Memory::Imported { size, .. } => *size,
        }
    }
}

#[derive(Default)]
pub struct Cfg {
    pub values: BTreeMap<&'static str, i64>,
}

pub struct Ctx {
    /// The vtable handed to the caller; it must stay at this address until `mpp_destroy`.
    pub api: Box<sys::MppApi>,
    pub init: Option<Codec>,
    pub input_timeout: i32,
    pub output_timeout: i32,
    /// The configuration applied with `MPP_ENC_SET_CFG`.
    pub applied: BTreeMap<&'static str, i64>,
    pub configured: bool,
    pub header_mode: i32,
    /// `MPP_ENC_SET_SEI_CFG`; MPP starts at ONE_SEQ (`mpp_enc_init_v2`, mpp_enc_v2.cpp).
    pub sei_mode: i32,
    pub stream: Option<Stream>,
    /// Whether `mpp_init` chose async mode: the input timeout was `MPP_POLL_NON_BLOCK` then
    /// (`Mpp::init`, mpp/mpp.cpp; the fake is an RK3588, where `check_frm_task_cnt_cap`
    /// gives AVC and HEVC two input tasks, so async mode is kept).
    pub async_io: bool,
    /// Frames the encoder holds: queued in async mode, or in sync mode the frame of a put
    /// that timed out while being encoded (the fake holds a buffer reference each).
    pub pending: VecDeque<Pending>,
    /// Packets encoded and not yet taken by `encode_get_packet` (sync mode encodes during
    /// `encode_put_frame`; the packet waits in the output port).
    pub output: VecDeque<Id>,
    /// The next encoded picture must be an IDR (after a reset or a failed frame).
    pub force_idr: bool,
    /// The parameter sets were generated and sent (`hdr_status.ready` in mpp_enc_impl.cpp).
    pub hdr_ready: bool,
    pub eos_requested: bool,
    pub ended: bool,
    pub puts: u64,
    pub gets: u64,
    pub packets_out: u64,
    pub idr_requests: u64,
    pub live_packets: HashSet<Id>,
}

pub struct Pending {
    pub frame: Id,
    /// The caller's output packet (`KEY_OUTPUT_PACKET` in the frame's meta), if any.
    pub output: Option<Id>,
    pub buffer: Option<Id>,
    pub pts: i64,
    pub eos: bool,
}

#[derive(Default)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    pub hor_stride: u32,
    pub ver_stride: u32,
    pub fmt: i32,
    pub eos: bool,
    pub pts: i64,
    pub buffer: Option<Id>,
    pub meta: Option<Id>,
}

pub struct Group {
    pub type_: i32,
    pub mode: i32,
    pub buffers: HashSet<Id>,
    /// Put by its owner while buffers were still in use: it goes with its last buffer.
    pub orphan: bool,
}

#[derive(Default)]
pub struct Meta {
    pub s32: HashMap<u32, i32>,
    pub frames: HashMap<u32, Id>,
    pub packets: HashMap<u32, Id>,
}

pub struct Packet {
    /// The context that produced it, for output packets.
    pub ctx: Option<Id>,
    pub data: PacketData,
    pub length: usize,
    pub pts: i64,
    pub eos: bool,
    pub meta: Option<Id>,
}

pub enum PacketData {
    /// Output: the bitstream lives in a fake buffer, released when the packet is deinit.
    Buffer(Id),
    /// `mpp_packet_init` over the caller's memory.
    Caller { ptr: usize, size: usize },
}

impl State {
    const fn new() -> State {
        State {
            next_id: 1,
            objects: BTreeMap::new(),
        }
    }

    pub fn insert(&mut self, object: Object) -> Handle {
        let id = self.next_id;
        self.next_id += 1;
        let kind = object.kind();
        self.objects.insert(id, object);
        encode(kind, id)
    }

    /// Resolves `handle` to a live object of `kind`, or aborts naming the mistake.
    pub fn id(&self, call: &str, handle: Handle, kind: Kind) -> Id {
        let value = handle as usize;
        if value == 0 {
            misuse(call, format_args!("NULL {}", kind.name()));
        }
        let (tag, id) = (value & TAG_MASK, value >> TAG_BITS);
        match Kind::from_tag(tag) {
            Some(k) if k == kind => {}
            Some(k) => misuse(
                call,
                format_args!("{handle:p} is an {}, not an {}", k.name(), kind.name()),
            ),
            None => misuse(
                call,
                format_args!("{handle:p} is not a handle the fake gave out"),
            ),
        }
        if self.objects.contains_key(&id) {
            id
        } else if id < self.next_id {
            misuse(
                call,
                format_args!(
                    "{} {handle:p} was already freed (double free or use after deinit)",
                    kind.name()
                ),
            )
        } else {
            misuse(
                call,
                format_args!("{handle:p} is not a handle the fake gave out"),
            )
        }
    }

    pub fn ctx(&mut self, call: &str, handle: Handle) -> (Id, &mut Ctx) {
        let id = self.id(call, handle, Kind::Ctx);
        match self.objects.get_mut(&id) {
            Some(Object::Ctx(ctx)) => (id, ctx),
            _ => unreachable_kind(call),
        }
    }

    pub fn frame(&mut self, call: &str, handle: Handle) -> &mut Frame {
        let id = self.id(call, handle, Kind::Frame);
        self.frame_by_id(call, id)
    }

    pub fn frame_by_id(&mut self, call: &str, id: Id) -> &mut Frame {
        match self.objects.get_mut(&id) {
            Some(Object::Frame(f)) => f,
            _ => unreachable_kind(call),
        }
    }

    pub fn packet(&mut self, call: &str, handle: Handle) -> &mut Packet {
        let id = self.id(call, handle, Kind::Packet);
        match self.objects.get_mut(&id) {
            Some(Object::Packet(p)) => p,
            _ => unreachable_kind(call),
        }
    }

    pub fn buffer(&mut self, call: &str, handle: Handle) -> &mut Buffer {
        let id = self.id(call, handle, Kind::Buffer);
        self.buffer_by_id(call, id)
    }

    pub fn buffer_by_id(&mut self, call: &str, id: Id) -> &mut Buffer {
        match self.objects.get_mut(&id) {
            Some(Object::Buffer(b)) => b,
            _ => misuse(
                call,
                format_args!("MppBuffer #{id} was freed while still in use"),
            ),
        }
    }

    pub fn cfg(&mut self, call: &str, handle: Handle) -> &mut Cfg {
        let id = self.id(call, handle, Kind::Cfg);
        match self.objects.get_mut(&id) {
            Some(Object::Cfg(c)) => c,
            _ => unreachable_kind(call),
        }
    }

    pub fn meta(&mut self, call: &str, handle: Handle) -> &mut Meta {
        let id = self.id(call, handle, Kind::Meta);
        match self.objects.get_mut(&id) {
            Some(Object::Meta(m)) => m,
            _ => unreachable_kind(call),
        }
    }

    pub fn group(&mut self, call: &str, handle: Handle) -> (Id, &mut Group) {
        let id = self.id(call, handle, Kind::Group);
        match self.objects.get_mut(&id) {
            Some(Object::Group(g)) => (id, g),
            _ => unreachable_kind(call),
        }
    }

    pub fn object_mut(&mut self, id: Id) -> Option<&mut Object> {
        self.objects.get_mut(&id)
    }

    pub fn remove(&mut self, id: Id) -> Option<Object> {
        self.objects.remove(&id)
    }

    /// Takes one more reference on a buffer.
    pub fn buffer_ref(&mut self, call: &str, id: Id) {
        self.buffer_by_id(call, id).refs += 1;
    }

    /// Drops one reference; frees the buffer at zero. An imported DMA-buf whose fd was closed
    /// while MPP still held it is a misuse: the hardware could have read a recycled fd.
    pub fn buffer_unref(&mut self, call: &str, id: Id) {
        let buffer = self.buffer_by_id(call, id);
        buffer.refs -= 1;
        if buffer.refs > 0 {
            return;
        }
        if let Memory::Imported { fd, .. } = buffer.memory
            && !fd_is_open(fd)
        {
            released_while_held(
                call,
                format_args!(
                    "the DMA-buf fd {fd} of an imported buffer was closed before MPP released it"
                ),
            );
        }
        let group = buffer.group;
        self.objects.remove(&id);
        if let Some(group) = group
            && let Some(Object::Group(g)) = self.objects.get_mut(&group)
        {
            g.buffers.remove(&id);
            // An orphan group is destroyed with its last buffer (`put_buffer` in
            // mpp/base/mpp_buffer_impl.cpp: `is_orphan && !usage` → `put_group`).
            if g.orphan && g.buffers.is_empty() {
                self.objects.remove(&group);
            }
        }
    }

    pub fn new_meta(&mut self) -> Id {
        let handle = self.insert(Object::Meta(Meta::default()));
        handle as usize >> TAG_BITS
    }

    pub fn meta_by_id(&mut self, id: Id) -> Option<&mut Meta> {
        match self.objects.get_mut(&id) {
            Some(Object::Meta(m)) => Some(m),
            _ => None,
        }
    }

    /// A short count of live objects by kind, e.g. "2 MppFrame, 1 MppBuffer".
    pub fn live_summary(&self) -> Option<String> {
        let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
        for object in self.objects.values() {
            // Metadata belongs to frames and packets; counting those is enough.
            if object.kind() != Kind::Meta {
                *counts.entry(object.kind().name()).or_default() += 1;
            }
        }
        if counts.is_empty() {
            return None;
        }
        let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
        Some(parts.join(", "))
    }

    pub fn contexts(&self) -> usize {
        self.objects
            .values()
            .filter(|o| o.kind() == Kind::Ctx)
            .count()
    }

    /// Finds the context (if any) that still holds `frame` as pending input.
    pub fn frame_holder(&self, frame: Id) -> Option<Id> {
        self.objects.iter().find_map(|(id, o)| match o {
            Object::Ctx(ctx) if ctx.pending.iter().any(|p| p.frame == frame) => Some(*id),
            _ => None,
        })
    }

    /// Finds the context (if any) that will still write `packet`: the output packet of a
    /// frame it holds.
    pub fn packet_holder(&self, packet: Id) -> Option<Id> {
        self.objects.iter().find_map(|(id, o)| match o {
            Object::Ctx(ctx) if ctx.pending.iter().any(|p| p.output == Some(packet)) => Some(*id),
            _ => None,
        })
    }

    /// Whether a buffer comes from a group created with `MPP_BUFFER_FLAGS_CACHABLE`.
    pub fn cachable(&self, buffer: Id) -> bool {
        let group = match self.objects.get(&buffer) {
            Some(Object::Buffer(b)) => b.group,
            _ => None,
        };
        matches!(
            group.and_then(|g| self.objects.get(&g)),
            Some(Object::Group(g)) if g.type_ & sys::MPP_BUFFER_FLAGS_CACHABLE != 0
        )
    }

    /// Releases every frame a context holds (reset, EOS, destroy).
    pub fn release_pending(&mut self, call: &str, ctx: Id) {
        let pending: Vec<Pending> = match self.objects.get_mut(&ctx) {
            Some(Object::Ctx(c)) => c.pending.drain(..).collect(),
            _ => return,
        };
        for p in pending {
            if let Some(buffer) = p.buffer {
                self.buffer_unref(call, buffer);
            }
            // The task's output packet goes with it: MPP's packet lists deinit what they hold
            // (`list_wraper_packet`, mpp/mpp.cpp).
            if let Some(packet) = p.output
                && let Some(Object::Packet(pk)) = self.objects.remove(&packet)
            {
                if let PacketData::Buffer(b) = pk.data {
                    self.buffer_unref(call, b);
                }
                if let Some(m) = pk.meta {
                    self.objects.remove(&m);
                }
            }
        }
    }
}

pub fn encode(kind: Kind, id: Id) -> Handle {
    ((id << TAG_BITS) | kind as usize) as Handle
}

pub fn id_of(handle: Handle) -> Id {
    handle as usize >> TAG_BITS
}

impl Ctx {
    pub fn new(api: Box<sys::MppApi>) -> Ctx {
        Ctx {
            api,
            init: None,
            input_timeout: sys::MPP_POLL_BLOCK,
            output_timeout: sys::MPP_POLL_BLOCK,
            applied: BTreeMap::new(),
            configured: false,
            header_mode: sys::MPP_ENC_HEADER_MODE_DEFAULT,
            sei_mode: SEI_MODE_ONE_SEQ,
            stream: None,
            async_io: false,
            pending: VecDeque::new(),
            output: VecDeque::new(),
            force_idr: false,
            hdr_ready: false,
            eos_requested: false,
            ended: false,
            puts: 0,
            gets: 0,
            packets_out: 0,
            idr_requests: 0,
            live_packets: HashSet::new(),
        }
    }
}

/// The configuration fields the fake knows, named as MPP HEAD's `mpp_enc_cfg.cpp` ENTRY table
/// names them (which spellings each version accepts: [`known_key_in`]). All are 32-bit; MPP
/// lets `set_s32` and `set_u32` write either kind of 32-bit key.
pub const KNOWN_KEYS: &[&str] = &[
    "base:low_delay",
    "codec:type",
    "h264:cabac_en",
    "h264:cabac_idc",
    "h264:level",
    "h264:profile",
    "h264:trans8x8",
    "h265:level",
    "h265:profile",
    "h265:tier",
    "prep:format",
    "prep:height",
    "prep:hor_stride",
    "prep:ver_stride",
    "prep:width",
    "rc:bps_max",
    "rc:bps_min",
    "rc:bps_target",
    "rc:drop_gap",
    "rc:drop_mode",
    "rc:drop_thd",
    "rc:fps_in_denom",
    "rc:fps_in_flex",
    "rc:fps_in_num",
    "rc:fps_out_denom",
    "rc:fps_out_flex",
    "rc:fps_out_num",
    "rc:gop",
    "rc:mode",
    "rc:qp_init",
    "rc:qp_ip",
    "rc:qp_max",
    "rc:qp_max_i",
    "rc:qp_min",
    "rc:qp_min_i",
    "split:arg",
    "split:mode",
    "split:out",
];

/// Keys a configuration must hold before frames can be encoded.
pub const REQUIRED_KEYS: &[&str] = &[
    "codec:type",
    "prep:format",
    "prep:height",
    "prep:hor_stride",
    "prep:ver_stride",
    "prep:width",
    "rc:fps_in_denom",
    "rc:fps_in_num",
    "rc:fps_out_denom",
    "rc:fps_out_num",
    "rc:gop",
    "rc:mode",
];

/// Which MPP release's configuration keys the fake accepts (`FAKE_MPP_VERSION`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MppVersion {
    /// Releases 1.0.0 to 1.0.4 (`mpp/base/mpp_enc_cfg.cpp` at tag 1.0.4): the frame-rate
    /// denominators are spelled `rc:fps_in_denorm` and `rc:fps_out_denorm` only.
    V1_0_4,
    /// HEAD since commit 02a35cb8 (2024-03-05, "Fix clerical error"; checked at ee946af):
    /// `rc:fps_in_denom` and `rc:fps_out_denom`, with the old spellings kept as ENTRY
    /// aliases of the same field.
    Head,
}

/// The version from `FAKE_MPP_VERSION` (`1.0.4`, the default, or `head`). Anything else aborts
/// the first call that reads it, so that a typo cannot silently test the wrong version.
pub fn mpp_version() -> MppVersion {
    static VERSION: std::sync::OnceLock<MppVersion> = std::sync::OnceLock::new();
    *VERSION.get_or_init(|| match std::env::var("FAKE_MPP_VERSION").as_deref() {
        Err(_) | Ok("") | Ok("1.0.4") => MppVersion::V1_0_4,
        Ok("head") => MppVersion::Head,
        Ok(other) => {
            eprintln!("fake-mpp: bad FAKE_MPP_VERSION {other:?}: use 1.0.4 or head");
            std::process::abort()
        }
    })
}

/// The field a key sets, under the version `FAKE_MPP_VERSION` chooses: `None` for a key that
/// version's ENTRY table does not have (MPP then fails the call: `check_cfg_info` in
/// `mpp/base/mpp_cfg.cpp`). Spellings that alias one field map to its canonical name in
/// [`KNOWN_KEYS`].
pub fn known_key(name: &str) -> Option<&'static str> {
    known_key_in(mpp_version(), name)
}

/// [`known_key`] for a given version.
pub fn known_key_in(version: MppVersion, name: &str) -> Option<&'static str> {
    let (old, new) = (
        ["rc:fps_in_denorm", "rc:fps_out_denorm"],
        ["rc:fps_in_denom", "rc:fps_out_denom"],
    );
    if let Some(i) = old.iter().position(|k| *k == name) {
        // Both versions know the old spelling (HEAD as an alias).
        return Some(new[i]);
    }
    if new.contains(&name) && version == MppVersion::V1_0_4 {
        return None;
    }
    KNOWN_KEYS.iter().copied().find(|k| *k == name)
}

/// Checks a configuration about to be applied to a context initialised for `codec`.
pub fn validate_config(values: &BTreeMap<&'static str, i64>, codec: Codec) -> Result<(), String> {
    for key in REQUIRED_KEYS {
        if !values.contains_key(key) {
            return Err(format!("configuration lacks {key}"));
        }
    }
    let v = |k: &str| values.get(k).copied().unwrap_or(0);
    let (w, h) = (v("prep:width"), v("prep:height"));
    let (hs, vs) = (v("prep:hor_stride"), v("prep:ver_stride"));
    if !(MIN_SIDE..=MAX_SIDE).contains(&w) || !(MIN_SIDE..=MAX_SIDE).contains(&h) {
        return Err(format!(
            "prep size {w}x{h} is outside {MIN_SIDE}..={MAX_SIDE}"
        ));
    }
    if w % 2 != 0 || h % 2 != 0 {
        return Err(format!("prep size {w}x{h} is odd; NV12 needs even sizes"));
    }
    if hs < w || vs < h {
        return Err(format!(
            "prep stride {hs}x{vs} is smaller than the picture {w}x{h}"
        ));
    }
    if v("prep:format") != i64::from(sys::MPP_FMT_YUV420SP) {
        return Err(format!(
            "prep:format {} is not NV12 (MPP_FMT_YUV420SP = 0), the only format the fake takes",
            v("prep:format")
        ));
    }
    let coding = coding_of(codec);
    if v("codec:type") != i64::from(coding) {
        return Err(format!(
            "codec:type {:#x} does not match the codec mpp_init was given ({:#x}, {codec})",
            v("codec:type"),
            coding
        ));
    }
    let mode = v("rc:mode");
    if !(i64::from(sys::MPP_ENC_RC_MODE_VBR)..=i64::from(sys::MPP_ENC_RC_MODE_AVBR)).contains(&mode)
    {
        return Err(format!("rc:mode {mode} is not VBR, CBR, FIXQP or AVBR"));
    }
    if mode != i64::from(sys::MPP_ENC_RC_MODE_FIXQP) {
        let bps = v("rc:bps_target");
        let (lo, hi) = (
            values.get("rc:bps_min").copied().unwrap_or(bps),
            values.get("rc:bps_max").copied().unwrap_or(bps),
        );
        // MPP's `mpp_enc_proc_rc_cfg` (mpp/codec/mpp_enc_impl.cpp, 1.0.4 and ee946af alike):
        // each of target, max and min must lie strictly between MPP_ENC_MIN_BPS (1 KiB) and
        // MPP_ENC_MAX_BPS (200 MiB), both in bits per second (inc/rk_venc_rc.h).
        for (key, value) in [
            ("rc:bps_target", bps),
            ("rc:bps_max", hi),
            ("rc:bps_min", lo),
        ] {
            if value <= MPP_ENC_MIN_BPS || value >= MPP_ENC_MAX_BPS {
                return Err(format!(
                    "{key} {value} is out of range {}K~{}M (invalid bit per second)",
                    MPP_ENC_MIN_BPS >> 10,
                    MPP_ENC_MAX_BPS >> 20
                ));
            }
        }
        // No ordering of min, target and max is checked there: MPP takes any three values
        // inside the range.
    }
    for dir in ["in", "out"] {
        let num = v(&format!("rc:fps_{dir}_num"));
        let den = v(&format!("rc:fps_{dir}_denom"));
        if num <= 0 || den <= 0 {
            return Err(format!("rc:fps_{dir} {num}/{den} is not a frame rate"));
        }
    }
    if v("rc:gop") < 0 {
        return Err(format!("rc:gop {} is negative", v("rc:gop")));
    }
    match (
        codec,
        values.get("h264:profile"),
        values.get("h265:profile"),
    ) {
        (Codec::H264, Some(p), _) if ![66, 77, 100].contains(p) => {
            return Err(format!("h264:profile {p} is not 66, 77 or 100"));
        }
        (Codec::H265, Some(p), _) if *p != 1 => {
            return Err(format!("h265:profile {p} is not 1 (Main)"));
        }
        (Codec::H264, _, Some(_)) => {
            return Err("h265:profile set on an H.264 encoder".into());
        }
        (Codec::H265, Some(_), _) => return Err("h264:profile set on an H.265 encoder".into()),
        _ => {}
    }
    Ok(())
}

pub fn coding_of(codec: Codec) -> i32 {
    match codec {
        Codec::H264 => sys::MPP_VIDEO_CODING_AVC,
        Codec::H265 => sys::MPP_VIDEO_CODING_HEVC,
    }
}

pub fn fd_is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only reads the descriptor table entry; any int is a valid argument.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// Size of the file behind `fd` (a DMA-buf's inode size is the buffer size), if known.
pub fn fd_size(fd: i32) -> Option<usize> {
    // SAFETY: a zeroed `stat` is a valid value of a plain C struct, and fstat writes at most
    // one `struct stat` into the pointer it is given.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a live, writable `struct stat`.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return None;
    }
    usize::try_from(st.st_size).ok().filter(|&n| n > 0)
}

/// Opens `FAKE_MPP_STREAM`.
pub fn open_stream() -> Result<Stream, String> {
    let path = std::env::var_os("FAKE_MPP_STREAM")
        .ok_or("FAKE_MPP_STREAM is not set: name the Annex-B stream the fake replays")?;
    Stream::open(Path::new(&path))
}

fn unreachable_kind(call: &str) -> ! {
    // `State::id` checked the tag against the stored object, so the kinds always agree.
    misuse(call, format_args!("internal error: handle kind mismatch"))
}

const TAG_BITS: usize = 4;
const TAG_MASK: usize = (1 << TAG_BITS) - 1;
const MIN_SIDE: i64 = 16;
const MAX_SIDE: i64 = 8192;
/// `MPP_ENC_SEI_MODE_ONE_SEQ` and `_ONE_FRAME` (`MppEncSeiMode`, inc/rk_venc_cmd.h).
pub const SEI_MODE_ONE_SEQ: i32 = 1;
pub const SEI_MODE_ONE_FRAME: i32 = 2;
/// `MPP_ENC_MIN_BPS` and `MPP_ENC_MAX_BPS` in MPP's `inc/rk_venc_rc.h` (SZ_1K, SZ_1M * 200).
const MPP_ENC_MIN_BPS: i64 = 1 << 10;
const MPP_ENC_MAX_BPS: i64 = 200 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_rate_denominator_spellings_follow_the_version() {
        use MppVersion::{Head, V1_0_4};
        for dir in ["in", "out"] {
            let old = format!("rc:fps_{dir}_denorm");
            let new = format!("rc:fps_{dir}_denom");
            // 1.0.0..=1.0.4 know only the old spelling.
            assert_eq!(
                known_key_in(V1_0_4, &old),
                Some(known_key_in(Head, &new).unwrap())
            );
            assert_eq!(known_key_in(V1_0_4, &new), None);
            // HEAD knows both, as one field.
            assert_eq!(known_key_in(Head, &old), known_key_in(Head, &new));
        }
        assert_eq!(known_key_in(V1_0_4, "rc:gop"), Some("rc:gop"));
        assert!(known_key_in(Head, "rc:bps_max").is_some());
        assert_eq!(known_key_in(Head, "rc:no_such_key"), None);
    }
}
