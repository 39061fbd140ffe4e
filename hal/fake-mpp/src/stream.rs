//! The Annex-B stream the fake "encodes": read from `FAKE_MPP_STREAM` and cut into access
//! units by `camseal-nal`, one per output packet.

use std::ops::Range;
use std::path::Path;

use camseal_nal::Codec;

/// A recorded stream replayed one access unit per packet.
pub struct Stream {
    /// The file it was read from, for messages.
    pub name: String,
    pub codec: Codec,
    bytes: Vec<u8>,
    units: Vec<Unit>,
    next: usize,
}

struct Unit {
    span: Range<usize>,
    keyframe: bool,
}

impl Stream {
    /// Reads `path`; the codec comes from the extension, else from the first parameter set.
    pub fn open(path: &Path) -> Result<Stream, String> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read {name}: {e}"))?;
        let codec = path
            .extension()
            .and_then(|e| e.to_str())
            .and_then(Codec::from_extension)
            .or_else(|| camseal_nal::sniff_codec(&bytes))
            .ok_or_else(|| format!("{name} is not an H.264 or H.265 Annex-B stream"))?;
        let units: Vec<Unit> = camseal_nal::access_units(codec, &bytes)
            .map(|au| Unit {
                span: au.span,
                keyframe: au.keyframe,
            })
            .collect();
        if units.is_empty() {
            return Err(format!("{name} holds no access unit"));
        }
        Ok(Stream {
            name,
            codec,
            bytes,
            units,
            next: 0,
        })
    }

    /// The next access unit and whether it is a keyframe; `None` once all were replayed.
    pub fn next_unit(&mut self) -> Option<(&[u8], bool)> {
        let unit = self.units.get(self.next)?;
        self.next += 1;
        Some((self.bytes.get(unit.span.clone())?, unit.keyframe))
    }

    /// Skips to the next keyframe, as the encoder does when MPP forces an IDR after a reset
    /// or a failed frame: the pictures in between are never encoded.
    pub fn skip_to_keyframe(&mut self) {
        while self.units.get(self.next).is_some_and(|u| !u.keyframe) {
            self.next += 1;
        }
    }

    /// Whether every access unit has been handed out.
    pub fn exhausted(&self) -> bool {
        self.next >= self.units.len()
    }

    /// The parameter sets (VPS/SPS/PPS, with start codes) before the first picture, as
    /// `MPP_ENC_GET_HDR_SYNC` returns them.
    pub fn headers(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for nal in camseal_nal::nal_units(&self.bytes) {
            match camseal_nal::classify(self.codec, nal.payload) {
                Some(info) if info.is_vcl => break,
                Some(info) if info.is_parameter_set => {
                    if let Some(bytes) = self.bytes.get(nal.span) {
                        out.extend_from_slice(bytes);
                    }
                }
                _ => {}
            }
        }
        out
    }
}

/// `access_unit` without its parameter-set NAL units, as MPP emits an IDR whose headers were
/// already sent (header mode DEFAULT).
pub fn without_parameter_sets(codec: Codec, access_unit: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(access_unit.len());
    for nal in camseal_nal::nal_units(access_unit) {
        let is_set = camseal_nal::classify(codec, nal.payload).is_some_and(|i| i.is_parameter_set);
        if !is_set && let Some(bytes) = access_unit.get(nal.span) {
            out.extend_from_slice(bytes);
        }
    }
    out
}

/// `uuid_version` and `uuid_rc_cfg` in MPP's `mpp/codec/mpp_enc_impl.cpp` (ee946af): the
/// user-data-unregistered SEI payloads MPP puts before every IDR unless SEI is disabled.
const UUID_VERSION: [u8; 16] = [
    0x3d, 0x07, 0x6d, 0x45, 0x73, 0x0f, 0x41, 0xa8, 0xb1, 0xc4, 0x25, 0xd7, 0x97, 0x6b, 0xf1, 0xac,
];
const UUID_RC_CFG: [u8; 16] = [
    0xd7, 0xdc, 0x03, 0xc3, 0xc5, 0x6f, 0x40, 0xe0, 0x8e, 0xa9, 0x17, 0x1a, 0xd2, 0xef, 0x5e, 0x23,
];

/// `access_unit` as MPP with SEI mode ONE_SEQ or ONE_FRAME emits an IDR
/// (`mpp_enc_impl.cpp`, step 17 "Add all prefix info before encoding"): the parameter sets,
/// then a version SEI and a rate-control SEI, then the picture. The SEI text stands in for
/// MPP's `version_info` and `rc_cfg_info`, whose exact wording a build decides.
pub fn with_idr_seis(codec: Codec, access_unit: &[u8], rc_info: &str) -> Vec<u8> {
    let seis = [
        sei_nal(
            codec,
            &UUID_VERSION,
            b"mpp version: fake-mpp (camseal test stand-in)",
        ),
        sei_nal(codec, &UUID_RC_CFG, rc_info.as_bytes()),
    ];
    let first_vcl = camseal_nal::nal_units(access_unit)
        .find(|nal| camseal_nal::classify(codec, nal.payload).is_some_and(|i| i.is_vcl))
        .map_or(access_unit.len(), |nal| nal.span.start);
    let mut out = Vec::with_capacity(access_unit.len() + 128);
    out.extend_from_slice(&access_unit[..first_vcl]);
    for sei in &seis {
        out.extend_from_slice(sei);
    }
    out.extend_from_slice(&access_unit[first_vcl..]);
    out
}

/// One user-data-unregistered SEI NAL unit (payload type 5), as `h264e_sei_to_packet`
/// (`mpp/codec/enc/h264/h264e_sei.c`) writes it: start code, NAL header (H.264 type 6 with
/// nal_ref_idc 0; H.265 prefix SEI, type 39), payload type and size in 0xFF runs, the UUID,
/// the data, the RBSP trailing bits, with emulation prevention.
fn sei_nal(codec: Codec, uuid: &[u8; 16], data: &[u8]) -> Vec<u8> {
    let mut rbsp = vec![5u8];
    let mut size = uuid.len() + data.len();
    while size >= 255 {
        rbsp.push(0xff);
        size -= 255;
    }
    rbsp.push(size as u8);
    rbsp.extend_from_slice(uuid);
    rbsp.extend_from_slice(data);
    rbsp.push(0x80);
    let mut out = vec![0, 0, 0, 1];
    match codec {
        Codec::H264 => out.push(0x06),
        Codec::H265 => out.extend_from_slice(&[39 << 1, 0x01]),
    }
    let mut zeros = 0;
    for &b in &rbsp {
        if zeros >= 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        out.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idr_seis_go_between_the_parameter_sets_and_the_picture() {
        let au = [
            &[0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e][..],
            &[0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80],
            &[0, 0, 0, 1, 0x65, 0x88, 0x84, 0x00],
        ]
        .concat();
        let out = with_idr_seis(Codec::H264, &au, "rc: cbr");
        let types: Vec<u8> = camseal_nal::nal_units(&out)
            .map(|n| n.payload[0] & 0x1f)
            .collect();
        assert_eq!(types, [7, 8, 6, 6, 5]);
        assert!(out.ends_with(&au[16..]));
        let h265 = sei_nal(Codec::H265, &UUID_VERSION, b"x");
        assert_eq!(&h265[4..6], &[0x4e, 0x01]);
    }
}
