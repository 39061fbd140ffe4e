//! Encoded access units as leases on backend memory.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use memmap2::Mmap;

use crate::Codec;

/// One encoded access unit (Annex-B, start codes included) and a lease on the memory holding
/// it.
///
/// A packet is `Send + 'static`: it can outlive the call that produced it, travel to another
/// thread and coexist with other packets. Dropping it gives the memory back: a replayed file's
/// packets share the mapping (the file is unmapped when the last one is gone), the software
/// encoder's packets own their bytes, an MPP packet is deinit (its context lives until the
/// last one goes), and a V4L2 CAPTURE buffer is queued back to the device (a V4L2 encoder has
/// only a few, so a reader that keeps them all stalls it).
pub struct Packet {
    lease: Lease,
    /// Presentation time in 90 kHz ticks ([`crate::PTS_HZ`]); strictly increasing per source.
    pub pts: u64,
    /// The access unit holds an IDR / IRAP picture.
    pub keyframe: bool,
    /// The codec of the access unit.
    pub codec: Codec,
}

impl Packet {
    /// A packet that owns its bytes, for sources whose encoder writes into its own buffer
    /// (and for tests).
    pub fn from_vec(codec: Codec, pts: u64, keyframe: bool, data: Vec<u8>) -> Packet {
        Packet {
            lease: Lease::Owned(data),
            pts,
            keyframe,
            codec,
        }
    }

    /// A packet borrowing `range` of a shared file mapping; `None` if the range is outside it.
    pub(crate) fn mapped(
        codec: Codec,
        pts: u64,
        keyframe: bool,
        map: Arc<Mmap>,
        range: Range<usize>,
    ) -> Option<Packet> {
        map.get(range.clone())?;
        Some(Packet {
            lease: Lease::Mapped { map, range },
            pts,
            keyframe,
            codec,
        })
    }

    /// A packet holding part of a read buffer it shares with other packets (pipe input).
    /// `copied` is how many bytes the source copied to produce it: its own bytes read from
    /// the pipe, plus any partial access unit it had to move to a fresh buffer since the
    /// previous packet.
    pub(crate) fn shared(
        codec: Codec,
        pts: u64,
        keyframe: bool,
        bytes: Bytes,
        copied: usize,
    ) -> Packet {
        Packet {
            lease: Lease::Shared { bytes, copied },
            pts,
            keyframe,
            codec,
        }
    }

    /// A packet whose bytes stay in a hardware backend's buffer until it is dropped.
    pub(crate) fn leased(
        codec: Codec,
        pts: u64,
        keyframe: bool,
        memory: Box<dyn PacketMemory>,
    ) -> Packet {
        Packet {
            lease: Lease::Hardware(memory),
            pts,
            keyframe,
            codec,
        }
    }

    /// A packet whose bytes belong to the embedding application (a C caller's buffer, a
    /// mapped `GstBuffer`): read in place, never copied, and handed back when the packet is
    /// dropped (`memory`'s own `Drop` releases it), on whichever thread drops it last.
    pub fn lent(codec: Codec, pts: u64, keyframe: bool, memory: Box<dyn LentMemory>) -> Packet {
        Packet {
            lease: Lease::Lent(memory),
            pts,
            keyframe,
            codec,
        }
    }

    /// The access unit's bytes.
    pub fn data(&self) -> &[u8] {
        match &self.lease {
            Lease::Hardware(memory) => memory.bytes(),
            Lease::Lent(memory) => memory.bytes(),
            // The range was checked against this very mapping in `Packet::mapped`, so `get`
            // always succeeds; the fallback only avoids a panic path.
            Lease::Mapped { map, range } => map.get(range.clone()).unwrap_or_default(),
            Lease::Owned(data) => data,
            Lease::Shared { bytes, .. } => bytes,
        }
    }

    /// The source copied these bytes out of its encoder's own buffer ([`Packet::from_vec`]),
    /// instead of lending the encoder's memory: one user-space copy per video byte, for the
    /// copy accounting of benches.
    pub fn source_copied(&self) -> bool {
        self.copied_bytes() > 0
    }

    /// Bytes the source copied in user space to produce this packet: its length for an
    /// owned packet, what a pipe forced for one read from a pipe (see [`crate::pipe`]), 0
    /// for memory lent by a mapping, a hardware buffer or the embedder. Summed over a stream, the source's
    /// whole share of a bench's copy count.
    pub fn copied_bytes(&self) -> usize {
        match &self.lease {
            Lease::Owned(data) => data.len(),
            Lease::Shared { copied, .. } => *copied,
            Lease::Hardware(_) | Lease::Lent(_) | Lease::Mapped { .. } => 0,
        }
    }

    /// Length of the access unit in bytes.
    pub fn len(&self) -> usize {
        self.data().len()
    }

    /// Whether the access unit is empty (no backend produces such packets).
    pub fn is_empty(&self) -> bool {
        self.data().is_empty()
    }
}

impl AsRef<[u8]> for Packet {
    fn as_ref(&self) -> &[u8] {
        self.data()
    }
}

impl fmt::Debug for Packet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let memory = match &self.lease {
            Lease::Hardware(memory) => memory.kind(),
            Lease::Lent(_) => "lent",
            Lease::Mapped { .. } => "mapped",
            Lease::Owned(_) => "owned",
            Lease::Shared { .. } => "read buffer",
        };
        f.debug_struct("Packet")
            .field("codec", &self.codec)
            .field("pts", &self.pts)
            .field("keyframe", &self.keyframe)
            .field("len", &self.len())
            .field("memory", &memory)
            .finish()
    }
}

/// A hardware backend's output buffer, read in place and given back on drop.
pub(crate) trait PacketMemory: Send + Sync {
    /// The encoded bytes; the same slice for as long as the memory lives.
    fn bytes(&self) -> &[u8];

    /// A short name of the backend memory, for `Debug`.
    fn kind(&self) -> &'static str;
}

/// Memory an embedding application lends to a [`Packet`] ([`Packet::lent`]).
///
/// The bytes must stay the same, and readable, until the value is dropped; dropping it is
/// the application's signal that camseal is done with them.
pub trait LentMemory: Send + Sync {
    /// The encoded bytes; the same slice for as long as the memory lives.
    fn bytes(&self) -> &[u8];
}

/// Whose memory a packet's bytes live in.
enum Lease {
    Hardware(Box<dyn PacketMemory>),
    Lent(Box<dyn LentMemory>),
    Mapped { map: Arc<Mmap>, range: Range<usize> },
    Owned(Vec<u8>),
    Shared { bytes: Bytes, copied: usize },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_static<T: Send + Sync + 'static>() {}

    #[test]
    fn packets_can_travel_between_threads() {
        assert_send_static::<Packet>();
        let p = Packet::from_vec(Codec::H264, 3000, true, vec![0, 0, 0, 1, 0x65]);
        let handle = std::thread::spawn(move || (p.len(), p.pts, p.keyframe));
        assert_eq!(handle.join().unwrap(), (5, 3000, true));
    }

    #[test]
    fn only_owned_packets_count_as_copied_by_the_source() {
        assert!(Packet::from_vec(Codec::H264, 0, true, vec![0, 0, 1, 0x65]).source_copied());
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, &[0, 0, 1, 0x65]).unwrap();
        let map = Arc::new(crate::replay::sys::map_read_only(&file).unwrap());
        assert!(
            !Packet::mapped(Codec::H264, 0, true, map, 0..4)
                .unwrap()
                .source_copied()
        );
    }

    #[test]
    fn lent_memory_is_read_in_place_and_released_on_drop() {
        struct Counted(Vec<u8>, Arc<std::sync::atomic::AtomicU32>);
        impl LentMemory for Counted {
            fn bytes(&self) -> &[u8] {
                &self.0
            }
        }
        impl Drop for Counted {
            fn drop(&mut self) {
                self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let released = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let memory = Counted(vec![0, 0, 1, 0x65, 9], Arc::clone(&released));
        let at = memory.0.as_ptr();
        let p = Packet::lent(Codec::H264, 7, true, Box::new(memory));
        assert_eq!(p.data().as_ptr(), at);
        assert!(!p.source_copied());
        assert!(format!("{p:?}").contains("lent"));
        let handle = std::thread::spawn(move || drop(p));
        handle.join().unwrap();
        assert_eq!(released.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn mapped_packet_rejects_ranges_outside_the_mapping() {
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, &[0, 0, 1, 0x65, 1, 2, 3]).unwrap();
        let map = Arc::new(crate::replay::sys::map_read_only(&file).unwrap());
        assert!(Packet::mapped(Codec::H264, 0, false, map.clone(), 0..8).is_none());
        let p = Packet::mapped(Codec::H264, 0, false, map, 3..7).unwrap();
        assert_eq!(p.data(), &[0x65, 1, 2, 3]);
        assert!(format!("{p:?}").contains("mapped"));
    }
}
