//! A fake `librockchip_mpp.so`: the subset of Rockchip MPP's C ABI that camseal's `rkmpp`
//! backend calls, implemented without hardware so the backend can be tested anywhere.
//!
//! What it does **not** do: it encodes nothing. Each output packet is the next access unit of
//! the Annex-B stream named by `FAKE_MPP_STREAM` (cut by `camseal-nal`), whatever the input
//! frames hold; the stream's resolution is not compared with the configured one. Decoding,
//! the task-queue interface and MPP's logging knobs are not implemented.
//!
//! What it checks, loudly:
//! - **Misuse that would corrupt memory or leak on real MPP** prints
//!   `fake-mpp: misuse in <call>: ...` and aborts the process: double free or use after
//!   deinit of any handle (handles are never reused, so this is exact), a handle of the wrong
//!   kind, `mpp_destroy` while packets from the context are alive, any
//!   object still alive when the last context is destroyed, a blocking `encode_get_packet` with
//!   no frame queued (it would hang forever), and unbalanced buffer sync calls.
//! - **A frame or DMA-buf released while the encoder holds it** prints
//!   `fake-mpp: released while held: ...` and aborts: `mpp_frame_deinit` of a frame queued
//!   in async mode or of a sync-mode put that timed out (`slow-put:N`), or an imported
//!   DMA-buf whose fd was closed before MPP encoded or released it.
//! - **Wrong configuration or input** prints `fake-mpp: error in <call>: ...` and returns an
//!   error code: unknown config keys, an incomplete or inconsistent `MPP_ENC_SET_CFG`
//!   (size, stride, format, rate control, codec), a codec that does not match the stream, a
//!   header mode other than EACH_IDR at the first frame, frames whose size, stride, format or
//!   buffer do not match the configuration.
//!
//! Modes, as `Mpp::init` picks them (mpp/mpp.cpp): an input timeout of `MPP_POLL_NON_BLOCK`
//! before `mpp_init` is async mode (up to 2 frames queued, encoded when packets are asked
//! for, each packet carrying its frame as `KEY_INPUT_FRAME`); anything else is sync mode
//! (each put encodes its frame before it returns, the packet waits for `encode_get_packet`,
//! no `KEY_INPUT_FRAME`). `reset` keeps encoded packets and forces the next picture to an IDR.
//! docs/HARDWARE.md maps each behaviour to the MPP function it copies.
//!
//! Faults are injected with `FAKE_MPP_FAULT` (listed in `src/faults.rs`). When the stream runs out (or an
//! injected early EOS fires), the next packet carries the EOS flag.

// Every export is an MPP C ABI function: its safety contract is the one MPP's headers give
// (live handles from this library, valid out-pointers), which the fake checks as far as it can.
#![allow(clippy::missing_safety_doc)]

mod faults;
pub mod objects;
mod state;
mod stream;

use std::ffi::{c_int, c_void};

use camseal_nal::Codec;
use rockchip_mpp_sys as sys;
use sys::{MpiCmd, MppApi, MppCodingType, MppCtxType, MppRet};

use crate::faults::faults;
use crate::state::{
    Buffer, Ctx, Handle, Kind, Memory, Object, PacketData, Pending, State, encode, error,
    fd_is_open, id_of, misuse, open_stream, state, validate_config,
};

// ---------------------------------------------------------------------------------------------
// Context

/// `MPP_RET mpp_create(MppCtx *ctx, MppApi **mpi)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_create(ctx: *mut Handle, mpi: *mut *mut MppApi) -> MppRet {
    const CALL: &str = "mpp_create";
    if ctx.is_null() || mpi.is_null() {
        misuse(CALL, format_args!("NULL out-pointer"));
    }
    if faults().create {
        error(
            CALL,
            format_args!("injected failure (FAKE_MPP_FAULT=create)"),
        );
        return sys::MPP_ERR_MALLOC;
    }
    let api = Box::new(MppApi {
        size: std::mem::size_of::<MppApi>() as u32,
        version: FAKE_VERSION,
        decode: Some(decode),
        decode_put_packet: Some(decode_put_packet),
        decode_get_frame: Some(decode_get_frame),
        encode: Some(encode_sync),
        encode_put_frame: Some(encode_put_frame),
        encode_get_packet: Some(encode_get_packet),
        isp: Some(isp),
        isp_put_frame: Some(isp_put_frame),
        isp_get_frame: Some(isp_get_frame),
        poll: Some(poll),
        dequeue: Some(dequeue),
        enqueue: Some(enqueue),
        reset: Some(reset),
        control: Some(control),
        reserv: [0; 16],
    });
    let mut st = state();
    let mut boxed = Box::new(Ctx::new(api));
    let api_ptr: *mut MppApi = &mut *boxed.api;
    let handle = st.insert(Object::Ctx(boxed));
    // SAFETY: both out-pointers were checked non-NULL; the caller provides writable storage.
    unsafe {
        *ctx = handle;
        *mpi = api_ptr;
    }
    sys::MPP_OK
}

/// `MPP_RET mpp_init(MppCtx ctx, MppCtxType type, MppCodingType coding)`: opens
/// `FAKE_MPP_STREAM` and checks its codec against `coding`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_init(ctx: Handle, type_: MppCtxType, coding: MppCodingType) -> MppRet {
    const CALL: &str = "mpp_init";
    let mut st = state();
    let (_, c) = st.ctx(CALL, ctx);
    if c.init.is_some() {
        misuse(CALL, format_args!("context initialised twice"));
    }
    if faults().init {
        error(
            CALL,
            format_args!("injected failure (FAKE_MPP_FAULT=init), as without /dev/mpp_service"),
        );
        return sys::MPP_NOK;
    }
    if type_ != sys::MPP_CTX_ENC {
        error(
            CALL,
            format_args!("the fake is an encoder only, not type {type_}"),
        );
        return sys::MPP_NOK;
    }
    let codec = match coding {
        sys::MPP_VIDEO_CODING_AVC => Codec::H264,
        sys::MPP_VIDEO_CODING_HEVC => Codec::H265,
        other => {
            error(
                CALL,
                format_args!("coding {other:#x} is neither AVC nor HEVC"),
            );
            return sys::MPP_NOK;
        }
    };
    let stream = match open_stream() {
        Ok(s) => s,
        Err(e) => {
            error(CALL, format_args!("{e}"));
            return sys::MPP_NOK;
        }
    };
    if stream.codec != codec {
        error(
            CALL,
            format_args!(
                "codec mismatch: the encoder was asked for {codec} but FAKE_MPP_STREAM {} is {}",
                stream.name, stream.codec
            ),
        );
        return sys::MPP_NOK;
    }
    c.init = Some(codec);
    c.stream = Some(stream);
    // `Mpp::init` (mpp/mpp.cpp, 1.0.4 and ee946af): a non-blocking input timeout at init
    // selects async mode (`mEncAyncIo`); anything else is sync mode.
    c.async_io = c.input_timeout == sys::MPP_POLL_NON_BLOCK;
    sys::MPP_OK
}

/// `MPP_RET mpp_destroy(MppCtx ctx)`: checks that no packet of the context is alive, and
/// after the last context that nothing at all is (unless `FAKE_MPP_NO_LEAK_CHECK` is set).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpp_destroy(ctx: Handle) -> MppRet {
    const CALL: &str = "mpp_destroy";
    let mut st = state();
    let (id, c) = st.ctx(CALL, ctx);
    if !c.live_packets.is_empty() {
        misuse(
            CALL,
            format_args!(
                "{} packet(s) from this context are still alive (leaked, or the context is destroyed under a reader)",
                c.live_packets.len()
            ),
        );
    }
    st.release_pending(CALL, id);
    // Packets nobody took are freed with the context (mpp/mpp.cpp `~Mpp` / `clear`: the
    // packet lists deinit what they hold).
    let (_, c) = st.ctx(CALL, ctx);
    let unread: Vec<state::Id> = c.output.drain(..).collect();
    for packet in unread {
        if let Some(Object::Packet(p)) = st.remove(packet) {
            if let PacketData::Buffer(b) = p.data {
                st.buffer_unref(CALL, b);
            }
            if let Some(m) = p.meta {
                st.remove(m);
            }
        }
    }
    st.remove(id);
    if st.contexts() == 0
        && std::env::var_os("FAKE_MPP_NO_LEAK_CHECK").is_none()
        && let Some(live) = st.live_summary()
    {
        misuse(
            CALL,
            format_args!("objects still alive after the last context was destroyed: {live}"),
        );
    }
    sys::MPP_OK
}

// ---------------------------------------------------------------------------------------------
// MppApi vtable

unsafe extern "C" fn control(ctx: Handle, cmd: MpiCmd, param: *mut c_void) -> MppRet {
    const CALL: &str = "control";
    let mut st = state();
    let (_, c) = st.ctx(CALL, ctx);
    match cmd {
        sys::MPP_SET_INPUT_TIMEOUT | sys::MPP_SET_OUTPUT_TIMEOUT => {
            if param.is_null() {
                misuse(CALL, format_args!("NULL timeout parameter"));
            }
            // MPP reads an MppPollType (a C int) here, whatever rk_mpi_cmd.h says.
            // SAFETY: non-NULL, and the caller passes a pointer to at least an int.
            let t = unsafe { *(param as *const c_int) };
            if !(sys::MPP_POLL_BLOCK..=sys::MPP_POLL_MAX).contains(&t) {
                error(CALL, format_args!("timeout {t} is outside -1..=8000 ms"));
                return sys::MPP_ERR_VALUE;
            }
            if cmd == sys::MPP_SET_INPUT_TIMEOUT {
                c.input_timeout = t;
            } else {
                c.output_timeout = t;
            }
            sys::MPP_OK
        }
        sys::MPP_ENC_GET_CFG => {
            let Some(codec) = c.init else {
                misuse(CALL, format_args!("MPP_ENC_GET_CFG before mpp_init"));
            };
            let mut values = c.applied.clone();
            values
                .entry("codec:type")
                .or_insert(i64::from(state::coding_of(codec)));
            let cfg = st.cfg(CALL, param);
            cfg.values = values;
            sys::MPP_OK
        }
        sys::MPP_ENC_SET_CFG => {
            let Some(codec) = c.init else {
                misuse(CALL, format_args!("MPP_ENC_SET_CFG before mpp_init"));
            };
            let values = st.cfg(CALL, param).values.clone();
            if faults().cfg {
                error(CALL, format_args!("injected failure (FAKE_MPP_FAULT=cfg)"));
                return sys::MPP_ERR_VALUE;
            }
            if let Err(e) = validate_config(&values, codec) {
                error(CALL, format_args!("MPP_ENC_SET_CFG: {e}"));
                return sys::MPP_ERR_VALUE;
            }
            let (_, c) = st.ctx(CALL, ctx);
            c.applied = values;
            c.configured = true;
            // A new configuration regenerates the headers (`check_resend_hdr` in
            // mpp_enc_proc_cfg: `hdr_status.val = 0`).
            c.hdr_ready = false;
            sys::MPP_OK
        }
        sys::MPP_ENC_SET_HEADER_MODE => {
            if param.is_null() {
                misuse(CALL, format_args!("NULL header mode"));
            }
            // SAFETY: non-NULL; MppEncHeaderMode is a C enum (int).
            let mode = unsafe { *(param as *const c_int) };
            if mode != sys::MPP_ENC_HEADER_MODE_DEFAULT && mode != sys::MPP_ENC_HEADER_MODE_EACH_IDR
            {
                error(
                    CALL,
                    format_args!("header mode {mode} is not DEFAULT or EACH_IDR"),
                );
                return sys::MPP_ERR_VALUE;
            }
            c.header_mode = mode;
            sys::MPP_OK
        }
        sys::MPP_ENC_SET_IDR_FRAME => {
            c.idr_requests += 1;
            // `check_resend_hdr` returns 1 for MPP_ENC_SET_IDR_FRAME: headers again. (The
            // IDR itself is not modelled: the fake replays its stream's own keyframes.)
            c.hdr_ready = false;
            sys::MPP_OK
        }
        sys::MPP_ENC_SET_SEI_CFG => {
            // As `mpp_enc_proc_cfg` (mpp/codec/mpp_enc_impl.cpp): NULL or a mode past
            // ONE_FRAME is MPP_NOK, with an error line.
            if param.is_null() {
                error(CALL, format_args!("invalid NULL ptr on setting sei mode"));
                return sys::MPP_NOK;
            }
            // SAFETY: non-NULL; MppEncSeiMode is a C enum (int).
            let mode = unsafe { *(param as *const c_int) };
            if !(0..=state::SEI_MODE_ONE_FRAME).contains(&mode) {
                error(CALL, format_args!("invalid sei mode {mode}"));
                return sys::MPP_NOK;
            }
            c.sei_mode = mode;
            sys::MPP_OK
        }
        sys::MPP_ENC_GET_HDR_SYNC => {
            let headers = match &c.stream {
                Some(s) => s.headers(),
                None => misuse(CALL, format_args!("MPP_ENC_GET_HDR_SYNC before mpp_init")),
            };
            let packet = st.packet(CALL, param);
            let PacketData::Caller { ptr, size } = packet.data else {
                misuse(
                    CALL,
                    format_args!("MPP_ENC_GET_HDR_SYNC needs a packet from mpp_packet_init"),
                );
            };
            if packet.length != 0 {
                error(
                    CALL,
                    format_args!("MPP_ENC_GET_HDR_SYNC packet length is not cleared to 0"),
                );
                return sys::MPP_ERR_VALUE;
            }
            if headers.len() > size {
                error(
                    CALL,
                    format_args!("{} header bytes do not fit in {size}", headers.len()),
                );
                return sys::MPP_ERR_VALUE;
            }
            // SAFETY: the caller gave `size` writable bytes at `ptr` to mpp_packet_init, and
            // `headers.len() <= size`.
            unsafe {
                std::ptr::copy_nonoverlapping(headers.as_ptr(), ptr as *mut u8, headers.len());
            }
            packet.length = headers.len();
            sys::MPP_OK
        }
        other => {
            error(
                CALL,
                format_args!("command {other:#x} is not implemented by the fake"),
            );
            sys::MPP_NOK
        }
    }
}

unsafe extern "C" fn encode_put_frame(ctx: Handle, frame: Handle) -> MppRet {
    const CALL: &str = "encode_put_frame";
    let mut st = state();
    let frame_id = st.id(CALL, frame, Kind::Frame);
    let (_, c) = st.ctx(CALL, ctx);
    if c.init.is_none() {
        misuse(CALL, format_args!("encode_put_frame before mpp_init"));
    }
    c.puts += 1;
    let n = c.puts;
    if faults().put == Some(n) {
        error(
            CALL,
            format_args!("injected failure on frame {n} (FAKE_MPP_FAULT=put:{n})"),
        );
        return sys::MPP_ERR_VPUHW;
    }
    if !c.configured {
        error(
            CALL,
            format_args!("frame {n} put before a successful MPP_ENC_SET_CFG"),
        );
        return sys::MPP_ERR_INIT;
    }
    if c.eos_requested {
        misuse(CALL, format_args!("frame {n} put after the EOS frame"));
    }
    if c.pending.iter().any(|p| p.frame == frame_id) {
        misuse(
            CALL,
            format_args!("frame {frame:p} put twice while still queued"),
        );
    }
    let applied = |k: &str| c.applied.get(k).copied().unwrap_or(0);
    let expect = (
        applied("prep:width"),
        applied("prep:height"),
        applied("prep:hor_stride"),
        applied("prep:ver_stride"),
        applied("prep:format"),
    );
    let f = st.frame_by_id(CALL, frame_id);
    let (eos, pts, buffer, frame_meta) = (f.eos, f.pts, f.buffer, f.meta);
    let got = (
        i64::from(f.width),
        i64::from(f.height),
        i64::from(f.hor_stride),
        i64::from(f.ver_stride),
        i64::from(f.fmt),
    );
    // A caller's output packet (`Mpp::put_frame` copies KEY_OUTPUT_PACKET from the frame's
    // meta into the task). The encoder appends to it (`mpp_packet_append` at its length), so
    // its length must have been cleared after `mpp_packet_init_with_buffer`.
    let output = frame_meta
        .and_then(|m| st.meta_by_id(m))
        .and_then(|m| m.packets.get(&sys::KEY_OUTPUT_PACKET).copied());
    if let Some(p) = output {
        let length = st.packet(CALL, encode(Kind::Packet, p)).length;
        if length != 0 {
            error(
                CALL,
                format_args!(
                    "frame {n}'s output packet has length {length}; MPP would append after those bytes (mpp_packet_set_length(packet, 0) first)"
                ),
            );
            return sys::MPP_ERR_VALUE;
        }
    }
    match buffer {
        None if eos => {}
        None => {
            error(CALL, format_args!("frame {n} has no buffer and is not EOS"));
            return sys::MPP_ERR_NULL_PTR;
        }
        Some(buffer) => {
            if got != expect {
                error(
                    CALL,
                    format_args!(
                        "frame {n} is {}x{} stride {}x{} format {} but the encoder is configured for {}x{} stride {}x{} format {}",
                        got.0,
                        got.1,
                        got.2,
                        got.3,
                        got.4,
                        expect.0,
                        expect.1,
                        expect.2,
                        expect.3,
                        expect.4
                    ),
                );
                return sys::MPP_ERR_VALUE;
            }
            // NV12: luma rows then half as many chroma rows, both `hor_stride` bytes apart.
            let need = usize::try_from(got.2 * got.3 * 3 / 2).unwrap_or(usize::MAX);
            let b = st.buffer_by_id(CALL, buffer);
            let size = b.size();
            if size < need {
                error(
                    CALL,
                    format_args!(
                        "frame {n}'s buffer holds {size} bytes; NV12 at this stride needs {need}"
                    ),
                );
                return sys::MPP_ERR_VALUE;
            }
            if let Memory::Imported { fd, .. } = b.memory
                && !fd_is_open(fd)
            {
                misuse(CALL, format_args!("frame {n}'s DMA-buf fd {fd} is closed"));
            }
            st.buffer_ref(CALL, buffer);
        }
    }
    let (ctx_id, c) = st.ctx(CALL, ctx);
    let pending = Pending {
        frame: frame_id,
        output,
        buffer,
        pts,
        eos,
    };
    if c.async_io {
        // `Mpp::put_frame_async`: "the max input queue length is 2"; a full queue is MPP_NOK
        // and the frame stays the caller's.
        if c.pending.len() >= ASYNC_QUEUE {
            if let Some(b) = buffer {
                st.buffer_unref(CALL, b);
            }
            return sys::MPP_NOK;
        }
        c.pending.push_back(pending);
        return sys::MPP_OK;
    }
    // Sync mode (`Mpp::put_frame`): one input task. A frame whose put timed out is still in
    // the encoder; this put's first poll waits until that task comes back, i.e. its picture
    // is encoded.
    if let Some(held) = c.pending.pop_front() {
        let packet = produce(&mut st, ctx_id, held);
        st.ctx(CALL, ctx).1.output.push_back(id_of(packet));
    }
    if faults().slow_put == Some(n) {
        // The task was enqueued, then the poll for its return timed out: `put_frame` returns
        // the poll's MPP_NOK while the encoder still reads the frame.
        error(
            CALL,
            format_args!(
                "injected timeout on frame {n} (FAKE_MPP_FAULT=slow-put:{n}); the encoder still holds it"
            ),
        );
        st.ctx(CALL, ctx).1.pending.push_back(pending);
        return sys::MPP_NOK;
    }
    // Encoded before the put returns; the packet waits in the output port.
    let packet = produce(&mut st, ctx_id, pending);
    st.ctx(CALL, ctx).1.output.push_back(id_of(packet));
    sys::MPP_OK
}

unsafe extern "C" fn encode_get_packet(ctx: Handle, packet: *mut Handle) -> MppRet {
    const CALL: &str = "encode_get_packet";
    if packet.is_null() {
        misuse(CALL, format_args!("NULL out-pointer"));
    }
    let mut st = state();
    let (ctx_id, c) = st.ctx(CALL, ctx);
    if c.init.is_none() {
        misuse(CALL, format_args!("encode_get_packet before mpp_init"));
    }
    c.gets += 1;
    let n = c.gets;
    // SAFETY: checked non-NULL above; the caller provides writable storage.
    unsafe { *packet = std::ptr::null_mut() };
    let f = faults();
    if f.get == Some(n) {
        error(
            CALL,
            format_args!("injected failure on call {n} (FAKE_MPP_FAULT=get:{n})"),
        );
        return sys::MPP_ERR_VPUHW;
    }
    if f.timeout == Some(n) {
        return sys::MPP_ERR_TIMEOUT;
    }
    if f.stall {
        let wait = c.output_timeout.clamp(0, STALL_SLEEP_MS);
        drop(st);
        std::thread::sleep(std::time::Duration::from_millis(wait as u64));
        return sys::MPP_OK;
    }
    let handle = if let Some(out) = c.output.pop_front() {
        encode(Kind::Packet, out)
    } else if let Some(front) = c.pending.pop_front() {
        // Async mode encodes queued frames in order; in sync mode this is the frame of a
        // timed-out put, whose encode finishes now.
        produce(&mut st, ctx_id, front)
    } else if c.eos_requested || c.ended {
        c.ended = true;
        eos_packet(&mut st, ctx_id)
    } else {
        if c.output_timeout == sys::MPP_POLL_BLOCK {
            misuse(
                CALL,
                format_args!("blocking encode_get_packet with no frame queued would never return"),
            );
        }
        return sys::MPP_OK;
    };
    let (_, c) = st.ctx(CALL, ctx);
    c.live_packets.insert(id_of(handle));
    if !c.async_io
        && let PacketData::Buffer(b) = st.packet(CALL, handle).data
        && st.cachable(b)
    {
        // Sync `Mpp::get_packet` begins the CPU's read access on the packet's buffer
        // (`mpp_buffer_sync_ro_partial_begin`); `check_buf_need_sync` in mpp_buffer.cpp makes
        // that a no-op for uncached buffers.
        st.buffer_by_id(CALL, b).syncing = true;
    }
    // SAFETY: as above.
    unsafe { *packet = handle };
    sys::MPP_OK
}

/// Encodes one frame the encoder holds into a packet, and lets go of the frame's buffer.
fn produce(st: &mut State, ctx_id: state::Id, front: Pending) -> Handle {
    const CALL: &str = "encode";
    let f = faults();
    let (_, c) = st.ctx(CALL, encode(Kind::Ctx, ctx_id));
    let eos_due = c.ended
        || c.stream.as_ref().is_none_or(|s| s.exhausted())
        || f.eos.is_some_and(|limit| c.packets_out >= limit);
    if front.eos && front.buffer.is_none() || eos_due {
        // The stream is over: MPP gives up every queued frame and answers with EOS.
        c.ended = true;
        c.pending.push_front(front);
        st.release_pending(CALL, ctx_id);
        return eos_packet(st, ctx_id);
    }
    if let Some(b) = front.buffer {
        // The hardware reads the picture now: its DMA-buf must still be open.
        if let Memory::Imported { fd, .. } = st.buffer_by_id(CALL, b).memory
            && !fd_is_open(fd)
        {
            state::released_while_held(
                CALL,
                format_args!("the DMA-buf fd {fd} of a queued frame was closed before its encode"),
            );
        }
    }
    let (_, c) = st.ctx(CALL, encode(Kind::Ctx, ctx_id));
    c.packets_out += 1;
    if front.eos {
        c.eos_requested = true;
    }
    let async_io = c.async_io;
    let failed = f.empty == Some(c.packets_out);
    let sei = c.sei_mode >= state::SEI_MODE_ONE_SEQ;
    let rc_info = format!(
        "rc mode {} bps {}",
        c.applied.get("rc:mode").copied().unwrap_or(0),
        c.applied.get("rc:bps_target").copied().unwrap_or(0)
    );
    let force_idr = std::mem::take(&mut c.force_idr);
    // Parameter sets go on an IDR when the headers are not "ready" (first frame, after a
    // configuration change or a failed encode) or in header mode EACH_IDR
    // (`mpp_enc_impl.cpp`: "generate header before hardware stream" and
    // `MPP_ENC_HEADER_MODE_EACH_IDR` in the prefix step); otherwise the IDR has none.
    let strip_headers = c.hdr_ready && c.header_mode != sys::MPP_ENC_HEADER_MODE_EACH_IDR;
    let (bytes, keyframe) = match c.stream.as_mut() {
        Some(s) => {
            let codec = s.codec;
            if force_idr {
                s.skip_to_keyframe();
            }
            let unit = s.next_unit().map(|(au, keyframe)| {
                if keyframe && strip_headers {
                    (stream::without_parameter_sets(codec, au), keyframe)
                } else {
                    (au.to_vec(), keyframe)
                }
            });
            let unit = unit.as_ref().map(|(au, k)| (au.as_slice(), *k));
            match unit {
                // A failed encode (`mpp_enc_impl.cpp`, "enc failed force idr!") sets the
                // packet length to 0 and forces an IDR for the next frame.
                Some(_) if failed => (Box::default(), false),
                // MPP puts its version and rate-control SEIs before every IDR unless SEI
                // is disabled (mpp_enc_impl.cpp, "Add all prefix info before encoding").
                Some((au, true)) if sei => (
                    stream::with_idr_seis(codec, au, &rc_info).into_boxed_slice(),
                    true,
                ),
                Some((au, keyframe)) => (au.to_vec().into_boxed_slice(), keyframe),
                // Skipping to an IDR ran past the last one.
                None => (Box::default(), false),
            }
        }
        None => misuse(CALL, format_args!("internal error: stream ended early")),
    };
    // The caller's output packet: the hardware writes the stream into its buffer. One too
    // small for the picture overflows, which the hardware reports as a failed encode.
    let user = front
        .output
        .map(|p| match st.packet(CALL, encode(Kind::Packet, p)).data {
            PacketData::Buffer(b) => (p, b),
            PacketData::Caller { .. } => misuse(
                CALL,
                format_args!("the output packet must come from mpp_packet_init_with_buffer"),
            ),
        });
    let (bytes, keyframe, failed) = match user {
        Some((_, b)) if st.buffer_by_id(CALL, b).size() < bytes.len() => {
            (Box::default(), false, true)
        }
        _ => (bytes, keyframe, failed),
    };
    let (_, c) = st.ctx(CALL, encode(Kind::Ctx, ctx_id));
    if failed {
        error(
            CALL,
            format_args!(
                "hardware failure (injected with FAKE_MPP_FAULT=empty:N, or the output packet was too small): packet {} is empty",
                c.packets_out
            ),
        );
        // "enc failed force idr!": an IDR next, with freshly generated headers.
        c.force_idr = true;
        c.hdr_ready = false;
    } else if keyframe {
        c.hdr_ready = true;
    }
    let length = bytes.len();
    let data = match user {
        Some((_, b)) => {
            let cachable = st.cachable(b);
            let buf = st.buffer_by_id(CALL, b);
            if cachable && buf.syncing {
                misuse(
                    CALL,
                    format_args!(
                        "the encoder writes a cachable packet buffer while a CPU access to it is open (no mpp_buffer_sync_end)"
                    ),
                );
            }
            match &mut buf.memory {
                Memory::Owned(mem) => mem[..length].copy_from_slice(&bytes),
                Memory::Imported { .. } => misuse(
                    CALL,
                    format_args!("the fake cannot write an imported DMA-buf output packet"),
                ),
            }
            b
        }
        None => id_of(st.insert(Object::Buffer(Buffer {
            refs: 1,
            memory: Memory::Owned(bytes),
            group: None,
            syncing: false,
        }))),
    };
    let meta = st.new_meta();
    // `set_enc_info_to_packet` (mpp_enc_impl.cpp) runs only for a successful encode, and
    // attaches the input frame only in async mode (`mpp->mEncAyncIo`).
    if !failed && let Some(m) = st.meta_by_id(meta) {
        if async_io {
            m.frames.insert(sys::KEY_INPUT_FRAME, front.frame);
        }
        if !f.no_intra_meta {
            m.s32.insert(
                sys::KEY_OUTPUT_INTRA,
                i32::from(keyframe != f.wrong_intra_meta),
            );
        }
    }
    let packet = state::Packet {
        ctx: Some(ctx_id),
        data: PacketData::Buffer(data),
        length,
        pts: front.pts,
        eos: false,
        meta: Some(meta),
    };
    let handle = match user {
        Some((p, _)) => {
            let handle = encode(Kind::Packet, p);
            let old = std::mem::replace(st.packet(CALL, handle), packet);
            if let Some(m) = old.meta {
                st.remove(m);
            }
            handle
        }
        None => st.insert(Object::Packet(packet)),
    };
    if let Some(b) = front.buffer {
        st.buffer_unref(CALL, b);
    }
    handle
}

unsafe extern "C" fn reset(ctx: Handle) -> MppRet {
    const CALL: &str = "reset";
    let mut st = state();
    let (id, c) = st.ctx(CALL, ctx);
    c.eos_requested = false;
    c.ended = c.stream.as_ref().is_none_or(|s| s.exhausted());
    // `mpp_enc_reset_v2` (mpp_enc_v2.cpp) and the encoder thread's reset
    // (mpp_enc_impl.cpp, "thread reset start"): the next frame is forced to an IDR. Packets
    // already encoded stay in the output port.
    c.force_idr = true;
    if c.async_io {
        // Async reset skips the queued frames (`async_task_skip`): each comes back as an
        // empty packet carrying it as KEY_INPUT_FRAME.
        let skipped: Vec<Pending> = c.pending.drain(..).collect();
        for p in skipped {
            let packet = skipped_packet(&mut st, id, p);
            st.ctx(CALL, ctx).1.output.push_back(id_of(packet));
        }
    }
    sys::MPP_OK
}

/// An empty packet for a frame skipped by an async reset (`async_task_skip`).
fn skipped_packet(st: &mut State, ctx: state::Id, p: Pending) -> Handle {
    let meta = st.new_meta();
    if let Some(m) = st.meta_by_id(meta) {
        m.frames.insert(sys::KEY_INPUT_FRAME, p.frame);
    }
    let buffer = st.insert(Object::Buffer(Buffer {
        refs: 1,
        memory: Memory::Owned(Box::new([])),
        group: None,
        syncing: false,
    }));
    if let Some(b) = p.buffer {
        st.buffer_unref("reset", b);
    }
    let packet = state::Packet {
        ctx: Some(ctx),
        data: PacketData::Buffer(id_of(buffer)),
        length: 0,
        pts: p.pts,
        eos: false,
        meta: Some(meta),
    };
    match p.output {
        // The caller's own output packet comes back, empty.
        Some(out) => {
            let handle = encode(Kind::Packet, out);
            let old = std::mem::replace(st.packet("reset", handle), packet);
            if let PacketData::Buffer(b) = old.data {
                // Keep the caller's buffer; drop the placeholder.
                st.packet("reset", handle).data = PacketData::Buffer(b);
                st.remove(id_of(buffer));
            }
            if let Some(m) = old.meta {
                st.remove(m);
            }
            handle
        }
        None => st.insert(Object::Packet(packet)),
    }
}

fn eos_packet(st: &mut State, ctx: state::Id) -> Handle {
    let meta = st.new_meta();
    let buffer = st.insert(Object::Buffer(Buffer {
        refs: 1,
        memory: Memory::Owned(Box::new([])),
        group: None,
        syncing: false,
    }));
    st.insert(Object::Packet(state::Packet {
        ctx: Some(ctx),
        data: PacketData::Buffer(id_of(buffer)),
        length: 0,
        pts: 0,
        eos: true,
        meta: Some(meta),
    }))
}

macro_rules! not_implemented {
    ($name:ident($($arg:ident: $ty:ty),*)) => {
        unsafe extern "C" fn $name($($arg: $ty),*) -> MppRet {
            $(let _ = $arg;)*
            error(stringify!($name), format_args!("not implemented by the fake (encoder only)"));
            sys::MPP_NOK
        }
    };
}

not_implemented!(decode(ctx: Handle, packet: Handle, frame: *mut Handle));
not_implemented!(decode_put_packet(ctx: Handle, packet: Handle));
not_implemented!(decode_get_frame(ctx: Handle, frame: *mut Handle));
not_implemented!(encode_sync(ctx: Handle, frame: Handle, packet: *mut Handle));
not_implemented!(isp(ctx: Handle, dst: Handle, src: Handle));
not_implemented!(isp_put_frame(ctx: Handle, frame: Handle));
not_implemented!(isp_get_frame(ctx: Handle, frame: *mut Handle));
not_implemented!(poll(ctx: Handle, port: c_int, timeout: c_int));
not_implemented!(dequeue(ctx: Handle, port: c_int, task: *mut Handle));
not_implemented!(enqueue(ctx: Handle, port: c_int, task: Handle));

const FAKE_VERSION: u32 = 0xfa4e;
const STALL_SLEEP_MS: i32 = 5;
/// `Mpp::put_frame_async` (mpp/mpp.cpp): "the max input queue length is 2".
const ASYNC_QUEUE: usize = 2;
